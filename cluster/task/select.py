"""Pick each series' forecast from its candidates on the backtest, and size its intervals.

The candidates of a series are its LSTM results, one per search setting, and, when the
spec allows a fallback, the naive and seasonal-naive baselines. The best LSTM setting by
the spec's metric (or the mean of the ``top_k`` best) is chosen; a baseline that beat it
on the backtest replaces it, with status ``fallback`` and its name in ``model``, never
silently. Interval half-widths come from the chosen candidate's backtest residuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cluster.data.table import SeriesTable
from cluster.plan import Placement
from cluster.search import SearchSpec, Setting
from lstm_worker import SeriesResult, WorkerConfig
from lstm_worker.intervals import conformal_widths
from lstm_worker.metrics import naive_forecast, score_windows, seasonal_naive_forecast
from lstm_worker.names import Baseline, Status

_BASELINES = {Baseline.SNAIVE: "seasonal naive", Baseline.NAIVE: "naive"}


@dataclass(frozen=True)
class Choice:
    """One series' outcome: what ``choose`` picked, then (``choose_shard``) what is written."""

    result: SeriesResult  # the chosen forecast, its backtest windows and their metrics
    model: str | None  # "lstm", "lstm mean of 3", "snaive", "naive"; None: no forecast
    setting: str = ""  # the search setting(s) behind an LSTM forecast
    index: int = 0  # the best of those settings
    settings: tuple[int, ...] = ()  # the indices of the LSTM settings it was chosen among
    mean_of_top: SeriesResult | None = None  # the mean of the top k LSTMs that competed (k > 1)
    placement: Placement = field(default_factory=Placement)
    widths: dict[int, np.ndarray] = field(default_factory=dict)  # level -> (horizon,)
    coverage: dict[int, float] = field(default_factory=dict)  # level -> share on the backtest
    candidates: list[tuple[str, list[dict[str, float]]]] = field(default_factory=list)


def _metric(result: SeriesResult, name: str, prefix: str = "") -> tuple[float, float]:
    """Rank by ``name``; MAE breaks ties, such as a MASE undefined for a flat history."""

    def finite(value: float) -> float:
        return value if np.isfinite(value) else np.inf

    return (
        finite(result.metrics.get(prefix + name, np.nan)),
        finite(result.metrics.get(prefix + "mae", np.nan)),
    )


def choose(
    values: np.ndarray,
    results: Sequence[tuple[Setting, SeriesResult]],
    search: SearchSpec,
    cfg: WorkerConfig,
    forced: int | None = None,
) -> Choice:
    """Pick one series' forecast among its settings' results (and the allowed baselines)."""
    metric = search.metric
    trained = [(s, r) for s, r in results if r.status == Status.OK]
    if not trained:  # failed, skipped or a short-series fallback: nothing to choose from
        first = results[0][1]
        model: str | None = Baseline.SNAIVE if first.status == Status.FALLBACK else None
        return Choice(first, model, index=results[0][0].index)
    ranked = sorted(trained, key=lambda pair: _metric(pair[1], metric))
    if forced is not None:
        ranked = [p for p in ranked if p[0].index == forced] or ranked
    top = ranked[: search.top_k]
    chosen, model, mean_of_top = top[0][1], "lstm", None
    if len(top) > 1:  # the mean of the k best, scored again as one forecast
        backtests = np.mean([r.backtest for _, r in top], axis=0)  # (W, H)
        mean, per_window = score_windows(values, backtests, chosen.cutoffs, cfg.season_length)
        chosen = replace(
            chosen,
            backtest=backtests,
            metrics=mean,
            window_metrics=per_window,
            forecast=np.mean([r.forecast for _, r in top], axis=0),
        )
        model, mean_of_top = f"lstm mean of {len(top)}", chosen
    setting, index = "; ".join(s.label() for s, _ in top), top[0][0].index
    among = tuple(s.index for s, _ in top)
    if search.fallback:
        best = min(search.fallback, key=lambda name: _metric(chosen, metric, f"{name}_"))
        if _metric(chosen, metric, f"{best}_") < _metric(chosen, metric):
            chosen, model = _baseline(values, chosen, best, cfg, metric), best
    return Choice(chosen, model, setting, index, among, mean_of_top)


