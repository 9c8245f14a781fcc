"""Score 48-step forecasts on M4 Hourly exactly as the competition defines it.

sMAPE: mean over series and steps of 200|y - yhat| / (|y| + |yhat|).
MASE: per series, mean |y - yhat| over the mean |x_t - x_(t-24)| of that series'
training part, then averaged over series. OWA: the mean of both relative to Naive2
(sMAPE 18.383, MASE 2.395 on Hourly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

M4_HOURLY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m4_hourly"
NAIVE2_SMAPE, NAIVE2_MASE, SEASON = 18.383, 2.395, 24


def load_m4(root: Path = M4_HOURLY) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(root / "train.parquet"), pd.read_parquet(root / "test.parquet")


def score_m4(
    forecasts: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, y_hat: str = "y_hat"
) -> dict[str, float]:
    """``forecasts``: unique_id, ds, ``y_hat`` for every series and test step."""
    merged = test.merge(forecasts[["unique_id", "ds", y_hat]], on=["unique_id", "ds"], how="left")
    if merged[y_hat].isna().any():
        missing = merged.loc[merged[y_hat].isna(), "unique_id"].unique()
        raise ValueError(f"no forecast for {len(missing)} series, e.g. {list(missing[:3])}")
    y, f = merged["y"].to_numpy(), merged[y_hat].to_numpy()
    smape = float(np.mean(200 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
    scale = train.groupby("unique_id")["y"].apply(
        lambda s: np.mean(np.abs(s.to_numpy()[SEASON:] - s.to_numpy()[:-SEASON])))
    per_series = merged.assign(err=np.abs(y - f)).groupby("unique_id")["err"].mean()
    mase = float((per_series / scale.loc[per_series.index]).mean())
    return {"smape": smape, "mase": mase, "owa": owa(smape, mase), "series": len(per_series)}


def owa(smape: float, mase: float) -> float:
    return (smape / NAIVE2_SMAPE + mase / NAIVE2_MASE) / 2


def benchmark_file(name: str, test: pd.DataFrame, root: Path = M4_HOURLY) -> pd.DataFrame:
    """An official benchmark CSV (one row per series, 48 columns) in long format."""
    wide = pd.read_csv(root / name).rename(columns={"Unnamed: 0": "unique_id"})
    long = wide.melt(id_vars="unique_id", var_name="step", value_name="y_hat")
    long["step"] = long["step"].astype(int)
    starts = test.groupby("unique_id")["ds"].min()
    long["ds"] = long["unique_id"].map(starts) + pd.to_timedelta(long["step"], unit="h")
    return long
