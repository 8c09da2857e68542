"""The few things every training model provides, so the pipeline can solve and check any of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pyomo.environ as pyo

from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem


class Formulation(ABC):
    """A MIP training model: builds the Pyomo model, gives it a start, and scores any network
    with numpy exactly as the model's objective would, so that no solve has to be trusted."""

    name: ClassVar[str]

    @abstractmethod
    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        """The model, minimising its objective, with the encoding on ``model.layer``."""

    @abstractmethod
    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        """Set every variable to the value ``network`` implies: a feasible MIP start."""

    @abstractmethod
    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        """The model's objective for ``network``, recomputed with numpy."""

    def target(self, problem: TrainingProblem, target_error: float) -> float | None:
        """An objective value good enough to stop at (the paper's early cutoff), or None."""
        return None


def exact_at_least(values: np.ndarray, threshold: float, grid: float) -> np.ndarray:
    """values >= threshold for values on a grid of spacing ``grid``, decided on the integer scale
    so that float noise in values or threshold cannot flip a comparison at equality."""
    return np.rint(values / grid) >= np.ceil(threshold / grid - 1e-9)
