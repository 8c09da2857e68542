"""Training through a real two-node Ray cluster on this machine, with a worker process killed
mid-run: batches run on both nodes and every batch is accounted for."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.subprocess]

RAY = str(Path(sys.executable).parent / "ray")
RAY_ENV = os.environ | {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
CLUSTER_MARKER = "INTNET_TEST_CLUSTER"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive_nodes(address: str) -> int:
    probe = "import ray; ray.init(address=%r, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    try:
        done = subprocess.run([sys.executable, "-c", probe % address], env=RAY_ENV, capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        return 0
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


@pytest.fixture
def two_node_cluster():
    """A head and a second node, one CPU each, each `ray start --block` in its own process group
    (so that tearing it down cannot touch any other Ray on the machine)."""
    # Ray's Unix sockets live under its temp dir, and a socket path may not exceed ~107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="intnet-ray-", dir="/tmp")
    # Every process of this cluster inherits the marker, which is how the test finds its actors.
    env = RAY_ENV | {CLUSTER_MARKER: temp_dir}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
    nodes = [subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                               f"--temp-dir={temp_dir}", *common], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 180
        while not accepts(port) or alive_nodes(address) < 1:
            assert time.monotonic() < deadline, "the head node did not start"
            time.sleep(0.5)
        nodes.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while alive_nodes(address) < 2:
            assert time.monotonic() < deadline, "the second node did not join"
        yield address, temp_dir
    finally:
        for node in reversed(nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def solving_actor(cluster: str) -> int | None:
    """The pid of an actor process of this cluster in the middle of a batch (Ray titles the
    process by the method it runs)."""
    marker = f"{CLUSTER_MARKER}={cluster}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("ray::_BatchSolver.solve") and marker in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def test_training_runs_on_both_nodes_and_survives_a_killed_worker(tmp_path, two_node_cluster, prefect_server):
    from prefect.settings import PREFECT_API_URL

    address, cluster = two_node_cluster
    runs = tmp_path / "runs"
    args = [
        "train", "--dataset", "heart", "--train-size", "200", "--batch-size", "40", "--P", "3", "--hidden", "6",
        "--time-limit", "4", "--target-error", "none", "--epochs", "1", "--workers", "2", "--executor", "ray",
        "--seed", "3", "--checkpoints", str(runs), "--out", str(tmp_path / "model.parquet"), "--json",
    ]
    env = RAY_ENV | {"RAY_ADDRESS": address, "PREFECT_API_URL": PREFECT_API_URL.value()}
    run = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 240
    victim = None
    while victim is None:  # wait for a first batch to be stored, then for an actor mid-solve
        assert run.poll() is None, "the run ended before a worker could be killed"
        assert time.monotonic() < deadline, "no actor was seen solving"
        if any(runs.glob("*/epoch-0/batch-*.parquet")):
            victim = solving_actor(cluster)
        time.sleep(0.1)
    os.kill(victim, signal.SIGKILL)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0
    assert out.count("\n") == 1, out[:2000]  # --json prints one line and nothing else
    batches = json.loads(out)["batches"]
    assert sorted(b["batch_id"] for b in batches) == [0, 1, 2, 3, 4]
    # the killed actor was restarted and its batch retried, so every batch has a network
    assert all(b["status"] != "error" for b in batches), [b["error"] for b in batches]
    assert len({b["node"] for b in batches}) == 2
    assert len(list(runs.glob("*/epoch-0/batch-*.parquet"))) == 5
