"""Min-weight (Toro Icarte et al., CP 2019; docs/method.md §4.1): fit every training example with
as few non-zero parameters as possible.

One binary a per free weight and bias, 1 when the parameter may be non-zero. For a parameter w
with box [lb, ub] (the paper's [−P, P]):

    lb·a ≤ w ≤ ub·a                     (``weight_used_lower/upper``, ``bias_used_lower/upper``)
    Y_kj = +1 ⇒ z_kj ≥ 0,  Y_kj = −1 ⇒ z_kj ≤ −δ        (``fit``: hard, on z's grid δ)

    minimise  Σ a + (number of fixed non-zero parameters)             (``nonzero``)

The reference code writes a ≥ w and a ≥ −w with a binary, which forces |w| ≤ 1: any P > 1
silently became P = 1 (docs/method.md §4.1). Scaling the indicator by the box keeps every value in
[−P, P] reachable. a is bounded from below only, so an incumbent may count a zero parameter
(``exact_incumbents`` is False); at the optimum a = [w ≠ 0].

The lexicographic model's third stage uses the same model with two more hard conditions: margin
floors m̄^l_j for every neuron (u = 1 ⇒ z ≥ m̄, u = 0 ⇒ z ≤ −δ − m̄; on the output Y = +1 ⇒ z ≥ m̄,
Y = −1 ⇒ z ≤ −δ − m̄), and Y_kj z_kj ≥ τ for every example.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation
from formulations.budget import add_all_usage, set_usage_values
from formulations.encoding import (
    add_hidden_margins,
    add_output_confidence,
    add_output_fit,
    encode_network,
    set_network_values,
)
from formulations.max_margin import fits
from formulations.network import IntegerNetwork, nonzero_parameters
from formulations.problem import TrainingProblem


class MinWeight(Formulation):
    name = "min_weight"
    hard = True
    exact_incumbents = False

    def __init__(
        self,
        *,
        margins: Sequence[np.ndarray] | None = None,
        confidence: float | None = None,
        symmetry_breaking: bool = False,
    ) -> None:
        """``margins`` (per layer, per neuron, on each layer's grid) and ``confidence`` are the
        lexicographic model's third stage; None for the paper's model. Per-neuron floors make
        neurons distinguishable, so symmetry breaking must stay off with them."""
        if margins is not None and symmetry_breaking:
            raise ValueError("margin floors differ between neurons: ordering them could cut off the optimum")
        super().__init__(symmetry_breaking=symmetry_breaking)
        self.margins = None if margins is None else [np.asarray(m, dtype=np.float64) for m in margins]
        self.confidence = confidence

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        encode_network(model, problem.x, problem.bounds)
        count = add_all_usage(model)
        signs = problem.signed_targets
        floors = self.margins
        if floors is None:
            add_output_fit(model, signs, lambda j: 0.0)
        else:
            add_hidden_margins(model, lambda layer, j: float(floors[layer][j]), floors[:-1])
            add_output_fit(model, signs, lambda j: float(floors[-1][j]))
        if self.confidence is not None:
            add_output_confidence(model, signs, self.confidence)
        model.nonzero = pyo.Objective(expr=count, sense=pyo.minimize)
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        set_network_values(model, network, problem.x)
        set_usage_values(model, network)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        if not fits(network, problem, self.margins, self.confidence):
            return float("inf")
        return float(nonzero_parameters(network))
