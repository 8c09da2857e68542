"""Every training model trains from the CLI, through the flow, on MNIST with --per-class and on a
user's own CSV (numeric and categorical columns, string labels)."""

import csv
import json

import numpy as np
import pytest

from flows.cli import main
from formulations.models import FORMULATIONS
from pipeline.networks.storage import read_network
from pipeline.solving.solve import NO_FEASIBLE_NETWORK_IN_TIME, NO_NETWORK_FITS

SOLVED = {"optimal", "target_reached", "time_limit"}
"""A solve that returned a network; a hard model may instead end with no network, and say why."""


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("user") / "loans.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["income", "debt", "region", "decision"])
        for _ in range(60):
            income, debt = rng.random(), rng.random()
            region = rng.choice(["north", "south", "east"])
            writer.writerow([f"{income * 9e4:.0f}", f"{debt:.3f}", region,
                             "approve" if income - debt + (region == "north") * 0.3 > 0.1 else "decline"])
    return path


def check_run(summary: dict, model_path, classes: int) -> None:
    stored = read_network(model_path)
    assert stored.network.sizes[-1] == classes == len(stored.classes)
    for batch in summary["batches"]:
        if batch["status"] in SOLVED:
            assert batch["error"] is None and batch["objective"] is not None
        else:  # a hard model that found no network says which of the two reasons it was
            assert batch["status"] in ("infeasible", "no_solution"), batch
            assert NO_NETWORK_FITS in batch["message"] or NO_FEASIBLE_NETWORK_IN_TIME in batch["message"]


@pytest.mark.parametrize("model", sorted(FORMULATIONS))
def test_every_model_trains_on_mnist_per_class_and_on_user_data(model, tmp_path, capsys, prefect_server, user_csv):
    common = ["--formulation", model, "--P", "1", "--hidden", "4", "--time-limit", "4", "--heuristic-steps", "200",
              "--checkpoints", str(tmp_path / "runs"), "--json"]

    mnist = tmp_path / "mnist.parquet"
    assert main(["train", "--dataset", "mnist", "--per-class", "2", *common, "--out", str(mnist)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 20 and summary["formulation"] == model
    check_run(summary, mnist, classes=10)

    own = tmp_path / "own.parquet"
    assert main(["train", "--data", str(user_csv), "--label", "decision", "--train-size", "30", *common,
                 "--out", str(own)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 30
    check_run(summary, own, classes=2)
    predictions = tmp_path / "pred.csv"
    assert main(["predict", str(own), "--data", str(user_csv), "--out", str(predictions)]) == 0
    with predictions.open() as handle:
        assert {row["prediction"] for row in csv.DictReader(handle)} <= {"approve", "decline"}
