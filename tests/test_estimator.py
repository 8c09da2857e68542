"""The Python API: `intnet.IntegerNetworkClassifier` under scikit-learn's own checks and tools, in
a fresh process outside the repository, writing nothing and starting no Prefect; a fit on Ray
keeps Ray's folder private and, killed, leaves nothing behind."""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from test_cli import contract_forward
from test_signals import TEST_MARKER, processes_of

from intnet import IntegerNetworkClassifier, load
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.data.datasets import dataset_from_arrays
from pipeline.errors import DataError

FAST = dict(P=1, hidden=(3,), time_limit=1, heuristic_steps=50, target_error=1.0)
"""For scikit-learn's checks: dozens of fits, on data where accuracy is not what is checked (every
start meets the target error 1.0, so no MIP is built: 42 s of checks become a few)."""
TRAINED = dict(P=1, hidden=(4,), time_limit=2)

CANNOT_APPLY = {
    # scikit-learn requires its own NotFittedError class here, and intnet does not depend on
    # scikit-learn; intnet raises its own NotFittedError, a ValueError and an AttributeError as
    # scikit-learn's is, so `except (ValueError, AttributeError)` catches both.
    "check_estimators_unfitted",
    # Weight 2 against the row given twice: the validation share is drawn from the rows, so repeating
    # one changes which rows validate, and the network trained (a weight does not).
    "check_sample_weight_equivalence_on_dense_data",
}


def blobs(seed=0, n=90):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) + 2.0 * np.eye(3, 4)[y]
    return x, np.array(["cat", "dog", "eel"])[y]


