"""MIP local search: every neighbourhood step is exact (brute force) and the search is monotone
(every step's objective recomputed from its weights)."""

import itertools

import numpy as np
import pytest
from networks import EXACT, StepClock, random_network

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import FORMULATIONS, training_model
from formulations.network import active_neurons, switch_off
from pipeline.solving.heuristic import train_ste
from pipeline.solving.improve import (
    MAX_OUTGOING_VALUES,
    SearchEnd,
    graft,
    improve,
    neighbourhoods,
    outgoing_values,
    output_problem,
    portfolio,
    solve_neighbourhood,
)

MODELS = ["sat_margin", "correct_margin", "max_correct", "min_hinge"]
"""Every soft-loss model: a single neuron's step is solved on its pivotal examples for each."""


def brute_force_neighbourhood(formulation, problem, current, area):
    """Enumerate every value of the neighbourhood's free parameters, the rest kept at ``current``."""
    slots = [("w", layer, idx) for layer, m in enumerate(area.free_weights) for idx in zip(*np.nonzero(m))]
    slots += [("b", layer, (j,)) for layer, m in enumerate(area.free_biases) for j in np.flatnonzero(m)]
    best = np.inf
    for values in itertools.product(range(-problem.P, problem.P + 1), repeat=len(slots)):
        weights = [w.copy() for w in current.weights]
        biases = [b.copy() for b in current.biases]
        for (kind, layer, idx), value in zip(slots, values):
            (weights if kind == "w" else biases)[layer][idx] = value
        best = min(best, formulation.objective_value(IntegerNetwork(tuple(weights), tuple(biases), problem.P), problem))
    return best


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("sizes", "seed"), [([2, 2, 2], 0), ([2, 2, 2], 1), ([2, 2, 2, 2], 2)])
def test_each_neighbourhood_optimum_equals_brute_force(model, sizes, seed):
    rng = np.random.default_rng(seed)
    P = 1
    problem = TrainingProblem(np.round(rng.random((7, 2)), 4), rng.integers(0, 2, 7), 2, tuple(sizes[1:-1]), P)
    formulation = FORMULATIONS[model]()
    current = random_network(rng, sizes, P)
    objective = formulation.objective_value(current, problem)
    for area in neighbourhoods(sizes):
        step = solve_neighbourhood(formulation, problem, current, objective, area, EXACT)
        network, found, status = step.network, step.objective, step.status
        assert status in ("optimal", "unchanged"), area.name
        assert found == formulation.objective_value(network, problem), area.name
        assert found == pytest.approx(brute_force_neighbourhood(formulation, problem, current, area), abs=1e-9), area.name
        # only the neighbourhood moved
        for w_new, w_old, free in zip(network.weights, current.weights, area.free_weights):
            assert np.array_equal(w_new[~free], w_old[~free])
        for b_new, b_old, free in zip(network.biases, current.biases, area.free_biases):
            assert np.array_equal(b_new[~free], b_old[~free])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sizes", [[2, 3, 2], [2, 2]])
def test_the_output_layer_is_solved_on_merged_rows_to_the_brute_force_optimum(model, sizes):
    """40 examples behind 3 hidden signs are at most 2³ × 2 (signs, label) rows; the step's optimum
    on them is the best output layer by enumeration on all 40. Without a hidden layer the rows are
    the data's, 4 of them repeated."""
    rng = np.random.default_rng(5)
    P = 1
    x = np.round(rng.random((40, 2)), 4)
    x[36:] = x[:4]
    y = rng.integers(0, 2, 40)
    y[36:] = y[:4]
    problem = TrainingProblem(x, y, 2, tuple(sizes[1:-1]), P)
    current = random_network(rng, sizes, P)
    layer, _ = output_problem(problem, current)
    assert (layer.n_examples <= 16 if len(sizes) == 3 else layer.n_examples == 36) and layer.weights.sum() == 40
    formulation = FORMULATIONS[model]()
    output = next(area for area in neighbourhoods(sizes) if area.kind == "output")
    objective = formulation.objective_value(current, problem)
    step = solve_neighbourhood(formulation, problem, current, objective, output, EXACT)
    network, found, status = step.network, step.objective, step.status
    assert status == "optimal"
    assert found == formulation.objective_value(network, problem)
    assert found == pytest.approx(brute_force_neighbourhood(formulation, problem, current, output), abs=1e-9)
    for old, new in zip(current.weights[:-1] + current.biases[:-1], network.weights[:-1] + network.biases[:-1]):
        assert np.array_equal(old, new)


