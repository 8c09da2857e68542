"""Lexicographic training after BeMi (Bernardelli, Gualandi, Lau, Milanesi: LION 2023; with
Yorke-Smith, INFORMS J. Computing 2025): robustness first, then margins, then simplicity, as three
MIPs solved one after the other, each started from the network the one before returned.

With Y_kj = ±1, z's grid δ and the confidence τ = Ω/4 rounded up to the grid (sat_margin's margin,
½ on the normalised output):

1. ``confident`` — this model. One binary q_k per example, 1 only if every output of k has the
   right sign with the confidence margin:

       q_k = 1 ⇒ Y_kj z_kj ≥ τ :   Y_kj z_kj ≥ S_kj + (τ − S_kj) q_k      (``confident_output``)
       minimise  N − Σ_k q_k                                                 (``not_confident``)

   ([S_kj, T_kj] bounds Y_kj z_kj; a pair with T_kj < τ fixes q_k = 0.) q is bounded from above
   only, so an incumbent may leave a confident example uncounted (``exact_incumbents`` is False).
2. ``margins`` — on the examples K of stage 1's network that are confident: max-margin
   (:class:`~formulations.max_margin.MaxMargin`) with Y_kj z_kj ≥ τ kept for k ∈ K, so stage 1's
   objective cannot get worse.
3. ``sparsity`` — on K: min-weight (:class:`~formulations.min_weight.MinWeight`) with every
   neuron's margin at least what stage 2's network has, and Y_kj z_kj ≥ τ for k ∈ K.

Stage 1's network satisfies stage 2's rows and stage 2's network stage 3's, so every stage starts
feasible. The time limit is shared: each stage gets the time left over an equal split of the stages
still to run, so time one stage does not use carries forward. The objective of the whole model is
stage 1's (the primary objective); stages 2 and 3 are checked by their own models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation, StagedFormulation, exact_at_least
from formulations.encoding import (
    encode_network,
    grid_of_layer,
    on_grid_at_least,
    set_network_values,
    signed_output_bounds,
)
from formulations.max_margin import MaxMargin, neuron_margins
from formulations.min_weight import MinWeight
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem
from formulations.sat_margin import margin_threshold


def confidence(problem: TrainingProblem) -> float:
    """τ: the paper's margin ½ on ẑ, Ω/4 on z, rounded up to the output's grid."""
    return on_grid_at_least(margin_threshold(problem), grid_of_layer(len(problem.hidden)))


def confident_examples(network: IntegerNetwork, problem: TrainingProblem) -> np.ndarray:
    """Examples whose every output has the right sign with margin τ: Y_kj z_kj ≥ τ for all j."""
    signed = problem.signed_targets * network.output(problem.x)
    return exact_at_least(signed, confidence(problem), grid_of_layer(len(problem.hidden))).all(axis=1)


class Lexicographic(StagedFormulation):
    name = "lexicographic"
    exact_incumbents = False
    stage_names = ("confident", "margins", "sparsity")

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        encode_network(model, problem.x, problem.bounds)
        out = model.layer[len(problem.hidden)]
        signs = problem.signed_targets
        s_lower, s_upper = signed_output_bounds(model, signs)
        tau = confidence(problem)

        model.confident = pyo.Var(model.examples, domain=pyo.Binary)
        for k, var in model.confident.items():
            if (s_upper[k] < tau).any():
                var.fix(0)

        def confident_output(m, k, j):
            if s_lower[k, j] >= tau or m.confident[k].fixed:
                return pyo.Constraint.Skip
            low = float(s_lower[k, j])
            return int(signs[k, j]) * out.preactivation[k, j] >= low + (tau - low) * m.confident[k]

        model.confident_output = pyo.Constraint(model.examples, out.outputs, rule=confident_output)
        model.not_confident = pyo.Objective(
            expr=problem.n_examples - pyo.quicksum(model.confident.values()), sense=pyo.minimize
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        set_network_values(model, network, problem.x)
        confident = confident_examples(network, problem)
        for k, var in model.confident.items():
            if not var.fixed:
                var.set_value(int(confident[k]))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        return float(np.count_nonzero(~confident_examples(network, problem)))

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """Stop stage 1 once at most target_error·N examples lack the confidence margin."""
        return float(math.floor(target_error * problem.n_examples))

    def stage(
        self, index: int, problem: TrainingProblem, networks: Sequence[IntegerNetwork]
    ) -> tuple[Formulation, TrainingProblem] | None:
        """Stage 0 is this model; stages 1 and 2 run on the examples stage 0's network classifies
        with confidence (None when there are none: no margins or sparsity to optimise over)."""
        if index == 0:
            return self, problem
        kept = confident_examples(networks[1], problem)
        if not kept.any():
            return None
        fitted = TrainingProblem(
            problem.x[kept], problem.y[kept], problem.n_classes, problem.hidden, problem.P, problem.bounds
        )
        tau = confidence(problem)
        if index == 1:
            return MaxMargin(confidence=tau, symmetry_breaking=self.symmetry_breaking), fitted
        return MinWeight(margins=neuron_margins(networks[2], fitted), confidence=tau), fitted
