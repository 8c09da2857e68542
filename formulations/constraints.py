"""Guarantees a solver can give and a gradient method can only approach (docs/method.md §16).

**Counting rows.** Group fairness and recall floors are counts of training examples by their
outcome, so they are linear in the error indicators e_k of max_correct (§4.3; e_k = 1 when the
network misclassifies example k). Each is a row

    lower ≤ constant + Σ_k a_k e_k ≤ upper                                        (:class:`CountRow`)

scaled so that a_k and the constant are integers: the row holds or fails exactly at every integer
point, and a numpy recount from the network's own predictions decides it without the solver.
With two classes, example k is predicted positive (class 1) with p_k = y_k + (1 − 2y_k) e_k.

* Demographic parity between groups g and h: |P̂(g) − P̂(h)| ≤ ε with P̂(g) = Σ_{k∈g} p_k / n_g,
  multiplied by n_g n_h: −ε n_g n_h ≤ n_h Σ_{k∈g} p_k − n_g Σ_{k∈h} p_k ≤ ε n_g n_h.
* Equal opportunity: the same on the examples of class 1 (true positive rates); equalised odds:
  on class 1 and on class 0 (false positive rates), two pairs of rows.
* Recall of class c at least ρ: Σ_{k: y_k = c} (1 − e_k) ≥ ρ n_c, for any number of classes.

A merged row standing for several identical examples (local search's output step) carries their
count; a single-neuron step counts the examples its sign changes by the sign's binary and the
others as constants (:func:`neuron_rows`).

**Monotonicity.** Sign activations are monotone, so a network is monotone in input i when every
path from i to the output has one sign: give each hidden neuron an orientation o ∈ {+1, −1} (its
output never falls, or never rises, as x_i grows); a weight from input i into neuron j must have
o_j's sign (or be 0), a weight from neuron j into neuron k the sign o_j·o_k, and the score the
constraint is about must rise with every neuron by its orientation. The score: with two classes
z_1 − z_0; with more, z_c − z_0 for every class c ≥ 1 (class 0 the reference: as x_i grows, no
example moves towards class 0 for ``+``, away from it for ``−``). :func:`monotone_orientations`
checks a network from its weights alone, the proof; :func:`monotone_bounds` turns chosen
orientations into parameter boxes, which every MIP then holds like any other box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations

import numpy as np

from formulations.bounds import ParameterBounds
from formulations.network import IntegerNetwork

ROW_TOLERANCE = 1e-9
"""Rows have integer coefficients and constants; their bounds may be fractions (ε n_g n_h)."""


@dataclass(frozen=True, eq=False)
class CountRow:
    """lower ≤ constant + Σ_k coefficients[k]·e_k ≤ upper over a problem's examples."""

    name: str
    coefficients: np.ndarray
    constant: float
    lower: float = -math.inf
    upper: float = math.inf

    def value(self, indicators: np.ndarray) -> float:
        return float(self.constant + self.coefficients @ indicators)

    def holds(self, indicators: np.ndarray) -> bool:
        value = self.value(indicators)
        return self.lower - ROW_TOLERANCE <= value <= self.upper + ROW_TOLERANCE


class Fairness(StrEnum):
    """Which rates must agree between groups (``--fair COLUMN:KIND:EPS``)."""

    DEMOGRAPHIC_PARITY = "dp"
    """The share predicted positive."""
    EQUALISED_ODDS = "eo"
    """The true positive rate and the false positive rate."""
    EQUAL_OPPORTUNITY = "eopp"
    """The true positive rate."""


