"""Neuron optimisation (--neuron-penalty) against checks that do not trust the solver: brute force
over every network of tiny instances, a planted teacher with two neurons, numpy recomputation,
stripping, the batches' neuron vote, and one run through the CLI."""

import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import EXACT, grid_inputs, random_network, two_neuron_teacher

from flows.cli import main
from formulations import ParameterBounds, TrainingProblem
from formulations.models import training_model
from formulations.network import INPUT_SCALE, IntegerNetwork, active_neurons, strip_neurons, switch_off
from formulations.neuron_penalty import NeuronPenalty
from formulations.neuron_switches import neurons_on
from formulations.sat_margin import SatMargin
from pipeline.config import TrainConfig
from pipeline.networks.storage import read_network
from pipeline.solving.improve import improve
from pipeline.solving.merge import keep_voted_neurons, validation_weights, vote_neurons
from pipeline.solving.solve import ObjectiveMismatch, SolverOptions, solve_mip
from pipeline.training import merge_results

SOFT = ("sat_margin", "correct_margin", "max_correct", "min_hinge")


# --- brute force ----------------------------------------------------------------------------


def neuron_options(x, bounds, j):
    """Every (weights, bias) of first-layer neuron j inside its box, as what the loss sees: its sign
    on each example and whether any of its incoming parameters is non-zero (options alike in both
    score alike, so one stands for all)."""
    x_int = np.rint(x * INPUT_SCALE)
    ranges = [range(lo, hi + 1) for lo, hi in zip(bounds.weight_lower[0][j], bounds.weight_upper[0][j])]
    ranges.append(range(bounds.bias_lower[0][j], bounds.bias_upper[0][j] + 1))
    seen = {}
    for values in itertools.product(*ranges):
        signs = np.where(x_int @ np.array(values[:-1]) + INPUT_SCALE * values[-1] >= 0, 1, -1)
        seen.setdefault((tuple(signs), any(values)), None)
    return [(np.array(signs), used) for signs, used in seen]


def first_layers(problem, chunk=64):
    """Every first layer of the box, in chunks: signs (first layers × examples × width) and which
    neurons have a non-zero incoming parameter (first layers × width). Neurons with the same box are
    interchangeable (the output layer is enumerated whole), so those are taken as multisets."""
    bounds, width = problem.bounds, problem.hidden[0]
    options = [neuron_options(problem.x, bounds, j) for j in range(width)]
    same_box = all(
        np.array_equal(bounds.weight_lower[0][j], bounds.weight_lower[0][0])
        and np.array_equal(bounds.weight_upper[0][j], bounds.weight_upper[0][0])
        and bounds.bias_lower[0][j] == bounds.bias_lower[0][0] and bounds.bias_upper[0][j] == bounds.bias_upper[0][0]
        for j in range(width)
    )
    if same_box:
        choices = list(itertools.combinations_with_replacement(options[0], width))
    else:
        choices = list(itertools.product(*options))
    for at in range(0, len(choices), chunk):
        part = choices[at:at + chunk]
        yield (np.array([np.stack([c[0] for c in chosen], axis=1) for chosen in part]),
               np.array([[c[1] for c in chosen] for chosen in part]))


