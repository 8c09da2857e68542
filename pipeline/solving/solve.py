"""One MIP solve through Pyomo (HiGHS by default), from a feasible start, checked against numpy.

The solver is never trusted: the integer weights are read back, the objective is recomputed from
them with the formulation's numpy scorer, and a disagreement raises :class:`ObjectiveMismatch`.
A multi-stage model (:class:`formulations.StagedFormulation`) is a sequence of such solves sharing
the time limit, each checked the same way, reported as one :class:`SolveOutcome`.
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pyomo.common.log import LoggingIntercept

from formulations import IntegerNetwork, TrainingProblem
from formulations.encoding import BuildPastDeadline, built_by, extract_network
from formulations.matrix import MatrixModel
from formulations.models import Formulation, StagedFormulation
from formulations.network import nonzero_parameters

OBJECTIVE_TOLERANCE = 1e-6

NO_NETWORK_FITS = (
    "no network with this architecture and P fits every training example; use a soft-loss formulation"
)
NO_FEASIBLE_NETWORK_IN_TIME = "time limit reached without a feasible network"
NO_NETWORK_SATISFIES = "no network with this architecture, P and size budget satisfies the counting constraints"
NO_NETWORK_RETURNED = "the solver returned no network; the start stands"
NO_TIME_LEFT = "no time was left for the solver, so it did not run; the start stands"
START_DOES_NOT_FIT = ("the start network does not fit every training example (or breaks a counting constraint), so "
                      "the solve started without one")

START_MEETS_TARGET = "the start already meets the target error, so no MIP was built"
BUILT_PAST_LIMIT = (
    "building the model and handing it to the solver took the whole time limit, so it was not solved and the start "
    "stands; smaller batches (--batch-size) build in proportion"
)


class SolveStatus(StrEnum):
    """How a solve (or a batch) ended. A StrEnum, so records and checkpoints hold the plain word."""

    OPTIMAL = "optimal"
    TARGET_REACHED = "target_reached"
    """Stopped at the paper's cutoff (objective <= target_error * N), or the start already met it."""
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    INTERRUPTED = "interrupted"
    INFEASIBLE = "infeasible"
    """Proven: no network fits every example (a hard model)."""
    NO_SOLUTION = "no_solution"
    """The solver stopped without a network of its own; the start stands."""
    LOCAL_SEARCH = "local_search"
    """No monolithic solve was run (``time_limit`` 0): local search only."""
    UNCHANGED = "unchanged"
    """A local-search step left the network as it was without a solve: nothing it frees can lower
    the objective (a neuron whose sign no example's loss depends on, a drop of a neuron already off)."""
    ERROR = "error"


_HIGHS_STATUS = {
    "optimal": SolveStatus.OPTIMAL,
    "objectiveLimit": SolveStatus.TARGET_REACHED,
    "maxTimeLimit": SolveStatus.TIME_LIMIT,
    "maxIterations": SolveStatus.ITERATION_LIMIT,
    "infeasible": SolveStatus.INFEASIBLE,
    "infeasibleOrUnbounded": SolveStatus.INFEASIBLE,
    "interrupted": SolveStatus.INTERRUPTED,
}

# Pyomo's legacy termination conditions, as every solver behind pyo.SolverFactory reports them.
_PYOMO_STATUS = {
    "optimal": SolveStatus.OPTIMAL,
    "maxTimeLimit": SolveStatus.TIME_LIMIT,
    "maxIterations": SolveStatus.ITERATION_LIMIT,
    "maxEvaluations": SolveStatus.ITERATION_LIMIT,
    "minFunctionValue": SolveStatus.TARGET_REACHED,
    "infeasible": SolveStatus.INFEASIBLE,
    "infeasibleOrUnbounded": SolveStatus.INFEASIBLE,
    "userInterrupt": SolveStatus.INTERRUPTED,
}

# Where a solver's feasibility tolerance is called something Pyomo cannot translate.
_TOLERANCE_OPTIONS = {"scip_direct": "numerics/feastol", "scip_persistent": "numerics/feastol"}


