"""Float reference models for the benchmarks: multinomial logistic regression and a small MLP.

Both are trained in numpy, full batch, with Adam and a little L2, on exactly the arrays the integer
networks see, so that their accuracies say how much an integer network gives up (or not) against
an unconstrained float model of the same data. Neither is tuned per dataset: one fixed setting, a
fixed number of steps, no early stopping, the seed fixing the initial weights.
"""

from __future__ import annotations

import numpy as np

STEPS = 1000
LEARNING_RATE = 1e-2
L2 = 1e-3


def logistic_regression(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights and bias of a softmax classifier (no hidden layer)."""
    return _train(x, y, n_classes, hidden=(), seed=seed)


def float_mlp(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int, hidden: tuple[int, ...] = (16,)) -> list[tuple[np.ndarray, np.ndarray]]:
    """A tanh MLP with the integer networks' hidden layers, as float weights."""
    return _train(x, y, n_classes, hidden=hidden, seed=seed)


def accuracy(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(_forward(layers, x)[-1], axis=1) == y))


def _train(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1], *hidden, n_classes]
    layers = [(rng.normal(0.0, 1.0 / np.sqrt(a), size=(a, b)), np.zeros(b)) for a, b in zip(sizes, sizes[1:])]
    flat = [p for layer in layers for p in layer]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in flat]
    target = np.eye(n_classes)[y]
    for step in range(1, STEPS + 1):
        gradients = _gradients(layers, x, target)
        for p, g, (m, v) in zip(flat, gradients, moments):
            g = g + L2 * p
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return layers


def _forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer, input first; the last entry holds the logits."""
    activations = [x]
    for i, (w, b) in enumerate(layers):
        z = activations[-1] @ w + b
        activations.append(z if i == len(layers) - 1 else np.tanh(z))
    return activations


def _gradients(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """Gradients of the mean cross-entropy, in the order (w0, b0, w1, b1, ...)."""
    activations = _forward(layers, x)
    logits = activations[-1] - activations[-1].max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    delta = (probabilities - target) / len(x)
    gradients: list[np.ndarray] = []
    for i in range(len(layers) - 1, -1, -1):
        w, _ = layers[i]
        gradients[:0] = [activations[i].T @ delta, delta.sum(axis=0)]
        if i:
            delta = (delta @ w.T) * (1 - activations[i] ** 2)
    return gradients
