"""One MIP solve through Pyomo and HiGHS, from a feasible start, checked against numpy.

The solver is never trusted: the integer weights are read back, the objective is recomputed from
them with the formulation's numpy scorer, and a disagreement raises :class:`ObjectiveMismatch`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from formulations import Formulation, IntegerNetwork, TrainingProblem
from formulations.encoding import extract_network

OBJECTIVE_TOLERANCE = 1e-6

_STATUS = {
    "optimal": "optimal",
    "objectiveLimit": "target_reached",
    "maxTimeLimit": "time_limit",
    "maxIterations": "iteration_limit",
    "infeasible": "infeasible",
    "infeasibleOrUnbounded": "infeasible",
    "interrupted": "interrupted",
}


class ObjectiveMismatch(RuntimeError):
    """The solver's objective is not the objective of the weights it returned: a modelling or
    tolerance bug, never something to average into a network."""


@dataclass(frozen=True)
class SolverOptions:
    """How a single MIP is solved. ``target_error`` is the paper's early cutoff (stop once the
    objective is at most target_error·N); None solves to the gap."""

    time_limit: float = 60.0
    threads: int = 1
    mip_gap: float = 1e-4
    target_error: float | None = 0.1
    # Big-M rows reach |M| ~ 10^3 beside a 10^-4 grid: HiGHS's default 1e-6 integrality slack
    # times M would be larger than the grid, so a "satisfied" sign row could be wrong.
    feasibility_tolerance: float = 1e-9


@dataclass(frozen=True)
class SolveOutcome:
    network: IntegerNetwork
    status: str
    objective: float
    bound: float
    gap: float
    start_objective: float
    build_seconds: float
    setup_seconds: float
    solve_seconds: float


_scheduler_threads: int | None = None


def _use_threads(threads: int) -> None:
    """HiGHS keeps one thread scheduler per process; a new thread count needs it rebuilt."""
    global _scheduler_threads
    if _scheduler_threads is not None and _scheduler_threads != threads:
        import highspy

        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads = threads


def solve_mip(
    formulation: Formulation, problem: TrainingProblem, start: IntegerNetwork, options: SolverOptions
) -> SolveOutcome:
    """Solve ``formulation`` on ``problem`` from ``start`` (which must lie inside the bounds)."""
    from pyomo.contrib.appsi.solvers import Highs

    if not problem.bounds.contains(start):
        raise ValueError("the start network lies outside the problem's parameter bounds")
    start_objective = formulation.objective_value(start, problem)

    began = time.perf_counter()
    model = formulation.build(problem)
    formulation.set_start(model, start, problem)
    built = time.perf_counter()

    _use_threads(options.threads)
    solver = Highs()
    solver.config.time_limit = options.time_limit
    solver.config.mip_gap = options.mip_gap
    solver.config.warmstart = True
    solver.config.load_solution = False
    highs_options = {
        "threads": options.threads,
        "mip_feasibility_tolerance": options.feasibility_tolerance,
        "primal_feasibility_tolerance": options.feasibility_tolerance,
    }
    target = None if options.target_error is None else formulation.target(problem, options.target_error)
    if target is not None:
        highs_options["objective_target"] = target
    solver.highs_options = highs_options
    solver.set_instance(model)
    set_up = time.perf_counter()

    results = solver.solve(model)
    solved = time.perf_counter()

    status = _STATUS.get(results.termination_condition.name, "error")
    bound = _finite_or_nan(results.best_objective_bound)
    if results.best_feasible_objective is None:
        # HiGHS rejected the start and found nothing else: the start stands.
        network, objective = start, start_objective
        status = "no_solution" if status not in ("infeasible",) else status
    else:
        results.solution_loader.load_vars()
        network = extract_network(model, problem.P)
        objective = float(results.best_feasible_objective)
        recomputed = formulation.objective_value(network, problem)
        if abs(recomputed - objective) > OBJECTIVE_TOLERANCE * max(1.0, abs(objective)):
            raise ObjectiveMismatch(
                f"{formulation.name}: HiGHS reports objective {objective}, the returned weights score "
                f"{recomputed}"
            )
    return SolveOutcome(
        network=network,
        status=status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        start_objective=start_objective,
        build_seconds=built - began,
        setup_seconds=set_up - built,
        solve_seconds=solved - set_up,
    )


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / |objective|, HiGHS's convention; 0 when both are 0."""
    if math.isnan(bound):
        return math.nan
    if objective == bound:
        return 0.0
    return abs(objective - bound) / max(abs(objective), 1e-10)


def _finite_or_nan(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.nan
