"""Max-correct (Thorbjarnarson & Yorke-Smith 2023, docs/method.md §4.3): minimise the number of
training examples the network misclassifies, counted as the network is scored (argmax, the lowest
index winning ties).

Example k with true class y = y_k is misclassified when another class j beats y: z_kj > z_ky for
j > y, z_kj ≥ z_ky for j < y. On z's grid δ, with d_kj = z_kj − z_ky and t_kj = 0 (j < y) or δ
(j > y), that is d_kj ≥ t_kj. One binary v_kj per (example, other class), with both directions so
that v is exactly that indicator:

    v = 1 ⇒ d ≥ t :        d ≥ D_kj + (t_kj − D_kj) v                 (``rival_wins``)
    v = 0 ⇒ d ≤ t − δ :    d ≤ t_kj − δ + (E_kj − t_kj + δ) v         (``rival_loses``)

where [D_kj, E_kj] = [L_kj − U_ky, U_kj − L_ky] bounds d. The error of example k is
e_k = max_j v_kj, a continuous e_k ∈ [0, 1] pinned by e_k ≥ v_kj (``error_any``) and
e_k ≤ Σ_j v_kj (``error_only``); with two classes e_k = v_kj.

    minimise  Σ_k n_k e_k                                               (``misclassified``)

with n_k = 1, or the number of identical examples row k stands for (``problem.weights``).

The paper gives every (example, class) a binary o_kj = [ẑ_kj ≥ 0], requires Σ_j o_kj = 1 and
minimises N − Σ_k o_{k,y_k}. That counts what argmax predicts only for networks with exactly one
non-negative output per example, and excludes every other network: a gradient-trained start
usually, and networks that classify every example correctly. Counting argmax errors admits every
network (so any start is feasible), minimises exactly the training error that is reported, contains
the paper's feasible set with the same objective on it (so its optimum is never worse), and needs
N(C − 1) binaries instead of NC.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation
from formulations.encoding import add_count_rows, grid_of_layer, timed
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem


def rival_differences(
    lower: np.ndarray, upper: np.ndarray, y: np.ndarray, grid: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[D_kj, E_kj] bounding d_kj = z_kj − z_ky from the output bounds [lower, upper], and t_kj, the
    value from which rival j beats the true class y_k (0 for j < y_k, δ for j > y_k); examples ×
    classes (the true class's own entries are meaningless)."""
    rows = np.arange(len(y))
    lowest = lower - upper[rows, y][:, None]
    highest = upper - lower[rows, y][:, None]
    thresholds = np.where(np.arange(lower.shape[1])[None, :] < y[:, None], 0.0, grid)
    return lowest, highest, thresholds


class MaxCorrect(Formulation):
    name = "max_correct"
    supports_neuron_switches = True
    weighted_examples = True
    counts_outcomes = True

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        self.encode(model, problem)
        output_layer = len(problem.hidden)
        out = model.layer[output_layer]
        lower, upper = model.preactivation_bounds[output_layer]
        grid = grid_of_layer(output_layer)
        y = problem.y
        rivals = [(k, j) for k in range(problem.n_examples) for j in range(problem.n_classes) if j != y[k]]
        lowest, highest, thresholds = rival_differences(lower, upper, y, grid)

        def threshold(k, j):
            return float(thresholds[k, j])

        def d_lower(k, j):
            return float(lowest[k, j])

        def d_upper(k, j):
            return float(highest[k, j])

        def decided(k, j):
            return d_lower(k, j) >= threshold(k, j) or d_upper(k, j) < threshold(k, j)

        def difference(k, j):
            return out.preactivation[k, j] - out.preactivation[k, int(y[k])]

        model.rivals = pyo.Set(initialize=rivals, dimen=2)
        model.rival_beats = pyo.Var(model.rivals, domain=pyo.Binary)
        for (k, j), var in model.rival_beats.items():
            if d_lower(k, j) >= threshold(k, j):
                var.fix(1)
            elif d_upper(k, j) < threshold(k, j):
                var.fix(0)

        def rival_wins(m, k, j):
            if decided(k, j):
                return pyo.Constraint.Skip
            low = d_lower(k, j)
            return difference(k, j) >= low + (threshold(k, j) - low) * m.rival_beats[k, j]

        def rival_loses(m, k, j):
            if decided(k, j):
                return pyo.Constraint.Skip
            t = threshold(k, j)
            return difference(k, j) <= t - grid + (d_upper(k, j) - t + grid) * m.rival_beats[k, j]

        model.rival_wins = pyo.Constraint(model.rivals, rule=timed(rival_wins))
        model.rival_loses = pyo.Constraint(model.rivals, rule=timed(rival_loses))
        model.error = pyo.Var(model.examples, bounds=(0, 1))
        model.error_any = pyo.Constraint(model.rivals, rule=lambda m, k, j: m.error[k] >= m.rival_beats[k, j])
        model.error_only = pyo.Constraint(
            model.examples,
            rule=lambda m, k: m.error[k] <= pyo.quicksum(m.rival_beats[k, j] for j in out.outputs if j != y[k]),
        )
        add_count_rows(model, problem.rows, model.error)
        counts = problem.example_weights
        model.misclassified = pyo.Objective(
            expr=pyo.quicksum(float(counts[k]) * error for k, error in model.error.items()), sense=pyo.minimize
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.set_encoding_values(model, network, problem)
        z = network.output(problem.x)
        predicted = network.predict(problem.x)
        for (k, j), var in model.rival_beats.items():
            true = problem.y[k]
            beats = z[k, j] > z[k, true] or (j < true and z[k, j] == z[k, true])
            if not var.fixed:
                var.set_value(int(beats))
        for k, var in model.error.items():
            var.set_value(int(predicted[k] != problem.y[k]))

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        return float(self.example_losses(network.output(problem.x), problem).sum())

    def row_indicators(self, network: IntegerNetwork, problem: TrainingProblem) -> np.ndarray:
        return (network.predict(problem.x) != problem.y).astype(np.float64)

    def example_losses(self, output: np.ndarray, problem: TrainingProblem) -> np.ndarray:
        # np.argmax takes the first maximum: the lowest index wins ties, as IntegerNetwork.predict.
        return (np.argmax(output, axis=1) != problem.y) * problem.example_weights

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """The paper stops once at most target_error·N examples are misclassified."""
        return float(math.floor(target_error * problem.example_weights.sum()))
