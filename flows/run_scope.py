"""What one CLI run owns besides its results, and how it all ends when the run ends, however it ends.

A run gets a private temporary folder (mode 0700) that holds everything it writes that is not a
result: Prefect's database, when the run starts Prefect's temporary API server, and every temporary
file of the run and of the processes it starts (``TMPDIR``; a local Ray keeps its session folder
there). Every process the run starts (Prefect's server, Ray's servers, agents and actors) inherits
the run's marker in its environment.

A watchdog process, started first and in a session of its own (so that neither Ctrl-C nor a closed
terminal reaches it), waits for the end of a pipe that only the run holds. The pipe closes when the
run leaves :func:`private_run` and when the run's process dies, even by SIGKILL; the watchdog then
kills every process still carrying the marker and removes the folder. (Prefect starts its server
itself, and a killed run's Ray agents lingered about a minute and Prefect's server forever, so
neither a parent-death signal nor the run's own clean-up could cover them.) Linux only: processes
are found through /proc.

Prefect is imported only by :func:`prefect_api` and :func:`served_api`, after :func:`private_run`
has set the database Prefect's server reads when it is imported; a run without Prefect imports none
of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flows import PREFECT_DEFAULTS, set_prefect_defaults
from pipeline.errors import IntnetError

MARKER = "INTNET_RUN"
"""Environment variable every process of a run inherits; its value is the run's private folder."""

PREFECT_DATABASE = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
USER_PREFECT_SETTINGS = ("PREFECT_HOME", "PREFECT_API_URL", PREFECT_DATABASE, "PREFECT_API_DATABASE_CONNECTION_URL")
"""Set by the user, these say where Prefect keeps its data, and the run leaves Prefect alone."""
PREFECT_RESULTS = "PREFECT_RESULTS_LOCAL_STORAGE_PATH"
"""Where Prefect pickles the exception of every failed flow run, whatever the flow's
persist_result says (~/.prefect/storage by default, where they piled up). intnet's flow keeps no
result, and nothing reads these back."""