def test_scikit_learns_estimator_checks_pass_but_the_listed_ones_that_cannot_apply():
    results = check_estimator(IntegerNetworkClassifier(**FAST), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == CANNOT_APPLY, {r["check_name"]: str(r["exception"])[:300] for r in results if r["status"] == "failed"}
    assert sum(r["status"] == "passed" for r in results) >= 45


def test_parameters_are_the_run_options_with_the_configs_defaults():
    model = IntegerNetworkClassifier()
    params = model.get_params()
    for name in ("formulation", "P", "hidden", "batch_size", "epochs", "time_limit", "improve", "workers", "seed"):
        assert params[name] == TrainConfig.model_fields[name].default
    copy = clone(IntegerNetworkClassifier(P=1, hidden=(4,)))
    assert copy.get_params()["P"] == 1 and copy.get_params()["hidden"] == (4,)
    assert model.set_params(P=5).P == 5
    with pytest.raises(ValueError, match="--P|P"):
        IntegerNetworkClassifier(P=0).fit(*blobs())
    with pytest.raises(TypeError, match="unknown parameter"):
        IntegerNetworkClassifier(p=1)


def test_fit_predict_in_a_pipeline_with_string_labels_and_a_table():
    x, y = blobs()
    pipe = Pipeline([("scale", StandardScaler()), ("net", IntegerNetworkClassifier(**TRAINED))]).fit(x, y)
    assert set(pipe.predict(x)) <= {"cat", "dog", "eel"} and pipe.score(x, y) > 0.6
    table = pa.table({"height": x[:, 0], "width": x[:, 1], "kind": np.where(x[:, 2] > 1, "tall", "flat")})
    model = IntegerNetworkClassifier(**TRAINED).fit(table, y)
    assert list(model.feature_names_in_) == ["height", "width", "kind"] and model.n_features_in_ == 3
    assert model.network_.sizes[0] == 4  # two numeric inputs, one categorical column of two values
    scores = model.decision_function(table)
    assert scores.shape == (90, 3) and np.array_equal(model.classes_[np.argmax(scores, axis=1)], model.predict(table))


def test_a_saved_estimator_is_the_network_file_contract(tmp_path):
    x, y = blobs(1)
    model = IntegerNetworkClassifier(**TRAINED).fit(x, y)
    path = model.save(tmp_path / "blobs.parquet")
    rows = pa.table({f"x{i}": x[:, i] for i in range(4)})
    assert contract_forward(path, rows) == list(model.predict(x))
    assert list(load(path).predict(x)) == list(model.predict(x))



def file_probabilities(path, x):
    """Class probabilities from the network file with pyarrow and numpy alone, as its contract reads
    it: the integer forward pass of a single network's layers on min-max scaled numeric columns,
    then the softmax of β · scores with β the file's ``intnet.calibration``."""
    table = pq.read_table(path)
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    prep = meta["intnet.preprocessing"]
    scale = 10 ** prep["decimals"]
    columns = [(np.clip((x[:, i] - c["low"]) / (c["high"] - c["low"]), 0, 1)) for i, c in enumerate(prep["columns"])]
    a = np.round(np.stack(columns, axis=1) * scale)
    rows = sorted(table.to_pylist(), key=lambda r: r["layer"])
    for n, row in enumerate(rows):
        w = np.array(row["weight"], dtype=float).reshape(row["out_features"], row["in_features"])
        z = a @ w.T + (scale * np.array(row["bias"], dtype=float) if n == 0 else np.array(row["bias"], dtype=float))
        a = np.where(z >= 0, 1.0, -1.0) if n < len(rows) - 1 else z / (scale if len(rows) == 1 else 1)
    calibration = meta["intnet.calibration"]
    z = calibration["inverse_temperature"] * a
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("hidden, n_classes", [(4, 2), (4, 3), (0, 3)])
def test_predict_proba_sums_to_one_agrees_with_predict_and_the_loaded_file(tmp_path, hidden, n_classes):
    """The issue's done-when: hidden=4 (an int) fits, predict_proba's rows sum to 1 and their argmax
    is predict, and a loaded file gives the same probabilities, recomputed from its integer weights
    and stored temperature without intnet."""
    rng = np.random.default_rng(3)
    x = rng.random((240, 4))
    y = np.argmax(x[:, :n_classes] + 0.3 * rng.random((240, n_classes)), axis=1)
    model = IntegerNetworkClassifier(P=1, hidden=hidden, time_limit=2).fit(x, y)
    assert model.network_.sizes == [4, *([hidden] if hidden else []), n_classes]
    probabilities = model.predict_proba(x)
    assert probabilities.shape == (240, n_classes) and np.allclose(probabilities.sum(axis=1), 1)
    assert np.array_equal(model.classes_[np.argmax(probabilities, axis=1)], model.predict(x))
    assert model.calibration_.inverse_temperature > 0
    assert 0.5 < probabilities.max(axis=1).mean() < 1 - 1e-6  # neither uniform nor certain everywhere
    path = model.save(tmp_path / "model.parquet")
    assert np.allclose(load(path).predict_proba(x), probabilities, rtol=0, atol=1e-12)
    assert np.allclose(file_probabilities(path, x), probabilities, rtol=0, atol=1e-9)


def test_the_temperature_minimises_the_smoothed_validation_loss():
    """β is the minimum of the cross-entropy against Platt's targets on the validation split: a
    finer grid around it does no better (recomputed from the network's scores)."""
    x, y = blobs(2)
    model = IntegerNetworkClassifier(**TRAINED).fit(x, y)
    dataset, _ = dataset_from_arrays(x, y)
    split = training.split_data(model.config(), dataset)
    scores = model.network_.output(split.val_x)
    count = np.bincount(split.val_y, minlength=3)[split.val_y]
    on = (count + 1) / (count + 2)
    targets = np.repeat(((1 - on) / 2)[:, None], 3, axis=1)
    targets[np.arange(len(on)), split.val_y] = on

    def loss(beta):
        z = beta * scores
        top = z.max(axis=1, keepdims=True)
        return float(np.mean(-(targets * (z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True)))).sum(axis=1)))

    beta = model.calibration_.inverse_temperature
    assert all(loss(beta) <= loss(other) + 1e-9 for other in np.linspace(0, 14, 1401))



