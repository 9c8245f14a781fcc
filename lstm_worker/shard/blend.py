"""A shard's side of the choices made for the whole table: each (table share, LSTM
weight) pair's backtest metric summed over its series, and the scaled residuals the
intervals' pooled quantiles are taken from (``cluster.passes`` sums and chooses)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lstm_worker import WorkerConfig
from lstm_worker.intervals import interval_lag, scaled_residuals, window_scales
from lstm_worker.names import Status
from lstm_worker.search import SearchSpec
from lstm_worker.shard.combine import backtest_metric, blend_backtests
from lstm_worker.shard.messages import HEDGE, BlendSum
from lstm_worker.shard.select import ShardResults, lstm_choice


def blend_sums(
    results: ShardResults,
    search: SearchSpec,
    cfg: WorkerConfig,
    pairs: Sequence[tuple[float, float]],
    pooled: Callable[[object], bool],
) -> tuple[dict[tuple[float, float], BlendSum], dict[tuple[float, float], np.ndarray]]:
    """Per (table share, LSTM weight) pair, ``search.metric`` summed over the shard's
    series whose LSTM forecast is finite, each mixed and combined at that pair (every
    setting chosen per series), with its spreads around the even mix (``BlendSum``):
    what the job's choice of ``table.share`` and ``forecast.lstm_weight`` adds up
    (``cluster.passes.choose_blend``); and the scaled absolute residuals (rows, H) of
    the series ``pooled`` picks, at each pair, for the intervals' pooled quantiles."""
    sums = dict.fromkeys(pairs, BlendSum())
    kept: dict[tuple[float, float], list[np.ndarray]] = {pair: [] for pair in pairs}
    hedges = {(a, HEDGE) for a, _ in pairs} | {(HEDGE, w) for _, w in pairs}
    lag = interval_lag(cfg)
    table, statistical, tables = results.table, results.statistical, results.tables
    for position, values in enumerate(table.values):
        lstm = lstm_choice(values, results.per_setting(position), search, cfg, None).result
        known = statistical[position]
        if lstm.status != Status.OK or known is None or not np.isfinite(lstm.backtest).all():
            continue
        mixed = tables[position]
        if mixed is not None and not np.isfinite(mixed.backtest).all():
            mixed = None
        backtests = blend_backtests(lstm, mixed, known, set(pairs) | hedges)
        m, cuts = cfg.season_length, lstm.cutoffs
        scores = {
            p: backtest_metric(values, f, cuts, search.metric, m) for p, f in backtests.items()
        }
        if not all(np.isfinite(v) for v in scores.values()):
            continue
        for (share, weight), value in scores.items():
            if (share, weight) in sums:
                sums[(share, weight)] += BlendSum(
                    value,
                    1,
                    (value - scores[(share, HEDGE)]) ** 2,
                    (value - scores[(HEDGE, weight)]) ** 2,
                )
        if pooled(table.ids[position]):
            scales = window_scales(values, cuts, lag)
            for pair in pairs:
                kept[pair].append(scaled_residuals(values, backtests[pair], cuts, scales))
    horizon = cfg.forecast.holdout_steps
    residuals = {
        pair: np.concatenate(rows).astype(np.float32)
        if rows
        else np.zeros((0, horizon), np.float32)
        for pair, rows in kept.items()
    }
    return sums, residuals
