"""Real `intnet train` runs ended by real signals, and the local Ray such a run starts.

Ctrl-C (SIGINT to the whole process group, as a terminal sends it, or to the driver alone) and
SIGTERM (what timeout, systemd and docker send: to the driver alone, or to its whole process group
as timeout does) end a run within 10 s with exit code 130 or 143 and one line on stderr, write no
model, keep the batches finished so far, and leave no process of the run 30 s later; so does
SIGKILL of the driver; so do they `intnet improve` and `compress`. Runs are direct (no Prefect API
configured) but one, which runs as the Prefect flow. While a two-worker run solves, every socket
its processes listen on is a loopback one, and its Ray refuses a client without the run's token.
Processes of a run are found by a marker the test puts in the run's environment, which every
process it starts inherits; traffic goes to 127.0.0.1 only. A signal's handler runs while HiGHS
solves in the process, not when the solve ends.
"""

import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

TEST_MARKER = "INTNET_TEST_SIGNALS"


def environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in entries if b"=" in entry)


def processes_of(mark: str) -> dict[int, str]:
    """Live processes carrying ``TEST_MARKER=mark``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if environ(int(entry.name)).get(TEST_MARKER) == mark:
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found


def listening_sockets(pids) -> list[tuple[int, object, int]]:
    """(pid, address, port) of every TCP socket the processes listen on, from /proc/net/tcp{,6}."""
    owner = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owner:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append((owner[fields[9]], kernel_address(address), int(port, 16)))
    return found


def kernel_address(hex_address: str):
    """An address as /proc/net prints it (32-bit words in host byte order), as an ip_address."""
    raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8))
    return ipaddress.ip_address(raw)


def loopback(address) -> bool:
    """127.0.0.0/8 or ::1, or an IPv4 loopback address mapped into IPv6 (as Ray's servers bind)."""
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None) and address.ipv4_mapped.is_loopback)


