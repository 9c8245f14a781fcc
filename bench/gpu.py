"""Series per second on one device, trained and forecast-only, for several stack sizes K.

    python bench/gpu.py                                            # CUDA if present, else CPU
    python bench/gpu.py --series 20000 --stacks 256,1024,2048,4096,8192     # one GPU
    python bench/gpu.py --series 256 --stacks 32,128,256 --threads 2        # 2 CPU cores

A synthetic table shaped like M4 Hourly (``bench/throughput.py``'s: 700 hourly points a
series, daily and weekly cycles, a trend, noise; 48 more held out), cut into stacks of K
series. Each stack goes through ``lstm_worker``'s task entry as a Ray task's shard would
(``forecast_batch``: the default model, one backtest model and one refit per series, all
K x 2 of them trained as one stack), then forecast-only from the refits it stored
(``forecast_stored``). No Ray: this is one task's device, not the cluster. One line per K:
series per second trained (backtest, refit and forecast), series per second
forecast-only, the peak device memory, the GPU's utilisation sampled every 0.2 s by
``nvidia-smi`` while the stacks trained, the shares of the training time spent in the
training loop and in the recursive forecasts after it (the device's work), and the rest,
the host's work (each series' view, windows, initial weights, scores), in ms a series,
and the forecasts' sMAPE on the held-out points
(the same on any device and any K, within float error). ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.throughput import HORIZON, SEASON, synthetic_m4
from lstm_worker import WorkerConfig, forecast_batch
from lstm_worker.batch import pick_device
from lstm_worker.fit import forecast_stored
from lstm_worker.metrics import smape

CPU_DEFAULTS = (128, "32,128")  # series, stacks: a few minutes on 2 cores
GPU_DEFAULTS = (20000, "1024,4096")  # a few minutes, if the host keeps up (bench/gpu.sh)


class Utilisation:
    """The GPU's utilisation in percent, sampled by ``nvidia-smi`` in the background."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Utilisation:
        if shutil.which("nvidia-smi") and torch.cuda.is_available():
            query = ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"]
            self._process = subprocess.Popen(
                ["nvidia-smi", *query], stdout=subprocess.PIPE, text=True
            )
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            first = line.split(",")[0].strip()  # one GPU: the process sees the one it was given
            if first.isdigit():
                self.samples.append(float(first))

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def summary(self) -> str:
        if not self.samples:
            return "n/a"
        return f"mean {np.mean(self.samples):.0f}%, max {np.max(self.samples):.0f}%"


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (device)"
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return f"{peak_kib / 2**20:.2f} GiB (the process's resident peak)"


def run_stack_size(
    k: int, ids: list[str], histories: list[np.ndarray], cfg: WorkerConfig, threads: int
) -> dict:
    """Every series, K at a time: trained, then forecast-only from its stored refit."""
    device = pick_device()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    chunks = [range(start, min(start + k, len(ids))) for start in range(0, len(ids), k)]
    forecasts, refits, loop_seconds, forecast_seconds = [], [], 0.0, 0.0
    with Utilisation() as utilisation:
        _synchronise(device)
        started = time.perf_counter()
        for chunk in chunks:
            results = forecast_batch(
                [ids[i] for i in chunk], [histories[i] for i in chunk], cfg, threads
            )
            forecasts.extend(r.forecast for r in results)
            refits.extend(next(m for m in r.models if m.window == -1) for r in results)
            # the device's work: the stack's training loop and forecasts, each series' share
            loop_seconds += sum(r.train_seconds for r in results)
            forecast_seconds += sum(r.forecast_seconds for r in results)
        _synchronise(device)
        trained = time.perf_counter() - started
    started = time.perf_counter()
    for chunk in chunks:
        forecast_stored(
            [histories[i] for i in chunk], [refits[i] for i in chunk], HORIZON, cfg, device
        )
    _synchronise(device)
    stored = time.perf_counter() - started
    return {
        "k": k,
        "series": len(ids),
        "train_series_per_second": len(ids) / trained,
        "forecast_only_series_per_second": len(ids) / stored,
        "peak_memory": _peak_memory(device),
        "gpu_utilisation": utilisation.summary(),
        "training_loop_share": loop_seconds / trained,
        "forecast_share": forecast_seconds / trained,
        "host_ms_per_series": 1000 * (trained - loop_seconds - forecast_seconds) / len(ids),
        "forecasts": np.stack(forecasts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cuda = torch.cuda.is_available()
    series, stacks = GPU_DEFAULTS if cuda else CPU_DEFAULTS
    parser.add_argument("--series", type=int, default=series, help="series in the table")
    parser.add_argument("--stacks", default=stacks, help="comma-separated K: series per stack")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the CPU's cores)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = synthetic_m4(args.series)
    ids = sorted(train["unique_id"].unique())
    histories = [g["y"].to_numpy() for _, g in train.groupby("unique_id", sort=True)]
    actual = np.stack([g["y"].to_numpy() for _, g in test.groupby("unique_id", sort=True)])
    cfg = WorkerConfig(  # what a job resolves for hourly data and this horizon: the default
        model={"lookback": 72},
        forecast={"horizon": HORIZON},
        season_length=SEASON,
        seasons=(SEASON, 7 * SEASON),
    )
    device = pick_device()
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {args.threads} threads"
    print(f"device: {name} ({device}); torch {torch.__version__}; {len(ids)} series x 700 points")
    rows = []
    for k in [int(k) for k in args.stacks.split(",")]:
        row = run_stack_size(k, ids, histories, cfg, args.threads)
        row["smape"] = smape(actual, row.pop("forecasts"))
        rows.append(row)
        print(
            f"K={k:5d}: trained {row['train_series_per_second']:9.1f} series/s, "
            f"forecast-only {row['forecast_only_series_per_second']:9.1f} series/s, "
            f"peak memory {row['peak_memory']}, GPU utilisation {row['gpu_utilisation']}, "
            f"training loop {row['training_loop_share']:.1%} of it, the forecasts "
            f"{row['forecast_share']:.1%} (the host's work "
            f"{row['host_ms_per_series']:.2f} ms a series), sMAPE {row['smape']:.3f}",
            flush=True,
        )
        if args.json:  # after every K: a run cut short still leaves what it measured
            args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    best = max(rows, key=lambda r: r["train_series_per_second"])
    print(
        f"best K={best['k']}: {best['train_series_per_second']:.1f} series/s trained, "
        f"{best['forecast_only_series_per_second']:.1f} forecast-only on {name}"
    )


if __name__ == "__main__":
    main()
