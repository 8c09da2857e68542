"""Per-parameter boxes and the interval arithmetic that turns them into big-M constants.

Every big-M in intnet comes from here: the bounds of each pre-activation are propagated layer by
layer over the actual training inputs and the parameters' boxes, per example and per neuron,
never a blanket constant. Tight constants are what let HiGHS's LP relaxation say anything at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulations.network import INPUT_SCALE, IntegerNetwork


@dataclass(frozen=True)
class ParameterBounds:
    """Integer box [lower, upper] for every weight and bias, layer by layer.

    A parameter with lower == upper is fixed; that is how dead inputs are pinned and how batch
    training narrows the search around the merged network of the previous epoch.
    """

    weight_lower: tuple[np.ndarray, ...]
    weight_upper: tuple[np.ndarray, ...]
    bias_lower: tuple[np.ndarray, ...]
    bias_upper: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        for name in ("weight_lower", "weight_upper", "bias_lower", "bias_upper"):
            object.__setattr__(self, name, tuple(np.asarray(a, dtype=np.int64) for a in getattr(self, name)))
        for layer, (wl, wu, bl, bu) in enumerate(
            zip(self.weight_lower, self.weight_upper, self.bias_lower, self.bias_upper)
        ):
            if np.any(wl > wu) or np.any(bl > bu):
                raise ValueError(f"layer {layer}: a lower bound exceeds its upper bound")

    @classmethod
    def box(cls, sizes: list[int] | tuple[int, ...], P: int) -> ParameterBounds:
        """Every parameter in [-P, P]."""
        shapes = list(zip(sizes[1:], sizes[:-1]))
        return cls(
            weight_lower=tuple(np.full(s, -P) for s in shapes),
            weight_upper=tuple(np.full(s, P) for s in shapes),
            bias_lower=tuple(np.full(o, -P) for o, _ in shapes),
            bias_upper=tuple(np.full(o, P) for o, _ in shapes),
        )

    @property
    def sizes(self) -> list[int]:
        return [self.weight_lower[0].shape[1]] + [w.shape[0] for w in self.weight_lower]

    def fix_inputs(self, inputs: np.ndarray, values: np.ndarray) -> ParameterBounds:
        """Pin the first-layer weights of the boolean mask ``inputs`` to ``values`` (out × in)."""
        lower = self.weight_lower[0].copy()
        upper = self.weight_upper[0].copy()
        lower[:, inputs] = values[:, inputs]
        upper[:, inputs] = values[:, inputs]
        return ParameterBounds(
            weight_lower=(lower,) + self.weight_lower[1:],
            weight_upper=(upper,) + self.weight_upper[1:],
            bias_lower=self.bias_lower,
            bias_upper=self.bias_upper,
        )

    def neighbourhood(
        self, network: IntegerNetwork, free_weights: tuple[np.ndarray, ...], free_biases: tuple[np.ndarray, ...]
    ) -> ParameterBounds:
        """Every parameter fixed at ``network``'s value except those the boolean masks free, which
        keep their box: the sub-problem of a local-search step around ``network``."""

        def pin(values, lower, upper, free, pick):
            return tuple(np.where(f, pick(lo, hi), v) for v, lo, hi, f in zip(values, lower, upper, free))

        return ParameterBounds(
            weight_lower=pin(network.weights, self.weight_lower, self.weight_upper, free_weights, lambda lo, hi: lo),
            weight_upper=pin(network.weights, self.weight_lower, self.weight_upper, free_weights, lambda lo, hi: hi),
            bias_lower=pin(network.biases, self.bias_lower, self.bias_upper, free_biases, lambda lo, hi: lo),
            bias_upper=pin(network.biases, self.bias_lower, self.bias_upper, free_biases, lambda lo, hi: hi),
        )

    def clip(self, network: IntegerNetwork) -> IntegerNetwork:
        """The network with every parameter moved to the nearest value inside its box."""
        return IntegerNetwork(
            weights=tuple(np.clip(w, lo, hi) for w, lo, hi in zip(network.weights, self.weight_lower, self.weight_upper)),
            biases=tuple(np.clip(b, lo, hi) for b, lo, hi in zip(network.biases, self.bias_lower, self.bias_upper)),
            P=network.P,
        )

    def contains(self, network: IntegerNetwork) -> bool:
        return all(
            np.all(wl <= w) and np.all(w <= wu) and np.all(bl <= b) and np.all(b <= bu)
            for w, b, wl, wu, bl, bu in zip(
                network.weights, network.biases,
                self.weight_lower, self.weight_upper, self.bias_lower, self.bias_upper,
            )
        )


def first_layer_bounds(x: np.ndarray, bounds: ParameterBounds) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of z_kj = sum_i x_ki W_ji + b_j per example k and neuron j.

    The minimum takes a weight at its lower bound where its input is positive and at its upper
    bound where it is negative: L_kj = sum_i (x⁺_ki lb_ji − x⁻_ki ub_ji) + lb_j, and U_kj the mirror.
    Training inputs are non-negative; a neuron of a deeper layer seen on its own (local search's
    neuron step) has ±1 inputs. Computed on the exact integer scale of ``INPUT_SCALE`` * z so that
    the bounds are free of rounding.
    """
    x_int = np.rint(np.asarray(x, dtype=np.float64) * INPUT_SCALE)
    positive, negative = np.maximum(x_int, 0), np.minimum(x_int, 0)
    wl, wu = bounds.weight_lower[0].T, bounds.weight_upper[0].T
    lower = positive @ wl + negative @ wu + INPUT_SCALE * bounds.bias_lower[0]
    upper = positive @ wu + negative @ wl + INPUT_SCALE * bounds.bias_upper[0]
    return lower / INPUT_SCALE, upper / INPUT_SCALE


def product_bounds(weight_lower: np.ndarray, weight_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of c = W·s over s ∈ {-1, +1}: [min(lb, -ub), max(ub, -lb)]."""
    return np.minimum(weight_lower, -weight_upper), np.maximum(weight_upper, -weight_lower)


def deeper_layer_bounds(
    sign_lower: np.ndarray, sign_upper: np.ndarray, layer: int, bounds: ParameterBounds
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of z_kj = sum_i W_ji s_ki + b_j where the previous layer's sign s_ki lies in
    [sign_lower, sign_upper] ⊆ {-1, +1} (a sign known from its own bounds has lower == upper).

    For a known sign the product W·s has the box of W (or its mirror); for an unknown one it has
    the product box of :func:`product_bounds`.
    """
    wl, wu = bounds.weight_lower[layer], bounds.weight_upper[layer]
    free_lo, free_hi = product_bounds(wl, wu)
    positive = (sign_lower > 0).astype(np.float64)
    negative = (sign_upper < 0).astype(np.float64)
    free = 1.0 - positive - negative
    lower = positive @ wl.T + negative @ (-wu).T + free @ free_lo.T + bounds.bias_lower[layer]
    upper = positive @ wu.T + negative @ (-wl).T + free @ free_hi.T + bounds.bias_upper[layer]
    return lower, upper


def sign_bounds(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sign activation (+1 at z >= 0) over a pre-activation interval [lower, upper]."""
    return np.where(lower >= 0, 1, -1), np.where(upper >= 0, 1, -1)


def preactivation_bounds(x: np.ndarray, bounds: ParameterBounds) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lower, upper) of every layer's pre-activations, examples × neurons, layer by layer."""
    result = [first_layer_bounds(x, bounds)]
    for layer in range(1, len(bounds.weight_lower)):
        s_lo, s_hi = sign_bounds(*result[-1])
        result.append(deeper_layer_bounds(s_lo, s_hi, layer, bounds))
    return result
