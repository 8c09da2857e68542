"""The sparse integer start: its budget, bounds and tie rule hold, it recovers planted scoring
systems, it is reproducible, and it refuses bad arguments by name."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formulations.network import IntegerNetwork, nonzero_parameters
from pipeline.solving.sparse_start import sparse_linear_network


def grid_inputs(rng: np.random.Generator, n_examples: int, n_inputs: int, zeros: float = 0.0) -> np.ndarray:
    """Inputs in [0, 1] on the 1e-4 grid, a share ``zeros`` of them 0 (as one-hot columns are)."""
    x = np.round(rng.random((n_examples, n_inputs)), 4)
    x[rng.random(x.shape) < zeros] = 0.0
    return x


def planted(seed: int, n_classes: int, n_examples: int = 1200, n_inputs: int = 8):
    """Data labelled by a sparse integer teacher, rows close to a decision boundary dropped, so
    that the teacher, and only a model about as good, classifies every row right."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_classes, n_inputs), dtype=np.int64)
    biases = np.zeros(n_classes, dtype=np.int64)
    if n_classes == 2:
        weights[1, [0, 3]] = [4, -3]
        biases[1] = -1
    else:
        for c in range(n_classes):
            weights[c, c] = 5
    teacher = IntegerNetwork((weights,), (biases,), P=5)
    x = grid_inputs(rng, 3 * n_examples, n_inputs)
    scores = np.sort(teacher.output(x), axis=1)
    clear = scores[:, -1] - scores[:, -2] >= 0.5
    x = x[clear][:n_examples]
    return teacher, x, teacher.predict(x)


def test_recovers_a_planted_two_class_scoring_system():
    teacher, x, y = planted(seed=0, n_classes=2)
    assert 0.2 < y.mean() < 0.8
    # 1,000 validation rows: a smaller model right on a small validation set would win its tie.
    network = sparse_linear_network(x[:200], y[:200], 2, P=5, max_nonzero=nonzero_parameters(teacher),
                                    x_val=x[200:], y_val=y[200:])
    assert network.accuracy(x, y) == 1.0
    assert nonzero_parameters(network) <= nonzero_parameters(teacher)


def test_recovers_a_planted_three_class_scoring_system():
    teacher, x, y = planted(seed=1, n_classes=3)
    assert len(np.unique(y)) == 3
    network = sparse_linear_network(x[:200], y[:200], 3, P=5, max_nonzero=3, x_val=x[200:], y_val=y[200:])
    assert network.weights[0].shape == (3, x.shape[1]) and network.biases[0].shape == (3,)
    assert network.accuracy(x, y) == 1.0
    assert nonzero_parameters(network) <= 3


