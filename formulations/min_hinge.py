"""Min-hinge (Thorbjarnarson & Yorke-Smith 2023, docs/method.md §4.5): minimise the squared hinge
loss of the normalised outputs, as an exact convex epigraph.

With Ω the output scale and o_kj = Y_kj ẑ_kj = 2 Y_kj z_kj / Ω, the paper's loss is
h(o) = max(0, ½ − o)², taken piecewise linear: f interpolates h between breakpoints o = s/Ω,
s ∈ ℤ (the paper's spacing; in raw units a breakpoint every half unit of z). f is convex and it is
minimised, so it needs neither SOS nor binaries: one t_kj ≥ 0 above every segment's line,

    t_kj ≥ h(s/Ω) + (h((s+1)/Ω) − h(s/Ω)) · (Ω o_kj − s)     for every segment [s/Ω, (s+1)/Ω]
           that meets o_kj's range and where h is not zero                     (``hinge``)

    minimise  Σ_kj n_k t_kj                                                     (``loss``)

with n_k = 1, or the number of identical examples row k stands for (``problem.weights``).

At the optimum t_kj = f(o_kj); t is bounded from below only, so an incumbent's t may sit above it
(``exact_incumbents`` is False).

Range (docs/method.md §4.5). The reference code puts its breakpoints on o ∈ [−1, 1] and lets
Gurobi extend the end segments as rays, although o reaches ±2 behind a hidden layer (|z| ≤ Ω):
below o = −1 its loss grows linearly, 1 below the squared hinge at o = −2, so a confidently wrong
output costs less than the loss the paper states and the gradient baseline minimises. Here the
same lattice covers the whole range o can take (from the interval bounds, per example and output),
so f is the interpolation of h everywhere. Behind a hidden layer z is an integer, every integer z
is a breakpoint (o = 2z/Ω = s/Ω with s = 2z), and f equals h exactly at every output a network can
produce: the model minimises the paper's squared hinge itself, not an approximation.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation
from formulations.encoding import signed_output_bounds, timed
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem
from formulations.sat_margin import MARGIN


def squared_hinge(o: np.ndarray | float) -> np.ndarray:
    """h(o) = max(0, ½ − o)², the paper's loss on the normalised output."""
    return np.maximum(0.0, MARGIN - np.asarray(o, dtype=np.float64)) ** 2


def interpolated_hinge(doubled: np.ndarray, scale: float) -> np.ndarray:
    """f at o = doubled / Ω, where ``doubled`` = 2 Y z = Ω o: linear between the breakpoints
    s = floor(Ω o) and s + 1 (an integer ``doubled`` is a breakpoint, where f = h)."""
    s = np.floor(doubled)
    left, right = squared_hinge(s / scale), squared_hinge((s + 1) / scale)
    return left + (right - left) * (doubled - s)


class MinHinge(Formulation):
    name = "min_hinge"
    exact_incumbents = False
    supports_neuron_switches = True
    weighted_examples = True

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        self.encode(model, problem)
        output_layer = len(problem.hidden)
        out = model.layer[output_layer]
        signs = problem.signed_targets
        scale = problem.output_scale
        s_lower, s_upper = signed_output_bounds(model, signs)
        # Segments s (o ∈ [s/Ω, (s+1)/Ω]) meeting each pair's range [2S/Ω, 2T/Ω]; h is 0 from
        # o = ½ on, so segments starting at or beyond Ω/2 add nothing over t ≥ 0.
        first = np.floor(2 * s_lower).astype(np.int64)
        last = np.minimum(np.maximum(np.ceil(2 * s_upper).astype(np.int64) - 1, first), math.ceil(scale / 2) - 1)
        segments = [
            (k, j, s)
            for k in range(problem.n_examples)
            for j in range(problem.n_classes)
            for s in range(int(first[k, j]), int(last[k, j]) + 1)
        ]
        model.segments = pyo.Set(initialize=segments, dimen=3)
        model.hinge_value = pyo.Var(model.examples, out.outputs, bounds=(0, None))

        def hinge(m, k, j, s):
            left, right = squared_hinge(s / scale), squared_hinge((s + 1) / scale)
            doubled = 2 * int(signs[k, j]) * out.preactivation[k, j]
            return m.hinge_value[k, j] >= float(left) + float(right - left) * (doubled - s)

        model.hinge = pyo.Constraint(model.segments, rule=timed(hinge))
        counts = problem.example_weights
        model.loss = pyo.Objective(
            expr=pyo.quicksum(float(counts[k]) * t for (k, _), t in model.hinge_value.items()), sense=pyo.minimize
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.set_encoding_values(model, network, problem)
        losses = self._losses(network.output(problem.x), problem)
        for (k, j), var in model.hinge_value.items():
            var.set_value(float(losses[k, j]))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        return float(self.example_losses(network.output(problem.x), problem).sum())

    def example_losses(self, output: np.ndarray, problem: TrainingProblem) -> np.ndarray:
        return self._losses(output, problem).sum(axis=1) * problem.example_weights

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """The paper's cutoff N·0.1·0.5²: target_error·N examples missing the margin entirely."""
        return target_error * problem.example_weights.sum() * MARGIN**2

    @staticmethod
    def _losses(output: np.ndarray, problem: TrainingProblem) -> np.ndarray:
        doubled = 2 * problem.signed_targets * output
        return interpolated_hinge(doubled, problem.output_scale)
