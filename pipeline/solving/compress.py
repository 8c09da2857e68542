"""MIP compression: make a network smaller without letting it classify fewer kept examples
correctly (docs/method.md §13; ``intnet compress``, ``intnet train --compress``).

Size is compared lexicographically (:class:`Size`): hidden neurons, then non-zero parameters, then
the dense bits with each layer stored in the range of its largest |parameter|. The hard constraint:
the network classifies at least as many examples of the kept set correctly as the start, less
``tolerance``; equivalently, at most E = (the start's errors) + tolerance errors.

Moves, each an exact sub-MIP (:class:`formulations.compression.FewestNonzeros`: fewest non-zero
parameters within the error budget) from the current network, its result recomputed in numpy:

* ``drop l:j``  hidden neuron j of layer l removed, and the layer that reads it (l + 1) solved again,
  every parameter free within that layer's current range;
* ``sparsify l:j``  neuron j of layer l (hidden or output): its incoming weights and bias, as few
  non-zero as the budget allows;
* ``narrow l``  every parameter of layer l within the next smaller bit width (|θ| ≤ 2^⌊log₂ B⌋ − 1
  for a layer of largest |θ| B), neuron by neuron, none gaining a non-zero parameter; taken only if
  every neuron of the layer fits.

A hidden neuron is solved on the examples whose error its sign changes
(:mod:`formulations.neuron_choice`); a layer feeding the output (or deeper layers) on the examples
whose outcome interval arithmetic leaves open, the others counted as they are. A move that can only
fail is not solved: a neuron already without a non-zero parameter, a layer at one bit of magnitude,
a sub-problem whose examples wrong whatever it does already exceed the budget. A move is taken only
if the recomputed network keeps the constraint and is smaller; a network that the solver returned
and that breaks the constraint raises :class:`AccuracyViolation` (a modelling bug, never kept).
The search stops at its time or when every move of the current network has failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.bounds import preactivation_bounds
from formulations.compression import FewestNonzeros
from formulations.encoding import grid_of_layer
from formulations.max_correct import MaxCorrect, rival_differences
from formulations.network import layer_bounds, layered_size_bits, nonzero_parameters, strip_neurons
from formulations.neuron_choice import NeuronChoice, neuron_inputs, neuron_problem, sign_costs, with_neuron
from pipeline.solving.improve import MIN_STEP_SECONDS, SearchOptions
from pipeline.solving.solve import ObjectiveMismatch, SolverOptions, solve_mip

MISMATCH = "objective_mismatch"
BREAKS_A_GUARANTEE = "breaks_a_guarantee"
"""A step's status when its network broke one of the run's guarantees; the move counts as failed."""
"""A step's status when the solver's objective was not that of the weights it returned."""

class KeptSplit(StrEnum):
    """The examples whose correct count compression keeps (``--keep``)."""

    TRAIN = "train"
    VALIDATION = "validation"


@dataclass(frozen=True)
class CompressionOptions:
    """How a trained network is compressed: the compression layer's options. A run's
    configuration (:class:`pipeline.config.TrainConfig`) takes their defaults from here, under the
    same names; the sub-MIPs' limit is local search's ``improve_step_limit``."""

    compress: float = 0.0
    """Seconds of compression (0: none)."""
    # Measured (Adult N = 800, P = 15, 150 s): keeping the 800 training examples' count cut test
    # accuracy from 81.6 % to 76.5 %, keeping the 6,512 validation examples' cost 0.03 points.
    keep: KeptSplit = KeptSplit.VALIDATION
    tolerance: int = 0
    """Correctly classified kept examples compression may lose."""


class AccuracyViolation(RuntimeError):
    """A sub-MIP's network classifies fewer kept examples correctly than the constraint allows."""


@dataclass(frozen=True, order=True)
class Size:
    """A network's size, compared in this order: hidden neurons, non-zero parameters, dense bits
    (each layer's parameters in the bits of its largest |parameter|)."""

    neurons: int
    nonzeros: int
    bits: int

    def as_dict(self) -> dict[str, int]:
        return {"neurons": self.neurons, "nonzeros": self.nonzeros, "bits": self.bits}


def size_of(network: IntegerNetwork) -> Size:
    return Size(sum(network.sizes[1:-1]), nonzero_parameters(network),
                layered_size_bits(network, layer_bounds(network)))


