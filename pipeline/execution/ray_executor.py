"""Solving batches on a pool of Ray actors: the only module that imports Ray.

Each actor is a process with its own HiGHS (whose thread scheduler is per process) and reserves as
many CPUs as its solver threads. The actors live for the whole run; the run's shared data goes into
Ray's object store once and every actor reads it from there once; each epoch's start network goes
there once per epoch; tasks carry only batch indices. ``RAY_ADDRESS`` joins an existing
cluster, under that cluster's own authentication settings; otherwise a local Ray is started that
listens on loopback only, refuses any client without this run's token, and keeps its files in a
private temporary folder removed when it stops (:func:`ensure_ray`, :func:`stop_ray`).

Faults: an actor whose process dies is restarted by Ray (on any node with a free CPU) and its
batch retried there, up to :data:`RESTARTS` times; past that the batch is reported as failed,
left out of the merge, and a fresh actor takes the actor's place. Every result names the Ray
node that solved it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

from pipeline.execution.base import neighbourhood_solver
from pipeline.solving.batches import BatchResult, BatchTask, EpochStart, RunContext, failed_batch, solve_batch

RESTARTS = 3
"""Times Ray restarts a dead actor, and retries the batch it was solving."""


_private_temp_dir: str | None = None
"""The temporary folder of the Ray this process started, removed by :func:`stop_ray`."""
_token: str | None = None
"""The token of every Ray this process starts."""


def ensure_ray(num_cpus: int):
    """Connect to ``RAY_ADDRESS`` if set, else start (once per process) a local Ray."""
    # Ray's usage-stats ping has nowhere to go on an offline machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray runs worker processes at niceness 15, so actors starve beside any ordinary process on a
    # shared machine (measured: a 40-example batch took 35 s instead of 1.4 s next to two busy
    # processes on 2 cores). The actors are the job here; they run at the driver's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    joining = bool(os.environ.get("RAY_ADDRESS"))
    if not joining and not ray_running():
        _secure_local_start()
    import ray

    if not ray.is_initialized():
        if joining:
            ray.init(log_to_driver=False)
        else:
            global _private_temp_dir
            _private_temp_dir = tempfile.mkdtemp(prefix="intnet-ray-")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=_private_temp_dir)
    return ray


def ray_running() -> bool:
    """Whether this process is connected to a Ray. Asked without importing Ray, which reads the
    settings of :func:`_secure_local_start` when it is imported."""
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def _secure_local_start() -> None:
    """Settings for a Ray started here, read by Ray when it is imported and inherited by every
    process it starts. They replace any the caller set: this Ray is this run's alone."""
    # Without a token anyone who reaches a port can join the cluster and run code in it
    # (CVE-2025-62593 on Ray < 2.52 went further). A fresh token per Ray, kept only in the
    # environment of this process and the processes Ray starts, never in ~/.ray/auth_token, where
    # every local Ray client would pick it up.
    # One token per process, not per start: Ray reads it once, and a second Ray started by the same
    # process (the next run of a notebook or a benchmark) under a new token refused its own driver
    # (measured: "InvalidAuthToken" starting the GCS).
    global _token
    if _token is None:
        _token = secrets.token_hex(32)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = _token
    # Ray 2.60 binds its servers to the node's address, and on Linux that is the machine's network
    # address even when given 127.0.0.1 (rewritten by resolve_ip_for_localhost). Ray's switch for
    # single-machine platforms makes the node address loopback (measured: gcs_server, raylet,
    # agents, driver and actors all listen on 127.0.0.1 instead of *). It has to be set before Ray
    # is imported, and a single-machine Ray cannot take other nodes, which a local run never has.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def stop_ray() -> None:
    """Stop this process's Ray and remove the temporary folder of the Ray it started."""
    global _private_temp_dir
    import ray

    with contextlib.redirect_stdout(sys.stderr):  # stdout belongs to the caller (`--json`)
        ray.shutdown()
    if _private_temp_dir is not None:
        shutil.rmtree(_private_temp_dir, ignore_errors=True)
        _private_temp_dir = None


