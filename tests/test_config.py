"""The run configuration: its public names stay in step with what implements them."""

from typing import get_args

import pytest

from pipeline.config import TrainConfig
from pipeline.solving.merge import MERGE_RULES


def test_merge_choices_are_the_implemented_rules():
    assert set(get_args(TrainConfig.model_fields["merge"].annotation)) == set(MERGE_RULES)


def test_hidden_accepts_a_comma_list():
    assert TrainConfig(dataset="heart", hidden="16,8").hidden == (16, 8)


def test_class_weight_is_balanced_or_class_weight_pairs_and_refused_where_it_cannot_count():
    assert TrainConfig(class_weight="balanced").class_weight == "balanced"
    assert TrainConfig(class_weight="yes:3, no:0.5").class_weight == {"yes": 3.0, "no": 0.5}
    assert TrainConfig(class_weight={1: 2}).class_weight == {"1": 2.0}  # the estimator's labels, as the file's strings
    for bad in ("heavy", "yes:", "yes:0", "yes:-1,no:1", ":2"):
        with pytest.raises(ValueError, match="must be balanced or CLASS:W pairs"):
            TrainConfig(class_weight=bad)
    for refused, needle in ((dict(formulation="max_margin"), "cannot weight its examples"),
                            (dict(neuron_penalty=0.5), "--neuron-penalty"), (dict(compress=5), "--compress")):
        with pytest.raises(ValueError, match=f"--class-weight: .*{needle}"):
            TrainConfig(class_weight="balanced", **refused)
