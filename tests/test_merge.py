"""The merge rules and the per-epoch box, as pure functions over integer networks."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from formulations import IntegerNetwork, ParameterBounds
from pipeline.solving.merge import (
    MERGE_RULES,
    aggregate_best,
    aggregate_majority,
    aggregate_mean,
    aggregate_median,
    aggregate_weighted_mean,
    epoch_bounds,
    validation_weights,
)

ORDER_FREE = [name for name in MERGE_RULES if name != "best"]


def net(values, P=3):
    """A 2-2-1 network from 9 values: the first layer's 4 weights, the output's 2, then the biases."""
    w = np.array(values[:4]).reshape(2, 2)
    return IntegerNetwork((w, np.array([[values[4], values[5]]])), (np.array(values[6:8]), np.array([values[8]])), P)


def flat(network: IntegerNetwork) -> np.ndarray:
    return np.concatenate([w.ravel() for w in network.weights] + list(network.biases))


def from_flat(vector: np.ndarray, sizes: list[int], P: int) -> IntegerNetwork:
    weights, biases, at = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights.append(vector[at : at + n_in * n_out].reshape(n_out, n_in))
        at += n_in * n_out
    for n_out in sizes[1:]:
        biases.append(vector[at : at + n_out])
        at += n_out
    return IntegerNetwork(tuple(weights), tuple(biases), P)


def one_value(value, P=3):
    """A 2-2-1 network with every parameter equal to ``value``."""
    return net([value] * 9, P)


@st.composite
def batch_networks(draw, min_networks=1, max_networks=7):
    """(networks, scores, low, high): networks of one random architecture whose every parameter
    lies in its own box [low, high] ⊆ [-P, P]; scores are accuracies k/V as the pipeline passes."""
    P = draw(st.integers(1, 15))
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    corners = hnp.arrays(np.int64, n_params, elements=st.integers(-P, P))
    a, b = draw(corners), draw(corners)
    low, high = np.minimum(a, b), np.maximum(a, b)
    n = draw(st.integers(min_networks, max_networks))
    offsets = draw(hnp.arrays(np.int64, (n, n_params), elements=st.integers(0, 2 * P)))
    members = [from_flat(low + offset % (high - low + 1), sizes, P) for offset in offsets]
    V = draw(st.integers(1, 200))
    scores = [k / V for k in draw(st.lists(st.integers(0, V), min_size=n, max_size=n))]
    return members, scores, low, high


# --- properties every rule has ------------------------------------------------------------


def test_the_registry_holds_the_cli_names():
    assert list(MERGE_RULES) == ["weighted_mean", "mean", "median", "majority", "best"]


@pytest.mark.parametrize("name", MERGE_RULES)
@settings(max_examples=100, deadline=None)
@given(case=batch_networks())
def test_merge_is_integer_and_inside_the_box_the_batches_share(name, case):
    members, scores, low, high = case
    merged = MERGE_RULES[name](members, scores)
    assert merged.sizes == members[0].sizes and merged.P == members[0].P
    assert all(a.dtype == np.int64 for a in merged.weights + merged.biases)
    values = flat(merged)
    assert np.all(low <= values) and np.all(values <= high)


@pytest.mark.parametrize("name", MERGE_RULES)
@settings(max_examples=50, deadline=None)
@given(case=batch_networks(max_networks=1), copies=st.integers(1, 6), data=st.data())
def test_merging_copies_of_one_network_returns_it(name, case, copies, data):
    (member,), _, _, _ = case
    scores = data.draw(st.lists(st.floats(0, 1), min_size=copies, max_size=copies))
    assert MERGE_RULES[name]([member] * copies, scores).equals(member)


@pytest.mark.parametrize("name", ORDER_FREE)
@settings(max_examples=100, deadline=None)
@given(case=batch_networks(), data=st.data())
def test_merge_does_not_depend_on_the_order_of_the_batches(name, case, data):
    members, scores, _, _ = case
    order = data.draw(st.permutations(range(len(members))))
    shuffled = MERGE_RULES[name]([members[i] for i in order], [scores[i] for i in order])
    assert shuffled.equals(MERGE_RULES[name](members, scores))


@settings(max_examples=60, deadline=None)
@given(case=batch_networks(), data=st.data())
def test_best_does_not_depend_on_the_order_when_scores_are_distinct(case, data):
    members, scores, _, _ = case
    assume(len(set(scores)) == len(scores))
    order = data.draw(st.permutations(range(len(members))))
    assert aggregate_best([members[i] for i in order], [scores[i] for i in order]).equals(
        aggregate_best(members, scores)
    )


def test_best_with_tied_scores_depends_on_the_order():
    a, b = one_value(1), one_value(2)
    assert aggregate_best([a, b], [0.8, 0.8]).equals(a)
    assert aggregate_best([b, a], [0.8, 0.8]).equals(b)


@pytest.mark.parametrize("name", MERGE_RULES)
def test_bad_input_is_refused_with_a_reason(name):
    rule = MERGE_RULES[name]
    with pytest.raises(ValueError, match="nothing to merge"):
        rule([], [])
    with pytest.raises(ValueError, match="2 networks but 1 scores"):
        rule([one_value(1), one_value(2)], [0.5])
    with pytest.raises(ValueError, match="architecture or P"):
        rule([one_value(1, P=3), one_value(1, P=4)], [0.5, 0.6])
    with pytest.raises(ValueError, match="finite"):
        rule([one_value(1), one_value(2)], [0.5, math.nan])


# --- weighted mean (the paper's rule) ------------------------------------------------------


def test_weights_are_min_max_normalised():
    assert np.allclose(validation_weights([0.5, 0.75, 1.0]), [0.0, 0.5, 1.0])


def test_all_tied_batches_count_equally_instead_of_dividing_by_zero():
    assert np.allclose(validation_weights([0.8, 0.8, 0.8]), [1, 1, 1])
    merged = aggregate_weighted_mean([one_value(1), one_value(3)], [0.7, 0.7])
    assert np.all(merged.weights[0] == 2)


def test_worst_batch_is_ignored_and_rounding_is_half_to_even():
    a, b, c = one_value(1), one_value(2), one_value(-3)
    # scores 0.9, 0.9, 0.5: c gets weight 0, a and b weight 1 -> mean 1.5 -> rounds to 2 (even)
    merged = aggregate_weighted_mean([a, b, c], [0.9, 0.9, 0.5])
    assert np.all(merged.weights[0] == 2)
    # mean of 2 and 3 is 2.5 -> 2 (half to even)
    assert np.all(aggregate_weighted_mean([b, one_value(3)], [0.6, 0.6]).biases[1] == 2)


def test_an_exact_half_rounds_the_same_whatever_the_summation_order():
    # The true weighted mean is -0.5; summed in float, one order gave -0.49999999999999994 and
    # the other -0.5000000000000001, so 0 and -1 before halves were snapped.
    values, scores, order = [2, 2, -3, -1, -1, 1], [0.6, 0.8, 0.9, 0.5, 0.8, 0.6], [3, 0, 2, 4, 5, 1]
    members = [one_value(v) for v in values]
    assert np.all(flat(aggregate_weighted_mean(members, scores)) == 0)
    reordered = aggregate_weighted_mean([members[i] for i in order], [scores[i] for i in order])
    assert np.all(flat(reordered) == 0)


def test_a_single_batch_is_returned_unchanged():
    a = net([1, -2, 3, 0, -1, 2, -3, 1, 0])
    assert aggregate_weighted_mean([a], [0.4]).equals(a)


# --- mean, median, majority, best ----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 2], 2), ([2, 3], 2), ([0, 1], 0), ([-1, 0], 0), ([-2, -1], -2), ([1, 1, 2], 1), ([-3, 3, 3], 1)],
)
def test_mean_rounds_half_to_even(values, expected):
    merged = aggregate_mean([one_value(v) for v in values], [0.5] * len(values))
    assert np.all(flat(merged) == expected)


def test_mean_ignores_the_scores():
    members = [one_value(-3), one_value(3), one_value(3)]
    assert np.all(flat(aggregate_mean(members, [1.0, 0.0, 0.0])) == 1)


@settings(max_examples=60, deadline=None)
@given(case=batch_networks())
def test_mean_is_the_weighted_mean_when_every_batch_scores_the_same(case):
    members, scores, _, _ = case
    tied = [scores[0]] * len(members)
    assert aggregate_mean(members, tied).equals(aggregate_weighted_mean(members, tied))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([3, -1, 2], 2), ([1, 2], 2), ([0, 1], 0), ([-3, 1, 2, 3], 2), ([1, 2, 3, 3], 2), ([-3, -3, 3], -3)],
)
def test_median_of_an_even_count_rounds_the_middle_pair_half_to_even(values, expected):
    merged = aggregate_median([one_value(v) for v in values], [0.5] * len(values))
    assert np.all(flat(merged) == expected)


@settings(max_examples=60, deadline=None)
@given(case=batch_networks())
def test_median_lies_between_the_two_middle_values(case):
    members, scores, _, _ = case
    stack = np.sort(np.stack([flat(m) for m in members]), axis=0)
    lower, upper = stack[(len(members) - 1) // 2], stack[len(members) // 2]
    values = flat(aggregate_median(members, scores))
    assert np.all(lower <= values) and np.all(values <= upper)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2, 2, -3], 2),  # the most frequent value, however far the others pull the mean
        ([-3, -3, 1, 1, 2], 1),  # a tie goes to the value nearest 0
        ([3, -2], -2),
        ([-1, 1], 1),  # of -v and +v, the positive one
        ([-2, -2, 2, 2, 0], 2),
        ([1, 2, 3], 1),
    ],
)
def test_majority_takes_the_most_frequent_value_and_breaks_ties_toward_zero(values, expected):
    merged = aggregate_majority([one_value(v) for v in values], [0.5] * len(values))
    assert np.all(flat(merged) == expected)


def test_majority_votes_parameter_by_parameter():
    a = net([1, 0, 0, 0, 0, 0, 0, 0, 0])
    b = net([1, 2, 0, 0, 0, 0, 0, 0, -1])
    c = net([-1, 2, 3, 0, 0, 0, 0, 0, -1])
    assert np.array_equal(flat(aggregate_majority([a, b, c], [0.1, 0.2, 0.3])), [1, 2, 0, 0, 0, 0, 0, 0, -1])


@settings(max_examples=60, deadline=None)
@given(case=batch_networks())
def test_majority_is_a_most_frequent_input_value(case):
    members, scores, _, _ = case
    stack = np.stack([flat(m) for m in members])
    values = flat(aggregate_majority(members, scores))
    votes = (stack == values).sum(axis=0)
    most = np.array([np.unique(column, return_counts=True)[1].max() for column in stack.T])
    assert np.array_equal(votes, most)


def test_best_returns_the_highest_scoring_batch_and_the_first_of_equals():
    a, b, c = one_value(1), one_value(2), one_value(3)
    assert aggregate_best([a, b, c], [0.5, 0.9, 0.7]).equals(b)
    assert aggregate_best([a, b, c], [0.5, 0.9, 0.9]).equals(b)


@settings(max_examples=60, deadline=None)
@given(case=batch_networks())
def test_best_is_an_input_with_the_top_score(case):
    members, scores, _, _ = case
    merged = aggregate_best(members, scores)
    assert any(merged.equals(m) and s == max(scores) for m, s in zip(members, scores))


# --- the per-epoch box ---------------------------------------------------------------------


def test_epoch_bounds_are_the_merged_value_plus_minus_the_radius_clipped_to_P():
    merged = net([3, -15, 0, 15, 14, -14, 1, -1, 0], P=15)
    bounds = epoch_bounds(merged, 15)  # after the paper's epoch 0: already cuts one side
    assert np.array_equal(bounds.weight_lower[0], [[-12, -15], [-15, 0]])
    assert np.array_equal(bounds.weight_upper[0], [[15, 0], [15, 15]])
    last = epoch_bounds(merged, 1)  # the paper's last epoch
    assert np.array_equal(last.weight_lower[1], [[13, -15]]) and np.array_equal(last.weight_upper[1], [[15, -13]])
    assert np.array_equal(last.bias_lower[0], [0, -2]) and np.array_equal(last.bias_upper[1], [1])


def test_radius_zero_fixes_every_parameter_and_a_negative_one_is_refused():
    merged = net([1, -2, 3, 0, -1, 2, -3, 1, 0])
    bounds = epoch_bounds(merged, 0)
    assert all(np.array_equal(lo, hi) for lo, hi in zip(bounds.weight_lower, bounds.weight_upper))
    assert bounds.contains(merged)
    with pytest.raises(ValueError, match="radius"):
        epoch_bounds(merged, -1)


@settings(max_examples=60, deadline=None)
@given(case=batch_networks(max_networks=1), radius=st.integers(0, 31))
def test_epoch_bounds_hold_the_merged_network_inside_the_global_box(case, radius):
    (merged,), _, _, _ = case
    P = merged.P
    bounds = epoch_bounds(merged, radius)
    assert isinstance(bounds, ParameterBounds) and bounds.sizes == merged.sizes
    assert bounds.contains(merged)
    lower = np.concatenate([w.ravel() for w in bounds.weight_lower] + list(bounds.bias_lower))
    upper = np.concatenate([w.ravel() for w in bounds.weight_upper] + list(bounds.bias_upper))
    theta = flat(merged)
    assert np.array_equal(lower, np.maximum(theta - radius, -P)) and np.array_equal(upper, np.minimum(theta + radius, P))
    if radius >= 2 * P:
        assert np.all(lower == -P) and np.all(upper == P)
