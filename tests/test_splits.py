"""Stratified, reproducible train/validation/test splits and training batches."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.data.datasets import Dataset, load_builtin
from pipeline.data.preprocessing import NumericColumn, Preprocessor
from pipeline.data.splits import split_dataset, stratified_batches
from pipeline.errors import DataError


def labelled_rows(class_counts: list[int], **extra) -> Dataset:
    """A dataset whose single feature is the row number, so split rows can be traced back."""
    y = np.repeat(np.arange(len(class_counts)), class_counts)
    return Dataset(
        name="toy",
        x=np.arange(len(y), dtype=np.float64).reshape(-1, 1),
        y=y,
        classes=tuple(f"c{i}" for i in range(len(class_counts))),
        preprocessor=Preprocessor(columns=(NumericColumn("row", 0.0, float(len(y))),)),
        label="class",
        **extra,
    )


def rows(x: np.ndarray) -> set[int]:
    return set(x[:, 0].astype(int).tolist())


@pytest.fixture(scope="module")
def heart():
    return load_builtin("heart")


def test_sizes_follow_the_test_and_validation_fractions(heart):
    split = split_dataset(heart, seed=1)
    assert (len(split.test_y), len(split.val_y), len(split.train_y)) == (61, 24, 218)


def test_same_seed_same_split_and_other_seed_other_split():
    dataset = labelled_rows([300, 100])
    first, again, other = (split_dataset(dataset, train_size=50, seed=s) for s in (7, 7, 8))
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert rows(first.train_x) != rows(other.train_x)


def test_train_validation_and_test_are_disjoint_and_cover_everything_by_default():
    dataset = labelled_rows([300, 100, 50])
    split = split_dataset(dataset, seed=3)
    train, val, test = rows(split.train_x), rows(split.val_x), rows(split.test_x)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(450))
    assert len(test) == 90 and len(val) == 36
    for x, y in ((split.train_x, split.train_y), (split.val_x, split.val_y), (split.test_x, split.test_y)):
        np.testing.assert_array_equal(dataset.y[x[:, 0].astype(int)], y)


def test_held_out_sets_do_not_depend_on_the_training_request():
    dataset = labelled_rows([300, 100, 50])
    splits = [
        split_dataset(dataset, seed=5),
        split_dataset(dataset, seed=5, train_size=40),
        split_dataset(dataset, seed=5, train_size=200),
        split_dataset(dataset, seed=5, per_class=10),
    ]
    assert len({frozenset(rows(s.val_x)) for s in splits}) == 1
    assert len({frozenset(rows(s.test_x)) for s in splits}) == 1


@pytest.mark.parametrize("train_size", [1, 7, 40, 101, 250])
def test_training_sample_keeps_class_proportions_within_one_example(train_size):
    dataset = labelled_rows([300, 100, 50, 7])
    split = split_dataset(dataset, seed=11, train_size=train_size)
    held_out = rows(split.val_x) | rows(split.test_x)
    pool_labels = np.array([dataset.y[i] for i in range(len(dataset.y)) if i not in held_out])
    target = train_size * np.bincount(pool_labels, minlength=4) / len(pool_labels)
    counts = np.bincount(split.train_y, minlength=4)
    assert counts.sum() == train_size
    assert np.all(np.abs(counts - target) < 1)


def test_held_out_sets_are_stratified():
    dataset = labelled_rows([400, 100])
    split = split_dataset(dataset, seed=2)
    assert np.bincount(split.test_y).tolist() == [80, 20]
    assert np.bincount(split.val_y).tolist() == [32, 8]


def test_per_class_takes_exactly_that_many_of_each_class():
    split = split_dataset(labelled_rows([300, 100, 50]), seed=4, per_class=13)
    assert np.bincount(split.train_y).tolist() == [13, 13, 13]


def test_larger_training_sets_extend_smaller_ones_for_two_classes(heart):
    small = split_dataset(heart, seed=9, train_size=40)
    large = split_dataset(heart, seed=9, train_size=80)
    small_rows = {row.tobytes() for row in small.train_x}
    assert small_rows <= {row.tobytes() for row in large.train_x}


def test_official_test_split_is_used_as_is():
    test_x = np.full((5, 1), -1.0)
    test_y = np.array([0, 1, 0, 1, 0])
    dataset = labelled_rows([80, 20], test_x=test_x, test_y=test_y, validation_fraction=0.2)
    split = split_dataset(dataset, seed=0)
    assert split.test_x is test_x and split.test_y is test_y
    assert len(split.val_y) == 20 and len(split.train_y) == 80


def test_validation_size_overrides_the_fraction():
    split = split_dataset(labelled_rows([300, 100]), seed=0, validation_size=50)
    assert len(split.val_y) == 50
    assert np.all(np.abs(np.bincount(split.val_y) - [37.5, 12.5]) < 1)  # of the 240 + 80 left after the test


def test_asking_for_too_many_training_examples_says_how_many_are_left(heart):
    with pytest.raises(DataError, match="--train-size 500 is more than the 218 training examples heart has left"):
        split_dataset(heart, train_size=500)


def test_per_class_beyond_a_class_size_names_the_class():
    with pytest.raises(DataError, match="class 'c2' has only"):
        split_dataset(labelled_rows([300, 100, 20]), per_class=30)


def test_train_size_and_per_class_together_are_refused():
    with pytest.raises(DataError, match="not both"):
        split_dataset(labelled_rows([30, 30]), train_size=10, per_class=2)


def test_validation_size_larger_than_available_is_refused():
    with pytest.raises(DataError, match="--validation-size 1000 is more than the 80 examples"):
        split_dataset(labelled_rows([50, 50]), validation_size=1000)


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=300),
    batch_size=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_batches_partition_the_indices_with_proportional_class_mix(labels, batch_size, seed):
    y = np.array(labels)
    batches = stratified_batches(y, batch_size, seed)
    assert len(batches) == max(1, len(y) // batch_size)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(y)))
    sizes = [len(batch) for batch in batches]
    assert max(sizes) - min(sizes) <= 1
    assert min(sizes) >= min(batch_size, len(y))
    class_totals = np.bincount(y, minlength=5)
    for batch in batches:
        proportional = class_totals * len(batch) / len(y)
        assert np.all(np.abs(np.bincount(y[batch], minlength=5) - proportional) < 1)


def test_a_last_partial_batch_is_spread_over_the_others():
    y = np.array([0] * 70 + [1] * 35)
    batches = stratified_batches(y, batch_size=10, seed=0)
    assert sorted(len(batch) for batch in batches) == [10] * 5 + [11] * 5
    assert sum(len(batch) for batch in batches) == 105


def test_batches_are_deterministic_per_seed():
    y = np.random.default_rng(0).integers(0, 3, size=200)
    first, again, other = (stratified_batches(y, 20, seed) for seed in (1, 1, 2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_batch_size_below_one_is_refused():
    with pytest.raises(DataError, match="--batch-size 0"):
        stratified_batches(np.array([0, 1]), 0, seed=0)
