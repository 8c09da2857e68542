"""Merging independently trained batch networks into one integer network (pure functions).

Every rule has the signature ``(networks, scores) -> IntegerNetwork``, where ``scores`` are the
batches' validation accuracies (rules that do not weigh batches still check them, so that every
rule rejects the same bad input). Every rule works parameter by parameter and returns integers
inside every per-parameter box the inputs share: if each input has a parameter in [lo, hi], so
does the merge. ``MERGE_RULES`` names them for ``--merge``.

:func:`keep_voted_neurons` merges the batches' neuron masks when their width was optimised, and
:func:`epoch_bounds` turns a merged network into the next epoch's per-parameter box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from formulations import IntegerNetwork, ParameterBounds
from formulations.network import active_neurons, switch_off

MergeRule = Callable[[Sequence[IntegerNetwork], Sequence[float]], IntegerNetwork]

# Scores are accuracies k/V, so a (weighted) mean is either exactly a half or at least
# 1/(2·batches·V) away from one (4e-7 for 250 batches and V = 5,000), while float noise is ~1e-16:
# snapping to this many decimals settles halves and moves nothing else.
_HALF_SNAP_DECIMALS = 9


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


def round_half_even(values: np.ndarray) -> np.ndarray:
    """Nearest integer, exact halves to the even neighbour (np.round, as the paper's code does).

    Values are first snapped to 10^-9: a float sum's order otherwise decides halves (one set of
    batch networks gave a weighted mean of -0.49999999999999994 in one order and
    -0.5000000000000001 in another, so 0 or -1), and the merge must not depend on the order in
    which batches finished.
    """
    return np.round(np.round(values, _HALF_SNAP_DECIMALS)).astype(np.int64)


def _check(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> None:
    if not networks:
        raise ValueError("nothing to merge: no batch produced a network")
    if len(networks) != len(scores):
        raise ValueError(f"{len(networks)} networks but {len(scores)} scores")
    first = networks[0]
    if any(net.sizes != first.sizes or net.P != first.P for net in networks):
        raise ValueError("batch networks differ in architecture or P and cannot be merged")
    if not all(math.isfinite(score) for score in scores):
        raise ValueError(f"every score must be a finite number, got {list(scores)}")


def _per_parameter(
    networks: Sequence[IntegerNetwork], combine: Callable[[np.ndarray], np.ndarray]
) -> IntegerNetwork:
    """Apply ``combine`` to every weight matrix and bias vector, stacked over the networks on a
    new first axis; it returns the merged array with that axis gone."""
    first = networks[0]
    return IntegerNetwork(
        weights=tuple(combine(np.stack([net.weights[layer] for net in networks])) for layer in range(len(first.weights))),
        biases=tuple(combine(np.stack([net.biases[layer] for net in networks])) for layer in range(len(first.biases))),
        P=first.P,
    )


def aggregate_weighted_mean(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """The paper's merge: every parameter θ̄ = round(Σ_b ω_b θ_b / Σ_b ω_b), with ω from
    :func:`validation_weights` of the batches' validation accuracies ``scores``.

    Rounds half to even (:func:`round_half_even`). A weighted mean of values inside a box stays
    inside it, so the result keeps the batches' per-parameter bounds (and [-P, P]).
    """
    _check(networks, scores)
    omega = validation_weights(scores)
    omega = omega / omega.sum()
    return _per_parameter(networks, lambda stack: round_half_even(np.tensordot(omega, stack, axes=1)))


def aggregate_mean(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """Every parameter the plain mean over the batches, rounded half to even (2.5 → 2, -0.5 → 0),
    so it equals the weighted mean when every batch scores the same. ``scores`` are not used."""
    _check(networks, scores)
    return _per_parameter(networks, lambda stack: round_half_even(stack.mean(axis=0)))


def aggregate_median(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """Every parameter the median over the batches. For an even count it is the mean of the two
    middle values, rounded half to even ({1, 2} → 2, {0, 1} → 0), which lies between them and so
    inside the box. ``scores`` are not used."""
    _check(networks, scores)
    return _per_parameter(networks, lambda stack: round_half_even(np.median(stack, axis=0)))


def _vote(stack: np.ndarray) -> np.ndarray:
    # Candidates in tie-break order 0, 1, -1, 2, -2, ...: argmax keeps the first maximum, so the
    # most frequent value wins and a tie goes to the value nearest 0, then to the positive one.
    candidates = sorted(np.unique(stack).tolist(), key=lambda v: (abs(v), -v))
    counts = np.stack([(stack == value).sum(axis=0) for value in candidates])
    return np.asarray(candidates, dtype=np.int64)[np.argmax(counts, axis=0)]


def aggregate_majority(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """Every parameter the value most batches hold (a per-weight vote). Among equally frequent
    values the one nearest 0 wins (the cautious choice when batches disagree), and of -v and +v
    the positive one (a fixed convention, as the sign activation's +1 at 0). The tie-break looks
    at values only, never at float scores, so the vote does not depend on batch order. Always one
    of the inputs' values, so inside the box. ``scores`` are not used."""
    _check(networks, scores)
    return _per_parameter(networks, _vote)


def aggregate_best(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> IntegerNetwork:
    """The single batch network with the highest validation score, returned as it is; the lowest
    index among equal scores (so with ties the result depends on the batches' order)."""
    _check(networks, scores)
    return networks[int(np.argmax(np.asarray(scores, dtype=np.float64)))]


MERGE_RULES: dict[str, MergeRule] = {
    "weighted_mean": aggregate_weighted_mean,
    "mean": aggregate_mean,
    "median": aggregate_median,
    "majority": aggregate_majority,
    "best": aggregate_best,
}
"""``--merge`` name → rule."""


def vote_neurons(networks: Sequence[IntegerNetwork], scores: Sequence[float]) -> list[np.ndarray]:
    """Per hidden layer, the neurons the batches keep by a validation-weighted vote: neuron j is kept
    when Σ_b ω_b [j active in b] ≥ ½ Σ_b ω_b, with the weights ω of the weighted mean
    (:func:`validation_weights`) and "active" as :func:`~formulations.network.active_neurons`. A
    tie keeps the neuron: keeping one can only keep what the merged weights compute."""
    _check(networks, scores)
    omega = validation_weights(scores)
    omega = omega / omega.sum()
    masks = [active_neurons(net) for net in networks]
    return [
        np.round(np.tensordot(omega, np.stack([m[layer] for m in masks]).astype(np.float64), axes=1),
                 _HALF_SNAP_DECIMALS) >= 0.5
        for layer in range(len(masks[0]))
    ]


def keep_voted_neurons(
    merged: IntegerNetwork, networks: Sequence[IntegerNetwork], scores: Sequence[float]
) -> IntegerNetwork:
    """``merged`` (of the same architecture as ``networks``) with every neuron the batches' vote
    drops (:func:`vote_neurons`) switched off: its incoming weights, bias and outgoing weights 0."""
    return switch_off(merged, vote_neurons(networks, scores))


def epoch_bounds(merged: IntegerNetwork, radius: int) -> ParameterBounds:
    """The next epoch's box: every parameter in [θ̄ − radius, θ̄ + radius] ∩ [−P, P].

    The paper sets the box after epoch e with radius P − e, so it shrinks by one per epoch and its
    last epoch (e = P) searches θ̄ ± 1. A radius of 0 fixes every parameter at the merged value.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    P = merged.P
    return ParameterBounds(
        weight_lower=tuple(np.maximum(w - radius, -P) for w in merged.weights),
        weight_upper=tuple(np.minimum(w + radius, P) for w in merged.weights),
        bias_lower=tuple(np.maximum(b - radius, -P) for b in merged.biases),
        bias_upper=tuple(np.minimum(b + radius, P) for b in merged.biases),
    )


BATCH_STARTS: dict[str, Callable[[IntegerNetwork], IntegerNetwork]] = {
    # A shared start is what lines up the batches' hidden neurons for the merge.
    "merged": lambda merged: merged,
    # The paper's batches started cold, inside the epoch's box around the merged network.
    "zero": lambda merged: IntegerNetwork.zeros(merged.sizes, merged.P),
}
"""``--batch-start`` name → the network every batch of an epoch starts from, given the merged one."""
