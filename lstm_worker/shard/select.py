"""Pick each series' forecast from its candidates on the backtest, and size its intervals.

The candidates of a series are its LSTM results, one per search setting, and, when the
spec allows a fallback, the naive and seasonal-naive baselines. The best LSTM setting by
the spec's metric (or the mean of the ``top_k`` best) is chosen, mixed with the table
model's forecast at the job's table share (``table.share``: the LSTM's forecast), then
combined with the series' statistical forecast at the job's LSTM weight
(``forecast.lstm_weight``: its backtest and forecast alike, scored again, as
``combine`` does); a baseline that beat that on the backtest
replaces it, with status ``fallback`` and its name in ``model``, never silently. An LSTM
forecast that is not finite falls back to the statistical one. Interval half-widths
come from the chosen candidate's backtest residuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lstm_worker import SeriesResult, WorkerConfig
from lstm_worker.data.table import SeriesTable
from lstm_worker.intervals import interval_widths, pooled_widths
from lstm_worker.metrics import naive_forecast, score_windows, seasonal_naive_forecast
from lstm_worker.names import STATISTICAL, Baseline, Status
from lstm_worker.search import SearchSpec, Setting
from lstm_worker.shard.combine import combined, in_place_of
from lstm_worker.shard.messages import LSTM_ALONE, JobChoice, Placement
from lstm_worker.smoothing import Statistical
from lstm_worker.table.forecasts import TableForecast

_BASELINES = {Baseline.SNAIVE: "seasonal naive", Baseline.NAIVE: "naive"}


@dataclass(frozen=True)
class Choice:
    """One series' outcome: what ``choose`` picked, then (``choose_shard``) what is written."""

    result: SeriesResult  # the chosen forecast, its backtest windows and their metrics
    model: str | None  # "lstm", "lstm mean of 3", "statistical", "snaive", "naive"; None: none
    setting: str = ""  # the search setting(s) behind an LSTM forecast
    index: int = 0  # the best of those settings
    settings: tuple[int, ...] = ()  # the indices of the LSTM settings it was chosen among
    mean_of_top: SeriesResult | None = None  # the mean of the top k LSTMs that competed (k > 1)
    placement: Placement = field(default_factory=Placement)
    widths: dict[int, np.ndarray] = field(default_factory=dict)  # level -> (horizon,)
    coverage: dict[int, float] = field(default_factory=dict)  # level -> share on the backtest
    candidates: list[tuple[str, list[dict[str, float]]]] = field(default_factory=list)
    lstm: SeriesResult | None = None  # the LSTM's own forecast and backtest, before combining
    lstm_weight: float | None = None  # its share of the forecast; None: no LSTM forecast
    table_share: float | None = None  # the table model's share of the LSTM's; None: none
    parts: tuple[np.ndarray, np.ndarray] | None = None  # the LSTM's forecast's two parts,
    # (horizon,) each: the table model's and the series' own LSTM's (where it mixes them)


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
    job: JobChoice = LSTM_ALONE,
    statistical: Statistical | None = None,
    table: TableForecast | None = None,
) -> Choice:
    """Pick one series' forecast among its settings' results (and the allowed baselines),
    mixed with its ``table`` forecast at ``job.table_share``, then combined with its
    ``statistical`` forecast at ``job.lstm_weight``."""
    metric = search.metric
    lstm = lstm_choice(values, results, search, cfg, job.setting)
    if lstm.result.status != Status.OK:  # failed, skipped or a short series' fallback
        return lstm
    chosen, model = lstm.result, lstm.model
    weight: float | None = job.lstm_weight
    share = None if table is None else job.table_share
    parts = None if table is None else (table.forecast, chosen.forecast)
    if table is not None and job.table_share > 0:
        chosen = combined(values, in_place_of(chosen, table), chosen, job.table_share, cfg)
        model = "table" if job.table_share == 1 else f"table + {model}"
        lstm = replace(lstm, result=chosen, lstm=chosen)
    if not (np.isfinite(chosen.forecast).all() and np.isfinite(chosen.backtest).all()):
        if statistical is None:
            raise ValueError("an LSTM forecast that is not finite needs the statistical one")
        mean, per_window = score_windows(
            values, statistical.backtest, chosen.cutoffs, cfg.season_length
        )
        chosen = replace(
            chosen,
            status=Status.FALLBACK,
            reason="its LSTM forecast is not finite; forecast by the statistical models "
            "(damped trend and Theta)",
            metrics=mean,
            window_metrics=per_window,
            backtest=statistical.backtest,
            forecast=statistical.forecast,
            baseline=STATISTICAL,
        )
        return replace(lstm, result=chosen, model=STATISTICAL, lstm_weight=None)
    if statistical is not None and job.lstm_weight < 1.0:
        chosen = combined(values, chosen, statistical, job.lstm_weight, cfg)
    if search.fallback:
        best = min(search.fallback, key=lambda name: _metric(chosen, metric, f"{name}_"))
        if _metric(chosen, metric, f"{best}_") < _metric(chosen, metric):
            chosen, model, weight = _baseline(values, chosen, best, cfg, metric), best, None
    return replace(
        lstm, result=chosen, model=model, lstm_weight=weight, table_share=share, parts=parts
    )