def join_attempt(address: str, env: dict[str, str]) -> str:
    """``joined`` when a Ray client with ``env`` joins the cluster at ``address``, ``refused`` once
    it reports Ray's authentication refusal (it would retry for 20 s more), else what it said."""
    probe = f"import ray; ray.init(address={address!r}, log_to_driver=False); print('JOINED', flush=True)"
    client = subprocess.Popen([sys.executable, "-c", probe], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    hung = threading.Timer(90, client.kill)  # a client that hangs ends the loop below
    hung.start()
    said = []
    for line in client.stdout:
        said.append(line)
        if line.startswith("JOINED") or "Unauthenticated" in line:
            break
    hung.cancel()
    client.kill()
    client.wait()
    if said and said[-1].startswith("JOINED"):
        return "joined"
    return "refused" if said and "Unauthenticated" in said[-1] else "".join(said)[-2000:]


ENDED = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Run:
    """`intnet train` on Heart in batches of 40 (5 batch MIPs), with its own Ray for two workers,
    as the Prefect flow on a temporary server of its own with ``prefect``, in a session of its
    own (so the test can signal its process group as a terminal would)."""

    def __init__(self, tmp_path: Path, workers: int, time_limit: int = 6, prefect: bool = False):
        self.mark = str(tmp_path)
        self.runs, self.model = tmp_path / "runs", tmp_path / "model.parquet"
        args = [
            # sat_margin, the model these runs were timed with (their batch solves use their whole limit)
            "train", "--dataset", "heart", "--train-size", "200", "--batch-size", "40", "--P", "3", "--hidden", "6",
            "--formulation", "sat_margin",
            "--time-limit", str(time_limit), "--target-error", "none", "--epochs", "1", "--workers", str(workers), "--seed", "2",
            "--checkpoints", str(self.runs), "--out", str(self.model), "--json", *(["--prefect"] if prefect else []),
        ]
        env = {name: value for name, value in os.environ.items() if not name.startswith(("PREFECT_API_", "RAY_"))}
        env |= {TEST_MARKER: self.mark, "PYTHONPATH": str(Path(__file__).parents[1])}
        self.process = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        self.stderr: list[tuple[float, bytes]] = []
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append((time.monotonic(), line))

    def stored_batches(self) -> list[Path]:
        return sorted(self.runs.glob("*/epoch-0/batch-*.parquet"))

    def wait_mid_solve(self) -> None:
        """Until a first batch is stored and the next ones have been solving for a second."""
        deadline = time.monotonic() + 300
        while not self.stored_batches():
            assert self.process.poll() is None, b"".join(line for _, line in self.stderr).decode()[-3000:]
            assert time.monotonic() < deadline, "no batch was stored in time"
            time.sleep(0.2)
        time.sleep(1)

    def wait_solving(self) -> None:
        """Until a Ray actor of the run is solving a batch (Ray titles it by the method it runs)."""
        deadline = time.monotonic() + 300
        while not any(command.startswith("ray::_BatchSolver.solve") for command in processes_of(self.mark).values()):
            assert self.process.poll() is None, b"".join(line for _, line in self.stderr).decode()[-3000:]
            assert time.monotonic() < deadline, "no actor was seen solving"
            time.sleep(0.2)

    def private_folder(self) -> Path:
        """The run's private folder, as its watchdog (`python -m flows.run_scope FOLDER`) names it:
        a one-worker run starts no other process that would carry it in its environment."""
        folders = {command.split()[3] for command in processes_of(self.mark).values()
                   if command.split()[1:3] == ["-m", "flows.run_scope"]}
        assert len(folders) == 1, folders
        return Path(folders.pop())

    def assert_nothing_left(self, since: float) -> None:
        """No process of the run within 30 s of ``since``, and its private folder removed."""
        while processes_of(self.mark):
            assert time.monotonic() < since + 30, processes_of(self.mark)
            time.sleep(0.2)
        assert not list(Path("/tmp/ray").glob(f"session_*_{self.process.pid}")), "a Ray session folder was left"


@pytest.mark.subprocess
@pytest.mark.parametrize("signum,workers,group,prefect", [
    (signal.SIGINT, 1, False, False), (signal.SIGINT, 2, True, False),
    (signal.SIGTERM, 1, False, False), (signal.SIGTERM, 2, False, False), (signal.SIGTERM, 2, True, False),
    (signal.SIGTERM, 1, False, True),
], ids=["ctrl-c-one-worker-driver", "ctrl-c-two-workers-group", "sigterm-one-worker-driver",
        "sigterm-two-workers-driver", "sigterm-two-workers-group", "sigterm-one-worker-prefect-flow"])
def test_a_signal_ends_the_run_at_once_keeping_finished_batches(tmp_path, signum, workers, group, prefect):
    run = Run(tmp_path, workers, prefect=prefect)
    run.wait_mid_solve()
    folder = run.private_folder()
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    settled = len(run.stderr)
    finished = run.stored_batches()
    sent = time.monotonic()
    (os.killpg if group else os.kill)(run.process.pid, signum)
    stdout = run.process.stdout.read()
    code = run.process.wait(timeout=60)
    ended = time.monotonic()
    run.reader.join(timeout=10)
    after = [line.decode() for _, line in run.stderr[settled:]]

    assert code == 128 + signum
    assert ended - sent < 10, f"{ended - sent:.1f} s from the signal to exit"
    assert len(after) == 1 and after[0].startswith(f"intnet train: {ENDED[signum]}, no model written"), after
    assert stdout == b""  # --json prints its object only for a finished run
    assert not run.model.exists()
    assert set(finished) <= set(run.stored_batches())  # kept for --resume
    assert 1 <= len(run.stored_batches()) < 5, "the signal should land mid-epoch"
    run.assert_nothing_left(since=ended)
    assert not folder.exists()


@pytest.mark.subprocess
def test_a_killed_run_leaves_nothing_and_its_ray_is_loopback_only_and_needs_the_token(tmp_path):
    run = Run(tmp_path, workers=2, time_limit=120)  # solving all along
    run.wait_solving()
    # Ray's agents retitle themselves once started; their marker must survive it (else the
    # watchdog misses them). Waited for: an agent may still be starting.
    agents, deadline = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}, time.monotonic() + 30
    while not agents <= (titles := {command.split()[0] for command in processes_of(run.mark).values()}):
        assert time.monotonic() < deadline, titles
        time.sleep(0.2)
    processes = processes_of(run.mark)
    folder = run.private_folder()
    sockets = listening_sockets(processes)
    assert len(sockets) >= 4, sockets  # gcs_server, raylet, the actors, the driver: Ray is up
    assert all(loopback(address) for _, address, _ in sockets), [
        (processes[pid][:60], str(address), port) for pid, address, port in sockets if not loopback(address)]
    gcs = next(pid for pid, command in processes.items() if command.split()[0].endswith("/gcs_server"))
    (port,) = [port for pid, _, port in sockets if pid == gcs]  # Ray picks it (--gcs_server_port=0)
    token = environ(gcs)["RAY_AUTH_TOKEN"]
    home = tmp_path / "home"  # no ~/.ray/auth_token for the clients to pick up
    home.mkdir()
    # Ray's client rewrites 127.0.0.1 to the machine's network address unless told, as the run's Ray
    # was, that this is a single-machine cluster; the clients stay on loopback.
    client = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")} | {
        "HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    attempts = {"no token": client | {"RAY_AUTH_MODE": "disabled"},
                "a wrong token": client | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * len(token)},
                "the run's token": client | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}}
    outcomes = {name: join_attempt(f"127.0.0.1:{port}", env) for name, env in attempts.items()}
    assert outcomes == {"no token": "refused", "a wrong token": "refused", "the run's token": "joined"}, outcomes
    assert not (Path.home() / ".ray" / "auth_token").exists() or token not in (
        Path.home() / ".ray" / "auth_token").read_text()

    os.kill(run.process.pid, signal.SIGKILL)
    run.process.wait(timeout=30)
    killed = time.monotonic()
    assert not run.model.exists()
    run.assert_nothing_left(since=killed)
    assert not folder.exists()


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("command", ["improve", "compress"])
def test_a_signal_ends_a_local_search_on_a_stored_model(tmp_path, command, signum):
    """`intnet improve` and `compress` solve in process, where HiGHS would swallow the
    KeyboardInterrupt: Ctrl-C or SIGTERM ends them within 10 s, exit 130 or 143, one line,
    nothing written."""
    from pipeline import training
    from pipeline.config import TrainConfig

    model, out = tmp_path / "model.parquet", tmp_path / "out.parquet"
    training.train(TrainConfig(dataset="heart", train_size=200, P=15, hidden=(16,), time_limit=1, heuristic_steps=200,
                               out=str(model), checkpoints=str(tmp_path / "runs")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    # Kept on the 200 training rows, a 16-neuron P = 15 network gives compression many moves (on
    # the validation rows, a smaller network was a local optimum within 8 s, measured).
    kept = ["--keep", "train"] if command == "compress" else []
    process = subprocess.Popen([sys.executable, "-m", "flows.cli", command, str(model), "--dataset", "heart",
                                "--seconds", "300", *kept, "--out", str(out), "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(6)  # loaded and searching (loading takes about 3 s)
    assert process.poll() is None, process.stderr.read().decode()
    sent = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert process.returncode == 128 + signum
    assert stderr.decode().splitlines() == [f"intnet {command}: {ENDED[signum]}, nothing written"]
    assert stdout == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.parquet", "runs"]


@pytest.mark.parametrize("step", ["neuron", "monolithic"])
def test_a_signal_handler_runs_while_highs_solves(step):
    """A single-neuron sub-MIP (arrays into highspy) and a training model (Pyomo's appsi) that each
    run into their 6 s limit: a handler due 0.5 s in runs within 3 s, not at the solve's end (Ctrl-C's
    ends the process)."""
    from dataclasses import replace

    from networks import EXACT, random_network

    from formulations import TrainingProblem
    from formulations.models import FORMULATIONS
    from pipeline.solving.improve import neighbourhoods, solve_neighbourhood
    from pipeline.solving.solve import SolveStatus, solve_mip

    rng = np.random.default_rng(0)
    n = 3000 if step == "neuron" else 120  # measured: either runs into the limit
    problem = TrainingProblem(np.round(rng.random((n, 10)), 4), rng.integers(0, 2, n), 2, (8,), 3)
    formulation = FORMULATIONS["max_correct"]()
    start = random_network(rng, problem.sizes, 3)
    options = replace(EXACT, time_limit=6.0)
    ran: list[float] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: ran.append(time.perf_counter()))
    try:
        began = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        if step == "neuron":
            area = next(a for a in neighbourhoods(problem.sizes) if a.name == "neuron 0:0")
            status = solve_neighbourhood(formulation, problem, start, formulation.objective_value(start, problem),
                                         area, options).status
        else:
            status = solve_mip(formulation, problem, start, options).status
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert status == SolveStatus.TIME_LIMIT, "the solve should outlast the signal"
    assert len(ran) == 1 and ran[0] - began < 3.0, [t - began for t in ran]
