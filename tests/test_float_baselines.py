"""The benchmarks' float reference models: exact gradients, and they fit what they should."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from support.float_baselines import _gradients, accuracy, float_mlp, logistic_regression  # noqa: E402


def cross_entropy(layers, x, target):
    from support.float_baselines import _forward

    logits = _forward(layers, x)[-1]
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -float(np.mean(np.sum(target * log_p, axis=1)))


@pytest.mark.parametrize("hidden", [(), (4,), (3, 2)])
def test_gradients_match_finite_differences(hidden):
    rng = np.random.default_rng(0)
    x, sizes = rng.normal(size=(7, 3)), [3, *hidden, 4]
    layers = [(rng.normal(size=(a, b)), rng.normal(size=b)) for a, b in zip(sizes, sizes[1:])]
    target = np.eye(4)[rng.integers(0, 4, 7)]
    analytic = _gradients(layers, x, target)
    flat = [p for layer in layers for p in layer]
    for parameter, gradient in zip(flat, analytic):
        numeric = np.zeros_like(parameter)
        for index in np.ndindex(parameter.shape):
            saved = parameter[index]
            parameter[index] = saved + 1e-6
            up = cross_entropy(layers, x, target)
            parameter[index] = saved - 1e-6
            down = cross_entropy(layers, x, target)
            parameter[index] = saved
            numeric[index] = (up - down) / 2e-6
        np.testing.assert_allclose(gradient, numeric, atol=1e-6)


def test_logistic_regression_separates_and_the_mlp_fits_xor():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(int)
    assert accuracy(logistic_regression(x, y, 2, seed=0), x, y) >= 0.97
    xor_x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    xor_y = np.array([0, 1, 1, 0])
    assert accuracy(logistic_regression(xor_x, xor_y, 2, seed=0), xor_x, xor_y) <= 0.75  # not linearly separable
    assert accuracy(float_mlp(xor_x, xor_y, 2, seed=0, hidden=(4,)), xor_x, xor_y) == 1.0