class ObjectiveMismatch(RuntimeError):
    """The solver's objective is not the objective of the weights it returned: a modelling or
    tolerance bug, never something to average into a network."""


@dataclass(frozen=True)
class SolverOptions:
    """How a single MIP is solved. ``target_error`` is the paper's early cutoff (stop once the
    objective is at most target_error·N); None solves to the gap. ``solver`` is ``highs`` (through
    Pyomo's appsi interface, with warm start and the target) or any MIP solver name
    ``pyo.SolverFactory`` knows (``scip_direct`` for SCIP from the pyscipopt wheel, ``gurobi_direct``,
    ``cbc``, ...), warm-started where its Pyomo interface supports it. ``time_limit`` counts from
    the start of building the model unless ``limit_counts_building`` is False (then it is the
    solver's alone).

    The solving layer's options: a run's configuration (:class:`pipeline.config.TrainConfig`)
    takes the defaults of the fields it exposes from here, under the same names."""

    time_limit: float = 60.0
    threads: int = 1
    mip_gap: float = 1e-4
    target_error: float | None = 0.1
    # Big-M rows reach |M| ~ 10^3 beside a 10^-4 grid: HiGHS's default 1e-6 integrality slack
    # times M would be larger than the grid, so a "satisfied" sign row could be wrong.
    feasibility_tolerance: float = 1e-9
    solver: str = "highs"
    limit_counts_building: bool = True


@dataclass(frozen=True)
class SolveOutcome:
    """What a solve returned. ``status``: optimal, target_reached, time_limit, iteration_limit,
    interrupted, infeasible (proven: for a hard model, no network fits), or no_solution (the solver
    stopped without a feasible network; ``network`` is then the start). ``objective`` is recomputed
    from ``network``; +inf when a hard model's network does not fit. ``start_feasible`` is False
    when the start was no feasible point of the model and the solve began without one;
    ``message`` explains any status a caller must act on. A multi-stage model lists its stages,
    the top-level fields summing their times and giving the primary objective."""

    network: IntegerNetwork
    status: SolveStatus
    objective: float
    bound: float
    gap: float
    start_objective: float
    build_seconds: float
    setup_seconds: float
    solve_seconds: float
    start_feasible: bool = True
    message: str = ""
    stages: tuple[StageOutcome, ...] = ()


@dataclass(frozen=True)
class StageOutcome:
    """One stage of a multi-stage solve: its name, the time it was given, and its own outcome
    (on the stage's own problem and objective)."""

    name: str
    time_limit: float
    outcome: SolveOutcome


@dataclass(frozen=True)
class _SolverResult:
    status: str
    objective: float | None
    bound: float


_NOT_SOLVED = _SolverResult(SolveStatus.TIME_LIMIT, None, math.nan)
"""Building and set-up took the whole time limit: no solve was run."""


@dataclass(frozen=True)
class _Limit:
    """A solve's time limit, counted from ``counted_from`` (a time.perf_counter() value) when
    given, else from the moment the solver starts."""

    seconds: float
    counted_from: float | None

    def left(self) -> float | None:
        """Seconds the solver may take, asked just before it starts; None when building and
        set-up used the whole limit, or the limit was none to begin with (a search whose clock ran
        out between its check and the step: HiGHS's configuration raises on a negative limit)."""
        left = self.seconds
        if self.counted_from is not None:
            left -= time.perf_counter() - self.counted_from
        return left if left > 0 else None


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
    if not problem.admits(start):
        raise ValueError("the start network lies outside the problem's parameter bounds or size budget")
    if isinstance(formulation, StagedFormulation):
        return _solve_stages(formulation, problem, start, options)
    return _solve_one(formulation, problem, start, options, options.time_limit, options.target_error)


