"""Correct-margin: minimise the number of examples not classified with a margin against every
wrong class (intnet's model; the margin against the strongest wrong class of max_correct and BeMi).

Why: sat_margin scores each output neuron separately, so a constant network satisfies C − 1 of every
example's C margins for free and the solver drifts toward one (measured on Adult N = 1,000: local
search cut sat_margin's objective by 65 % while test accuracy fell 2 points). Here an example counts
only if its own class wins, so a constant network scores exactly its training error.

For example k with class y_k and every wrong class c, the difference d_kc = z_{k,y_k} − z_kc:

    o_k = 1   ⇒ d_kc ≥ m        for every c ≠ y_k   :  d_kc ≥ D_kc + (m − D_kc) o_k        (``margin_met``)
    q_kc = 1  ⇒ d_kc ≤ m − δ                         :  d_kc ≤ m − δ + (E_kc − m + δ) (1 − q_kc)  (``margin_missed``)
    o_k + Σ_c q_kc ≥ 1                               (an example without the margin names a class that denies it: ``missed_by``)

    minimise  N − Σ_k o_k                                                                  (``unclassified``)

(each term weighted by n_k, the identical examples row k stands for, when ``problem.weights`` is given).

[D_kc, E_kc] bounds d_kc (interval arithmetic), δ is the grid of z, and m = MARGIN·Ω/2 = Ω/4 on
the raw scale, half of what sat_margin's two per-output margins add up to. The rows make o_k
exactly the indicator of "all margins met" at every integer point, so the solver's objective
equals the numpy count at every incumbent.

With neuron switches m is rescaled as sat_margin's, m(H) = (Σ_j H^{L−1}_j + 1)·P/4, and the rows
compare 4·d_kc with (Σ_j H^{L−1}_j + 1)·P (:mod:`formulations.neuron_switches`).
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation, exact_at_least
from formulations.encoding import grid_of_layer, timed
from formulations.network import IntegerNetwork
from formulations.neuron_switches import margin_test
from formulations.problem import TrainingProblem

MARGIN = 0.5
"""Margin of z_y − z_c on the normalised scale ẑ = 2 z / Ω: z_y − z_c ≥ MARGIN · Ω / 2 on the raw one."""


def margin_differences(output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d_kc = z_{k,y_k} − z_kc (examples × classes; 0 at c = y_k)."""
    return output[np.arange(len(y)), y][:, None] - output


class CorrectMargin(Formulation):
    name = "correct_margin"
    supports_neuron_switches = True
    weighted_examples = True
    margin_from_switches = True

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        self.encode(model, problem)
        output_layer = len(problem.hidden)
        out = model.layer[output_layer]
        lower, upper = model.preactivation_bounds[output_layer]
        y = problem.y
        rows = np.arange(problem.n_examples)
        # d_kc = z_y − z_c lies in [L_y − U_c, U_y − L_c] (the two outputs' boxes are independent bounds).
        d_lower = lower[rows, y][:, None] - upper
        d_upper = upper[rows, y][:, None] - lower
        test = margin_test(model, problem, MARGIN)
        pairs = [(k, c) for k in range(problem.n_examples) for c in range(problem.n_classes) if c != y[k]]
        model.wrong = pyo.Set(initialize=pairs, dimen=2)
        model.classified = pyo.Var(model.examples, domain=pyo.Binary)
        model.denied = pyo.Var(model.wrong, domain=pyo.Binary)

        def difference(k, c):
            return out.preactivation[k, int(y[k])] - out.preactivation[k, c]

        def margin_met(m_, k, c):
            if test.always_met(d_lower[k, c]):
                return pyo.Constraint.Skip
            return test.met_if(difference(k, c), d_lower[k, c], m_.classified[k])

        def margin_missed(m_, k, c):
            if test.never_met(d_upper[k, c]):
                return pyo.Constraint.Skip
            return test.missed_unless(difference(k, c), d_upper[k, c], 1 - m_.denied[k, c])

        def missed_by(m_, k):
            return m_.classified[k] + sum(m_.denied[k, c] for c in range(problem.n_classes) if c != y[k]) >= 1

        for (k, c), var in model.denied.items():
            if test.always_met(d_lower[k, c]):
                var.fix(0)  # this class can never deny the margin
        model.margin_met = pyo.Constraint(model.wrong, rule=timed(margin_met))
        model.margin_missed = pyo.Constraint(model.wrong, rule=timed(margin_missed))
        model.missed_by = pyo.Constraint(model.examples, rule=timed(missed_by))
        counts = problem.example_weights
        model.unclassified = pyo.Objective(
            expr=float(counts.sum()) - pyo.quicksum(float(counts[k]) * met for k, met in model.classified.items()),
            sense=pyo.minimize,
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.set_encoding_values(model, network, problem)
        met = self._margins_met(network.output(problem.x), problem, self.margin_scale(network, problem))
        for k, var in model.classified.items():
            var.set_value(int(met[k].all()))
        for (k, c), var in model.denied.items():
            if not var.fixed:
                var.set_value(int(not met[k, c]))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        met = self._margins_met(network.output(problem.x), problem, self.margin_scale(network, problem))
        return float(problem.example_weights @ ~met.all(axis=1))

    def example_losses(self, output: np.ndarray, problem: TrainingProblem) -> np.ndarray | None:
        """None with neuron switches: the margin then depends on the neurons the network uses."""
        if self.neuron_switches:
            return None
        return ~self._margins_met(output, problem, problem.output_scale).all(axis=1) * problem.example_weights

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        return float(math.floor(target_error * problem.example_weights.sum()))

    @staticmethod
    def _margins_met(output: np.ndarray, problem: TrainingProblem, scale: float) -> np.ndarray:
        """Examples × classes: the margin over class c is met (True at the true class)."""
        d = margin_differences(output, problem.y)
        met = exact_at_least(d, MARGIN * scale / 2, grid_of_layer(len(problem.hidden)))
        met[np.arange(problem.n_examples), problem.y] = True
        return met
