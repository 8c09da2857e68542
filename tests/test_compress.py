"""MIP compression (docs/method.md §13) against checks that do not trust the solver: every move's
sub-MIP against brute force on tiny instances, the accuracy constraint recomputed in numpy after
every step, a planted two-neuron teacher found inside an eight-neuron network, the stripped file
and the CLI."""

import itertools
import json

import numpy as np
import pytest
from networks import EXACT, grid_inputs, random_network, two_neuron_teacher

from flows.cli import main
from formulations import IntegerNetwork
from formulations.network import layer_bounds, layered_size_bits, nonzero_parameters
from pipeline.networks.storage import read_network
from pipeline.solving.compress import (
    MOVES,
    KeptSet,
    MoveKind,
    compress,
    moves,
    narrower,
    size_of,
    solve_neuron,
    without_neuron,
)
from pipeline.solving.heuristic import train_ste


def labelled_by(network, x, rng, flips=2):
    """Labels ``network`` gives ``x``, ``flips`` of them changed: a start the budget binds."""
    y = network.predict(x)
    n_classes = network.sizes[-1]
    for k in rng.choice(len(y), flips, replace=False):
        y[k] = (y[k] + 1) % n_classes
    return y


def kept_set(network, x, y, n_classes, tolerance):
    errors = int(np.count_nonzero(network.predict(x) != y))
    return KeptSet(x, y, n_classes, errors + tolerance)


def fewest_by_enumeration(network, kept, layer, rows, bound, cap=None):
    """The fewest non-zero parameters of ``network`` over every value in [−bound, bound] of the
    incoming weights and biases of ``rows`` of ``layer`` (the rest as they are) with at most the
    budget's errors, and at most ``cap`` non-zero parameters in those rows; inf when none has."""
    weights, biases = network.weights[layer], network.biases[layer]
    free = len(rows) * (weights.shape[1] + 1)
    best = np.inf
    for values in itertools.product(range(-bound, bound + 1), repeat=free):
        values = np.array(values).reshape(len(rows), -1)
        if cap is not None and np.count_nonzero(values) > cap:
            continue
        w, b = weights.copy(), biases.copy()
        w[rows], b[rows] = values[:, :-1], values[:, -1]
        candidate = IntegerNetwork(network.weights[:layer] + (w,) + network.weights[layer + 1:],
                                   network.biases[:layer] + (b,) + network.biases[layer + 1:], network.P)
        if kept.errors(candidate) <= kept.budget:
            best = min(best, nonzero_parameters(candidate))
    return best


def found(network):
    return np.inf if network is None else nonzero_parameters(network)


TINY = [([2, 3, 2], 1, 1), ([2, 3, 2], 7, 3), ([2, 2, 3], 10, 3), ([2, 2, 2, 2], 5, 3), ([2, 2, 2, 2], 8, 3)]
"""(sizes, seed, labels flipped) of the brute-force instances, P = 1, 8 examples: ones where one
more error allowed lowers some move's fewest non-zero parameters, so a wrong budget shows."""


@pytest.mark.parametrize(("sizes", "seed", "flips"), TINY)
def test_every_drop_and_sparsify_move_equals_brute_force(sizes, seed, flips):
    rng = np.random.default_rng(seed)
    x, network = grid_inputs(rng, 8, sizes[0]), random_network(rng, sizes, 1)
    y = labelled_by(network, x, rng, flips)
    checked = set()
    for tolerance in range(3):
        kept = kept_set(network, x, y, sizes[-1], tolerance)
        for move in moves(network, kept):
            if move.kind == MoveKind.NARROW:
                continue
            solved, status = MOVES[move.kind](network, kept, move, EXACT)
            if move.kind == MoveKind.DROP:
                smaller = without_neuron(network, move.layer, move.neuron)
                reader = move.layer + 1
                expected = fewest_by_enumeration(smaller, kept, reader, list(range(len(smaller.biases[reader]))),
                                                 layer_bounds(network)[reader])
            else:
                expected = fewest_by_enumeration(network, kept, move.layer, [move.neuron],
                                                 layer_bounds(network)[move.layer])
            assert found(solved) == expected, (tolerance, move.name, status)
            if solved is not None:
                assert kept.errors(solved) <= kept.budget, move.name
            checked.add(move.kind)
    assert checked == {MoveKind.DROP, MoveKind.SPARSIFY}