def test_a_neuron_with_outgoing_weights_visits_its_whole_box_or_the_widest_window_under_the_cap():
    rng = np.random.default_rng(0)
    small = TrainingProblem(np.round(rng.random((5, 2)), 4), rng.integers(0, 4, 5), 4, (2,), 1)
    network = random_network(rng, small.sizes, 1)
    assert len(outgoing_values(small, network, (0, 1))) == 3 ** 4  # the whole box
    wide = TrainingProblem(small.x, small.y % 2, 2, (2,), 15)
    weights = (np.zeros((2, 2), int), np.array([[14, 0], [-15, 0]]))
    network = IntegerNetwork(weights, (np.zeros(2, int), np.zeros(2, int)), 15)
    values = outgoing_values(wide, network, (0, 0))
    # ±8 around (14, -15) clipped to [-15, 15]: 10 × 9 values; ±9 would be 11 × 10 > 100
    assert len(values) == 90 <= MAX_OUTGOING_VALUES
    assert {tuple(v) for v in values} == {(a, b) for a in range(6, 16) for b in range(-15, -6)}
    ten = TrainingProblem(small.x, small.y, 10, (2,), 1)
    assert outgoing_values(ten, random_network(rng, ten.sizes, 1), (0, 0)) == []  # 3^10 even at ±1


@pytest.mark.parametrize("model", MODELS)
def test_a_neuron_with_outgoing_weights_over_a_window_is_the_best_of_that_window(model):
    """P = 2 with three classes: 125 outgoing values, over the cap, so the step searches a window
    around the current column; its optimum is the best of every incoming value × window value."""
    rng = np.random.default_rng(3)
    problem = TrainingProblem(np.round(rng.random((12, 2)), 4), rng.integers(0, 3, 12), 3, (2,), 2)
    current = random_network(rng, problem.sizes, 2)
    formulation = FORMULATIONS[model]()
    area = next(a for a in neighbourhoods(problem.sizes) if a.name == "neuron+out 0:1")
    window = outgoing_values(problem, current, area.place)
    assert len(window) <= MAX_OUTGOING_VALUES < 5 ** 3
    step = solve_neighbourhood(
        formulation, problem, current, formulation.objective_value(current, problem), area, EXACT)
    network, found, status = step.network, step.objective, step.status
    assert status == "optimal" and found == formulation.objective_value(network, problem)
    best = np.inf
    for incoming in itertools.product(range(-2, 3), repeat=3):
        for v in window:
            weights = [w.copy() for w in current.weights]
            biases = [b.copy() for b in current.biases]
            weights[0][1], biases[0][1], weights[1][:, 1] = incoming[:2], incoming[2], v
            best = min(best, formulation.objective_value(IntegerNetwork(tuple(weights), tuple(biases), 2), problem))
    assert found == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_a_drop_step_is_the_best_next_layer_without_its_neuron(model):
    """With a neuron penalty, "drop 0:j" is neuron j switched off and the output layer (but column
    j) solved exactly: brute force over that layer from the switched-off network agrees."""
    rng = np.random.default_rng(5)
    problem = TrainingProblem(np.round(rng.random((7, 2)), 4), rng.integers(0, 2, 7), 2, (3,), 1)
    formulation = training_model(model, neuron_penalty=0.5)
    current = random_network(rng, problem.sizes, 1)
    assert active_neurons(current)[0].all()
    objective = formulation.objective_value(current, problem)
    drops = [area for area in neighbourhoods(problem.sizes, drops=True) if area.kind == "drop"]
    assert [area.name for area in drops] == ["drop 0:0", "drop 0:1", "drop 0:2"]
    for area in drops:
        keep = [np.arange(3) != area.place[1]]
        step = solve_neighbourhood(formulation, problem, current, objective, area, EXACT)
        network, found, status = step.network, step.objective, step.status
        assert status == "optimal", area.name
        assert found == formulation.objective_value(network, problem), area.name
        assert not active_neurons(network)[0][area.place[1]], area.name
        best = brute_force_neighbourhood(formulation, problem, switch_off(current, keep), area)
        assert found == pytest.approx(best, abs=1e-9), area.name


