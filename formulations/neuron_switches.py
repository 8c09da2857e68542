"""Neuron switches (Thorbjarnarson & Yorke-Smith 2023, docs/method.md §6): the MIP chooses the
network's width as well as its weights.

One binary H^l_j per neuron j of hidden layer l (``switch``). H = 0 switches the neuron off: its
incoming weights W^l_ji, its bias b^l_j and its outgoing weights W^{l+1}_nj are 0. For each such
parameter θ with box [lb, ub] ∋ 0:

    θ ≤ ub·H  (if ub > 0),    θ ≥ lb·H  (if lb < 0)
                    (``incoming_off_*``, ``bias_off_*``, ``outgoing_off_*``; ``*`` = upper, lower)

linear rows as tight as the box: the paper's indicators H = 0 ⇒ θ = 0, and −P·H ≤ θ ≤ P·H for the
full box. A parameter fixed at 0 needs no row. A neuron with a parameter whose box excludes 0 (a
weight pinned at a non-zero value) cannot be switched off: its H is fixed at 1. The last hidden
layer keeps at least as many neurons as there are classes, as the paper's:

    Σ_j H^{L−1}_j ≥ min(C, n_{L−1})                                         (``keep_classes``)

and ``neurons_on`` = Σ_{l,j} H^l_j is what a penalty counts. A switched-off neuron still has a
sign (z = 0 gives +1), but every weight reading it is 0.

Counting in numpy (:func:`neurons_on`): the MIP must switch on every *active* neuron (one with a
non-zero parameter, :func:`~formulations.network.active_neurons`) and, on the last hidden layer,
at least min(C, n_{L−1}) neurons; it need switch on no more. At an optimum Σ H is that count; an
incumbent may keep a neuron on with all its parameters 0 and so count more.

Margins on the switched-on neurons (:func:`margin_test`). sat_margin and correct_margin compare
an output value v (Y_kj z_kj, or z_{k,y_k} − z_kc) with τ = MARGIN·Ω/2, where Ω = (n_{L−1} + 1)·P
is the largest |z|. With switches the paper counts only the neurons switched on,
Ω(H) = (Σ_j H^{L−1}_j + 1)·P, so the margin means the same on the normalised output ẑ = 2z/Ω
whatever the width. Write τ(H) = c·(Σ_j H^{L−1}_j + 1)/s with c/s = MARGIN·P/2 in lowest terms
(P/4 for MARGIN = ½ and odd P). Behind a hidden layer v is an integer, so

    v ≥ τ(H)  ⇔  s·v − c·(ΣH + 1) ≥ 0,        v < τ(H)  ⇔  s·v − c·(ΣH + 1) ≤ −1

are exact, and the models' big-M rows stay linear: they take the threshold's range from the range
of Σ H instead of one value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pyomo.environ as pyo

from formulations.bounds import ParameterBounds
from formulations.encoding import grid_of_layer, on_grid_at_least
from formulations.network import IntegerNetwork, active_neurons
from formulations.problem import TrainingProblem


def fewest_on(width: int, n_classes: int) -> int:
    """The neurons the last hidden layer keeps at least: as many as there are classes."""
    return min(n_classes, width)


def add_neuron_switches(model: pyo.Block, bounds: ParameterBounds) -> None:
    """A switch per hidden neuron on ``model.layer[l].switch``, its rows, ``keep_classes`` and the
    count ``model.neurons_on``, over the encoding :func:`formulations.encoding.encode_network` built."""
    n_layers = len(bounds.weight_lower)
    if n_layers < 2:
        model.neurons_on = pyo.Expression(expr=0)
        return
    for layer in range(n_layers - 1):
        block, following = model.layer[layer], model.layer[layer + 1]
        block.switch = pyo.Var(block.outputs, domain=pyo.Binary)
        for j in np.flatnonzero(_cannot_switch_off(bounds, layer)):
            block.switch[int(j)].fix(1)
        _add_off_rows(block, "incoming", block.weight, *block.weight_bounds, lambda j, i: j, dimen=2)
        _add_off_rows(block, "bias", block.bias, *block.bias_bounds, lambda j: j, dimen=1)
        _add_off_rows(block, "outgoing", following.weight, *following.weight_bounds, lambda n, j: j, dimen=2)
    last = model.layer[n_layers - 2]
    n_classes = bounds.sizes[-1]
    model.keep_classes = pyo.Constraint(
        expr=pyo.quicksum(last.switch.values()) >= fewest_on(len(last.outputs), n_classes)
    )
    model.neurons_on = pyo.Expression(
        expr=pyo.quicksum(var for layer in range(n_layers - 1) for var in model.layer[layer].switch.values())
    )


def _cannot_switch_off(bounds: ParameterBounds, layer: int) -> np.ndarray:
    """Neurons of hidden ``layer`` with an incoming weight, bias or outgoing weight whose box excludes 0."""
    def excludes_zero(lower, upper):
        return (lower > 0) | (upper < 0)

    return (
        excludes_zero(bounds.weight_lower[layer], bounds.weight_upper[layer]).any(axis=1)
        | excludes_zero(bounds.bias_lower[layer], bounds.bias_upper[layer])
        | excludes_zero(bounds.weight_lower[layer + 1], bounds.weight_upper[layer + 1]).any(axis=0)
    )


def _add_off_rows(
    block: pyo.Block, name: str, parameter: pyo.Var, lower: np.ndarray, upper: np.ndarray,
    neuron_of: Callable[..., int], dimen: int,
) -> None:
    """θ ≤ ub·H and θ ≥ lb·H for every free parameter θ of a neuron that can be switched off;
    ``neuron_of(*key)`` names the neuron of ``block`` the parameter ``parameter[key]`` belongs to."""
    switch = block.switch

    def free(key) -> bool:
        index = key if dimen > 1 else (key,)
        return lower[key] < upper[key] and not switch[neuron_of(*index)].fixed

    keys = [key for key in parameter if free(key)]
    index = pyo.Set(initialize=keys, dimen=dimen)
    block.add_component(f"{name}_switchable", index)

    def upper_row(b, *key):
        theta = key if dimen > 1 else key[0]
        if upper[theta] <= 0:
            return pyo.Constraint.Skip
        return parameter[theta] <= float(upper[theta]) * switch[neuron_of(*key)]

    def lower_row(b, *key):
        theta = key if dimen > 1 else key[0]
        if lower[theta] >= 0:
            return pyo.Constraint.Skip
        return parameter[theta] >= float(lower[theta]) * switch[neuron_of(*key)]

    block.add_component(f"{name}_off_upper", pyo.Constraint(index, rule=upper_row))
    block.add_component(f"{name}_off_lower", pyo.Constraint(index, rule=lower_row))


def switched_on(network: IntegerNetwork) -> list[np.ndarray]:
    """Per hidden layer, the neurons the MIP switches on for ``network`` at the fewest: the active
    ones, and on the last hidden layer the first inactive ones too until it has min(C, n_{L−1})."""
    masks = active_neurons(network)
    if masks:
        last = masks[-1]
        missing = fewest_on(len(last), network.sizes[-1]) - int(last.sum())
        if missing > 0:
            last[np.flatnonzero(~last)[:missing]] = True
    return masks


def neurons_on(network: IntegerNetwork) -> list[int]:
    """How many neurons of each hidden layer the MIP must switch on for ``network``."""
    return [int(mask.sum()) for mask in switched_on(network)]


def set_switch_values(model: pyo.Block, network: IntegerNetwork) -> None:
    """Switches as :func:`switched_on` sets them: with the encoding's values, a feasible start."""
    for layer, mask in enumerate(switched_on(network)):
        for j, var in model.layer[layer].switch.items():
            if not var.fixed:
                var.set_value(int(mask[j]))


