"""Ensembles: members and their resamples, the vote and its ties, the file contract (format 2, and
format-1 files still read), and real runs of both kinds through the CLI and the estimator."""

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from networks import random_network
from test_cli import contract_forward

from flows.cli import main
from formulations import IntegerNetwork
from intnet import IntegerNetworkClassifier
from pipeline.data.datasets import feature_table
from pipeline.networks.ensembles import Ensemble, EnsembleKind, make_members, stratified_bootstrap
from pipeline.networks.storage import StoredNetwork, network_table, read_network, write_network


def test_bagging_members_are_stratified_bootstrap_resamples_with_their_own_seeds():
    y = np.array([0] * 30 + [1] * 12 + [2] * 6)
    members = make_members(4, y, 3, seed=7)
    assert [m.seed for m in members] == [7, 8, 9, 10] and all(m.classes == (0, 1, 2) for m in members)
    for member in members:
        assert np.array_equal(np.bincount(y[member.indices], minlength=3), [30, 12, 6])  # counts kept
        assert len(np.unique(member.indices)) < len(y)  # drawn with replacement
    assert len({m.indices.tobytes() for m in members}) == 4
    again = stratified_bootstrap(y, np.random.default_rng([7, 0]))
    assert np.array_equal(again, members[0].indices)  # reproducible from the seed


def test_one_vs_one_has_a_member_per_pair_trained_on_its_two_classes():
    y = np.array([0, 1, 2, 3] * 5)
    members = make_members("ovo", y, 4, seed=0)
    assert [m.classes for m in members] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    for member in members:
        assert set(y[member.indices]) == set(member.classes) and len(member.indices) == 10


def constant(n_inputs, outputs, winner, P=1):
    """A network whose output ``winner`` is 1 and the rest 0 for every input (no hidden layer)."""
    bias = np.zeros(outputs, dtype=int)
    bias[winner] = 1
    return IntegerNetwork((np.zeros((outputs, n_inputs), dtype=int),), (bias,), P)


def test_the_vote_takes_the_most_votes_and_the_lowest_class_index_on_a_tie():
    x = np.zeros((5, 2))
    # one-vs-one over 3 classes: (0,1) votes 1, (0,2) votes 2, (1,2) votes 1 -> class 1 by 2 votes
    ovo = Ensemble(EnsembleKind.ONE_VS_ONE, (constant(2, 2, 1), constant(2, 2, 1), constant(2, 2, 0)),
                   ((0, 1), (0, 2), (1, 2)), 3)
    assert list(ovo.predict(x)) == [1] * 5 and ovo.tied_votes(x) == 0
    # a three-way tie goes to the lowest index
    tie = Ensemble(EnsembleKind.ONE_VS_ONE, (constant(2, 2, 1), constant(2, 2, 0), constant(2, 2, 1)),
                   ((0, 1), (0, 2), (1, 2)), 3)
    assert np.array_equal(tie.votes(x)[0], [1, 1, 1]) and list(tie.predict(x)) == [0] * 5 and tie.tied_votes(x) == 5
    bagging = Ensemble(EnsembleKind.BAGGING, (constant(2, 3, 2), constant(2, 3, 1)), ((0, 1, 2),) * 2, 3)
    assert list(bagging.predict(x)) == [1] * 5 and bagging.tied_votes(x) == 5


def test_a_format_2_file_holds_every_member_and_reads_back_the_same(tmp_path):
    rng = np.random.default_rng(0)
    networks = tuple(random_network(rng, [4, 3, 2], 2) for _ in range(3))
    ensemble = Ensemble(EnsembleKind.ONE_VS_ONE, networks, ((0, 1), (0, 2), (1, 2)), 3)
    path = write_network(tmp_path / "e.parquet", StoredNetwork(ensemble, ("a", "b", "c"), {"decimals": 4, "columns": []}, {}))
    table = pq.read_table(path)
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["intnet.format"] == 2
    assert meta["intnet.ensemble"] == {"kind": "one_vs_one", "members": 3, "pairs": [[0, 1], [0, 2], [1, 2]]}
    assert table.column("member").to_pylist() == [0, 0, 1, 1, 2, 2] and table.schema.field("member").type == pa.int32()
    back = read_network(path).ensemble
    assert back.kind == EnsembleKind.ONE_VS_ONE and back.member_classes == ensemble.member_classes
    assert all(a.equals(b) for a, b in zip(back.networks, networks))
    x = np.round(rng.random((50, 4)), 4)
    assert np.array_equal(back.predict(x), ensemble.predict(x))


def test_a_format_1_file_still_loads_as_one_network(tmp_path):
    network = random_network(np.random.default_rng(1), [4, 3, 2], 2)
    metadata = {"intnet.format": 1, "intnet.P": 2, "intnet.activation": "sign", "intnet.output": "argmax",
                "intnet.classes": ["no", "yes"], "intnet.preprocessing": {"decimals": 4, "columns": []},
                "intnet.provenance": {}}
    path = tmp_path / "old.parquet"
    pq.write_table(network_table(network).replace_schema_metadata({k: json.dumps(v) for k, v in metadata.items()}), path)
    stored = read_network(path)
    assert stored.ensemble.is_single and stored.network.equals(network)


