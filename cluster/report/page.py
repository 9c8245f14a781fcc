"""``runner report``: one self-contained HTML page (and PNGs) that says how a job went.

It reads only a job's output directory, plus the input table its manifest names for the
series' history, so it can be rebuilt any time after the job. The summary numbers are
computed once, in ``summarize``, for both the page and the lines ``runner run`` prints.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from cluster.data.output import MANIFEST, METRICS_FILE, write_bytes
from cluster.errors import OutputError, SpecError
from cluster.manifest import Manifest
from lstm_worker.names import Status

REPORT_HTML, REPORT_DIR = "report.html", "report"
_MODELS = {"LSTM": "", "naive": "naive_", "seasonal naive": "snaive_"}  # name: column prefix
_SUMMARY_COLUMNS = (
    "status",
    "attempts",
    "device",
    "node_id",
    "gpu_id",
    *(prefix + m for prefix in _MODELS.values() for m in ("smape", "mase", "mae")),
)
_STATUSES = (Status.OK, Status.SKIPPED, Status.FAILED)  # always shown, in this order; others follow
_FAILURE_ROWS = 200  # the page lists this many; metrics.parquet has them all


@dataclass(frozen=True)
class _Outputs:
    path: Path
    manifest: Manifest
    metrics: pd.DataFrame
    id_col: str
    time_col: str
    target_col: str


def _load(output_dir: str | Path, columns: tuple[str, ...] | None = None) -> _Outputs:
    """The manifest and metrics.parquet (only ``columns`` of it, if given, besides the id)."""
    out = Path(output_dir)
    missing = [name for name in (MANIFEST, METRICS_FILE) if not (out / name).is_file()]
    if missing:
        raise OutputError(
            f"{out}: not a job's output directory (no {' or '.join(missing)}); "
            "give the output.path of a finished `runner run`"
        )
    try:
        manifest = Manifest.model_validate_json((out / MANIFEST).read_text())
        named = manifest.spec["input"]
        id_col, time_col, target_col = named["id_col"], named["time_col"], named["target_col"]
        if columns is not None:
            present = set(pq.read_schema(out / METRICS_FILE).names)
            columns = [c for c in (id_col, *columns) if c in present]
        metrics = pd.read_parquet(out / METRICS_FILE, columns=columns)
    except (OSError, ValueError, KeyError, TypeError, ValidationError, pa.ArrowException) as error:
        raise OutputError(f"{out}: cannot read the job's outputs: {error}") from None
    if id_col not in metrics.columns or "status" not in metrics.columns:
        raise OutputError(f"{out / METRICS_FILE}: no {id_col!r} or 'status' column")
    return _Outputs(out, manifest, metrics, id_col, time_col, target_col)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A float column, all NaN when an older or newer output lacks it."""
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(np.nan, index=frame.index)


def summarize(output_dir: str | Path) -> dict:
    """The job's headline numbers: counts, accuracy over ok series, timing, devices."""
    return _summarize(_load(output_dir, _SUMMARY_COLUMNS))  # a million rows: only what it needs


def _summarize(outputs: _Outputs) -> dict:
    metrics, manifest = outputs.metrics, outputs.manifest
    found = metrics["status"].value_counts().to_dict()
    counts = {s: int(found.pop(s, 0)) for s in _STATUSES}
    counts.update({str(s): int(n) for s, n in sorted(found.items())})
    ok = metrics[metrics["status"] == Status.OK]
    accuracy = {}
    for model, prefix in _MODELS.items():
        smape, mase = _column(ok, f"{prefix}smape"), _column(ok, f"{prefix}mase")
        accuracy[model] = {
            "smape_mean": smape.mean(),
            "smape_median": smape.median(),
            "mase_mean": mase.mean(),
            "mase_median": mase.median(),
            "scored": int(smape.notna().sum()),
        }
    # Both MASEs share one in-sample scale, so comparing MAE decides it even where MASE is null.
    lstm_mae, snaive_mae = _column(ok, "mae"), _column(ok, "snaive_mae")
    compared = lstm_mae.notna() & snaive_mae.notna()
    beat = int((lstm_mae[compared] < snaive_mae[compared]).sum())
    # A series whose trained LSTM lost to a baseline on the backtest fell back: a loss too.
    lost = metrics[(metrics["status"] == Status.FALLBACK) & (metrics.get("attempts", 0) > 0)]
    compared_total = int(compared.sum()) + len(lost)
    blank = pd.Series(None, index=metrics.index, dtype=object)
    devices, nodes = metrics.get("device", blank).dropna(), metrics.get("node_id", blank)
    gpus = set()  # (node, gpu) pairs: gpu ids are per node
    for node, gpu_ids in zip(nodes, metrics.get("gpu_id", blank), strict=True):
        if isinstance(gpu_ids, str):
            gpus.update((node, gpu) for gpu in gpu_ids.split(",") if gpu)
    return {
        "name": manifest.name,
        "output": str(outputs.path),
        "series": len(metrics),
        "counts": counts,
        "wall_seconds": manifest.wall_seconds,
        "series_per_second": manifest.series_per_second,
        "accuracy": accuracy,
        "beat_snaive": beat / compared_total if compared_total else float("nan"),
        "beat_snaive_of": compared_total,
        "devices": sorted({str(d).split(" (")[0] for d in devices}),
        "nodes": int(nodes.dropna().nunique()),
        "gpus": len(gpus),
    }


