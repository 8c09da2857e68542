"""A MIP written as arrays, for models small and regular enough that Pyomo's building and
translation would cost more than the solve (the single-neuron step of local search,
:mod:`formulations.neuron_choice`): measured on Adult, all 26,049 training examples, a neuron's
Pyomo model took 0.08-0.14 s to build and 0.19-0.35 s for appsi to hand to HiGHS, beside a 2 s
solve; its arrays take milliseconds.

    minimise  offset + Σ_c cost_c v_c
    subject to  row_lower ≤ A v ≤ row_upper,   lower ≤ v ≤ upper,   v_c ∈ Z where ``integer``

with A in compressed-row form (``starts``, ``index``, ``value``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MatrixModel:
    cost: np.ndarray
    offset: float
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    starts: np.ndarray
    index: np.ndarray
    value: np.ndarray

    @property
    def n_columns(self) -> int:
        return len(self.cost)

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)

    def row_activity(self, columns: np.ndarray) -> np.ndarray:
        """A v for column values ``columns``."""
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.starts))
        return np.bincount(rows, weights=self.value * columns[self.index], minlength=self.n_rows)

    def objective(self, columns: np.ndarray) -> float:
        return self.offset + float(self.cost @ columns)


def rows_from_triplets(n_rows: int, rows: np.ndarray, columns: np.ndarray, values: np.ndarray):
    """(starts, index, value) of the compressed-row matrix with entries (rows[e], columns[e]) = values[e]."""
    order = np.lexsort((columns, rows))
    starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    return starts, columns[order], values[order]


def add_count_rows_on_columns(matrix: MatrixModel, rows, columns: np.ndarray) -> MatrixModel:
    """``matrix`` with counting rows lower ≤ constant + Σ_j a_j v_{columns[j]} ≤ upper, each given
    as (a, constant, lower, upper) (:class:`formulations.constraints.CountRow` on the model's own
    indicator columns)."""
    rows = list(rows)
    base_rows = np.repeat(np.arange(matrix.n_rows), np.diff(matrix.starts))
    new_rows, new_columns, new_values = [base_rows], [matrix.index], [matrix.value]
    for r, (coefficients, _, _, _) in enumerate(rows):
        used = np.flatnonzero(coefficients)
        new_rows.append(np.full(len(used), matrix.n_rows + r))
        new_columns.append(columns[used])
        new_values.append(np.asarray(coefficients, dtype=np.float64)[used])
    starts, index, value = rows_from_triplets(matrix.n_rows + len(rows), np.concatenate(new_rows),
                                              np.concatenate(new_columns), np.concatenate(new_values))
    lower = [row_lower - constant for _, constant, row_lower, _ in rows]
    upper = [row_upper - constant for _, constant, _, row_upper in rows]
    return MatrixModel(matrix.cost, matrix.offset, matrix.lower, matrix.upper, matrix.integer,
                       np.concatenate([matrix.row_lower, lower]), np.concatenate([matrix.row_upper, upper]),
                       starts, index, value)

