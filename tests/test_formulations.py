"""Every training model against checks that do not trust the solver: brute force over every integer
network, planted teachers, numpy recomputation, symmetry breaking, and a second solver."""

import math
import time

import numpy as np
import pytest
from networks import EXACT, every_network, grid_inputs, random_network

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.encoding import interchangeable_neurons, order_hidden_neurons, permute_hidden
from formulations.lexicographic import Lexicographic
from formulations.min_weight import MinWeight
from formulations.models import FORMULATIONS
from pipeline.solving.solve import (
    BUILT_PAST_LIMIT,
    NO_FEASIBLE_NETWORK_IN_TIME,
    NO_NETWORK_FITS,
    NO_TIME_LEFT,
    SolverOptions,
    solve_mip,
)

SINGLE_STAGE = ("max_correct", "min_hinge", "min_weight", "max_margin")
MODELS = SINGLE_STAGE + ("lexicographic",)
HARD = ("min_weight", "max_margin")


def nonzeros(network):
    return sum(np.count_nonzero(w) + np.count_nonzero(b) for w, b in zip(network.weights, network.biases))


def fitted_by(network, x, n_classes):
    """Examples whose every output has the sign of its one-hot target (the hard models' fit)."""
    z = network.output(x)
    is_target = np.arange(n_classes)[None, :] == network.predict(x)[:, None]
    return np.all(np.where(is_target, z >= 0, z < 0), axis=1)


def planted_problem(seed, inputs, hidden, P, n, n_classes=2):
    """(teacher, problem): n examples labelled by a random integer network of the architecture,
    each fitted by it in the hard models' sense, every class present."""
    rng = np.random.default_rng(seed)
    sizes = [inputs, *hidden, n_classes]
    while True:
        teacher = random_network(rng, sizes, P)
        x = grid_inputs(rng, 400, inputs)
        keep = fitted_by(teacher, x, n_classes)
        y = teacher.predict(x)[keep][:n]
        if len(y) == n and len(set(y)) == n_classes:
            return teacher, TrainingProblem(x[keep][:n], y, n_classes, hidden, P)


def random_problem(seed, inputs, hidden, P, n, n_classes=2):
    rng = np.random.default_rng(seed)
    return TrainingProblem(grid_inputs(rng, n, inputs), rng.integers(0, n_classes, n), n_classes, hidden, P)


def enumerated_optimum(formulation, problem):
    return min(formulation.objective_value(net, problem) for net in every_network(tuple(problem.sizes), problem.P))


def assert_matches_enumeration(outcome, best, hard):
    if math.isinf(best):
        assert hard and outcome.status == "infeasible" and NO_NETWORK_FITS in outcome.message
    else:
        assert outcome.status == "optimal"
        assert outcome.objective == pytest.approx(best, abs=1e-6)


# (labels, inputs, hidden, P, examples, classes, seed): P = 1 and 2, 0 and 1 hidden layers, random
# labels (the hard models mostly infeasible) and planted ones (every hard model feasible).
BRUTE_FORCE = [
    ("random", 2, (1,), 1, 6, 2, 0),
    ("random", 2, (1,), 1, 6, 2, 1),
    ("planted", 2, (1,), 1, 6, 2, 2),
    ("random", 3, (1,), 1, 8, 2, 3),
    ("planted", 3, (1,), 1, 8, 2, 4),
    ("random", 2, (), 2, 6, 2, 5),
    ("planted", 2, (), 2, 6, 2, 6),
    ("random", 2, (), 1, 6, 3, 7),
    ("planted", 2, (1,), 2, 6, 2, 8),
]


def brute_force_problem(labels, inputs, hidden, P, n, n_classes, seed):
    if labels == "planted":
        return planted_problem(seed, inputs, hidden, P, n, n_classes)[1]
    return random_problem(seed, inputs, hidden, P, n, n_classes)


@pytest.mark.parametrize("instance", BRUTE_FORCE, ids=lambda i: "-".join(map(str, i)))
def test_proven_optimum_equals_brute_force(instance):
    problem = brute_force_problem(*instance)
    for name in SINGLE_STAGE:
        formulation = FORMULATIONS[name]()
        outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
        assert_matches_enumeration(outcome, enumerated_optimum(formulation, problem), formulation.hard)


