"""What a training model is asked to fit: data, architecture, integer range and parameter boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from formulations.bounds import ParameterBounds
from formulations.constraints import CountRow
from formulations.network import IntegerNetwork, nonzero_parameters


def checked_weights(values, n: int, name: str) -> np.ndarray | None:
    """``values`` as one positive finite float per example (``n`` of them), or None when not given:
    a problem's ``weights``, the starts' ``sample_weight`` and ``validation_weight``."""
    if values is None:
        return None
    weights = np.asarray(values, dtype=np.float64)
    if weights.shape != (n,) or not np.all(np.isfinite(weights)) or not np.all(weights > 0):
        raise ValueError(f"{name} must be one positive count per example ({n}), finite")
    return weights


def output_scale(x: np.ndarray, hidden: Sequence[int], P: int) -> float:
    """Ω, the scale of the output layer: margins and losses are read on ẑ = 2 z / Ω.

    Behind a hidden layer it is the paper's (n_{L-1} + 1)·P, the largest possible |z|. Without one
    it is the paper's mean(x)·n_inputs, a typical rather than the largest |z|: with the bound
    P·(n_inputs + 1) the margin is out of reach and gradient training stalls in the hinge's linear
    part (MNIST 784-10 reached 67 % training accuracy that way, 100 % with this scale).
    """
    if hidden:
        return float((hidden[-1] + 1) * P)
    return float(np.mean(x) * np.shape(x)[1])


@dataclass(frozen=True)
class TrainingProblem:
    """Examples ``x`` (on the 10^-4 grid, in [0, 1]) with class indices ``y`` for a network of
    hidden widths ``hidden`` and ``n_classes`` outputs, parameters integers in [-P, P] and further
    limited by ``bounds`` (the full box when not given).

    ``rows`` are counting constraints over the examples' outcomes (fairness gaps, recall floors:
    :mod:`formulations.constraints`), held by the models that count outcomes exactly.

    ``max_nonzero`` is the size budget: at most that many parameters, weights and biases, not 0
    (:mod:`formulations.budget`; every model carries it); a sub-problem that poses part of a
    network gets what the rest of the network leaves of the whole budget.

    ``weights`` and ``scale`` pose one layer of a larger network (local search's output-layer step):
    ``weights[k]`` is how many identical training examples row k stands for (one each when not
    given; only models with ``weighted_examples`` read it), and ``scale`` is the larger network's Ω
    (:func:`output_scale`), which the problem's own architecture would not give."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    hidden: tuple[int, ...]
    P: int
    bounds: ParameterBounds = field(default=None)  # type: ignore[assignment]
    weights: np.ndarray | None = None
    scale: float | None = None
    max_nonzero: int | None = None
    rows: tuple[CountRow, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.float64))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.int64))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.bounds is None:
            object.__setattr__(self, "bounds", ParameterBounds.box(self.sizes, self.P))
        elif self.bounds.sizes != self.sizes:
            raise ValueError(f"bounds are for architecture {self.bounds.sizes}, the problem is {self.sizes}")
        if self.x.ndim != 2 or len(self.x) != len(self.y) or len(self.y) == 0:
            raise ValueError("x must be examples × inputs with one label per example, and not empty")
        if self.max_nonzero is not None and self.max_nonzero < 0:
            raise ValueError(f"max_nonzero must be >= 0 or None, got {self.max_nonzero}")
        object.__setattr__(self, "weights", checked_weights(self.weights, len(self.y), "weights"))

    @property
    def sizes(self) -> list[int]:
        return [self.x.shape[1], *self.hidden, self.n_classes]

    @property
    def n_examples(self) -> int:
        return len(self.y)

    @property
    def example_weights(self) -> np.ndarray:
        """How many training examples each row stands for."""
        return np.ones(self.n_examples) if self.weights is None else self.weights

    @property
    def signed_targets(self) -> np.ndarray:
        """Y_kj = +1 for the true class j = y_k, else -1 (examples × classes)."""
        return np.where(np.arange(self.n_classes)[None, :] == self.y[:, None], 1, -1)

    @property
    def output_scale(self) -> float:
        return output_scale(self.x, self.hidden, self.P) if self.scale is None else self.scale

    def admits(self, network: IntegerNetwork) -> bool:
        """Whether ``network`` lies inside the parameter boxes and within the size budget."""
        return self.bounds.contains(network) and (
            self.max_nonzero is None or nonzero_parameters(network) <= self.max_nonzero)

    def zero_network(self) -> IntegerNetwork:
        return IntegerNetwork.zeros(self.sizes, self.P)