@pytest.mark.parametrize("n_classes", [2, 3])
def test_ties_go_to_the_lowest_class_as_in_predict(n_classes):
    """Inputs in {0, 1}: many scores tie exactly. Class 1 (two classes) or the argmax only wins
    strictly, so recovering the teacher exactly needs the search to read ties as predict does."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (400, 4)).astype(np.float64)
    if n_classes == 2:
        y = (x[:, 0] > x[:, 1]).astype(np.int64)  # a tie (x0 = x1) is class 0
    else:
        y = np.argmax(np.stack([x[:, 0], x[:, 1], x[:, 2]], axis=1), axis=1)  # first maximum
    network = sparse_linear_network(x[:300], y[:300], n_classes, P=3, max_nonzero=4, x_val=x[300:], y_val=y[300:])
    assert network.accuracy(x, y) == 1.0


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_examples=st.integers(2, 40),
    n_inputs=st.integers(1, 5),
    n_classes=st.integers(2, 4),
    P=st.integers(1, 4),
    budget=st.none() | st.integers(0, 6),
    validation=st.booleans(),
)
def test_never_exceeds_the_budget_or_the_bounds(seed, n_examples, n_inputs, n_classes, P, budget, validation):
    rng = np.random.default_rng(seed)
    x = grid_inputs(rng, n_examples, n_inputs, zeros=0.3)
    y = rng.integers(0, n_classes, n_examples)
    extra = {"x_val": grid_inputs(rng, 10, n_inputs), "y_val": rng.integers(0, n_classes, 10)} if validation else {}
    network = sparse_linear_network(x, y, n_classes, P, budget, seed=seed, **extra)
    assert network.sizes == [n_inputs, n_classes]
    assert network.P == P
    assert all(np.abs(a).max() <= P for a in (*network.weights, *network.biases))
    if budget is not None:
        assert nonzero_parameters(network) <= budget


def test_the_two_class_difference_may_reach_2P_with_a_second_non_zero():
    """Adult's capital gain wants a weight beyond P: with room in the budget, the difference of the
    class rows reaches it (w_1 = P, w_0 < 0), and the count includes both non-zeros."""
    rng = np.random.default_rng(7)
    x = grid_inputs(rng, 600, 3)
    y = (6 * x[:, 0] + x[:, 1] - 3.5 > 0).astype(np.int64)  # needs |v0| = 6 > P = 3 against v1 = 1
    network = sparse_linear_network(x[:400], y[:400], 2, P=3, max_nonzero=5, x_val=x[400:], y_val=y[400:])
    difference = network.weights[0][1] - network.weights[0][0]
    assert abs(difference[0]) > 3
    assert nonzero_parameters(network) <= 5
    assert network.accuracy(x, y) > 0.97


def test_budget_zero_is_the_zero_network_and_budget_one_a_bias():
    rng = np.random.default_rng(5)
    x = grid_inputs(rng, 200, 5, zeros=0.5)
    y = (rng.random(200) < 0.8).astype(np.int64)  # class 1 mostly, nothing to learn from x
    none = sparse_linear_network(x, y, 2, P=3, max_nonzero=0)
    assert nonzero_parameters(none) == 0 and np.all(none.predict(x) == 0)
    one = sparse_linear_network(x[:150], y[:150], 2, P=3, max_nonzero=1, x_val=x[150:], y_val=y[150:])
    assert nonzero_parameters(one) == 1
    assert np.count_nonzero(one.biases[0]) == 1
    assert np.all(one.predict(x) == 1)


def test_the_same_seed_gives_the_same_network():
    rng = np.random.default_rng(11)
    x = grid_inputs(rng, 120, 6, zeros=0.3)
    y = rng.integers(0, 3, 120)
    first = sparse_linear_network(x, y, 3, P=3, max_nonzero=6, seed=4)
    again = sparse_linear_network(x, y, 3, P=3, max_nonzero=6, seed=4)
    assert first.equals(again)


def test_a_time_limit_still_returns_a_valid_network():
    rng = np.random.default_rng(2)
    x = grid_inputs(rng, 300, 10)
    y = rng.integers(0, 2, 300)
    network = sparse_linear_network(x, y, 2, P=15, max_nonzero=8, time_limit=1e-6)
    assert network.sizes == [10, 2] and nonzero_parameters(network) <= 8


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"n_classes": 1}, "n_classes"),
        ({"P": 0}, "P"),
        ({"P": 2.5}, "P"),
        ({"max_nonzero": -1}, "max_nonzero"),
        ({"seed": -1}, "seed"),
        ({"time_limit": 0}, "time_limit"),
        ({"x": np.zeros(10)}, "x"),
        ({"x": np.full((10, 3), 2.0)}, "x"),
        ({"y": np.zeros(9, dtype=np.int64)}, "y"),
        ({"y": np.full(10, 2)}, "y"),
        ({"x_val": np.zeros((4, 3))}, "x_val"),
        ({"x_val": np.zeros((4, 2)), "y_val": np.zeros(4, dtype=np.int64)}, "x_val"),
        ({"x_val": np.zeros((4, 3)), "y_val": np.zeros(3, dtype=np.int64)}, "y_val"),
    ],
)
def test_bad_arguments_are_refused_by_name(change, name):
    arguments = {"x": np.zeros((10, 3)), "y": np.zeros(10, dtype=np.int64), "n_classes": 2, "P": 3}
    arguments.update(change)
    with pytest.raises(ValueError, match=name):
        sparse_linear_network(**arguments)