def test_a_drop_that_cannot_lower_the_count_is_not_solved():
    """The last hidden layer keeps as many neurons as there are classes: with two of two on, a drop
    would count the same, so it is left without a solve."""
    rng = np.random.default_rng(6)
    problem = TrainingProblem(np.round(rng.random((6, 2)), 4), rng.integers(0, 2, 6), 2, (2,), 1)
    formulation = training_model("sat_margin", neuron_penalty=0.5)
    current = random_network(rng, problem.sizes, 1)
    objective = formulation.objective_value(current, problem)
    area = next(a for a in neighbourhoods(problem.sizes, drops=True) if a.name == "drop 0:1")
    step = solve_neighbourhood(formulation, problem, current, objective, area, EXACT)
    network, found, status = step.network, step.objective, step.status
    assert status == "unchanged" and found == objective and network.equals(current)


def test_a_neuron_that_changes_no_loss_is_left_without_a_solve():
    """With every output weight from neuron 0 at 0 its sign changes nothing, so nothing is solved."""
    rng = np.random.default_rng(4)
    problem = TrainingProblem(np.round(rng.random((6, 2)), 4), rng.integers(0, 2, 6), 2, (2,), 1)
    current = random_network(rng, problem.sizes, 1)
    current.weights[1][:, 0] = 0
    formulation = FORMULATIONS["correct_margin"]()
    area = next(a for a in neighbourhoods(problem.sizes) if a.name == "neuron 0:0")
    objective = formulation.objective_value(current, problem)
    step = solve_neighbourhood(formulation, problem, current, objective, area, EXACT)
    network, found, status = step.network, step.objective, step.status
    assert status == "unchanged" and found == objective and network.equals(current)


@pytest.mark.parametrize("model", MODELS)
def test_search_is_monotone_and_every_step_recomputes(model):
    rng = np.random.default_rng(3)
    problem = TrainingProblem(np.round(rng.random((60, 5)), 4), rng.integers(0, 3, 60), 3, (4,), 2)
    formulation = FORMULATIONS[model]()
    start = random_network(rng, problem.sizes, 2)
    seen = []

    def record(step, network):
        seen.append((step, formulation.objective_value(network, problem)))

    clock = StepClock()
    outcome = improve(formulation, problem, start, seconds=10, options=EXACT, on_step=record, improve_step_limit=0.5,
                      solve_many=clock.solver(formulation, problem, exact=False), clock=clock)
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
    with_drops = [area.name for area in neighbourhoods([3, 2, 2, 2], drops=True)]
    assert len(with_drops) == 3 * 4 + 1 and "drop 0:1" in with_drops and "drop 1:0" in with_drops


def test_validation_rule_takes_no_step_that_lowers_validation_accuracy():
    """Validation labels unrelated to the training ones: many steps that fit the training set better
    lower validation accuracy; none of them is taken, and the objective still only falls."""
    rng = np.random.default_rng(7)
    problem = TrainingProblem(np.round(rng.random((60, 5)), 4), rng.integers(0, 3, 60), 3, (4,), 2)
    validation = (np.round(rng.random((40, 5)), 4), rng.integers(0, 3, 40))
    formulation = FORMULATIONS["correct_margin"]()
    start = random_network(rng, problem.sizes, 2)
    accuracies = [start.accuracy(*validation)]

    def record(step, network):
        accuracies.append(network.accuracy(*validation))

    clock = StepClock()
    outcome = improve(formulation, problem, start, seconds=10, options=EXACT, on_step=record, validation=validation,
                      improve_step_limit=0.5, solve_many=clock.solver(formulation, problem, exact=False), clock=clock)
    assert all(later >= earlier for earlier, later in zip(accuracies, accuracies[1:]))
    assert any(step.validation_fell for step in outcome.steps), "the rule never had to hold a step back"
    assert all(step.objective_after <= step.objective_before for step in outcome.steps)
    assert outcome.objective == formulation.objective_value(outcome.network, problem) <= outcome.start_objective


