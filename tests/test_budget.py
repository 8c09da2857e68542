"""The size budget (``--max-nonzero K``): every MIP holds it, checked against brute force over the
networks within K; local search and compression keep it at every step; the merge and the start
are brought within it; the count is recounted from the integer weights, never read from a solver."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import EXACT, StepClock, every_network, grid_inputs, random_network

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import FORMULATIONS
from formulations.network import nonzero_parameters, strip_neurons, within_budget
from formulations.neuron_choice import NeuronChoice, neuron_problem, sign_costs
from pipeline.solving.compress import compress
from pipeline.solving.heuristic import train_ste_within
from pipeline.solving.improve import improve, neighbourhoods, solve_neighbourhood
from pipeline.solving.solve import solve_mip

SOFT = ("max_correct", "sat_margin", "correct_margin", "min_hinge")


def budgeted(problem: TrainingProblem, budget: int) -> TrainingProblem:
    return TrainingProblem(problem.x, problem.y, problem.n_classes, problem.hidden, problem.P, problem.bounds,
                           max_nonzero=budget)


def optimum_within(formulation, problem):
    return min(formulation.objective_value(net, problem) for net in every_network(tuple(problem.sizes), problem.P)
               if nonzero_parameters(net) <= problem.max_nonzero)


# (inputs, hidden, P, examples, classes, seed, budget): no hidden layer and one, two classes and three.
INSTANCES = [(2, (), 2, 8, 2, 0, 1), (2, (), 2, 8, 2, 1, 2), (2, (), 1, 8, 3, 2, 3), (2, (1,), 1, 8, 2, 3, 2),
             (2, (1,), 1, 8, 2, 4, 4), (3, (), 1, 10, 2, 5, 2)]


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda i: "-".join(map(str, i)))
def test_every_model_s_optimum_within_the_budget_equals_brute_force(instance):
    inputs, hidden, P, n, n_classes, seed, budget = instance
    rng = np.random.default_rng(seed)
    problem = budgeted(TrainingProblem(grid_inputs(rng, n, inputs), rng.integers(0, n_classes, n), n_classes,
                                       hidden, P), budget)
    for name in SOFT:
        formulation = FORMULATIONS[name]()
        outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
        assert outcome.status == "optimal", name
        assert nonzero_parameters(outcome.network) <= budget, name
        assert outcome.objective == pytest.approx(optimum_within(formulation, problem), abs=1e-6), name
        unbudgeted = solve_mip(formulation, budgeted(problem, 10**6), problem.zero_network(), EXACT)
        assert unbudgeted.objective <= outcome.objective + 1e-9, name


def test_a_budget_that_binds_changes_the_optimum():
    """The instances above are not all ones where the budget is slack: here the optimum with no
    budget needs more non-zero parameters than allowed, and the budgeted optimum is worse."""
    rng = np.random.default_rng(11)
    x = grid_inputs(rng, 12, 3)
    teacher = IntegerNetwork((np.array([[0, 0, 0], [2, -2, 1]]),), (np.array([0, 0]),), 2)
    problem = TrainingProblem(x, teacher.predict(x), 2, (), 2)
    formulation = FORMULATIONS["max_correct"]()
    free = solve_mip(formulation, budgeted(problem, 10**6), problem.zero_network(), EXACT)
    tight = solve_mip(formulation, budgeted(problem, 1), problem.zero_network(), EXACT)
    assert free.objective == 0 and tight.objective > 0
    assert nonzero_parameters(tight.network) <= 1
    assert tight.objective == pytest.approx(optimum_within(formulation, budgeted(problem, 1)))


def test_a_start_over_the_budget_is_refused():
    rng = np.random.default_rng(0)
    problem = budgeted(TrainingProblem(grid_inputs(rng, 6, 2), rng.integers(0, 2, 6), 2, (), 1), 1)
    start = IntegerNetwork((np.array([[1, 1], [0, 0]]),), (np.array([0, 0]),), 1)
    with pytest.raises(ValueError, match="budget"):
        solve_mip(FORMULATIONS["max_correct"](), problem, start, EXACT)


@pytest.mark.parametrize("budget", [3, 5])
def test_a_single_neuron_step_on_arrays_keeps_the_budget_and_equals_brute_force(budget):
    """The single-neuron step goes to HiGHS as arrays with the budget's columns; its optimum is the
    best of every value of the neuron's parameters that keeps the whole network within budget."""
    rng = np.random.default_rng(5)
    problem = TrainingProblem(grid_inputs(rng, 30, 3), rng.integers(0, 2, 30), 2, (2,), 1)
    formulation = FORMULATIONS["max_correct"]()
    start = within_budget(random_network(rng, problem.sizes, 1), budget)
    problem = budgeted(problem, budget)
    neuron_index, (minus, plus) = next((j, costs) for j in range(2)
                                       if np.any((costs := sign_costs(formulation, problem, start, 0, j))[0]
                                                 != costs[1]))
    pivotal = np.flatnonzero(plus != minus)
    single, neuron = neuron_problem(problem, start, 0, neuron_index, pivotal)
    assert single.max_nonzero == budget - nonzero_parameters(start) + nonzero_parameters(neuron)
    choice = NeuronChoice((plus - minus)[pivotal], float(minus.sum()))
    assert choice.matrix(single) is not None
    outcome = solve_mip(choice, single, neuron, EXACT)
    best = min(choice.objective_value(net, single) for net in every_network((3, 1), 1)
               if nonzero_parameters(net) <= single.max_nonzero)
    assert outcome.status == "optimal" and outcome.objective == pytest.approx(best)
    assert nonzero_parameters(outcome.network) <= single.max_nonzero