class _BatchSolver:
    """Actor body: solves one batch per call. The run's context arrives as a reference inside a
    list, which Ray passes on unresolved: the actor fetches it on its first call and keeps it, and
    an actor that Ray restarted fetches it again. (A reference given to the constructor instead
    makes Ray log an ERROR line on every run, since a restart would need it still in the store.)"""

    def __init__(self) -> None:
        self.context: RunContext | None = None
        self.context_id: str | None = None

    def solve(self, context_ref: list, epochs: tuple[EpochStart, ...], task: BatchTask) -> BatchResult:
        import ray

        (ref,) = context_ref
        if self.context_id != ref.hex():
            self.context, self.context_id = ray.get(ref), ref.hex()
        result = solve_batch(self.context, epochs[task.member], task)
        result.node = ray.get_runtime_context().get_node_id()
        return result

    def call(self, context_ref: list, function, args: tuple):
        """``function(context, *args)``: one call of :meth:`RayExecutor.map`."""
        import ray

        (ref,) = context_ref
        if self.context_id != ref.hex():
            self.context, self.context_id = ray.get(ref), ref.hex()
        return function(self.context, *args)


class RayExecutor:
    """``workers`` actors, each reserving ``threads`` CPUs, solving batches as they free up. The
    actors and the run's data in Ray's object store live from :meth:`open` to :meth:`close`, across
    every epoch of the run, and so does a Ray that :meth:`open` had to start."""

    def __init__(self, workers: int, threads: int):
        self.workers = workers
        self.threads = threads
        self.actors: list = []

    def open(self, context: RunContext) -> None:
        # A Ray started for this run lives as long as the run; one the caller started stays theirs.
        self.owns_ray = not ray_running()
        self.ray = ensure_ray(max(self.workers * self.threads, os.cpu_count() or 1))
        self.actor_class = self.ray.remote(_BatchSolver).options(
            num_cpus=self.threads, max_restarts=RESTARTS, max_task_retries=RESTARTS
        )
        self.context = context
        self.context_ref = [self.ray.put(context)]
        self.actors = [self.actor_class.remote() for _ in range(self.workers)]

    @property
    def width(self) -> int:
        return self.workers

    def map(self, function, arguments: Sequence[tuple]) -> list:
        """Each call on the next actor in turn (one call per actor at a time when there are as many
        arguments as actors, the way local search sends its neighbourhoods)."""
        refs = [self.actors[i % len(self.actors)].call.remote(self.context_ref, function, args)
                for i, args in enumerate(arguments)]
        with contextlib.redirect_stdout(sys.stderr):
            return self.ray.get(refs)

    def run(self, epochs: Sequence[EpochStart], tasks: Sequence[BatchTask]) -> Iterator[BatchResult]:
        if len(tasks) == 1 and self.workers > 1 and self.context.search.improve > 0:
            # One batch would keep one actor busy and the rest idle: this process runs it and
            # every actor solves its local-search neighbourhoods side by side.
            (task,) = tasks
            epoch = epochs[task.member]
            yield solve_batch(self.context, epoch, task, neighbourhood_solver(self, epoch, task), self.workers)
            return
        ray = self.ray
        epoch_ref = ray.put(tuple(epochs))
        queue = list(tasks)
        idle = list(self.actors)
        pending: dict = {}
        # Ray prints a dead worker's notice on the driver's stdout, which belongs to the caller
        # (`intnet train --json` prints one JSON line there): send it to stderr with the logs.
        # Nothing in this loop solves, so Pyomo's own capture of stdout is not in the way.
        with contextlib.redirect_stdout(sys.stderr):
            while queue or pending:
                while queue and idle:
                    actor, task = idle.pop(), queue.pop(0)
                    pending[actor.solve.remote(self.context_ref, epoch_ref, task)] = (actor, task, time.time())
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                actor, task, sent = pending.pop(ref)
                try:
                    result = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayError as error:
                    result = failed_batch(task, sent, "lost", f"{type(error).__name__}: {error}")
                    self.actors.remove(actor)
                    replacement = self.actor_class.remote()
                    self.actors.append(replacement)
                    idle.append(replacement)
                yield result

    def close(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            for actor in self.actors:
                self.ray.kill(actor)
        self.actors = []
        if self.owns_ray:
            stop_ray()
