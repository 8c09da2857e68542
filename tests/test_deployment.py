"""The training flow as a Prefect deployment against a real `prefect server start`: `intnet serve`
registers it with its cron schedule, and `run_deployment` with parameters runs it to completion."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipeline.config import TrainConfig
from pipeline.networks.storage import read_network

TRIGGER = """
import asyncio, json, sys, time
from prefect import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

pytestmark = [pytest.mark.prefect, pytest.mark.subprocess]

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
         "--name", "intnet-test", "--cron", "0 3 * * *"],
        env=env, start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        # A trigger overrides the deployment's default parameters: here, where the network goes.
        config = TrainConfig(dataset="heart", train_size=60, hidden=(4,), P=1, time_limit=3, heuristic_steps=200,
                             checkpoints=tmp_path / "runs", out=tmp_path / "triggered.parquet")
        parameters = {"config": config.model_dump(mode="json")}
        done = subprocess.run([sys.executable, "-c", TRIGGER, "train/intnet-test", json.dumps(parameters)],
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["crons"] == ["0 3 * * *"]
        assert result["state"] == "COMPLETED", log.read_text()[-4000:]
        stored = read_network(tmp_path / "triggered.parquet")
        assert stored.network.sizes == [21, 4, 2] and stored.provenance["config"]["train_size"] == 60
        assert not (tmp_path / "default.parquet").exists()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)