@pytest.mark.parametrize("model", ["max_correct", "sat_margin"])
def test_every_neighbourhood_keeps_the_budget(model):
    rng = np.random.default_rng(7)
    problem = budgeted(TrainingProblem(grid_inputs(rng, 20, 2), rng.integers(0, 2, 20), 2, (2,), 1), 5)
    formulation = FORMULATIONS[model]()
    current = within_budget(random_network(rng, problem.sizes, 1), 5)
    objective = formulation.objective_value(current, problem)
    for area in neighbourhoods(problem.sizes):
        step = solve_neighbourhood(formulation, problem, current, objective, area, EXACT)
        assert nonzero_parameters(step.network) <= 5, area.name
        assert step.objective <= objective, area.name


def test_local_search_keeps_the_budget_at_every_step():
    rng = np.random.default_rng(3)
    problem = budgeted(TrainingProblem(grid_inputs(rng, 60, 5), rng.integers(0, 3, 60), 3, (4,), 2), 12)
    formulation = FORMULATIONS["max_correct"]()
    start = within_budget(random_network(rng, problem.sizes, 2), 12)
    counts, clock = [], StepClock()
    outcome = improve(formulation, problem, start, 10, EXACT, improve_step_limit=0.5,
                      on_step=lambda step, network: counts.append(nonzero_parameters(network)),
                      solve_many=clock.solver(formulation, problem, exact=False), clock=clock)
    assert counts and max(counts) <= 12
    assert outcome.objective == formulation.objective_value(outcome.network, problem) <= outcome.start_objective


def test_compression_keeps_the_budget_and_refuses_a_network_over_it():
    rng = np.random.default_rng(4)
    x = grid_inputs(rng, 40, 3)
    network = within_budget(random_network(rng, [3, 3, 2], 2), 14)
    y = network.predict(x)
    sizes = []
    outcome = compress(network, x, y, 2, 10, EXACT, on_step=lambda step, net: sizes.append(nonzero_parameters(net)),
                       max_nonzero=14)
    assert max(sizes, default=0) <= 14 and nonzero_parameters(outcome.network) <= 14
    with pytest.raises(ValueError, match="budget"):
        compress(network, x, y, 2, 10, EXACT, max_nonzero=nonzero_parameters(strip_neurons(network)) - 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 30))
def test_within_budget_keeps_the_largest_parameters(seed, budget):
    rng = np.random.default_rng(seed)
    network = random_network(rng, [4, 3, 2], 3)
    kept = within_budget(network, budget)
    assert nonzero_parameters(kept) == min(budget, nonzero_parameters(network))
    before = np.concatenate([p.ravel() for w, b in zip(network.weights, network.biases) for p in (w, b)])
    after = np.concatenate([p.ravel() for w, b in zip(kept.weights, kept.biases) for p in (w, b)])
    assert np.all((after == before) | (after == 0))
    if 0 < nonzero_parameters(kept) < nonzero_parameters(network):
        assert np.abs(after[after != 0]).min() >= np.abs(before[(after == 0) & (before != 0)]).max()
    assert within_budget(kept, budget).equals(kept)


def test_the_gradient_start_within_a_budget_has_at_most_that_many_non_zero_parameters():
    rng = np.random.default_rng(1)
    x = grid_inputs(rng, 80, 6)
    y = (x[:, 0] + x[:, 1] > x[:, 2] + 0.3).astype(int)
    for hidden, budget in (((), 3), ((3,), 7)):
        network = train_ste_within(x, y, 2, hidden, 3, budget, seed=0)
        assert nonzero_parameters(network) <= budget and network.sizes == [6, *hidden, 2]
