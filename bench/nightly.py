"""Three nights on M4 Hourly: a cold night, then warm-started nights that score the night
before, against a cold and a forecast-only run of the last night, all in this process.

    python bench/nightly.py [--split backtest] [--set KEY=VALUE ...]

Night 1 trains on each series' training part minus its last 48 points; nights 2 and 3
each see 24 more points (night 3 sees the whole training part, so its forecasts are
scored on the official test part). ``--split backtest`` moves every night 48 points
earlier and never reads the test part: warm-start settings are chosen on it. Each
night's forecasts are scored (sMAPE, MASE, OWA against Naive2) on the 48 points after
its cutoff; nights 2 and 3 warm start from the night before and score its forecasts in
their ledger, which is checked here against the same scores computed by hand. Nights 2
and 3 also run cold, and night 3 forecast-only from night 2's models, so each way costs
and scores the same night side by side. Each night's cost is given two ways: compute,
the wall of its task phases (the table model's and the shards'; workers' start included,
Ray's start and stop not), and task
seconds, the tasks' own run times summed (the cores it held; each worker's imports
included). A last row runs the forecast-only night in a Ray whose workers are already
up: what is left is the work.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import ray
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scoring import M4_HOURLY, baselines, owa, score

NIGHT_STEP = 24  # points each night adds


def _split(full: pd.DataFrame, held: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each series minus its last ``held`` points, and the 48 points after that."""
    back = full.groupby("unique_id", sort=False).cumcount(ascending=False)
    return (
        full[back >= held].reset_index(drop=True),
        full[(back < held) & (back >= held - M4_HOURLY.horizon)].reset_index(drop=True),
    )


def _run(name: str, table: pd.DataFrame, work: Path, overrides: list[str]) -> tuple[Path, dict]:
    from cluster.job import run_job
    from cluster.spec import load_spec

    path = work / f"{name}.parquet"
    table.to_parquet(path, index=False)
    spec_path = work / "nightly.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "nightly"}))
    spec = load_spec(
        spec_path,
        [
            f"input.path={path}",
            f"forecast.horizon={M4_HOURLY.horizon}",
            f"output.path={work / name}",
            *overrides,
        ],
    )
    started = time.perf_counter()
    out = run_job(spec, overwrite=True).output
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["wall"] = time.perf_counter() - started
    return out, manifest


