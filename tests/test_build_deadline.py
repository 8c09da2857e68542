"""A batch's time limit covers building its model: the families of variables that grow with
examples × neurons × classes watch the deadline while they are made (issue 26, item 3)."""

import time

import numpy as np
import pytest

from formulations import TrainingProblem, encoding
from formulations.encoding import BuildPastDeadline, built_by
from formulations.models import FORMULATIONS


def test_the_products_of_a_many_class_model_stop_at_the_deadline(monkeypatch):
    """100 classes (the most a label may have), 720 examples, 16 neurons: 1.15 million products of
    a sign and an output weight. The deadline passes as the products begin; building them had taken
    seconds before any rule looked at it (3 s for their index, 2.4 s for their variables, measured)."""
    rng = np.random.default_rng(0)
    problem = TrainingProblem(np.round(rng.random((720, 5)), 4), np.arange(720) % 100, 100, (16,), 3)
    entered = []
    products = encoding._add_deeper_preactivation

    def deadline_passes_here(*args):
        entered.append(time.perf_counter())
        encoding._build_deadline.set(entered[0])  # the built_by deadline, now
        return products(*args)

    monkeypatch.setattr(encoding, "_add_deeper_preactivation", deadline_passes_here)
    with built_by(float("inf")), pytest.raises(BuildPastDeadline):
        FORMULATIONS["max_correct"]().create(problem)
    # the first check comes after one chunk of the index: milliseconds; 0.5 s is a wide margin
    assert time.perf_counter() - entered[0] < 0.5
