"""The report's figures, drawn on ``matplotlib.figure.Figure`` and returned as PNG bytes.

``Figure`` with its own Agg canvas, never ``pyplot``: no global state, no display needed,
safe to call from a driver that is also running Ray. Only the few plotted series are read,
with Parquet filters, so a report on a million-series job stays quick.
"""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lstm_worker.data.layout import BACKTEST, FORECASTS
from lstm_worker.data.place import Place, filesystem, read_series

_DPI = 100
_HISTORY_POINTS = 500  # the tail of a long history drawn before the holdout
_INTERVAL = re.compile(r"y_lo_(\d+(?:\.\d+)?)$")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def mase_distribution(lstm: np.ndarray, snaive: np.ndarray) -> bytes:
    """Histogram of per-series MASE for both models, and the forecast against seasonal
    naive.

    ``lstm`` (the ok series' forecasts: their LSTM's, combined at the job's LSTM weight)
    and ``snaive`` are aligned per series; NaN where undefined. Points below the diagonal
    are series where the forecast was the better one.
    """
    figure = Figure(figsize=(11, 4))
    hist_ax, scatter_ax = figure.subplots(1, 2)
    both = np.isfinite(lstm) & np.isfinite(snaive)
    values = np.concatenate([lstm[np.isfinite(lstm)], snaive[np.isfinite(snaive)]])
    if len(values) == 0:
        _empty(hist_ax, "no MASE values (no ok series, or MASE undefined)")
        _empty(scatter_ax, "nothing to compare")
        return _png(figure)
    top = float(np.quantile(values, 0.99)) or 1.0  # clip the far tail so the bulk stays readable
    bins = np.linspace(0.0, top * 1.05, 30)
    for data, label in ((lstm, "forecast"), (snaive, "seasonal naive")):
        finite = data[np.isfinite(data)]
        hist_ax.hist(
            np.clip(finite, 0, bins[-1]),
            bins=bins,
            histtype="step",
            linewidth=1.8,
            label=f"{label} (median {np.median(finite):.3f})" if len(finite) else label,
        )
    hist_ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
    hist_ax.set(
        xlabel="MASE (backtest; tail clipped at the 99th percentile)",
        ylabel="series",
        title="Per-series MASE",
    )
    hist_ax.legend(frameon=False)
    if both.any():
        scatter_ax.scatter(snaive[both], lstm[both], s=12, alpha=0.6)
        limit = max(float(np.nanmax(snaive[both])), float(np.nanmax(lstm[both]))) * 1.05
        scatter_ax.plot([0, limit], [0, limit], color="0.5", linestyle="--", linewidth=1)
        scatter_ax.set(xlim=(0, limit), ylim=(0, limit))
        scatter_ax.set(
            xlabel="seasonal naive MASE",
            ylabel="forecast MASE",
            title="forecast vs seasonal naive (below the line: forecast better)",
        )
    else:
        _empty(scatter_ax, "no series with both MASE values")
    return _png(figure)


def interval_levels(frame: pd.DataFrame) -> list[str]:
    """Levels with both ``y_lo_<level>`` and ``y_hi_<level>`` columns, widest first."""
    levels = [m.group(1) for c in frame.columns if (m := _INTERVAL.match(str(c)))]
    return sorted((lv for lv in levels if f"y_hi_{lv}" in frame.columns), key=float, reverse=True)


def _bands(ax: Axes, frame: pd.DataFrame, time_col: str, color: str, label: bool) -> None:
    levels = interval_levels(frame)
    for rank, level in enumerate(levels):  # widest first, palest
        ax.fill_between(
            frame[time_col],
            frame[f"y_lo_{level}"],
            frame[f"y_hi_{level}"],
            color=color,
            alpha=0.15 + 0.15 * rank / len(levels),
            linewidth=0,
            label=f"{level}% interval" if label else None,
        )


def draw_series(
    title: str,
    history: pd.DataFrame | None,
    backtest: pd.DataFrame,
    forecast: pd.DataFrame,
    cols: tuple[str, str],
    note: str = "",
) -> Figure:
    """History, holdout actuals, backtest forecast and future forecast of one series.

    ``cols`` is (time_col, target_col); ``history`` has both, ``backtest`` has both plus
    ``y_hat``, ``forecast`` has time and ``y_hat`` (and interval columns when present).
    The history is drawn up to the backtest's cutoff so the holdout stands out.
    """
    time_col, target_col = cols
    figure = Figure(figsize=(11, 3.6))
    ax = figure.subplots()
    if history is not None and len(history):
        shown = history
        if len(backtest):
            shown = history[history[time_col] < backtest[time_col].min()]
        if len(shown) > _HISTORY_POINTS:
            note = "; ".join(
                n
                for n in (f"last {_HISTORY_POINTS} of {len(shown)} history points shown", note)
                if n
            )
            shown = shown.iloc[-_HISTORY_POINTS:]
        ax.plot(shown[time_col], shown[target_col], color="C0", linewidth=1.2, label="history")
    if len(backtest):
        _bands(ax, backtest, time_col, "C2", label=False)
        ax.plot(
            backtest[time_col],
            backtest[target_col],
            color="black",
            linewidth=1.2,
            marker=".",
            markersize=4,
            label="holdout (actual)",
        )
        ax.plot(
            backtest[time_col],
            backtest["y_hat"],
            color="C2",
            linestyle="--",
            linewidth=1.5,
            label="backtest forecast",
        )
    if len(forecast):
        _bands(ax, forecast, time_col, "C1", label=True)
        ax.plot(forecast[time_col], forecast["y_hat"], color="C1", linewidth=1.5, label="forecast")
        if "cutoff" in forecast.columns:  # the end of the data the forecast starts from
            ax.axvline(forecast["cutoff"].iloc[0], color="0.6", linestyle=":", linewidth=1)
    if not ax.lines:
        _empty(ax, "nothing to draw: no history, backtest or forecast for this series")
    else:
        ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_ylabel(target_col, parse_math=False)  # ids and names may hold '$': plain text
    text = "\n".join([*textwrap.wrap(title, 120), *textwrap.wrap(note, 120)])
    ax.set_title(text, fontsize="medium", parse_math=False)
    figure.autofmt_xdate()
    return figure