def lstm_choice(
    values: np.ndarray,
    results: Sequence[tuple[Setting, SeriesResult]],
    search: SearchSpec,
    cfg: WorkerConfig,
    forced: int | None,
) -> Choice:
    """The LSTM forecast of one series: its best setting's, or the mean of the top k; when
    no setting trained, its first result as it is (a fallback's baseline named in model)."""
    trained = [(s, r) for s, r in results if r.status == Status.OK]
    if not trained:
        first = results[0][1]
        model = (first.baseline or None) if first.status == Status.FALLBACK else None
        return Choice(first, model, index=results[0][0].index)
    ranked = sorted(trained, key=lambda pair: _metric(pair[1], search.metric))
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
    return Choice(
        chosen,
        model,
        setting,
        index,
        among,
        mean_of_top,
        lstm=chosen,
        lstm_weight=1.0,
    )


@dataclass(frozen=True)
class ShardResults:
    """A shard's series and what was forecast for them, in table order: every search
    setting's results (by the setting's index), the statistical and the table model's."""

    table: SeriesTable
    outcomes: dict[int, list[SeriesResult]]
    settings: Sequence[Setting]
    statistical: Sequence[Statistical | None]
    tables: Sequence[TableForecast | None]

    def per_setting(self, position: int) -> list[tuple[Setting, SeriesResult]]:
        """One series' result under each setting."""
        return [(self.settings[i], self.outcomes[i][position]) for i in sorted(self.outcomes)]


def choose_shard(
    results: ShardResults,
    search: SearchSpec,
    cfg: WorkerConfig,
    job: JobChoice = LSTM_ALONE,
    placement: Placement | None = None,
) -> list[Choice]:
    """Choose for every series of a shard, at the choices made for the whole table."""
    table, statistical, tables = results.table, results.statistical, results.tables
    choices = []
    for position, values in enumerate(table.values):
        per_setting = results.per_setting(position)
        picked = choose(
            values, per_setting, search, cfg, job, statistical[position], tables[position]
        )
        widths, coverage = _intervals(values, picked, cfg, job)
        candidates = [
            (f"lstm:{s.label()}", r.window_metrics) for s, r in per_setting if r.status == Status.OK
        ]
        if picked.mean_of_top is not None:
            k = min(search.top_k, sum(r.status == Status.OK for _, r in per_setting))
            candidates.append(
                (f"lstm mean of {k}:{picked.setting}", picked.mean_of_top.window_metrics)
            )
        trained = next((r for _, r in per_setting if r.status == Status.OK), None)
        known = statistical[position]
        m = cfg.season_length
        if trained is not None and trained.cutoffs and known is not None:
            _, per_window = score_windows(values, known.backtest, trained.cutoffs, m)
            candidates.append((f"{STATISTICAL}:", per_window))
        mixed = tables[position]
        if trained is not None and trained.cutoffs and mixed is not None:
            _, per_window = score_windows(values, mixed.backtest, trained.cutoffs, m)
            candidates.append(("table:", per_window))
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


def _intervals(
    values: np.ndarray, picked: Choice, cfg: WorkerConfig, job: JobChoice
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """A forecast series' interval half-widths and their coverage of its backtest: the
    table's pooled quantiles times its scale, or, where the job has none, from its own
    residuals alone (``lstm_worker.intervals``)."""
    if picked.model is None:
        return {}, {}
    if job.quantiles:
        return pooled_widths(values, picked.result, job.quantiles, cfg)
    return interval_widths(values, picked.result, cfg)


def _baseline(
    values: np.ndarray, lost: SeriesResult, name: Baseline, cfg: WorkerConfig, metric: str
) -> SeriesResult:
    """The baseline's forecast and backtest in place of an LSTM that lost to it."""
    horizon, holdout, m = cfg.forecast.horizon, cfg.forecast.holdout_steps, cfg.season_length

    def forecast_with(history: np.ndarray, steps: int) -> np.ndarray:
        if name == Baseline.NAIVE:
            return naive_forecast(history, steps)
        return seasonal_naive_forecast(history, steps, m)

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
