"""Run job recipes on every benchmark set and score them as the competitions do.

    python bench/accuracy.py                                   # default job and jobs/accurate.yaml
    python bench/accuracy.py --split backtest --sets m3_monthly \\
        --recipe default --recipe "default model.lookback=24"  # variants, side by side
    python bench/accuracy.py --peers                           # + statsforecast AutoETS, AutoTheta

A recipe is ``default`` (a spec with only the input, the horizon and the output) or a
spec file, then ``KEY=VALUE`` overrides; the input, horizon and output are always set
here. ``--split backtest`` holds out the last horizon of each training series and never
reads the official test part: defaults are chosen on that split. Every recipe and peer
runs in this one process, one after another, so their wall times compare.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scoring import SETS, BenchSet, baselines, owa, score

RECIPES = ("default", "jobs/accurate.yaml")


def run_recipe(
    recipe: str, bench: BenchSet, train_path: Path, out: Path, split: str
) -> tuple[pd.DataFrame, dict]:
    """Run one recipe on ``train_path``; return its forecasts and what the run reported.

    On the backtest split every series is a horizon shorter than in the real set, so
    some fall under the shortest a model is trained on: those fall back to seasonal naive
    (``forecast.short_series: snaive``), so that every variant is scored on every series.
    """
    from cluster.job import run_job
    from cluster.spec import load_spec

    spec_path, *overrides = shlex.split(recipe)
    if spec_path == "default":
        spec_path = str(out.parent / "default.yaml")
        Path(spec_path).write_text(yaml.safe_dump({"name": "default"}))
    overrides = [
        f"input.path={train_path}",
        f"forecast.horizon={bench.horizon}",
        f"output.path={out}",
        *overrides,
    ]
    if split == "backtest":
        overrides.append("forecast.short_series=snaive")
    spec = load_spec(spec_path, overrides)
    started = time.perf_counter()
    run_job(spec, overwrite=True)
    wall = time.perf_counter() - started
    metrics = pd.read_parquet(out / "metrics.parquet")
    short = metrics["reason"].fillna("").str.contains("fewer than")
    report = {
        "wall_seconds": wall,
        "skipped": int((metrics["status"] == "skipped").sum()),
        "fallback": int((metrics["status"] == "fallback").sum()),
        "fallback_for_length": int(((metrics["status"] == "fallback") & short).sum()),
        "failed": int((metrics["status"] == "failed").sum()),
    }
    return pd.read_parquet(out / "forecasts.parquet"), report


def run_peers(train: pd.DataFrame, bench: BenchSet) -> dict[str, tuple[pd.DataFrame, float]]:
    """statsforecast's AutoETS and AutoTheta, when installed (the ``bench`` extra)."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, AutoTheta
    except ImportError:
        print("statsforecast is not installed (pip install -e '.[bench]'): no peer rows")
        return {}
    season = bench.naive2_season  # M4 Weekly's peers run without a season, as M4 scores it
    peers = {}
    for name, model in (
        ("AutoETS", AutoETS(season_length=season)),
        ("AutoTheta", AutoTheta(season_length=season)),
    ):
        started = time.perf_counter()
        fitted = StatsForecast(
            models=[model],
            freq=pd.infer_freq(train.loc[train["unique_id"] == train["unique_id"].iloc[0], "ds"]),
            n_jobs=2,
        )
        forecast = fitted.forecast(df=train, h=bench.horizon).reset_index()
        peers[f"statsforecast {name}"] = (
            forecast.rename(columns={name: "y_hat"}),
            time.perf_counter() - started,
        )
    return peers


def evaluate(
    bench: BenchSet, split: str, recipes: list[str], peers: bool, work: Path
) -> list[dict]:
    """Every row of one set's table."""
    train, test = bench.load_split(split)
    work.mkdir(parents=True, exist_ok=True)
    train_path = work / "train.parquet"
    train.to_parquet(train_path, index=False)
    rows, candidates = [], {}
    for number, recipe in enumerate(recipes):
        forecasts, report = run_recipe(recipe, bench, train_path, work / f"recipe-{number}", split)
        candidates[f"runner {recipe}"] = (forecasts, report)
    for name, frame in baselines(train, test, bench).items():
        candidates[name] = (frame, {})
    if peers:
        for name, (frame, seconds) in run_peers(train, bench).items():
            candidates[name] = (frame, {"wall_seconds": seconds})
    naive2 = score(candidates["Naive2"][0], train, test, bench)
    for name, (frame, report) in candidates.items():
        scores = score(frame, train, test, bench)
        if bench.owa:
            scores["owa"] = owa(scores, naive2)
        rows.append({"set": bench.name, "method": name, **scores, **report})
    return rows


def print_table(rows: list[dict], split: str) -> None:
    print(f"\nsplit: {split}")
    header = (
        f"{'set':11} {'method':44} {'sMAPE':>7} {'MASE':>7} {'OWA':>6} {'wall s':>7} "
        f"{'skipped':>7} {'fallback':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        owa_text = f"{row['owa']:6.3f}" if "owa" in row else f"{'':6}"
        wall = f"{row['wall_seconds']:7.1f}" if "wall_seconds" in row else f"{'':7}"
        counts = (
            f"{row['skipped']:7d} {row['fallback']:4d} ({row['fallback_for_length']})"
            if "skipped" in row
            else ""
        )
        missing = f"  [{row['missing']} series without a forecast]" if row["missing"] else ""
        print(
            f"{row['set']:11} {row['method'][:44]:44} {row['smape']:7.3f} {row['mase']:7.3f} "
            f"{owa_text} {wall} {counts}{missing}"
        )
    print("fallback: all fallbacks (those for length in brackets)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--split", choices=("test", "backtest"), default="test")
    parser.add_argument(
        "--recipe",
        action="append",
        dest="recipes",
        help="'default' or a spec path, then KEY=VALUE overrides (repeatable)",
    )
    parser.add_argument("--peers", action="store_true", help="add statsforecast rows")
    parser.add_argument("--work", type=Path, help="where runs are written (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    recipes = args.recipes or list(RECIPES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="runner-accuracy-") as temp:
        work = args.work or Path(temp)
        for name in args.sets.split(","):
            bench = SETS[name]
            if not bench.exists():
                print(f"{bench.root}: not found, {name} left out")
                continue
            rows.extend(evaluate(bench, args.split, recipes, args.peers, work / name))
            print_table([r for r in rows if r["set"] == name], args.split)
    print_table(rows, args.split)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
