"""Max-margin (Toro Icarte et al., CP 2019; docs/method.md §4.2): fit every training example and
maximise the sum over all neurons of how far each one's pre-activations stay from zero.

One margin m^l_j ≥ 0 per neuron, shared by all examples. With δ the grid of z (10^-4 in the first
layer, 1 deeper), u the sign binaries of the encoding and Y_kj = ±1:

    hidden   u = 1 ⇒ z ≥ m,   u = 0 ⇒ z ≤ −δ − m                 (``margin_on``, ``margin_off``)
    output   Y_kj = +1 ⇒ z_kj ≥ m_j,   Y_kj = −1 ⇒ z_kj ≤ −δ − m_j     (``fit``: hard)
    [stage 2 of the lexicographic model only:  Y_kj z_kj ≥ τ       (``confident``)]

    minimise  −Σ_{l,j} m^l_j                                           (``negative_margin_sum``)

The objective is negated because every intnet model minimises; the margins are those of the paper.
A margin is bounded by its neuron's pre-activation bounds, m^l_j ≤ m̄^l_j = min_k max(U_kj, −δ − L_kj)
(hidden) or min_k (U_kj if Y_kj = +1 else −δ − L_kj) (output), which is also the big-M the margin
rows need. m is bounded on one side only, so an incumbent's margins may sit below the network's
(``exact_incumbents`` is False); at the optimum they are the network's.

The paper's indicators ``u = 0 ⇒ z ≤ −ε − m`` use ε = 10^-4 at every layer; δ is exact on each
layer's grid (a deeper pre-activation is an integer, so "< 0" is "≤ −1").
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation, exact_at_least
from formulations.encoding import (
    add_hidden_margins,
    add_output_confidence,
    add_output_fit,
    encode_network,
    grid_of_layer,
    set_network_values,
)
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem


def neuron_margins(network: IntegerNetwork, problem: TrainingProblem) -> list[np.ndarray]:
    """m^l_j of ``network``, per layer: how far neuron j's pre-activations stay on their side,

        hidden  m_j = min_k (z_kj if z_kj ≥ 0 else −δ − z_kj)        (≥ 0 always)
        output  m_j = min_k (z_kj if Y_kj = +1 else −δ − z_kj)       (< 0: an example is not fitted)

    snapped to the layer's grid so that the values compare exactly."""
    signs = problem.signed_targets
    margins = []
    for layer, z in enumerate(network.preactivations(problem.x)):
        grid = grid_of_layer(layer)
        on_side = z >= 0 if layer < len(problem.hidden) else signs > 0
        distance = np.where(on_side, z, -grid - z)
        margins.append(np.rint(distance.min(axis=0) / grid) * grid)
    return margins


def fits(
    network: IntegerNetwork,
    problem: TrainingProblem,
    floors: list[np.ndarray] | None = None,
    confidence: float | None = None,
) -> bool:
    """Whether ``network`` meets the hard rows: every neuron's margin at least its floor (0 on the
    output when no floors are given: every example fitted) and, given ``confidence``, every
    Y_kj z_kj ≥ confidence."""
    margins = neuron_margins(network, problem)
    floors = floors if floors is not None else [np.zeros_like(m) for m in margins]
    for layer, (margin, floor) in enumerate(zip(margins, floors)):
        if not exact_at_least(margin, floor, grid_of_layer(layer)).all():
            return False
    if confidence is None:
        return True
    signed = problem.signed_targets * network.output(problem.x)
    return bool(exact_at_least(signed, confidence, grid_of_layer(len(problem.hidden))).all())


def margin_upper_bounds(model: pyo.ConcreteModel, signs: np.ndarray) -> list[np.ndarray]:
    """m̄^l_j: the largest margin each neuron can have given its pre-activation bounds (0 where the
    output bounds already rule out fitting some example: the ``fit`` rows then prove infeasibility)."""
    bounds = model.preactivation_bounds
    output_layer = len(bounds) - 1
    largest = []
    for layer, (lower, upper) in enumerate(bounds):
        grid = grid_of_layer(layer)
        if layer < output_layer:
            on_side = np.maximum(upper, -grid - lower)
        else:
            on_side = np.where(signs > 0, upper, -grid - lower)
        largest.append(np.maximum(on_side.min(axis=0), 0.0))
    return largest


class MaxMargin(Formulation):
    name = "max_margin"
    hard = True
    exact_incumbents = False

    def __init__(self, *, confidence: float | None = None, symmetry_breaking: bool = False) -> None:
        """``confidence``: the lexicographic model's second stage keeps Y_kj z_kj ≥ confidence for
        every example (the confidence it was classified with in stage one); None for the paper's model."""
        super().__init__(symmetry_breaking=symmetry_breaking)
        self.confidence = confidence

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        encode_network(model, problem.x, problem.bounds)
        signs = problem.signed_targets
        output_layer = len(problem.hidden)
        largest = margin_upper_bounds(model, signs)
        model.neurons = pyo.Set(
            initialize=[(layer, j) for layer, top in enumerate(largest) for j in range(len(top))], dimen=2
        )
        model.margin = pyo.Var(model.neurons, bounds=lambda m, layer, j: (0.0, float(largest[layer][j])))
        add_hidden_margins(model, lambda layer, j: model.margin[layer, j], largest)
        add_output_fit(model, signs, lambda j: model.margin[output_layer, j])
        if self.confidence is not None:
            add_output_confidence(model, signs, self.confidence)
        model.negative_margin_sum = pyo.Objective(expr=-pyo.quicksum(model.margin.values()), sense=pyo.minimize)
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        set_network_values(model, network, problem.x)
        for layer, margins in enumerate(neuron_margins(network, problem)):
            for j, value in enumerate(margins):
                model.margin[layer, j].set_value(float(value))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        if not fits(network, problem, confidence=self.confidence):
            return float("inf")
        return -float(sum(m.sum() for m in neuron_margins(network, problem)))