@pytest.mark.parametrize(("sizes", "seed"), [([2, 3, 2], 4), ([2, 2, 3], 5)])
def test_a_neuron_in_a_narrower_range_with_a_cap_equals_brute_force(sizes, seed):
    """The step narrowing takes for each neuron: [−1, 1] from P = 2, no more non-zero parameters
    than the neuron has."""
    rng = np.random.default_rng(seed)
    x, network = grid_inputs(rng, 8, sizes[0]), random_network(rng, sizes, 2)
    y = labelled_by(network, x, rng, flips=3)
    kept = kept_set(network, x, y, sizes[-1], 1)
    for layer, (w, b) in enumerate(zip(network.weights, network.biases)):
        for j in range(len(b)):
            cap = int(np.count_nonzero(w[j]) + (b[j] != 0))
            solved, status = solve_neuron(network, kept, layer, j, 1, cap, EXACT)
            assert found(solved) == fewest_by_enumeration(network, kept, layer, [j], 1, cap), (layer, j, status)


@pytest.mark.parametrize("seed", range(3))
def test_the_accuracy_constraint_holds_after_every_step(seed):
    rng = np.random.default_rng(seed)
    x, start = grid_inputs(rng, 40, 4), random_network(rng, [4, 5, 3], 3)
    y = labelled_by(start, x, rng, flips=8)
    tolerance = seed
    required = int(np.count_nonzero(start.predict(x) == y)) - tolerance
    sizes = [size_of(start)]

    def check(step, network):
        assert int(np.count_nonzero(network.predict(x) == y)) >= required, step.move
        assert size_of(network) == step.after <= step.before == sizes[-1]
        sizes.append(step.after)

    outcome = compress(start, x, y, 3, 30, EXACT, tolerance=tolerance, on_step=check)
    assert outcome.steps and outcome.required_correct == required
    assert outcome.correct == int(np.count_nonzero(outcome.network.predict(x) == y)) >= required
    assert outcome.size == size_of(outcome.network) < outcome.start_size  # a random start has slack
    bounds = layer_bounds(outcome.network)
    assert outcome.size.bits == layered_size_bits(outcome.network, bounds) <= outcome.network.size_bits


def test_narrowing_stores_fewer_bits_without_more_nonzeros():
    rng = np.random.default_rng(7)
    x, y = grid_inputs(rng, 30, 3), rng.integers(0, 2, 30)
    network = random_network(rng, [3, 3, 2], 7)
    kept = kept_set(network, x, y, 2, 30)  # every example may be lost: narrowing always fits
    layer = int(np.argmax(layer_bounds(network)))
    move = next(m for m in moves(network, kept) if m.kind == MoveKind.NARROW and m.layer == layer)
    solved, status = MOVES[MoveKind.NARROW](network, kept, move, EXACT)
    assert layer_bounds(solved)[layer] <= narrower(layer_bounds(network)[layer]) == 3, status
    for j in range(3 if layer == 0 else 2):
        assert np.count_nonzero(solved.weights[layer][j]) + (solved.biases[layer][j] != 0) <= \
            np.count_nonzero(network.weights[layer][j]) + (network.biases[layer][j] != 0)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_planted_two_neuron_teacher_is_found_in_eight_neurons(seed):
    teacher, problem = two_neuron_teacher(seed, inputs=3, width=8, n=60)
    trained = train_ste(problem.x, problem.y, 2, (8,), 1, seed=seed)
    assert trained.sizes[1] == 8
    before = trained.accuracy(problem.x, problem.y)
    outcome = compress(trained, problem.x, problem.y, 2, 60, EXACT)
    assert outcome.network.sizes[1] <= 3
    assert outcome.network.accuracy(problem.x, problem.y) >= before


