"""The straight-through-estimator trainer: it learns, it is reproducible, it respects the bounds, and its
loss is the paper's squared hinge."""

import numpy as np
import pytest

from formulations.network import IntegerNetwork
from formulations.problem import output_scale
from pipeline.solving.heuristic import SteSettings, squared_hinge_loss, train_ste

SHORT = SteSettings(steps=300)


def grid_inputs(rng: np.random.Generator, n_examples: int, n_inputs: int) -> np.ndarray:
    """Inputs in [0, 1] on the 1e-4 grid, like the preprocessed datasets."""
    return np.round(rng.random((n_examples, n_inputs)), 4)


def planted_problem(seed: int, n_examples: int = 200, n_inputs: int = 10):
    """Inputs labelled by a random integer teacher network [n_inputs, 4, 2] with P = 1."""
    rng = np.random.default_rng(seed)
    teacher = IntegerNetwork(
        weights=(rng.integers(-1, 2, (4, n_inputs)), rng.integers(-1, 2, (2, 4))),
        biases=(rng.integers(-1, 2, 4), rng.integers(-1, 2, 2)),
        P=1,
    )
    x = grid_inputs(rng, n_examples, n_inputs)
    return x, teacher.predict(x)


def test_learns_a_planted_teacher_network():
    x, y = planted_problem(seed=2)
    assert 0.3 < y.mean() < 0.7, "the teacher should label both classes"
    network = train_ste(x, y, n_classes=2, hidden=(4,), P=1, seed=0)
    assert network.accuracy(x, y) >= 0.9


def test_same_seed_gives_the_same_network_and_another_seed_another():
    x, y = planted_problem(seed=5)
    first = train_ste(x, y, 2, (8,), P=3, seed=11, settings=SHORT)
    again = train_ste(x, y, 2, (8,), P=3, seed=11, settings=SHORT)
    other = train_ste(x, y, 2, (8,), P=3, seed=12, settings=SHORT)
    assert first.equals(again)
    assert not first.equals(other)


@pytest.mark.parametrize("P", [1, 3, 15])
def test_parameters_are_integers_within_the_bound(P):
    x, y = planted_problem(seed=1)
    network = train_ste(x, y, 2, (8,), P=P, seed=0, settings=SHORT)
    assert network.P == P
    for array in (*network.weights, *network.biases):
        assert array.dtype == np.int64
        assert np.abs(array).max() <= P
    assert max(np.abs(w).max() for w in network.weights) > 0, "training should leave some weight non-zero"


@pytest.mark.parametrize("hidden", [(), (8,), (8, 8)])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_any_depth_and_number_of_classes(hidden, n_classes):
    rng = np.random.default_rng(7)
    x = grid_inputs(rng, 120, 12)
    y = np.arange(120) % n_classes
    network = train_ste(x, y, n_classes, hidden, P=3, seed=0, settings=SHORT)
    assert network.sizes == [12, *hidden, n_classes]
    assert network.predict(x).shape == (120,)


def test_generalizes_on_a_planted_teacher_when_validating():
    x, y = planted_problem(seed=2, n_examples=260)
    network = train_ste(x[:200], y[:200], 2, (4,), P=1, seed=0, x_val=x[200:], y_val=y[200:])
    assert network.accuracy(x[200:], y[200:]) >= 0.85


def test_never_returns_a_network_worse_than_its_start_on_the_data_that_selects_it():
    """The start (zero steps) is the first candidate, so the best candidate scores at least as well."""
    x, y = planted_problem(seed=5, n_examples=260)
    train, val = slice(0, 200), slice(200, 260)
    start = train_ste(x[train], y[train], 2, (8,), P=3, seed=4, settings=SteSettings(steps=0))
    trained = train_ste(x[train], y[train], 2, (8,), P=3, seed=4, settings=SHORT)
    validated = train_ste(
        x[train], y[train], 2, (8,), P=3, seed=4, settings=SHORT, x_val=x[val], y_val=y[val]
    )
    assert trained.accuracy(x[train], y[train]) >= start.accuracy(x[train], y[train])
    assert validated.accuracy(x[val], y[val]) >= start.accuracy(x[val], y[val])


def test_inputs_that_are_always_zero_get_zero_weights():
    x, y = planted_problem(seed=2)
    x[:, [0, 6]] = 0.0
    network = train_ste(x, y, 2, (8,), P=15, seed=0, settings=SHORT)
    assert not network.weights[0][:, [0, 6]].any()


def test_a_time_limit_still_returns_a_valid_network():
    x, y = planted_problem(seed=2)
    network = train_ste(x, y, 2, (8,), P=3, seed=0, settings=SteSettings(steps=10**7, time_limit=0.2))
    assert network.sizes == [10, 8, 2]


