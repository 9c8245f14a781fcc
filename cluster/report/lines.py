"""The run summary as text: the lines ``runner run`` and ``runner forecast`` end with,
and the phrases the report page shares with them."""

from __future__ import annotations

import numpy as np

from cluster.report.summary import RunSummary


def fmt(value: float | None, digits: int) -> str:
    """A number as the report and the CLI print it; missing or undefined is 'n/a'."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_share(share: float) -> str:
    return "n/a" if not np.isfinite(share) else f"{share:.0%}"


def _counts_text(summary: RunSummary) -> str:
    return ", ".join(f"{n} {status}" for status, n in summary.counts.items())


def weight_text(weight: float | None, share: float | None = None) -> str:
    """The combination an ok series' forecast is, as the summary and the report say it:
    the LSTM's weight, and the table model's share of the LSTM's forecast."""
    if weight is None:
        text = "LSTM weight n/a"
    elif weight == 1:
        text = "LSTM weight 1 (the LSTM alone)"
    elif weight == 0:
        text = "LSTM weight 0 (the statistical models alone: damped trend, Theta)"
    else:
        rest = 1 - weight
        text = f"LSTM weight {weight:.2f}, the statistical models (damped trend, Theta) {rest:.2f}"
    if share is None or share == 0 or weight == 0:  # the series' own LSTM, or none
        return text
    if share == 1:
        return text + "; the LSTM's is the table model's"
    return text + f"; of the LSTM's, the table model {share:.2f}, the series' own {1 - share:.2f}"


def devices_text(summary: RunSummary) -> str:
    kinds = ", ".join(summary.devices) or "unknown"
    where = f" on {summary.nodes} node{'s' * (summary.nodes != 1)}" if summary.nodes else ""
    return kinds + where + (f", {summary.gpus} GPUs" if summary.gpus else "")


def coverage_text(coverage: dict[int, float] | dict[str, float]) -> str:
    """Interval coverage against the nominal level: '80%: 78%, 95%: 93%'; 'n/a' for none."""
    return ", ".join(f"{level}%: {fmt_share(share)}" for level, share in coverage.items()) or "n/a"


def summary_lines(summary: RunSummary) -> list[str]:
    """The lines ``runner run`` ends with: counts, accuracy, devices, and the ledger's
    scores when the run scored a previous one."""
    forecast, snaive = summary.accuracy["forecast"], summary.accuracy["seasonal naive"]
    scores = summary.ledger
    ledger = (
        [
            f"ledger (run {scores['run']}'s forecasts, {scores['series']} series, "
            f"{scores['steps']} steps): realised sMAPE {fmt(scores['smape'], 2)} MASE "
            f"{fmt(scores['mase'], 3)} | its backtest promised sMAPE "
            f"{fmt(scores['backtest_smape'], 2)} MASE {fmt(scores['backtest_mase'], 3)} | "
            f"intervals covered {coverage_text(scores.get('coverage', {}))} | "
            f"{scores['jumped']} series jumped"
        ]
        if scores
        else []
    )
    backtest = "backtest" if not summary.promised_by else "the stored models' backtest"
    return [
        f"series: {_counts_text(summary)} in {fmt(summary.wall_seconds, 1)}s "
        f"({fmt(summary.series_per_second, 1)} series/s)",
        f"accuracy ({backtest}, mean): forecast sMAPE {fmt(forecast.smape_mean, 2)} "
        f"MASE {fmt(forecast.mase_mean, 3)} | seasonal naive sMAPE "
        f"{fmt(snaive.smape_mean, 2)} MASE {fmt(snaive.mase_mean, 3)} | "
        f"it beat seasonal naive on {fmt_share(summary.beat_snaive)} of series | "
        f"{weight_text(summary.lstm_weight, summary.table_share)}",
        f"intervals ({backtest}): covered {coverage_text(summary.coverage)}",
        f"devices: {devices_text(summary)}",
        *ledger,
    ]
