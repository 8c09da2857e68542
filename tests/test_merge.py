"""The paper's validation-weighted merge, as a pure function over integer networks."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from formulations import IntegerNetwork
from pipeline.merge import aggregate_weighted_mean, validation_weights


def net(values, P=3):
    w = np.array(values[:4]).reshape(2, 2)
    return IntegerNetwork((w, np.array([[values[4], values[5]]])), (np.array(values[6:8]), np.array([values[8]])), P)


def test_weights_are_min_max_normalised():
    assert np.allclose(validation_weights([0.5, 0.75, 1.0]), [0.0, 0.5, 1.0])


def test_all_tied_batches_count_equally_instead_of_dividing_by_zero():
    assert np.allclose(validation_weights([0.8, 0.8, 0.8]), [1, 1, 1])
    a, b = net([1] * 9), net([3] * 9)
    merged = aggregate_weighted_mean([a, b], [0.7, 0.7])
    assert np.all(merged.weights[0] == 2)


def test_worst_batch_is_ignored_and_rounding_is_half_to_even():
    a, b, c = net([1] * 9), net([2] * 9), net([-3] * 9)
    # scores 0.9, 0.9, 0.5: c gets weight 0, a and b weight 1 -> mean 1.5 -> rounds to 2 (even)
    merged = aggregate_weighted_mean([a, b, c], [0.9, 0.9, 0.5])
    assert np.all(merged.weights[0] == 2)
    d = net([3] * 9)
    # mean of 2 and 3 is 2.5 -> 2 (half to even)
    assert np.all(aggregate_weighted_mean([b, d], [0.6, 0.6]).biases[1] == 2)


def test_a_single_batch_is_returned_unchanged():
    a = net([1, -2, 3, 0, -1, 2, -3, 1, 0])
    assert aggregate_weighted_mean([a], [0.4]).equals(a)


@settings(max_examples=200, deadline=None)
@given(
    P=st.integers(1, 15),
    data=st.data(),
)
def test_merge_stays_integer_inside_the_per_parameter_box(P, data):
    n = data.draw(st.integers(1, 6))
    low = np.array(data.draw(st.lists(st.integers(-P, P), min_size=9, max_size=9)))
    high = np.array([data.draw(st.integers(int(lo), P)) for lo in low])
    members = [
        net([data.draw(st.integers(int(lo), int(hi))) for lo, hi in zip(low, high)], P) for _ in range(n)
    ]
    scores = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    merged = aggregate_weighted_mean(members, scores)
    flat = np.concatenate([merged.weights[0].ravel(), merged.weights[1].ravel(), merged.biases[0], merged.biases[1]])
    assert flat.dtype.kind == "i"
    assert np.all(low <= flat) and np.all(flat <= high)