def test_a_file_without_a_calibration_says_so_in_one_line(tmp_path):
    x, y = blobs(1)
    path = IntegerNetworkClassifier(**TRAINED).fit(x, y).save(tmp_path / "blobs.parquet")
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata(
        {k: v for k, v in table.schema.metadata.items() if k != b"intnet.calibration"}), path)  # as older files
    model = load(path)
    assert len(model.predict(x)) == len(y)
    with pytest.raises(DataError, match="has no calibration .*train it again"):
        model.predict_proba(x)

@pytest.mark.parametrize("params, needle", [
    (dict(P=0), "parameter P=0"), (dict(hidden=-1), "parameter hidden=-1"), (dict(hidden="4x"), "parameter hidden='4x'"),
    (dict(class_weight="heavy"), "parameter class_weight='heavy'"), (dict(time_limit=0), "time_limit 0 skips"),
    (dict(formulation="min_weight", class_weight="balanced"), "class_weight: formulation min_weight cannot weight"),
])
def test_a_bad_parameter_is_one_line_naming_it(params, needle):
    with pytest.raises(ValueError) as caught:
        IntegerNetworkClassifier(**params).fit(*blobs())
    message = str(caught.value)
    assert needle in message and "\n" not in message and "pydantic" not in message, message


def test_a_pickled_model_carries_no_training_rows():
    """Pickled, a fitted model is its network, preprocessing and summary: a few KB whatever the data
    (it carried the whole training set, 846 KB for a 1 KB network), and it still predicts."""
    rng = np.random.default_rng(0)
    x = rng.random((4000, 8))
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    model = IntegerNetworkClassifier(P=1, hidden=4, time_limit=1).fit(x, y)
    data = pickle.dumps(model)
    assert len(data) < 20_000, len(data)  # the training rows alone are 256 KB
    assert x[1234].tobytes() not in data
    copy = pickle.loads(data)
    assert np.array_equal(copy.predict(x), model.predict(x)) and np.allclose(copy.predict_proba(x), model.predict_proba(x))


def conflicting(scale=5):
    """A contested point (0.9, 0.1) where 40 rows say class 0 and 20 say class 1, beside (0.9, 0.9),
    class 1, and (0.1, 0.1), class 0 (40 rows each; all ``scale`` times, so that a validation split
    of 10 % says the same): the unweighted optimum predicts 0 at the contested point (z_1 - z_0 =
    2 x_2 - 1 on the scaled inputs), with class 1's rows weighing 3 times as much (60 against 40), 1."""
    points = np.array([[0.9, 0.1]] * 60 + [[0.9, 0.9]] * 40 + [[0.1, 0.1]] * 40)
    return np.repeat(points, scale, axis=0), np.repeat([0] * 40 + [1] * 20 + [1] * 40 + [0] * 40, scale)


def test_balanced_class_weights_count_the_training_split_only():
    # 30 of class 0 and 10 of class 1 overall, 5 of each per class: the rows trained on are balanced.
    x = np.arange(40, dtype=float)[:, None]
    y = np.array([0] * 30 + [1] * 10)
    dataset, _ = dataset_from_arrays(x, y)
    config = TrainConfig(per_class=5, class_weight="balanced", validation_size=10, test_size=0)
    split = training.class_weighted(config, training.split_data(config, dataset), dataset.classes)
    assert np.array_equal(split.train_weights, np.ones(10))
    assert len(split.val_weights) == len(split.val_y) > 0 and np.all(split.val_weights == 1.0)
    whole = TrainConfig(class_weight="balanced", validation_size=4, test_size=0)
    split = training.class_weighted(whole, training.split_data(whole, dataset), dataset.classes)
    n, ones = len(split.train_y), int(split.train_y.sum())
    assert 0 < ones < n - ones  # unbalanced here, so the weights differ
    assert np.allclose(split.train_weights, np.where(split.train_y == 1, n / (2 * ones), n / (2 * (n - ones))))


