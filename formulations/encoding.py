"""The network encoding every training model shares: integer parameters, sign activations and
weight × activation products, as linear rows with computed big-M constants (HiGHS has no
indicator constraints).

For examples k, layers l (0 = first hidden layer, L-1 = output), neurons j and inputs i:

* parameters  W^l_ji ∈ Z ∩ [lb^l_ji, ub^l_ji],  b^l_j ∈ Z ∩ [lb^l_j, ub^l_j]
* layer 0     z^0_kj = Σ_i x_ki W^0_ji + b^0_j                          (linear: x is data)
* sign        u^l_kj ∈ {0, 1}, s = 2u - 1, for hidden layers:
                  u = 1 ⇒ z ≥ 0 :   z ≥ L_kj (1 - u)                       (``sign_on``)
                  u = 0 ⇒ z ≤ -δ :  z ≤ -δ + (U_kj + δ) u                  (``sign_off``)
              δ is the grid of z: 10^-4 in layer 0 (inputs have 4 decimals, weights are
              integers), 1 deeper (integer sums). So "< 0" is exactly "≤ -δ".
* product     c^l_kij = W^l_ji s^{l-1}_ki for l ≥ 1, four rows (``product_*``):
                  c - W ≤ M_a (1 - u)    c - W ≥ -M_b (1 - u)
                  c + W ≤ M_b u          c + W ≥ -M_a u
              with M_a = max(0, -2 lb), M_b = max(0, 2 ub): u = 1 forces c = W, u = 0 forces
              c = -W, and for a weight box [-P, P] both are the paper's 2P.
* layer l ≥ 1 z^l_kj = Σ_i c^l_kij + b^l_j

L_kj and U_kj come from :mod:`formulations.bounds`. A sign that its bounds already decide is a
fixed variable, a product with a known sign is the expression ±W, a product with a fixed weight w
is the linear w·(2u − 1), and fixed parameters' contributions are summed in numpy. So a model
whose bounds free only a few parameters (a neighbourhood of local search) is as small as its
free part.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pyomo.environ as pyo

from formulations.bounds import ParameterBounds, preactivation_bounds, sign_bounds
from formulations.network import INPUT_DECIMALS, INPUT_SCALE, IntegerNetwork

FIRST_LAYER_GRID = 10.0**-INPUT_DECIMALS
DEEPER_LAYER_GRID = 1.0

_build_deadline: ContextVar[float] = ContextVar("intnet_build_deadline", default=math.inf)


class BuildPastDeadline(Exception):
    """Building a model outlasted the deadline :func:`built_by` set."""


@contextmanager
def built_by(deadline: float) -> Iterator[None]:
    """Models built inside stop with :class:`BuildPastDeadline` once time.perf_counter() passes
    ``deadline``. Checked in the rules of every family of rows that grows with examples × neurons
    (:func:`timed`), not in the index sets and variables built between them: building is the part
    of a solve that no solver limit bounds. Measured on one batch of 720 examples and 200 classes:
    the whole build took 162 s; under a 5 s limit it stopped after 9-11 s."""
    token = _build_deadline.set(deadline)
    try:
        yield
    finally:
        _build_deadline.reset(token)


def timed(rule: Callable) -> Callable:
    """``rule``, raising :class:`BuildPastDeadline` once the :func:`built_by` deadline has passed
    (about 0.1 µs a call, beside Pyomo's tens of µs per row)."""

    def checked(*args):
        if time.perf_counter() > _build_deadline.get():
            raise BuildPastDeadline
        return rule(*args)

    return checked


TIMED_ROWS = 4096
"""Rows of an index converted and checked against the deadline at a time (a few ms of Pyomo)."""


def timed_rows(rows: np.ndarray) -> Iterator[tuple[int, ...]]:
    """The rows of an integer array as tuples of ints, raising :class:`BuildPastDeadline` once the
    :func:`built_by` deadline has passed: the index of a family of variables that grows with
    examples × neurons × outputs, which Pyomo builds before any rule runs (measured: the 1.15
    million products of 720 examples, 16 neurons and 100 classes took 3 s to index and 9 s to
    create, and a build under a 5 s limit stopped after 10 s)."""
    deadline = _build_deadline.get()
    for first in range(0, len(rows), TIMED_ROWS):
        if time.perf_counter() > deadline:
            raise BuildPastDeadline
        yield from map(tuple, rows[first:first + TIMED_ROWS].tolist())


def grid_of_layer(layer: int) -> float:
    """Spacing of the values a pre-activation of ``layer`` can take."""
    return FIRST_LAYER_GRID if layer == 0 else DEEPER_LAYER_GRID


def encode_network(model: pyo.Block, x: np.ndarray, bounds: ParameterBounds) -> None:
    """Add the network of ``bounds``' architecture over inputs ``x`` to ``model``.

    Adds ``model.layer[l]`` blocks holding ``weight``, ``bias``, ``preactivation`` and, for hidden
    layers, ``sign`` (the binary u); the numpy bounds of every pre-activation are kept on
    ``model.preactivation_bounds`` for the output constraints of each formulation.
    """
    n_layers = len(bounds.weight_lower)
    n_examples = x.shape[0]
    z_bounds = preactivation_bounds(x, bounds)
    model.preactivation_bounds = z_bounds
    model.examples = pyo.RangeSet(0, n_examples - 1)
    model.layer = pyo.Block(range(n_layers))
    previous_sign: tuple[np.ndarray, np.ndarray] | None = None
    for layer in range(n_layers):
        block = model.layer[layer]
        _add_parameters(block, bounds, layer)
        lower, upper = z_bounds[layer]
        if layer < n_layers - 1:
            # Only a sign its bounds leave open needs a pre-activation, a binary and two rows.
            open_signs = [(int(k), int(j)) for k, j in zip(*np.nonzero((lower < 0) & (upper >= 0)))]
            block.open_signs = pyo.Set(initialize=open_signs, dimen=2)
            index = block.open_signs
        else:
            index = pyo.Set(initialize=[(k, j) for k in range(n_examples) for j in range(upper.shape[1])], dimen=2)
            block.all_outputs = index
        if layer == 0:
            _add_first_preactivation(block, index, x)
        else:
            _add_deeper_preactivation(block, model.layer[layer - 1], index, previous_sign)
        if layer < n_layers - 1:
            add_sign_activation(block, lower, upper, grid_of_layer(layer))
            previous_sign = sign_bounds(lower, upper)


def _add_parameters(block: pyo.Block, bounds: ParameterBounds, layer: int) -> None:
    wl, wu = bounds.weight_lower[layer], bounds.weight_upper[layer]
    bl, bu = bounds.bias_lower[layer], bounds.bias_upper[layer]
    n_out, n_in = wl.shape
    block.outputs = pyo.RangeSet(0, n_out - 1)
    block.inputs = pyo.RangeSet(0, n_in - 1)
    block.weight = pyo.Var(
        block.outputs, block.inputs, domain=pyo.Integers,
        bounds=lambda b, j, i: (int(wl[j, i]), int(wu[j, i])),
    )
    block.bias = pyo.Var(block.outputs, domain=pyo.Integers, bounds=lambda b, j: (int(bl[j]), int(bu[j])))
    for (j, i), var in block.weight.items():
        if wl[j, i] == wu[j, i]:
            var.fix(int(wl[j, i]))
    for j, var in block.bias.items():
        if bl[j] == bu[j]:
            var.fix(int(bl[j]))
    block.weight_bounds = (wl, wu)
    block.bias_bounds = (bl, bu)


def _add_first_preactivation(block: pyo.Block, index: pyo.Set, x: np.ndarray) -> None:
    """z_kj = Σ_i x_ki W_ji + b_j, with the fixed parameters' part summed exactly in numpy: a
    neighbourhood that frees few parameters gets a small model, not one full of fixed terms."""
    wl, wu = block.weight_bounds
    bl, bu = block.bias_bounds
    fixed_w, fixed_b = wl == wu, bl == bu
    x_int = np.rint(x * INPUT_SCALE)
    constant = (x_int @ np.where(fixed_w, wl, 0).T + INPUT_SCALE * np.where(fixed_b, bl, 0)) / INPUT_SCALE
    free = ~fixed_w

    def rule(b, k, j):
        terms = (i for i in np.flatnonzero(x[k]) if free[j, i])
        expr = float(constant[k, j]) + sum(float(x[k, i]) * b.weight[j, i] for i in terms)
        return expr if fixed_b[j] else expr + b.bias[j]

    block.preactivation = pyo.Expression(index, rule=timed(rule))


def _add_deeper_preactivation(
    block: pyo.Block, previous: pyo.Block, index: pyo.Set, sign: tuple[np.ndarray, np.ndarray]
) -> None:
    """z_kj = Σ_i W_ji s_ki + b_j, each product written as simply as its parts allow:
    known sign and fixed weight, a constant; known sign, ±W; fixed weight w, the linear
    w·(2u − 1); both free, a variable c with the four product rows."""
    sign_lower, sign_upper = sign
    wl, wu = block.weight_bounds
    bl, bu = block.bias_bounds
    fixed_w, fixed_b = wl == wu, bl == bu
    free_sign = sign_lower != sign_upper
    known = np.where(free_sign, 0, sign_lower).astype(np.float64)
    constant = known @ np.where(fixed_w, wl, 0).T + np.where(fixed_b, bl, 0)
    # (k, i, j) where sign k, i and weight j, i are free, in that order (numpy's)
    products = np.argwhere(free_sign[:, :, None] & ~fixed_w.T[None, :, :])
    block.free_products = pyo.Set(initialize=timed_rows(products), dimen=3)
    lo, hi = np.minimum(wl, -wu), np.maximum(wu, -wl)
    # Made as the product rows (whose rules watch the deadline) first use them, not all at once
    # before (2.4 s for those 1.15 million, past the deadline).
    block.product = pyo.Var(block.free_products, dense=False,
                            bounds=timed(lambda b, k, i, j: (float(lo[j, i]), float(hi[j, i]))))
    big_a = np.maximum(0, -2 * wl)
    big_b = np.maximum(0, 2 * wu)
    u = previous.sign

    def pos_upper(b, k, i, j):
        return b.product[k, i, j] - b.weight[j, i] <= float(big_a[j, i]) * (1 - u[k, i])

    def pos_lower(b, k, i, j):
        return b.product[k, i, j] - b.weight[j, i] >= -float(big_b[j, i]) * (1 - u[k, i])

    def neg_upper(b, k, i, j):
        return b.product[k, i, j] + b.weight[j, i] <= float(big_b[j, i]) * u[k, i]

    def neg_lower(b, k, i, j):
        return b.product[k, i, j] + b.weight[j, i] >= -float(big_a[j, i]) * u[k, i]

    block.product_pos_upper = pyo.Constraint(block.free_products, rule=timed(pos_upper))
    block.product_pos_lower = pyo.Constraint(block.free_products, rule=timed(pos_lower))
    block.product_neg_upper = pyo.Constraint(block.free_products, rule=timed(neg_upper))
    block.product_neg_lower = pyo.Constraint(block.free_products, rule=timed(neg_lower))

    def term(b, k, i, j):
        if not free_sign[k, i]:
            return float(sign_lower[k, i]) * b.weight[j, i]
        if fixed_w[j, i]:
            return float(wl[j, i]) * (2 * u[k, i] - 1)
        return b.product[k, i, j]

    def rule(b, k, j):
        expr = float(constant[k, j]) + sum(
            term(b, k, i, j) for i in b.inputs if free_sign[k, i] or not fixed_w[j, i]
        )
        return expr if fixed_b[j] else expr + b.bias[j]

    block.preactivation = pyo.Expression(index, rule=timed(rule))


def add_sign_activation(block: pyo.Block, lower: np.ndarray, upper: np.ndarray, grid: float) -> None:
    """The binary u of every sign in ``block.open_signs`` (those its bounds leave open; a decided
    sign is a constant instead) and its two rows, over ``block.preactivation``."""
    block.sign = pyo.Var(block.open_signs, domain=pyo.Binary)

    def sign_on(b, k, j):
        return b.preactivation[k, j] >= float(lower[k, j]) * (1 - b.sign[k, j])

    def sign_off(b, k, j):
        return b.preactivation[k, j] <= -grid + (float(upper[k, j]) + grid) * b.sign[k, j]

    block.sign_on = pyo.Constraint(block.open_signs, rule=timed(sign_on))
    block.sign_off = pyo.Constraint(block.open_signs, rule=timed(sign_off))


def set_network_values(model: pyo.Block, network: IntegerNetwork, x: np.ndarray) -> None:
    """Give every encoding variable the value ``network`` implies on inputs ``x`` (a MIP start)."""
    z = network.preactivations(x)
    for layer, block in model.layer.items():
        for (j, i), var in block.weight.items():
            if not var.fixed:
                var.set_value(int(network.weights[layer][j, i]))
        for j, var in block.bias.items():
            if not var.fixed:
                var.set_value(int(network.biases[layer][j]))
        if hasattr(block, "sign"):
            for (k, j), var in block.sign.items():
                var.set_value(1 if z[layer][k, j] >= 0 else 0)
        if hasattr(block, "product"):
            sign = np.where(z[layer - 1] >= 0, 1, -1)
            for (k, i, j), var in block.product.items():
                var.set_value(float(network.weights[layer][j, i] * sign[k, i]))


def extract_network(model: pyo.Block, P: int) -> IntegerNetwork:
    """The integer parameters of a solved model (rounded: the solver's integers carry tolerance)."""
    weights, biases = [], []
    for block in model.layer.values():
        w = np.zeros((len(block.outputs), len(block.inputs)), dtype=np.int64)
        for (j, i), var in block.weight.items():
            w[j, i] = round(pyo.value(var))
        weights.append(w)
        biases.append(np.array([round(pyo.value(block.bias[j])) for j in block.outputs], dtype=np.int64))
    return IntegerNetwork(weights=tuple(weights), biases=tuple(biases), P=P)


def signed_output_bounds(model: pyo.Block, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds [S_kj, T_kj] of Y_kj·z_kj on the output layer: a sign flip swaps and negates the interval."""
    lower, upper = model.preactivation_bounds[-1]
    return np.where(signs > 0, lower, -upper), np.where(signs > 0, upper, -lower)


def on_grid_at_least(value: float, grid: float) -> float:
    """The smallest value on a grid of spacing ``grid`` that is >= ``value``."""
    return math.ceil(value / grid - 1e-9) * grid


def add_hidden_margins(
    model: pyo.Block, margin: Callable[[int, int], pyo.Var | float], largest: list[np.ndarray]
) -> None:
    """Sign activations that keep a margin m^l_j from zero, for every hidden layer l:

        u = 1 ⇒ z ≥ m :        z ≥ m − (m̄ − L_kj)(1 − u)              (``margin_on``)
        u = 0 ⇒ z ≤ −δ − m :   z ≤ −δ − m + (U_kj + δ + m̄) u           (``margin_off``)

    where m = ``margin(l, j)`` is a variable or a constant no larger than m̄ = ``largest[l][j]``. A
    sign its bounds decide keeps only the row of its side; the encoding's plain sign rows stay
    (they are the case m = 0, implied here, and cost HiGHS nothing to drop)."""
    for layer in range(len(model.layer) - 1):
        block = model.layer[layer]
        lower, upper = model.preactivation_bounds[layer]
        grid = grid_of_layer(layer)
        top = largest[layer]

        def margin_on(b, k, j, layer=layer, lower=lower, upper=upper, top=top):
            if upper[k, j] < 0:
                return pyo.Constraint.Skip
            slack = float(top[j]) - float(lower[k, j])
            return b.preactivation[k, j] >= margin(layer, j) - slack * (1 - b.sign[k, j])

        def margin_off(b, k, j, layer=layer, lower=lower, upper=upper, top=top, grid=grid):
            if lower[k, j] >= 0:
                return pyo.Constraint.Skip
            slack = float(upper[k, j]) + grid + float(top[j])
            return b.preactivation[k, j] <= -grid - margin(layer, j) + slack * b.sign[k, j]

        block.margin_on = pyo.Constraint(model.examples, block.outputs, rule=timed(margin_on))
        block.margin_off = pyo.Constraint(model.examples, block.outputs, rule=timed(margin_off))


def add_output_fit(model: pyo.Block, signs: np.ndarray, margin: Callable[[int], pyo.Var | float]) -> None:
    """Every example fitted, each output neuron j with margin m_j = ``margin(j)``:

        Y_kj = +1 ⇒ z_kj ≥ m_j,    Y_kj = −1 ⇒ z_kj ≤ −δ − m_j                    (``fit``)

    Hard rows, no binary: with m_j = 0 this is the output of Icarte et al.'s models on z's grid."""
    output_layer = len(model.layer) - 1
    out = model.layer[output_layer]
    grid = grid_of_layer(output_layer)

    def fit(m, k, j):
        if signs[k, j] > 0:
            return out.preactivation[k, j] >= margin(j)
        return out.preactivation[k, j] <= -grid - margin(j)

    model.fit = pyo.Constraint(model.examples, out.outputs, rule=timed(fit))


def add_output_confidence(model: pyo.Block, signs: np.ndarray, threshold: float) -> None:
    """Y_kj z_kj ≥ τ for every example and output neuron (``confident``), τ on z's grid."""
    out = model.layer[len(model.layer) - 1]

    def confident(m, k, j):
        return int(signs[k, j]) * out.preactivation[k, j] >= threshold

    model.confident = pyo.Constraint(model.examples, out.outputs, rule=timed(confident))


def interchangeable_neurons(bounds: ParameterBounds, layer: int) -> list[list[int]]:
    """Groups of neurons of hidden ``layer`` whose incoming weights, bias and outgoing weights have
    identical boxes. Swapping two neurons of a group (rows of W^l and b^l, columns of W^{l+1})
    maps the box onto itself and keeps the network's function, so ordering a group loses nothing.
    Only groups of two or more are returned."""
    groups: dict[tuple, list[int]] = {}
    for j in range(bounds.weight_lower[layer].shape[0]):
        key = (
            bounds.weight_lower[layer][j].tobytes(), bounds.weight_upper[layer][j].tobytes(),
            int(bounds.bias_lower[layer][j]), int(bounds.bias_upper[layer][j]),
            bounds.weight_lower[layer + 1][:, j].tobytes(), bounds.weight_upper[layer + 1][:, j].tobytes(),
        )
        groups.setdefault(key, []).append(j)
    return [group for group in groups.values() if len(group) > 1]


def add_neuron_order(model: pyo.Block, bounds: ParameterBounds) -> None:
    """Symmetry breaking: within every group of interchangeable hidden neurons (same layer, same
    boxes), biases do not increase,

        b^l_j ≥ b^l_j'  for consecutive members j < j' of a group              (``neuron_order``)

    Every network has a permuted twin with the same function that satisfies this
    (:func:`order_hidden_neurons`), so no objective value is lost."""
    for layer in range(len(model.layer) - 1):
        pairs = [
            (group[a], group[a + 1])
            for group in interchangeable_neurons(bounds, layer)
            for a in range(len(group) - 1)
        ]
        block = model.layer[layer]
        block.neuron_pairs = pyo.Set(initialize=pairs, dimen=2)
        block.neuron_order = pyo.Constraint(
            block.neuron_pairs, rule=lambda b, j, nxt: b.bias[j] >= b.bias[nxt]
        )


def permute_hidden(network: IntegerNetwork, layer: int, order: np.ndarray) -> IntegerNetwork:
    """The network whose neuron j of hidden ``layer`` is neuron order[j] of ``network``: rows of
    W^l and b^l and columns of W^{l+1} move together, so every output is unchanged."""
    weights, biases = list(network.weights), list(network.biases)
    weights[layer] = weights[layer][order]
    biases[layer] = biases[layer][order]
    weights[layer + 1] = weights[layer + 1][:, order]
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


def order_hidden_neurons(network: IntegerNetwork, bounds: ParameterBounds) -> IntegerNetwork:
    """``network`` with the neurons of each interchangeable group sorted by bias, largest first
    (stable, so an ordered network is returned unchanged): it satisfies :func:`add_neuron_order`
    and computes the same function. Layers are sorted first to last; sorting layer l moves only
    columns of W^{l+1}, never b^{l+1}, so later sorts keep earlier ones."""
    for layer in range(len(network.weights) - 1):
        order = np.arange(network.weights[layer].shape[0])
        for group in interchangeable_neurons(bounds, layer):
            members = np.array(group)
            order[members] = members[np.argsort(-network.biases[layer][members], kind="stable")]
        network = permute_hidden(network, layer, order)
    return network


def add_count_rows(model: pyo.Block, rows, indicators) -> None:
    """Counting constraints lower ≤ constant + Σ_k a_k·indicator_k ≤ upper
    (:class:`formulations.constraints.CountRow`, ``count_rows``) over a model's 0/1 outcome
    ``indicators`` (a Pyomo indexed component, or numbers for outcomes the model has decided)."""
    if not rows:
        return

    def row(m, r):
        spec = rows[r]
        terms = [float(a) * indicators[k] for k, a in enumerate(spec.coefficients) if a != 0]
        expr = float(spec.constant) + pyo.quicksum(terms)
        lower = None if math.isinf(spec.lower) else float(spec.lower)
        upper = None if math.isinf(spec.upper) else float(spec.upper)
        return (lower, expr, upper)

    model.count_rows = pyo.Constraint(range(len(rows)), rule=row)

