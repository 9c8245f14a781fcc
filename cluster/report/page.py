"""``runner report``: one self-contained HTML page (and PNGs) that says how a job went.

It reads only a job's output directory, plus the input table its manifest names for the
series' history, so it can be rebuilt any time after the job. The summary numbers are
computed once, in ``summarize``, for both the page and the lines ``runner run`` prints.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cluster.ledger import nights, series_scores
from cluster.report.summary import (
    Outputs,
    column,
    devices_text,
    fmt,
    fmt_share,
    load_outputs,
    summarize_outputs,
    weight_text,
)
from lstm_worker.data.layout import LEDGER, METRICS_FILE
from lstm_worker.data.place import Place
from lstm_worker.errors import OutputError, SpecError
from lstm_worker.names import Status

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_HTML, REPORT_DIR = "report.html", "report"
_FAILURE_ROWS = 200  # the page lists this many; metrics.parquet has them all


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
    output_dir: str | Path | Place, series: Iterable[object] = (), n_random: int = 3, seed: int = 0
) -> Place:
    """Write ``report.html`` (images embedded) and ``report/*.png``; return the page's path.

    ``series`` are ids to plot besides the best, the worst and ``n_random`` random ok
    series (``seed`` picks them); an id not in the job is a ``SpecError``.
    """
    return report_and_summary(output_dir, series, n_random, seed)[0]


def report_and_summary(
    output_dir: str | Path | Place, series: Iterable[object] = (), n_random: int = 3, seed: int = 0
) -> tuple[Place, dict]:
    """``build_report``, also returning the summary it computed (the outputs read once)."""
    outputs = load_outputs(output_dir)
    chosen = _resolve(outputs, series)
    summary = summarize_outputs(outputs)
    scored, promised_by = _backtest_run(outputs)
    if promised_by:  # forecast-only: the accuracy is what the stored models' backtest promised
        stored = summarize_outputs(scored)
        summary.update({key: stored[key] for key in ("accuracy", "beat_snaive", "beat_snaive_of")})
    metrics = outputs.metrics
    ok = scored.metrics[scored.metrics["status"] == Status.OK]
    captions = _pick(outputs, chosen, n_random, seed)
    rows = metrics.drop_duplicates(outputs.id_col).set_index(outputs.id_col)
    notes = {
        sid: f"{rows.at[sid, 'status']!s}: {_text(rows.at[sid, 'reason'])}"
        for sid in captions
        if rows.at[sid, "status"] != Status.OK
    }
    columns = [outputs.id_col, outputs.time_col, outputs.target_col]
    source = str(outputs.manifest.spec["input"].get("path", ""))
    from cluster.report.plots import (  # matplotlib: only here
        mase_distribution,
        series_pngs,
    )

    pngs, missing = series_pngs(outputs.path, source, columns, captions, notes)
    distribution = mase_distribution(
        column(ok, "mase").to_numpy(), column(ok, "snaive_mase").to_numpy()
    )
    figures = [("Per-series MASE", "mase_distribution.png", distribution)]
    figures += [(f"{sid} ({captions[sid]})", name, png) for sid, name, png in pngs]
    ledger = _ledger_section(outputs)

    images = outputs.path / REPORT_DIR
    images.mkdir()
    for old in images.glob("*.png"):  # the directory is the report's own: no stale plots
        old.unlink()
    for _, name, png in figures:
        (images / name).write_bytes(png)
    path = outputs.path / REPORT_HTML
    about = (
        f"outputs in {outputs.path}; finished {outputs.manifest.finished_at or '?'}; "
        f"input {source}; freq {outputs.manifest.freq}, "
        f"season {outputs.manifest.season_length}"
    )
    if promised_by:
        about += f"; a forecast-only run: every series forecast by the models {promised_by} stored"
    page = _page(summary, about, figures, _failures(outputs), missing, ledger, promised_by)
    path.write_bytes(page.encode())
    return path, summary


def series_plot(output_dir: str | Path | Place, series_id: object) -> Figure:
    """The report's figure of one series (``Result.plot``): a ``SpecError`` naming it when
    the job has no such series."""
    from cluster.report.plots import draw_series, series_frames  # matplotlib: only here

    outputs = load_outputs(output_dir)
    (sid,) = _resolve(outputs, [series_id])
    rows = outputs.metrics.drop_duplicates(outputs.id_col).set_index(outputs.id_col)
    status, reason = str(rows.at[sid, "status"]), _text(rows.at[sid, "reason"])
    columns = [outputs.id_col, outputs.time_col, outputs.target_col]
    source = str(outputs.manifest.spec["input"].get("path", ""))
    frames, missing = series_frames(outputs.path, source, columns, [sid])
    note = "; ".join(
        n for n in ((f"{status}: {reason}" if status != Status.OK else ""), missing) if n
    )
    return draw_series(f"{sid} ({status})", *frames(sid), (columns[1], columns[2]), note)


def _backtest_run(outputs: Outputs) -> tuple[Outputs, str]:
    """The run whose backtest the report's accuracy is: this one, or, for a forecast-only
    run (which trains and backtests nothing), the run whose stored models it forecast
    with, and that run's name ("" for this one, or when that run cannot be read)."""
    source = outputs.manifest.forecast_from
    if not source:
        return outputs, ""
    try:
        stored = load_outputs(source)
    except OutputError:
        return outputs, ""
    return stored, f"run {stored.manifest.run_id or Place(source).name} ({source})"


def _ledger_section(outputs: Outputs) -> list[str]:
    """The forecast ledger's part of the page: realised against promised per night, and
    the series whose error jumped, worst first; nothing when the run scored no earlier one."""
    if outputs.manifest.ledger is None or not (outputs.path / LEDGER).exists():
        return []
    from cluster.report.plots import nights_figure  # matplotlib: only here

    history = nights(outputs.path)
    jump = float(outputs.manifest.spec.get("ledger", {}).get("jump", 2.0))
    per_series = series_scores(outputs.path, outputs.id_col, jump)
    rows = [
        [
            n.get("run", "?"),
            n.get("scored_by", "?"),
            n["series"],
            n["steps"],
            fmt(n.get("smape"), 2),
            fmt(n.get("backtest_smape"), 2),
            fmt(n.get("mase"), 3),
            fmt(n.get("backtest_mase"), 3),
            ", ".join(f"{k}%: {fmt_share(v)}" for k, v in n.get("coverage", {}).items()),
            n.get("jumped", 0),
        ]
        for n in history
    ]
    header = ["forecasts of run", "scored by run", "series", "steps", "sMAPE", "promised"]
    header += ["MASE", "promised", "interval coverage", "jumped"]
    jumped = per_series[per_series["jumped"]].head(_FAILURE_ROWS)
    parts = [
        "<h2>The ledger: realised accuracy against the promise, night by night</h2>",
        "<p class=note>each night's forecasts scored against the actuals that arrived "
        "since, against what that night's backtest promised for the same steps</p>",
        _table(header, rows),
        '<img alt="realised accuracy over nights" src="data:image/png;base64,'
        + base64.b64encode(nights_figure(history)).decode("ascii")
        + '">',
        f"<h3>Series whose error jumped ({int(per_series['jumped'].sum())}: realised MASE "
        f"over {jump:g} x promised), worst first</h3>",
        _table(
            ["series", "realised MASE", "promised MASE", "ratio", "steps"],
            [
                [sid, fmt(r.mase, 3), fmt(r.backtest_mase, 3), fmt(r.ratio, 2), r.steps]
                for sid, r in jumped.iterrows()
            ],
        ),
    ]
    return parts


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _failures(outputs: Outputs) -> pd.DataFrame:
    bad = outputs.metrics[outputs.metrics["status"] != Status.OK]
    return bad.sort_values(["status", outputs.id_col], kind="stable")[
        [outputs.id_col, "status", "reason"]
    ]


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;
padding:.25em .7em;text-align:left}th{background:#f4f4f4}td.n{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%}.note{color:#666}"""


def _table(header: list[str] | None, rows: list[list[object]]) -> str:
    """An HTML table; every cell is escaped, numbers (already formatted) align right."""

    def cell(value: object) -> str:
        text = str(value)
        numeric = re.fullmatch(r"-?[\d.]+%?|n/a", text) is not None
        return f"<td{' class=n' if numeric else ''}>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or [])
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _page(
    summary: dict,
    about: str,
    figures: list,
    failures: pd.DataFrame,
    missing: str,
    ledger: list[str],
    promised_by: str = "",
) -> str:
    """The page: summary, accuracy, realised accuracy, the MASE figure, the series
    figures, the failures. ``promised_by``: the run whose stored models a forecast-only
    run forecast with, whose backtest the accuracy is."""
    esc = html.escape
    name = summary["name"] or Place(summary["output"]).name
    overview = [
        ["series", summary["series"]],
        *[[f"series {status}", n] for status, n in summary["counts"].items()],
        ["wall time (s)", fmt(summary["wall_seconds"], 1)],
        ["series/s", fmt(summary["series_per_second"], 1)],
        ["devices", devices_text(summary)],
        ["forecast", weight_text(summary["lstm_weight"], summary.get("table_share"))],
        [
            "forecast beat seasonal naive",
            f"{fmt_share(summary['beat_snaive'])} of "
            f"{summary['beat_snaive_of']} series (lower backtest MASE)",
        ],
    ]
    accuracy = [
        [
            model,
            fmt(a["smape_mean"], 2),
            fmt(a["smape_median"], 2),
            fmt(a["mase_mean"], 3),
            fmt(a["mase_median"], 3),
            a["scored"],
        ]
        for model, a in summary["accuracy"].items()
    ]
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>{esc(name)}: report</title>"
        f"<style>{_CSS}</style></head><body><h1>{esc(name)}</h1>",
        f"<p class=note>{esc(about)}</p><h2>Summary</h2>",
        _table(None, overview),
        (
            f"<h2>Accuracy the stored models promised on their backtest ({esc(promised_by)}, "
            "ok series)</h2>"
            if promised_by
            else "<h2>Accuracy on the backtest (ok series)</h2>"
        ),
        _table(
            ["model", "mean sMAPE", "median sMAPE", "mean MASE", "median MASE", "series"], accuracy
        ),
        *ledger,
    ]
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
    if len(failures):
        shown = failures.head(_FAILURE_ROWS)
        parts.append(f"<h2>Failures ({len(failures)} series with no LSTM forecast)</h2>")
        parts.append(
            _table(
                ["series", "status", "reason"],
                [[_text(v) for v in row] for row in shown.itertuples(index=False)],
            )
        )
        if len(failures) > len(shown):
            parts.append(f"<p class=note>first {len(shown)} shown; metrics.parquet has all</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