def _solve_stages(
    formulation: StagedFormulation, problem: TrainingProblem, start: IntegerNetwork, options: SolverOptions
) -> SolveOutcome:
    """Each stage from the network the one before returned. Stage i of n gets the time left over
    n − i, so what a stage does not use carries forward; only the first stage (the primary
    objective) stops at the paper's target."""
    networks = [start]
    stages: list[StageOutcome] = []
    messages: list[str] = []
    remaining = options.time_limit
    n_stages = len(formulation.stage_names)
    for index, name in enumerate(formulation.stage_names):
        stage = formulation.stage(index, problem, networks)
        if stage is None:
            left = ", ".join(formulation.stage_names[index:])
            messages.append(f"no example kept from the stages before, so {left} did not run")
            break
        stage_formulation, stage_problem = stage
        share = max(remaining, 0.0) / (n_stages - index)
        target_error = options.target_error if index == 0 else None
        outcome = _solve_one(stage_formulation, stage_problem, networks[-1], options, share, target_error)
        stages.append(StageOutcome(name, share, outcome))
        if outcome.message:
            messages.append(f"{name}: {outcome.message}")
        remaining -= outcome.build_seconds + outcome.setup_seconds + outcome.solve_seconds
        networks.append(outcome.network)
        if outcome.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION):
            break
    first = stages[0].outcome
    objective = formulation.objective_value(networks[-1], problem)
    return SolveOutcome(
        network=networks[-1],
        status=next((s.outcome.status for s in stages if s.outcome.status != SolveStatus.OPTIMAL), SolveStatus.OPTIMAL),
        objective=objective,
        bound=first.bound,
        gap=relative_gap(objective, first.bound),
        start_objective=first.start_objective,
        build_seconds=sum(s.outcome.build_seconds for s in stages),
        setup_seconds=sum(s.outcome.setup_seconds for s in stages),
        solve_seconds=sum(s.outcome.solve_seconds for s in stages),
        start_feasible=first.start_feasible,
        message="; ".join(messages),
        stages=tuple(stages),
    )


def _solve_one(
    formulation: Formulation,
    problem: TrainingProblem,
    start: IntegerNetwork,
    options: SolverOptions,
    time_limit: float,
    target_error: float | None,
) -> SolveOutcome:
    start = formulation.start_network(start, problem)
    start_objective = formulation.objective_value(start, problem)
    # A hard model's start that does not fit is no feasible point: HiGHS would reject it anyway;
    # nor is a start that breaks a counting row (a fairness gap, a recall floor).
    start_feasible = math.isfinite(start_objective) and formulation.admits(start, problem)
    target = None if target_error is None else formulation.target(problem, target_error)
    if target is not None and start_objective <= target:
        # Building the model alone costs seconds to minutes on a large batch (measured: 21 s of
        # building and 37 s of HiGHS set-up for 400 Adult examples) for a solve that stops at once.
        return SolveOutcome(
            network=start, status=SolveStatus.TARGET_REACHED, objective=start_objective, bound=math.nan,
            gap=math.nan, start_objective=start_objective, build_seconds=0.0, setup_seconds=0.0,
            solve_seconds=0.0, message=START_MEETS_TARGET,
        )

    # The limit covers the whole solve, building included: measured, a 5 s limit on one batch of
    # 720 examples and 200 classes took 130 s, 33 s of Pyomo building and 82 s of HiGHS set-up.
    began = time.perf_counter()
    limit = _Limit(time_limit, began if options.limit_counts_building else None)
    matrix = formulation.matrix(problem) if options.solver == "highs" else None
    if matrix is not None:
        columns = formulation.matrix_start(start, problem) if start_feasible else None
        built = time.perf_counter()
        result, setup_seconds, solve_seconds, solution = _run_highs_matrix(matrix, columns, options, limit, target)
    else:
        model = _built_in_time(formulation, problem, limit)
        if model is not None and start_feasible:
            formulation.start_at(model, start, problem)
        built = time.perf_counter()
        if model is None:
            result, setup_seconds, solve_seconds = _NOT_SOLVED, 0.0, 0.0
        else:
            run = _run_highs if options.solver == "highs" else _run_pyomo_solver
            result, setup_seconds, solve_seconds = run(model, options, limit, target, start_feasible)

    messages = [] if start_feasible else [START_DOES_NOT_FIT]
    status = result.status
    if result.objective is None:
        network, objective = start, start_objective
        if result is _NOT_SOLVED:
            messages.append(BUILT_PAST_LIMIT if options.limit_counts_building else NO_TIME_LEFT)
        elif status == SolveStatus.INFEASIBLE:
            if not formulation.hard and not problem.rows:
                raise RuntimeError(f"{formulation.name}: the solver calls the model infeasible, yet every network fits it")
            messages.append(NO_NETWORK_FITS if formulation.hard else NO_NETWORK_SATISFIES)
        else:
            status = SolveStatus.NO_SOLUTION
            messages.append(NO_FEASIBLE_NETWORK_IN_TIME if formulation.hard else NO_NETWORK_RETURNED)
    else:
        network = extract_network(model, problem.P) if matrix is None else formulation.matrix_network(solution, problem)
        objective = _verified_objective(formulation, problem, network, result)
    return SolveOutcome(
        network=network,
        status=status,
        objective=objective,
        bound=result.bound,
        gap=relative_gap(objective, result.bound),
        start_objective=start_objective,
        build_seconds=built - began,
        setup_seconds=setup_seconds,
        solve_seconds=solve_seconds,
        start_feasible=start_feasible,
        message="; ".join(messages),
    )


