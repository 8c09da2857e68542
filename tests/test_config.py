"""The run configuration: its public names stay in step with what implements them."""

from typing import get_args

from pipeline.config import TrainConfig
from pipeline.solving.merge import MERGE_RULES


def test_merge_choices_are_the_implemented_rules():
    assert set(get_args(TrainConfig.model_fields["merge"].annotation)) == set(MERGE_RULES)


def test_hidden_accepts_a_comma_list():
    assert TrainConfig(dataset="heart", hidden="16,8").hidden == (16, 8)
