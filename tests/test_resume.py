"""A real training run killed mid-epoch and started again with --resume solves only what is missing."""

import json
import os
import signal
import subprocess
import sys
import time

from flows.cli import main
from pipeline.checkpoints import RECORD_KEY


def stored_records(runs):
    import pyarrow.parquet as pq

    return {path: json.loads(pq.read_schema(path).metadata[RECORD_KEY]) for path in runs.glob("*/epoch-0/batch-*.parquet")}


def test_a_killed_run_resumes_with_only_the_missing_batches(tmp_path, capsys, prefect_server):
    from prefect.settings import PREFECT_API_URL

    runs = tmp_path / "runs"
    args = [
        "train", "--dataset", "heart", "--train-size", "200", "--batch-size", "40", "--P", "3", "--hidden", "6",
        "--time-limit", "3", "--target-error", "none", "--epochs", "1", "--workers", "1", "--seed", "2",
        "--checkpoints", str(runs), "--out", str(tmp_path / "model.parquet"), "--json",
    ]
    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's server: no second start-up
    run = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(stored_records(runs)) < 2:
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no batch was stored in time"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    before = stored_records(runs)
    assert 2 <= len(before) < 5, "the kill should land mid-epoch"
    written = {path: path.stat().st_mtime_ns for path in before}

    assert main([*args, "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    batches = {b["batch_id"]: b for b in summary["batches"]}
    assert sorted(batches) == [0, 1, 2, 3, 4] and all(b["status"] != "error" for b in batches.values())
    for path, record in before.items():  # taken from the killed run, not solved again
        assert batches[record["batch_id"]]["started"] == record["started"]
        assert path.stat().st_mtime_ns == written[path]
    killed_at = max(record["finished"] for record in before.values())
    resolved = [b for b in batches.values() if b["batch_id"] not in {r["batch_id"] for r in before.values()}]
    assert resolved and all(b["started"] >= killed_at for b in resolved)
    assert len(stored_records(runs)) == 5
