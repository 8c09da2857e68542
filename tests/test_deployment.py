"""The training flow as a Prefect deployment. Against a real `prefect server start`: `intnet serve`
registers it with its cron schedule, `run_deployment` with parameters runs it to completion, and a
run that fails leaves no pickled exception in Prefect's storage. Without a configured API,
`intnet serve` starts a server of its own that refuses every request without the credentials it
wrote for its operator, and with them refuses a run whose paths lie outside the allowed folders;
killed, it leaves no server behind. Every request goes to 127.0.0.1."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_signals import TEST_MARKER, listening_sockets, processes_of

from pipeline.config import TrainConfig
from pipeline.networks.storage import read_network

pytestmark = [pytest.mark.prefect, pytest.mark.subprocess]

TRIGGER = """
import asyncio, json, sys, time
from prefect import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

name, parameters = sys.argv[1], json.loads(sys.argv[2])

async def deployment():
    async with get_client() as client:
        for _ in range(240):  # `intnet serve` registers the deployment once it has started
            try:
                return await client.read_deployment_by_name(name)
            except ObjectNotFound:
                await asyncio.sleep(0.5)
        raise TimeoutError(name)

found = asyncio.run(deployment())
run = run_deployment(name, parameters=parameters, timeout=600)
print(json.dumps({"state": run.state.type.value, "crons": [s.schedule.cron for s in found.schedules]}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def prefect_api(tmp_path):
    """A real Prefect server on 127.0.0.1 with its own home, as a user would run it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not healthy(url):
            assert server.poll() is None, "prefect server start exited"
            assert time.monotonic() < deadline, "the Prefect server did not become healthy"
            time.sleep(0.5)
        yield url, env | {"PREFECT_API_URL": url}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_serve_registers_a_scheduled_deployment_that_run_deployment_triggers(tmp_path, prefect_api):
    url, env = prefect_api
    flags = ["--dataset", "heart", "--train-size", "60", "--hidden", "4", "--P", "1", "--time-limit", "3",
             "--heuristic-steps", "200", "--checkpoints", str(tmp_path / "runs")]
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", *flags, "--out", str(tmp_path / "default.parquet"),
         "--name", "intnet-test", "--cron", "0 3 * * *", "--allow-dir", str(tmp_path)],
        env=env, start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp_path,
    )

    def trigger(**fields) -> dict:
        config = TrainConfig(**{"dataset": "heart", "train_size": 60, "hidden": (4,), "P": 1, "time_limit": 3,
                                "heuristic_steps": 200, "checkpoints": tmp_path / "runs", **fields})
        parameters = {"config": config.model_dump(mode="json")}
        done = subprocess.run([sys.executable, "-c", TRIGGER, "train/intnet-test", json.dumps(parameters)],
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    try:
        # A trigger overrides the deployment's default parameters: here, where the network goes.
        result = trigger(out=tmp_path / "triggered.parquet")
        assert result["crons"] == ["0 3 * * *"]
        assert result["state"] == "COMPLETED", log.read_text()[-4000:]
        stored = read_network(tmp_path / "triggered.parquet")
        assert stored.network.sizes == [21, 4, 2] and stored.provenance["config"]["train_size"] == 60
        assert not (tmp_path / "default.parquet").exists()
        # A run that fails (its data file is missing): Prefect pickles its exception into its
        # result storage whatever the flow says; none is left in PREFECT_HOME/storage.
        failed = trigger(dataset=None, data=tmp_path / "missing.csv", label="y", out=tmp_path / "never.parquet")
        assert failed["state"] == "FAILED", log.read_text()[-4000:]
        assert not list((tmp_path / "prefect" / "storage").glob("*"))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)


SERVE_FLAGS = ["--dataset", "heart", "--train-size", "60", "--hidden", "4", "--P", "1", "--time-limit", "3",
               "--heuristic-steps", "200"]


def own_serve(tmp_path: Path, *flags: str) -> subprocess.Popen:
    """`intnet serve` with no Prefect API configured (none in the environment, no profile in its
    HOME), in a session of its own, its processes marked for the test, its output in serve.log."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_"))} | {
        "HOME": str(home), TEST_MARKER: str(tmp_path), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", *SERVE_FLAGS, *flags], env=env, cwd=tmp_path,
                            start_new_session=True, stdout=(tmp_path / "serve.log").open("w"), stderr=subprocess.STDOUT)