def test_a_portfolio_searches_every_start_then_perturbed_copies_of_the_best(monkeypatch):
    """Labels no small network fits, so no search ends at objective 0: the portfolio searches from
    each start in turn with an equal share of the time, then from perturbed copies of the best
    network while time is left (without raising their sub-MIP limit), and returns the best search's
    network, whose objective is recomputed from its weights. Steps are solved exactly and the clock
    moves only with them, so the course does not depend on the machine."""
    import pipeline.solving.improve as search

    rng = np.random.default_rng(2)
    problem = TrainingProblem(np.round(rng.random((24, 3)), 4), rng.integers(0, 2, 24), 2, (2,), 1)
    formulation = FORMULATIONS["max_correct"]()
    starts = [random_network(rng, problem.sizes, 1) for _ in range(3)]
    searches = []
    one_search = search.improve

    def recorded(formulation, problem, start, seconds, options, **settings):
        outcome = one_search(formulation, problem, start, seconds, options, **settings)
        searches.append((start, seconds, settings["raise_limit"], outcome.objective))
        return outcome

    monkeypatch.setattr(search, "improve", recorded)
    clock = StepClock()
    outcome = portfolio(formulation, problem, starts, 24, EXACT, seed=0, improve_step_limit=2,
                        solve_many=clock.solver(formulation, problem), clock=clock)
    assert len(searches) > len(starts), "no restart from a perturbed copy"
    assert all(s[0].equals(start) for s, start in zip(searches, starts))
    assert searches[0][1] == pytest.approx(8)
    assert [s[2] for s in searches] == [True] * len(starts) + [False] * (len(searches) - len(starts))
    assert outcome.objective == min(s[3] for s in searches) == formulation.objective_value(outcome.network, problem)
    assert outcome.objective > 0
    assert outcome.start_objective == formulation.objective_value(starts[0], problem)


def planted_teacher(seed):
    """80 rows labelled by a random 10-3-2 integer network with P = 1 (both classes at least 16
    times): a network of that size with zero training errors exists."""
    rng = np.random.default_rng(seed)
    while True:
        teacher = random_network(rng, [10, 3, 2], 1)
        x = np.round(rng.random((80, 10)), 4)
        y = teacher.predict(x)
        if 16 <= y.sum() <= 64:
            return TrainingProblem(x, y, 2, (3,), 1), teacher


@pytest.mark.parametrize("seed", [1])
def test_a_portfolio_fits_a_planted_teacher(seed):
    """Straight-through starts that misclassify rows: the portfolio of four reaches zero training
    errors, checked by the network's own predictions (steps solved exactly, the clock moving only
    with them)."""
    problem, teacher = planted_teacher(seed)
    formulation = FORMULATIONS["max_correct"]()
    assert formulation.objective_value(teacher, problem) == 0
    starts = [train_ste(problem.x, problem.y, 2, (3,), 1, seed=s) for s in range(4)]
    assert formulation.objective_value(starts[0], problem) > 0
    clock = StepClock()
    outcome = portfolio(formulation, problem, starts, 60, EXACT, seed=seed, improve_step_limit=2,
                        solve_many=clock.solver(formulation, problem), clock=clock)
    assert outcome.network.accuracy(problem.x, problem.y) == 1.0
    assert outcome.objective == formulation.objective_value(outcome.network, problem) == 0


def test_neighbourhoods_solved_side_by_side_are_rechecked_and_the_search_stays_monotone():
    """Three neighbourhoods at a time from one network (as on three actors): every step taken lowers
    the objective recomputed from the weights, including steps moved onto a network another step
    of their batch had already changed."""
    rng = np.random.default_rng(8)
    problem = TrainingProblem(np.round(rng.random((60, 5)), 4), rng.integers(0, 3, 60), 3, (4,), 2)
    formulation = FORMULATIONS["correct_margin"]()
    start = random_network(rng, problem.sizes, 2)
    batches = []

    def solve_many(network, objective, areas, options):
        batches.append(len(areas))
        return [solve_neighbourhood(formulation, problem, network, objective, area, options) for area in areas]

    previous = formulation.objective_value(start, problem)

    def record(step, network):
        nonlocal previous
        recomputed = formulation.objective_value(network, problem)
        assert recomputed == step.objective_after <= step.objective_before == previous
        previous = recomputed

    outcome = improve(formulation, problem, start, seconds=10, options=EXACT, on_step=record,
                      solve_many=solve_many, width=3)
    assert max(batches) == 3
    assert outcome.objective == previous == formulation.objective_value(outcome.network, problem) < outcome.start_objective


