"""Counting non-zero parameters: the indicators min-weight and compression minimise, and the size
budget every training model carries when it is given one (``--max-nonzero K``: at most K weights
and biases of the whole network are not 0; docs/method.md §15).

One binary a per free weight or bias θ with box [lb, ub]:

    lb·a ≤ θ ≤ ub·a                                   (``{weight,bias}_used_lower/upper``)
    Σ a + #{fixed parameters ≠ 0} ≤ K                  (``nonzero_budget``)

θ ≠ 0 forces a = 1; a box without 0 makes its parameter non-zero whatever the solver does, so its a
is fixed at 1 with no rows. a = 0 forces θ = 0, so the count of any feasible point's weights is at
most Σ a: the budget holds for the weights returned, which the solve recounts in numpy
(:func:`pipeline.solving.solve.solve_mip`). Only the first-layer rows of a single-neuron step are
written as arrays (:func:`add_budget_columns`), the same rows on columns.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from formulations.matrix import MatrixModel, rows_from_triplets
from formulations.network import IntegerNetwork


def add_usage(block: pyo.Block, kind: str, lower: np.ndarray, upper: np.ndarray) -> None:
    """Add binaries ``{kind}_used`` with lb·a ≤ θ ≤ ub·a for the free parameters ``block.{kind}``."""
    params = getattr(block, kind)
    free = [index for index, var in params.items() if not var.fixed]
    used = pyo.Var(pyo.Set(initialize=free, dimen=lower.ndim), domain=pyo.Binary)
    block.add_component(f"{kind}_used", used)
    for index in free:
        if lower[index] > 0 or upper[index] < 0:
            used[index].fix(1)

    def upper_row(b, *index):
        key = index if len(index) > 1 else index[0]
        if upper[key] <= 0 or used[key].fixed:
            return pyo.Constraint.Skip
        return params[key] <= int(upper[key]) * used[key]

    def lower_row(b, *index):
        key = index if len(index) > 1 else index[0]
        if lower[key] >= 0 or used[key].fixed:
            return pyo.Constraint.Skip
        return params[key] >= int(lower[key]) * used[key]

    block.add_component(f"{kind}_used_upper", pyo.Constraint(used.index_set(), rule=upper_row))
    block.add_component(f"{kind}_used_lower", pyo.Constraint(used.index_set(), rule=lower_row))


def add_all_usage(model: pyo.Block) -> pyo.Expression:
    """The indicators of every layer's parameters (added where a model has not already), and the
    count Σ a + #{fixed parameters ≠ 0} as an expression."""
    fixed_nonzero = 0
    for block in model.layer.values():
        for kind in ("weight", "bias"):
            lower, upper = getattr(block, f"{kind}_bounds")
            if not hasattr(block, f"{kind}_used"):
                add_usage(block, kind, lower, upper)
            params = getattr(block, kind)
            fixed_nonzero += sum(1 for var in params.values() if var.fixed and round(var.value) != 0)
    used = [var for block in model.layer.values() for var in (*block.weight_used.values(), *block.bias_used.values())]
    return fixed_nonzero + pyo.quicksum(used)


def add_nonzero_budget(model: pyo.Block, budget: int) -> None:
    """At most ``budget`` parameters of the network encoded on ``model.layer`` are not 0."""
    model.nonzero_budget = pyo.Constraint(expr=add_all_usage(model) <= budget)


def set_usage_values(model: pyo.Block, network: IntegerNetwork) -> None:
    """Every indicator of :func:`add_usage` at [θ ≠ 0] for ``network``'s parameters."""
    for layer, block in model.layer.items():
        for (j, i), var in block.weight_used.items():
            if not var.fixed:
                var.set_value(int(network.weights[layer][j, i] != 0))
        for j, var in block.bias_used.items():
            if not var.fixed:
                var.set_value(int(network.biases[layer][j] != 0))


def add_budget_columns(matrix: MatrixModel, parameters: np.ndarray, budget: int) -> MatrixModel:
    """``matrix`` with the budget on its integer columns ``parameters``: a binary column a per
    parameter and the rows θ − ub·a ≤ 0, θ − lb·a ≥ 0 and Σ a ≤ ``budget`` (a parameter whose
    box excludes 0 gets a fixed at 1). The new columns follow the old ones, so a solution's first
    columns are read as before; :func:`budget_start` extends a start."""
    lower, upper = matrix.lower[parameters], matrix.upper[parameters]
    n_old, n_new = matrix.n_columns, len(parameters)
    used = n_old + np.arange(n_new)
    base_rows = np.repeat(np.arange(matrix.n_rows), np.diff(matrix.starts))
    upper_rows, lower_rows, budget_row = matrix.n_rows + np.arange(n_new), matrix.n_rows + n_new + np.arange(n_new), \
        matrix.n_rows + 2 * n_new
    rows = np.concatenate([base_rows, upper_rows, upper_rows, lower_rows, lower_rows, np.full(n_new, budget_row)])
    columns = np.concatenate([matrix.index, parameters, used, parameters, used, used])
    values = np.concatenate([matrix.value, np.ones(n_new), -upper, np.ones(n_new), -lower, np.ones(n_new)])
    starts, index, value = rows_from_triplets(matrix.n_rows + 2 * n_new + 1, rows, columns, values)
    excludes_zero = (lower > 0) | (upper < 0)
    return MatrixModel(
        cost=np.concatenate([matrix.cost, np.zeros(n_new)]), offset=matrix.offset,
        lower=np.concatenate([matrix.lower, excludes_zero.astype(float)]),
        upper=np.concatenate([matrix.upper, np.ones(n_new)]),
        integer=np.concatenate([matrix.integer, np.ones(n_new, dtype=bool)]),
        row_lower=np.concatenate([matrix.row_lower, np.full(n_new, -np.inf), np.zeros(n_new), [-np.inf]]),
        row_upper=np.concatenate([matrix.row_upper, np.zeros(n_new), np.full(n_new, np.inf), [float(budget)]]),
        starts=starts, index=index, value=value,
    )


def budget_start(columns: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """A start of :func:`add_budget_columns`'s model from one of the model before: each new
    column at [θ ≠ 0]."""
    return np.concatenate([columns, (np.rint(columns[parameters]) != 0).astype(float)])
