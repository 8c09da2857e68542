"""The object every formulation solves for: a feed-forward network with integer parameters.

Hidden neurons use the sign activation (+1 when the pre-activation is >= 0, else -1); the output
layer is read by argmax, the lowest index winning ties. This is the inference rule the MIP models
encode, so it lives beside them and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INPUT_DECIMALS = 4
"""Network inputs are multiples of 10^-INPUT_DECIMALS in [0, 1] (the paper's preprocessing)."""
INPUT_SCALE = 10**INPUT_DECIMALS


@dataclass(frozen=True)
class IntegerNetwork:
    """Weights ``weights[l]`` of shape (out_features, in_features) and ``biases[l]`` of shape
    (out_features,), integers in [-P, P], from the first hidden layer to the output layer."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    P: int

    def __post_init__(self) -> None:
        if self.P < 1:
            raise ValueError(f"P must be >= 1, got {self.P}")
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError("a network needs one bias vector per weight matrix, and at least one layer")
        weights = tuple(np.asarray(w, dtype=np.int64) for w in self.weights)
        biases = tuple(np.asarray(b, dtype=np.int64) for b in self.biases)
        for layer, (w, b) in enumerate(zip(weights, biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {layer}: weight {w.shape} and bias {b.shape} do not fit")
            if layer and w.shape[1] != weights[layer - 1].shape[0]:
                raise ValueError(f"layer {layer} takes {w.shape[1]} inputs, the layer before gives {weights[layer - 1].shape[0]}")
            if np.abs(w).max(initial=0) > self.P or np.abs(b).max(initial=0) > self.P:
                raise ValueError(f"layer {layer} has a parameter outside [-{self.P}, {self.P}]")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    @classmethod
    def zeros(cls, sizes: list[int] | tuple[int, ...], P: int) -> IntegerNetwork:
        """The all-zero network of architecture ``sizes`` = [inputs, hidden..., outputs]."""
        return cls(
            weights=tuple(np.zeros((o, i), dtype=np.int64) for i, o in zip(sizes[:-1], sizes[1:])),
            biases=tuple(np.zeros(o, dtype=np.int64) for o in sizes[1:]),
            P=P,
        )

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def n_parameters(self) -> int:
        return sum(w.size + b.size for w, b in zip(self.weights, self.biases))

    @property
    def bits_per_parameter(self) -> int:
        """floor(log2 P) + 2, as the paper counts: the sign and the magnitude bits."""
        return bits_for(self.P)

    @property
    def size_bits(self) -> int:
        return self.n_parameters * self.bits_per_parameter

    def preactivations(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's pre-activations for inputs ``x`` (examples × inputs), computed exactly.

        Inputs are snapped to the 10^-4 grid and the first layer is computed on the integer scale
        x·10^4 (float64 holds these integer sums exactly), so a pre-activation that is 0 in exact
        arithmetic is 0 here too: the sign at ties is the MIP's, not the rounding error's.
        """
        x_int = np.rint(np.asarray(x, dtype=np.float64) * INPUT_SCALE)
        z = (x_int @ self.weights[0].T + INPUT_SCALE * self.biases[0]) / INPUT_SCALE
        result = [z]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            z = np.where(z >= 0, 1.0, -1.0) @ w.T + b
            result.append(z)
        return result

    def output_from(self, layer: int, activations: np.ndarray) -> np.ndarray:
        """Output pre-activations when hidden layer ``layer`` emits ``activations`` (examples × its
        neurons, ±1), computed as :meth:`preactivations` computes them: what the rest of the
        network makes of one layer's signs."""
        h = np.asarray(activations, dtype=np.float64)
        for w, b in zip(self.weights[layer + 1:], self.biases[layer + 1:]):
            z = h @ w.T + b
            h = np.where(z >= 0, 1.0, -1.0)
        return z

    def hidden_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """The ±1 outputs of every hidden layer."""
        return [np.where(z >= 0, 1.0, -1.0) for z in self.preactivations(x)[:-1]]

    def output(self, x: np.ndarray) -> np.ndarray:
        """Pre-activations of the output layer (examples × classes)."""
        return self.preactivations(x)[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices; np.argmax returns the first maximum, so the lowest index wins ties."""
        return np.argmax(self.output(x), axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """The share of the examples (of their total ``weights``, if given) it classifies right."""
        if len(y) == 0:
            return float("nan")
        return float(np.average(self.predict(x) == np.asarray(y), weights=weights))

    def equals(self, other: IntegerNetwork) -> bool:
        return (
            self.P == other.P
            and len(self.weights) == len(other.weights)
            and all(np.array_equal(a, b) for a, b in zip(self.weights, other.weights))
            and all(np.array_equal(a, b) for a, b in zip(self.biases, other.biases))
        )


def bits_for(bound: int) -> int:
    """Bits of one parameter in [−bound, bound]: floor(log2 bound) + 2, the sign and the magnitude
    bits, as the paper counts."""
    return int(math.floor(math.log2(bound))) + 2


def layer_bounds(network: IntegerNetwork) -> list[int]:
    """Each layer's largest |weight| or |bias| (at least 1): the range a device must store it in."""
    return [max(1, int(np.abs(w).max(initial=0)), int(np.abs(b).max(initial=0)))
            for w, b in zip(network.weights, network.biases)]


def layered_size_bits(network: IntegerNetwork, bounds: list[int]) -> int:
    """The dense size when layer l stores its parameters in [−bounds[l], bounds[l]]: Σ_l parameters_l ·
    bits_for(bounds[l]); with every bound P it is :attr:`IntegerNetwork.size_bits`."""
    return sum((w.size + b.size) * bits_for(bound) for w, b, bound in zip(network.weights, network.biases, bounds))


def nonzero_parameters(network: IntegerNetwork) -> int:
    """Weights and biases that are not 0: what a sparse encoding stores."""
    return sum(int(np.count_nonzero(w)) + int(np.count_nonzero(b)) for w, b in zip(network.weights, network.biases))


def active_neurons(network: IntegerNetwork) -> list[np.ndarray]:
    """For every hidden layer, which neurons are in use: a neuron is active when any of its incoming
    weights, its bias or its outgoing weights is non-zero. A neuron switched off by the MIP has all
    of them 0 (:mod:`formulations.neuron_switches`)."""
    masks = []
    for layer in range(len(network.weights) - 1):
        incoming = np.any(network.weights[layer] != 0, axis=1) | (network.biases[layer] != 0)
        outgoing = np.any(network.weights[layer + 1] != 0, axis=0)
        masks.append(incoming | outgoing)
    return masks


def switch_off(network: IntegerNetwork, keep: list[np.ndarray]) -> IntegerNetwork:
    """``network`` with every hidden neuron not in the boolean masks ``keep`` (one per hidden layer)
    switched off: its incoming weights, bias and outgoing weights set to 0."""
    weights, biases = [w.copy() for w in network.weights], [b.copy() for b in network.biases]
    for layer, kept in enumerate(keep):
        weights[layer][~kept] = 0
        biases[layer][~kept] = 0
        weights[layer + 1][:, ~kept] = 0
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


def strip_neurons(network: IntegerNetwork) -> IntegerNetwork:
    """The same function with fewer neurons: every hidden neuron whose outgoing weights are all 0 is
    removed (its row of W^l and b^l, its column of W^{l+1}), as nothing reads its sign.

    Layers are stripped from the last hidden one backwards, so a neuron read only by neurons that
    were removed goes too. A layer keeps at least one neuron (its first, if none is read), so the
    network keeps its depth; that neuron's outgoing weights are 0, so it changes nothing.
    """
    weights, biases = list(network.weights), list(network.biases)
    for layer in reversed(range(len(weights) - 1)):
        read = np.any(weights[layer + 1] != 0, axis=0)
        if not read.any():
            read[0] = True
        weights[layer], biases[layer] = weights[layer][read], biases[layer][read]
        weights[layer + 1] = weights[layer + 1][:, read]
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


def within_budget(network: IntegerNetwork, budget: int | None) -> IntegerNetwork:
    """``network`` with at most ``budget`` non-zero parameters: the largest |θ| kept, the others
    set to 0 (of equal |θ|, the earlier in the file's order kept: layers first to last, each
    layer's weights row by row, then its biases). Unchanged when it is within the budget or there is
    none; what a merge of networks within a budget, or a perturbed one, is brought back to."""
    if budget is None or nonzero_parameters(network) <= budget:
        return network
    flat = np.concatenate([p.reshape(-1) for w, b in zip(network.weights, network.biases) for p in (w, b)])
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-np.abs(flat), kind="stable")[:budget]] = True
    flat = np.where(keep, flat, 0)
    weights, biases, at = [], [], 0
    for w, b in zip(network.weights, network.biases):
        weights.append(flat[at:at + w.size].reshape(w.shape))
        at += w.size
        biases.append(flat[at:at + b.size])
        at += b.size
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)