def test_squared_hinge_loss_matches_a_hand_computation():
    # One hidden neuron z = x0 - x1: +1 for the first example (0.3), -1 for the second (-0.6).
    # Outputs (h, -h + 1): example 1 -> (1, 0), example 2 -> (-1, 2).
    x = np.array([[0.5, 0.2], [0.1, 0.7]])
    y = np.array([0, 1])
    weights = (np.array([[1, -1]]), np.array([[1], [-1]]))
    biases = (np.array([0]), np.array([0, 1]))

    # P = 1: Ω = (1 + 1) * 1 = 2, so ŷ = z. Y·ŷ is (1, 0) and (1, 2): only the 0 falls short,
    # by 0.5, so the loss is 0.25.
    assert squared_hinge_loss(IntegerNetwork(weights, biases, P=1), x, y, 2) == pytest.approx(0.25)

    # P = 3: Ω = 6, so ŷ = z / 3. Y·ŷ is (1/3, 0) and (1/3, 2/3):
    # (0.5 - 1/3)² + 0.5² + (0.5 - 1/3)² = 1/36 + 1/4 + 1/36.
    expected = 1 / 36 + 1 / 4 + 1 / 36
    assert squared_hinge_loss(IntegerNetwork(weights, biases, P=3), x, y, 2) == pytest.approx(expected)


def test_output_scale_is_the_papers():
    x = np.full((4, 21), 0.5)
    assert output_scale(x, [16], P=3) == 17 * 3
    assert output_scale(x, [], P=3) == pytest.approx(0.5 * 21)  # mean(x)·n_inputs without a hidden layer


@pytest.mark.parametrize(
    "change",
    [
        {"y": np.array([0, 1, 2])},                   # a label outside [0, n_classes)
        {"y": np.array([0, 1])},                      # fewer labels than examples
        {"x_val": np.zeros((2, 2))},                  # x_val without y_val
        {"P": 0},
        {"hidden": (4, 0)},
    ],
)
def test_rejects_inputs_that_do_not_fit(change):
    arguments = {"x": np.zeros((3, 2)), "y": np.array([0, 1, 1]), "n_classes": 2, "hidden": (4,), "P": 1}
    with pytest.raises(ValueError):
        train_ste(**{**arguments, **change})


def test_parameters_outside_keep_stay_zero():
    """A pruned network retrained (compression's gradient baseline): what ``keep`` leaves out is 0."""
    rng = np.random.default_rng(0)
    x, y = np.round(rng.random((60, 5)), 4), rng.integers(0, 2, 60)
    keep = [(rng.random((4, 5)) < 0.5, rng.random(4) < 0.5), (rng.random((2, 4)) < 0.5, np.ones(2, dtype=bool))]
    network = train_ste(x, y, 2, (4,), 3, seed=1, keep=keep)
    for (w_kept, b_kept), w, b in zip(keep, network.weights, network.biases):
        assert not w[~w_kept].any() and not b[~b_kept].any()
    assert any(w[w_kept].any() for (w_kept, _), w in zip(keep, network.weights))


def test_the_gradient_start_and_the_sparse_start_run_on_one_blas_thread(monkeypatch):
    """numpy's BLAS is capped inside both starts (pipeline/solving/blas.py) and restored after: with
    its default threads a busy machine made the start 14 times slower (docs/results/blas_threads.md)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from pipeline.solving import heuristic, sparse_start

    def blas_threads():
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    seen = {"gradient": [], "sparse": []}
    forward, objective = heuristic._forward, sparse_start._Problem.objective
    def look(start):  # the first few calls of each: threadpoolctl's inspection costs milliseconds
        if len(seen[start]) < 10:
            seen[start].append(blas_threads())

    monkeypatch.setattr(heuristic, "_forward", lambda *args: (look("gradient"), forward(*args))[1])
    monkeypatch.setattr(sparse_start._Problem, "objective",
                        lambda self, *args: (look("sparse"), objective(self, *args))[1])
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = (x[:, 0] > 0.5).astype(np.int64)
    with threadpool_limits(2, user_api="blas"):  # two to cap, even where BLAS defaults to one
        before = blas_threads()
        assert before == {2}, before
        heuristic.train_ste(x, y, 2, (3,), 1, settings=heuristic.SteSettings(steps=5))
        sparse_start.sparse_linear_network(x, y, 2, 3, 2)
        assert blas_threads() == before
    assert all(calls and all(threads == {1} for threads in calls) for calls in seen.values()), seen
