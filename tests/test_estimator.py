"""The Python API: `intnet.IntegerNetworkClassifier` under scikit-learn's own checks and tools, in
a fresh process outside the repository, writing nothing and starting no Prefect; a fit on Ray
keeps Ray's folder private and, killed, leaves nothing behind."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from test_cli import contract_forward
from test_signals import TEST_MARKER, processes_of

from intnet import IntegerNetworkClassifier, load
from pipeline.config import TrainConfig

FAST = dict(P=1, hidden=(3,), time_limit=1, heuristic_steps=50, target_error=1.0)
"""For scikit-learn's checks: dozens of fits, on data where accuracy is not what is checked (every
start meets the target error 1.0, so no MIP is built: 42 s of checks become a few)."""
TRAINED = dict(P=1, hidden=(4,), time_limit=2)

CANNOT_APPLY = {
    # scikit-learn requires its own NotFittedError class here, and intnet does not depend on
    # scikit-learn; intnet raises its own NotFittedError, a ValueError and an AttributeError as
    # scikit-learn's is, so `except (ValueError, AttributeError)` catches both.
    "check_estimators_unfitted",
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
