"""The table model: the sample it reads, the same for any shard count; trained, stored,
read back and warm-started bitwise; a forecast-only night forecasts as its run did."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cluster.data.index import scan_index
from cluster.job import JobSummary, run_job
from cluster.passes import choose_blend
from cluster.spec import load_spec
from cluster.table import plan_sample, sample_segments
from lstm_worker.config import ForecastConfig, ModelConfig, TableConfig, WorkerConfig
from lstm_worker.data.contract import InputSpec
from lstm_worker.data.place import Place
from lstm_worker.data.source import read_rows
from lstm_worker.shard.messages import BlendSum
from lstm_worker.stacked import StackedLSTM
from lstm_worker.table.examples import cut_examples, train_origins
from lstm_worker.table.fit import train_table
from lstm_worker.table.models import read_table, table_path, write_table
from lstm_worker.table.task import train_table_models
from tests.conftest import TINY, merge

CPU = torch.device("cpu")
SMALL = {"hidden_size": 8, "members": 2, "epochs": 12}


def periodic(n_series: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Hourly series with a pattern of period 5: no season of the frequency (24, 168), so
    the statistical models miss it and a window of 8 shows it to the table model."""
    rng = np.random.default_rng(seed)
    pattern = np.array([0.0, 2.0, -1.0, 3.0, -2.0])
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 20 + i + np.resize(np.roll(pattern, i), length) + rng.normal(0, 0.2, length)
        ds = pd.date_range("2024-01-01", periods=length, freq="h")
        frames.append(pd.DataFrame({"unique_id": f"p{i:03d}", "ds": ds, "y": y[t]}))
    return pd.concat(frames, ignore_index=True)


def config(**table: object) -> WorkerConfig:
    return WorkerConfig(
        model=ModelConfig(lookback=8, hidden_size=8),
        forecast=ForecastConfig(horizon=6),
        table=TableConfig(**{**SMALL, **table}),
        season_length=24,
        seasons=(24, 168),
    )


def crc32(text: str) -> int:
    return zlib.crc32(text.encode())


def arrays(frame: pd.DataFrame) -> list[np.ndarray]:
    return [g["y"].to_numpy() for _, g in frame.groupby("unique_id", sort=True)]


def test_the_sample_bounds_what_the_table_task_reads(tmp_path):
    frame = periodic(200, 40)
    frame.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=400)
    spec = InputSpec(path=str(tmp_path / "t.parquet"))
    index, cfg = scan_index(spec), config(windows=30)
    positions, estimate = plan_sample(index, cfg, seed=0)
    assert 0 < len(positions) < 200 and estimate >= 30  # blocks until the bound is held
    assert positions.tolist() == sorted(set(positions.tolist()))
    assert positions.tolist() == plan_sample(index, cfg, seed=0)[0].tolist()  # seeded
    rows = read_rows(spec, index.files, list(sample_segments(index, positions)))
    read = rows.column("unique_id").unique().to_pylist()
    assert read == index.ids.take(positions).to_pylist()  # the sample's series, no more
    assert rows.num_rows == 40 * len(positions)
    models = train_table_models(arrays(frame.query("unique_id in @read")), cfg, CPU)
    assert models.windows[-1].examples == 30 and models.windows[0].examples == 30


@pytest.fixture(scope="module")
def night(ray_cluster, tmp_path_factory):
    """One run on periodic series, three a shard, with the table model; its output."""
    root = tmp_path_factory.mktemp("table")
    return _run(root, periodic(12, 100), series_per_task=3).output, root


def _run(root: Path, frame: pd.DataFrame, *overrides: str, series_per_task: int) -> JobSummary:
    frame.to_parquet(root / "input.parquet", index=False)
    raw = merge(TINY, {"input": {"path": str(root / "input.parquet")}, "table": SMALL})
    raw["resources"] = {"num_cpus": 1, "series_per_task": series_per_task}
    (root / "job.yaml").write_text(yaml.safe_dump(raw))
    name = f"out-{series_per_task}-{len(overrides)}"
    spec = load_spec(root / "job.yaml", [f"output.path={root / name}", *overrides])
    return run_job(spec)


