"""What every executor is (:class:`Executor`), and local search's steps run on an executor's
workers (:func:`neighbourhood_solver`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from pipeline.solving.batches import BatchResult, BatchTask, EpochStart, RunContext, neighbourhood_step
from pipeline.solving.improve import NeighbourhoodSolver

T = TypeVar("T")


class Executor(Protocol):
    def open(self, context: RunContext) -> None:
        """Take the run's data and settings (and start workers) once, before the first epoch."""

    def run(self, epochs: Sequence[EpochStart], tasks: Sequence[BatchTask]) -> Iterator[BatchResult]:
        """Solve every task from its member's start, ``epochs[task.member]``; yield each result
        when it is done (in any order)."""

    def close(self) -> None:
        """Stop the workers; the executor is not used again."""

    width: int
    """How many calls of :meth:`map` run at once."""

    def map(self, function: Callable[..., T], arguments: Sequence[tuple]) -> list[T]:
        """``function(context, *args)`` for every ``args`` in ``arguments`` on the workers holding
        the run's context; the results in the arguments' order. ``function`` must be importable by
        name (a module-level function) to reach another process."""


def neighbourhood_solver(executor: Executor, epoch: EpochStart, task: BatchTask) -> NeighbourhoodSolver:
    """The local-search steps of ``task``'s batch on ``executor``'s workers, side by side."""
    def solve_many(network, objective, areas, options):
        return executor.map(neighbourhood_step, [(epoch, task, network, objective, area, options) for area in areas])

    return solve_many
