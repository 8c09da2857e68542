"""Solving one batch: the MIP on the batch's examples from the shared start, judged on validation.

A :class:`BatchContext` holds what every batch of a run shares (it travels to each worker once);
a :class:`BatchTask` names one batch's examples. :func:`solve_batch` never raises: a failure is a
:class:`BatchResult` with status ``error`` that the merge leaves out.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from formulations import FORMULATIONS, IntegerNetwork, ParameterBounds, TrainingProblem
from pipeline.solve import SolverOptions, solve_mip


@dataclass(frozen=True)
class BatchContext:
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    n_classes: int
    hidden: tuple[int, ...]
    P: int
    start: IntegerNetwork
    formulation: str
    solver: SolverOptions
    accept: Literal["validation", "objective"] = "validation"
    dead_inputs: Literal["start", "zero"] = "start"
    bounds: ParameterBounds | None = None


@dataclass(frozen=True)
class BatchTask:
    batch_id: int
    indices: np.ndarray


@dataclass
class BatchResult:
    """What one batch solve did. ``network`` is what the batch contributes to the merge: the solved
    network when accepted, else the start."""

    batch_id: int
    size: int
    status: str
    objective: float
    bound: float
    gap: float
    start_objective: float
    accepted: bool
    start_validation_accuracy: float
    validation_accuracy: float
    fixed_inputs: int
    build_seconds: float
    setup_seconds: float
    solve_seconds: float
    started: float
    finished: float
    worker: str
    error: str | None = None
    network: IntegerNetwork | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def contributed_validation_accuracy(self) -> float:
        """Validation accuracy of ``network``: the merge's weight for this batch."""
        return self.validation_accuracy if self.accepted else self.start_validation_accuracy

    @property
    def ok(self) -> bool:
        return self.network is not None

    def record(self) -> dict[str, Any]:
        """The JSON-ready record of this batch (everything but the network)."""
        record = {k: v for k, v in asdict(self).items() if k != "network"}
        record["seconds"] = self.seconds
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}


def batch_problem(context: BatchContext, indices: np.ndarray) -> tuple[TrainingProblem, int]:
    """The batch's training problem, with first-layer weights of inputs that are zero in every
    example of the batch pinned (the batch says nothing about them; the solver would set them at
    whim). Returns the problem and the number of pinned inputs."""
    x = context.train_x[indices]
    sizes = [x.shape[1], *context.hidden, context.n_classes]
    bounds = context.bounds or ParameterBounds.box(sizes, context.P)
    dead = ~np.any(x != 0, axis=0)
    pinned = context.start.weights[0] if context.dead_inputs == "start" else np.zeros_like(context.start.weights[0])
    bounds = bounds.fix_inputs(dead, pinned)
    problem = TrainingProblem(x, context.train_y[indices], context.n_classes, context.hidden, context.P, bounds)
    return problem, int(dead.sum())


def solve_batch(context: BatchContext, task: BatchTask) -> BatchResult:
    """Solve one batch from the shared start, moved inside the batch's bounds (pinning dead inputs
    to 0 moves it; the batch's objective does not notice, as those inputs are 0 here)."""
    started = time.time()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        problem, fixed = batch_problem(context, task.indices)
        start = problem.bounds.clip(context.start)
        start_val = start.accuracy(context.val_x, context.val_y)
        outcome = solve_mip(FORMULATIONS[context.formulation](), problem, start, context.solver)
    except Exception as error:  # reported in the batch record, left out of the merge
        return failed_batch(task, started, worker, f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
    solved_val = outcome.network.accuracy(context.val_x, context.val_y)
    if context.accept == "validation":
        accepted = solved_val >= start_val
    else:
        accepted = outcome.objective <= outcome.start_objective
    return BatchResult(
        batch_id=task.batch_id, size=len(task.indices), status=outcome.status, objective=outcome.objective,
        bound=outcome.bound, gap=outcome.gap, start_objective=outcome.start_objective, accepted=accepted,
        start_validation_accuracy=start_val, validation_accuracy=solved_val, fixed_inputs=fixed,
        build_seconds=outcome.build_seconds, setup_seconds=outcome.setup_seconds,
        solve_seconds=outcome.solve_seconds, started=started, finished=time.time(), worker=worker,
        network=outcome.network if accepted else start,
    )


def failed_batch(task: BatchTask, started: float, worker: str, error: str) -> BatchResult:
    """The record of a batch that produced no network (solver error, lost worker)."""
    nan = math.nan
    return BatchResult(
        batch_id=task.batch_id, size=len(task.indices), status="error", objective=nan, bound=nan, gap=nan,
        start_objective=nan, accepted=False, start_validation_accuracy=nan, validation_accuracy=nan,
        fixed_inputs=0, build_seconds=nan, setup_seconds=nan, solve_seconds=nan,
        started=started, finished=time.time(), worker=worker, error=error,
    )