def choose_shard(
    table: SeriesTable,
    outcomes: dict[int, list[SeriesResult]],
    settings: Sequence[Setting],
    search: SearchSpec,
    cfg: WorkerConfig,
    forced: int | None = None,
    placement: Placement | None = None,
) -> list[Choice]:
    """Choose for every series of ``table`` (one shard's); ``outcomes`` maps a setting's
    index to its results, one per series in table order."""
    choices = []
    for position, values in enumerate(table.values):
        per_setting = [(settings[i], outcomes[i][position]) for i in sorted(outcomes)]
        picked = choose(values, per_setting, search, cfg, forced)
        widths, coverage = (
            ({}, {}) if picked.model is None else interval_widths(values, picked.result, cfg)
        )
        candidates = [
            (f"lstm:{s.label()}", r.window_metrics) for s, r in per_setting if r.status == Status.OK
        ]
        if picked.mean_of_top is not None:
            k = min(search.top_k, sum(r.status == Status.OK for _, r in per_setting))
            candidates.append(
                (f"lstm mean of {k}:{picked.setting}", picked.mean_of_top.window_metrics)
            )
        scored = next((r.window_metrics for _, r in per_setting if r.window_metrics), [])
        for name in _BASELINES if scored else ():
            prefix = f"{name}_"
            candidates.append(
                (
                    f"{name}:",
                    [
                        {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}
                        for w in scored
                    ],
                )
            )
        choices.append(
            replace(
                picked,
                placement=placement or Placement(),
                widths=widths,
                coverage=coverage,
                candidates=candidates,
            )
        )
    return choices


def _baseline(
    values: np.ndarray, lost: SeriesResult, name: Baseline, cfg: WorkerConfig, metric: str
) -> SeriesResult:
    """The baseline's forecast and backtest in place of an LSTM that lost to it."""
    horizon, holdout, m = cfg.forecast.horizon, cfg.forecast.holdout_steps, cfg.season_length
    forecast_with = {
        Baseline.NAIVE: lambda h, n: naive_forecast(h, n),
        Baseline.SNAIVE: lambda h, n: seasonal_naive_forecast(h, n, m),
    }[name]
    cutoffs = lost.cutoffs
    backtests = np.stack([forecast_with(values[:cut], holdout) for cut in cutoffs])
    mean, per_window = score_windows(values, backtests, cutoffs, m)
    if not (np.isfinite(mean[metric]) and np.isfinite(lost.metrics[metric])):
        metric = "mae"  # what broke the tie
    reason = (
        f"{_BASELINES[name]} beat the LSTM on the backtest "
        f"({metric} {mean[metric]:.4g} < {lost.metrics[metric]:.4g})"
    )
    return replace(
        lost,
        status=Status.FALLBACK,
        reason=reason,
        metrics=mean,
        window_metrics=per_window,
        backtest=backtests,
        forecast=forecast_with(values, horizon),
    )


def interval_widths(
    values: np.ndarray, result: SeriesResult, cfg: WorkerConfig
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Half-widths per level over the horizon, and their leave-one-window-out coverage."""
    levels, horizon = cfg.forecast.levels, cfg.forecast.horizon
    if not levels or result.backtest.size == 0:
        return {}, {}
    holdout = cfg.forecast.holdout_steps
    actual = np.stack([values[cut : cut + holdout] for cut in result.cutoffs])  # (W, H)
    residuals = actual - result.backtest  # (W, H)
    by_step = conformal_widths(residuals, levels)
    # Steps past the holdout reuse the last step's width: no residual says more.
    widths = {
        level: np.resize(np.r_[w, np.full(max(0, horizon - len(w)), w[-1])], horizon)
        for level, w in by_step.items()
    }
    coverage = {}
    if len(residuals) > 1:  # each window judged by widths from the other windows
        hits: dict[int, list[np.ndarray]] = {level: [] for level in levels}
        for w in range(len(residuals)):
            others = conformal_widths(np.delete(residuals, w, axis=0), levels)
            for level in levels:
                hits[level].append(np.abs(residuals[w]) <= others[level])
        coverage = {level: float(np.mean(h)) for level, h in hits.items()}
    return widths, coverage
