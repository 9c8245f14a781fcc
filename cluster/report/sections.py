"""The report page's parts that are plain HTML: tables, the ledger's section, the CSS."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cluster.ledger import nights, series_scores
from cluster.report.lines import coverage_text, fmt
from cluster.report.summary import Outputs
from cluster.sections import LedgerSpec
from lstm_worker.data.layout import LEDGER
from lstm_worker.names import Status

FAILURE_ROWS = 200  # the page lists this many; metrics.parquet has them all


def ledger_section(outputs: Outputs) -> list[str]:
    """The forecast ledger's part of the page: realised against promised per night, and
    the series whose error jumped, worst first; nothing when the run scored no earlier one."""
    if outputs.manifest.ledger is None or not (outputs.path / LEDGER).exists():
        return []
    from cluster.report.plots import nights_figure  # matplotlib: only here

    history = nights(outputs.path)
    jump = LedgerSpec.model_validate(outputs.manifest.spec.get("ledger", {})).jump
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
            coverage_text(n.get("coverage", {})),
            n.get("jumped", 0),
        ]
        for n in history
    ]
    header = ["forecasts of run", "scored by run", "series", "steps", "sMAPE", "promised"]
    header += ["MASE", "promised", "interval coverage", "jumped"]
    jumped = per_series[per_series["jumped"]].head(FAILURE_ROWS)
    parts = [
        "<h2>The ledger: realised accuracy against the promise, night by night</h2>",
        "<p class=note>each night's forecasts scored against the actuals that arrived "
        "since, against what that night's backtest promised for the same steps</p>",
        table(header, rows),
        '<img alt="realised accuracy over nights" src="data:image/png;base64,'
        + base64.b64encode(nights_figure(history)).decode("ascii")
        + '">',
        f"<h3>Series whose error jumped ({int(per_series['jumped'].sum())}: realised MASE "
        f"over {jump:g} x promised), worst first</h3>",
        table(
            ["series", "realised MASE", "promised MASE", "ratio", "steps"],
            [
                [sid, fmt(r.mase, 3), fmt(r.backtest_mase, 3), fmt(r.ratio, 2), r.steps]
                for sid, r in jumped.iterrows()
            ],
        ),
    ]
    return parts


def text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def failures(outputs: Outputs) -> pd.DataFrame:
    bad = outputs.metrics[outputs.metrics["status"] != Status.OK]
    return bad.sort_values(["status", outputs.id_col], kind="stable")[
        [outputs.id_col, "status", "reason"]
    ]


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;
padding:.25em .7em;text-align:left}th{background:#f4f4f4}td.n{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%}.note{color:#666}"""


def table(header: list[str] | None, rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; every cell is escaped, numbers (already formatted) align right."""

    def cell(value: object) -> str:
        text = str(value)
        numeric = re.fullmatch(r"-?[\d.]+%?|n/a", text) is not None
        return f"<td{' class=n' if numeric else ''}>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or [])
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"