# --- the file, info and the CLI ---------------------------------------------------------------


@pytest.mark.prefect
def test_cli_compress_writes_a_stripped_network_and_info_shows_before_and_after(tmp_path, capsys):
    model = tmp_path / "heart.parquet"
    assert main(["train", "--dataset", "heart", "--train-size", "40", "--P", "3", "--hidden", "6",
                 "--time-limit", "0", "--improve", "1", "--out", str(model), "--checkpoints",
                 str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    out = tmp_path / "small.parquet"
    assert main(["compress", str(model), "--dataset", "heart", "--seconds", "20", "--tolerance", "1",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stored = read_network(out)
    network = stored.network
    assert report["after"]["neurons"] == sum(network.sizes[1:-1]) <= report["before"]["neurons"]
    assert report["after"]["nonzeros"] == nonzero_parameters(network)
    assert stored.provenance["layer_bounds"] == layer_bounds(network)
    assert report["correct"] >= report["required_correct"] == report["start_correct"] - 1
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size_bits"] == layered_size_bits(network, layer_bounds(network))
    assert info["compressed"]["before"] == report["before"] and info["compressed"]["after"] == report["after"]


@pytest.mark.parametrize("arguments", [
    ["--seconds", "0"], ["--seconds", "5", "--tolerance", "-1"], ["--seconds", "5", "--keep", "test"],
])
def test_cli_compress_refuses_bad_arguments_writing_nothing(tmp_path, capsys, arguments):
    model = tmp_path / "m.parquet"
    network = random_network(np.random.default_rng(0), [21, 2, 2], 1)
    from pipeline.networks.storage import StoredNetwork, write_network

    write_network(model, StoredNetwork.single(network, ("0", "1"), {"decimals": 4, "columns": [
        {"kind": "numeric", "name": f"c{i}", "low": 0, "high": 1} for i in range(21)], "label": "y"}, {}))
    out = tmp_path / "out.parquet"
    assert main(["compress", str(model), "--dataset", "heart", *arguments, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("intnet compress: error:") and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_train_compress_stores_the_compressed_network(tmp_path):
    from pipeline.config import TrainConfig
    from pipeline.training import train

    config = TrainConfig(dataset="heart", train_size=40, P=3, hidden=(5,), time_limit=0, improve=1, compress=10,
                         tolerance=1, out=tmp_path / "m.parquet", checkpoints=tmp_path / "runs")
    summary = train(config)
    stored = read_network(summary.model_path)
    report = stored.provenance["compressed"]
    assert summary.compression == report and report["tolerance"] == 1 and report["keep"] == "validation"
    assert stored.network.equals(summary.network)
    n_validation = summary.to_json()["n_validation"]
    assert round(summary.final.validation * n_validation) >= report["required_correct"] == report["start_correct"] - 1
    assert summary.size_bits == layered_size_bits(stored.network, stored.provenance["layer_bounds"])
    assert report["after"]["nonzeros"] == nonzero_parameters(stored.network) < report["before"]["nonzeros"]


def test_a_file_whose_layer_bounds_do_not_hold_its_parameters_is_refused(tmp_path):
    from pipeline.errors import NetworkFileError
    from pipeline.networks.storage import StoredNetwork, write_network

    network = random_network(np.random.default_rng(1), [3, 2, 2], 3)
    path = tmp_path / "m.parquet"
    largest = layer_bounds(network)
    write_network(path, StoredNetwork.single(network, ("a", "b"), {"decimals": 4, "columns": [], "label": "y"},
                                      {"layer_bounds": largest}))
    assert read_network(path).provenance["layer_bounds"] == largest
    for bad in ([largest[0] - 1, largest[1]], largest[:1], [4, 4]):
        write_network(path, StoredNetwork.single(network, ("a", "b"), {"decimals": 4, "columns": [], "label": "y"},
                                          {"layer_bounds": bad}))
        with pytest.raises(NetworkFileError, match="layer_bounds"):
            read_network(path)
