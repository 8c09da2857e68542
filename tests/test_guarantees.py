"""Guarantees a solver gives: counting rows (fairness gaps, recall floors) held exactly by every MIP
(against brute force over the networks that hold them), kept by local search; monotonicity proven
from the weights alone and checked on random input pairs; the certificate recomputed from the
network's own predictions."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import EXACT, StepClock, every_network, grid_inputs, random_network

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.constraints import (
    Fairness,
    Monotone,
    fairness_rows,
    monotone_bounds,
    monotone_orientations,
    recall_row,
    voted_orientations,
)
from formulations.models import FORMULATIONS
from formulations.neuron_choice import NeuronChoice, neuron_problem, sign_costs
from pipeline.solving.guarantees import FairnessSpec, Guarantees, balancing_weights, largest_gap, share_with_interval
from pipeline.solving.improve import improve, neighbourhoods, output_problem, solve_neighbourhood
from pipeline.solving.solve import solve_mip

MAX_CORRECT = FORMULATIONS["max_correct"]()


def rows_problem(seed, n=10, inputs=2, hidden=(), P=1, kind=Fairness.DEMOGRAPHIC_PARITY, epsilon=0.2, recall=None):
    rng = np.random.default_rng(seed)
    x = grid_inputs(rng, n, inputs)
    y = rng.integers(0, 2, n)
    groups = rng.integers(0, 2, n)
    rows = fairness_rows("fair", kind, groups, y, epsilon)
    if recall is not None:
        rows.append(recall_row("recall", 1, recall, y))
    return TrainingProblem(x, y, 2, hidden, P, rows=tuple(rows)), groups


def holds_by_hand(network, problem, groups, kind, epsilon):
    """The gap computed directly from the predictions, the definition itself."""
    predicted = network.predict(problem.x) == 1
    cells = {Fairness.DEMOGRAPHIC_PARITY: [np.ones(problem.n_examples, bool)],
             Fairness.EQUAL_OPPORTUNITY: [problem.y == 1],
             Fairness.EQUALISED_ODDS: [problem.y == 1, problem.y == 0]}[kind]
    for cell in cells:
        rates = [predicted[cell & (groups == g)].mean() for g in (0, 1) if (cell & (groups == g)).any()]
        if len(rates) == 2 and abs(rates[0] - rates[1]) > epsilon + 1e-12:
            return False
    return True


@pytest.mark.parametrize("kind", list(Fairness))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_rows_say_what_the_gap_says(kind, seed):
    problem, groups = rows_problem(seed, kind=kind)
    for network in every_network(tuple(problem.sizes), 1)[::7]:
        assert MAX_CORRECT.admits(network, problem) == holds_by_hand(network, problem, groups, kind, 0.2)


@pytest.mark.parametrize("seed,kind,recall", [(5, Fairness.DEMOGRAPHIC_PARITY, None), (1, Fairness.EQUALISED_ODDS, None),
                                              (2, Fairness.EQUAL_OPPORTUNITY, 0.7), (3, Fairness.DEMOGRAPHIC_PARITY, 0.9)])
def test_the_optimum_under_the_rows_equals_brute_force(seed, kind, recall):
    problem, _ = rows_problem(seed, kind=kind, epsilon=0.1, recall=recall)
    admissible = [net for net in every_network(tuple(problem.sizes), 1) if MAX_CORRECT.admits(net, problem)]
    best = min(MAX_CORRECT.objective_value(net, problem) for net in admissible)
    free = min(MAX_CORRECT.objective_value(net, problem) for net in every_network(tuple(problem.sizes), 1))
    outcome = solve_mip(MAX_CORRECT, problem, problem.zero_network(), EXACT)
    assert outcome.status == "optimal" and outcome.objective == best
    assert MAX_CORRECT.admits(outcome.network, problem)
    if seed == 5:
        assert best > free, "the rows must bind on at least one instance, or the check proves nothing"


def test_rows_that_no_network_meets_are_proven_infeasible():
    problem, _ = rows_problem(4, recall=1.0)
    problem = TrainingProblem(problem.x, problem.y, 2, (), 1, rows=problem.rows + (recall_row("all of 0", 0, 1.0, problem.y),))
    outcome = solve_mip(MAX_CORRECT, problem, problem.zero_network(), EXACT)
    assert outcome.status == "infeasible" and not MAX_CORRECT.admits(outcome.network, problem)


def test_a_single_neuron_step_keeps_the_rows_and_equals_brute_force():
    rng = np.random.default_rng(5)
    x, y, groups = grid_inputs(rng, 30, 2), rng.integers(0, 2, 30), rng.integers(0, 2, 30)
    problem = TrainingProblem(x, y, 2, (2,), 1, rows=tuple(fairness_rows("dp", Fairness.DEMOGRAPHIC_PARITY, groups, y, 0.15)))
    start = next(net for net in (random_network(rng, problem.sizes, 1) for _ in range(500))
                 if MAX_CORRECT.admits(net, problem) and np.any(np.not_equal(*sign_costs(MAX_CORRECT, problem, net, 0, 0))))
    minus, plus = sign_costs(MAX_CORRECT, problem, start, 0, 0)
    pivotal = np.flatnonzero(plus != minus)
    assert len(pivotal), "a neuron whose sign matters to no example would test nothing"
    single, neuron = neuron_problem(problem, start, 0, 0, pivotal)
    choice = NeuronChoice((plus - minus)[pivotal], float(minus.sum()))
    outcome = solve_mip(choice, single, neuron, EXACT)
    best = min(MAX_CORRECT.objective_value(net, problem) for candidate in every_network((2, 1), 1)
               if MAX_CORRECT.admits(net := with_first_neuron(start, candidate), problem))
    assert outcome.status == "optimal" and outcome.objective == best
    assert MAX_CORRECT.admits(with_first_neuron(start, outcome.network), problem)


def with_first_neuron(network, single):
    weights, biases = [w.copy() for w in network.weights], [b.copy() for b in network.biases]
    weights[0][0], biases[0][0] = single.weights[0][0], single.biases[0][0]
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


def test_merged_rows_count_what_the_examples_count():
    rng = np.random.default_rng(6)
    x = np.repeat(grid_inputs(rng, 6, 2), 3, axis=0)  # every input three times, in several groups
    y, groups = np.tile([0, 1, 1], 6), rng.integers(0, 2, 18)
    problem = TrainingProblem(x, y, 2, (), 1, rows=tuple(fairness_rows("dp", Fairness.DEMOGRAPHIC_PARITY, groups, y, 0.1)))
    layer, _ = output_problem(problem, problem.zero_network())
    assert layer.n_examples < problem.n_examples
    for network in every_network(tuple(problem.sizes), 1)[::5]:
        assert MAX_CORRECT.admits(network, layer) == MAX_CORRECT.admits(network, problem)


def test_local_search_keeps_the_rows_at_every_step():
    rng = np.random.default_rng(3)
    x, y, groups = grid_inputs(rng, 60, 4), rng.integers(0, 2, 60), rng.integers(0, 3, 60)
    problem = TrainingProblem(x, y, 2, (3,), 2, rows=tuple(fairness_rows("eo", Fairness.EQUALISED_ODDS, groups, y, 0.2)))
    start = problem.zero_network()
    assert MAX_CORRECT.admits(start, problem)
    held, clock = [], StepClock()
    improve(MAX_CORRECT, problem, start, 10, EXACT, improve_step_limit=0.5,
            on_step=lambda step, network: held.append(MAX_CORRECT.admits(network, problem)),
            solve_many=clock.solver(MAX_CORRECT, problem, exact=False), clock=clock)
    assert held and all(held)
    quick = replace(EXACT, time_limit=1.0)  # what is checked holds for any step, optimal or not
    for area in neighbourhoods(problem.sizes):
        step = solve_neighbourhood(MAX_CORRECT, problem, start, MAX_CORRECT.objective_value(start, problem), area, quick)
        assert MAX_CORRECT.admits(step.network, problem), area.name


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([(3, 2), (3, 3, 2), (3, 2, 2, 3), (3, 3)]), st.booleans())
def test_a_monotone_proof_holds_on_random_input_pairs(seed, sizes, increasing):
    rng = np.random.default_rng(seed)
    network = random_network(rng, list(sizes), 2)
    network = IntegerNetwork(tuple(np.where(rng.random(w.shape) < 0.6, w, 0) for w in network.weights),
                             network.biases, 2)
    constraint = Monotone(int(rng.integers(3)), increasing)
    low = np.round(rng.random((300, 3)), 4)
    high = low.copy()
    high[:, constraint.input] = np.round(np.minimum(1, low[:, constraint.input] + rng.random(300)), 4)

    def scores(x):
        z = network.output(x)
        return z[:, 1:] - z[:, :1]

    if monotone_orientations(network, constraint) is not None:
        assert np.all((scores(high) - scores(low)) * constraint.direction >= -1e-9)  # float noise of the /10^4
    if len(sizes) == 2:  # no hidden layer: the condition is exact
        moves = (network.weights[0][1:, constraint.input] - network.weights[0][0, constraint.input]) * constraint.direction
        assert (monotone_orientations(network, constraint) is not None) == bool(np.all(moves >= 0))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([[3, 2], [3, 3, 2], [3, 2, 2, 3]]))
def test_every_network_inside_the_monotone_boxes_is_proven(seed, sizes):
    rng = np.random.default_rng(seed)
    constraint = Monotone(int(rng.integers(3)), bool(rng.integers(2)))
    orientations = voted_orientations(random_network(rng, sizes, 2), constraint)
    box = monotone_bounds(ParameterBounds.box(sizes, 2), constraint, orientations)
    inside = IntegerNetwork(tuple(rng.integers(lo, hi + 1) for lo, hi in zip(box.weight_lower, box.weight_upper)),
                            tuple(rng.integers(lo, hi + 1) for lo, hi in zip(box.bias_lower, box.bias_upper)), 2)
    assert monotone_orientations(inside, constraint) is not None


def test_the_certificate_s_numbers_are_the_definitions():
    groups = np.array(["a"] * 4 + ["b"] * 6, dtype=object)
    y = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0])
    predicted = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    dp = largest_gap(Fairness.DEMOGRAPHIC_PARITY, groups, y, predicted)
    assert dp["gap"] == pytest.approx(3 / 4 - 1 / 6) and dp["between"] == ["a", "b"]
    assert dp["low"] < dp["gap"] < dp["high"]
    eo = largest_gap(Fairness.EQUALISED_ODDS, groups, y, predicted)
    assert eo["gap"] == pytest.approx(max(1 - 1 / 3, 1 / 2 - 0))
    wilson = share_with_interval(8, 10)
    assert wilson["value"] == 0.8 and wilson["low"] == pytest.approx(0.4902, abs=1e-3)
    assert wilson["high"] == pytest.approx(0.9433, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_balancing_weights_make_the_labels_independent_of_the_groups_at_strength_one(seed):
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), 300, p=[0.6, 0.3, 0.1])
    y = (rng.random(300) < np.where(groups == "a", 0.4, 0.1)).astype(np.int64)
    guarantees = Guarantees(fairness=(FairnessSpec("g", Fairness.DEMOGRAPHIC_PARITY, 0.02),), train_groups=(groups,))
    assert np.array_equal(balancing_weights(guarantees, y, 0.0), np.ones(300))

    def positive_share(weights):
        return {g: weights[(groups == g) & (y == 1)].sum() / weights[groups == g].sum() for g in ("a", "b", "c")}

    balanced = positive_share(balancing_weights(guarantees, y, 1.0))
    for share in balanced.values():
        assert share == pytest.approx(y.mean())
    # stronger than independence: the group with fewer positives now has more of them than "a"
    over = positive_share(balancing_weights(guarantees, y, 2.0))
    assert over["b"] > over["a"] and positive_share(np.ones(300))["b"] < positive_share(np.ones(300))["a"]


@pytest.mark.subprocess  # the CLI's run starts its watchdog
def test_the_issue_s_command_holds_its_gap_on_the_file_s_own_predictions_and_info_proves_monotonicity(tmp_path, capsys):
    import json

    from flows.cli import main
    from pipeline.config import TrainConfig
    from pipeline.networks.inference import load_model
    from pipeline.solving.guarantees import attribute_values
    from pipeline.training import load_dataset, split_data

    out = tmp_path / "fair.parquet"
    assert main(["train", "--dataset", "adult", "--train-size", "800", "--hidden", "0", "--max-nonzero", "10",
                 "--exclude", "sex", "--fair", "sex:dp:0.02", "--monotone", "education-num:+", "--P", "15",
                 "--time-limit", "5", "--out", str(out), "--checkpoints", str(tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nonzero_parameters"] <= 10
    # Recomputed here from the file alone: the stored network's predictions on the run's training rows.
    config = TrainConfig(dataset="adult", train_size=800, exclude=["sex"])
    dataset = load_dataset(config)
    split = split_data(config, dataset)
    network = load_model(out).network
    sex = attribute_values(dataset, split, "sex")["train"]
    positive = network.predict(split.train_x) == 1
    rates = [positive[sex == group].mean() for group in np.unique(sex)]
    assert max(rates) - min(rates) <= 0.02 + 1e-12
    assert main(["info", str(out), "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["constraints"]["checks"]
    monotone = next(c for c in checks if c["constraint"] == "monotone")
    assert monotone["holds"] and monotone["column"] == "education-num"
    assert monotone_orientations(network, Monotone(monotone["input"], True)) is not None
    fair = next(c for c in checks if c["constraint"] == "fair")
    assert fair["holds"] and fair["train"]["gap"] == pytest.approx(max(rates) - min(rates))


@pytest.mark.subprocess  # the CLI's run starts its watchdog
def test_an_impossible_request_exits_non_zero_with_one_line_and_writes_nothing(tmp_path, capsys):
    from flows.cli import main

    out = tmp_path / "never.parquet"
    code = main(["train", "--dataset", "heart", "--hidden", "0", "--max-nonzero", "1", "--min-recall", "0:1.0",
                 "--min-recall", "1:1.0", "--time-limit", "20", "--out", str(out), "--checkpoints", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "constraints cannot be met" in error[0]
    assert not out.exists()