def _built_in_time(formulation: Formulation, problem: TrainingProblem, limit: _Limit) -> Any | None:
    """The formulation's Pyomo model, or None when building it outlasted the limit."""
    if limit.counted_from is None:
        return formulation.create(problem)
    # Pyomo logs a rule's exception at ERROR before passing it on; this one is expected.
    with built_by(limit.counted_from + limit.seconds), LoggingIntercept(io.StringIO(), "pyomo.core", logging.ERROR):
        try:
            return formulation.create(problem)
        except BuildPastDeadline:
            return None


def _verified_objective(
    formulation: Formulation, problem: TrainingProblem, network: IntegerNetwork, result: _SolverResult
) -> float:
    """The objective of the returned weights, recomputed with numpy, after checking it against the
    solver: equal to its objective for an exact model; for a model whose auxiliaries are bounded on
    one side, between the solver's bound and its objective (both equal at a proven optimum). The
    weights' non-zero count is recounted against the problem's budget too."""
    if problem.max_nonzero is not None and nonzero_parameters(network) > problem.max_nonzero:
        raise ObjectiveMismatch(f"{formulation.name}: the solver's weights have {nonzero_parameters(network)} "
                                f"non-zero parameters, the budget is {problem.max_nonzero}")
    if not formulation.admits(network, problem):
        raise ObjectiveMismatch(f"{formulation.name}: the solver's weights break a counting constraint "
                                "(recounted from their predictions)")
    recomputed = formulation.objective_value(network, problem)
    reported = float(result.objective)
    tolerance = OBJECTIVE_TOLERANCE * max(1.0, abs(reported))
    if formulation.exact_incumbents:
        consistent = abs(recomputed - reported) <= tolerance
    else:
        consistent = recomputed <= reported + tolerance and not recomputed < result.bound - tolerance
    if not consistent:
        raise ObjectiveMismatch(
            f"{formulation.name}: the solver reports objective {reported} (bound {result.bound}), the "
            f"returned weights score {recomputed}"
        )
    return recomputed