def _scores(out: Path, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    scores = score(forecasts, train, test, M4_HOURLY)
    naive2 = score(baselines(train, test, M4_HOURLY)["Naive2"], train, test, M4_HOURLY)
    return {**scores, "owa": owa(scores, naive2)}


def _by_hand(previous: Path, table: pd.DataFrame) -> tuple[float, float]:
    """Realised sMAPE and MASE of ``previous``'s forecasts on the actuals in ``table``
    after each series' cutoff: per series over its realised steps, then the mean."""
    forecasts = pd.read_parquet(previous / "forecasts.parquet")
    smapes, mases = [], []
    for series_id, forecast in forecasts.groupby("unique_id", sort=False):
        series = table[table["unique_id"] == series_id]
        cutoff = forecast["cutoff"].iloc[0]
        history, new = series[series["ds"] <= cutoff]["y"], series[series["ds"] > cutoff]
        merged = new.merge(forecast, on="ds")
        y, f = merged["y"].to_numpy(), merged["y_hat"].to_numpy()
        smapes.append(np.mean(200 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
        past, m = history.to_numpy(), M4_HOURLY.scale_lag
        mases.append(np.mean(np.abs(y - f)) / np.mean(np.abs(past[m:] - past[:-m])))
    return float(np.mean(smapes)), float(np.mean(mases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--split", choices=("test", "backtest"), default="test")
    parser.add_argument("--work", type=Path, help="where runs are written (default: a temp dir)")
    args = parser.parse_args()
    train, test = M4_HOURLY.load()
    full = train if args.split == "backtest" else pd.concat([train, test])
    full = full.sort_values(["unique_id", "ds"], kind="stable")
    rows = []
    with tempfile.TemporaryDirectory(prefix="runner-nightly-") as temp:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        night = {n: _split(full, M4_HOURLY.horizon * 2 - NIGHT_STEP * (n - 1)) for n in (1, 2, 3)}
        plan = [  # (label, night, run name, the runs it builds on: field -> run name)
            ("night 1 (cold)", 1, "cold1", {}),
            (
                "night 2 (warm)",
                2,
                "warm2",
                {"train.warm_start": "cold1", "ledger.previous": "cold1"},
            ),
            ("night 2 (cold)", 2, "cold2", {}),
            (
                "night 3 (warm)",
                3,
                "warm3",
                {"train.warm_start": "warm2", "ledger.previous": "warm2"},
            ),
            ("night 3 (cold)", 3, "cold3", {"ledger.previous": "warm2"}),
            ("night 3 (forecast only)", 3, "only3", {"forecast.from_models": "warm2"}),
        ]

        def measure(label: str, n: int, name: str, links: dict[str, str]) -> dict:
            table, held = night[n]
            overrides = [f"{field}={work / run}" for field, run in links.items()]
            out, manifest = _run(name, table, work, [*overrides, *args.overrides])
            row = {
                "night": label,
                "wall": manifest["wall"],
                "compute": manifest["timings"]["compute_seconds"]
                + manifest["timings"].get("table_seconds", 0.0),  # the table task's phase
                "tasks": manifest["task_seconds"],
                **_scores(out, table, held),
                "realised": manifest.get("ledger"),
            }
            if manifest.get("ledger_of"):
                row["by_hand"] = _by_hand(Path(manifest["ledger_of"]), table)
            return row

        for step in plan:
            rows.append(measure(*step))
            print(_line(rows[-1], rows[0]), flush=True)
        # The floor: the forecast-only night again in a Ray this process keeps up, its
        # workers started and their imports done by a first run; the second is measured.
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
        try:
            links = {"forecast.from_models": "warm2"}
            measure("night 3 (forecast only)", 3, "only3-up", links)
            rows.append(measure("  the same, workers up", 3, "only3-up", links))
        finally:
            ray.shutdown()
    print("\nsummary")
    cold, warm2, cold2, warm3, cold3, only, _up = rows
    for row in rows:
        print(_line(row, cold))
    for measure in ("compute", "tasks"):
        print(
            f"{measure}: warm nights / the cold night: {warm2[measure] / cold[measure]:.3f}, "
            f"{warm3[measure] / cold[measure]:.3f}; forecast-only / cold: "
            f"{only[measure] / cold[measure]:.3f}"
        )
    print(
        f"OWA warm - cold, night 2: {warm2['owa'] - cold2['owa']:+.4f}, "
        f"night 3: {warm3['owa'] - cold3['owa']:+.4f}"
    )


def _line(row: dict, cold: dict) -> str:
    text = (
        f"{row['night']:24} wall {row['wall']:6.1f}s compute {row['compute']:6.1f}s "
        f"({row['compute'] / cold['compute']:.2f} of the cold night's), task seconds "
        f"{row['tasks']:6.1f}s ({row['tasks'] / cold['tasks']:.2f}) | sMAPE "
        f"{row['smape']:6.3f} MASE {row['mase']:6.3f} OWA {row['owa']:.4f}"
    )
    realised = row.get("realised")
    if realised:
        hand_smape, hand_mase = row["by_hand"]
        text += (
            f" | ledger on run {realised['run']}: sMAPE {realised['smape']:.4f} "
            f"MASE {realised['mase']:.4f} (by hand {hand_smape:.4f} {hand_mase:.4f}; "
            f"promised {realised['backtest_smape']:.4f} {realised['backtest_mase']:.4f}) "
            f"{realised['series']} series {realised['steps']} steps, {realised['jumped']} jumped"
        )
    return text


if __name__ == "__main__":
    main()
