"""The ledger (ledger.parquet, whose rows each task writes) summed up on the driver: per
series and per night, realised against what the backtest promised, for the manifest
(the job) and the report; and the nights before, along the chain of runs each scored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cluster.manifest import read_manifest
from lstm_worker.data.layout import LEDGER
from lstm_worker.data.place import Place, read_schema, read_table

MAX_NIGHTS = 90  # how far back the report follows the chain of scored runs


def _ledger(out: Place, id_col: str) -> tuple[pd.DataFrame, list[str]]:
    """The columns of ledger.parquet these scores need, read once; its hit columns."""
    hits = [n for n in read_schema(out / LEDGER).names if n.startswith("hit_")]
    columns = [id_col, "ape", "scaled_error", "backtest_smape", "backtest_mase", *hits]
    return read_table(out / LEDGER, columns=columns).to_pandas(), hits


def series_scores(out: Place, id_col: str, jump: float) -> pd.DataFrame:
    """Per series of the ledger: realised sMAPE and MASE (the means of its rows), the
    backtest's promise over the same steps, the steps scored, whether its error jumped
    (realised MASE over ``jump`` times the promise), worst ratio first."""
    return _per_series(_ledger(out, id_col)[0], id_col, jump)


def _per_series(ledger: pd.DataFrame, id_col: str, jump: float) -> pd.DataFrame:
    grouped = ledger.groupby(id_col, sort=False)
    frame = pd.DataFrame(
        {
            "smape": grouped["ape"].mean(),
            "mase": grouped["scaled_error"].mean(),
            "backtest_smape": grouped["backtest_smape"].first(),
            "backtest_mase": grouped["backtest_mase"].first(),
            "steps": grouped.size(),
        }
    )
    frame["ratio"] = frame["mase"] / frame["backtest_mase"]
    frame["jumped"] = frame["ratio"] > jump
    return frame.sort_values("ratio", ascending=False, na_position="last")


def ledger_scores(out: Place, id_col: str, jump: float, ledger_of: str) -> dict[str, Any]:
    """The night's realised scores for the manifest: means over series, as the M4 mean
    sMAPE and MASE are; interval coverage over every scored step."""
    ledger, hits = _ledger(out, id_col)
    per_series = _per_series(ledger, id_col, jump)

    def mean(column: str) -> float | None:
        finite = per_series[column][np.isfinite(per_series[column].astype(float))]
        return round(float(finite.mean()), 6) if len(finite) else None

    return {
        "run": ledger_of,
        "series": len(per_series),
        "steps": int(per_series["steps"].sum()),
        "smape": mean("smape"),
        "mase": mean("mase"),
        "backtest_smape": mean("backtest_smape"),
        "backtest_mase": mean("backtest_mase"),
        "coverage": {
            n.removeprefix("hit_"): round(float(ledger[n].mean()), 6)
            for n in hits
            if ledger[n].notna().any()
        },
        "jumped": int(per_series["jumped"].sum()),
    }


def nights(out: Place) -> list[dict[str, Any]]:
    """The realised scores of this run and of each earlier run along the chain of
    scored runs, oldest first; each with the run it is the manifest of."""
    found: list[dict[str, Any]] = []
    seen, here = set(), out.resolve()
    while len(found) < MAX_NIGHTS and here not in seen:
        seen.add(here)
        manifest = read_manifest(here)
        if manifest is None or manifest.ledger is None or manifest.ledger_of is None:
            break
        found.append({"scored_by": manifest.run_id, **manifest.ledger})
        here = Place(manifest.ledger_of).resolve()
    return found[::-1]