@contextmanager
def private_run() -> Iterator[Path]:
    """The run's private folder, marker and watchdog. The environment is restored on leaving, so
    that a caller that is not a process of its own (a test calling the CLI) is left as it was."""
    # A short name: Ray's socket paths inside it (intnet-ray-*/session_<date>_<pid>/sockets/
    # plasma_store) must fit Linux's 107 bytes, and under /tmp with a 7-digit pid (pid_max is
    # 4194304 on many systems) "intnet-run-" made them 108 (Ray refuses to start).
    folder = Path(tempfile.mkdtemp(prefix="intnet-"))
    # SPT_NOENV: Ray titles its agents ("ray::DashboardAgent") with a setproctitle that, unless
    # told, writes over the memory /proc/<pid>/environ shows, marker included; the watchdog could
    # not find them, and a killed run's agents lived on for a minute (measured: 2 of 3 runs).
    settings = {MARKER: str(folder), "TMPDIR": str(folder), "SPT_NOENV": "1"}
    if not any(os.environ.get(name) for name in USER_PREFECT_SETTINGS):
        # Runs shared ~/.prefect/prefect.db ("database is locked" between concurrent runs), and it
        # grew with every run. Measured: a fresh database costs Prefect's temporary server no
        # start-up time worth noting (11.7 s fresh, 11.2 s reused, on a busy 2-core machine).
        settings[PREFECT_DATABASE] = f"sqlite+aiosqlite:///{folder / 'prefect.db'}"
    if not os.environ.get(PREFECT_RESULTS):
        settings[PREFECT_RESULTS] = str(folder / "prefect-results")
    with environment(settings):
        tempfile.tempdir = None  # tempfile caches the folder it chose; choose again from TMPDIR
        run_end = start_watchdog(folder)
        try:
            yield folder
        finally:
            tempfile.tempdir = None
            shutil.rmtree(folder, ignore_errors=True)
            os.close(run_end)  # the watchdog reaps what is left, if anything, and exits


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """``settings`` in the environment, as it was before on leaving."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_watchdog(folder: Path) -> int:
    """Start the watchdog of the run marked with ``folder``; returns the pipe end whose closing
    (or the run's death) sets it off."""
    watchdog_end, run_end = os.pipe()
    environment = {name: value for name, value in os.environ.items() if name != MARKER}
    subprocess.Popen([sys.executable, "-m", "flows.run_scope", str(folder)], stdin=watchdog_end,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                     start_new_session=True)
    os.close(watchdog_end)
    return run_end


def marked_processes(folder: str) -> list[int]:
    """Pids of the live processes that inherited the marker of the run whose folder is ``folder``
    (a process's /proc environ is the environment it started with; a zombie's is empty)."""
    entry = f"{MARKER}={folder}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if entry in Path(f"/proc/{name}/environ").read_bytes().split(b"\0"):
                found.append(int(name))
        except OSError:  # gone meanwhile, or another user's
            continue
    return found


def reap(folder: str, attempts: int = 100) -> None:
    """Kill every process of the run, again until none is left (a dying Ray server may still start
    a worker), then remove its folder."""
    for _ in range(attempts):
        pids = marked_processes(folder)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        threading.Event().wait(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def run_without_sigint(function: Callable[[], None]) -> None:
    """Run ``function`` on a thread that blocks SIGINT, so that the processes it starts inherit
    SIGINT blocked: Ctrl-C in a terminal signals the whole foreground process group, and they must
    not react to it (a dying Prefect server made the run retry it for 148 s); the run ends them.
    The calling thread keeps SIGINT, so Ctrl-C still reaches the run at once."""
    failure: list[BaseException] = []

    def blocked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            function()
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=blocked, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def configured_prefect_api() -> str | None:
    """The Prefect API URL set in the environment or in the active Prefect profile, found as Prefect
    finds them but without importing Prefect (2.8 s here, and a run without an API needs none of
    it). Prefect's other sources (a .env or prefect.toml file in the working folder) are not read."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):  # none, or one Prefect ignores too
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = profiles.get("profiles", {}).get(active) if isinstance(profiles.get("profiles"), dict) else None
    return (profile.get("PREFECT_API_URL") or None) if isinstance(profile, dict) else None


@contextmanager
def prefect_api() -> Iterator[None]:
    """Prefect's temporary API server for this run, started here rather than by Prefect's first call
    so that it does not see Ctrl-C, and stopped on leaving; nothing when an API is configured."""
    set_prefect_defaults()
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        yield
        return
    server = SubprocessASGIServer()  # the instance Prefect's clients look up
    run_without_sigint(server.start)
    try:
        yield
    finally:
        from prefect.logging.handlers import APILogHandler

        # The run's last log lines reach the server before it stops; sent after, they printed
        # "--- Error logging to API --- All connection attempts failed" at the end of every run.
        APILogHandler().flush()
        server.stop()


@contextmanager
def served_api(folder: Path) -> Iterator[Path | None]:
    """The Prefect API `intnet serve` registers its deployment with, from inside :func:`private_run`
    (whose ``folder`` this is). A configured one (:func:`configured_prefect_api`) is used as it is,
    its access control its own, and None is yielded. Otherwise a Prefect server of this serve's
    own, on 127.0.0.1 and refusing every request without its basic-authentication credentials
    (Prefect's ``server.api.auth_string``): ``PREFECT_SERVER_API_AUTH_STRING`` if set, else made
    here. Its URL and credentials are written to a file of mode 0600 in the private folder, whose
    path is yielded; this process and the flow runs it starts get them through the environment.
    It is Prefect's full server, not the temporary one a run starts, since only the full one runs
    the scheduler a ``--cron`` schedule needs; its user interface is off."""
    if configured_prefect_api():
        yield None
        return
    set_prefect_defaults()
    credentials = os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or f"intnet:{secrets.token_urlsafe(24)}"
    with socket.socket() as probe:  # a free loopback port; Prefect's server binds it just after
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    access = folder / "prefect-api.env"
    with os.fdopen(os.open(access, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(f"PREFECT_API_URL={url}\nPREFECT_API_AUTH_STRING={credentials}\n")
    log = folder / "prefect-server.log"
    settings = {"PREFECT_SERVER_API_AUTH_STRING": credentials, "PREFECT_API_AUTH_STRING": credentials,
                "PREFECT_API_URL": url}
    with environment(settings), log.open("wb") as output:
        # In a session of its own, so that a signal to the serve's process group (Ctrl-C at a
        # terminal, timeout's SIGTERM) does not end the server under the runner, which then
        # retried it for more than a minute (measured) before it stopped; the serve stops it.
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(url, server, log)
            yield access
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until the server at ``url`` answers its health check (which needs no credentials)."""
    limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                                 PREFECT_DEFAULTS["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            said = log.read_text(errors="replace").strip().splitlines()
            raise IntnetError("Prefect's server did not start" + (f": {said[-1]}" if said else ""))
        time.sleep(0.2)


if __name__ == "__main__":
    sys.stdin.buffer.read()  # returns at end of file: the run left private_run or died
    reap(sys.argv[1])