def switched_output_scale(network: IntegerNetwork, problem: TrainingProblem) -> float:
    """Ω(H) for ``network`` at the fewest switches: (neurons on in the last hidden layer + 1)·P;
    the problem's Ω without a hidden layer."""
    if not problem.hidden:
        return problem.output_scale
    return float((neurons_on(network)[-1] + 1) * problem.P)


@dataclass(frozen=True)
class MarginTest:
    """"v ≥ τ" for output values v, exactly, as  scale·v − threshold ≥ 0, and "v < τ" as
    scale·v − threshold ≤ −step. ``threshold`` is a constant or linear in the switches, with range
    [lowest, highest]."""

    scale: float
    threshold: Any
    lowest: float
    highest: float
    step: float

    def always_met(self, value_lower: float) -> bool:
        """Every v ≥ ``value_lower`` meets the margin, whatever the switches."""
        return self.scale * value_lower >= self.highest

    def never_met(self, value_upper: float) -> bool:
        """No v ≤ ``value_upper`` meets the margin, whatever the switches."""
        return self.scale * value_upper < self.lowest

    def met_if(self, value: Any, value_lower: float, indicator: Any) -> Any:
        """indicator = 1 ⇒ v ≥ τ:   s·v − t ≥ (s·V_lo − t_max)(1 − indicator)."""
        big_m = self.scale * float(value_lower) - self.highest
        return self.scale * value - self.threshold >= big_m * (1 - indicator)

    def missed_unless(self, value: Any, value_upper: float, indicator: Any) -> Any:
        """indicator = 0 ⇒ v < τ:   s·v − t ≤ −step + (s·V_hi − t_min + step)·indicator."""
        big_m = self.scale * float(value_upper) - self.lowest + self.step
        return self.scale * value - self.threshold <= -self.step + big_m * indicator


def margin_test(model: pyo.Block, problem: TrainingProblem, margin: float) -> MarginTest:
    """v ≥ τ with τ = margin·Ω/2 for the output values of ``model``: Ω the problem's (τ rounded up
    to the output's grid) when the last hidden layer has no switches, else Ω(H)."""
    output_layer = len(problem.hidden)
    grid = grid_of_layer(output_layer)
    if not problem.hidden or not hasattr(model.layer[output_layer - 1], "switch"):
        tau = on_grid_at_least(margin * problem.output_scale / 2, grid)
        return MarginTest(scale=1.0, threshold=tau, lowest=tau, highest=tau, step=grid)
    last = model.layer[output_layer - 1]
    per_neuron = Fraction(margin).limit_denominator() * problem.P / 2
    width = len(last.outputs)
    # A fixed switch is fixed at 1 (a neuron that cannot be switched off).
    fewest = max(fewest_on(width, problem.n_classes), sum(var.fixed for var in last.switch.values()))
    c = per_neuron.numerator
    return MarginTest(
        scale=float(per_neuron.denominator),
        threshold=c * (pyo.quicksum(last.switch.values()) + 1),
        lowest=float(c * (fewest + 1)),
        highest=float(c * (width + 1)),
        step=1.0,
    )
