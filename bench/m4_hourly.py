"""Run a job on M4 Hourly and score its 48-step forecasts as the competition does.

    python bench/m4_hourly.py [--spec jobs/m4_hourly.yaml] [--set KEY=VALUE ...]
    python bench/m4_hourly.py --score runs/m4_hourly      # score a finished run only

Prints sMAPE, MASE and OWA on the official test set next to the published benchmarks,
plus interval coverage when the forecasts carry intervals, wall time and series/s.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.m4_score import benchmark_file, load_m4, score_m4  # noqa: E402

PUBLISHED = {  # sMAPE, MASE, OWA on M4 Hourly
    "seasonal naive": (13.912, 1.193, 0.627),
    "RNN benchmark": (14.698, 3.048, 1.036),
    "ES-RNN (winner)": (9.328, 0.893, 0.440),
}


def coverage(forecasts: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Share of test points inside each ``y_lo_N``/``y_hi_N`` interval."""
    merged = test.merge(forecasts, on=["unique_id", "ds"])
    found = {}
    for column in forecasts.columns:
        if (match := re.fullmatch(r"y_lo_(\d+)", column)) and f"y_hi_{match[1]}" in forecasts:
            inside = merged["y"].between(merged[column], merged[f"y_hi_{match[1]}"])
            found[f"{match[1]}%"] = float(inside.mean())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="jobs/m4_hourly.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--score", metavar="OUTPUT_DIR", help="score a finished run only")
    args = parser.parse_args()

    train, test = load_m4()
    if args.score:
        out = Path(args.score)
    else:
        from cluster.job import run_job
        from cluster.spec import load_spec

        spec = load_spec(args.spec, args.overrides)
        started = time.perf_counter()
        out = run_job(spec, overwrite=True).output
        print(f"job: {args.spec} in {time.perf_counter() - started:.1f}s")
    manifest = json.loads((out / "manifest.json").read_text())
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    scores = score_m4(forecasts, train, test)
    snaive = score_m4(benchmark_file("Hourly-sNaive.csv", test), train, test)

    print(f"\n{'M4 Hourly, 414 series, h=48':28}{'sMAPE':>8}{'MASE':>8}{'OWA':>8}")
    print(f"{'runner (' + manifest['name'] + ')':28}{scores['smape']:8.3f}{scores['mase']:8.3f}"
          f"{scores['owa']:8.3f}")
    print(f"{'seasonal naive (rescored)':28}{snaive['smape']:8.3f}{snaive['mase']:8.3f}"
          f"{snaive['owa']:8.3f}")
    for name, (smape, mase, owa) in PUBLISHED.items():
        print(f"{name + ' (published)':28}{smape:8.3f}{mase:8.3f}{owa:8.3f}")
    for level, share in coverage(forecasts, test).items():
        print(f"interval {level}: covers {100 * share:.1f}% of test points")
    print(f"wall {manifest['wall_seconds']:.1f}s, {manifest['series_per_second']:.2f} series/s "
          f"computed ({manifest['counts']})")
    if "model" in (metrics := pd.read_parquet(out / "metrics.parquet")):
        chosen = metrics["model"].fillna("none").value_counts()
        print("models chosen:", {name: int(n) for name, n in chosen.items()})
    assert np.isfinite(scores["owa"])


if __name__ == "__main__":
    main()
