import itertools

import pytest
from pydantic import ValidationError

from cluster.sections import JobSpec
from lstm_worker.search import SearchSpec, Setting, expand


def test_grid_expands_to_every_combination_in_order():
    search = SearchSpec(grid={"model.lookback": [24, 48], "train.lr": [0.1, 0.01, 0.001]})
    settings = expand(search, seed=0)
    expected = list(itertools.product([24, 48], [0.1, 0.01, 0.001]))
    assert [(s.overrides["model.lookback"], s.overrides["train.lr"]) for s in settings] == expected
    assert [s.index for s in settings] == list(range(6))


def test_random_samples_are_distinct_members_of_the_grid_and_seeded():
    search = SearchSpec(grid={"model.hidden_size": [8, 16, 32, 64], "seed": [0, 1, 2]}, samples=5)
    first, again = expand(search, seed=3), expand(search, seed=3)
    assert first == again and len(first) == 5
    combos = {tuple(s.overrides.values()) for s in first}
    assert len(combos) == 5 and combos <= set(itertools.product([8, 16, 32, 64], [0, 1, 2]))


def test_no_search_is_one_setting_and_unsearchable_keys_are_refused():
    assert [s.overrides for s in expand(None, 0)] == [{}]
    with pytest.raises(ValidationError, match=r"forecast\.horizon"):
        SearchSpec(grid={"forecast.horizon": [24]})


def test_a_setting_overrides_nested_fields_without_touching_the_original():
    spec = JobSpec.model_validate(
        {"input": {"path": "x"}, "output": {"path": "o"}, "model": {"lookback": 72}, "seed": 0}
    )
    tuned = spec.for_setting(Setting(0, {"model.lookback": 24, "seed": 5}))
    assert (tuned.model.lookback, tuned.seed) == (24, 5)
    assert (spec.model.lookback, spec.seed) == (72, 0)
