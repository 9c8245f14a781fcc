"""Known future inputs on a synthetic daily retail table: the same job with and without
them, scored on a holdout whose promotions, prices and holidays were known in advance.

    python bench/covariates.py [--series 2000] [--days 546] [--set KEY=VALUE ...]

Each series sells ``level x weekday x promotion x price x holiday x noise``: a weekly
profile of its own, promotions on about one day in nine that lift sales by a factor
of its own (1.5 to 2.5), a price that changes now and then (elasticity -1.5), eight
holidays a year that double sales, and 10% multiplicative noise. The last 28 days of
every series are held out; ``future.parquet`` holds their promotion, price and holiday
columns, as a retailer knows them the night before. Every recipe runs in this process,
one after another, and is scored (sMAPE, MASE with m = 7) on those 28 days.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scoring import BenchSet, score

HORIZON = 28
FEATURES = ["promo", "price", "holiday"]
RETAIL = BenchSet("retail", "synthetic daily retail", HORIZON, 7, 7, 1, owa=False)
RECIPES = {
    "without covariates": [],
    "without, shared start": ["train.shared_start=true"],
    "calendar only": ["model.calendar=auto"],
    "features": [f"input.features={FEATURES}", "input.future_path={future}"],
    "features + calendar": [
        f"input.features={FEATURES}",
        "input.future_path={future}",
        "model.calendar=auto",
    ],
}


def retail_table(series: int, days: int, seed: int = 0) -> pd.DataFrame:
    """The long table (unique_id, ds, y, promo, price, holiday), ``days`` per series."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days, freq="D")
    holidays = np.isin(ds.dayofyear, rng.choice(np.arange(1, 366), 8, replace=False))
    frames = []
    for number in range(series):
        level = rng.lognormal(3.0, 0.6)
        weekly = rng.uniform(0.7, 1.4, 7)
        starts = rng.random(days) < 0.04  # a promotion starts; it lasts 1 to 5 days
        promo = np.zeros(days)
        for start in np.flatnonzero(starts):
            promo[start : start + rng.integers(1, 6)] = 1.0
        changes = rng.random(days) < 0.02  # a price change, kept until the next one
        base = rng.uniform(2.0, 20.0)
        price = base * np.cumprod(np.where(changes, rng.uniform(0.8, 1.2, days), 1.0))
        mean = (
            level
            * weekly[ds.day_of_week]
            * np.where(promo > 0, rng.uniform(1.5, 2.5), 1.0)
            * (price / base) ** -1.5
            * np.where(holidays, 2.0, 1.0)
        )
        y = mean * rng.lognormal(0.0, 0.1, days)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{number:05d}",
                    "ds": ds,
                    "y": y,
                    "promo": promo,
                    "price": price.round(2),
                    "holiday": holidays.astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_recipe(
    overrides: list[str], train: Path, future: Path, out: Path, extra: list[str]
) -> tuple[pd.DataFrame, float]:
    from cluster.job import run_job
    from cluster.spec import load_spec

    spec_path = out.parent / "retail.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "retail"}))
    settings = [
        f"input.path={train}",
        f"forecast.horizon={HORIZON}",
        f"output.path={out}",
        *(o.format(future=future) for o in overrides),
        *extra,
    ]
    started = time.perf_counter()
    run_job(load_spec(spec_path, settings), overwrite=True)
    return pd.read_parquet(out / "forecasts.parquet"), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--days", type=int, default=546, help="per series, holdout included")
    parser.add_argument(
        "--recipe", action="append", choices=list(RECIPES), dest="recipes", help="default: all"
    )
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every recipe")
    args = parser.parse_args()
    table = retail_table(args.series, args.days)
    held = table.groupby("unique_id").cumcount(ascending=False) < HORIZON
    train, test = table[~held], table[held]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-covariates-") as temp:
        work = Path(temp)
        train_path, future_path = work / "train.parquet", work / "future.parquet"
        train.to_parquet(train_path, index=False)
        test[["unique_id", "ds", *FEATURES]].to_parquet(future_path, index=False)
        for name in args.recipes or list(RECIPES):
            forecasts, wall = run_recipe(
                RECIPES[name], train_path, future_path, work / name.replace(" ", "-"), args.set
            )
            scores = score(forecasts, train, test, RETAIL)
            rows.append({"recipe": name, **scores, "wall_seconds": wall})
            print(f"{name}: {scores} in {wall:.1f} s", flush=True)
    frame = pd.DataFrame(rows).set_index("recipe")
    baseline = frame["mase"].iloc[0]
    frame["mase vs first"] = frame["mase"] / baseline
    print(
        f"\n{args.series} series x {args.days} days, holdout {HORIZON} days, "
        f"features {FEATURES} known over it; MASE m = 7"
    )
    print(frame[["smape", "mase", "mase vs first", "missing", "wall_seconds"]].round(4))


if __name__ == "__main__":
    main()