@pytest.mark.parametrize("change,message", [
    (lambda m: m | {"intnet.ensemble": json.dumps({"kind": "boosting", "members": 3})}, "kind is one of"),
    (lambda m: m | {"intnet.ensemble": json.dumps({"kind": "bagging", "members": 2})}, "says 2 members, the file holds 3"),
    (lambda m: m | {"intnet.ensemble": json.dumps({"kind": "one_vs_one", "members": 3, "pairs": [[0, 1]]})}, "pairs"),
    (lambda m: {k: v for k, v in m.items() if k != "intnet.ensemble"}, "'intnet.ensemble' is missing"),
])
def test_a_wrong_ensemble_description_is_a_one_line_error(tmp_path, capsys, change, message):
    rng = np.random.default_rng(2)
    ensemble = Ensemble(EnsembleKind.BAGGING, tuple(random_network(rng, [4, 3, 3], 1) for _ in range(3)),
                        ((0, 1, 2),) * 3, 3)
    path = write_network(tmp_path / "e.parquet", StoredNetwork(ensemble, ("a", "b", "c"), {"decimals": 4, "columns": []}, {}))
    table = pq.read_table(path)
    metadata = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    pq.write_table(table.replace_schema_metadata(change(metadata)), path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.fixture
def three_classes(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(240) % 3
    x = rng.normal(size=(240, 4)) + 1.5 * np.eye(3, 4)[y]
    path = tmp_path / "three.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "d", "kind"])
        writer.writerows([*np.round(row, 3), "xyz"[label]] for row, label in zip(x, y))
    return path


@pytest.mark.parametrize("ensemble,kind,members", [("3", "bagging", 3), ("ovo", "one_vs_one", 3)])
def test_an_ensemble_trained_from_the_cli_votes_as_the_contract_says(tmp_path, capsys, three_classes, prefect_server,
                                                                      ensemble, kind, members):
    model = tmp_path / "model.parquet"
    assert main(["train", "--data", str(three_classes), "--label", "kind", "--ensemble", ensemble, "--P", "1",
                 "--hidden", "3", "--time-limit", "3", "--improve", "2", "--out", str(model),
                 "--checkpoints", str(tmp_path / "runs"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ensemble"]["kind"] == kind and summary["ensemble"]["members"] == members
    assert len(summary["members"]) == members and {b["member"] for b in summary["batches"]} == set(range(members))
    assert summary["best_epoch"] is None and set(summary["ensemble"]["tied_votes"]) == {"train", "validation", "test"}
    predictions = tmp_path / "pred.csv"
    assert main(["predict", str(model), "--data", str(three_classes), "--out", str(predictions)]) == 0
    with open(predictions) as handle:
        predicted = [row["prediction"] for row in csv.DictReader(handle)]
    assert predicted == contract_forward(model, pa_csv.read_csv(three_classes))
    # The file it was trained on would be judged on the run's own split; a copy is every row.
    every_row = tmp_path / "every_row.csv"
    every_row.write_bytes(three_classes.read_bytes())
    assert main(["evaluate", str(model), "--data", str(every_row), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["splits"]["all"]
    assert len(report["members"]) == members and report["tied_votes"] >= 0
    labels = [str(v) for v in pa_csv.read_csv(three_classes).column("kind").to_pylist()]
    assert report["accuracy"] == pytest.approx(np.mean(np.array(predicted) == np.array(labels)))
    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ensemble"] == kind and info["members"] == members and len(info["member_accuracies"]) == members


def test_the_estimator_trains_an_ensemble_whose_start_is_the_gradient_ensemble_of_the_same_resamples():
    from pipeline import training
    from pipeline.data.datasets import dataset_from_arrays

    rng = np.random.default_rng(3)
    y = np.arange(150) % 3
    x = rng.normal(size=(150, 4)) + 1.5 * np.eye(3, 4)[y]
    model = IntegerNetworkClassifier(P=1, hidden=(3,), time_limit=2, ensemble=3).fit(x, y)
    assert isinstance(model.network_, Ensemble) and len(model.network_.networks) == 3
    votes = model.decision_function(x)
    assert votes.shape == (150, 3) and np.all(votes.sum(axis=1) == 3)
    summary = model.summary_
    # Rebuilt independently: the members' gradient starts, voting, score what the run reports as its start.
    run = training.prepare(model.config(), data=dataset_from_arrays(x, y)[0])  # the model keeps no training rows
    gradient = Ensemble(EnsembleKind.BAGGING, tuple(run.starts), tuple(m.classes for m in run.members), 3)
    assert summary.start.train == gradient.accuracy(run.split.train_x, run.split.train_y)
    assert summary.start.validation == gradient.accuracy(run.split.val_x, run.split.val_y)
    assert [m.examples for m in summary.members] == [summary.n_train] * 3


def test_one_vs_one_members_can_use_the_staged_lexicographic_model():
    rng = np.random.default_rng(4)
    y = np.arange(90) % 3
    x = rng.normal(size=(90, 3)) + 2.0 * np.eye(3)[y]
    model = IntegerNetworkClassifier(formulation="lexicographic", ensemble="ovo", P=1, hidden=(2,),
                                     time_limit=3).fit(x, y)
    summary = model.summary_
    assert [m.classes for m in summary.members] == [(0, 1), (0, 2), (1, 2)]
    assert all(b.status != "error" for b in summary.batches), [b.error for b in summary.batches]
    # each member's three stages shared its time limit
    assert all(b.solve_seconds <= 3 + 1 for b in summary.batches)
    inputs = summary.dataset.preprocessor.transform(feature_table(x))
    assert model.score(x, y) == summary.model.accuracy(inputs, y)