def fmt(value: float | None, digits: int) -> str:
    """A number as the report and the CLI print it; missing or undefined is 'n/a'."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_share(share: float) -> str:
    return "n/a" if not np.isfinite(share) else f"{share:.0%}"


def _counts_text(summary: dict) -> str:
    return ", ".join(f"{n} {status}" for status, n in summary["counts"].items())


def _devices_text(summary: dict) -> str:
    kinds = ", ".join(summary["devices"]) or "unknown"
    nodes = summary["nodes"]
    where = f" on {nodes} node{'s' * (nodes != 1)}" if nodes else ""
    return kinds + where + (f", {summary['gpus']} GPUs" if summary["gpus"] else "")


def summary_lines(summary: dict) -> list[str]:
    """The three lines ``runner run`` ends with."""
    lstm, snaive = summary["accuracy"]["LSTM"], summary["accuracy"]["seasonal naive"]
    return [
        f"series: {_counts_text(summary)} in {fmt(summary['wall_seconds'], 1)}s "
        f"({fmt(summary['series_per_second'], 1)} series/s)",
        f"accuracy (backtest, mean): LSTM sMAPE {fmt(lstm['smape_mean'], 2)} "
        f"MASE {fmt(lstm['mase_mean'], 3)} | seasonal naive sMAPE "
        f"{fmt(snaive['smape_mean'], 2)} MASE {fmt(snaive['mase_mean'], 3)} | "
        f"LSTM beat seasonal naive on {fmt_share(summary['beat_snaive'])} of series",
        f"devices: {_devices_text(summary)}",
    ]


def _resolve(outputs: _Outputs, wanted) -> list[object]:
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


def _pick(outputs: _Outputs, chosen: list[object], n_random: int, seed: int) -> dict:
    """{id: caption}: the chosen series, then the best and worst ok series, then random ok."""
    metrics, id_col = outputs.metrics, outputs.id_col
    ok = metrics[metrics["status"] == Status.OK]
    key = "mase" if _column(ok, "mase").notna().any() else "smape"
    scored = ok.assign(_key=_column(ok, key)).dropna(subset="_key")
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


def build_report(output_dir: str | Path, series=(), n_random: int = 3, seed: int = 0) -> Path:
    """Write ``report.html`` (images embedded) and ``report/*.png``; return the page's path.

    ``series`` are ids to plot besides the best, the worst and ``n_random`` random ok
    series (``seed`` picks them); an id not in the job is a ``SpecError``.
    """
    return report_and_summary(output_dir, series, n_random, seed)[0]


def report_and_summary(
    output_dir: str | Path, series=(), n_random: int = 3, seed: int = 0
) -> tuple[Path, dict]:
    """``build_report``, also returning the summary it computed (the outputs read once)."""
    outputs = _load(output_dir)
    chosen = _resolve(outputs, series)
    summary = _summarize(outputs)
    metrics = outputs.metrics
    ok = metrics[metrics["status"] == Status.OK]
    captions = _pick(outputs, chosen, n_random, seed)
    rows = metrics.drop_duplicates(outputs.id_col).set_index(outputs.id_col)
    notes = {
        sid: f"{rows.at[sid, 'status']}: {_text(rows.at[sid, 'reason'])}"
        for sid in captions
        if rows.at[sid, "status"] != Status.OK
    }
    columns = [outputs.id_col, outputs.time_col, outputs.target_col]
    source = str(outputs.manifest.spec["input"].get("path", ""))
    from cluster.report.plots import mase_distribution, series_pngs  # matplotlib: only here

    pngs, missing = series_pngs(outputs.path, source, columns, captions, notes)
    distribution = mase_distribution(
        _column(ok, "mase").to_numpy(), _column(ok, "snaive_mase").to_numpy()
    )
    figures = [("Per-series MASE", "mase_distribution.png", distribution)]
    figures += [(f"{sid} ({captions[sid]})", name, png) for sid, name, png in pngs]

    images = outputs.path / REPORT_DIR
    images.mkdir(exist_ok=True)
    for old in images.glob("*.png"):  # the directory is the report's own: no stale plots
        old.unlink()
    for _, name, png in figures:
        write_bytes(png, images / name)
    path = outputs.path / REPORT_HTML
    about = (
        f"outputs in {outputs.path}; finished {outputs.manifest.finished_at or '?'}; "
        f"input {source}; freq {outputs.manifest.freq}, "
        f"season {outputs.manifest.season_length}"
    )
    write_bytes(_page(summary, about, figures, _failures(outputs), missing).encode(), path)
    return path, summary


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _failures(outputs: _Outputs) -> pd.DataFrame:
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


def _page(summary: dict, about: str, figures: list, failures: pd.DataFrame, missing: str) -> str:
    """The page: summary, accuracy, the MASE figure, the series figures, the failures."""
    esc = html.escape
    name = summary["name"] or Path(summary["output"]).name
    overview = [
        ["series", summary["series"]],
        *[[f"series {status}", n] for status, n in summary["counts"].items()],
        ["wall time (s)", fmt(summary["wall_seconds"], 1)],
        ["series/s", fmt(summary["series_per_second"], 1)],
        ["devices", _devices_text(summary)],
        [
            "LSTM beat seasonal naive",
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
        "<h2>Accuracy on the backtest (ok series)</h2>",
        _table(
            ["model", "mean sMAPE", "median sMAPE", "mean MASE", "median MASE", "series"], accuracy
        ),
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
        parts.append(f"<h2>Failures ({len(failures)} series not forecast by the LSTM)</h2>")
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
