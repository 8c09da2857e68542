"""Sat-margin (Thorbjarnarson & Yorke-Smith 2023, docs/method.md §4.4): minimise the number of
(example, output neuron) pairs whose output misses a margin of the correct sign.

With Y_kj = ±1 (+1 for the true class), Ω the output scale (:attr:`TrainingProblem.output_scale`)
and the paper's normalised output ẑ = 2 z / Ω, a pair is satisfied when Y_kj ẑ_kj ≥ 1/2, that is
Y_kj z_kj ≥ τ with τ = Ω / 4. One binary o_kj per pair:

    o_kj = 1 ⇒ Y_kj z_kj ≥ τ'        :  Y z ≥ S_kj + (τ' − S_kj) o            (``margin_met``)
    o_kj = 0 ⇒ Y_kj z_kj ≤ τ' − δ    :  Y z ≤ τ' − δ + (T_kj − τ' + δ) o       (``margin_missed``)

    minimise  N·C − Σ_kj o_kj                                                 (``unsatisfied``)

(each term weighted by n_k, the identical examples row k stands for, when ``problem.weights`` is given).

where τ' is the smallest value on z's grid δ that is ≥ τ and [S_kj, T_kj] bounds Y_kj z_kj. Both
directions are kept (the paper's two indicators), so o is exactly the indicator of the margin and
the solver's objective equals the count recomputed from the weights at every incumbent.

With neuron switches the margin is the paper's rescaled one, τ(H) = (Σ_j H^{L−1}_j + 1)·P/4, and
the two rows compare 4·Y_kj z_kj with (Σ_j H^{L−1}_j + 1)·P instead (:mod:`formulations.neuron_switches`).
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation, exact_at_least
from formulations.encoding import grid_of_layer, signed_output_bounds, timed
from formulations.network import IntegerNetwork
from formulations.neuron_switches import margin_test
from formulations.problem import TrainingProblem

MARGIN = 0.5
"""Margin on the normalised output scale ẑ ∈ [-2, 2], as the paper."""


def margin_threshold(problem: TrainingProblem) -> float:
    """τ = MARGIN · Ω / 2 on the raw output scale."""
    return MARGIN * problem.output_scale / 2


class SatMargin(Formulation):
    name = "sat_margin"
    supports_neuron_switches = True
    weighted_examples = True
    margin_from_switches = True

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        self.encode(model, problem)
        out = model.layer[len(problem.hidden)]
        signs = problem.signed_targets
        s_lower, s_upper = signed_output_bounds(model, signs)
        test = margin_test(model, problem, MARGIN)

        model.satisfied = pyo.Var(model.examples, out.outputs, domain=pyo.Binary)
        for (k, j), var in model.satisfied.items():
            if test.always_met(s_lower[k, j]):
                var.fix(1)
            elif test.never_met(s_upper[k, j]):
                var.fix(0)

        def signed_output(k, j):
            return int(signs[k, j]) * out.preactivation[k, j]

        def margin_met(m, k, j):
            if m.satisfied[k, j].fixed:
                return pyo.Constraint.Skip
            return test.met_if(signed_output(k, j), s_lower[k, j], m.satisfied[k, j])

        def margin_missed(m, k, j):
            if m.satisfied[k, j].fixed:
                return pyo.Constraint.Skip
            return test.missed_unless(signed_output(k, j), s_upper[k, j], m.satisfied[k, j])

        model.margin_met = pyo.Constraint(model.examples, out.outputs, rule=timed(margin_met))
        model.margin_missed = pyo.Constraint(model.examples, out.outputs, rule=timed(margin_missed))
        counts = problem.example_weights
        n_pairs = float(counts.sum()) * problem.n_classes
        model.unsatisfied = pyo.Objective(
            expr=n_pairs - pyo.quicksum(float(counts[k]) * met for (k, _), met in model.satisfied.items()),
            sense=pyo.minimize,
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.set_encoding_values(model, network, problem)
        met = self._margins_met(network.output(problem.x), problem, self.margin_scale(network, problem))
        for (k, j), var in model.satisfied.items():
            if not var.fixed:
                var.set_value(int(met[k, j]))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        met = self._margins_met(network.output(problem.x), problem, self.margin_scale(network, problem))
        return float(problem.example_weights @ np.count_nonzero(~met, axis=1))

    def example_losses(self, output: np.ndarray, problem: TrainingProblem) -> np.ndarray | None:
        """None with neuron switches: the margin then depends on the neurons the network uses."""
        if self.neuron_switches:
            return None
        met = self._margins_met(output, problem, problem.output_scale)
        return np.count_nonzero(~met, axis=1) * problem.example_weights

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """The paper stops once at most target_error·N margins are unsatisfied."""
        return float(math.floor(target_error * problem.example_weights.sum()))

    @staticmethod
    def _margins_met(output: np.ndarray, problem: TrainingProblem, scale: float) -> np.ndarray:
        signed = problem.signed_targets * output
        return exact_at_least(signed, MARGIN * scale / 2, grid_of_layer(len(problem.hidden)))
