"""MIP local search: improve a network by solving a sequence of small MIPs exactly.

HiGHS stalls on the monolithic training MIP beyond ~50 examples (the root LP does not finish), but
the same model with all parameters fixed except one hidden neuron's is tiny: that neuron's N signs
become binaries and the outputs are linear in them, with no weight × activation products at all.
Each step frees one neighbourhood, keeps everything else at the current network, and solves the
resulting MIP from the current network (always feasible for it), so the objective can only go
down. A step is taken only if its objective, recomputed from the weights, is strictly lower.

Neighbourhoods, visited per round in the order of :func:`visiting_order`:
* ``neuron l:j``  the incoming weights and bias of hidden neuron j of layer l, solved as
  :mod:`formulations.neuron_choice` (only the examples whose loss the neuron's sign changes) where
  the formulation's objective is a sum of example losses, as the training model otherwise;
* ``neuron+out l:j``  the same plus the neuron's outgoing weights (the next layer's column j): for
  each value v of that column the step is the single-neuron step of the network with column v, so
  where the formulation's objective is a sum of example losses it is solved as those single-neuron
  steps (:func:`solve_neuron_out`; v within a radius of its value when its box has more than
  :data:`MAX_OUTGOING_VALUES` values), as the training model otherwise;
* ``output``  the whole output layer, with every hidden sign fixed (a linear integer classifier),
  solved as a one-layer problem over the last hidden layer's signs, examples with the same signs
  and label merged into one weighted row (:func:`output_problem`) where the formulation weights
  its examples, as the training model otherwise;
* ``drop l:j``  only with a neuron penalty: hidden neuron j of layer l switched off (its incoming,
  bias and outgoing weights 0) and the layer that reads it retrained (every weight of layer l + 1
  but column j, and its biases). No other single step can remove a neuron whose sign matters:
  zeroing it changes what the next layer computes, and only that layer can make up for it.
Rounds search the cheap tier (single neurons, the output layer) until it finds nothing, then the
expensive one (drops, then neurons with their outgoing weights), returning to the cheap tier after
any gain. When a round of the expensive tier finds nothing too, the network is a local optimum of
every neighbourhood, proven if every sub-MIP since the last gain ended within its time limit: the
search then stops early. Otherwise the limit doubles and the rounds begin again (an unproven
optimum is only where the solver stopped looking: on all of Adult every single-neuron sub-MIP
from the start ran into a 2 s limit, and the search had stopped there with most of its time left).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.constraints import merged_rows
from formulations.models import Formulation
from formulations.network import nonzero_parameters, switch_off, within_budget
from formulations.neuron_choice import NeuronChoice, neuron_inputs, neuron_problem, sign_costs, with_neuron
from formulations.neuron_penalty import NeuronPenalty
from formulations.neuron_switches import neurons_on
from pipeline.solving.solve import (
    OBJECTIVE_TOLERANCE,
    ObjectiveMismatch,
    SolveOutcome,
    SolverOptions,
    SolveStatus,
    solve_mip,
)


@dataclass(frozen=True)
class SearchOptions:
    """How MIP local search runs: the search layer's options. A run's configuration
    (:class:`pipeline.config.TrainConfig`) takes their defaults from here, under the same names."""

    improve: float = 0.0
    """Seconds of local search (0: none)."""
    improve_step_limit: float = 2.0
    """Seconds for each sub-MIP; a search that found nothing while one stopped at it doubles it."""
    improve_validation: bool = True
    """Take a step only if it does not lower the validation accuracy (docs/method.md §8)."""
    improve_starts: int = 1
    """Searches in a portfolio (:func:`portfolio`): from the solved network and from straight-through
    networks of the next seeds, then perturbed copies of the best."""


MIN_STEP_SECONDS = 0.5
"""Below this much time left, a sub-MIP would spend it all on set-up."""

PROGRESS_SECONDS = 10.0
"""Least time between two progress lines of a search (on the ``intnet.improve`` logger)."""

logger = logging.getLogger("intnet.improve")


class SearchEnd(StrEnum):
    """Why a local search ended."""

    TIME_LIMIT = "time limit"
    """Its time ran out, or what was left could not hold a longer sub-MIP than the last round's (or,
    told not to raise the limit, it found nothing while a sub-MIP stopped at it)."""
    LOCAL_OPTIMUM = "local optimum"
    """A round of every tier found nothing, and no sub-MIP since the last gain stopped at its limit."""
    PERFECT = "objective 0"
    """Every training example is fitted as the objective asks."""


CAPPED = (SolveStatus.TIME_LIMIT, SolveStatus.NO_SOLUTION)
"""Statuses of a sub-MIP that a longer limit might have let prove its optimum or find a step."""


class NeighbourhoodKind(StrEnum):
    """What a step frees; a step's name is its kind and, for a hidden neuron, ``layer:index``."""

    NEURON = "neuron"
    NEURON_OUT = "neuron+out"
    OUTPUT = "output"
    OUTPUT_COLUMN = "output column"
    DROP = "drop"