def test_a_search_whose_sub_mips_stop_at_their_limit_raises_it_instead_of_stopping():
    """Sub-MIPs that report their time limit below 4 s and are solved exactly from there: a search
    started with 1 s limits would find nothing and stop at once; it doubles the limit twice and
    then improves, and stops early only once a whole search ran without a sub-MIP at its limit."""
    rng = np.random.default_rng(3)
    problem = TrainingProblem(np.round(rng.random((30, 4)), 4), rng.integers(0, 3, 30), 3, (3,), 2)
    formulation = FORMULATIONS["correct_margin"]()
    start = random_network(rng, problem.sizes, 2)
    limits, clock = [], StepClock()
    outcome = improve(formulation, problem, start, seconds=60, options=EXACT, improve_step_limit=1,
                      solve_many=clock.solver(formulation, problem, capped_below=4, limits=limits), clock=clock)
    assert {1, 2, 4} <= set(limits) and max(limits) == outcome.step_limit_end == 4
    assert outcome.objective == formulation.objective_value(outcome.network, problem) < outcome.start_objective
    assert outcome.ended == SearchEnd.LOCAL_OPTIMUM and outcome.seconds < 60


def test_a_search_whose_sub_mips_always_stop_at_their_limit_ends_at_its_time():
    """Doubling until a sub-MIP's limit is the search's whole time left, then stopping: never an
    optimum claimed; and without ``raise_limit`` (a portfolio's perturbed restart) it stops at once."""
    rng = np.random.default_rng(3)
    problem = TrainingProblem(np.round(rng.random((30, 4)), 4), rng.integers(0, 2, 30), 2, (3,), 2)
    formulation = FORMULATIONS["max_correct"]()
    start = random_network(rng, problem.sizes, 2)
    limits, clock = [], StepClock(step_seconds=0.01)
    solve_many = clock.solver(formulation, problem, capped_below=np.inf, limits=limits)
    outcome = improve(formulation, problem, start, seconds=5, options=EXACT, improve_step_limit=1, solve_many=solve_many,
                      clock=clock)
    assert outcome.ended == SearchEnd.TIME_LIMIT and outcome.network.equals(problem.bounds.clip(start))
    # 1, 2, 4, then 8 cut to the time left: a round no longer than the one before, so the end
    assert {1, 2, 4} <= set(limits) and max(limits) < 5 and outcome.step_limit_end == 8
    limits.clear()
    clock.now = 0.0
    kept = improve(formulation, problem, start, seconds=5, options=EXACT, improve_step_limit=1, solve_many=solve_many,
                   raise_limit=False, clock=clock)
    assert kept.ended == SearchEnd.TIME_LIMIT and set(limits) == {1} and kept.seconds < 1


def test_a_step_grafted_onto_another_network_moves_only_its_own_parameters():
    rng = np.random.default_rng(9)
    sizes = [3, 3, 2]
    network, candidate = random_network(rng, sizes, 2), random_network(rng, sizes, 2)
    by_name = {area.name: area for area in neighbourhoods(sizes, drops=True)}
    grafted = graft(network, candidate, by_name["neuron 0:1"])
    assert np.array_equal(grafted.weights[0][1], candidate.weights[0][1]) and grafted.biases[0][1] == candidate.biases[0][1]
    assert np.array_equal(np.delete(grafted.weights[0], 1, 0), np.delete(network.weights[0], 1, 0))
    assert np.array_equal(grafted.weights[1], network.weights[1])
    dropped = graft(network, candidate, by_name["drop 0:2"])
    assert not active_neurons(dropped)[0][2]
    assert np.array_equal(dropped.weights[1][:, :2], candidate.weights[1][:, :2])
    assert np.array_equal(dropped.weights[0][:2], network.weights[0][:2])
