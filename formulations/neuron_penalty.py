"""Optimising the number of neurons while training (Thorbjarnarson & Yorke-Smith 2023, docs/method.md
§6): a soft-loss model with neuron switches (:mod:`formulations.neuron_switches`)
whose objective also counts the neurons it keeps.

* :class:`NeuronPenalty`, the paper's weighted objective, for a penalty α ≥ 0:

      minimise  loss + α · Σ_{l,j} H^l_j                                   (``loss_and_neurons``)

  The loss is the inner model's objective, its margins (sat_margin, correct_margin) read on the
  neurons switched on. In numpy: the inner loss plus α times the neurons the MIP must switch on
  (:func:`~formulations.neuron_switches.neurons_on`). With α > 0 an incumbent may keep a neuron
  on whose parameters are all 0, so it may score more than its weights (no exact incumbents).

* :class:`LexicographicNeurons`, the loss first, then the neurons, as two MIPs. Stage 1 is the
  inner model with switches; stage 2 (:class:`FewestNeurons`) starts from stage 1's network, keeps
  its loss L* (recomputed from its weights) and minimises the neurons:

      loss ≤ L*                                                              (``loss_kept``)
      minimise  Σ_{l,j} H^l_j                                                (``neurons``)

  The paper's reference code does this with Gurobi's hierarchical objectives; HiGHS has none, so
  it is two solves sharing the time limit (:func:`pipeline.solving.solve.solve_mip`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyomo.environ as pyo

from formulations.base import Formulation, StagedFormulation
from formulations.network import IntegerNetwork
from formulations.neuron_switches import fewest_on, neurons_on
from formulations.problem import TrainingProblem

LOSS_TOLERANCE = 1e-6
"""Relative slack of "loss ≤ L*" in numpy: the solver meets the row within its feasibility
tolerance, and a fractional loss (min_hinge) summed in another order differs in its last bits."""


def _loss(model: pyo.ConcreteModel) -> pyo.Objective:
    """The inner model's one objective."""
    return next(model.component_data_objects(pyo.Objective, active=True))


def _with_switches(inner: Formulation) -> Formulation:
    if not inner.neuron_switches:
        raise ValueError(f"{inner.name}: the inner model must be built with neuron_switches=True")
    return inner


class NeuronPenalty(Formulation):
    """``inner``'s loss plus ``alpha`` per neuron switched on."""

    name = "neuron_penalty"

    def __init__(self, inner: Formulation, alpha: float) -> None:
        super().__init__(symmetry_breaking=inner.symmetry_breaking)
        if not alpha >= 0:
            raise ValueError(f"the neuron penalty must be >= 0, got {alpha}")
        self.inner = _with_switches(inner)
        self.alpha = float(alpha)
        self.name = f"{inner.name} + {self.alpha:g}·neurons"
        self.exact_incumbents = inner.exact_incumbents and self.alpha == 0

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = self.inner.build(problem)
        loss = _loss(model)
        loss.deactivate()
        model.loss_and_neurons = pyo.Objective(expr=loss.expr + self.alpha * model.neurons_on, sense=pyo.minimize)
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.inner.set_start(model, network, problem)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        return self.inner.objective_value(network, problem) + self.alpha * sum(neurons_on(network))

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """The inner model's target plus α for the neurons the last hidden layer must keep: a
        network at the target with no neuron to spare, or one whose loss is below the target by
        more than α per extra neuron."""
        inner = self.inner.target(problem, target_error)
        if inner is None or not problem.hidden:
            return inner
        return inner + self.alpha * fewest_on(problem.hidden[-1], problem.n_classes)


class FewestNeurons(Formulation):
    """Stage 2 of :class:`LexicographicNeurons`: the fewest neurons with ``inner``'s loss at most
    ``loss_bound``. A network whose loss exceeds the bound is no feasible point (+inf)."""

    name = "fewest_neurons"
    hard = True
    exact_incumbents = False

    def __init__(self, inner: Formulation, loss_bound: float) -> None:
        super().__init__(symmetry_breaking=inner.symmetry_breaking)
        self.inner = _with_switches(inner)
        self.loss_bound = float(loss_bound)

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = self.inner.build(problem)
        loss = _loss(model)
        loss.deactivate()
        model.loss_kept = pyo.Constraint(expr=loss.expr <= self.loss_bound)
        model.neurons = pyo.Objective(expr=model.neurons_on, sense=pyo.minimize)
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.inner.set_start(model, network, problem)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        slack = LOSS_TOLERANCE * max(1.0, abs(self.loss_bound))
        if self.inner.objective_value(network, problem) > self.loss_bound + slack:
            return math.inf
        return float(sum(neurons_on(network)))


class LexicographicNeurons(StagedFormulation):
    """``inner``'s loss, then the fewest neurons that keep it. The model itself is stage 1, so its
    objective (and the reported one) is the loss."""

    name = "lexicographic_neurons"
    stage_names = ("loss", "neurons")

    def __init__(self, inner: Formulation) -> None:
        super().__init__(symmetry_breaking=inner.symmetry_breaking)
        self.inner = _with_switches(inner)
        self.name = f"{inner.name}, then neurons"
        self.exact_incumbents = inner.exact_incumbents

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        return self.inner.build(problem)

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        self.inner.set_start(model, network, problem)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        return self.inner.objective_value(network, problem)

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        return self.inner.target(problem, target_error)

    def stage(
        self, index: int, problem: TrainingProblem, networks: Sequence[IntegerNetwork]
    ) -> tuple[Formulation, TrainingProblem] | None:
        if index == 0:
            return self, problem
        return FewestNeurons(self.inner, self.inner.objective_value(networks[1], problem)), problem
