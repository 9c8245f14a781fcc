"""``runner report``: one self-contained HTML page (and PNGs) that says how a job went.

It reads only a job's output directory, plus the input table its manifest names for the
series' history, so it can be rebuilt any time after the job. The page renders the run's
summary (``summary.summarize``, which ``runner run`` prints with or without a report).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cluster.report.lines import devices_text, fmt, fmt_share, weight_text
from cluster.report.sections import (
    CSS,
    FAILURE_ROWS,
    failures,
    ledger_section,
    table,
    text,
)
from cluster.report.summary import (
    Outputs,
    RunSummary,
    backtest_outputs,
    column,
    load_outputs,
    summarize,
)
from lstm_worker.data.layout import METRICS_FILE
from lstm_worker.data.place import Place
from lstm_worker.errors import SpecError
from lstm_worker.names import Status

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_HTML, REPORT_DIR = "report.html", "report"


def _resolve(outputs: Outputs, wanted: Iterable[object]) -> list[object]:
    """The ids the caller asked for, as stored; strings from a command line match any id."""
    ids = outputs.metrics[outputs.id_col].tolist()
    by_text = {str(i): i for i in ids}
    known = set(ids)
    resolved = []
    for want in wanted:
        if want in known or str(want) in by_text:
            resolved.append(want if want in known else by_text[str(want)])
        else:
            raise SpecError(
                f"--series {str(want)!r}: not in {outputs.path / METRICS_FILE} ({len(ids)} series)"
            )
    return resolved


def _pick(outputs: Outputs, chosen: list[object], n_random: int, seed: int) -> dict:
    """{id: caption}: the chosen series, then the best and worst ok series, then random ok."""
    metrics, id_col = outputs.metrics, outputs.id_col
    ok = metrics[metrics["status"] == Status.OK]
    key = "mase" if column(ok, "mase").notna().any() else "smape"
    scored = ok.assign(_key=column(ok, key)).dropna(subset="_key")
    ranked = scored.sort_values("_key", kind="stable")
    picks: dict[object, list[str]] = {sid: ["chosen"] for sid in chosen}
    if len(ranked):
        label = {"mase": "MASE", "smape": "sMAPE"}[key]
        for row, name in ((ranked.iloc[0], "best"), (ranked.iloc[-1], "worst")):
            picks.setdefault(row[id_col], []).append(f"{name}: {label} {row['_key']:.3f}")
    rest = [sid for sid in ok[id_col].tolist() if sid not in picks]
    rng = np.random.default_rng(seed)
    for index in rng.choice(len(rest), size=min(max(n_random, 0), len(rest)), replace=False):
        picks[rest[index]] = ["random"]
    return {sid: "; ".join(labels) for sid, labels in picks.items()}


def build_report(
    output_dir: str | Path | Place,
    series: Iterable[object] = (),
    n_random: int = 3,
    seed: int = 0,
    summary: RunSummary | None = None,
) -> Place:
    """Write ``report.html`` (images embedded) and ``report/*.png``; return the page's path.

    ``series`` are ids to plot besides the best, the worst and ``n_random`` random ok
    series (``seed`` picks them); an id not in the job is a ``SpecError``. The page
    renders ``summary`` (``summarize``'s, computed here when not given).
    """
    summary = summary or summarize(output_dir)
    outputs = load_outputs(output_dir)
    chosen = _resolve(outputs, series)
    scored, _ = backtest_outputs(outputs)
    metrics = outputs.metrics
    ok = scored.metrics[scored.metrics["status"] == Status.OK]
    captions = _pick(outputs, chosen, n_random, seed)
    rows = metrics.drop_duplicates(outputs.id_col).set_index(outputs.id_col)
    notes = {
        sid: f"{rows.at[sid, 'status']!s}: {text(rows.at[sid, 'reason'])}"
        for sid in captions
        if rows.at[sid, "status"] != Status.OK
    }
    columns = [outputs.id_col, outputs.time_col, outputs.target_col]
    source = str(outputs.manifest.spec["input"].get("path", ""))
    from cluster.report.plots import mase_distribution, series_pngs  # matplotlib: only here

    pngs, missing = series_pngs(outputs.path, source, columns, captions, notes)
    distribution = mase_distribution(
        column(ok, "mase").to_numpy(), column(ok, "snaive_mase").to_numpy()
    )
    figures = [("Per-series MASE", "mase_distribution.png", distribution)]
    figures += [(f"{sid} ({captions[sid]})", name, png) for sid, name, png in pngs]
    images = outputs.path / REPORT_DIR
    images.mkdir()
    for old in images.glob("*.png"):  # the directory is the report's own: no stale plots
        old.unlink()
    for _, name, png in figures:
        (images / name).write_bytes(png)
    about = (
        f"outputs in {outputs.path}; finished {outputs.manifest.finished_at or '?'}; "
        f"input {source}; freq {outputs.manifest.freq}, "
        f"season {outputs.manifest.season_length}"
    )
    if summary.promised_by:
        about += (
            f"; a forecast-only run: every series forecast by the models "
            f"{summary.promised_by} stored"
        )
    parts = [
        *_head(summary, about),
        *ledger_section(outputs),
        *_figures(figures, missing),
        *_failure_rows(failures(outputs)),
        "</body></html>\n",
    ]
    path = outputs.path / REPORT_HTML
    path.write_bytes("\n".join(parts).encode())
    return path


def series_plot(output_dir: str | Path | Place, series_id: object) -> Figure:
    """The report's figure of one series (``Result.plot``): a ``SpecError`` naming it when
    the job has no such series."""
    from cluster.report.plots import draw_series, series_frames  # matplotlib: only here

    outputs = load_outputs(output_dir)
    (sid,) = _resolve(outputs, [series_id])
    rows = outputs.metrics.drop_duplicates(outputs.id_col).set_index(outputs.id_col)
    status, reason = str(rows.at[sid, "status"]), text(rows.at[sid, "reason"])
    columns = [outputs.id_col, outputs.time_col, outputs.target_col]
    source = str(outputs.manifest.spec["input"].get("path", ""))
    frames, missing = series_frames(outputs.path, source, columns, [sid])
    note = "; ".join(
        n for n in ((f"{status}: {reason}" if status != Status.OK else ""), missing) if n
    )
    return draw_series(f"{sid} ({status})", *frames(sid), (columns[1], columns[2]), note)


def _head(summary: RunSummary, about: str) -> list[str]:
    """The page's title, summary and accuracy tables."""
    esc = html.escape
    name = summary.name or Place(summary.output).name
    overview: list[Sequence[object]] = [
        ["series", summary.series],
        *[[f"series {status}", n] for status, n in summary.counts.items()],
        ["wall time (s)", fmt(summary.wall_seconds, 1)],
        ["series/s", fmt(summary.series_per_second, 1)],
        ["devices", devices_text(summary)],
        ["forecast", weight_text(summary.lstm_weight, summary.table_share)],
        [
            "forecast beat seasonal naive",
            f"{fmt_share(summary.beat_snaive)} of "
            f"{summary.beat_snaive_of} series (lower backtest MASE)",
        ],
        *[
            [f"{level}% interval covered", f"{fmt_share(share)} of backtest points"]
            for level, share in summary.coverage.items()
        ],
    ]
    accuracy = [
        [
            model,
            fmt(a.smape_mean, 2),
            fmt(a.smape_median, 2),
            fmt(a.mase_mean, 3),
            fmt(a.mase_median, 3),
            a.scored,
        ]
        for model, a in summary.accuracy.items()
    ]
    promised_by = summary.promised_by
    return [
        f"<!doctype html><html><head><meta charset=utf-8><title>{esc(name)}: report</title>"
        f"<style>{CSS}</style></head><body><h1>{esc(name)}</h1>",
        f"<p class=note>{esc(about)}</p><h2>Summary</h2>",
        table(None, overview),
        (
            f"<h2>Accuracy the stored models promised on their backtest ({esc(promised_by)}, "
            "ok series)</h2>"
            if promised_by
            else "<h2>Accuracy on the backtest (ok series)</h2>"
        ),
        table(
            ["model", "mean sMAPE", "median sMAPE", "mean MASE", "median MASE", "series"], accuracy
        ),
    ]


def _figures(figures: list[tuple[str, str, bytes]], missing: str) -> list[str]:
    """The MASE figure, then each series' figure, embedded."""
    esc, parts = html.escape, []
    for index, (caption, _, png) in enumerate(figures):
        if index == 1:
            parts.append("<h2>Series: history, holdout, backtest and forecast</h2>")
            parts += [f"<p class=note>{esc(missing)}</p>"] if missing else []
        data = base64.b64encode(png).decode("ascii")
        heading = "h2" if index == 0 else "h3"
        parts.append(
            f'<{heading}>{esc(caption)}</{heading}><img alt="{esc(caption)}" '
            f'src="data:image/png;base64,{data}">'
        )
    return parts


def _failure_rows(found: pd.DataFrame) -> list[str]:
    """The series with no LSTM forecast, the first ``FAILURE_ROWS`` of them."""
    if not len(found):
        return []
    shown = found.head(FAILURE_ROWS)
    parts = [
        f"<h2>Failures ({len(found)} series with no LSTM forecast)</h2>",
        table(
            ["series", "status", "reason"],
            [[text(v) for v in row] for row in shown.itertuples(index=False)],
        ),
    ]
    if len(found) > len(shown):
        parts.append(f"<p class=note>first {len(shown)} shown; metrics.parquet has all</p>")
    return parts
