"""MIP training models for integer-valued networks: pure modelling with Pyomo and numpy.

``FORMULATIONS`` maps each model's name (the CLI's ``--formulation``) to its class.
"""

from formulations.base import Formulation
from formulations.bounds import ParameterBounds
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem
from formulations.sat_margin import SatMargin

FORMULATIONS: dict[str, type[Formulation]] = {cls.name: cls for cls in (SatMargin,)}

__all__ = ["FORMULATIONS", "Formulation", "IntegerNetwork", "ParameterBounds", "TrainingProblem"]
