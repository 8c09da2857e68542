"""The single-neuron step as arrays (formulations/neuron_choice.py, ``NeuronChoice.matrix``) is the
same model as its Pyomo form: checked point by point without a solver, then solved both ways."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from networks import EXACT, random_network

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import FORMULATIONS
from formulations.neuron_choice import NeuronChoice, neuron_problem, sign_costs
from pipeline.solving.solve import solve_mip


def neuron_step(seed, hidden=(2,), layer=0):
    """The step of the first random network (from ``seed`` on) whose neuron 0 of ``layer`` can
    change some example's loss."""
    rng = np.random.default_rng(seed)
    problem = TrainingProblem(np.round(rng.random((12, 3)), 4), rng.integers(0, 2, 12), 2, hidden, 1)
    while True:
        network = random_network(rng, problem.sizes, 1)
        minus, plus = sign_costs(FORMULATIONS["sat_margin"](), problem, network, layer, 0)
        pivotal = np.flatnonzero(plus != minus)
        if len(pivotal):
            single, start = neuron_problem(problem, network, layer, 0, pivotal)
            return NeuronChoice((plus - minus)[pivotal], float(minus.sum())), single, start


@pytest.mark.parametrize(("seed", "hidden", "layer"), [(0, (2,), 0), (1, (2,), 0), (2, (2, 2), 1)])
def test_every_network_is_one_point_of_the_arrays_with_its_objective(seed, hidden, layer):
    """Every (w, b) in the box, with each open u at its sign, satisfies every row and scores
    ``objective_value``; flipping any open u breaks a row (u is the sign, not a free choice)."""
    choice, single, _ = neuron_step(seed, hidden, layer)
    matrix = choice.matrix(single)
    n_signs = matrix.n_columns - single.x.shape[1] - 1
    assert n_signs > 0
    for values in itertools.product(range(-1, 2), repeat=single.x.shape[1] + 1):
        network = IntegerNetwork((np.array([values[:-1]]),), (np.array(values[-1:]),), 1)
        columns = choice.matrix_start(network, single)
        activity = matrix.row_activity(columns)
        assert np.all(activity >= matrix.row_lower) and np.all(activity <= matrix.row_upper)
        assert matrix.objective(columns) == pytest.approx(choice.objective_value(network, single), abs=1e-9)
        assert choice.matrix_network(columns, single).equals(network)
        for sign in range(n_signs):
            flipped = columns.copy()
            flipped[-n_signs + sign] = 1 - flipped[-n_signs + sign]
            activity = matrix.row_activity(flipped)
            assert np.any(activity < matrix.row_lower) or np.any(activity > matrix.row_upper)


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_arrays_and_pyomo_model_reach_the_same_optimum(seed):
    choice, single, start = neuron_step(seed)
    from_arrays = solve_mip(choice, single, start, EXACT)
    from_pyomo = solve_mip(choice, single, start, replace(EXACT, solver="appsi_highs"))
    assert from_arrays.status == from_pyomo.status == "optimal"
    assert from_arrays.objective == pytest.approx(from_pyomo.objective, abs=1e-9)
    assert from_arrays.setup_seconds < from_pyomo.setup_seconds + from_pyomo.build_seconds