def enumerated_optima(problem, names, alphas, rescale=True):
    """{(name, alpha): (objective, every number of neurons counted at it)}: the smallest objective
    ``name`` + alpha·neurons over every network with one hidden layer in the problem's box, computed
    here in numpy from the definitions (docs/method.md §6): a neuron counts when any of its
    parameters is non-zero, the last hidden layer counts at least min(C, width), and the margin is
    τ = (counted + 1)·P/4, or the constant (width + 1)·P/4 when not ``rescale``."""
    (width,), P, C, bounds = problem.hidden, problem.P, problem.n_classes, problem.bounds
    lower = np.concatenate([bounds.weight_lower[1].ravel(), bounds.bias_lower[1]])
    upper = np.concatenate([bounds.weight_upper[1].ravel(), bounds.bias_upper[1]])
    outputs = np.array(list(itertools.product(*(range(lo, hi + 1) for lo, hi in zip(lower, upper)))))
    w_out, b_out = outputs[:, : C * width].reshape(-1, C, width), outputs[:, C * width:]
    m = len(outputs)
    y, signs, wrong = problem.y, problem.signed_targets, np.arange(C)[None, :] != problem.y[:, None]
    best = {(name, alpha): (np.inf, set()) for name in names for alpha in alphas}
    for s, used_in in first_layers(problem):
        # first layers f × output layers m × examples k × classes c
        z = (s @ w_out.reshape(m * C, width).T).reshape(len(s), -1, m, C).transpose(0, 2, 1, 3) + b_out[None, :, None, :]
        counted = np.maximum((used_in[:, None, :] | np.any(w_out != 0, axis=1)[None]).sum(axis=2), min(C, width))
        four_tau = (((counted if rescale else np.full_like(counted, width)) + 1) * P)[..., None, None]
        for name in names:
            if name == "sat_margin":
                loss = np.sum(4 * signs * z < four_tau, axis=(2, 3))
            elif name == "correct_margin":
                d = np.take_along_axis(z, np.broadcast_to(y[None, None, :, None], z.shape[:3] + (1,)), axis=3) - z
                loss = np.sum(((4 * d < four_tau) & wrong).any(axis=3), axis=2)
            elif name == "max_correct":
                loss = np.sum(np.argmax(z, axis=3) != y, axis=2)
            else:  # min_hinge: max(0, ½ − 2Yz/Ω)² with Ω = (width + 1)·P, not rescaled (the paper's)
                loss = np.sum(np.maximum(0.0, 0.5 - 2 * signs * z / ((width + 1) * P)) ** 2, axis=(2, 3))
            for alpha in alphas:
                objective = loss + alpha * counted
                low = float(objective.min())
                counts = set(counted[objective <= low + 1e-9].tolist())
                if low < best[name, alpha][0] - 1e-9:
                    best[name, alpha] = (low, counts)
                elif low <= best[name, alpha][0] + 1e-9:
                    best[name, alpha] = (low, best[name, alpha][1] | counts)
    return best


def tiny_problem(seed, width, n=6):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)  # both classes present
    return TrainingProblem(grid_inputs(rng, n, 2), y, 2, (width,), 1)


def pinned_problem(seed, n=7):
    """Four hidden neurons with the first layer pinned: neurons 0 and 1 at non-zero random values (so
    always on), neurons 2 and 3 at 0 (a constant +1 that the output layer may read, which switches
    them on); output 1 pinned at 0, so z_0 alone carries the margin. The MIP chooses output 0's
    weights and so how many neurons the margin counts: 2, 3 or 4 (margin 1, 1 or 2)."""
    problem = tiny_problem(seed, 4, n)
    rng = np.random.default_rng(seed + 100)
    incoming = np.zeros((4, 2), dtype=np.int64)
    incoming[:2] = rng.choice([-1, 1], (2, 2))
    bias = np.array([rng.integers(-1, 2), rng.integers(-1, 2), 0, 0])
    out_lower, out_upper = np.full((2, 4), -1), np.full((2, 4), 1)
    out_lower[1] = out_upper[1] = 0
    out_bias_lower, out_bias_upper = np.array([-1, 0]), np.array([1, 0])
    bounds = ParameterBounds((incoming, out_lower), (incoming, out_upper), (bias, out_bias_lower), (bias, out_bias_upper))
    return TrainingProblem(problem.x, problem.y, 2, (4,), 1, bounds)


def grid_problem(seed, n=8):
    """2 inputs on {0, ½, 1}², random labels: points on the few lines a P = 1 neuron can draw, where
    a third neuron can pay for itself."""
    rng = np.random.default_rng(seed)
    return TrainingProblem(np.round(rng.integers(0, 3, (n, 2)) / 2, 4), rng.integers(0, 2, n), 2, (3,), 1)


ALPHAS = (0.5, 0.1)


