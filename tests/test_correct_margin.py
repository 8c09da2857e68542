"""correct_margin against brute force and numpy, and its point: a constant network scores its error."""

import numpy as np
import pytest
from networks import EXACT, every_network, grid_inputs

from formulations import IntegerNetwork, TrainingProblem
from formulations.correct_margin import CorrectMargin
from pipeline.solving.solve import SolverOptions, solve_mip


@pytest.mark.parametrize("seed,P,classes,hidden", [(0, 1, 2, (1,)), (1, 1, 3, (1,)), (2, 2, 2, (1,)), (3, 1, 3, ())])
def test_proven_optimum_equals_brute_force(seed, P, classes, hidden):
    rng = np.random.default_rng(seed)
    problem = TrainingProblem(grid_inputs(rng, 7, 2), rng.integers(0, classes, 7), classes, hidden, P)
    formulation = CorrectMargin()
    best = min(formulation.objective_value(net, problem) for net in every_network(tuple(problem.sizes), P))
    outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
    assert outcome.status == "optimal" and outcome.objective == best


def test_a_constant_network_scores_exactly_its_training_error():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 50)
    problem = TrainingProblem(grid_inputs(rng, 50, 3), y, 2, (4,), 3)
    # every hidden neuron fires +1 (bias 3 >= 0 at any input); output 1 wins by 2·(4+1)·3 ≥ the margin
    constant = IntegerNetwork(
        weights=(np.zeros((4, 3), int), np.vstack([np.full(4, -3), np.full(4, 3)])),
        biases=(np.full(4, 3), np.array([-3, 3])),
        P=3,
    )
    assert CorrectMargin().objective_value(constant, problem) == np.count_nonzero(y != 1)


def test_warm_start_is_feasible_and_recomputed():
    rng = np.random.default_rng(6)
    problem = TrainingProblem(grid_inputs(rng, 40, 4), rng.integers(0, 3, 40), 3, (5,), 2)
    start = IntegerNetwork(
        (rng.integers(-2, 3, (5, 4)), rng.integers(-2, 3, (3, 5))), (rng.integers(-2, 3, 5), rng.integers(-2, 3, 3)), 2
    )
    formulation = CorrectMargin()
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=5, target_error=None))
    assert outcome.start_objective == formulation.objective_value(start, problem)
    assert formulation.objective_value(outcome.network, problem) == outcome.objective <= outcome.start_objective
