"""Compression: the fewest non-zero parameters that keep a network's errors within a budget (the
sub-MIP of every move of MIP compression, :mod:`pipeline.solving.compress`, docs/method.md §13).

``inner`` is a model whose objective is the number of misclassified examples of its problem,
exactly at every integer point: :class:`~formulations.max_correct.MaxCorrect` on the layers a move
frees, or :class:`~formulations.neuron_choice.NeuronChoice` scoring one hidden neuron's signs by
the errors they cause. With E the errors allowed (the kept set's errors at the start plus the
tolerance, less the examples outside the problem that are wrong whatever the move does):

    inner's error count ≤ E                                                  (``errors_kept``)
    lb·a ≤ θ ≤ ub·a   for every free weight and bias θ                       (``*_used_*``, as min_weight)
    Σ a + #{fixed parameters ≠ 0} ≤ cap        (only when a move must not add any: ``nonzero_cap``)

    minimise  Σ a + #{fixed parameters ≠ 0}                                  (``nonzero``)

A network whose errors exceed E (or whose count exceeds the cap) is no feasible point: +inf. The
indicator a is bounded from below only, so an incumbent may count a zero parameter (no exact
incumbents); at the optimum a = [θ ≠ 0]. Since the error count is exact at every integer point, no
network the solver returns can break the budget: :func:`pipeline.solving.solve.solve_mip` recomputes both
in numpy.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from formulations.base import Formulation
from formulations.budget import add_all_usage, set_usage_values
from formulations.network import IntegerNetwork, nonzero_parameters
from formulations.problem import TrainingProblem


class FewestNonzeros(Formulation):
    """The fewest non-zero parameters with ``inner``'s error count at most ``budget`` (and the count
    at most ``cap`` when given)."""

    name = "fewest_nonzeros"
    hard = True
    exact_incumbents = False

    def __init__(self, inner: Formulation, budget: float, cap: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.budget = float(budget)
        self.cap = cap

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = self.inner.build(problem)
        errors = next(model.component_data_objects(pyo.Objective, active=True))
        errors.deactivate()
        model.errors_kept = pyo.Constraint(expr=errors.expr <= self.budget)
        count = add_all_usage(model)
        if self.cap is not None:
            model.nonzero_cap = pyo.Constraint(expr=count <= self.cap)
        model.nonzero = pyo.Objective(expr=count, sense=pyo.minimize)
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.inner.set_start(model, network, problem)
        set_usage_values(model, network)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        errors = self.inner.objective_value(network, problem)
        count = nonzero_parameters(network)
        if errors > self.budget or (self.cap is not None and count > self.cap):
            return math.inf
        return float(count)