def test_the_table_model_is_the_same_for_any_shard_count(night):
    first, root = night
    other = _run(root, periodic(12, 100), series_per_task=5).output
    one, two = (read_table(table_path(Place(out))) for out in (first, other))
    assert one.windows.keys() == two.windows.keys() == {0, -1}
    for window, params in one.params.items():
        assert one.windows[window].examples == two.windows[window].examples
        for name, value in params.items():
            assert np.array_equal(value, two.params[window][name]), (window, name)


def test_a_stored_table_model_reads_back_and_warm_starts_bitwise(tmp_path):
    values, cfg = arrays(periodic(12, 90)), config()
    models = train_table_models(values, cfg, CPU)
    write_table(Place(tmp_path) / "table.safetensors", models)
    back = read_table(Place(tmp_path) / "table.safetensors")
    assert back.windows == models.windows and back.config == models.config
    for window, params in models.params.items():
        for name, value in params.items():
            assert np.array_equal(back.params[window][name], value) and value.dtype == np.float32
    warm_cfg = config(warm_epochs=2)
    warm = train_table_models(values, warm_cfg, CPU, stored=back)
    assert warm.windows[0].epochs == 2
    # by hand: window 0's stack started from the stored weights, trained on its windows
    steps = cfg.table_steps
    histories = [v[: cfg.cutoffs(len(v))[0]] for v in values]
    train = [
        (k, o)
        for k, h in enumerate(histories)
        for o in train_origins(len(h) - steps, steps, cfg, crc32(f"0:table-origins:0:{k}"))
    ]
    val = [(k, len(h) - steps) for k, h in enumerate(histories)]
    start = StackedLSTM.from_params(
        ModelConfig(lookback=8, hidden_size=8),
        {name: torch.from_numpy(v) for name, v in back.params[0].items()},
    )
    seed = crc32("0:table-order:0")
    fit = train_table(
        start,
        cut_examples(histories, train, steps, 8, cfg),
        cut_examples(histories, val, steps, 8, cfg),
        warm_cfg.table,
        2,
        seed,
        CPU,
    )
    for name, p in fit.model.named_parameters():
        assert np.array_equal(p.detach().numpy(), warm.params[0][name]), name


def test_a_forecast_only_night_forecasts_as_the_run_with_a_table_model_did(night):
    first, root = night
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["table_model"]["trained"], manifest["table_model"]
    metrics = pd.read_parquet(first / "metrics.parquet")
    assert (metrics["table_share"] == manifest["table_share"]).all()
    assert manifest["table_share"] > 0  # the table model is part of every forecast
    again = _run(root, periodic(12, 100), f"forecast.from_models={first}", series_per_task=3)
    night2 = pd.read_parquet(again.output / "forecasts.parquet")
    night1 = pd.read_parquet(first / "forecasts.parquet")
    # the table model forecasts tonight as it did: the same members on the same windows
    assert np.array_equal(night2["y_hat_table"], night1["y_hat_table"])
    # each series' own LSTM in another stack: float32 sums in another order (test_store)
    pd.testing.assert_frame_equal(night2, night1, rtol=1e-7)


def test_a_share_or_weight_departs_from_the_even_mix_only_on_a_clear_gain():
    def sums(means: dict[float, list[float]]) -> dict[tuple[float, float], BlendSum]:
        """Per weight, its per-series metrics (share 0.5 throughout)."""
        hedge = means[0.5]
        return {
            (0.5, w): BlendSum(
                sum(v), len(v), sum((x - h) ** 2 for x, h in zip(v, hedge, strict=True)), 0.0
            )
            for w, v in means.items()
        }

    noisy = {0.5: [1.0, 2.0, 3.0, 4.0], 1.0: [0.7, 2.2, 2.6, 4.3]}  # better on average only
    clear = {0.5: [1.0, 2.0, 3.0, 4.0], 1.0: [0.5, 1.5, 2.6, 3.4]}  # better on every series
    assert choose_blend(sums(noisy), 0.5, "auto") == (0.5, 0.5)
    assert choose_blend(sums(clear), 0.5, "auto") == (0.5, 1.0)
    assert choose_blend({}, "auto", "auto") == (0.0, 1.0)  # nothing scored
