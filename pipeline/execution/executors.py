"""Where batches are solved. An executor lives for one run: it takes the run's shared context once
(:meth:`Executor.open`), then solves the batches of each epoch, every ensemble member's together,
each from its member's start for the epoch, yielding results as they finish so callers can report
progress. :class:`InProcessExecutor` is the Ray-free
path for tests, notebooks and debugging; :mod:`pipeline.execution.ray_executor` the parallel one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from pipeline.execution.base import Executor
from pipeline.solving.batches import BatchResult, BatchTask, EpochStart, RunContext, solve_batch

T = TypeVar("T")


class InProcessExecutor:
    """Solves the batches one after another in this process."""

    width = 1

    def __init__(self) -> None:
        self.context: RunContext | None = None

    def open(self, context: RunContext) -> None:
        self.context = context

    def run(self, epochs: Sequence[EpochStart], tasks: Sequence[BatchTask]) -> Iterator[BatchResult]:
        for task in tasks:
            yield solve_batch(self.context, epochs[task.member], task)

    def map(self, function: Callable[..., T], arguments: Sequence[tuple]) -> list[T]:
        return [function(self.context, *args) for args in arguments]

    def close(self) -> None:
        self.context = None


def _ray_executor(workers: int, threads: int) -> Executor:
    from pipeline.execution.ray_executor import RayExecutor  # Ray is imported only by runs that use it

    return RayExecutor(workers=workers, threads=threads)


EXECUTORS: dict[str, Callable[[int, int], Executor]] = {
    "local": lambda workers, threads: InProcessExecutor(),
    "ray": _ray_executor,
}
"""Executors by name (``--executor``), each made from (workers, threads)."""

AUTO = "auto"
"""``--executor auto``: Ray when there is more than one worker, else this process."""


def make_executor(name: str, workers: int, threads: int) -> Executor:
    if name == AUTO:
        name = "ray" if workers > 1 else "local"
    return EXECUTORS[name](workers, threads)