def test_a_calibration_without_validation_rows_is_fitted_on_the_training_rows():
    from formulations.network import IntegerNetwork
    from pipeline.networks.calibration import fit_calibration_on_splits
    from pipeline.networks.ensembles import Ensemble

    network = IntegerNetwork((np.array([[0], [2]]),), (np.array([0, -1]),), 3)
    x = np.array([[0], [10000], [10000], [0], [10000]], dtype=np.int64)
    y = np.array([0, 1, 1, 0, 0])
    empty = (x[:0], y[:0])
    calibration = fit_calibration_on_splits(Ensemble.single(network), empty, (x, y))
    assert calibration.fitted_on == "train" and calibration.inverse_temperature > 0


@pytest.mark.parametrize("hidden", [2, 0])
@pytest.mark.parametrize("weighting", ["class_weight", "sample_weight"])
def test_weights_decide_where_labels_conflict(hidden, weighting):
    x, y = conflicting()
    base = dict(P=1, hidden=hidden, time_limit=3)
    plain = IntegerNetworkClassifier(**base).fit(x, y)
    if weighting == "class_weight":
        weighted = IntegerNetworkClassifier(**base, class_weight={1: 3.0}).fit(x, y)
    else:
        weighted = IntegerNetworkClassifier(**base).fit(x, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    contested = np.array([[0.9, 0.1]])
    assert plain.predict(contested)[0] == 0 and weighted.predict(contested)[0] == 1
    assert weighted.predict(np.array([[0.9, 0.9], [0.1, 0.1]])).tolist() == [1, 0]


def test_zero_weights_leave_rows_out_and_bad_weights_are_refused():
    x, y = conflicting()
    weights = np.ones(len(y))
    weights[:200] = 0  # the contested point's class-0 rows
    model = IntegerNetworkClassifier(P=1, hidden=2, time_limit=2).fit(x, y, sample_weight=weights)
    assert model.summary_.n_train + model.summary_.n_validation == len(y) - 200
    assert model.predict(np.array([[0.9, 0.1]]))[0] == 1
    for bad, needle in ((np.ones(3), "one weight per row"), (-weights, ">= 0"), (np.zeros(len(y)), "every weight is zero")):
        with pytest.raises(ValueError, match="parameter sample_weight: .*" + needle):
            IntegerNetworkClassifier().fit(x, y, sample_weight=bad)
    with pytest.raises(ValueError, match="^IntegerNetworkClassifier: parameter sample_weight: formulation max_margin"):
        IntegerNetworkClassifier(formulation="max_margin").fit(x, y, sample_weight=weights)


@pytest.mark.parametrize("formulation", ["max_correct", "sat_margin", "min_hinge", "correct_margin"])
def test_every_weighting_mip_minimises_the_weighted_count(formulation):
    """The batch MIP's objective is the weighted loss of the network it returns, recomputed here from
    its integer weights: a class-1 example counts 3 times (objective accept rule: the batch keeps the
    solved network)."""
    x, y = conflicting(1)
    dataset, _ = dataset_from_arrays(x, y)
    config = TrainConfig(formulation=formulation, P=1, hidden=(2,), time_limit=3, target_error=None,
                         accept="objective", class_weight={"1": 3.0}, test_size=0)
    summary = training.train(config, data=dataset, persist=False)
    split = training.class_weighted(config, training.split_data(config, dataset), dataset.classes)
    assert np.array_equal(split.train_weights, np.where(split.train_y == 1, 3.0, 1.0))
    (batch,) = summary.batches
    network = batch.network
    scores = network.output(split.train_x)
    if formulation == "max_correct":
        loss = (np.argmax(scores, axis=1) != split.train_y)
    else:
        margin = 2 * scores / ((2 + 1) * 1)  # ẑ = 2z / Ω, Ω = (hidden + 1) P
        signed = np.where(np.arange(2)[None, :] == split.train_y[:, None], 1, -1) * margin
        if formulation == "sat_margin":
            loss = np.count_nonzero(signed < 0.5, axis=1)
        elif formulation == "correct_margin":  # the true class's lead over the other one
            loss = (margin[np.arange(len(margin)), split.train_y] - margin[np.arange(len(margin)), 1 - split.train_y]) < 0.5
        else:
            loss = (np.maximum(0, 0.5 - signed) ** 2).sum(axis=1)
    assert batch.objective == pytest.approx(float(loss @ split.train_weights), abs=1e-6)


def test_time_limit_and_improve_bound_what_fit_spends():
    """The docstring's rule with the defaults (one batch, one epoch): fit spends the start, then at
    most time_limit + improve seconds, plus evaluation (a second of slack on a shared machine)."""
    x, y = conflicting()
    began = time.perf_counter()
    model = IntegerNetworkClassifier(P=1, hidden=3, time_limit=2, improve=1, target_error=None).fit(x, y)
    spent = time.perf_counter() - began
    assert spent <= model.summary_.timings["start_network"] + 2 + 1 + 2, (spent, model.summary_.timings)

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from sklearn.model_selection import cross_val_score
    from intnet import IntegerNetworkClassifier

    rng = np.random.default_rng(0)
    x = rng.random((150, 5))
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    model = IntegerNetworkClassifier(P=1, hidden=(4,), time_limit=5)
    scores = cross_val_score(model, x, y, cv=3)
    model.fit(x, y)
    print(json.dumps({"scores": scores.tolist(), "prefect": "prefect" in sys.modules, "files": os.listdir(".")}))
""")


@pytest.mark.subprocess
def test_cross_validation_from_outside_the_repository_writes_nothing_and_starts_no_prefect(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["scores"]) == 3 and min(report["scores"]) > 0.6
    assert report["prefect"] is False
    assert report["files"] == [] and list(Path(tmp_path).iterdir()) == []


RAY_FIT = textwrap.dedent("""
    import numpy as np
    from intnet import IntegerNetworkClassifier

    rng = np.random.default_rng(0)
    x = rng.random((200, 6))
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    # sat_margin to the gap, 120 s a batch: still solving when the test kills it
    IntegerNetworkClassifier(formulation="sat_margin", P=3, hidden=(6,), batch_size=40, epochs=1, time_limit=120,
                             target_error=None, workers=2).fit(x, y)
""")


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_fit_on_ray_keeps_rays_folder_private_and_a_killed_one_leaves_nothing(tmp_path):
    """Ray makes its session folder world-writable (0777): it must be inside a private folder (0700)
    of the fit, which its watchdog (`python -m flows.run_scope FOLDER`) removes. After SIGKILL of
    the fitting process, no process it started (Ray's servers, agents, actors) lives 30 s on, and
    both folders are gone. (The temporary folder is the default one: under a longer one, Ray's
    socket paths outgrow what Linux allows.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PREFECT_"))} | {TEST_MARKER: str(tmp_path)}
    fit = subprocess.Popen([sys.executable, "-c", RAY_FIT], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not any(command.startswith("ray::_BatchSolver.solve") for command in processes_of(str(tmp_path)).values()):
        assert fit.poll() is None, fit.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no actor was seen solving"
        time.sleep(0.2)
    commands = list(processes_of(str(tmp_path)).values())
    watchdogs = [Path(c.split()[3]) for c in commands if c.split()[1:3] == ["-m", "flows.run_scope"]]
    ray_folders = {Path(found) for c in commands for found in re.findall(r"(/\S*?/intnet-ray-[^/\s]+)", c)}
    assert len(watchdogs) == 1 and len(ray_folders) == 1, (watchdogs, ray_folders)
    (private,), (ray_folder,) = watchdogs, ray_folders
    assert ray_folder.parent == private and private.stat().st_mode & 0o777 == 0o700
    os.kill(fit.pid, signal.SIGKILL)
    fit.wait(timeout=30)
    killed = time.monotonic()
    while left := processes_of(str(tmp_path)):
        assert time.monotonic() < killed + 30, left
        time.sleep(0.2)
    assert not private.exists()
