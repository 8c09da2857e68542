"""MIP training models for integer-valued networks: pure modelling with Pyomo and numpy.

``FORMULATIONS`` maps each model's name (the CLI's ``--formulation``) to its class; every class
takes ``symmetry_breaking=True`` to order interchangeable hidden neurons.
"""

from formulations.base import Formulation, StagedFormulation
from formulations.bounds import ParameterBounds
from formulations.correct_margin import CorrectMargin
from formulations.lexicographic import Lexicographic
from formulations.max_correct import MaxCorrect
from formulations.max_margin import MaxMargin
from formulations.min_hinge import MinHinge
from formulations.min_weight import MinWeight
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem
from formulations.sat_margin import SatMargin

FORMULATIONS: dict[str, type[Formulation]] = {
    cls.name: cls
    for cls in (SatMargin, CorrectMargin, MaxCorrect, MinHinge, MinWeight, MaxMargin, Lexicographic)
}

__all__ = [
    "FORMULATIONS",
    "Formulation",
    "IntegerNetwork",
    "ParameterBounds",
    "StagedFormulation",
    "TrainingProblem",
]
