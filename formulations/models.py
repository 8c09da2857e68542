"""The MIP training models by name: ``FORMULATIONS`` maps each model's name (``--formulation``) to
its class; every class takes ``symmetry_breaking=True`` to order interchangeable hidden neurons.
:func:`training_model` builds the model a run asks for, optimising its number of neurons too when
given a penalty."""

from __future__ import annotations

from formulations.base import Formulation, StagedFormulation
from formulations.correct_margin import CorrectMargin
from formulations.lexicographic import Lexicographic
from formulations.max_correct import MaxCorrect
from formulations.max_margin import MaxMargin
from formulations.min_hinge import MinHinge
from formulations.min_weight import MinWeight
from formulations.neuron_penalty import LexicographicNeurons, NeuronPenalty
from formulations.sat_margin import SatMargin

FORMULATIONS: dict[str, type[Formulation]] = {
    cls.name: cls
    for cls in (SatMargin, CorrectMargin, MaxCorrect, MinHinge, MinWeight, MaxMargin, Lexicographic)
}


def training_model(
    name: str, *, symmetry_breaking: bool = False, neuron_penalty: float | str | None = None
) -> Formulation:
    """The model ``name``; with ``neuron_penalty`` its neurons can be switched off and are counted:
    a number α adds α per neuron to the loss (:class:`NeuronPenalty`), ``"lex"`` minimises the loss
    first and then the neurons (:class:`LexicographicNeurons`)."""
    model = FORMULATIONS[name]
    if neuron_penalty is None:
        return model(symmetry_breaking=symmetry_breaking)
    inner = model(symmetry_breaking=symmetry_breaking, neuron_switches=True)
    if neuron_penalty == "lex":
        return LexicographicNeurons(inner)
    return NeuronPenalty(inner, float(neuron_penalty))


__all__ = ["FORMULATIONS", "Formulation", "StagedFormulation", "training_model"]