@pytest.mark.parametrize("instance", BRUTE_FORCE[:7], ids=lambda i: "-".join(map(str, i)))
def test_every_lexicographic_stage_is_optimal_by_brute_force(instance):
    """Stage i's proven optimum equals the enumerated optimum of stage i's model, built from the
    networks the earlier stages returned."""
    problem = brute_force_problem(*instance)
    lexicographic = Lexicographic()
    start = problem.zero_network()
    outcome = solve_mip(lexicographic, problem, start, EXACT)
    networks = [start] + [stage.outcome.network for stage in outcome.stages]
    for index, stage in enumerate(outcome.stages):
        formulation, stage_problem = lexicographic.stage(index, problem, networks[: index + 1])
        assert stage.name == lexicographic.stage_names[index]
        assert_matches_enumeration(stage.outcome, enumerated_optimum(formulation, stage_problem), formulation.hard)
    # Later stages keep stage 1's confident examples confident.
    assert outcome.objective <= outcome.stages[0].outcome.objective
    assert outcome.objective == lexicographic.objective_value(outcome.network, problem)


def test_min_weight_uses_magnitudes_beyond_one_when_P_exceeds_one():
    """The reference code's binary a ≥ |w| caps |w| at 1. On this P = 2 instance (whose optimum
    the brute force above confirms) every network within |w| ≤ 1 needs more non-zero parameters."""
    problem = brute_force_problem(*BRUTE_FORCE[-1])
    formulation = MinWeight()
    outcome = solve_mip(formulation, problem, problem.zero_network(), EXACT)
    assert outcome.status == "optimal"
    assert max(np.abs(p).max() for p in outcome.network.weights + outcome.network.biases) == 2
    networks = every_network(tuple(problem.sizes), 2)
    capped = (net for net in networks if all(np.abs(p).max() <= 1 for p in net.weights + net.biases))
    assert min(formulation.objective_value(net, problem) for net in capped) > outcome.objective


def test_planted_teacher_max_correct_reaches_full_training_accuracy():
    _, problem = planted_problem(11, 4, (3,), 1, 40)
    outcome = solve_mip(FORMULATIONS["max_correct"](), problem, problem.zero_network(), EXACT)
    assert outcome.status == "optimal" and outcome.objective == 0
    assert outcome.network.accuracy(problem.x, problem.y) == 1.0


@pytest.mark.parametrize("hidden,P", [((3,), 1), ((2,), 2)])
def test_planted_teacher_min_weight_needs_no_more_nonzeros_than_the_teacher(hidden, P):
    teacher, problem = planted_problem(12, 3, hidden, P, 16)
    outcome = solve_mip(MinWeight(), problem, problem.zero_network(), EXACT)
    assert not outcome.start_feasible  # the zero network fits nothing: a cold solve
    assert outcome.status == "optimal"
    assert outcome.objective <= nonzeros(teacher)
    assert nonzeros(outcome.network) == outcome.objective
    assert fitted_by(outcome.network, problem.x, 2).all()


@pytest.mark.parametrize("hidden", [(), (3,), (3, 2)], ids=["0-hidden", "1-hidden", "2-hidden"])
@pytest.mark.parametrize("P", [1, 3])
def test_every_model_recomputes_its_objective(hidden, P):
    """Short, time-limited solves from a random start: solve_mip raises ObjectiveMismatch unless
    the weights it read back score what the solver claims (exactly, or between its bound and its
    incumbent for models with one-sided auxiliaries)."""
    _, problem = planted_problem(20 + P, 3, hidden, P, 12)
    start = random_network(np.random.default_rng(P), problem.sizes, P)
    options = SolverOptions(time_limit=1.5, threads=1, target_error=None)
    for name in MODELS:
        formulation = FORMULATIONS[name]()
        outcome = solve_mip(formulation, problem, start, options)
        assert outcome.status in ("optimal", "time_limit", "no_solution")
        if outcome.status != "no_solution":
            assert formulation.objective_value(outcome.network, problem) == outcome.objective
            assert outcome.objective <= outcome.start_objective
        if formulation.hard and outcome.status == "no_solution":
            assert outcome.message.endswith(NO_FEASIBLE_NETWORK_IN_TIME)


