"""How the job scales with the number of series: wall time, series/s, peak memory.

    python bench/scale.py [--sizes 1000 10000 100000] [--points 200] [--embedded]

For each size it writes a synthetic hourly table (daily cycle, trend, noise; lengths
within 25% of ``--points``), runs ``runner run`` on it in a subprocess with a tiny model
and one epoch, and samples memory every 0.2 s: the driver's peak RSS and the peak of the
summed RSS of the Ray worker processes. The jobs join one local Ray started here first,
as they would join a running cluster; ``--embedded`` lets each job start its own (a
laptop run), which adds Ray's start-up, a fixed few seconds, to every job.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

TINY = {
    "model": {"lookback": 24, "hidden_size": 8},
    "train": {"epochs": 1, "batch_size": 32},
    "forecast": {"horizon": 24, "levels": []},
    "resources": {"num_cpus": 1, "series_per_task": 1000},
}


_CHUNK = 100_000  # series generated at once; larger tables are written chunk by chunk


def synthetic_table(n_series: int, points: int, path: Path, seed: int = 0) -> int:
    """Write ``n_series`` series to ``path``, ids in order; return the row count."""
    rng = np.random.default_rng(seed)
    rows, writer = 0, None
    try:
        for first in range(0, n_series, _CHUNK):
            table = pa.Table.from_pandas(
                _series(rng, first, min(_CHUNK, n_series - first), points), preserve_index=False
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=1_000_000)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _series(rng: np.random.Generator, first: int, n: int, points: int) -> pd.DataFrame:
    """Series ``first`` to ``first + n``: a daily cycle, a trend and noise on a level."""
    lengths = rng.integers(int(points * 0.75), int(points * 1.25) + 1, n)
    ids = np.repeat(np.arange(n), lengths)
    step = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    level = rng.uniform(10, 1000, n)[ids]
    y = level * (
        1 + 0.3 * np.sin(2 * np.pi * step / 24) + 0.0005 * step + rng.normal(0, 0.05, len(ids))
    )
    return pd.DataFrame(
        {
            "unique_id": np.array([f"S{i:07d}" for i in range(first, first + n)])[ids],
            "ds": pd.Timestamp("2024-01-01") + pd.to_timedelta(step, unit="h"),
            "y": y,
        }
    )


def _rss(pid: int | str) -> int:
    """Resident memory of a process in bytes (0 once it is gone); Linux /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _ray_worker_pids() -> list[str]:
    """The Ray worker processes on this machine (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if "default_worker.py" in line or line.startswith("ray::"):
            pids.append(proc.name)
    return pids


def run_size(n_series: int, points: int, root: Path, address: str | None) -> dict[str, float]:
    data, out = root / f"series_{n_series}_{points}.parquet", root / f"out_{n_series}"
    rows = (
        pq.read_metadata(data).num_rows
        if data.exists()  # same seed: same table
        else synthetic_table(n_series, points, data)
    )
    spec = root / f"job_{n_series}.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                **TINY,
                "name": f"scale-{n_series}",
                "input": {"path": str(data)},
                "output": {"path": str(out)},
            }
        )
    )
    runner = Path(sys.executable).with_name("runner")
    started = time.perf_counter()
    command = [str(runner), "run", str(spec), "--no-report", "--overwrite"]
    driver = subprocess.Popen(
        command + (["--address", address] if address else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver_peak = workers_peak = 0
    workers, listed = [], 0.0
    while driver.poll() is None:  # a /proc scan costs CPU: list the workers once a second
        if time.monotonic() - listed > 1.0:
            workers, listed = _ray_worker_pids(), time.monotonic()
        driver_peak = max(driver_peak, _rss(driver.pid))
        workers_peak = max(workers_peak, sum(_rss(pid) for pid in workers))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if driver.returncode != 0:
        raise SystemExit(f"runner run failed for {n_series} series (exit {driver.returncode})")
    timings = json.loads((out / "manifest.json").read_text())["timings"]
    return {
        "series": n_series,
        "rows": rows,
        "wall_s": wall,
        "series_per_s": n_series / wall,
        "compute_series_per_s": n_series / timings["compute_seconds"],
        **timings,
        "driver_peak_mb": driver_peak / 2**20,
        "workers_peak_mb": workers_peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="where tables and outputs go")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="each job starts its own local Ray instead of joining one",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds over the sizes; sizes are compared within a round, since "
        "a shared machine's speed drifts between runs",
    )
    args = parser.parse_args()
    address = None
    if not args.embedded:
        import ray

        ray.init(include_dashboard=False, logging_level="ERROR")
        address = ray.get_runtime_context().gcs_address
    with tempfile.TemporaryDirectory(prefix="runner-scale-") as temp:
        root = args.dir or Path(temp)
        root.mkdir(parents=True, exist_ok=True)
        print(
            f"{'series':>8}{'rows':>12}{'wall s':>9}{'series/s':>10}{'plan s':>8}"
            f"{'ray s':>7}{'tasks s':>9}{'compact s':>10}{'driver MB':>11}{'workers MB':>12}",
            flush=True,
        )
        rounds: list[dict[int, dict[str, float]]] = []
        for _ in range(args.repeat):
            rounds.append({})
            for size in args.sizes:
                time.sleep(5)  # let the last job's workers exit
                rounds[-1][size] = run_size(size, args.points, root, address)
                _print_row(rounds[-1][size])
        largest = max(args.sizes)
        for size in sorted(set(args.sizes) - {largest}):
            ratios = [r[size]["series_per_s"] / r[largest]["series_per_s"] for r in rounds]
            print(
                f"series/s at {size} over series/s at {largest}, per round: "
                f"{', '.join(f'{x:.2f}' for x in ratios)}; median {np.median(ratios):.2f}"
            )


def _print_row(r: dict[str, float]) -> None:
    print(
        f"{r['series']:>8}{r['rows']:>12}{r['wall_s']:>9.1f}{r['series_per_s']:>10.1f}"
        f"{r['plan_seconds']:>8.1f}{r['ray_start_seconds']:>7.1f}{r['compute_seconds']:>9.1f}"
        f"{r['compact_seconds']:>10.1f}{r['driver_peak_mb']:>11.0f}"
        f"{r['workers_peak_mb']:>12.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
