"""sat_margin against checks that do not trust HiGHS: brute force, a planted teacher, numpy."""

import numpy as np
import pytest
from networks import EXACT, every_network, grid_inputs, random_network

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.bounds import preactivation_bounds
from formulations.sat_margin import SatMargin
from pipeline.solving.solve import ObjectiveMismatch, SolverOptions, solve_mip


@pytest.mark.parametrize("seed,P", [(0, 1), (1, 1), (2, 1), (3, 2)])
def test_proven_optimum_equals_brute_force(seed, P):
    rng = np.random.default_rng(seed)
    x = grid_inputs(rng, 6, 2)
    y = rng.integers(0, 2, 6)
    problem = TrainingProblem(x, y, n_classes=2, hidden=(1,), P=P)
    formulation = SatMargin()
    best = min(formulation.objective_value(net, problem) for net in every_network(tuple(problem.sizes), P))
    outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
    assert outcome.status == "optimal"
    assert outcome.objective == best
    assert formulation.objective_value(outcome.network, problem) == best


def test_planted_teacher_is_matched_exactly():
    rng = np.random.default_rng(7)
    P, sizes = 1, [4, 3, 2]
    teacher = random_network(rng, sizes, P)
    while len(set(teacher.predict(grid_inputs(rng, 200, 4)))) < 2:
        teacher = random_network(rng, sizes, P)
    x = grid_inputs(rng, 300, 4)
    y = teacher.predict(x)
    full = TrainingProblem(x, y, n_classes=2, hidden=(3,), P=P)
    formulation = SatMargin()
    # Keep the examples the teacher fits with the margin, so that objective 0 exists.
    keep = formulation.example_losses(teacher.output(x), full) == 0
    problem = TrainingProblem(x[keep][:40], y[keep][:40], n_classes=2, hidden=(3,), P=P)
    assert formulation.objective_value(teacher, problem) == 0
    outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
    assert outcome.objective == 0
    assert formulation.objective_value(outcome.network, problem) == 0
    assert outcome.network.accuracy(problem.x, problem.y) == 1.0


def test_start_is_kept_as_incumbent_and_recomputed():
    rng = np.random.default_rng(3)
    x = grid_inputs(rng, 30, 5)
    y = rng.integers(0, 3, 30)
    problem = TrainingProblem(x, y, n_classes=3, hidden=(4,), P=3)
    start = random_network(rng, problem.sizes, 3)
    formulation = SatMargin()
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=5, target_error=None))
    assert outcome.start_objective == formulation.objective_value(start, problem)
    assert outcome.objective <= outcome.start_objective
    assert formulation.objective_value(outcome.network, problem) == outcome.objective


def test_a_wrong_numpy_objective_is_caught():
    class Miscounting(SatMargin):
        def objective_value(self, network, problem):
            return super().objective_value(network, problem) + 1

    rng = np.random.default_rng(4)
    problem = TrainingProblem(grid_inputs(rng, 8, 2), rng.integers(0, 2, 8), 2, (2,), 1)
    with pytest.raises(ObjectiveMismatch):
        solve_mip(Miscounting(), problem, problem.zero_network(), EXACT)


def test_two_hidden_layers_solve_and_verify():
    rng = np.random.default_rng(5)
    problem = TrainingProblem(grid_inputs(rng, 12, 3), rng.integers(0, 2, 12), 2, (3, 2), 2)
    formulation = SatMargin()
    outcome = solve_mip(formulation, problem, problem.zero_network(), SolverOptions(time_limit=20, target_error=None))
    assert formulation.objective_value(outcome.network, problem) == outcome.objective < outcome.start_objective


@pytest.mark.parametrize("signed_inputs", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_interval_bounds_contain_every_network_inside_the_box(seed, signed_inputs):
    """Data inputs lie in [0, 1]; a deeper neuron seen alone (local search) reads ±1 inputs."""
    rng = np.random.default_rng(seed)
    sizes, P = [4, 5, 3, 2], 3
    x = rng.choice([-1.0, 1.0], (20, 4)) if signed_inputs else grid_inputs(rng, 20, 4)
    lower_w = tuple(rng.integers(-P, 1, (o, i)) for i, o in zip(sizes[:-1], sizes[1:]))
    lower_b = tuple(rng.integers(-P, 1, o) for o in sizes[1:])
    bounds = ParameterBounds(
        weight_lower=lower_w,
        weight_upper=tuple(w + rng.integers(0, P + 1, w.shape).clip(max=P - w) for w in lower_w),
        bias_lower=lower_b,
        bias_upper=tuple(b + rng.integers(0, P + 1, b.shape).clip(max=P - b) for b in lower_b),
    )
    intervals = preactivation_bounds(x, bounds)
    for _ in range(50):
        net = IntegerNetwork(
            weights=tuple(rng.integers(lo, hi + 1) for lo, hi in zip(bounds.weight_lower, bounds.weight_upper)),
            biases=tuple(rng.integers(lo, hi + 1) for lo, hi in zip(bounds.bias_lower, bounds.bias_upper)),
            P=P,
        )
        assert bounds.contains(net)
        for z, (lo, hi) in zip(net.preactivations(x), intervals):
            assert np.all(lo - 1e-9 <= z) and np.all(z <= hi + 1e-9)
