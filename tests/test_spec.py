"""Job specs fail before any data is read, naming the file and the key, exit code 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cluster.cli import main
from cluster.spec import load_spec
from lstm_worker.errors import SpecError


def test_defaults_and_overrides(write_job):
    spec = load_spec(write_job(), ["train.epochs=7", "model.head=mlp", "resources.num_gpus=0.5"])
    assert spec.train.epochs == 7 and spec.model.head == "mlp" and spec.resources.num_gpus == 0.5
    assert spec.input.id_col == "unique_id" and spec.forecast.holdout_steps == 6


@pytest.mark.parametrize(
    "override, culprit",
    [
        ("train.epochz=3", "train.epochz: unknown key"),
        ("train.epochs=-1", "train.epochs"),
        ("forecast.horizon=0", "forecast.horizon"),
        ("model.head=transformer", "model.head"),
        ("resources.num_gpus=abc", "resources.num_gpus"),
        ("input.freq=fortnightly", "input.freq"),
        ("train.lr=1.0e39", "train.lr: Value error, 1e+39 does not fit in float32"),
        ("train.grad_clip=.inf", "train.grad_clip: Value error, inf does not fit in float32"),
        ("resources.task_timeout=0", "resources.task_timeout"),
        ("ledger.jump=0.5", "ledger.jump"),
        ("monitor.previous=latest", "monitor: unknown key (renamed ledger:"),
        ("train.trainer=reference", "train.trainer: unknown key (there is one trainer now"),
    ],
)
def test_bad_values_name_the_file_and_the_key(write_job, override, culprit):
    path = write_job()
    with pytest.raises(SpecError) as caught:
        load_spec(path, [override])
    assert str(path) in str(caught.value) and culprit in str(caught.value)


def test_cli_exit_code_is_2_for_a_bad_spec(write_job, tmp_path):
    path = write_job()
    result = CliRunner().invoke(main, ["validate", str(path), "--set", "train.loss=l3"])
    assert result.exit_code == 2 and "train.loss" in result.output
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "not found" in result.output
    (tmp_path / "bad.yaml").write_text("input: [unclosed\n")
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "not valid YAML" in result.output
    result = CliRunner().invoke(main, ["validate", str(path), "--set", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_spec_is_data_not_code(tmp_path):
    (tmp_path / "evil.yaml").write_text("input: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path / "evil.yaml")
