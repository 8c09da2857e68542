"""`intnet train` at a terminal shows progress (batches, members, local-search steps); piped or
with --json it prints only its summary (or the JSON object). Both run directly (no Prefect API
configured) and as the Prefect flow (the session's server configured)."""

import json
import os
import pty
import re
import subprocess
import sys

import pytest

ARGS = ["train", "--dataset", "heart", "--train-size", "80", "--batch-size", "40", "--epochs", "1", "--P", "1",
        "--hidden", "3", "--ensemble", "2", "--time-limit", "2", "--improve", "2", "--seed", "3"]


def run_in_terminal(args, env, cwd) -> str:
    """The output of the CLI run with a pseudo-terminal as its stdout and stderr."""
    controller, terminal = pty.openpty()
    run = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdin=subprocess.DEVNULL, stdout=terminal,
                           stderr=terminal, env=env, cwd=cwd)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal is closed once the run has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert run.wait(timeout=300) == 0
    os.close(controller)
    # without the terminal's control sequences (colours, cursor moves)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))


def run_environment(tmp_path, as_flow: bool, request) -> dict[str, str]:
    """The CLI's environment: the session's Prefect server as the configured API, or none (no
    PREFECT_API_URL, a HOME without a Prefect profile)."""
    if as_flow:
        request.getfixturevalue("prefect_server")
        from prefect.settings import PREFECT_API_URL

        return os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    (tmp_path / "home").mkdir()
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"HOME": str(tmp_path / "home")}


@pytest.mark.subprocess
@pytest.mark.parametrize("as_flow", [False, True], ids=["direct", "prefect-flow"])
def test_a_terminal_shows_batches_members_and_local_search_steps(tmp_path, as_flow, request):
    env = run_environment(tmp_path, as_flow, request) | {"COLUMNS": "200"}
    shown = run_in_terminal([*ARGS, "--out", str(tmp_path / "m.parquet"), "--checkpoints", str(tmp_path / "runs")],
                            env, tmp_path)
    assert "epoch 0 of 0-0" in shown and "4/4" in shown  # 2 members x 2 batches of 40
    for member in (0, 1):
        assert f"(member {member}):" in shown
    assert "local-search steps" in shown
    assert "intnet: heart" in shown  # the summary follows the display


@pytest.mark.subprocess
@pytest.mark.parametrize("as_flow", [False, True], ids=["direct", "prefect-flow"])
def test_piped_or_json_output_has_no_progress(tmp_path, as_flow, request):
    env = run_environment(tmp_path, as_flow, request)
    shown = run_in_terminal([*ARGS, "--out", str(tmp_path / "m.parquet"), "--checkpoints", str(tmp_path / "runs"),
                             "--json"], env, tmp_path)
    assert "━" not in shown and "(member 0):" not in shown  # no bar, no display lines
    piped = subprocess.run([sys.executable, "-m", "flows.cli", *ARGS, "--out", str(tmp_path / "n.parquet"),
                            "--checkpoints", str(tmp_path / "runs2"), "--json"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0
    assert json.loads(piped.stdout)["ensemble"]["members"] == 2  # stdout is the JSON object alone
    assert "━" not in piped.stderr and "(member 0):" not in piped.stderr
    # a normal run logs no ERROR line (Ray's restartable-actor notice was one, on every Ray run)
    assert "ERROR" not in piped.stderr and "Error" not in piped.stderr, piped.stderr[-2000:]
