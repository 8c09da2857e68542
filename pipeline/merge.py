"""Merging independently trained batch networks into one integer network (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from formulations import IntegerNetwork


def validation_weights(scores: Sequence[float]) -> np.ndarray:
    """ω_b = (a_b − min a) / (max a − min a): the worst batch counts 0, the best 1.

    When every batch scores the same the paper's rule divides by zero; they are then equally good,
    so each counts 1.
    """
    a = np.asarray(scores, dtype=np.float64)
    spread = a.max() - a.min()
    if spread == 0:
        return np.ones_like(a)
    return (a - a.min()) / spread


def aggregate_weighted_mean(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """The paper's merge: every parameter θ̄ = round(Σ_b ω_b θ_b / Σ_b ω_b), with ω from
    :func:`validation_weights` of the batches' validation accuracies ``scores``.

    np.round rounds half to even, as the reference code does. A weighted mean of values inside a
    box stays inside it, so the result keeps the batches' per-parameter bounds (and [-P, P]).
    """
    if not networks:
        raise ValueError("nothing to merge: no batch produced a network")
    if len(networks) != len(scores):
        raise ValueError(f"{len(networks)} networks but {len(scores)} scores")
    first = networks[0]
    if any(net.sizes != first.sizes or net.P != first.P for net in networks):
        raise ValueError("batch networks differ in architecture or P and cannot be merged")
    omega = validation_weights(scores)
    omega = omega / omega.sum()

    def mean(arrays: list[np.ndarray]) -> np.ndarray:
        return np.round(np.tensordot(omega, np.stack(arrays), axes=1)).astype(np.int64)

    return IntegerNetwork(
        weights=tuple(mean([net.weights[l] for net in networks]) for l in range(len(first.weights))),
        biases=tuple(mean([net.biases[l] for net in networks]) for l in range(len(first.biases))),
        P=first.P,
    )