def _run_highs(
    model: Any, options: SolverOptions, limit: _Limit, target: float | None, warm: bool
) -> tuple[_SolverResult, float, float]:
    """HiGHS through appsi: warm start, the objective target, tight tolerances. Returns the result
    and the set-up and solve seconds."""
    from pyomo.contrib.appsi.solvers import Highs

    began = time.perf_counter()
    if limit.left() is None:  # set-up costs more than building (measured 82 s after 33 s): skip it too
        return _NOT_SOLVED, 0.0, 0.0
    _use_threads(options.threads)
    solver = Highs()
    solver.config.mip_gap = options.mip_gap
    solver.config.warmstart = warm
    solver.config.load_solution = False
    highs_options = {
        "threads": options.threads,
        "mip_feasibility_tolerance": options.feasibility_tolerance,
        "primal_feasibility_tolerance": options.feasibility_tolerance,
    }
    if target is not None:
        # HiGHS stops only once the incumbent is strictly below objective_target (measured: a
        # start scoring exactly the target did not stop it); the paper stops at objective ≤ target.
        highs_options["objective_target"] = target + OBJECTIVE_TOLERANCE * max(1.0, abs(target))
    solver.highs_options = highs_options
    solver.set_instance(model)
    set_up = time.perf_counter()
    if (left := limit.left()) is None:
        return _NOT_SOLVED, set_up - began, 0.0
    solver.config.time_limit = left
    results = solver.solve(model)
    solved = time.perf_counter()

    objective = results.best_feasible_objective
    if objective is not None:
        results.solution_loader.load_vars()
    status = _HIGHS_STATUS.get(results.termination_condition.name, SolveStatus.ERROR)
    result = _SolverResult(status, objective, _finite_or_nan(results.best_objective_bound))
    return result, set_up - began, solved - set_up


_matrix_highs = None


def _highs_instance():
    """This process's HiGHS for array models, made once: every new ``highspy.Highs`` costs a
    little and the first prints a banner on the C-level stdout, which ``--json`` owns."""
    global _matrix_highs
    if _matrix_highs is None:
        import highspy
        from pyomo.common.tee import capture_output

        with capture_output(capture_fd=True):
            _matrix_highs = highspy.Highs()
        _matrix_highs.setOptionValue("output_flag", False)
        # HiGHS then checks for Python signals while it solves, as Pyomo's appsi has it do; without,
        # a handler ran only when the solve ended (measured: due at 0.5 s into a 6 s sub-MIP, it
        # ran at 6 s), so Ctrl-C (flows/cli.py) waited out a sub-MIP's whole time limit.
        _matrix_highs.HandleKeyboardInterrupt = True
    return _matrix_highs


_HIGHS_MODEL_STATUS = {
    "kOptimal": SolveStatus.OPTIMAL,
    "kObjectiveTarget": SolveStatus.TARGET_REACHED,
    "kTimeLimit": SolveStatus.TIME_LIMIT,
    "kIterationLimit": SolveStatus.ITERATION_LIMIT,
    "kInfeasible": SolveStatus.INFEASIBLE,
    "kUnboundedOrInfeasible": SolveStatus.INFEASIBLE,
    "kInterrupt": SolveStatus.INTERRUPTED,
    "kHighsInterrupt": SolveStatus.INTERRUPTED,
}


