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
fixed variable, and a product with a known sign is the expression ±W instead of a variable.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from formulations.bounds import ParameterBounds, preactivation_bounds, sign_bounds
from formulations.network import INPUT_DECIMALS, IntegerNetwork

FIRST_LAYER_GRID = 10.0**-INPUT_DECIMALS
DEEPER_LAYER_GRID = 1.0


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
        if layer == 0:
            _add_first_preactivation(block, model.examples, x)
        else:
            _add_deeper_preactivation(block, model.layer[layer - 1], model.examples, previous_sign)
        if layer < n_layers - 1:
            lower, upper = z_bounds[layer]
            _add_sign_activation(block, model.examples, lower, upper, grid_of_layer(layer))
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


def _add_first_preactivation(block: pyo.Block, examples: pyo.RangeSet, x: np.ndarray) -> None:
    nonzero = [np.flatnonzero(row) for row in x]

    def rule(b, k, j):
        return sum(float(x[k, i]) * b.weight[j, i] for i in nonzero[k]) + b.bias[j]

    block.preactivation = pyo.Expression(examples, block.outputs, rule=rule)


def _add_deeper_preactivation(
    block: pyo.Block, previous: pyo.Block, examples: pyo.RangeSet, sign: tuple[np.ndarray, np.ndarray]
) -> None:
    """Products with a known sign are ±W; the others get a variable c and the four product rows."""
    sign_lower, sign_upper = sign
    wl, wu = block.weight_bounds
    free = [(k, i) for k in examples for i in block.inputs if sign_lower[k, i] != sign_upper[k, i]]
    block.free_signs = pyo.Set(initialize=free, dimen=2)
    lo = np.minimum(wl, -wu)
    hi = np.maximum(wu, -wl)
    block.product = pyo.Var(
        block.free_signs, block.outputs, bounds=lambda b, k, i, j: (float(lo[j, i]), float(hi[j, i]))
    )
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

    index = (block.free_signs, block.outputs)
    block.product_pos_upper = pyo.Constraint(*index, rule=pos_upper)
    block.product_pos_lower = pyo.Constraint(*index, rule=pos_lower)
    block.product_neg_upper = pyo.Constraint(*index, rule=neg_upper)
    block.product_neg_lower = pyo.Constraint(*index, rule=neg_lower)

    def term(b, k, i, j):
        if sign_lower[k, i] != sign_upper[k, i]:
            return b.product[k, i, j]
        return float(sign_lower[k, i]) * b.weight[j, i]

    def rule(b, k, j):
        return sum(term(b, k, i, j) for i in b.inputs) + b.bias[j]

    block.preactivation = pyo.Expression(examples, block.outputs, rule=rule)


def _add_sign_activation(
    block: pyo.Block, examples: pyo.RangeSet, lower: np.ndarray, upper: np.ndarray, grid: float
) -> None:
    block.sign = pyo.Var(examples, block.outputs, domain=pyo.Binary)
    for (k, j), var in block.sign.items():
        if lower[k, j] >= 0:
            var.fix(1)
        elif upper[k, j] < 0:
            var.fix(0)

    def sign_on(b, k, j):
        if lower[k, j] >= 0 or upper[k, j] < 0:
            return pyo.Constraint.Skip
        return b.preactivation[k, j] >= float(lower[k, j]) * (1 - b.sign[k, j])

    def sign_off(b, k, j):
        if lower[k, j] >= 0 or upper[k, j] < 0:
            return pyo.Constraint.Skip
        return b.preactivation[k, j] <= -grid + (float(upper[k, j]) + grid) * b.sign[k, j]

    block.sign_on = pyo.Constraint(examples, block.outputs, rule=sign_on)
    block.sign_off = pyo.Constraint(examples, block.outputs, rule=sign_off)


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
                if not var.fixed:
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