def api(url: str, method: str, path: str, credentials: str | None = None, body=None) -> tuple[int, object]:
    """One request to the Prefect API at ``url`` (on 127.0.0.1), with basic authentication when
    ``credentials`` are given: the status and the JSON answer (None for an error)."""
    headers = {"Content-Type": "application/json"}
    if credentials is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def test_serve_without_an_api_needs_its_credentials_and_keeps_runs_in_the_allowed_folders(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    serve = own_serve(tmp_path, "--out", str(allowed / "default.parquet"), "--checkpoints", str(allowed / "runs"),
                      "--allow-dir", str(allowed), "--name", "intnet-test")
    log = tmp_path / "serve.log"
    try:
        deadline = time.monotonic() + 300
        while not (found := re.search(r"credentials in (\S+) ", log.read_text())):
            assert serve.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        access = Path(found.group(1))
        assert access.stat().st_mode & 0o777 == 0o600 and access.parent.stat().st_mode & 0o777 == 0o700
        settings = dict(line.split("=", 1) for line in access.read_text().splitlines())
        url, credentials = settings["PREFECT_API_URL"], settings["PREFECT_API_AUTH_STRING"]
        assert url.startswith("http://127.0.0.1:")
        while (answer := api(url, "GET", "/deployments/name/train/intnet-test", credentials))[0] != 200:
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        deployment = answer[1]["id"]

        def parameters(out: Path) -> dict:
            config = TrainConfig(dataset="heart", train_size=60, hidden=(4,), P=1, time_limit=3, heuristic_steps=200,
                                 checkpoints=allowed / "runs", out=out)
            return {"parameters": {"config": config.model_dump(mode="json")}}

        # Without the credentials, or with wrong ones, nothing: no run, no deployment, no logs.
        outside = tmp_path / "outside.parquet"
        for wrong in (None, "intnet:wrong", credentials + "x"):
            assert api(url, "POST", f"/deployments/{deployment}/create_flow_run", wrong, parameters(outside))[0] == 401
            assert api(url, "GET", f"/deployments/{deployment}", wrong)[0] == 401
            assert api(url, "POST", "/logs/filter", wrong, {})[0] == 401

        def run(out: Path) -> dict:
            status, flow_run = api(url, "POST", f"/deployments/{deployment}/create_flow_run", credentials,
                                   parameters(out))
            assert status == 201, status
            while (state := api(url, "GET", f"/flow_runs/{flow_run['id']}", credentials)[1]["state"])["type"] not in (
                    "COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                assert serve.poll() is None and time.monotonic() < deadline + 600, log.read_text()[-3000:]
                time.sleep(1)
            return state

        # With them, a run may not write outside the allowed folder...
        refused = run(outside)
        assert refused["type"] == "FAILED" and f"may not use --out {outside}" in refused["message"], refused
        assert not outside.exists()
        # ... and may inside it.
        inside = allowed / "new" / "triggered.parquet"
        assert run(inside)["type"] == "COMPLETED", log.read_text()[-3000:]
        assert read_network(inside).network.sizes == [21, 4, 2]
        # The refused run's exception, pickled by Prefect, is not in the serving account's home.
        assert not list((tmp_path / "home" / ".prefect" / "storage").glob("*"))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)  # as timeout, or systemd, stops it
        serve.wait(timeout=60)


def test_a_killed_serve_leaves_no_server_behind(tmp_path):
    serve = own_serve(tmp_path, "--out", str(tmp_path / "default.parquet"), "--checkpoints", str(tmp_path / "runs"))
    deadline = time.monotonic() + 300
    while not [pid for pid, _, _ in listening_sockets(processes_of(str(tmp_path))) if pid != serve.pid]:
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no server of the serve was seen listening"
        time.sleep(0.5)
    os.kill(serve.pid, signal.SIGKILL)
    serve.wait(timeout=30)
    killed = time.monotonic()
    while left := processes_of(str(tmp_path)):
        assert time.monotonic() < killed + 30, (left, listening_sockets(left))
        time.sleep(0.2)
