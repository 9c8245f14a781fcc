"""Series per second: a tutorial per-series LSTM loop vs runner's stacked trainer, side by side.

Both fit one model per series on the training part of the same sample of M4 Hourly
series (a synthetic stand-in when ``../shared`` is absent), forecast 48 steps
recursively, and are scored on the 48-step test exactly as the competition does.

    python bench/throughput.py [--series 32] [--threads 2] [--synthetic N] [--device cuda]

(a) tutorial: one ``nn.LSTM(1, 64)`` + Linear per series, min-max scaling, sliding
    windows of 48 values with one target each, batch 128, 20 epochs, Adam 1e-3, L1 loss,
    one model after another.
(b) runner: ``lstm_worker``'s stacked trainer with its default settings, all sampled
    series as one stack.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scoring import M4_HOURLY, score_owa
from lstm_worker import WorkerConfig
from lstm_worker.batch import series_seed
from lstm_worker.fit import forecast_many

HORIZON, SEASON = 48, 24


def tutorial_forecast(values: np.ndarray, seed: int) -> np.ndarray:
    """The textbook recipe, as blog posts write it, for one series."""
    torch.manual_seed(seed)
    low, high = values.min(), values.max()
    scaled = ((values - low) / (high - low or 1.0)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(scaled, 49)
    x = torch.from_numpy(windows[:, :48].copy()).unsqueeze(-1)  # (N, 48, 1)
    y = torch.from_numpy(windows[:, 48].copy()).unsqueeze(-1)  # (N, 1)
    lstm, head = nn.LSTM(1, 64, batch_first=True), nn.Linear(64, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    for _ in range(20):
        for batch in torch.randperm(len(x)).split(128):
            out, _ = lstm(x[batch])
            loss = nn.functional.l1_loss(head(out[:, -1]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    window = torch.from_numpy(scaled[-48:].copy()).view(1, 48, 1)
    predictions = []
    with torch.no_grad():
        for _ in range(HORIZON):  # recursive: the prediction becomes the next input
            out, _ = lstm(window)
            step = head(out[:, -1])  # (1, 1)
            predictions.append(step.item())
            window = torch.cat([window[:, 1:], step.view(1, 1, 1)], dim=1)
    return np.asarray(predictions) * (high - low or 1.0) + low


def synthetic_m4(n_series: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hourly series shaped like M4's: daily and weekly cycles, trend, noise; 700 + 48."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        t = np.arange(748)
        level = rng.uniform(20, 2000)
        y = level * (
            1
            + 0.3 * np.sin(2 * np.pi * (t + rng.integers(24)) / 24)
            + 0.1 * np.sin(2 * np.pi * t / 168)
            + 0.0003 * t
            + rng.normal(0, 0.05, len(t))
        )
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": f"S{i}",
                    "ds": pd.date_range("2000-01-01", periods=len(t), freq="h"),
                    "y": y,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    last = frame.groupby("unique_id")["ds"].transform("max")
    cut = last - pd.Timedelta(hours=HORIZON)
    return frame[frame["ds"] <= cut], frame[frame["ds"] > cut]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=32, help="sample size for both")
    parser.add_argument(
        "--runner-series",
        type=int,
        default=None,
        help="also time runner alone on this many series (throughput at scale)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic series instead of M4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tutorial", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.synthetic or not M4_HOURLY.exists():
        train, test = synthetic_m4(args.synthetic or 414, args.seed)
        source = f"synthetic ({train['unique_id'].nunique()} series)"
    else:
        train, test = M4_HOURLY.load()
        source = f"M4 Hourly ({M4_HOURLY.root})"
    histories = {uid: g["y"].to_numpy() for uid, g in train.groupby("unique_id", sort=True)}
    ids = sorted(histories)
    rng = np.random.default_rng(args.seed)
    sample = sorted(rng.choice(ids, size=min(args.series, len(ids)), replace=False).tolist())
    cfg = WorkerConfig(  # what a job resolves for hourly data and this horizon
        model={"lookback": 72},
        forecast={"horizon": HORIZON},
        season_length=SEASON,
        seasons=(SEASON, 7 * SEASON),
        seed=args.seed,
    )
    print(
        f"data: {source}; sample: {len(sample)} series; threads: {args.threads}; device: {device}"
    )
    print(
        f"runner defaults: model {cfg.model.model_dump()}\n                 "
        f"train {cfg.train.model_dump()}"
    )

    def frame_of(uids: list[str], forecasts: np.ndarray) -> pd.DataFrame:
        parts = []
        for uid, values in zip(uids, forecasts, strict=True):
            start = test.loc[test["unique_id"] == uid, "ds"].min()
            parts.append(
                pd.DataFrame(
                    {
                        "unique_id": uid,
                        "y_hat": values,
                        "ds": pd.date_range(start, periods=HORIZON, freq="h"),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def run_runner(uids: list[str]) -> tuple[float, np.ndarray]:
        seeds = [series_seed(args.seed, uid) for uid in uids]
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        stack = forecast_many([histories[u] for u in uids], HORIZON, cfg, seeds, device)
        predicted = stack.forecasts
        return time.perf_counter() - started, predicted

    rows = []
    sub_test = test[test["unique_id"].isin(sample)]
    sub_train = train[train["unique_id"].isin(sample)]
    snaive = np.stack([np.resize(histories[u][-SEASON:], HORIZON) for u in sample])
    rows.append(
        ("seasonal naive", float("nan"), score_owa(frame_of(sample, snaive), sub_train, sub_test))
    )
    if not args.skip_tutorial:
        started = time.perf_counter()
        tutorial = np.stack([tutorial_forecast(histories[u], args.seed) for u in sample])
        seconds = time.perf_counter() - started
        rows.append(
            (
                "tutorial loop",
                len(sample) / seconds,
                score_owa(frame_of(sample, tutorial), sub_train, sub_test),
            )
        )
    seconds, predicted = run_runner(sample)
    rows.append(
        (
            "runner stacked trainer",
            len(sample) / seconds,
            score_owa(frame_of(sample, predicted), sub_train, sub_test),
        )
    )
    if args.runner_series:
        uids = ids[: args.runner_series]
        seconds, predicted = run_runner(uids)
        scores = score_owa(
            frame_of(uids, predicted),
            train[train["unique_id"].isin(uids)],
            test[test["unique_id"].isin(uids)],
        )
        rows.append((f"runner, {len(uids)} series", len(uids) / seconds, scores))

    print(f"\n{'':24}{'series/s':>10}{'sMAPE':>9}{'MASE':>8}{'OWA':>8}")
    for name, rate, s in rows:
        print(f"{name:24}{rate:10.2f}{s['smape']:9.3f}{s['mase']:8.3f}{s['owa']:8.3f}")
    rates = {name: rate for name, rate, _ in rows}
    if "tutorial loop" in rates:
        print(
            f"\nrunner / tutorial series/s: "
            f"{rates['runner stacked trainer'] / rates['tutorial loop']:.1f}x"
        )


if __name__ == "__main__":
    main()