def cells_of(kind: Fairness, y: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The sets of examples whose predicted-positive share each group must share: everyone for
    parity, class 1 (true positive rate) for opportunity, and class 0 too (false positive rate)
    for odds."""
    cells = {Fairness.DEMOGRAPHIC_PARITY: [("positive rate", np.ones(len(y), dtype=bool))],
             Fairness.EQUAL_OPPORTUNITY: [("true positive rate", y == 1)],
             Fairness.EQUALISED_ODDS: [("true positive rate", y == 1), ("false positive rate", y == 0)]}
    return cells[kind]


def fairness_rows(name: str, kind: Fairness, groups: np.ndarray, y: np.ndarray, epsilon: float,
                  counts: np.ndarray | None = None) -> list[CountRow]:
    """The rows of a fairness constraint over examples with labels ``y`` (two classes) and group
    labels ``groups``; ``counts`` the examples each row stands for (one each by default). A pair of
    groups one of which has no example in a cell is left out of that cell (its rate is undefined)."""
    counts = np.ones(len(y)) if counts is None else np.asarray(counts, dtype=np.float64)
    positive_sign = 1.0 - 2.0 * y  # p_k = y_k + (1 − 2 y_k) e_k
    rows = []
    for cell, members in cells_of(kind, y):
        sizes = {g: float(counts[members & (groups == g)].sum()) for g in np.unique(groups)}
        for g, h in combinations(sorted(sizes), 2):
            if sizes[g] == 0 or sizes[h] == 0:
                continue
            weight = np.where(members & (groups == g), sizes[h], 0.0) - np.where(members & (groups == h), sizes[g], 0.0)
            weight = weight * counts
            rows.append(CountRow(f"{name} {cell} {g} vs {h}", weight * positive_sign, float(weight @ y),
                                 -epsilon * sizes[g] * sizes[h], epsilon * sizes[g] * sizes[h]))
    return rows


def recall_row(name: str, cls: int, rho: float, y: np.ndarray, counts: np.ndarray | None = None) -> CountRow:
    """Σ_{k: y_k = cls} (1 − e_k) ≥ ρ n_cls, each example counted ``counts[k]`` times."""
    counts = np.ones(len(y)) if counts is None else np.asarray(counts, dtype=np.float64)
    mine = np.where(y == cls, counts, 0.0)
    return CountRow(name, -mine, float(mine.sum()), lower=rho * float(mine.sum()))


def merged_rows(rows: Sequence[CountRow], members: np.ndarray, n_merged: int) -> list[CountRow]:
    """``rows`` over merged examples: row r of the merged problem stands for the examples k with
    ``members[k] == r``, all with the same coefficient in every row (the merge's key includes the
    coefficients), so its coefficient is their sum."""
    result = []
    for row in rows:
        merged = np.zeros(n_merged)
        np.add.at(merged, members, row.coefficients)
        result.append(CountRow(row.name, merged, row.constant, row.lower, row.upper))
    return result


def neuron_rows(rows: Sequence[CountRow], errors_minus: np.ndarray, errors_plus: np.ndarray,
                pivotal: np.ndarray) -> list[CountRow]:
    """``rows`` for a single-neuron step: example k's error is ``errors_minus[k]`` with the neuron's
    sign −1 and ``errors_plus[k]`` with +1, so the rows are linear in the signs u of the examples
    ``pivotal`` (those whose error the sign changes) and constant in the others."""
    result = []
    for row in rows:
        constant = row.value(errors_minus)
        change = row.coefficients[pivotal] * (errors_plus - errors_minus)[pivotal]
        result.append(CountRow(row.name, change, constant, row.lower, row.upper))
    return result


@dataclass(frozen=True)
class Monotone:
    """The score (module docstring) never falls (``increasing``) or never rises as input
    ``input`` grows, for every input."""

    input: int
    increasing: bool
    name: str = ""

    @property
    def direction(self) -> int:
        return 1 if self.increasing else -1


@dataclass(frozen=True)
class Orientations:
    """One orientation (+1 or −1) per hidden neuron of each hidden layer, for one monotone input."""

    layers: tuple[np.ndarray, ...] = field(default=())

    def as_lists(self) -> list[list[int]]:
        return [[int(o) for o in layer] for layer in self.layers]


def depends_on(network: IntegerNetwork, input: int) -> list[np.ndarray]:
    """For every hidden layer, which neurons a path of non-zero weights joins to ``input``."""
    reached = network.weights[0][:, input] != 0
    result = []
    for layer in range(len(network.weights) - 1):
        result.append(reached)
        reached = np.any(network.weights[layer + 1][:, reached] != 0, axis=1)
    return result


def output_coefficients(weights: np.ndarray) -> np.ndarray:
    """Each scored difference's weights: z_c − z_0 for every class c ≥ 1 (rows), from the output
    layer's weight matrix (classes × inputs of the layer)."""
    return weights[1:] - weights[:1]


def monotone_orientations(network: IntegerNetwork, constraint: Monotone) -> Orientations | None:
    """Orientations that prove ``network`` monotone as ``constraint`` says, from its weights alone;
    None when no assignment does (the network may still be monotone, but not by this proof).

    Each condition ties two orientations: a weight w from input i into neuron j says o_j = sign(w),
    a weight w from neuron j into k says o_k = sign(w)·o_j, a scored difference's weight a from the
    last hidden neuron j says o_j = sign(a)·direction; only neurons a path joins to the input take
    part. Parity union-find decides whether they can all hold; a neuron left free takes +1."""
    direction = constraint.direction
    dependent = depends_on(network, constraint.input)
    hidden = network.sizes[1:-1]
    nodes = [(layer, j) for layer, width in enumerate(hidden) for j in range(width)]
    ground = (-1, 0)  # a node whose orientation is +1
    parent = {node: node for node in [ground, *nodes]}
    parity = {node: 1 for node in parent}  # orientation of node = parity · orientation of its root

    def find(node):
        if parent[node] == node:
            return node, 1
        root, sign = find(parent[node])
        parent[node], parity[node] = root, parity[node] * sign
        return root, parity[node]

    def tie(a, b, sign) -> bool:
        """Require orientation(a) = sign · orientation(b); False on a contradiction."""
        (root_a, sign_a), (root_b, sign_b) = find(a), find(b)
        if root_a == root_b:
            return sign_a == sign * sign_b
        parent[root_a], parity[root_a] = root_b, sign_a * sign * sign_b
        return True

    if not hidden:
        return Orientations() if np.all(output_coefficients(network.weights[0])[:, constraint.input] * direction >= 0) \
            else None
    for j in np.flatnonzero(network.weights[0][:, constraint.input]):
        if not tie((0, int(j)), ground, int(np.sign(network.weights[0][j, constraint.input]))):
            return None
    for layer in range(1, len(hidden)):
        w = network.weights[layer]
        for k, j in zip(*np.nonzero((w != 0) & dependent[layer - 1][None, :])):
            if not tie((layer, int(k)), (layer - 1, int(j)), int(np.sign(w[k, j]))):
                return None
    last = len(hidden) - 1
    scored = output_coefficients(network.weights[-1])
    for c, j in zip(*np.nonzero((scored != 0) & dependent[last][None, :])):
        if not tie((last, int(j)), ground, int(np.sign(scored[c, j])) * direction):
            return None
    layers = []
    for layer, width in enumerate(hidden):
        values = []
        for j in range(width):
            root, sign = find((layer, j))
            values.append(sign * (find(ground)[1] if root == find(ground)[0] else 1))
        layers.append(np.array(values, dtype=np.int64))
    return Orientations(tuple(layers))


def voted_orientations(network: IntegerNetwork, constraint: Monotone) -> Orientations:
    """Orientations to hold a network to when it is not monotone yet (the start's repair): each
    first-layer neuron the sign of its weight from the input, each deeper neuron the sign of the
    sum of its weights times the orientations they read (its vote); +1 where nothing decides."""
    layers = []
    previous = None
    for layer in range(len(network.weights) - 1):
        w = network.weights[layer]
        vote = w[:, constraint.input] if layer == 0 else w @ previous
        previous = np.where(vote >= 0, 1, -1)
        layers.append(previous)
    return Orientations(tuple(layers))


def monotone_bounds(bounds: ParameterBounds, constraint: Monotone, orientations: Orientations) -> ParameterBounds:
    """``bounds`` with each parameter the orientations constrain kept to its sign: a first-layer
    weight from the input to o_j's, a weight from neuron j into k to o_j·o_k's, the output
    weights from neuron j (from the input, without a hidden layer) to o_j·direction's for classes
    c ≥ 1 and the opposite for class 0, so every z_c − z_0 moves with the input's direction. Every
    network inside the result is monotone by these orientations; a network that holds them lies
    inside it when it lay inside ``bounds``."""
    lower = [w.copy() for w in bounds.weight_lower]
    upper = [w.copy() for w in bounds.weight_upper]
    direction = constraint.direction

    def keep_sign(layer, rows, column, sign):
        for row, s in zip(np.atleast_1d(rows), np.broadcast_to(sign, np.shape(np.atleast_1d(rows)))):
            if s > 0:
                lower[layer][row, column] = max(lower[layer][row, column], 0)
            else:
                upper[layer][row, column] = min(upper[layer][row, column], 0)

    hidden = orientations.layers
    if not hidden:
        last_sign = {constraint.input: direction}
    else:
        for j, o in enumerate(hidden[0]):
            keep_sign(0, j, constraint.input, o)
        for layer in range(1, len(hidden)):
            for k, o_k in enumerate(hidden[layer]):
                for j, o_j in enumerate(hidden[layer - 1]):
                    keep_sign(layer, k, j, o_k * o_j)
        last_sign = {j: int(o) * direction for j, o in enumerate(hidden[-1])}
    out = len(lower) - 1
    n_classes = lower[out].shape[0]
    for column, sign in last_sign.items():
        keep_sign(out, np.arange(1, n_classes), column, sign)
        keep_sign(out, 0, column, -sign)
    return ParameterBounds(tuple(lower), tuple(upper), bounds.bias_lower, bounds.bias_upper)