@pytest.mark.parametrize("name", ("max_correct", "min_hinge", "lexicographic"))
def test_soft_models_recompute_incumbents_at_the_time_limit(name):
    """Random labels, too many for the time limit: the incumbent is not proven optimal, and its
    weights still score what the solver claims (within its bound for one-sided auxiliaries)."""
    problem = random_problem(60, 5, (4,), 3, 40)
    start = random_network(np.random.default_rng(60), problem.sizes, 3)
    formulation = FORMULATIONS[name]()
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=1.0, threads=1, target_error=None))
    assert outcome.status == "time_limit"
    assert formulation.objective_value(outcome.network, problem) == outcome.objective <= outcome.start_objective


def test_hard_models_say_when_no_network_fits():
    """The same input with two labels: nothing fits, and HiGHS proves it."""
    x = np.array([[0.25, 0.5], [0.25, 0.5], [0.75, 0.125]])
    problem = TrainingProblem(x, np.array([0, 1, 0]), 2, (2,), 1)
    for name in HARD:
        outcome = solve_mip(FORMULATIONS[name](), problem, problem.zero_network(), EXACT)
        assert outcome.status == "infeasible"
        assert not outcome.start_feasible
        assert NO_NETWORK_FITS in outcome.message
        assert math.isinf(outcome.objective)


def test_hard_models_say_when_time_ran_out_without_a_network():
    """A limit spent before the solver starts (a search's clock run out): the solver does not run,
    and the start, which does not fit, stands with an infinite objective."""
    _, problem = planted_problem(30, 6, (6,), 3, 60)
    start = problem.zero_network()
    for name in HARD:
        options = SolverOptions(time_limit=0.0, target_error=None, limit_counts_building=False)
        outcome = solve_mip(FORMULATIONS[name](), problem, start, options)
        assert outcome.status == "time_limit"
        assert outcome.message.endswith(NO_TIME_LEFT)
        assert outcome.network.equals(start) and math.isinf(outcome.objective)


def test_hard_models_start_from_a_network_that_fits():
    teacher, problem = planted_problem(31, 3, (3,), 2, 12)
    for name in HARD:
        formulation = FORMULATIONS[name]()
        outcome = solve_mip(formulation, problem, teacher, SolverOptions(time_limit=5, target_error=None))
        assert outcome.start_feasible and outcome.message == ""
        assert outcome.start_objective == formulation.objective_value(teacher, problem)
        assert outcome.objective <= outcome.start_objective


def test_the_target_stops_the_solve_at_equality():
    """HiGHS stops only strictly below its objective_target; the paper stops at objective ≤ target,
    so a start that already meets the target ends the solve at once."""
    problem = random_problem(70, 5, (4,), 1, 20)
    start = problem.zero_network()
    formulation = FORMULATIONS["max_correct"]()
    target_error = (formulation.objective_value(start, problem) + 0.5) / problem.n_examples
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=30, target_error=target_error))
    assert outcome.status == "target_reached"
    assert outcome.objective == outcome.start_objective


def test_lexicographic_time_left_over_carries_forward():
    _, problem = planted_problem(32, 3, (2,), 1, 10)
    options = SolverOptions(time_limit=30, target_error=None)
    outcome = solve_mip(Lexicographic(), problem, problem.zero_network(), options)
    first, second, third = outcome.stages

    def spent(stage):
        return stage.outcome.build_seconds + stage.outcome.setup_seconds + stage.outcome.solve_seconds

    assert first.time_limit == pytest.approx(10)
    assert second.time_limit == pytest.approx((30 - spent(first)) / 2)
    assert third.time_limit == pytest.approx(30 - spent(first) - spent(second))
    assert outcome.solve_seconds == pytest.approx(sum(s.outcome.solve_seconds for s in outcome.stages))