@pytest.mark.parametrize("seed", [1, 2])
def test_proven_optimum_equals_brute_force(seed):
    """Every model with its penalty: HiGHS's proven optimum is the enumerated one, with as many
    neurons. The instances make the trade-off real: some optimum keeps a third neuron."""
    problem = grid_problem(seed)
    best = enumerated_optima(problem, SOFT, ALPHAS)
    assert any(counts == {3} for _, counts in best.values())
    for (name, alpha), (objective, counts) in best.items():
        outcome = solve_mip(training_model(name, neuron_penalty=alpha), problem, problem.zero_network(), EXACT)
        assert outcome.status == "optimal"
        assert outcome.objective == pytest.approx(objective, abs=1e-6), (name, alpha)
        assert sum(neurons_on(outcome.network)) in counts, (name, alpha)


@pytest.mark.parametrize("seed", [11, 15])
def test_rescaled_margin_optimum_equals_brute_force(seed):
    """sat_margin and correct_margin read their margin on the neurons switched on: the proven
    optimum is the enumerated one under that margin, and on these instances not the one under the
    constant margin of the full width (so the rows that rescale it are what the solve relies on)."""
    problem = pinned_problem(seed)
    margins = SOFT[:2]
    rescaled = enumerated_optima(problem, margins, ALPHAS)
    constant = enumerated_optima(problem, margins, ALPHAS, rescale=False)
    for key, (objective, _) in rescaled.items():
        assert objective != pytest.approx(constant[key][0])
        name, alpha = key
        start = problem.bounds.clip(problem.zero_network())
        outcome = solve_mip(training_model(name, neuron_penalty=alpha), problem, start, EXACT)
        assert outcome.status == "optimal" and outcome.objective == pytest.approx(objective, abs=1e-6), key


@pytest.mark.parametrize("name,penalty", [(name, 0.1) for name in SOFT] + [("sat_margin", 0.0)])
def test_penalised_incumbents_score_their_numpy_recomputation(name, penalty):
    """Time-limited solves from a random start on an instance too large to prove: what the solver
    returns scores, recomputed from its weights, what solve_mip reports (checked against the
    solver there), and never worse than the start. (α = 0 with sat_margin: the switches only
    rescale the margin.)"""
    rng = np.random.default_rng(3)
    problem = TrainingProblem(grid_inputs(rng, 30, 4), rng.integers(0, 3, 30), 3, (5,), 3)
    start = random_network(rng, problem.sizes, 3)
    formulation = training_model(name, neuron_penalty=penalty)
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=1.0, target_error=None))
    assert outcome.start_objective == formulation.objective_value(start, problem)
    assert formulation.objective_value(outcome.network, problem) == outcome.objective <= outcome.start_objective


def test_penalty_counts_the_neurons_the_mip_must_switch_on():
    """loss + α·(active neurons, the last hidden layer at least min(C, width)), by hand."""
    rng = np.random.default_rng(4)
    problem = TrainingProblem(grid_inputs(rng, 20, 3), rng.integers(0, 3, 20), 3, (4, 5), 2)
    network = random_network(rng, problem.sizes, 2)
    weights = [w.copy() for w in network.weights]
    biases = [b.copy() for b in network.biases]
    weights[0][1], biases[0][1], weights[1][:, 1] = 0, 0, 0          # layer 0 neuron 1 off
    weights[1][1:], biases[1][1:], weights[2][:, 1:] = 0, 0, 0       # layer 1: only neuron 0 on
    network = IntegerNetwork(tuple(weights), tuple(biases), 2)
    assert [mask.sum() for mask in active_neurons(network)] == [3, 1]
    assert neurons_on(network) == [3, 3]                             # 3 classes: the last keeps 3
    plain = training_model("max_correct").objective_value(network, problem)
    assert training_model("max_correct", neuron_penalty=0.25).objective_value(network, problem) == plain + 0.25 * 6


def test_a_miscounted_penalty_is_caught():
    """The solver's objective is checked against the numpy count at every solve: a count one neuron
    short is below the proven bound."""
    class Miscounting(NeuronPenalty):
        def objective_value(self, network, problem):
            return super().objective_value(network, problem) - self.alpha

    problem = tiny_problem(0, 2)
    with pytest.raises(ObjectiveMismatch):
        solve_mip(Miscounting(SatMargin(neuron_switches=True), 0.5), problem, problem.zero_network(), EXACT)


