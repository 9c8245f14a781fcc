"""The benchmark sets in ``../shared/data`` and how their competitions score a forecast.

sMAPE: mean over series and steps of 200|y - yhat| / (|y| + |yhat|).
MASE: per series, mean |y - yhat| over the holdout divided by the mean |x_t - x_(t-m)| of
that series' training part, then averaged over series (``m`` is the set's scoring lag).
OWA (M4 sets): the mean of sMAPE and MASE, each relative to Naive2's.
A series with no forecast is scored as if it forecast 0, never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_worker.season import season_profile, seasonal_indices

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class BenchSet:
    """One benchmark set: where it lies, its horizon and how it is scored."""

    name: str  # the folder under ../shared/data
    title: str
    horizon: int
    scale_lag: int  # MASE's m, as the competition scores the set
    season: int  # the calendar season (seasonal naive's period)
    naive2_season: int  # the period Naive2 deseasonalises with (1: none, as M4 Weekly)
    owa: bool  # scored with OWA (the M4 sets)

    @property
    def root(self) -> Path:
        return DATA / self.name

    def exists(self) -> bool:
        return (self.root / "train.parquet").exists()

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return (
            pd.read_parquet(self.root / "train.parquet"),
            pd.read_parquet(self.root / "test.parquet"),
        )

    def load_split(self, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``test``: the official train and test parts. ``backtest``: the train part's last
        ``horizon`` points of each series held out as a test, the rest as training (the
        split every default is chosen on; the official test part is never read)."""
        if split == "test":
            return self.load()
        train = pd.read_parquet(self.root / "train.parquet")
        position = train.groupby("unique_id", sort=False).cumcount(ascending=False)
        held = position < self.horizon
        return train[~held].reset_index(drop=True), train[held].reset_index(drop=True)


SETS = {
    s.name: s
    for s in (
        BenchSet("m4_hourly", "M4 Hourly", 48, 24, 24, 24, owa=True),
        BenchSet("m3_monthly", "M3 Monthly", 18, 12, 12, 12, owa=False),
        BenchSet("m4_weekly", "M4 Weekly", 13, 1, 52, 1, owa=True),
        BenchSet("m3_yearly", "M3 Yearly", 6, 1, 1, 1, owa=False),
        BenchSet("m1_quarterly", "M1 Quarterly", 8, 4, 4, 4, owa=False),
        BenchSet("tourism_yearly", "Tourism Yearly", 4, 1, 1, 1, owa=False),
        BenchSet("web_traffic_daily", "Web traffic, daily", 14, 7, 7, 7, owa=False),
    )
}
M4_HOURLY = SETS["m4_hourly"]


def _arrays(frame: pd.DataFrame, column: str = "y") -> dict[str, np.ndarray]:
    frame = frame.sort_values(["unique_id", "ds"], kind="stable")
    return {str(k): g.to_numpy() for k, g in frame.groupby("unique_id", sort=False)[column]}


def score(
    forecasts: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    bench: BenchSet,
    y_hat: str = "y_hat",
) -> dict[str, float]:
    """sMAPE and MASE of ``forecasts`` (unique_id, ds, ``y_hat``) on ``test``; a missing
    forecast counts as 0. ``missing`` says how many series had none."""
    merged = test.merge(forecasts[["unique_id", "ds", y_hat]], on=["unique_id", "ds"], how="left")
    missing = int(merged.groupby("unique_id")[y_hat].apply(lambda s: s.isna().any()).sum())
    merged[y_hat] = merged[y_hat].fillna(0.0)
    history = _arrays(train)
    smapes, mases = [], []
    for series_id, rows in merged.groupby("unique_id", sort=False):
        y, f = rows["y"].to_numpy(), rows[y_hat].to_numpy()
        denom = np.abs(y) + np.abs(f)
        ratio = np.divide(2 * np.abs(y - f), denom, out=np.zeros_like(y), where=denom > 0)
        smapes.append(100 * ratio.mean())
        mases.append(np.mean(np.abs(y - f)) / _scale(history[str(series_id)], bench.scale_lag))
    return {
        "smape": float(np.mean(smapes)),
        "mase": float(np.mean(mases)),
        "series": len(smapes),
        "missing": missing,
    }