@pytest.mark.parametrize("name", ("max_correct", "sat_margin", "lexicographic"))
def test_building_counts_against_the_time_limit(name):
    """A limit shorter than building the model: nothing is solved, the start stands, and the
    message says why; local search's steps (limit_counts_building False) still solve."""
    problem = random_problem(71, 5, (4,), 3, 40)
    start = random_network(np.random.default_rng(71), problem.sizes, 3)
    formulation = FORMULATIONS[name]()
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=1e-4, target_error=None))
    assert outcome.status == "time_limit" and outcome.solve_seconds == 0
    assert BUILT_PAST_LIMIT in outcome.message
    assert outcome.network.equals(formulation.start_network(start, problem))
    assert outcome.objective == formulation.objective_value(outcome.network, problem)
    if name != "lexicographic":  # its first stage alone is solved once the limit is the solver's
        step = SolverOptions(time_limit=0.5, target_error=None, limit_counts_building=False)
        assert solve_mip(formulation, problem, start, step).solve_seconds > 0


def test_building_stops_at_the_time_limit():
    """Building is cut off at the limit, not finished first: a model that takes seconds to build
    (50 classes) stops building long before that under a 0.2 s limit."""
    problem = random_problem(72, 6, (16,), 3, 60, n_classes=50)
    formulation = FORMULATIONS["sat_margin"]()
    began = time.perf_counter()
    formulation.create(problem)
    whole = time.perf_counter() - began
    outcome = solve_mip(formulation, problem, problem.zero_network(), SolverOptions(time_limit=0.2, target_error=None))
    assert BUILT_PAST_LIMIT in outcome.message
    assert outcome.build_seconds < whole / 2, (outcome.build_seconds, whole)


def test_permuting_hidden_neurons_keeps_the_function():
    rng = np.random.default_rng(40)
    network = random_network(rng, [4, 3, 3, 2], 3)
    x = grid_inputs(rng, 50, 4)
    for layer in (0, 1):
        permuted = permute_hidden(network, layer, rng.permutation(3))
        assert np.array_equal(permuted.output(x), network.output(x))
        assert np.array_equal(permuted.predict(x), network.predict(x))


def test_ordering_a_start_sorts_interchangeable_neurons_only():
    rng = np.random.default_rng(41)
    sizes, P = [3, 4, 3, 2], 2
    box = ParameterBounds.box(sizes, P)
    # Pinning an input of neuron 3 to its own value (as dead inputs are pinned) sets it apart.
    pinned_values = np.zeros((4, 3), dtype=np.int64)
    pinned_values[3, 0] = 1
    pinned = box.fix_inputs(np.array([True, False, False]), pinned_values)
    assert interchangeable_neurons(box, 0) == [[0, 1, 2, 3]]
    assert interchangeable_neurons(pinned, 0) == [[0, 1, 2]]
    x = grid_inputs(rng, 30, 3)
    for bounds in (box, pinned):
        network = bounds.clip(random_network(rng, sizes, P))
        ordered = order_hidden_neurons(network, bounds)
        assert bounds.contains(ordered)
        assert np.array_equal(ordered.output(x), network.output(x))
        for layer in (0, 1):
            for group in interchangeable_neurons(bounds, layer):
                assert np.all(np.diff(ordered.biases[layer][group]) <= 0)
        assert order_hidden_neurons(ordered, bounds).equals(ordered)


@pytest.mark.parametrize("name", ("sat_margin",) + MODELS)
def test_symmetry_breaking_keeps_the_proven_optimum(name):
    """Two hidden neurons, a start whose biases are in the wrong order: with the neurons ordered
    the start is permuted (same objective, still feasible) and the optimum is the same."""
    _, problem = planted_problem(50, 2, (2,), 1, 6)
    start = IntegerNetwork(
        weights=(np.array([[1, 0], [0, 1]]), np.array([[1, -1], [-1, 1]])),
        biases=(np.array([-1, 1]), np.array([0, 0])),
        P=1,
    )
    plain = solve_mip(FORMULATIONS[name](), problem, start, EXACT)
    ordered = solve_mip(FORMULATIONS[name](symmetry_breaking=True), problem, start, EXACT)
    assert plain.status == ordered.status == "optimal"
    assert ordered.objective == pytest.approx(plain.objective, abs=1e-6)
    assert ordered.start_objective == plain.start_objective
    assert np.all(np.diff(ordered.network.biases[0]) <= 0)