def _plain_times(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Datetimes matplotlib draws as is: dates become timestamps, time zones are dropped."""
    frame = frame.copy()
    for col in columns:
        if col not in frame.columns:
            continue
        if frame[col].dtype == object:
            frame[col] = pd.to_datetime(frame[col])
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_convert(None)
    return frame


def _rows(path: Place, id_col: str, ids: list[object]) -> pd.DataFrame:
    """The rows of a few series from one Parquet output, read with a filter."""
    if not path.is_file():
        return pd.DataFrame(columns=[id_col])
    return read_series(path, id_col, ids).to_pandas()


def _history(source: str, columns: list[str], ids: list[object]) -> tuple[pd.DataFrame | None, str]:
    """The chosen series from the input table, or None and why when it cannot be read."""
    try:
        fs, root = filesystem(source)
        dataset = pads.dataset(root, filesystem=fs, format="parquet")
        table = dataset.to_table(columns=columns, filter=pc.field(columns[0]).isin(ids))
    except (OSError, ValueError, TypeError, pa.ArrowException) as error:
        why = "not found" if isinstance(error, FileNotFoundError) else type(error).__name__
        return None, f"history not shown: the input {source} cannot be read any more ({why})"
    return table.to_pandas(), ""


def safe_name(series_id: object) -> str:
    """A file name for any id (unicode, slashes, ints); a hash keeps altered names apart."""
    text = str(series_id)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60].strip("._") or "id"
    if safe != text:
        safe += "_" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"series_{safe}.png"


def series_pngs(
    output: Place,
    source: str,
    columns: list[str],
    captions: dict[object, str],
    notes: dict[object, str],
) -> tuple[list[tuple[object, str, bytes]], str]:
    """One PNG per captioned series: [(id, file name, png)], and why history is missing.

    ``columns`` is [id_col, time_col, target_col]; ``source`` the input table's path;
    ``notes`` a line under a series' title (a failed series' reason).
    """
    ids = list(captions)
    if not ids:
        return [], ""
    frames, missing = series_frames(output, source, columns, ids)
    pngs = []
    for sid, caption in captions.items():
        note = "; ".join(n for n in (notes.get(sid, ""), missing) if n)
        png = _png(draw_series(f"{sid} ({caption})", *frames(sid), (columns[1], columns[2]), note))
        pngs.append((sid, safe_name(sid), png))
    return pngs, missing


Frames = tuple[pd.DataFrame | None, pd.DataFrame, pd.DataFrame]  # history, backtest, forecast


def series_frames(
    output: Place, source: str, columns: list[str], ids: list[object]
) -> tuple[Callable[[object], Frames], str]:
    """What ``draw_series`` draws of each of ``ids``, read once for all of them: a function
    of a series' id, and why the history is missing ("" when it is not)."""
    id_col, time_col, _ = columns
    history, missing = _history(source, columns, ids)
    times = (time_col, "cutoff")
    backtest = _plain_times(_rows(output / BACKTEST, id_col, ids), times)
    if "window" in backtest:  # the most recent window; older ones would overlap it
        backtest = backtest[backtest["window"] == 0]
    forecasts = _plain_times(_rows(output / FORECASTS, id_col, ids), times)
    if history is not None:
        history = _plain_times(history, times)

    def of(frame: pd.DataFrame, sid: object) -> pd.DataFrame:
        part = frame[frame[id_col] == sid]
        return part.sort_values(time_col) if len(part) else part

    def frames(sid: object) -> Frames:
        return (
            None if history is None else of(history, sid),
            of(backtest, sid),
            of(forecasts, sid),
        )

    return frames, missing


def nights_figure(nights: list[dict]) -> bytes:
    """Realised MASE and sMAPE per night against what each night's backtest promised."""
    figure = Figure(figsize=(11, 3.5))
    axes = figure.subplots(1, 2)
    labels = [str(n.get("run", "?")) for n in nights]
    x = np.arange(len(nights))
    for ax, key, name in ((axes[0], "mase", "MASE"), (axes[1], "smape", "sMAPE")):
        realised = [np.nan if n.get(key) is None else n[key] for n in nights]
        promised = [
            np.nan if n.get(f"backtest_{key}") is None else n[f"backtest_{key}"] for n in nights
        ]
        ax.plot(x, realised, marker="o", label="realised")
        ax.plot(x, promised, marker="o", linestyle="--", label="backtest promised")
        ax.set(title=f"{name} of the scored forecasts, per night", xlabel="forecasts of run")
        ax.set_xticks(x, labels, rotation=20, fontsize=7)
        ax.legend(frameon=False)
    return _png(figure)