class MoveKind(StrEnum):
    DROP = "drop"
    SPARSIFY = "sparsify"
    NARROW = "narrow"


@dataclass(frozen=True)
class Move:
    kind: MoveKind
    layer: int
    neuron: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind} {self.layer}" + ("" if self.neuron is None else f":{self.neuron}")


@dataclass(frozen=True)
class CompressStep:
    move: str
    kind: MoveKind
    before: Size
    after: Size
    status: str
    seconds: float

    @property
    def accepted(self) -> bool:
        return self.after < self.before


@dataclass
class CompressOutcome:
    network: IntegerNetwork
    start_size: Size
    size: Size
    start_correct: int
    required_correct: int
    correct: int
    seconds: float
    steps: list[CompressStep] = field(default_factory=list)

    def report(self) -> dict:
        return {
            "before": self.start_size.as_dict(), "after": self.size.as_dict(),
            "layer_bounds": layer_bounds(self.network),
            "start_correct": self.start_correct, "required_correct": self.required_correct,
            "correct": self.correct, "seconds": self.seconds, "steps": len(self.steps),
            "accepted_steps": sum(step.accepted for step in self.steps),
            "mismatched_steps": sum(step.status == MISMATCH for step in self.steps),
        }


@dataclass(frozen=True)
class KeptSet:
    """The examples whose errors are budgeted, the budget E, and the size budget every network
    must keep (``--max-nonzero``; None: none)."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    budget: int
    max_nonzero: int | None = None

    def errors(self, network: IntegerNetwork) -> int:
        return int(np.count_nonzero(network.predict(self.x) != self.y))


def compress(
    start: IntegerNetwork,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seconds: float,
    options: SolverOptions,
    tolerance: int = 0,
    improve_step_limit: float = SearchOptions.improve_step_limit,
    on_step: Callable[[CompressStep, IntegerNetwork], None] | None = None,
    max_nonzero: int | None = None,
    admits: Callable[[IntegerNetwork], bool] | None = None,
) -> CompressOutcome:
    """The smallest network the moves reach from ``start`` within ``seconds`` that classifies at
    least (``start``'s correct count on (x, y)) − ``tolerance`` of the examples correctly. Each
    sub-MIP gets at most ``improve_step_limit`` seconds.
    ``on_step(step, network)`` is called after every move with the current network. With
    ``max_nonzero``, no move takes the network over that many non-zero parameters (only a drop
    can add some: its layer is solved within what the others leave). A move whose network
    ``admits`` refuses (a guarantee on another set of examples) is not taken: it counts as failed."""
    if tolerance < 0:
        raise ValueError(f"the tolerance must be >= 0, got {tolerance}")
    began = time.perf_counter()

    def time_left() -> float:
        return seconds - (time.perf_counter() - began)

    current = strip_neurons(start)
    if max_nonzero is not None and nonzero_parameters(current) > max_nonzero:
        raise ValueError(f"the network has {nonzero_parameters(current)} non-zero parameters, over the size "
                         f"budget of {max_nonzero}")
    kept = KeptSet(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64), n_classes, 0, max_nonzero)
    start_errors = kept.errors(current)
    kept = replace(kept, budget=start_errors + tolerance)
    # A step's limit is its solver's: the search's own clock bounds the whole, and a step skipped
    # after building it would waste the building.
    sub_options = replace(options, target_error=None, mip_gap=0.0, limit_counts_building=False)
    start_size = size = size_of(current)
    steps: list[CompressStep] = []
    failed: set[str] = set()  # sparsify and narrow moves that found nothing from the current network
    failed_drops: set[tuple] = set()  # neurons whose drop found nothing, by what they compute
    last, position = None, 0  # the move tried last and its place: the search goes on after it, round the list
    while time_left() > MIN_STEP_SECONDS:
        pool = moves(current, kept, time_left)
        names = [m.name for m in pool]
        # A move gone since (its neuron emptied or removed) leaves the next one in its place.
        position = names.index(last) + 1 if last in names else min(position, len(pool))
        move = next((m for m in pool[position:] + pool[:position]
                     if (drop_key(current, m) not in failed_drops if m.kind == MoveKind.DROP else m.name not in failed)),
                    None)
        if move is None:
            break  # every move of the current network failed: a local optimum of every neighbourhood
        last, position = move.name, names.index(move.name)
        step_began = time.perf_counter()
        # Ranking the moves takes time as well: what is left may be nothing by now.
        limit = replace(sub_options, time_limit=max(0.0, min(improve_step_limit, time_left())))
        try:
            candidate, status = MOVES[move.kind](current, kept, move, limit)
        except ObjectiveMismatch:
            # Seen once on Adult (a sparsify stopped at its time limit: HiGHS reported 4 non-zero
            # parameters, its weights had 6). The network is not trusted; the move counts as failed.
            candidate, status = None, MISMATCH
        after = size
        if candidate is not None:
            candidate = strip_neurons(fold_constant_neurons(candidate))
            errors = kept.errors(candidate)
            if errors > kept.budget:
                raise AccuracyViolation(f"{move.name}: {errors} errors on the kept set, the budget is {kept.budget}")
            if max_nonzero is not None and nonzero_parameters(candidate) > max_nonzero:
                raise AccuracyViolation(f"{move.name}: {nonzero_parameters(candidate)} non-zero parameters, the "
                                        f"size budget is {max_nonzero}")
            if admits is not None and not admits(candidate):
                candidate, status = None, BREAKS_A_GUARANTEE
            else:
                after = min(size, size_of(candidate))
        step = CompressStep(move.name, move.kind, size, after, status, time.perf_counter() - step_began)
        steps.append(step)
        if step.accepted:
            current, size, failed = candidate, after, set()
        elif move.kind == MoveKind.DROP:
            failed_drops.add(drop_key(current, move))
        else:
            failed.add(move.name)
        if on_step is not None:
            on_step(step, current)
    return CompressOutcome(current, start_size, size, len(kept.y) - start_errors, len(kept.y) - kept.budget,
                           len(kept.y) - kept.errors(current), time.perf_counter() - began, steps)


def moves(network: IntegerNetwork, kept: KeptSet, left: Callable[[], float] = lambda: math.inf) -> list[Move]:
    """The current network's moves, cheapest first: each neuron's sparsification (hidden layers
    first; a hidden neuron's sub-MIP took 0.1 s on Adult N = 800), narrowing each layer, then the
    drops (10 s and more there), the neuron whose removal alone costs the fewest errors first. Moves
    that can only fail are left out: a neuron without a non-zero parameter, a layer of largest
    |θ| 1, the only neuron of its layer.

    Ranking a drop is a pass of the kept set through the network (the 907 drops of a 21-1024-2
    network took 17 s on Heart's rows, under --seconds 5): once ``left()``, the search's time left,
    is within :data:`MIN_STEP_SECONDS`, the drops not yet ranked come last, in their order."""
    hidden = network.sizes[1:-1]
    sparsify = [Move(MoveKind.SPARSIFY, layer, j)
                for layer, (w, b) in enumerate(zip(network.weights, network.biases))
                for j in range(len(b)) if np.any(w[j]) or b[j]]
    narrow = [Move(MoveKind.NARROW, layer) for layer, bound in enumerate(layer_bounds(network)) if bound > 1]
    drops = [Move(MoveKind.DROP, layer, j) for layer, width in enumerate(hidden) if width > 1 for j in range(width)]
    errors: dict[Move, float] = {}
    for move in drops:
        if left() <= MIN_STEP_SECONDS:
            break
        errors[move] = kept.errors(without_neuron(network, move.layer, move.neuron))
    drops.sort(key=lambda m: errors.get(m, math.inf))
    return sparsify + narrow + drops


def drop_key(network: IntegerNetwork, move: Move) -> tuple:
    """A drop's neuron by its layer and parameters, which survive other neurons' removal (indices
    do not): a drop that failed is tried again only once its neuron has changed."""
    return (move.layer, network.weights[move.layer][move.neuron].tobytes(), int(network.biases[move.layer][move.neuron]))


def fold_constant_neurons(network: IntegerNetwork) -> IntegerNetwork:
    """The same function without the hidden neurons whose incoming weights are all 0: such a neuron
    outputs the sign of its bias on every input, so its outgoing weights join the next layer's
    biases, where those stay within that layer's range (else the neuron stays)."""
    for layer in reversed(range(len(network.weights) - 1)):
        bound = layer_bounds(network)[layer + 1]
        for j in reversed(range(len(network.biases[layer]))):
            if np.any(network.weights[layer][j]) or len(network.biases[layer]) == 1:
                continue
            sign = 1 if network.biases[layer][j] >= 0 else -1
            biases = network.biases[layer + 1] + sign * network.weights[layer + 1][:, j]
            if np.abs(biases).max() <= bound:
                smaller = without_neuron(network, layer, j)
                network = IntegerNetwork(smaller.weights, smaller.biases[:layer + 1] + (biases,) + smaller.biases[layer + 2:],
                                         network.P)
    return network


def without_neuron(network: IntegerNetwork, layer: int, neuron: int) -> IntegerNetwork:
    """``network`` with hidden neuron ``neuron`` of ``layer`` removed (its row of W^l and b^l, its
    column of W^{l+1}): what the layer reading it computes without it."""
    keep = np.arange(len(network.biases[layer])) != neuron
    weights, biases = list(network.weights), list(network.biases)
    weights[layer], biases[layer] = weights[layer][keep], biases[layer][keep]
    weights[layer + 1] = weights[layer + 1][:, keep]
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


def narrower(bound: int) -> int:
    """The largest range one bit of magnitude below ``bound``'s: 2^⌊log₂ bound⌋ − 1."""
    return 2 ** int(math.floor(math.log2(bound))) - 1


Solved = tuple[IntegerNetwork | None, str]


def drop(network: IntegerNetwork, kept: KeptSet, move: Move, options: SolverOptions) -> Solved:
    reader = move.layer + 1
    smaller = without_neuron(network, move.layer, move.neuron)
    rows = np.ones(len(smaller.biases[reader]), dtype=bool)
    # Its layer is solved anew: within the size budget, what the layers before it leave.
    cap = None if kept.max_nonzero is None else kept.max_nonzero - nonzero_parameters(
        IntegerNetwork(smaller.weights[:reader], smaller.biases[:reader], smaller.P))
    return solve_layer(smaller, kept, reader, rows, layer_bounds(network)[reader], cap, options)


def sparsify(network: IntegerNetwork, kept: KeptSet, move: Move, options: SolverOptions) -> Solved:
    return solve_neuron(network, kept, move.layer, move.neuron, layer_bounds(network)[move.layer], None, options)


def narrow(network: IntegerNetwork, kept: KeptSet, move: Move, options: SolverOptions) -> Solved:
    """Every neuron of the layer outside the narrower range solved inside it, none gaining a
    non-zero parameter, in turn (each from the network the ones before left); all must succeed."""
    bound = narrower(layer_bounds(network)[move.layer])
    began = time.perf_counter()
    for j in range(len(network.biases[move.layer])):
        row = np.append(network.weights[move.layer][j], network.biases[move.layer][j])
        if np.abs(row).max() <= bound:
            continue
        left = options.time_limit - (time.perf_counter() - began)
        if left <= 0:
            return None, "time_limit"
        solved, status = solve_neuron(network, kept, move.layer, j, bound, int(np.count_nonzero(row)),
                                      replace(options, time_limit=left))
        if solved is None:
            return None, status
        network = solved
    return network, "optimal"


MOVES: dict[MoveKind, Callable[[IntegerNetwork, KeptSet, Move, SolverOptions], Solved]] = {
    MoveKind.DROP: drop, MoveKind.SPARSIFY: sparsify, MoveKind.NARROW: narrow,
}


def solve_neuron(
    network: IntegerNetwork, kept: KeptSet, layer: int, neuron: int, bound: int, cap: int | None,
    options: SolverOptions,
) -> Solved:
    """Neuron ``neuron`` of ``layer`` with the fewest non-zero incoming weights and bias in
    [−bound, bound] (at most ``cap``), every other parameter fixed, within the error budget. A hidden
    neuron is posed on the examples whose error its sign changes; an output neuron as the output
    layer with that row free."""
    if layer == len(network.weights) - 1:
        rows = np.arange(len(network.biases[layer])) == neuron
        if cap is not None:  # solve_layer caps the whole output layer: the other neurons' count is fixed
            cap += int(np.count_nonzero(network.weights[layer][~rows]) + np.count_nonzero(network.biases[layer][~rows]))
        return solve_layer(network, kept, layer, rows, bound, cap, options)
    problem = TrainingProblem(kept.x, kept.y, kept.n_classes, tuple(network.sizes[1:-1]), network.P,
                              ParameterBounds.box(network.sizes, bound))
    minus, plus = sign_costs(MaxCorrect(), problem, network, layer, neuron)
    changes = plus - minus
    pivotal = np.flatnonzero(changes)
    if minus.sum() + np.minimum(changes, 0).sum() > kept.budget:
        return None, "cannot"  # wrong whatever the neuron does
    if len(pivotal) == 0:
        # Its sign changes no error: all zeros (sign +1 everywhere) does as well as anything.
        zero = IntegerNetwork((np.zeros((1, network.sizes[layer]), dtype=np.int64),), (np.zeros(1, dtype=np.int64),),
                              network.P)
        return with_neuron(network, layer, neuron, zero), "no_effect"
    single, start = neuron_problem(problem, network, layer, neuron, pivotal)
    formulation = FewestNonzeros(NeuronChoice(changes[pivotal], float(minus.sum())), kept.budget, cap)
    outcome = solve_mip(formulation, single, single.bounds.clip(start), options)
    if not math.isfinite(outcome.objective):
        return None, outcome.status
    return with_neuron(network, layer, neuron, outcome.network), outcome.status


def solve_layer(
    network: IntegerNetwork, kept: KeptSet, layer: int, rows: np.ndarray, bound: int, cap: int | None,
    options: SolverOptions,
) -> Solved:
    """The neurons ``rows`` of ``layer`` with every incoming weight and bias free in [−bound, bound],
    every other parameter fixed, the fewest non-zero parameters (at most ``cap``) within the error
    budget: max_correct on the layers from ``layer`` on, over the examples whose outcome interval
    arithmetic leaves open (the others counted as they are)."""
    rest = IntegerNetwork(network.weights[layer:], network.biases[layer:], network.P)
    inputs = neuron_inputs(network, kept.x, layer)
    box = ParameterBounds.box(rest.sizes, bound).neighbourhood(
        rest, tuple(np.zeros_like(w, dtype=bool) if i else np.repeat(rows[:, None], w.shape[1], axis=1)
                    for i, w in enumerate(rest.weights)),
        tuple(np.zeros_like(b, dtype=bool) if i else rows for i, b in enumerate(rest.biases)),
    )
    lower, upper = preactivation_bounds(inputs, box)[-1]
    lowest, highest, thresholds = rival_differences(lower, upper, kept.y, grid_of_layer(len(rest.weights) - 1))
    rival = np.arange(kept.n_classes)[None, :] != kept.y[:, None]
    always_wrong = np.any(rival & (lowest >= thresholds), axis=1)
    always_right = np.all(~rival | (highest < thresholds), axis=1)
    open_examples = ~(always_wrong | always_right)
    budget = kept.budget - int(always_wrong.sum())
    if budget < 0:
        return None, "cannot"  # more examples wrong whatever the layer does than the budget allows
    if not open_examples.any():
        open_examples[:] = True  # every outcome decided: still the fewest parameters that keep them
        budget = kept.budget
    problem = TrainingProblem(inputs[open_examples], kept.y[open_examples], kept.n_classes,
                              tuple(rest.sizes[1:-1]), network.P, box)
    outcome = solve_mip(FewestNonzeros(MaxCorrect(), budget, cap), problem, box.clip(rest), options)
    if not math.isfinite(outcome.objective):
        return None, outcome.status
    solved = outcome.network
    return IntegerNetwork(network.weights[:layer] + solved.weights, network.biases[:layer] + solved.biases,
                          network.P), outcome.status



def compression_report(outcome: CompressOutcome, keep: str, tolerance: int) -> dict:
    """What a compression did, for ``--json``, ``intnet info`` and the file's provenance."""
    return outcome.report() | {"keep": keep, "tolerance": tolerance}


def compressed_provenance(provenance: dict, report: dict) -> dict:
    """``provenance`` with the compression recorded: ``layer_bounds``, each layer's range, which
    ``size_bits`` counts in (a device stores layer l in bits_for(bound_l) bits per parameter), and
    ``compressed``, the report (sizes before and after, correct counts, the kept set)."""
    return provenance | {"layer_bounds": report["layer_bounds"], "compressed": report}