@dataclass(frozen=True)
class Neighbourhood:
    """What a step frees, by its kind and place; its masks (``free_weights``, ``free_biases``: True
    where a parameter is free) are made when a step asks for them. Held for the whole pool they
    cost the network's parameters in bytes per neighbourhood, two per hidden neuron: a crafted
    21-400000-2 file made improve allocate past 23 GB before its first step."""

    name: str
    kind: NeighbourhoodKind
    sizes: tuple[int, ...]
    """The network's architecture, inputs first."""
    place: tuple[int, int] | None = None
    """(layer, index) of the hidden neuron a neuron, neuron+out or drop step frees or switches off;
    (0, input) of an output column's input."""

    @property
    def free_weights(self) -> tuple[np.ndarray, ...]:
        return self.masks()[0]

    @property
    def free_biases(self) -> tuple[np.ndarray, ...]:
        return self.masks()[1]

    def masks(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Per layer, True where the step frees a weight, and where it frees a bias."""
        shapes = [(o, i) for i, o in zip(self.sizes[:-1], self.sizes[1:])]
        w = [np.zeros(shape, dtype=bool) for shape in shapes]
        b = [np.zeros(shape[0], dtype=bool) for shape in shapes]
        if self.kind == NeighbourhoodKind.OUTPUT:
            w[-1][:] = True
            b[-1][:] = True
            return tuple(w), tuple(b)
        layer, j = self.place
        if self.kind == NeighbourhoodKind.OUTPUT_COLUMN:  # (0, input): no hidden layer
            w[-1][:, j] = True
            b[-1][:] = True
            return tuple(w), tuple(b)
        if self.kind == NeighbourhoodKind.DROP:
            w[layer + 1][:] = True
            w[layer + 1][:, j] = False  # stays 0: the neuron is off
            b[layer + 1][:] = True
        else:
            w[layer][j, :] = True
            b[layer][j] = True
            if self.kind == NeighbourhoodKind.NEURON_OUT:
                w[layer + 1][:, j] = True
        return tuple(w), tuple(b)


@dataclass(frozen=True)
class StepResult:
    """What one local-search step found: the best network of its neighbourhood the solver reached
    within its limit, that network's training objective (recomputed from its weights), how the
    step's solve ended, and the seconds its model took to build and hand to the solver."""

    network: IntegerNetwork
    objective: float
    status: SolveStatus
    overhead_seconds: float = 0.0


NeighbourhoodSolver = Callable[[IntegerNetwork, float, list[Neighbourhood], SolverOptions], list[StepResult]]
"""``solve_many(network, objective, areas, options)``: :func:`solve_neighbourhood` of every area
around the same network, in the areas' order."""


@dataclass(frozen=True)
class ImproveStep:
    neighbourhood: str
    kind: NeighbourhoodKind
    objective_before: float
    objective_after: float
    status: str
    seconds: float
    validation_fell: bool = False
    """The step lowered the objective but was not taken: it lowered validation accuracy."""
    overhead_seconds: float = 0.0
    """Of ``seconds``, what building the sub-MIP and handing it to the solver took."""


@dataclass
class ImproveOutcome:
    network: IntegerNetwork
    start_objective: float
    objective: float
    rounds: int
    seconds: float
    steps: list[ImproveStep] = field(default_factory=list)
    step_limit_end: float = 0.0
    """The sub-MIP time limit the search ended with (the largest of a portfolio's searches)."""
    ended: SearchEnd = SearchEnd.TIME_LIMIT

    @property
    def improving_steps(self) -> int:
        return sum(step.objective_after < step.objective_before for step in self.steps)


def neighbourhoods(sizes: list[int], drops: bool = False) -> list[Neighbourhood]:
    """Every hidden neuron (alone, and with its outgoing weights) and the output layer; with
    ``drops``, every hidden neuron's drop step too. Without a hidden layer, also each input's
    column of the output layer with the biases (a coordinate of the linear model)."""
    architecture = tuple(sizes)
    kinds = [NeighbourhoodKind.NEURON, NeighbourhoodKind.NEURON_OUT] + ([NeighbourhoodKind.DROP] if drops else [])
    result = [Neighbourhood(f"{kind} {layer}:{j}", kind, architecture, (layer, j))
              for layer, width in enumerate(sizes[1:-1]) for j in range(width) for kind in kinds]
    result.append(Neighbourhood(NeighbourhoodKind.OUTPUT, NeighbourhoodKind.OUTPUT, architecture))
    if len(sizes) == 2:
        result += [Neighbourhood(f"{NeighbourhoodKind.OUTPUT_COLUMN} {i}", NeighbourhoodKind.OUTPUT_COLUMN,
                                 architecture, (0, i)) for i in range(sizes[0])]
    return result


def visiting_order(pool: list[Neighbourhood], rng: np.random.Generator) -> list[list[int]]:
    """The pool in tiers of rising cost, each searched as a round: single neurons (shuffled) then the
    output layer; then drops and neurons with their outgoing weights (each shuffled). Measured on
    Adult N = 2,000 (correct_margin, P = 1): a single-neuron step costs 0.03-2 s and found most of the
    gain. A neuron with its outgoing weights is up to :data:`MAX_OUTGOING_VALUES` single-neuron
    sub-MIPs (as the training model it had cost ~5 s there and 20 s on all of Adult), so it is
    searched only where the cheap tier has nothing left (variable neighbourhood descent)."""
    def shuffled(kind: NeighbourhoodKind) -> list[int]:
        members = [i for i, area in enumerate(pool) if area.kind == kind]
        return [members[i] for i in rng.permutation(len(members))]

    kinds = NeighbourhoodKind
    if any(area.kind == kinds.OUTPUT_COLUMN for area in pool):
        # No hidden layer: the linear model's coordinates first; the whole layer, the training
        # model itself, only where they find nothing.
        return [shuffled(kinds.OUTPUT_COLUMN), shuffled(kinds.OUTPUT)]
    return [shuffled(kinds.NEURON) + shuffled(kinds.OUTPUT), shuffled(kinds.DROP) + shuffled(kinds.NEURON_OUT)]


def improve(
    formulation: Formulation,
    problem: TrainingProblem,
    start: IntegerNetwork,
    seconds: float,
    options: SolverOptions,
    seed: int = 0,
    improve_step_limit: float = SearchOptions.improve_step_limit,
    on_step: Callable[[ImproveStep, IntegerNetwork], None] | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    solve_many: NeighbourhoodSolver | None = None,
    width: int = 1,
    raise_limit: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> ImproveOutcome:
    """Local search from ``start`` for ``seconds``; never returns a network scoring worse. Each
    sub-MIP gets at most ``improve_step_limit`` seconds, doubled
    each time the search would stop at a local optimum that a sub-MIP stopped by it leaves
    unproven (unless not ``raise_limit``: the search stops there). With
    ``validation`` (inputs, labels), a step that lowers the objective is taken only if it does not
    lower the accuracy on those examples (``--improve-validation``).

    ``width`` neighbourhoods of a tier are solved at a time from the same network, by ``solve_many``
    (e.g. on ``width`` Ray actors; default: one after another here). The best improving one is
    taken; each other improving one is moved onto the updated network (:func:`graft`), scored
    again there, and taken only if it still improves (steps interact). Each of them is reported
    with the wall time of their batch.

    ``on_step(step, network)`` is called after every sub-MIP with the current network. ``clock``
    tells the search's time (seconds, from any origin).
    """
    step_limit = improve_step_limit
    if formulation.hard:
        raise ValueError(f"local search needs a soft-loss formulation; {formulation.name} must fit every example")
    rng = np.random.default_rng(seed)
    began = clock()

    def time_left() -> float:
        return seconds - (clock() - began)

    current = problem.bounds.clip(start)
    if not formulation.admits(current, problem):
        raise ValueError("the start breaks the problem's size budget or a counting constraint "
                         f"({nonzero_parameters(current)} non-zero parameters, the budget {problem.max_nonzero})")
    objective = start_objective = formulation.objective_value(current, problem)

    def held_out_accuracy(network: IntegerNetwork) -> float:
        return network.accuracy(*validation) if validation is not None else 0.0

    accuracy = held_out_accuracy(current)
    # A drop can only pay where the objective counts neurons.
    pool = neighbourhoods(problem.sizes, drops=isinstance(formulation, NeuronPenalty) and formulation.alpha > 0)
    steps: list[ImproveStep] = []
    rounds = 0
    # A sub-MIP is small: solve it to optimality within its cap rather than to the paper's target.
    # A step's limit is its solver's: the search's own clock bounds the whole, and a step skipped
    # after building it would waste the building.
    sub_options = replace(options, target_error=None, mip_gap=0.0, limit_counts_building=False)
    tier = 0
    unproven = False  # a sub-MIP of the rounds since the last gain stopped at its limit, or was skipped
    ended = SearchEnd.TIME_LIMIT
    overhead: dict[NeighbourhoodKind, float] = {}  # the last build + set-up seconds of each kind
    reported = began
    while objective > 0 and time_left() > MIN_STEP_SECONDS:
        rounds += 1
        improved = False
        if tier == 0:  # only the rounds after the last gain say whether it is an optimum
            unproven = False
        order = visiting_order(pool, rng)  # reshuffled every round
        for first in range(0, len(order[tier]), width):
            if objective == 0 or time_left() <= MIN_STEP_SECONDS:
                break
            # A full-model step is built before its time limit applies (measured on all of Adult:
            # 14 s of Pyomo and appsi for the output layer): one that would overrun is skipped.
            areas = [pool[index] for index in order[tier][first:first + width]
                     if overhead.get(pool[index].kind, 0.0) < time_left() - MIN_STEP_SECONDS]
            unproven |= len(areas) < len(order[tier][first:first + width])
            if not areas:
                continue
            chunk_began = clock()
            step_options = replace(sub_options, time_limit=max(0.0, min(step_limit, time_left())))
            if solve_many is None:
                solved = [solve_neighbourhood(formulation, problem, current, objective, area, step_options)
                          for area in areas]
            else:
                solved = solve_many(current, objective, areas, step_options)
            seconds_taken = clock() - chunk_began
            base, base_objective = current, objective
            # The best step first; each other one that improved on the base is moved onto the
            # network the steps before it made and taken only if it still improves there.
            for rank in np.argsort([found.objective for found in solved], kind="stable"):
                area = areas[rank]
                candidate, candidate_objective = solved[rank].network, solved[rank].objective
                status, step_overhead = solved[rank].status, solved[rank].overhead_seconds
                if status != SolveStatus.UNCHANGED:
                    overhead[area.kind] = step_overhead
                if candidate_objective < base_objective and current is not base:
                    candidate = graft(current, candidate, area)
                    candidate_objective = formulation.objective_value(candidate, problem)
                # A step moved onto another network may take it over the size budget.
                better = candidate_objective < objective and formulation.admits(candidate, problem)
                candidate_accuracy = held_out_accuracy(candidate) if better else accuracy
                validation_fell = candidate_accuracy < accuracy
                better &= not validation_fell
                step = ImproveStep(area.name, area.kind, objective, candidate_objective if better else objective,
                                   status, seconds_taken, validation_fell, step_overhead)
                steps.append(step)
                if better:
                    current, objective, accuracy, improved = candidate, candidate_objective, candidate_accuracy, True
                unproven |= status in CAPPED
                if on_step is not None:
                    on_step(step, current)
            if clock() - reported >= PROGRESS_SECONDS:
                reported = clock()
                logger.info("local search, %.0f of %.0f s: objective %g (start %g), %d steps, %d improving",
                            reported - began, seconds, objective, start_objective, len(steps),
                            sum(s.objective_after < s.objective_before for s in steps))
        tier = 0 if improved else tier + 1
        if tier == len(order):  # a round of every tier found nothing: a local optimum of every neighbourhood
            if not unproven:
                ended = SearchEnd.LOCAL_OPTIMUM
                break
            if not raise_limit or step_limit >= time_left():
                break
            step_limit, tier = 2 * step_limit, 0
            logger.info("local search, %.0f of %.0f s: no step found, some sub-MIPs stopped at their limit; "
                        "searching again with %g s each", clock() - began, seconds, step_limit)
    if objective == 0:
        ended = SearchEnd.PERFECT
    outcome = ImproveOutcome(current, start_objective, objective, rounds, clock() - began, steps,
                             step_limit, ended)
    logger.info("local search ended (%s) after %.0f of %.0f s: objective %g (start %g), %d steps, %d improving, "
                "sub-MIP limit %g s", ended, outcome.seconds, seconds, objective, start_objective, len(steps),
                outcome.improving_steps, step_limit)
    return outcome


def graft(network: IntegerNetwork, candidate: IntegerNetwork, area: Neighbourhood) -> IntegerNetwork:
    """``network`` with the parameters ``area`` frees taken from ``candidate`` (and, for a drop, its
    neuron switched off): a step solved on another network, applied to this one."""
    grafted = IntegerNetwork(
        tuple(np.where(free, new, old) for old, new, free in zip(network.weights, candidate.weights, area.free_weights)),
        tuple(np.where(free, new, old) for old, new, free in zip(network.biases, candidate.biases, area.free_biases)),
        network.P,
    )
    if area.kind != NeighbourhoodKind.DROP:
        return grafted
    layer, neuron = area.place
    keep = [np.ones(len(b), dtype=bool) for b in network.biases[:-1]]
    keep[layer][neuron] = False
    return switch_off(grafted, keep)


PERTURBED_SHARE = 0.1
"""Share of the parameters a restart of :func:`portfolio` redraws in the best network so far."""


def perturbed(
    network: IntegerNetwork, problem: TrainingProblem, rng: np.random.Generator,
    admits: Callable[[IntegerNetwork], bool] | None = None,
) -> IntegerNetwork:
    """``network`` with each parameter redrawn uniformly from its box with probability
    :data:`PERTURBED_SHARE` (at least one parameter moves): far enough to leave a local optimum of
    every single-neuron step, near enough to keep most of what was fitted. Within a size budget, the
    smallest |θ| go back to 0 (:func:`~formulations.network.within_budget`); where that leaves a box
    without 0, or the copy breaks a constraint ``admits`` checks, the network is returned as it was."""
    bounds = problem.bounds
    parameters = [*network.weights, *network.biases]
    lowers = [*bounds.weight_lower, *bounds.bias_lower]
    uppers = [*bounds.weight_upper, *bounds.bias_upper]
    redraw = [rng.random(p.shape) < PERTURBED_SHARE for p in parameters]
    if not any(r.any() for r in redraw):
        layer = int(rng.integers(len(parameters)))
        redraw[layer].flat[int(rng.integers(redraw[layer].size))] = True
    moved = [np.where(r, rng.integers(lo, hi + 1), p) for p, r, lo, hi in zip(parameters, redraw, lowers, uppers)]
    n_layers = len(network.weights)
    moved = within_budget(IntegerNetwork(tuple(moved[:n_layers]), tuple(moved[n_layers:]), network.P),
                          problem.max_nonzero)
    return moved if (admits or problem.admits)(moved) else network


def portfolio(
    formulation: Formulation,
    problem: TrainingProblem,
    starts: list[IntegerNetwork],
    seconds: float,
    options: SolverOptions,
    seed: int = 0,
    improve_step_limit: float = SearchOptions.improve_step_limit,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    solve_many: NeighbourhoodSolver | None = None,
    width: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> ImproveOutcome:
    """Local search (:func:`improve`) from each of ``starts`` in turn, then, while time is left,
    from perturbed copies of the best network found (:func:`perturbed`; iterated local search);
    returns the best search's outcome, never worse than the first start. Each start gets an equal
    share of the time left; a search that reaches a local optimum earlier leaves the rest to the
    next. A search begins with the largest sub-MIP limit an earlier one reached; a restart from a
    perturbed copy does not raise it, but stops where it would, leaving its time to the next restart.
    ``steps`` and ``rounds`` count every search; ``start_objective`` is the first start's."""
    rng = np.random.default_rng(seed)
    began = clock()
    best: ImproveOutcome | None = None
    steps: list[ImproveStep] = []
    rounds = searches = 0
    largest_limit = improve_step_limit

    def time_left() -> float:
        return seconds - (clock() - began)

    while best is None or (best.objective > 0 and time_left() > MIN_STEP_SECONDS):
        if searches < len(starts):
            start, share = starts[searches], max(time_left(), 0.0) / (len(starts) - searches)
        else:
            start = perturbed(best.network, problem, rng, lambda network: formulation.admits(network, problem))
            share = time_left()
        outcome = improve(formulation, problem, start, share, options, seed=seed + searches,
                          improve_step_limit=largest_limit, validation=validation, solve_many=solve_many, width=width,
                          raise_limit=searches < len(starts), clock=clock)
        searches += 1
        steps += outcome.steps
        rounds += outcome.rounds
        largest_limit = max(largest_limit, outcome.step_limit_end)
        if best is None or outcome.objective < best.objective:
            best = outcome
    first_objective = formulation.objective_value(problem.bounds.clip(starts[0]), problem)
    return ImproveOutcome(best.network, first_objective, best.objective, rounds, clock() - began, steps,
                          largest_limit, SearchEnd.PERFECT if best.objective == 0 else SearchEnd.TIME_LIMIT)


def solve_neighbourhood(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """The step of ``area`` around ``current`` (whose training objective is ``objective``), by the
    step solver :data:`STEPS` holds for its kind."""
    return STEPS[area.kind](formulation, problem, current, objective, area, options)


def solve_neuron_step(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """A hidden neuron's incoming weights and bias: solved on the examples its sign changes
    (:func:`solve_neuron`) where the formulation's objective is a sum of example losses, as the
    training model restricted to the neuron otherwise."""
    costs = sign_costs(formulation, problem, current, *area.place)
    if costs is None:
        return solve_around(formulation, problem, current, area, options)
    return solve_neuron(formulation, problem, current, objective, area, *costs, options)


def solve_neuron(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    minus: np.ndarray,
    plus: np.ndarray,
    options: SolverOptions,
) -> StepResult:
    """The single-neuron step of ``area.place`` given each example's loss with the neuron's sign
    forced to −1 (``minus``) and +1 (``plus``): :class:`NeuronChoice` on the examples whose loss
    the sign changes; a neuron that can change none is left as it is, without a solve."""
    pivotal = np.flatnonzero(plus != minus)
    if len(pivotal) == 0:
        return StepResult(current, objective, SolveStatus.UNCHANGED)
    layer, neuron = area.place
    single, start = neuron_problem(problem, current, layer, neuron, pivotal)
    choice = NeuronChoice((plus - minus)[pivotal], float(minus.sum()))
    outcome = solve_mip(choice, single, start, options)
    return scored_step(formulation, problem, with_neuron(current, layer, neuron, outcome.network), outcome, area)


def scored_step(
    formulation: Formulation, problem: TrainingProblem, network: IntegerNetwork, outcome: SolveOutcome, area: Neighbourhood
) -> StepResult:
    """A step solved as a smaller problem, ``network`` put back together from its ``outcome``:
    scored again on every training example, which must agree with the smaller problem's objective."""
    recomputed = formulation.objective_value(network, problem)
    if abs(recomputed - outcome.objective) > OBJECTIVE_TOLERANCE * max(1.0, abs(recomputed)):
        raise ObjectiveMismatch(
            f"{formulation.name}: the step on {area.name} scores {outcome.objective}, its network {recomputed}"
        )
    return StepResult(network, recomputed, outcome.status, outcome.build_seconds + outcome.setup_seconds)


MAX_OUTGOING_VALUES = 100
"""Most values of a neuron's outgoing weights a neuron+out step visits one by one. Scoring a value
costs two passes over the data (on all of Adult about 2 ms): P = 3 with two classes has 49 values,
0.1 s in all; P = 15's 961 took 1.6 s of a 2 s step."""


def outgoing_values(problem: TrainingProblem, network: IntegerNetwork, place: tuple[int, int]) -> list[np.ndarray]:
    """The values of the outgoing weights of hidden neuron ``place`` a neuron+out step visits:
    every value in their box, or, when that is more than :data:`MAX_OUTGOING_VALUES`, those within
    ±r of ``network``'s, r the largest that keeps to the cap; [] when even r = 1 does not."""
    layer, neuron = place
    lower = problem.bounds.weight_lower[layer + 1][:, neuron]
    upper = problem.bounds.weight_upper[layer + 1][:, neuron]
    column = network.weights[layer + 1][:, neuron]
    for radius in range(max(int(np.max(upper - lower)), 1), 0, -1):
        low, high = np.maximum(lower, column - radius), np.minimum(upper, column + radius)
        if np.prod(high - low + 1.0) <= MAX_OUTGOING_VALUES:
            return [np.array(v) for v in itertools.product(*(range(lo, hi + 1) for lo, hi in zip(low, high)))]
    return []


def solve_neuron_out(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """The neuron+out step as single-neuron steps, one per value v of the outgoing weights
    (:func:`outgoing_values`: the whole box, or a window of it). Each v's lower bound is
    Σ_k min(c⁻_k(v), c⁺_k(v)), every example given the sign it prefers; the values are visited
    lowest bound first and the visit ends once a bound reaches the best objective found, so a visit
    that finishes in time is the optimum over those values (status ``optimal``). As the training
    model restricted to the neighbourhood where no value fits the cap (or the size budget) or the
    objective is no sum of example losses."""
    began = time.perf_counter()
    layer, neuron = area.place
    outgoing = outgoing_values(problem, current, area.place)
    activations = current.hidden_activations(problem.x)[layer]
    forced = []
    for sign in (-1.0, 1.0):
        signs = activations.copy()
        signs[:, neuron] = sign
        forced.append(signs)
    is_on = activations[:, neuron] > 0

    def with_outgoing(v: np.ndarray) -> IntegerNetwork:
        weights = list(current.weights)
        weights[layer + 1] = weights[layer + 1].copy()
        weights[layer + 1][:, neuron] = v
        return IntegerNetwork(tuple(weights), current.biases, current.P)

    def costs(v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        network = with_outgoing(v)
        minus, plus = (formulation.example_losses(network.output_from(layer, signs), problem) for signs in forced)
        return None if minus is None else (minus, plus)

    # With a size budget, a value that takes the network over it is left out: the step keeps the
    # budget without also emptying the neuron's incoming weights to make room.
    outgoing = [v for v in outgoing if formulation.admits(with_outgoing(v), problem)]
    if not outgoing or costs(outgoing[0]) is None:
        return solve_around(formulation, problem, current, area, options)
    # Scoring every v is this step's building: two passes over the data each, from the neuron's
    # layer on, up to MAX_OUTGOING_VALUES times; the step's time limit bounds it too.
    bounds = []
    for v in outgoing:
        if time.perf_counter() - began >= options.time_limit:
            return StepResult(current, objective, SolveStatus.TIME_LIMIT, time.perf_counter() - began)
        bounds.append(float(np.minimum(*costs(v)).sum()))
    best = StepResult(current, objective, SolveStatus.OPTIMAL, time.perf_counter() - began)
    overhead = best.overhead_seconds
    for index in np.argsort(bounds, kind="stable"):
        if bounds[index] >= best.objective:
            break
        left = options.time_limit - (time.perf_counter() - began)
        if left < MIN_STEP_SECONDS:
            best = replace(best, status=SolveStatus.TIME_LIMIT)
            break
        minus, plus = costs(outgoing[index])
        network = with_outgoing(outgoing[index])
        found = solve_neuron(formulation, problem, network, float(np.where(is_on, plus, minus).sum()), area, minus,
                             plus, replace(options, time_limit=left))
        overhead += found.overhead_seconds
        status = best.status if found.status in (SolveStatus.OPTIMAL, SolveStatus.UNCHANGED) else found.status
        best = replace(found if found.objective < best.objective else best, status=status)
    return replace(best, overhead_seconds=overhead)


def output_problem(problem: TrainingProblem, network: IntegerNetwork) -> tuple[TrainingProblem, IntegerNetwork]:
    """The output layer of ``network`` as a one-layer problem: its inputs are what the layer reads
    (the last hidden layer's ±1 signs; the data without a hidden layer), every set of examples with
    the same inputs and label one row weighted by their total weight (their number, each counting once), its box the output layer's in
    ``problem.bounds``, its Ω the network's, its size budget what the hidden layers leave; and the
    output layer as that problem's network.
    Measured on all 26,049 Adult training examples behind 16 hidden neurons (max_correct, P = 3):
    4,285 rows, and 1.8-2.8 s of Pyomo and appsi where the layer on every example took 11.7 s and
    the training model restricted to the layer 14 s."""
    inputs = neuron_inputs(network, problem.x, len(problem.hidden))
    # Examples merge only where every counting row counts them alike (the same group and class).
    signature = [row.coefficients for row in problem.rows]
    rows, members = np.unique(np.column_stack([inputs, problem.y, *signature]), axis=0, return_inverse=True)
    # A merged row stands for its examples' total weight (their number when each counts once).
    counts = np.bincount(members.reshape(-1), weights=problem.example_weights, minlength=len(rows))
    rows = rows[:, : inputs.shape[1] + 1]
    bounds = problem.bounds
    box = ParameterBounds(
        weight_lower=bounds.weight_lower[-1:], weight_upper=bounds.weight_upper[-1:],
        bias_lower=bounds.bias_lower[-1:], bias_upper=bounds.bias_upper[-1:],
    )
    output = IntegerNetwork(network.weights[-1:], network.biases[-1:], network.P)
    budget = None if problem.max_nonzero is None else (
        problem.max_nonzero - nonzero_parameters(network) + nonzero_parameters(output))
    layer = TrainingProblem(rows[:, :-1], rows[:, -1].astype(np.int64), problem.n_classes, (), problem.P, box,
                            weights=counts, scale=problem.output_scale, max_nonzero=budget,
                            rows=tuple(merged_rows(problem.rows, members.reshape(-1), len(counts))))
    return layer, output


def solve_output(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """The output-layer step (or one column of it, with the biases): on :func:`output_problem`'s
    merged rows where the formulation weights its examples (and counts no neurons), as the training
    model restricted to the layer otherwise."""
    if not formulation.weighted_examples or formulation.neuron_switches:
        return solve_around(formulation, problem, current, area, options)
    layer, start = output_problem(problem, current)
    if area.kind == NeighbourhoodKind.OUTPUT_COLUMN:
        layer = replace(layer, bounds=layer.bounds.neighbourhood(start, area.free_weights[-1:], area.free_biases[-1:]))
    outcome = solve_mip(formulation, layer, start, options)
    network = IntegerNetwork(current.weights[:-1] + outcome.network.weights, current.biases[:-1] + outcome.network.biases,
                             current.P)
    return scored_step(formulation, problem, network, outcome, area)


def solve_drop(
    formulation: Formulation,
    problem: TrainingProblem,
    current: IntegerNetwork,
    objective: float,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """A drop step: ``current`` with the neuron switched off is the start, feasible for the
    neighbourhood around it, where the next layer is solved again; left as it is when that would
    not lower the neuron count or its parameters cannot all be 0."""
    layer, neuron = area.place
    keep = [np.ones(len(b), dtype=bool) for b in current.biases[:-1]]
    keep[layer][neuron] = False
    dropped = switch_off(current, keep)
    if sum(neurons_on(dropped)) == sum(neurons_on(current)) or not problem.bounds.contains(dropped):
        return StepResult(current, objective, SolveStatus.UNCHANGED)
    return solve_around(formulation, problem, dropped, area, options)


def solve_around(
    formulation: Formulation,
    problem: TrainingProblem,
    network: IntegerNetwork,
    area: Neighbourhood,
    options: SolverOptions,
) -> StepResult:
    """The training model with every parameter outside ``area`` fixed at ``network``'s value, solved
    from ``network`` (feasible for it)."""
    sub = replace(problem, bounds=problem.bounds.neighbourhood(network, area.free_weights, area.free_biases))
    outcome = solve_mip(formulation, sub, network, options)
    return StepResult(outcome.network, outcome.objective, outcome.status, outcome.build_seconds + outcome.setup_seconds)


StepSolver = Callable[[Formulation, TrainingProblem, IntegerNetwork, float, Neighbourhood, SolverOptions], StepResult]
"""``step(formulation, problem, current, objective, area, options)``: one local-search step."""

STEPS: dict[NeighbourhoodKind, StepSolver] = {
    NeighbourhoodKind.NEURON: solve_neuron_step,
    NeighbourhoodKind.NEURON_OUT: solve_neuron_out,
    NeighbourhoodKind.OUTPUT: solve_output,
    NeighbourhoodKind.OUTPUT_COLUMN: solve_output,
    NeighbourhoodKind.DROP: solve_drop,
}
"""The step solver of each kind of neighbourhood."""