def test_local_search_lowers_the_penalised_objective():
    """--improve with a penalty: its sub-MIPs are the penalised model on a neighbourhood, so every
    step is checked against numpy and the objective (loss and neurons) never rises."""
    rng = np.random.default_rng(1)
    problem = TrainingProblem(grid_inputs(rng, 30, 4), rng.integers(0, 2, 30), 2, (5,), 3)
    start = random_network(rng, problem.sizes, 3)
    formulation = training_model("sat_margin", neuron_penalty=0.5)
    outcome = improve(formulation, problem, start, 3.0, SolverOptions(), improve_step_limit=1.0)
    assert outcome.start_objective == formulation.objective_value(start, problem)
    assert outcome.objective == formulation.objective_value(outcome.network, problem) < outcome.start_objective
    steps = [(step.objective_before, step.objective_after) for step in outcome.steps]
    assert all(after <= before for before, after in steps)


def test_local_search_drops_a_duplicated_neuron():
    """A network whose third neuron copies its first, each carrying half of the teacher's outgoing
    weights: one function, three neurons. Only a drop step (switch the copy off, retrain the output
    layer) can reach the teacher's two neurons, at the same loss and α less. (This seed's copy meets
    every margin, so no other step has anything to gain: without drops the search ends at three.)"""
    rng = np.random.default_rng(3)
    while True:
        small = random_network(rng, [3, 2, 2], 1)
        x = grid_inputs(rng, 40, 3)
        balanced = 10 <= small.predict(x).sum() <= 30
        if active_neurons(small)[0].all() and np.all(small.weights[1][:, 0] != 0) and balanced:
            break
    half = small.weights[1][:, :1]
    copied = IntegerNetwork(
        (small.weights[0][[0, 1, 0]], np.hstack([half, small.weights[1][:, 1:], half])),
        (small.biases[0][[0, 1, 0]], small.biases[1]),
        P=2,
    )
    problem = TrainingProblem(x, copied.predict(x), 2, (3,), 2)
    formulation = training_model("sat_margin", neuron_penalty=0.5)
    outcome = improve(formulation, problem, copied, 20.0, EXACT)
    assert formulation.inner.objective_value(copied, problem) == 0
    assert sum(neurons_on(copied)) == 3 and sum(neurons_on(outcome.network)) == 2
    gains = [step.neighbourhood for step in outcome.steps if step.objective_after < step.objective_before]
    assert gains[0].startswith("drop 0:")
    assert outcome.objective == formulation.objective_value(outcome.network, problem) == outcome.start_objective - 0.5


# --- lexicographic: a planted teacher with two neurons ---------------------------------------


def test_lexicographic_mode_finds_the_teachers_two_neurons():
    teacher, problem = two_neuron_teacher(1)
    assert teacher.accuracy(problem.x, problem.y) == 1.0 and sum(neurons_on(teacher)) == 2
    formulation = training_model("max_correct", neuron_penalty="lex")
    outcome = solve_mip(formulation, problem, problem.zero_network(),
                        SolverOptions(time_limit=60, mip_gap=0.0, target_error=None))
    loss, neurons = outcome.stages
    assert (loss.name, neurons.name) == ("loss", "neurons")
    assert loss.outcome.objective == 0 and neurons.outcome.status == "optimal"
    assert outcome.network.accuracy(problem.x, problem.y) == 1.0
    kept = strip_neurons(outcome.network)
    assert kept.sizes[1] <= 2 and sum(neurons_on(outcome.network)) == neurons.outcome.objective <= 2
    assert np.array_equal(kept.output(problem.x), outcome.network.output(problem.x))


