"""Raw table rows -> network inputs in [0, 1] on a fixed decimal grid.

The MIP formulations treat inputs as exact constants, so every input must lie on the
10**-decimals grid (default 1e-4, as in the paper; docs/method.md §9). A fitted `Preprocessor`
is stored as JSON next to a trained network, so that `predict` can take raw rows
and transform them exactly as the training data was transformed.

Categorical values are compared as strings (pyarrow's cast to string, which writes
the integer-valued number 3.0 as "3"), so a category fitted on an integer column
still matches when the same value arrives as a float or a string at prediction time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import DataError, NetworkFileError, brief

MISSING_CATEGORY = ""
"""The category that missing (null) values of a categorical column fall into."""

MAX_DECIMALS = 6
"""With at most 10^7 inputs (the network file's limit) and |parameters| <= 127, the first layer's
sums on the integer scale (inputs times 10^decimals) stay below 2^53, so float64 computes them exactly."""


@dataclass(frozen=True)
class NumericColumn:
    """A column scaled by min-max to [0, 1]; `low == high` means the feature is always 0."""

    name: str
    low: float
    high: float


@dataclass(frozen=True)
class CategoricalColumn:
    """A column one-hot encoded: one feature per category, in this order."""

    name: str
    categories: tuple[str, ...]


Column = NumericColumn | CategoricalColumn


@dataclass(frozen=True)
class Preprocessor:
    """Fitted per-column transformations, in input-feature order."""

    columns: tuple[Column, ...]
    decimals: int = 4

    @classmethod
    def fit(cls, table: pa.Table, categorical: Sequence[str] | None = None) -> Preprocessor:
        """Fit on a table of feature columns only (the label must not be in it).

        Columns named in `categorical` are one-hot encoded and all others min-max scaled.
        With `categorical=None`, numeric arrow types (integer, float, bool) are scaled and
        every other column is one-hot encoded.
        """
        if table.num_rows == 0:
            raise DataError("the data has no rows to fit the preprocessing on; provide at least one row")
        categorical_names = _resolve_categorical(table, categorical)
        columns = tuple(
            _fit_categorical(name, table.column(name))
            if name in categorical_names
            else _fit_numeric(name, table.column(name))
            for name in table.column_names
        )
        return cls(columns=columns)

    def transform(self, table: pa.Table) -> np.ndarray:
        """Return a float64 array (rows x features) on the 10**-decimals grid in [0, 1].

        Columns of `table` that the preprocessor does not know (such as the label) are ignored.
        """
        self._check_columns_present(table)
        blocks = [self._transform_column(column, table.column(column.name)) for column in self.columns]
        if not blocks:
            return np.zeros((table.num_rows, 0))
        return np.column_stack(blocks)

    @property
    def feature_names(self) -> list[str]:
        """One name per output feature: the column name, or `column=category` for one-hot features."""
        names: list[str] = []
        for column in self.columns:
            if isinstance(column, NumericColumn):
                names.append(column.name)
            else:
                names.extend(f"{column.name}={category}" for category in column.categories)
        return names

    def to_json(self) -> dict:
        """A plain JSON-able dict from which `from_json` rebuilds an equal preprocessor."""
        return {"decimals": self.decimals, "columns": [_column_to_json(column) for column in self.columns]}

    @classmethod
    def from_json(cls, data: dict) -> Preprocessor:
        """Rebuild a preprocessor stored by `to_json` (for example inside a network file); a value
        that is not what `to_json` writes is a NetworkFileError naming its key."""
        decimals = data.get("decimals")
        if not _is_json_integer(decimals) or not 0 <= decimals <= MAX_DECIMALS:
            raise NetworkFileError(
                f"intnet.preprocessing key 'decimals' must be an integer in 0..{MAX_DECIMALS}, got {brief(decimals)}"
            )
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise NetworkFileError(f"intnet.preprocessing key 'columns' must be a list, got {brief(columns)}")
        return cls(columns=tuple(_column_from_json(index, entry) for index, entry in enumerate(columns)),
                   decimals=decimals)

    def _check_columns_present(self, table: pa.Table) -> None:
        available = set(table.column_names)
        for column in self.columns:
            if column.name not in available:
                trained_on = ", ".join(c.name for c in self.columns)
                raise DataError(f"column '{column.name}' is missing; the model was trained on columns {trained_on}")

    def _transform_column(self, column: Column, values: pa.ChunkedArray) -> np.ndarray:
        if isinstance(column, NumericColumn):
            return self._scale(column, values)
        return _one_hot(column, values)

    def _scale(self, column: NumericColumn, values: pa.ChunkedArray) -> np.ndarray:
        numbers = _finite_numbers(column.name, values)
        if column.high == column.low:
            return np.zeros(len(numbers))
        scaled = np.clip((numbers - column.low) / (column.high - column.low), 0.0, 1.0)
        return round_to_grid(scaled, self.decimals)


def round_to_grid(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round to the 10**-decimals grid so that `values * 10**decimals` rounds to itself exactly."""
    scale = 10.0**decimals
    return np.round(values * scale) / scale


def as_strings(name: str, values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Column `name` as strings, the form in which categories and class labels are compared; nulls stay null."""
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(
            f"column '{name}' has values of type {values.type} that cannot be read as text; convert them to strings"
        ) from None


def sorted_categories(values: set[str]) -> tuple[str, ...]:
    """Sort numerically when every value is a number, else as strings; the missing category comes first."""
    present = sorted(values - {MISSING_CATEGORY})
    if all(_is_number(value) for value in present):
        present.sort(key=float)
    missing = (MISSING_CATEGORY,) if MISSING_CATEGORY in values else ()
    return missing + tuple(present)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _resolve_categorical(table: pa.Table, categorical: Sequence[str] | None) -> set[str]:
    if categorical is None:
        return {field.name for field in table.schema if not is_numeric_type(field.type)}
    unknown = [name for name in categorical if name not in table.column_names]
    if unknown:
        raise DataError(
            f"categorical column '{unknown[0]}' is not in the data; its columns are {', '.join(table.column_names)}"
        )
    return set(categorical)


def is_numeric_type(arrow_type: pa.DataType) -> bool:
    """Whether a column of this type is scaled (one input); any other is one-hot encoded."""
    return any(
        check(arrow_type)
        for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)
    )


def _fit_numeric(name: str, values: pa.ChunkedArray) -> NumericColumn:
    numbers = _finite_numbers(name, values)
    return NumericColumn(name=name, low=float(numbers.min()), high=float(numbers.max()))


def _fit_categorical(name: str, values: pa.ChunkedArray) -> CategoricalColumn:
    texts = pc.fill_null(as_strings(name, values), MISSING_CATEGORY)
    distinct = set(pc.unique(texts).to_pylist())
    return CategoricalColumn(name=name, categories=sorted_categories(distinct))


def _finite_numbers(name: str, values: pa.ChunkedArray) -> np.ndarray:
    """The column as float64, refusing text that is not a number and missing or infinite values."""
    try:
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(
            f"column '{name}' is numeric but holds values that are not numbers; fix them or treat it as categorical"
        ) from None
    bad = int(np.count_nonzero(~np.isfinite(numbers)))
    if bad:
        raise DataError(
            f"numeric column '{name}' has {bad} missing or non-finite values; fill or drop those rows"
        )
    return numbers


def _one_hot(column: CategoricalColumn, values: pa.ChunkedArray) -> np.ndarray:
    """One-hot rows; a category not seen when fitting gives all zeros for this column."""
    texts = pc.fill_null(as_strings(column.name, values), MISSING_CATEGORY)
    positions = pc.index_in(texts, value_set=pa.array(column.categories, type=pa.string()))
    positions = positions.to_numpy(zero_copy_only=False)  # unseen categories are NaN
    encoded = np.zeros((len(positions), len(column.categories)))
    seen = ~np.isnan(positions)
    encoded[np.flatnonzero(seen), positions[seen].astype(np.int64)] = 1.0
    return encoded


def _column_to_json(column: Column) -> dict:
    if isinstance(column, NumericColumn):
        return {"kind": "numeric", "name": column.name, "low": column.low, "high": column.high}
    return {"kind": "categorical", "name": column.name, "categories": list(column.categories)}


def _column_from_json(index: int, entry: Any) -> Column:
    where = f"intnet.preprocessing column {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise NetworkFileError(f"{where} must be an object with a string 'name', got {brief(entry)}")
    where += f" ('{entry['name']}')"
    kind = entry.get("kind")
    if kind == "numeric":
        low, high = entry.get("low"), entry.get("high")
        for key, value in (("low", low), ("high", high)):
            if not _is_json_number(value) or not math.isfinite(value):
                raise NetworkFileError(f"{where}: '{key}' must be a finite number, got {brief(value)}")
        if low > high:
            raise NetworkFileError(f"{where}: 'low' {low!r} is above 'high' {high!r}")
        return NumericColumn(name=entry["name"], low=float(low), high=float(high))
    if kind == "categorical":
        categories = entry.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise NetworkFileError(f"{where}: 'categories' must be a list of strings, got {brief(categories)}")
        return CategoricalColumn(name=entry["name"], categories=tuple(categories))
    raise NetworkFileError(f"{where}: 'kind' must be 'numeric' or 'categorical', got {brief(kind)}")


def _is_json_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_json_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
