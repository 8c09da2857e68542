"""What is solved: integer-valued networks and the MIP models that train them.

This package's top level is the numpy-only core that reading, predicting with and exporting a
network need: :class:`IntegerNetwork` (the network and its exact forward pass,
:mod:`formulations.network`), the parameter boxes (:class:`ParameterBounds`) and the problem a
model is asked to fit (:class:`TrainingProblem`). Importing it imports neither Pyomo nor any
training model: a stored network is used without the MIP stack. The training models, written with
Pyomo, are in :mod:`formulations.models` (``FORMULATIONS``, :func:`~formulations.models.training_model`).
"""

from formulations.bounds import ParameterBounds
from formulations.network import IntegerNetwork
from formulations.problem import TrainingProblem

__all__ = ["IntegerNetwork", "ParameterBounds", "TrainingProblem"]