# --- stripping --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_strip_keeps_the_function_and_drops_unread_neurons(seed):
    rng = np.random.default_rng(seed)
    sizes = [4, 6, 5, 3]
    network = random_network(rng, sizes, 2)
    weights = [w.copy() for w in network.weights]
    weights[1][:, rng.random(6) < 0.5] = 0      # layer 0 neurons nobody reads
    weights[2][:, rng.random(5) < 0.5] = 0      # layer 1 neurons nobody reads
    network = IntegerNetwork(tuple(weights), network.biases, 2)
    stripped = strip_neurons(network)
    x = grid_inputs(rng, 200, 4)
    assert np.array_equal(stripped.output(x), network.output(x))
    read_last = np.any(weights[2] != 0, axis=0)
    assert stripped.sizes[2] == max(1, read_last.sum())
    # a first-layer neuron survives only if a surviving neuron reads it
    surviving = np.flatnonzero(read_last) if read_last.any() else np.array([0])
    read_first = np.any(weights[1][surviving] != 0, axis=0)
    assert stripped.sizes[1] == max(1, read_first.sum())
    assert stripped.size_bits <= network.size_bits
    assert strip_neurons(stripped).equals(stripped)


def test_strip_keeps_one_neuron_in_a_layer_nobody_reads():
    rng = np.random.default_rng(9)
    network = random_network(rng, [3, 4, 2], 1)
    network = IntegerNetwork((network.weights[0], np.zeros((2, 4), int)), network.biases, 1)
    stripped = strip_neurons(network)
    assert stripped.sizes == [3, 1, 2]
    x = grid_inputs(rng, 50, 3)
    assert np.array_equal(stripped.output(x), network.output(x))


# --- batch training: the neuron vote ----------------------------------------------------------


@st.composite
def optimised_batches(draw, max_networks=6):
    """(networks, scores): networks of one random architecture, each with random hidden neurons
    switched off (as batches that optimised their width return them); scores are accuracies k/V."""
    P = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(1, 4), min_size=3, max_size=4))
    n = draw(st.integers(1, max_networks))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    networks = [
        switch_off(random_network(rng, sizes, P), [rng.random(width) < 0.5 for width in sizes[1:-1]])
        for _ in range(n)
    ]
    V = draw(st.integers(1, 100))
    return networks, [k / V for k in draw(st.lists(st.integers(0, V), min_size=n, max_size=n))]


@settings(max_examples=60, deadline=None)
@given(case=optimised_batches())
def test_the_vote_is_a_weighted_majority_of_active_neurons(case):
    networks, scores = case
    weights = validation_weights(scores)
    kept = vote_neurons(networks, scores)
    for layer, mask in enumerate(kept):
        share = sum(w * active_neurons(net)[layer] for w, net in zip(weights, networks)) / weights.sum()
        assert np.array_equal(mask, share >= 0.5 - 1e-12)
        assert (mask | ~np.all([active_neurons(net)[layer] for net in networks], axis=0)).all()  # kept where all use it


@settings(max_examples=60, deadline=None)
@given(case=optimised_batches(), data=st.data())
def test_the_vote_does_not_depend_on_the_order_of_the_batches(case, data):
    networks, scores = case
    order = data.draw(st.permutations(range(len(networks))))
    shuffled = vote_neurons([networks[i] for i in order], [scores[i] for i in order])
    assert all(np.array_equal(a, b) for a, b in zip(shuffled, vote_neurons(networks, scores)))


@settings(max_examples=60, deadline=None)
@given(case=optimised_batches(max_networks=1), copies=st.integers(1, 5))
def test_copies_of_one_network_keep_exactly_its_neurons(case, copies):
    (network,), _ = case
    assert keep_voted_neurons(network, [network] * copies, [0.5] * copies).equals(network)


