"""Solving one batch: the MIP on the batch's examples from the shared start, judged on validation.

A :class:`RunContext` holds what every batch of a run shares, data and settings (it travels to each
worker once per run); an :class:`EpochStart` what changes per epoch (the start network and the box
around it, sent once per epoch); a :class:`BatchTask` names one batch's examples.
:func:`solve_batch` never raises: a failure is a :class:`BatchResult` with status ``error`` that
the merge leaves out.
"""

from __future__ import annotations

import math
import os
import resource
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.models import Formulation, training_model
from formulations.network import within_budget
from pipeline.networks.ensembles import member_labels
from pipeline.solving.guarantees import Guarantees
from pipeline.solving.heuristic import train_ste
from pipeline.solving.improve import (
    ImproveOutcome,
    Neighbourhood,
    NeighbourhoodSolver,
    SearchOptions,
    StepResult,
    improve,
    portfolio,
    solve_neighbourhood,
)
from pipeline.solving.solve import SolveOutcome, SolverOptions, SolveStatus, relative_gap, solve_mip

RETURNED_NO_NETWORK = (SolveStatus.NO_SOLUTION, SolveStatus.INFEASIBLE)
"""Solve statuses whose batch has no network of its own to merge (its start is not its answer)."""


@dataclass(frozen=True)
class Verdict:
    """What the accept rule weighs: the start's and the solved network's validation accuracy and
    objective on the batch."""

    start_validation: float
    solved_validation: float
    start_objective: float
    solved_objective: float


ACCEPT_RULES: dict[str, Callable[[Verdict], bool]] = {
    # Not worse on held-out examples: a batch of 40 fitted harder can be worse on the rest.
    "validation": lambda v: v.solved_validation >= v.start_validation,
    "objective": lambda v: v.solved_objective <= v.start_objective,
}
"""When a batch's solved network replaces its start (``--accept``)."""

DEAD_INPUT_VALUES: dict[str, Callable[[IntegerNetwork], np.ndarray]] = {
    "start": lambda start: start.weights[0],
    # With neuron optimisation a weight pinned to a non-zero start value would keep its neuron on.
    "zero": lambda start: np.zeros_like(start.weights[0]),
}
"""The value a first-layer weight is pinned to when its input is 0 in the whole batch (``--dead-inputs``)."""


@dataclass(frozen=True)
class BatchOptions:
    """How each batch is posed, solved and judged: the batch layer's options. A run's
    configuration (:class:`pipeline.config.TrainConfig`) takes their defaults from here, under the
    same names."""

    # max_correct minimises the error users measure. Measured (docs/method.md §8): in 10 s solves on
    # Adult N = 40-280 it kept its gradient start's test accuracy (median +0.0) where sat_margin lost
    # 1.2 points; on all of Adult its local search kept moving with training accuracy (23 improving
    # steps in 600 s, validation 84.1 -> 84.7 %) where sat_margin's and correct_margin's found 2-4.
    formulation: str = "max_correct"
    symmetry_breaking: bool = False
    neuron_penalty: float | str | None = None
    accept: str = "validation"
    dead_inputs: str = "start"

    def training_model(self) -> Formulation:
        return training_model(self.formulation, symmetry_breaking=self.symmetry_breaking,
                              neuron_penalty=self.neuron_penalty)


