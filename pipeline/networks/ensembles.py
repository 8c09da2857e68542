"""Ensembles of integer networks: which examples and classes each member is trained on, and the
majority vote that combines them (docs/method.md §12).

* bagging (``--ensemble K``): K members, each trained on its own stratified bootstrap resample of
  the training set (every class's count kept, drawn with replacement) from its own start network
  (seed + member). A member has every class as an output and votes for its argmax.
* one-vs-one (``--ensemble ovo``): a member per pair of classes i < j, trained on those two classes'
  examples only; its output 0 votes for class i, output 1 for class j (argmax, lowest index on a
  tie), as BeMi combines its pairwise networks.

The ensemble predicts the class with the most votes, the lowest class index on a tie. A single
network is the ensemble of one member that sees every class, so every run and every file is read
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

import numpy as np

from formulations import IntegerNetwork
from formulations.network import nonzero_parameters


class EnsembleKind(StrEnum):
    SINGLE = "single"
    BAGGING = "bagging"
    ONE_VS_ONE = "one_vs_one"


ONE_VS_ONE = "ovo"
"""``--ensemble ovo``: a member per pair of classes."""


@dataclass(frozen=True, eq=False)
class Member:
    """One member's share of a run: the training examples it sees (indices into the split's
    training set, some repeated in a bootstrap resample), the classes it separates (output o stands
    for class ``classes[o]``), and the seed of its start network and batches."""

    indices: np.ndarray
    classes: tuple[int, ...]
    seed: int


def ensemble_kind(ensemble: int | str | None) -> EnsembleKind:
    if ensemble is None:
        return EnsembleKind.SINGLE
    return EnsembleKind.ONE_VS_ONE if ensemble == ONE_VS_ONE else EnsembleKind.BAGGING


def make_members(ensemble: int | str | None, train_y: np.ndarray, n_classes: int, seed: int) -> list[Member]:
    """The members of a run: one on everything, K bootstrap resamples, or one per pair of classes."""
    every = np.arange(len(train_y))
    kind = ensemble_kind(ensemble)
    if kind == EnsembleKind.SINGLE:
        return [Member(every, tuple(range(n_classes)), seed)]
    if kind == EnsembleKind.ONE_VS_ONE:
        return [Member(every[np.isin(train_y, pair)], pair, seed) for pair in combinations(range(n_classes), 2)]
    return [Member(stratified_bootstrap(train_y, np.random.default_rng([seed, m])), tuple(range(n_classes)), seed + m)
            for m in range(ensemble)]


def stratified_bootstrap(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a resample of ``y`` with replacement that keeps every class's count, sorted."""
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), size=np.sum(y == c), replace=True)
                                   for c in np.unique(y)]))


def member_labels(y: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """``y`` (class indices, each one of ``classes``) as the member's output indices."""
    output_of = np.full(max(classes) + 1, -1)
    output_of[list(classes)] = np.arange(len(classes))
    outputs = output_of[y]
    if np.any(outputs < 0):
        raise ValueError(f"labels outside the member's classes {classes}")
    return outputs


@dataclass(frozen=True)
class Ensemble:
    """Networks that vote: member m's output o is a vote for class ``member_classes[m][o]``."""

    kind: EnsembleKind
    networks: tuple[IntegerNetwork, ...]
    member_classes: tuple[tuple[int, ...], ...]
    n_classes: int

    def __post_init__(self) -> None:
        if not self.networks or len(self.networks) != len(self.member_classes):
            raise ValueError("an ensemble needs one class list per member, and at least one member")
        if self.kind == EnsembleKind.SINGLE and len(self.networks) != 1:
            raise ValueError("a single network is an ensemble of one member")
        inputs = {network.sizes[0] for network in self.networks}
        if len(inputs) != 1:
            raise ValueError(f"members take different numbers of inputs: {sorted(inputs)}")
        for m, (network, classes) in enumerate(zip(self.networks, self.member_classes)):
            if network.sizes[-1] != len(classes):
                raise ValueError(f"member {m} has {network.sizes[-1]} outputs for {len(classes)} classes")
            if any(not 0 <= c < self.n_classes for c in classes) or len(set(classes)) != len(classes):
                raise ValueError(f"member {m}'s classes {classes} are not distinct classes of 0..{self.n_classes - 1}")

    @classmethod
    def single(cls, network: IntegerNetwork) -> Ensemble:
        n_classes = network.sizes[-1]
        return cls(EnsembleKind.SINGLE, (network,), (tuple(range(n_classes)),), n_classes)

    @property
    def is_single(self) -> bool:
        return self.kind == EnsembleKind.SINGLE

    @property
    def n_inputs(self) -> int:
        return self.networks[0].sizes[0]

    @property
    def P(self) -> int:
        return max(network.P for network in self.networks)

    @property
    def n_parameters(self) -> int:
        return sum(network.n_parameters for network in self.networks)

    @property
    def nonzero_parameters(self) -> int:
        """Weights and biases that are not 0, over every member (biases count, as everywhere)."""
        return sum(nonzero_parameters(network) for network in self.networks)

    @property
    def size_bits(self) -> int:
        return sum(network.size_bits for network in self.networks)

    @property
    def pairs(self) -> list[list[int]]:
        return [list(classes) for classes in self.member_classes]

    def member_predictions(self, x: np.ndarray) -> np.ndarray:
        """(members, rows): the class each member votes for."""
        return np.stack([np.asarray(classes)[network.predict(x)]
                         for network, classes in zip(self.networks, self.member_classes)])

    def votes(self, x: np.ndarray) -> np.ndarray:
        """(rows, classes): how many members vote for each class."""
        counts = np.zeros((len(x), self.n_classes), dtype=np.int64)
        for choice in self.member_predictions(x):
            counts[np.arange(len(x)), choice] += 1
        return counts

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.votes(x), axis=1)  # argmax takes the lowest index on a tie

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y)) if len(y) else float("nan")

    def tied_votes(self, x: np.ndarray) -> int:
        """Rows whose most-voted class shares its count with another (decided by the lowest index)."""
        counts = self.votes(x)
        return int(np.sum(np.sum(counts == counts.max(axis=1, keepdims=True), axis=1) > 1))

    def member_accuracies(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        """Each member's accuracy on the rows of its own classes (as it was judged in training)."""
        result = []
        for network, classes in zip(self.networks, self.member_classes):
            mine = np.isin(y, classes)
            result.append(network.accuracy(x[mine], member_labels(y[mine], classes)) if mine.any() else float("nan"))
        return result
