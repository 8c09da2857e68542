"""Class probabilities from a network's integer scores: a softmax with one inverse temperature β,
fitted on the validation split and stored in the network file (``intnet.calibration``), so that
the estimator and ``intnet.load(path)`` give the same probabilities from numpy alone.

The scores are the output layer's integer pre-activations (an ensemble's: its votes). The softmax
is monotone in them, so the most probable class is the one ``predict`` gives, ties included (equal
scores get equal probabilities, and argmax takes the lowest index, as ``predict``); β only says how
sure a score difference makes the network, which training never asked the network to say. β
minimises the mean cross-entropy on the validation split against Platt's smoothed targets
(docs/method.md §17): an example of a class with n validation examples has target (n + 1) / (n + 2) on
its class and the rest spread evenly over the others, so a validation split the network classifies
perfectly (common: 30 rows of easy data) gives 0.94 rather than 1 - 10⁻²⁴ for 15 rows a class. The
loss is convex in β, so bisection on its derivative finds it. β = 0 (every class equally likely) is
what scores no better than chance get; β is at most :data:`MAX_INVERSE_TEMPERATURE`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import NetworkFileError
from pipeline.networks.ensembles import Ensemble

METHOD = "softmax_temperature"

MAX_INVERSE_TEMPERATURE = math.log(1e6)
"""At most a million to one per point of integer score difference."""

BISECTIONS = 60


def scores(model: Ensemble, x: np.ndarray) -> np.ndarray:
    """The integer scores the probabilities are read from (rows × classes): a single network's
    output pre-activations, an ensemble's votes."""
    return model.networks[0].output(x) if model.is_single else model.votes(x).astype(np.float64)


@dataclass(frozen=True)
class Calibration:
    inverse_temperature: float
    """β: the probabilities are softmax(β · scores); the temperature is 1 / β."""
    fitted_on: str
    """The split β was fitted on: ``validation`` (``train`` when the run held out no validation rows)."""
    rows: int
    log_loss: float
    """The mean negative log-likelihood of the split's labels at β (of the labels, not the smoothed targets)."""

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Rows × classes, each row summing to 1."""
        z = self.inverse_temperature * np.asarray(scores, dtype=np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def as_json(self) -> dict[str, Any]:
        return {"method": METHOD, "inverse_temperature": self.inverse_temperature, "fitted_on": self.fitted_on,
                "rows": self.rows, "log_loss": self.log_loss}

    @classmethod
    def from_json(cls, value: Any) -> Calibration:
        """The file's ``intnet.calibration``; a NetworkFileError names what is wrong."""
        if not isinstance(value, dict) or value.get("method") != METHOD:
            raise NetworkFileError(f"intnet.calibration must be an object with method {METHOD!r}")
        beta = value.get("inverse_temperature")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= MAX_INVERSE_TEMPERATURE:
            raise NetworkFileError(f"intnet.calibration's inverse_temperature must be a number in "
                                   f"[0, {MAX_INVERSE_TEMPERATURE:.4f}]")
        rows, loss = value.get("rows"), value.get("log_loss")
        return cls(float(beta), str(value.get("fitted_on")), rows if isinstance(rows, int) else 0,
                   float(loss) if isinstance(loss, (int, float)) and not isinstance(loss, bool) else math.nan)


def mean_log_loss(scores: np.ndarray, y: np.ndarray, beta: float) -> float:
    z = beta * scores
    top = z.max(axis=1)
    return float(np.mean(top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[np.arange(len(y)), y]))


def fit_calibration(model: Ensemble, x: np.ndarray, y: np.ndarray, fitted_on: str = "validation") -> Calibration:
    """β minimising the mean cross-entropy of ``model``'s scores on (x, y) against the smoothed
    targets, within [0, MAX_INVERSE_TEMPERATURE]; its ``log_loss`` is the plain one at β."""
    s = scores(model, x).astype(np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return Calibration(0.0, fitted_on, 0, math.nan)
    n_classes = s.shape[1]
    count = np.bincount(y, minlength=n_classes)[y]
    on_class = (count + 1) / (count + 2)
    targets = np.repeat(((1 - on_class) / (n_classes - 1))[:, None], n_classes, axis=1)
    targets[np.arange(len(y)), y] = on_class
    target_scores = (targets * s).sum(axis=1)

    def slope(beta: float) -> float:
        # d/dβ of the mean cross-entropy: the softmax's expected score minus the targets' expected score.
        z = beta * s
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return float(np.mean((p * s).sum(axis=1) - target_scores))

    low, high = 0.0, MAX_INVERSE_TEMPERATURE
    if slope(low) >= 0:
        beta = low
    elif slope(high) <= 0:
        beta = high
    else:
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            low, high = (middle, high) if slope(middle) < 0 else (low, middle)
        beta = (low + high) / 2
    return Calibration(beta, fitted_on, len(y), mean_log_loss(s, y, beta))


def fit_calibration_on_splits(model: Ensemble, validation: tuple[np.ndarray, np.ndarray],
                              train: tuple[np.ndarray, np.ndarray]) -> Calibration:
    """:func:`fit_calibration` on the validation split, on the training split when validation has
    no rows (training with ``--validation-size 0``, and its split rebuilt by improve and compress)."""
    if len(validation[1]):
        return fit_calibration(model, *validation)
    return fit_calibration(model, *train, fitted_on="train")