@dataclass(frozen=True)
class RunContext:
    """What every batch of a run shares: the data and the settings. Sent to each worker once."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    n_classes: int
    hidden: tuple[int, ...]
    P: int
    seed: int = 0
    max_nonzero: int | None = None
    """The size budget of every batch's network (``--max-nonzero``)."""
    guarantees: Guarantees = field(default_factory=Guarantees)
    """The constraints every batch's network holds on the batch's examples (``--monotone``,
    ``--fair``, ``--min-recall``), over the training examples by index."""
    batch: BatchOptions = BatchOptions()
    solver: SolverOptions = SolverOptions()
    search: SearchOptions = SearchOptions()
    member_classes: tuple[tuple[int, ...], ...] = ()
    """The classes each ensemble member separates (its output o stands for class ``[m][o]``);
    empty: every member has every class as an output."""
    train_weights: np.ndarray | None = None
    """How much each training example counts in every batch's objective (None: one each)."""
    val_weights: np.ndarray | None = None
    """How much each validation example counts where validation judges a network (None: one each)."""

    def member_classes_of(self, member: int) -> tuple[int, ...]:
        return self.member_classes[member] if self.member_classes else tuple(range(self.n_classes))

    def member_validation(self, member: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The validation examples that judge ``member``: those of its classes, labelled by its
        outputs, with their weights (None: each counts once)."""
        classes = self.member_classes_of(member)
        if len(classes) == self.n_classes:
            return self.val_x, self.val_y, self.val_weights
        mine = np.isin(self.val_y, classes)
        weights = None if self.val_weights is None else self.val_weights[mine]
        return self.val_x[mine], member_labels(self.val_y[mine], classes), weights

    def validation_accuracy(self, member: int, network: IntegerNetwork) -> float:
        """``network``'s accuracy on ``member``'s validation examples, each counted by its weight:
        with weighted examples validation judges by the weighted count the MIPs minimise, so that a
        class-weighted network is not turned down for the unweighted one."""
        x, y, weights = self.member_validation(member)
        return network.accuracy(x, y, weights)


@dataclass(frozen=True)
class EpochStart:
    """What every batch of one epoch shares: the network it starts from and the box around it
    (None: the full [−P, P]). Small; sent once per epoch."""

    start: IntegerNetwork
    bounds: ParameterBounds | None = None


@dataclass(frozen=True)
class BatchTask:
    """One batch: its examples (indices into the run's training set), epoch, and ensemble member."""

    batch_id: int
    indices: np.ndarray
    epoch: int = 0
    member: int = 0


@dataclass
class BatchResult:
    """What one batch solve did. ``network`` is what the batch contributes to the merge: the solved
    network when accepted, else the start; None when the batch failed or its solve returned no
    network (a hard model that no network fits, or no incumbent in time), so the merge leaves it out."""

    batch_id: int
    size: int
    status: SolveStatus
    objective: float
    bound: float
    gap: float
    start_objective: float
    accepted: bool
    start_validation_accuracy: float
    validation_accuracy: float
    fixed_inputs: int
    monolithic_objective: float
    improving_steps: int
    improve_seconds: float
    build_seconds: float
    setup_seconds: float
    solve_seconds: float
    started: float
    finished: float
    worker: str
    epoch: int = 0
    member: int = 0
    node: str = ""
    """The Ray node that solved the batch ("" when solved in process)."""
    start_feasible: bool = True
    message: str = ""
    worker_peak_rss_mb: float = math.nan
    """Peak resident memory of the solving process so far (an actor's peak, on Ray), in MB."""
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
        # JSON has no NaN or infinity: an absent value (NaN) and a hard model's unfitted network
        # (+inf) are both null.
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def batch_problem(
    context: RunContext, epoch: EpochStart, indices: np.ndarray, member: int = 0
) -> tuple[TrainingProblem, int]:
    """The batch's training problem (labelled by the member's outputs), with first-layer weights of
    inputs that are zero in every example of the batch pinned (the batch says nothing about them;
    the solver would set them at whim). Returns the problem and the number of pinned inputs."""
    x = context.train_x[indices]
    classes = context.member_classes_of(member)
    sizes = [x.shape[1], *context.hidden, len(classes)]
    bounds = context.guarantees.bounds(epoch.bounds or ParameterBounds.box(sizes, context.P))
    dead = ~np.any(x != 0, axis=0)
    bounds = bounds.fix_inputs(dead, DEAD_INPUT_VALUES[context.batch.dead_inputs](epoch.start))
    y = member_labels(context.train_y[indices], classes)
    weights = None if context.train_weights is None else context.train_weights[indices]
    problem = TrainingProblem(x, y, len(classes), context.hidden, context.P, bounds, weights=weights,
                              max_nonzero=context.max_nonzero, rows=context.guarantees.rows(y, indices))
    return problem, int(dead.sum())


def solve_batch(
    context: RunContext, epoch: EpochStart, task: BatchTask, solve_many: NeighbourhoodSolver | None = None,
    width: int = 1,
) -> BatchResult:
    """Solve one batch from the epoch's start, moved inside the batch's bounds (pinning dead inputs
    to 0 moves it; the batch's objective does not notice, as those inputs are 0 here). Local search
    solves ``width`` neighbourhoods at a time through ``solve_many`` when given (on an executor's
    workers: :func:`neighbourhood_step`)."""
    started = time.time()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        problem, fixed = batch_problem(context, epoch, task.indices, task.member)
        start = problem.bounds.clip(epoch.start)
        start_val = context.validation_accuracy(task.member, start)
        formulation = context.batch.training_model()
        if context.solver.time_limit > 0:
            outcome = solve_mip(formulation, problem, start, context.solver)
        else:
            outcome = skipped_solve(formulation.objective_value(start, problem), start)
        polished = None
        # A search needs a start inside its model: with counting rows, the batch's start or solve may
        # break them on the batch's own examples (it holds them on the whole training split).
        if context.search.improve > 0 and formulation.admits(outcome.network, problem):
            polished = local_search(context, formulation, problem, outcome.network, task, solve_many, width)
    except Exception as error:  # reported in the batch record, left out of the merge
        return failed_batch(task, started, worker, f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
    network = outcome.network if polished is None else polished.network
    objective = outcome.objective if polished is None else polished.objective
    solved_val = context.validation_accuracy(task.member, network)
    accepted = ACCEPT_RULES[context.batch.accept](Verdict(start_val, solved_val, outcome.start_objective, objective))
    return BatchResult(
        batch_id=task.batch_id, size=len(task.indices), status=outcome.status, objective=objective,
        bound=outcome.bound, gap=relative_gap(objective, outcome.bound), start_objective=outcome.start_objective,
        accepted=accepted, start_validation_accuracy=start_val, validation_accuracy=solved_val,
        fixed_inputs=fixed, monolithic_objective=outcome.objective,
        improving_steps=0 if polished is None else polished.improving_steps,
        improve_seconds=0.0 if polished is None else polished.seconds,
        build_seconds=outcome.build_seconds, setup_seconds=outcome.setup_seconds,
        solve_seconds=outcome.solve_seconds, started=started, finished=time.time(), worker=worker,
        epoch=task.epoch, member=task.member, start_feasible=outcome.start_feasible, message=outcome.message,
        worker_peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KB
        network=None if outcome.status in RETURNED_NO_NETWORK else network if accepted else start,
    )


def local_search(
    context: RunContext, formulation: Formulation, problem: TrainingProblem, network: IntegerNetwork, task: BatchTask,
    solve_many: NeighbourhoodSolver | None = None, width: int = 1,
) -> ImproveOutcome:
    """``--improve`` on the batch from ``network``: one local search, or with ``--improve-starts K`` a
    portfolio from it and from K − 1 straight-through networks of the next seeds, trained on the
    batch within the improve time. Steps are judged on the validation examples of the batch's member."""
    began = time.perf_counter()
    search = context.search
    settings = {"seed": task.batch_id, "improve_step_limit": search.improve_step_limit,
                # the rule counts each example once (docs/method.md)
                "validation": context.member_validation(task.member)[:2] if search.improve_validation else None}
    settings |= {"solve_many": solve_many, "width": width}
    if search.improve_starts == 1:
        return improve(formulation, problem, network, search.improve, context.solver, **settings)
    others = [
        within_budget(problem.bounds.clip(train_ste(problem.x, problem.y, problem.n_classes, context.hidden, context.P,
                                                    seed=context.seed + i)), problem.max_nonzero)
        for i in range(1, search.improve_starts)
    ]
    others = [other for other in others if formulation.admits(other, problem)]
    left = max(search.improve - (time.perf_counter() - began), 0.0)
    return portfolio(formulation, problem, [network, *others], left, context.solver, **settings)


def neighbourhood_step(
    context: RunContext, epoch: EpochStart, task: BatchTask, network: IntegerNetwork, objective: float,
    area: Neighbourhood, options: SolverOptions,
) -> StepResult:
    """One local-search step of the batch, where a worker holds ``context``: its problem rebuilt
    from the context (a slice of the data, milliseconds beside a step's seconds), then
    :func:`~pipeline.solving.improve.solve_neighbourhood`."""
    problem, _ = batch_problem(context, epoch, task.indices, task.member)
    return solve_neighbourhood(context.batch.training_model(), problem, network, objective, area, options)


def failed_batch(task: BatchTask, started: float, worker: str, error: str) -> BatchResult:
    """The record of a batch that produced no network (solver error, lost worker)."""
    nan = math.nan
    return BatchResult(
        batch_id=task.batch_id, size=len(task.indices), status=SolveStatus.ERROR, objective=nan, bound=nan, gap=nan,
        start_objective=nan, accepted=False, start_validation_accuracy=nan, validation_accuracy=nan,
        fixed_inputs=0, monolithic_objective=nan, improving_steps=0, improve_seconds=0.0,
        build_seconds=nan, setup_seconds=nan, solve_seconds=nan, started=started, finished=time.time(), worker=worker,
        epoch=task.epoch, member=task.member, error=error,
    )


def skipped_solve(start_objective: float, start: IntegerNetwork) -> SolveOutcome:
    """The outcome of a monolithic solve that was not run (``time_limit`` 0, local search only):
    the start stands."""
    nan = math.nan
    return SolveOutcome(
        network=start, status=SolveStatus.LOCAL_SEARCH, objective=start_objective, bound=nan, gap=nan,
        start_objective=start_objective, build_seconds=0.0, setup_seconds=0.0, solve_seconds=0.0,
    )
