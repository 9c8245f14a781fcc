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

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scoring import SETS, BenchSet, baselines, interval_scores, long_frame, owa, score

RECIPES = ("default", "jobs/accurate.yaml")
LEVELS = (80, 95)  # the interval levels scored (coverage, and MSIS at 95)


def run_recipe(
    recipe: str, bench: BenchSet, train_path: Path, out: Path, split: str
) -> tuple[pd.DataFrame, dict]:
    """Run one recipe on ``train_path``; return its forecasts (``y_hat``, and the LSTM's
    own as ``y_hat_lstm``) and what the run reported."""
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
    spec = load_spec(spec_path, overrides)
    started = time.perf_counter()
    run_job(spec, overwrite=True)
    wall = time.perf_counter() - started
    metrics = pd.read_parquet(out / "metrics.parquet")
    short = metrics["reason"].fillna("").str.contains("fewer than")
    manifest = json.loads((out / "manifest.json").read_text())
    report = {
        "lstm_weight": manifest.get("lstm_weight"),
        "table_share": manifest.get("table_share"),
        "first_season": (manifest["resolved"]["seasons"] or [1])[0],
        "wall_seconds": wall,
        "no_lstm": int((metrics["status"] != "ok").sum()),
        "skipped": int((metrics["status"] == "skipped").sum()),
        "fallback": int((metrics["status"] == "fallback").sum()),
        "fallback_for_length": int(((metrics["status"] == "fallback") & short).sum()),
        "failed": int((metrics["status"] == "failed").sum()),
    }
    return pd.read_parquet(out / "forecasts.parquet"), report