def _run_highs_matrix(
    matrix: MatrixModel, start: Any, options: SolverOptions, limit: _Limit, target: float | None
) -> tuple[_SolverResult, float, float, Any]:
    """An array model (:mod:`formulations.matrix`) straight into highspy, with the options and
    start :func:`_run_highs` gives a Pyomo model. Returns the result, the set-up and solve
    seconds, and the column values (None without a feasible point)."""
    import highspy

    began = time.perf_counter()
    _use_threads(options.threads)
    highs = _highs_instance()
    highs.clearModel()
    highs.clearSolver()
    for name, value in (("mip_rel_gap", float(options.mip_gap)),
                        ("threads", int(options.threads)),
                        ("mip_feasibility_tolerance", options.feasibility_tolerance),
                        ("primal_feasibility_tolerance", options.feasibility_tolerance),
                        ("objective_target", -math.inf if target is None
                         else target + OBJECTIVE_TOLERANCE * max(1.0, abs(target)))):
        highs.setOptionValue(name, value)
    n = matrix.n_columns
    highs.addVars(n, matrix.lower, matrix.upper)
    columns = np.arange(n, dtype=np.int32)
    highs.changeColsCost(n, columns, matrix.cost)
    highs.changeColsIntegrality(n, columns, np.where(matrix.integer, highspy.HighsVarType.kInteger,
                                                     highspy.HighsVarType.kContinuous).astype(np.uint8))
    highs.changeObjectiveOffset(matrix.offset)
    highs.addRows(matrix.n_rows, matrix.row_lower, matrix.row_upper, len(matrix.value),
                  matrix.starts.astype(np.int32), matrix.index.astype(np.int32), matrix.value.astype(np.float64))
    if start is not None:
        highs.setSolution(n, columns, np.asarray(start, dtype=np.float64))
    set_up = time.perf_counter()
    if (left := limit.left()) is None:
        return _NOT_SOLVED, set_up - began, 0.0, None
    highs.setOptionValue("time_limit", left)
    highs.run()
    solved = time.perf_counter()

    info = highs.getInfo()
    feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
    status = _HIGHS_MODEL_STATUS.get(highs.getModelStatus().name, SolveStatus.ERROR)
    solution = np.array(highs.getSolution().col_value) if feasible else None
    result = _SolverResult(status, info.objective_function_value if feasible else None,
                           _finite_or_nan(info.mip_dual_bound))
    return result, set_up - began, solved - set_up, solution


def _run_pyomo_solver(
    model: Any, options: SolverOptions, limit: _Limit, target: float | None, warm: bool
) -> tuple[_SolverResult, float, float]:
    """Any MIP solver Pyomo's SolverFactory knows. Solvers behind Pyomo's newer interface
    (``scip_direct``, ...) take the gap, threads and a start of the integer variables through
    their config; older ones a start where they declare ``warm_start_capable``. The objective
    target is HiGHS-only: elsewhere the solve runs to the gap or the time limit."""
    import pyomo.environ as pyo

    began = time.perf_counter()
    solver = pyo.SolverFactory(options.solver)
    if not solver.available(exception_flag=False):
        raise ValueError(f"MIP solver {options.solver!r} is not available to Pyomo here")
    config = getattr(solver, "config", None)
    if (left := limit.left()) is None:
        return _NOT_SOLVED, time.perf_counter() - began, 0.0
    # Its own set-up happens inside solve(), so it counts against the time it is given.
    kwargs: dict[str, Any] = {"load_solutions": False, "timelimit": left}
    solver_options = {}
    if options.solver in _TOLERANCE_OPTIONS:
        solver_options[_TOLERANCE_OPTIONS[options.solver]] = options.feasibility_tolerance
    if config is not None and "warmstart_discrete_vars" in config:
        config.rel_gap = options.mip_gap
        config.threads = options.threads
        config.warmstart_discrete_vars = warm
    elif warm and solver.warm_start_capable():
        kwargs["warmstart"] = True
    if solver_options:
        kwargs["options"] = solver_options
    set_up = time.perf_counter()
    results = solver.solve(model, **kwargs)
    solved = time.perf_counter()

    objective = None
    if len(results.solution) > 0:
        # Pyomo warns when it loads the incumbent of a solve that stopped at its time limit
        # ("aborted"); that is an ordinary outcome here, checked like any other.
        with LoggingIntercept(io.StringIO(), "pyomo.core", logging.WARNING):
            model.solutions.load_from(results)
        objective = pyo.value(next(model.component_data_objects(pyo.Objective, active=True)))
    status = _PYOMO_STATUS.get(str(results.solver.termination_condition), SolveStatus.ERROR)
    result = _SolverResult(status, objective, _finite_or_nan(results.problem.lower_bound))
    return result, set_up - began, solved - set_up


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / |objective|, HiGHS's convention; 0 when both are 0."""
    if math.isnan(bound) or not math.isfinite(objective):
        return math.nan
    if objective == bound:
        return 0.0
    return abs(objective - bound) / max(abs(objective), 1e-10)


def _finite_or_nan(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.nan