@settings(max_examples=60, deadline=None)
@given(case=optimised_batches())
def test_merged_batches_keep_only_voted_neurons(case):
    """Through the pipeline's merge: the weighted mean with every parameter of a neuron the vote
    drops (incoming weights, bias, outgoing weights) at 0, and every other parameter as the mean."""
    networks, scores = case
    results = [SimpleNamespace(ok=True, network=n, contributed_validation_accuracy=s) for n, s in zip(networks, scores)]
    plain = merge_results(results, networks[0], "weighted_mean")
    merged = merge_results(results, networks[0], "weighted_mean", neuron_vote=True)
    kept = vote_neurons(networks, scores)
    everything = [np.ones(n, dtype=bool) for n in merged.sizes]
    for layer in range(len(merged.weights)):
        into = kept[layer] if layer < len(kept) else everything[layer + 1]      # the layer's own neurons
        read = kept[layer - 1] if layer > 0 else everything[0]                   # the neurons it reads
        dropped = ~into[:, None] | ~read[None, :]
        assert np.array_equal(merged.weights[layer], np.where(dropped, 0, plain.weights[layer]))
        assert np.array_equal(merged.biases[layer], np.where(into, plain.biases[layer], 0))
    stripped = strip_neurons(merged)
    assert all(width <= max(1, mask.sum()) for width, mask in zip(stripped.sizes[1:-1], kept))


# --- configuration and the command line --------------------------------------------------------


def test_the_penalty_is_a_number_or_lex_and_unseen_inputs_then_pin_to_zero():
    assert TrainConfig(dataset="heart", neuron_penalty="0.1").neuron_penalty == 0.1
    assert TrainConfig(dataset="heart", neuron_penalty="lex").neuron_penalty == "lex"
    assert TrainConfig(dataset="heart", neuron_penalty=0.1).dead_inputs == "zero"
    assert TrainConfig(dataset="heart").dead_inputs == "start"
    assert TrainConfig(dataset="heart", neuron_penalty=0.1, dead_inputs="zero").dead_inputs == "zero"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--neuron-penalty", "-1"], "--neuron-penalty: must be a number >= 0"),
        (["--neuron-penalty", "many"], "--neuron-penalty: must be a number >= 0"),
        (["--neuron-penalty", "nan"], "--neuron-penalty: must be a number >= 0"),
        (["--neuron-penalty", "0.1", "--formulation", "min_weight"], "can switch neurons off"),
        (["--neuron-penalty", "lex", "--formulation", "lexicographic"], "can switch neurons off"),
        (["--neuron-penalty", "0.1", "--dead-inputs", "start"], "use --dead-inputs zero"),
        (["--neuron-penalty", "lex", "--improve", "5"], "--neuron-penalty ALPHA, not lex"),
    ],
)
def test_neuron_penalty_errors_name_the_flag_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "m.parquet"
    assert main(["train", "--dataset", "heart", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not out.exists()


def test_training_with_a_penalty_stores_the_stripped_network(tmp_path, capsys, prefect_server):
    """An end-to-end run through the CLI and the Prefect flow. The penalty (100 per neuron, above any
    loss of 40 examples' 80 margins) makes every network better than the all-zero start keep at most
    the two neurons the last hidden layer must, so the file is stripped whatever the solver finds in
    its time; ``intnet info`` reports the neurons kept and the bits before and after."""
    model = tmp_path / "heart.parquet"
    assert main([
        "train", "--dataset", "heart", "--train-size", "40", "--P", "1", "--hidden", "6", "--time-limit", "5",
        "--heuristic-steps", "0", "--neuron-penalty", "100", "--executor", "local", "--seed", "3",
        "--out", str(model), "--checkpoints", str(tmp_path / "runs"), "--json",
    ]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["batches"][0]["status"] != "error", summary["batches"][0]["error"]
    stored = read_network(model)
    network = stored.network
    assert summary["sizes"] == network.sizes and network.sizes[1] <= 2
    assert summary["sizes_before_strip"] == [21, 6, 2] and stored.provenance["sizes_before_strip"] == [21, 6, 2]
    assert strip_neurons(network).equals(network)  # nothing left to strip

    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["neurons_kept"] == network.sizes[1:-1] and info["neurons_trained"] == [6]
    assert info["size_bits"] == network.size_bits == summary["size_bits"]
    assert info["size_bits_before_strip"] == (21 * 6 + 6 + 6 * 2 + 2) * 2 > info["size_bits"]
    assert info["neuron_penalty"] == 100

    # the smaller file is used like any other: its accuracy on the run's own split is the run's
    assert main(["evaluate", str(model), "--dataset", "heart", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["accuracy"] == pytest.approx(summary["train_accuracy"])
