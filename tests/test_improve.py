"""MIP local search: every neighbourhood sub-MIP is exact (brute force) and the search is monotone
(every step's objective recomputed from its weights)."""

import itertools
from dataclasses import replace

import numpy as np
import pytest

from formulations import FORMULATIONS, IntegerNetwork, TrainingProblem
from pipeline.improve import improve, neighbourhoods
from networks import EXACT, random_network
from pipeline.solve import solve_mip

MODELS = ["sat_margin", "correct_margin"]


def brute_force_neighbourhood(formulation, problem, current, area):
    """Enumerate every value of the neighbourhood's free parameters, the rest kept at ``current``."""
    slots = [("w", l, idx) for l, m in enumerate(area.free_weights) for idx in zip(*np.nonzero(m))]
    slots += [("b", l, (j,)) for l, m in enumerate(area.free_biases) for j in np.flatnonzero(m)]
    best = np.inf
    for values in itertools.product(range(-problem.P, problem.P + 1), repeat=len(slots)):
        weights = [w.copy() for w in current.weights]
        biases = [b.copy() for b in current.biases]
        for (kind, layer, idx), value in zip(slots, values):
            (weights if kind == "w" else biases)[layer][idx] = value
        best = min(best, formulation.objective_value(IntegerNetwork(tuple(weights), tuple(biases), problem.P), problem))
    return best


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", [0, 1])
def test_each_neighbourhood_optimum_equals_brute_force(model, seed):
    rng = np.random.default_rng(seed)
    P, sizes = 1, [2, 2, 2]
    problem = TrainingProblem(np.round(rng.random((7, 2)), 4), rng.integers(0, 2, 7), 2, (2,), P)
    formulation = FORMULATIONS[model]()
    current = random_network(rng, sizes, P)
    for area in neighbourhoods(sizes):
        sub = replace(problem, bounds=problem.bounds.neighbourhood(current, area.free_weights, area.free_biases))
        outcome = solve_mip(formulation, sub, current, EXACT)
        assert outcome.status == "optimal", area.name
        assert outcome.objective == brute_force_neighbourhood(formulation, problem, current, area), area.name
        # only the neighbourhood moved
        for w_new, w_old, free in zip(outcome.network.weights, current.weights, area.free_weights):
            assert np.array_equal(w_new[~free], w_old[~free])


@pytest.mark.parametrize("model", MODELS)
def test_search_is_monotone_and_every_step_recomputes(model):
    rng = np.random.default_rng(3)
    problem = TrainingProblem(np.round(rng.random((60, 5)), 4), rng.integers(0, 3, 60), 3, (4,), 2)
    formulation = FORMULATIONS[model]()
    start = random_network(rng, problem.sizes, 2)
    seen = []

    def record(step, network):
        seen.append((step, formulation.objective_value(network, problem)))

    outcome = improve(formulation, problem, start, seconds=20, options=EXACT, on_step=record)
    assert seen, "no step ran"
    previous = formulation.objective_value(start, problem)
    for step, recomputed in seen:
        assert recomputed == step.objective_after <= step.objective_before == previous
        previous = recomputed
    assert outcome.objective == previous == formulation.objective_value(outcome.network, problem)
    assert outcome.objective < outcome.start_objective  # a random start is easy to improve


def test_two_hidden_layers_have_neighbourhoods_in_every_layer():
    names = [area.name for area in neighbourhoods([3, 2, 2, 2])]
    assert "neuron 0:1" in names and "neuron+out 1:0" in names and names[-1] == "output"
    assert len(names) == 2 * 4 + 1
