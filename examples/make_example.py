"""Writes examples/example.parquet: the small hourly table that jobs/example.yaml runs on.

24 series of 240 to 480 hourly points: a daily cycle, a weekly swell, a slow trend and
noise, at different levels. Deterministic: the same file every time.
"""

from pathlib import Path

import numpy as np
import pandas as pd


def make_example(n_series: int = 24, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        n = int(rng.integers(240, 481))
        t = np.arange(n)
        level = rng.uniform(50, 500)
        y = (
            level
            + 0.25 * level * np.sin(2 * np.pi * (t + rng.integers(24)) / 24)
            + 0.08 * level * np.sin(2 * np.pi * t / 168)
            + rng.normal(0, 0.0005, 1)[0] * level * t
            + rng.normal(0, 0.04 * level, n)
        )
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"S{i:02d}",
                    "ds": pd.date_range("2026-01-01", periods=n, freq="h"),
                    "y": y.round(3),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


if __name__ == "__main__":
    path = Path(__file__).with_name("example.parquet")
    make_example().to_parquet(path, index=False)
    print(f"wrote {path}")