def run_peers(train: pd.DataFrame, bench: BenchSet) -> dict[str, tuple[pd.DataFrame, float]]:
    """statsforecast's AutoETS and AutoTheta, when installed (the ``bench`` extra), with
    their 80% and 95% intervals."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, AutoTheta, Naive
    except ImportError:
        print("statsforecast is not installed (pip install -e '.[bench]'): no peer rows")
        return {}
    season = bench.naive2_season  # M4 Weekly's peers run without a season, as M4 scores it
    longest = train["unique_id"].value_counts().index[0]
    freq = pd.infer_freq(train.loc[train["unique_id"] == longest, "ds"])
    peers = {}
    for name, model in (
        ("AutoETS", AutoETS(season_length=season)),
        ("AutoTheta", AutoTheta(season_length=season)),
    ):
        started = time.perf_counter()
        fitted = StatsForecast(
            models=[model],
            freq=freq,
            n_jobs=2,
            fallback_model=Naive(),  # AutoETS refuses a series of a few points (backtest split)
        )
        forecast = fitted.forecast(df=train, h=bench.horizon, level=list(LEVELS)).reset_index()
        bounds = {
            f"{name}-{side}-{level}": f"y_{side}_{level}"
            for level in LEVELS
            for side in ("lo", "hi")
        }
        peers[f"statsforecast {name}"] = (
            forecast.rename(columns={name: "y_hat", **bounds}),
            time.perf_counter() - started,
        )
    return peers


def _parts(
    recipe: str, forecasts: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, season: int
) -> dict[str, tuple[pd.DataFrame, dict]]:
    """What each part of a recipe's forecast scores alone, where a series has it (its
    forecast where not): the LSTM's forecast (``y_hat_lstm``), the table model's and the
    series' own LSTMs' (its two parts), and the statistical models' (damped trend and
    Theta, fitted here as the job fits them: ``lstm_worker.smoothing``)."""
    from lstm_worker.smoothing import statistical_forecast

    parts = {}
    for label, column in (
        ("the LSTM alone", "y_hat_lstm"),
        ("the table model alone", "y_hat_table"),
        ("the series' LSTMs alone", "y_hat_series"),
    ):
        filled = forecasts[column].fillna(forecasts["y_hat_lstm"]).fillna(forecasts["y_hat"])
        points = forecasts[["unique_id", "ds"]].assign(y_hat=filled)  # intervals: the recipe's
        parts[f"runner {recipe}, {label}"] = (points, {})
    history = train.sort_values(["unique_id", "ds"]).groupby("unique_id")["y"]
    ids = list(history.groups)
    horizon = int(test.groupby("unique_id").size().max())
    found = statistical_forecast([history.get_group(i).to_numpy() for i in ids], horizon, season)
    stats = long_frame(dict(zip(map(str, ids), found, strict=True)), test)
    parts[f"runner {recipe}, the statistical models alone"] = (stats, {})
    return parts


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
        candidates.update(_parts(recipe, forecasts, train, test, report["first_season"]))
    for name, frame in baselines(train, test, bench).items():
        candidates[name] = (frame, {})
    if peers:
        for name, (frame, seconds) in run_peers(train, bench).items():
            candidates[name] = (frame, {"wall_seconds": seconds})
    naive2 = score(candidates["Naive2"][0], train, test, bench)
    for number, (name, (frame, report)) in enumerate(candidates.items()):
        frame.to_parquet(work / f"forecasts-{number}.parquet")  # for a look afterwards
        scores = {**score(frame, train, test, bench), **interval_scores(frame, train, test, bench)}
        if bench.owa:
            scores["owa"] = owa(scores, naive2)
        rows.append({"set": bench.name, "method": name, **scores, **report})
    return rows


def print_table(rows: list[dict], split: str) -> None:
    print(f"\nsplit: {split}")
    header = (
        f"{'set':11} {'method':44} {'sMAPE':>7} {'MASE':>7} {'OWA':>6} {'cov80':>5} "
        f"{'cov95':>5} {'MSIS':>6} {'wall s':>7} {'skipped':>7} {'fallback':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        owa_text = f"{row['owa']:6.3f}" if "owa" in row else f"{'':6}"
        wall = f"{row['wall_seconds']:7.1f}" if "wall_seconds" in row else f"{'':7}"
        intervals = " ".join(
            f"{row[key]:{width}.{digits}f}" if key in row else " " * width
            for key, width, digits in (("coverage_80", 5, 3), ("coverage_95", 5, 3), ("msis", 6, 2))
        )
        counts = (
            f"{row['skipped']:7d} {row['fallback']:4d} ({row['fallback_for_length']})"
            if "skipped" in row
            else ""
        )
        missing = f"  [{row['missing']} series without a forecast]" if row["missing"] else ""
        if row.get("lstm_weight") is not None:
            missing += f"  LSTM weight {row['lstm_weight']:.2f}"
        if row.get("table_share") is not None:
            missing += f", table share {row['table_share']:.2f}"
        print(
            f"{row['set']:11} {row['method'][:44]:44} {row['smape']:7.3f} {row['mase']:7.3f} "
            f"{owa_text} {intervals} {wall} {counts}{missing}"
        )
    print(
        "fallback: all fallbacks (those for length in brackets); the LSTM alone: its own "
        "forecast where it has one (the rest as forecast); the table model and the series' "
        "LSTMs alone: the LSTM's two parts, where it mixes them (the LSTM's elsewhere); "
        "cov80, cov95: the share of actual values inside the 80% and 95% intervals; MSIS: "
        "M4's mean scaled interval score at 95% (lower is better)"
    )


def print_summary(rows: list[dict]) -> None:
    """One line per method: the geometric mean over sets (M4 Hourly left out: AutoETS is far
    behind there) of its MASE relative to AutoETS's, and its series with no LSTM forecast."""
    reference = {r["set"]: r["mase"] for r in rows if r["method"] == "statsforecast AutoETS"}
    if not reference:
        return
    print("\nMASE relative to AutoETS's, geometric mean over the sets other than M4 Hourly")
    for method in dict.fromkeys(r["method"] for r in rows):
        ratios = {
            r["set"]: r["mase"] / reference[r["set"]]
            for r in rows
            if r["method"] == method and r["set"] in reference and r["set"] != "m4_hourly"
        }
        if not ratios:
            continue
        mean = float(np.exp(np.mean(np.log(list(ratios.values())))))
        counted = [r for r in rows if r["method"] == method and "no_lstm" in r]
        no_lstm = (
            f"; {sum(r['no_lstm'] for r in counted)} series without an LSTM forecast"
            if counted
            else ""
        )
        print(f"{method[:44]:44} {mean:6.3f} over {len(ratios)} sets{no_lstm}")


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
    print_summary(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