def interval_scores(
    forecasts: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, bench: BenchSet
) -> dict[str, float]:
    """Coverage of each interval level ``forecasts`` holds (``y_lo_L``, ``y_hi_L``: the
    share of actual values inside), and M4's MSIS at 95%: per series, the mean over the
    horizon of ``(hi - lo) + 40 (lo - y)+ + 40 (y - hi)+`` over the same in-sample scale
    as MASE's, averaged over series. A series with no interval counts as uncovered (and
    is left out of MSIS, with ``msis_missing`` saying how many)."""
    levels = sorted(int(c[len("y_lo_") :]) for c in forecasts.columns if c.startswith("y_lo_"))
    if not levels:
        return {}
    columns = [c for level in levels for c in (f"y_lo_{level}", f"y_hi_{level}")]
    merged = test.merge(
        forecasts[["unique_id", "ds", *columns]], on=["unique_id", "ds"], how="left"
    )
    y = merged["y"].to_numpy()
    found: dict[str, float] = {}
    for level in levels:
        lo, hi = merged[f"y_lo_{level}"].to_numpy(), merged[f"y_hi_{level}"].to_numpy()
        found[f"coverage_{level}"] = float(np.mean((y >= lo) & (y <= hi)))  # NaN: outside
    if 95 in levels:
        history, scores, missing = _arrays(train), [], 0
        for series_id, rows in merged.groupby("unique_id", sort=False):
            lo, hi, actual = (rows[c].to_numpy() for c in ("y_lo_95", "y_hi_95", "y"))
            if not np.isfinite(lo).all() or not np.isfinite(hi).all():
                missing += 1
                continue
            penalty = (
                (hi - lo) + 40 * np.clip(lo - actual, 0, None) + 40 * np.clip(actual - hi, 0, None)
            )
            scores.append(penalty.mean() / _scale(history[str(series_id)], bench.scale_lag))
        found["msis"] = float(np.mean(scores)) if scores else float("nan")
        found["msis_missing"] = missing
    return found


def _scale(past: np.ndarray, m: int) -> float:
    """MASE's denominator: the mean absolute lag-``m`` difference of the training part, or
    the lag-1 one where the part holds no full season (a few M1 Quarterly series on the
    backtest split; never on a test part)."""
    lag = m if len(past) > m else 1
    return float(np.mean(np.abs(past[lag:] - past[:-lag])))


def owa(scores: dict[str, float], naive2: dict[str, float]) -> float:
    return (scores["smape"] / naive2["smape"] + scores["mase"] / naive2["mase"]) / 2


def long_frame(forecast: dict[str, np.ndarray], test: pd.DataFrame) -> pd.DataFrame:
    """Per-series forecast arrays on the test part's timestamps."""
    frames = []
    for series_id, rows in test.sort_values(["unique_id", "ds"]).groupby("unique_id"):
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": series_id,
                    "ds": rows["ds"].to_numpy(),
                    "y_hat": forecast[str(series_id)][: len(rows)],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def baselines(train: pd.DataFrame, test: pd.DataFrame, bench: BenchSet) -> dict[str, pd.DataFrame]:
    """Naive, seasonal naive and Naive2 (naive on M4's deseasonalised series) forecasts."""
    h, m, m2 = bench.horizon, bench.season, bench.naive2_season
    naive, snaive, naive2 = {}, {}, {}
    for series_id, y in _arrays(train).items():
        naive[series_id] = np.full(h, y[-1])
        snaive[series_id] = np.resize(y[-m:], h) if len(y) >= m else np.full(h, y[-1])
        indices = seasonal_indices(y, m2) if m2 > 1 else np.ones(1)
        level = y[-1] / season_profile(indices, len(y) - 1, 1)[0]
        naive2[series_id] = level * season_profile(indices, len(y), h)
    return {
        "naive": long_frame(naive, test),
        "seasonal naive": long_frame(snaive, test),
        "Naive2": long_frame(naive2, test),
    }


def benchmark_file(name: str, test: pd.DataFrame, root: Path = M4_HOURLY.root) -> pd.DataFrame:
    """An official M4 Hourly benchmark CSV (one row per series, 48 columns), long format."""
    wide = pd.read_csv(root / name).rename(columns={"Unnamed: 0": "unique_id"})
    long = wide.melt(id_vars="unique_id", var_name="step", value_name="y_hat")
    long["step"] = long["step"].astype(int)
    starts = test.groupby("unique_id")["ds"].min()
    long["ds"] = long["unique_id"].map(starts) + pd.to_timedelta(long["step"], unit="h")
    return long


def score_owa(
    forecasts: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    bench: BenchSet = M4_HOURLY,
) -> dict[str, float]:
    """``score`` plus OWA against Naive2 computed on the same series (so a subset of a set
    is judged against Naive2 on that subset)."""
    scores = score(forecasts, train, test, bench)
    scores["owa"] = owa(scores, score(baselines(train, test, bench)["Naive2"], train, test, bench))
    return scores
