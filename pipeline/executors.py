"""Where batches are solved. Every executor takes the run's shared context once and yields batch
results as they finish, so callers can report progress; :class:`InProcessExecutor` is the
Ray-free path for tests and debugging, :mod:`pipeline.ray_executor` the parallel one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from pipeline.batches import BatchContext, BatchResult, BatchTask, solve_batch


class Executor(Protocol):
    def run(self, context: BatchContext, tasks: Sequence[BatchTask]) -> Iterator[BatchResult]:
        """Solve every task; yield each result when it is done (in any order)."""


class InProcessExecutor:
    """Solves the batches one after another in this process."""

    def run(self, context: BatchContext, tasks: Sequence[BatchTask]) -> Iterator[BatchResult]:
        for task in tasks:
            yield solve_batch(context, task)