def test_symmetry_breaking_is_refused_with_per_neuron_margin_floors():
    with pytest.raises(ValueError):
        MinWeight(margins=[np.zeros(2), np.zeros(2)], symmetry_breaking=True)


@pytest.mark.parametrize("instance", [BRUTE_FORCE[i] for i in (0, 4, 6)], ids=lambda i: "-".join(map(str, i)))
def test_scip_agrees_with_highs_on_proven_optima(instance):
    pytest.importorskip("pyscipopt")
    problem = brute_force_problem(*instance)
    scip = SolverOptions(time_limit=60, threads=1, mip_gap=0.0, target_error=None, solver="scip_direct")
    for name in ("sat_margin",) + MODELS:
        formulation = FORMULATIONS[name]()
        by_highs = solve_mip(formulation, problem, problem.zero_network(), EXACT)
        by_scip = solve_mip(formulation, problem, problem.zero_network(), scip)
        assert by_scip.status == by_highs.status
        if by_highs.status == "optimal":
            assert by_scip.objective == pytest.approx(by_highs.objective, abs=1e-6)


WEIGHTED = [name for name, model in FORMULATIONS.items() if model.weighted_examples]


def test_the_soft_single_stage_models_weight_their_examples():
    assert set(WEIGHTED) == {"max_correct", "sat_margin", "correct_margin", "min_hinge"}


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize("hidden", [(), (1,)])
def test_a_weighted_row_is_the_same_as_that_many_copies(name, hidden):
    """Rows weighted by counts score, and solve to, what the examples repeated that many times do
    (the repeated problem's optimum by enumeration). The weighted problem carries the repeated
    one's Ω, as local search's output layer does."""
    rng = np.random.default_rng(len(hidden))
    distinct = TrainingProblem(grid_inputs(rng, 5, 2), rng.integers(0, 2, 5), 2, hidden, 1)
    counts = np.array([1, 3, 2, 1, 4])
    repeated = TrainingProblem(np.repeat(distinct.x, counts, axis=0), np.repeat(distinct.y, counts), 2, hidden, 1)
    weighted = TrainingProblem(distinct.x, distinct.y, 2, hidden, 1, weights=counts, scale=repeated.output_scale)
    formulation = FORMULATIONS[name]()
    for network in every_network(tuple(distinct.sizes), 1)[::7]:
        assert formulation.objective_value(network, weighted) == pytest.approx(formulation.objective_value(network, repeated))
        assert formulation.example_losses(network.output(weighted.x), weighted).sum() == pytest.approx(
            formulation.objective_value(network, weighted))
    outcome = solve_mip(formulation, weighted, weighted.zero_network(), EXACT)
    assert outcome.status == "optimal"
    assert outcome.objective == pytest.approx(enumerated_optimum(formulation, repeated), abs=1e-6)
    assert formulation.target(weighted, 0.1) == formulation.target(repeated, 0.1)


@pytest.mark.parametrize("name", ["min_weight", "max_margin", "lexicographic"])
def test_models_that_do_not_weight_examples_refuse_weights(name):
    problem = random_problem(0, 2, (1,), 1, 4)
    weighted = TrainingProblem(problem.x, problem.y, 2, (1,), 1, weights=[1, 2, 1, 1])
    with pytest.raises(ValueError, match="cannot weight its examples"):
        solve_mip(FORMULATIONS[name](), weighted, weighted.zero_network(), EXACT)


def test_weights_must_be_one_positive_count_per_example():
    problem = random_problem(0, 2, (1,), 1, 4)
    for weights in ([1, 2, 1], [1, 0, 1, 1]):
        with pytest.raises(ValueError, match="one positive count per example"):
            TrainingProblem(problem.x, problem.y, 2, (1,), 1, weights=weights)
