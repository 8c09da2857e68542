"""The few things every training model provides, so the pipeline can solve and check any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyomo.environ as pyo

from formulations.budget import add_nonzero_budget, set_usage_values
from formulations.encoding import add_neuron_order, encode_network, order_hidden_neurons, set_network_values
from formulations.matrix import MatrixModel
from formulations.network import IntegerNetwork
from formulations.neuron_switches import add_neuron_switches, set_switch_values, switched_output_scale
from formulations.problem import TrainingProblem


class Formulation(ABC):
    """A MIP training model: builds the Pyomo model, gives it a start, and scores any network
    with numpy exactly as the model's objective would, so that no solve has to be trusted.

    Every model minimises. ``symmetry_breaking`` orders interchangeable hidden neurons by bias
    (:func:`formulations.encoding.add_neuron_order`); the start is then permuted to match
    (:meth:`start_network`), so it stays feasible and keeps its objective. ``neuron_switches``
    gives every hidden neuron a binary that can switch it off (:mod:`formulations.neuron_switches`),
    for the models that support it; the objective is unchanged, except that a margin read on Ω is
    read on the neurons switched on (``margin_from_switches``).
    """

    name: ClassVar[str]
    hard: ClassVar[bool] = False
    """True when fitting every training example is a constraint: a network that does not fit is
    no feasible point, its :meth:`objective_value` is +inf and it cannot start the solve."""
    exact_incumbents: ClassVar[bool] = True
    """True when the objective of every feasible point is the objective of its weights. False when
    an auxiliary variable is bounded on one side only (an epigraph, a margin, a non-zero
    indicator): an incumbent's objective is then at least that of its weights, equal at a proven
    optimum, and at least the solver's bound either way."""
    supports_neuron_switches: ClassVar[bool] = False
    """True for the models whose :meth:`build` encodes through :meth:`encode`, so neuron switches
    can be added to them."""
    weighted_examples: ClassVar[bool] = False
    """True for the models whose objective is a sum of example losses that :meth:`build`,
    :meth:`objective_value` and :meth:`example_losses` weight by ``problem.weights`` (a row that
    stands for several identical examples); the others refuse a weighted problem."""
    counts_outcomes: ClassVar[bool] = False
    """True for the models whose :meth:`build` writes ``problem.rows`` on their outcome indicators
    (:meth:`row_indicators`)."""
    margin_from_switches: ClassVar[bool] = False
    """True when the model's margin is read on Ω, so with switches on Ω(H) counts the neurons
    switched on: an incumbent with a neuron on that its weights do not need then has a larger
    margin and may score more than its weights (no exact incumbents)."""

    def __init__(self, *, symmetry_breaking: bool = False, neuron_switches: bool = False) -> None:
        if neuron_switches and not self.supports_neuron_switches:
            raise ValueError(f"{self.name} cannot switch neurons off; use a soft-loss model")
        self.symmetry_breaking = symmetry_breaking
        self.neuron_switches = neuron_switches
        if neuron_switches and self.margin_from_switches:
            self.exact_incumbents = False

    @abstractmethod
    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        """The model, minimising its objective, with the encoding on ``model.layer``."""

    @abstractmethod
    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        """Set every variable to the value ``network`` implies: a feasible MIP start. Only called
        with a network of finite :meth:`objective_value`, passed through :meth:`start_network`."""

    @abstractmethod
    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        """The model's objective for ``network``, recomputed with numpy; +inf when the model's
        hard constraints exclude the network."""

    def example_losses(self, output: np.ndarray, problem: TrainingProblem) -> np.ndarray | None:
        """Each example's share of the objective given the output layer's pre-activations
        (examples × classes), summing to :meth:`objective_value`; None when the objective is no
        such sum (hard models, weight counts). Local search uses it to give a single neuron's step
        only the examples that neuron can change (:mod:`formulations.neuron_choice`)."""
        return None

    def matrix(self, problem: TrainingProblem) -> MatrixModel | None:
        """The model as arrays (:mod:`formulations.matrix`), handed to HiGHS without Pyomo, with
        ``matrix_start(network, problem)`` and ``matrix_network(columns, problem)`` mapping networks
        to columns and back; None (every full training model): HiGHS gets :meth:`build`'s model."""
        return None

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """An objective value good enough to stop at (the paper's early cutoff), or None."""
        return None

    def margin_scale(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        """Ω a margin model reads ``network``'s margins on: on the neurons it switches on with neuron
        switches (``margin_from_switches``), else the problem's."""
        if self.neuron_switches and self.margin_from_switches:
            return switched_output_scale(network, problem)
        return problem.output_scale

    def encode(self, model: pyo.ConcreteModel, problem: TrainingProblem) -> None:
        """The shared encoding of the network on ``model``, with the neuron switches when they are on."""
        encode_network(model, problem.x, problem.bounds)
        if self.neuron_switches:
            add_neuron_switches(model, problem.bounds)

    def set_encoding_values(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        """Every variable of :meth:`encode` at the value ``network`` implies (switches at the fewest)."""
        set_network_values(model, network, problem.x)
        if self.neuron_switches:
            set_switch_values(model, network)

    def row_indicators(self, network: IntegerNetwork, problem: TrainingProblem) -> np.ndarray | None:
        """The 0/1 outcome of each example that counting rows (``problem.rows``) are written on:
        the error indicator for a model that counts errors exactly; None (the default) for a model
        that cannot carry such rows."""
        return None

    def admits(self, network: IntegerNetwork, problem: TrainingProblem) -> bool:
        """Whether ``network`` is a point of this model on ``problem``: inside its boxes and size
        budget, and every counting row holds, recounted from the network's own outcomes."""
        if not problem.admits(network):
            return False
        if not problem.rows:
            return True
        indicators = self.row_indicators(network, problem)
        return all(row.holds(indicators) for row in problem.rows)

    def create(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        """:meth:`build`, with the symmetry-breaking rows when they are on and the problem's size
        budget when it has one (:mod:`formulations.budget`)."""
        if problem.weights is not None and not self.weighted_examples:
            raise ValueError(f"{self.name} cannot weight its examples; give it one row per example")
        if problem.rows and not self.counts_outcomes:
            raise ValueError(f"{self.name} does not count outcomes; counting constraints need max_correct")
        model = self.build(problem)
        if self.symmetry_breaking:
            add_neuron_order(model, problem.bounds)
        if problem.max_nonzero is not None:
            add_nonzero_budget(model, problem.max_nonzero)
        return model

    def start_at(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        """:meth:`set_start`, and the budget's indicators when :meth:`create` added them."""
        self.set_start(model, network, problem)
        if problem.max_nonzero is not None:
            set_usage_values(model, network)

    def start_network(self, network: IntegerNetwork, problem: TrainingProblem) -> IntegerNetwork:
        """``network`` as this model's start: its hidden neurons ordered when symmetry breaking
        is on (same function, so same objective), else unchanged."""
        if self.symmetry_breaking:
            return order_hidden_neurons(network, problem.bounds)
        return network


class StagedFormulation(Formulation):
    """A model solved as a sequence of MIPs, each started from the network the one before returned
    (a lexicographic objective). The model itself is its first stage: :meth:`build`,
    :meth:`objective_value` and :meth:`target` are those of the primary objective."""

    stage_names: ClassVar[tuple[str, ...]]

    @abstractmethod
    def stage(
        self, index: int, problem: TrainingProblem, networks: Sequence[IntegerNetwork]
    ) -> tuple[Formulation, TrainingProblem] | None:
        """The formulation and problem of stage ``index``, given ``networks``: the start, then the
        network each earlier stage returned. None when nothing is left to solve."""


def exact_at_least(values: np.ndarray, threshold: float | np.ndarray, grid: float) -> np.ndarray:
    """values >= threshold for values on a grid of spacing ``grid``, decided on the integer scale
    so that float noise in values or threshold cannot flip a comparison at equality."""
    return np.rint(values / grid) >= np.ceil(np.asarray(threshold) / grid - 1e-9)
