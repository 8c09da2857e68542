"""Stratified train / validation / test splits and stratified training batches.

Experiments compare training-set sizes N on one seed, so the held-out test and validation
sets are drawn first and never depend on N: results at different N are scored on the
same examples. Every draw keeps the class proportions of what it is drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.datasets import Dataset
from pipeline.errors import DataError

TEST_FRACTION = 0.2
"""Share of the data held out as test when a dataset has no official test split (``--test-size``)."""


@dataclass(frozen=True, eq=False)
class Split:
    """Arrays of one train / validation / test split (`eq=False`: the fields are arrays)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    train_rows: np.ndarray | None = None
    """The dataset's rows each split holds (its ``attributes``' rows); the test split's are rows of
    the dataset's own test set where it has one (``test_attributes``)."""
    val_rows: np.ndarray | None = None
    test_rows: np.ndarray | None = None
    train_weights: np.ndarray | None = None
    """How much each training example counts (the dataset's ``weights``; None: one each)."""
    val_weights: np.ndarray | None = None
    """The same for the validation examples, where validation judges a network."""


def split_dataset(
    ds: Dataset,
    *,
    train_size: int | None = None,
    per_class: int | None = None,
    seed: int = 0,
    validation_size: int | None = None,
    test_fraction: float | None = None,
) -> Split:
    """Split `ds` reproducibly for `seed`.

    Test is the official test split (or the user's test file), or else a stratified `test_fraction`
    (default 20 %; 0 holds out no test set). Validation is `validation_size`
    examples of the rest, or else `ds.validation_fraction` of it. Training is `train_size`
    examples (stratified) or `per_class` examples of each class from what remains, or all of it.
    Training takes the first examples of each class in one shuffle fixed by the seed, so a larger
    request extends a smaller one whenever its per-class counts are at least as large.
    """
    if train_size is not None and per_class is not None:
        raise DataError("give either --train-size or --per-class, not both")
    rng = np.random.default_rng(seed)
    pool = rng.permutation(len(ds.y))
    if ds.test_x is None:
        share = TEST_FRACTION if test_fraction is None else test_fraction
        test, pool = _stratified_draw(ds.y, pool, round(share * len(pool)))
        test_x, test_y = (ds.x[test], ds.y[test]) if len(test) else (None, None)
        test_rows = test if len(test) else None
    elif test_fraction is not None:
        raise DataError(f"{ds.name} has a test set of its own; --test-size applies only to data without one")
    else:
        test_x, test_y = ds.test_x, ds.test_y
        test_rows = np.arange(len(ds.test_y))
    validation, pool = _stratified_draw(ds.y, pool, _validation_count(ds, len(pool), validation_size))
    if len(pool) == 0:
        raise DataError(
            f"the test and {len(validation)} validation examples leave no training examples of {ds.name}; "
            "use a smaller --validation-size or more data"
        )
    train = rng.permutation(_training_indices(ds, pool, train_size, per_class))
    return Split(
        train_x=ds.x[train],
        train_y=ds.y[train],
        val_x=ds.x[validation],
        val_y=ds.y[validation],
        test_x=test_x,
        test_y=test_y,
        train_rows=train,
        val_rows=validation,
        test_rows=test_rows,
        train_weights=None if ds.weights is None else ds.weights[train],
        val_weights=None if ds.weights is None else ds.weights[validation],
    )


def stratified_batches(y: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Partition indices 0..len(y)-1 into batches whose class mix follows the whole.

    There are max(1, len(y) // batch_size) batches; the examples that would make a last, partial
    batch are spread over the others, so batch sizes differ by at most one. Each batch holds its
    proportional share of each class (class count x batch size / len(y)), rounded up or down:
    every class first splits its examples between the larger and the smaller batches in proportion
    to their totals, and within each group the classes are dealt round-robin.
    """
    if batch_size < 1:
        raise DataError(f"--batch-size {batch_size} is too small; use a batch size of at least 1")
    if len(y) == 0:
        raise DataError("there are no training examples to split into batches; use a larger training set")
    rng = np.random.default_rng(seed)
    n_batches = max(1, len(y) // batch_size)
    small_size, n_large = divmod(len(y), n_batches)
    labels, class_counts = np.unique(y, return_counts=True)
    to_large = _largest_remainder(class_counts, n_large * (small_size + 1))
    for_large, for_small = [], []
    for label, large_share in zip(labels, to_large):
        members = rng.permutation(np.flatnonzero(y == label))
        for_large.append(members[:large_share])
        for_small.append(members[large_share:])
    batches = _deal(np.concatenate(for_large), n_large) + _deal(np.concatenate(for_small), n_batches - n_large)
    return [rng.permutation(batches[position]) for position in rng.permutation(n_batches)]


def _deal(sequence: np.ndarray, n_batches: int) -> list[np.ndarray]:
    """Deal `sequence` round-robin into `n_batches` batches whose sizes differ by at most one."""
    return [sequence[start::n_batches] for start in range(n_batches)]


def _validation_count(ds: Dataset, available: int, validation_size: int | None) -> int:
    if validation_size is None:
        return round(ds.validation_fraction * available)
    if validation_size < 0:
        raise DataError(f"--validation-size {validation_size} is negative; use 0 or more")
    if validation_size > available:
        raise DataError(
            f"--validation-size {validation_size} is more than the {available} examples {ds.name} "
            "has left after the test split"
        )
    return validation_size


def _training_indices(ds: Dataset, pool: np.ndarray, train_size: int | None, per_class: int | None) -> np.ndarray:
    if per_class is not None:
        return _per_class_draw(ds, pool, per_class)
    if train_size is None:
        return pool
    if train_size < 1:
        raise DataError(f"--train-size {train_size} is too small; use at least 1")
    if train_size > len(pool):
        raise DataError(
            f"--train-size {train_size} is more than the {len(pool)} training examples {ds.name} "
            "has left after the test and validation split"
        )
    chosen, _ = _stratified_draw(ds.y, pool, train_size)
    return chosen


def _per_class_draw(ds: Dataset, pool: np.ndarray, per_class: int) -> np.ndarray:
    """The first `per_class` examples of each class in `pool` order."""
    if per_class < 1:
        raise DataError(f"--per-class {per_class} is too small; use at least 1")
    chosen = []
    for label, name in enumerate(ds.classes):
        members = pool[ds.y[pool] == label]
        if len(members) < per_class:
            raise DataError(
                f"class '{name}' has only {len(members)} training examples left in {ds.name} after the test and "
                f"validation split, fewer than --per-class {per_class}"
            )
        chosen.append(members[:per_class])
    return np.concatenate(chosen)


def _stratified_draw(y: np.ndarray, pool: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Take `count` indices from `pool` (already shuffled), keeping class proportions; return (taken, rest).

    Each class contributes its first examples in `pool` order, so draws are reproducible and nested.
    """
    if count == 0:
        return pool[:0], pool
    labels = y[pool]
    classes, class_counts = np.unique(labels, return_counts=True)
    quotas = _largest_remainder(class_counts, count)
    taken = _rank_within_class(labels) < quotas[np.searchsorted(classes, labels)]
    return pool[taken], pool[~taken]


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `counts`, each share within one of its exact quota."""
    shares = counts * total // counts.sum()
    remainders = counts * total % counts.sum()
    shortfall = total - shares.sum()
    shares[np.argsort(-remainders, kind="stable")[:shortfall]] += 1
    return shares


def _rank_within_class(labels: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same label."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    group_sizes = np.diff(np.r_[group_starts, len(labels)])
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[order] = np.arange(len(labels)) - np.repeat(group_starts, group_sizes)
    return ranks
