"""Neuron choice: one hidden neuron's incoming weights and bias, every other parameter fixed (the
single-neuron step of local search, :mod:`pipeline.solving.improve`).

With the rest of the network fixed, example k's loss depends on the network only through the sign
s_k of the free neuron j of hidden layer l: it is c⁺_k when s_k = +1 and c⁻_k when s_k = −1, both
computed in numpy by running the fixed network with the neuron forced to each sign
(:func:`sign_costs`). With a_k the neuron's inputs (the data for l = 0, the ±1 signs of layer l − 1
deeper), w its weights and b its bias, integers within their box, z_k = Σ_i a_ki w_i + b, and one
binary u_k = [z_k ≥ 0] per pivotal example k ∈ K tied to z_k by the encoding's sign rows
(``sign_on``, ``sign_off``):

    minimise  Σ_k c⁻_k + Σ_{k∈K} δ_k u_k,    δ_k = c⁺_k − c⁻_k,   K = {k : δ_k ≠ 0}     (``training_loss``)

which is the training objective itself, exactly. An example outside K scores the same whatever the
neuron does and is left out, so the model is as small as the set of examples the neuron can
change: on Adult N = 2,000 with 16 hidden neurons that was 0-15 % of the examples per neuron
(correct_margin), against N signs plus every output row in the training model restricted to the
same neighbourhood.

The neuron is posed as a one-layer :class:`TrainingProblem` over the pivotal examples' inputs (its
single output is the free neuron), so the solve and the numpy check are the ones every training
model uses. HiGHS gets the model as arrays (:meth:`NeuronChoice.matrix`, the same rows scaled by
10⁴ so every coefficient is an integer); other solvers get the Pyomo model of :meth:`build`.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from formulations.base import Formulation
from formulations.bounds import ParameterBounds, preactivation_bounds
from formulations.budget import add_budget_columns, budget_start
from formulations.constraints import neuron_rows
from formulations.encoding import add_count_rows, add_sign_activation, encode_network, grid_of_layer, set_network_values
from formulations.matrix import MatrixModel, add_count_rows_on_columns, rows_from_triplets
from formulations.network import INPUT_SCALE, IntegerNetwork, nonzero_parameters
from formulations.problem import TrainingProblem


def neuron_inputs(network: IntegerNetwork, x: np.ndarray, layer: int) -> np.ndarray:
    """What the neurons of hidden ``layer`` read: the data for layer 0, the ±1 signs of the layer
    before otherwise."""
    return x if layer == 0 else network.hidden_activations(x)[layer - 1]


def sign_costs(
    formulation: Formulation, problem: TrainingProblem, network: IntegerNetwork, layer: int, neuron: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(c⁻, c⁺): each example's loss with the neuron's sign forced to −1 and to +1, the rest of
    ``network`` as it is; None when the formulation's objective is no sum of example losses."""
    activations = network.hidden_activations(problem.x)[layer]
    costs = []
    for sign in (-1.0, 1.0):
        forced = activations.copy()
        forced[:, neuron] = sign
        losses = formulation.example_losses(network.output_from(layer, forced), problem)
        if losses is None:
            return None
        costs.append(losses)
    return costs[0], costs[1]


def neuron_problem(
    problem: TrainingProblem, network: IntegerNetwork, layer: int, neuron: int, examples: np.ndarray
) -> tuple[TrainingProblem, IntegerNetwork]:
    """The neuron as a one-layer problem over ``examples`` (its inputs, its own box from
    ``problem.bounds``, what the rest of ``network`` leaves of the size budget), and its current
    parameters as that problem's network."""
    bounds = problem.bounds
    box = ParameterBounds(
        weight_lower=(bounds.weight_lower[layer][neuron : neuron + 1],),
        weight_upper=(bounds.weight_upper[layer][neuron : neuron + 1],),
        bias_lower=(bounds.bias_lower[layer][neuron : neuron + 1],),
        bias_upper=(bounds.bias_upper[layer][neuron : neuron + 1],),
    )
    inputs = neuron_inputs(network, problem.x, layer)[examples]
    start = IntegerNetwork(
        (network.weights[layer][neuron : neuron + 1],), (network.biases[layer][neuron : neuron + 1],), network.P
    )
    budget = None if problem.max_nonzero is None else (
        problem.max_nonzero - nonzero_parameters(network) + nonzero_parameters(start))
    rows = ()
    if problem.rows:
        # Each example's error with the neuron's sign forced either way: the rows in its sign.
        activations = network.hidden_activations(problem.x)[layer]
        errors = []
        for sign in (-1.0, 1.0):
            activations[:, neuron] = sign
            errors.append((np.argmax(network.output_from(layer, activations), axis=1) != problem.y).astype(np.float64))
        rows = tuple(neuron_rows(problem.rows, errors[0], errors[1], examples))
    single = TrainingProblem(inputs, np.zeros(len(inputs), dtype=np.int64), 1, (), problem.P, box, max_nonzero=budget,
                             rows=rows)
    return single, start


def with_neuron(network: IntegerNetwork, layer: int, neuron: int, choice: IntegerNetwork) -> IntegerNetwork:
    """``network`` with neuron ``neuron`` of ``layer`` given the parameters of the one-layer ``choice``."""
    weights, biases = [w.copy() for w in network.weights], [b.copy() for b in network.biases]
    weights[layer][neuron] = choice.weights[0][0]
    biases[layer][neuron] = choice.biases[0][0]
    return IntegerNetwork(tuple(weights), tuple(biases), network.P)


class NeuronChoice(Formulation):
    """The model above for one neuron: ``changes`` are δ_k of the problem's examples (the pivotal
    ones), ``constant`` is Σ_k c⁻_k over every training example."""

    name = "neuron_choice"
    counts_outcomes = True

    def __init__(self, changes: np.ndarray, constant: float) -> None:
        super().__init__()
        self.changes = np.asarray(changes, dtype=np.float64)
        self.constant = float(constant)

    def build(self, problem: TrainingProblem) -> pyo.ConcreteModel:
        model = pyo.ConcreteModel(name=self.name)
        encode_network(model, problem.x, problem.bounds)
        block = model.layer[0]
        lower, upper = model.preactivation_bounds[0]
        is_open = (lower[:, 0] < 0) & (upper[:, 0] >= 0)
        block.open_signs = pyo.Set(initialize=[(int(k), 0) for k in np.flatnonzero(is_open)], dimen=2)
        # On ±1 inputs z is an integer, so the data grid's "z ≤ −10⁻⁴" is exactly "z < 0" there too.
        add_sign_activation(block, lower, upper, grid_of_layer(0))
        always_on = float(self.changes[lower[:, 0] >= 0].sum())
        signs = [block.sign[k, 0] if is_open[k] else float(lower[k, 0] >= 0) for k in range(problem.n_examples)]
        add_count_rows(model, problem.rows, signs)
        model.training_loss = pyo.Objective(
            expr=self.constant + always_on
            + pyo.quicksum(float(self.changes[k]) * block.sign[k, j] for k, j in block.open_signs),
            sense=pyo.minimize,
        )
        return model

    def set_start(self, model: pyo.ConcreteModel, network: IntegerNetwork, problem: TrainingProblem) -> None:
        set_network_values(model, network, problem.x)

    def objective_value(self, network: IntegerNetwork, problem: TrainingProblem) -> float:
        on = network.output(problem.x)[:, 0] >= 0
        return self.constant + float(self.changes[on].sum())

    def row_indicators(self, network: IntegerNetwork, problem: TrainingProblem) -> np.ndarray:
        """The neuron's sign on each example, 1 for +1: the rows of a single-neuron step are
        written on it (:func:`formulations.constraints.neuron_rows`)."""
        return (network.output(problem.x)[:, 0] >= 0).astype(np.float64)

    def matrix(self, problem: TrainingProblem) -> MatrixModel:
        """:meth:`build` as arrays, on z's integer scale S = 10⁴ (Sz = Σ_i x̂_ki w_i + S b with
        x̂ = S x exact): columns w, b, then u_k of every open sign; per open example

            Sz_k + SL_k u_k ≥ SL_k                (``sign_on``)
            Sz_k − (SU_k + 1) u_k ≤ −1            (``sign_off``)"""
        lower, upper = (bound[:, 0] for bound in preactivation_bounds(problem.x, problem.bounds)[0])
        is_open = (lower < 0) & (upper >= 0)
        open_examples = np.flatnonzero(is_open)
        scaled = np.rint(problem.x[open_examples] * INPUT_SCALE)
        n_inputs, n_open = scaled.shape[1], len(open_examples)
        scaled_lower, scaled_upper = np.rint(lower[is_open] * INPUT_SCALE), np.rint(upper[is_open] * INPUT_SCALE)
        example, weight = np.nonzero(scaled)
        sign_column = n_inputs + 1 + np.arange(n_open)
        rows, columns, values = [], [], []
        for offset, sign_coefficient in ((0, scaled_lower), (n_open, -(scaled_upper + 1))):
            rows += [example + offset, np.arange(n_open) + offset, np.arange(n_open) + offset]
            columns += [weight, np.full(n_open, n_inputs), sign_column]
            values += [scaled[example, weight], np.full(n_open, float(INPUT_SCALE)), sign_coefficient]
        starts, index, value = rows_from_triplets(
            2 * n_open, np.concatenate(rows), np.concatenate(columns), np.concatenate(values)
        )
        bounds = problem.bounds
        matrix = MatrixModel(
            cost=np.concatenate([np.zeros(n_inputs + 1), self.changes[is_open]]),
            offset=self.constant + float(self.changes[lower >= 0].sum()),
            lower=np.concatenate([bounds.weight_lower[0][0], bounds.bias_lower[0], np.zeros(n_open)]).astype(float),
            upper=np.concatenate([bounds.weight_upper[0][0], bounds.bias_upper[0], np.ones(n_open)]).astype(float),
            integer=np.ones(n_inputs + 1 + n_open, dtype=bool),
            row_lower=np.concatenate([scaled_lower, np.full(n_open, -np.inf)]),
            row_upper=np.concatenate([np.full(n_open, np.inf), np.full(n_open, -1.0)]),
            starts=starts, index=index, value=value,
        )
        if problem.rows:
            always = (lower >= 0).astype(np.float64)
            matrix = add_count_rows_on_columns(matrix, [
                (row.coefficients[is_open], row.constant + float(row.coefficients @ always), row.lower, row.upper)
                for row in problem.rows], sign_column)
        if problem.max_nonzero is None:
            return matrix
        return add_budget_columns(matrix, np.arange(n_inputs + 1), problem.max_nonzero)

    def matrix_start(self, network: IntegerNetwork, problem: TrainingProblem) -> np.ndarray:
        """The columns of :meth:`matrix` that ``network`` implies."""
        lower, upper = (bound[:, 0] for bound in preactivation_bounds(problem.x, problem.bounds)[0])
        is_open = (lower < 0) & (upper >= 0)
        on = network.output(problem.x[is_open])[:, 0] >= 0
        columns = np.concatenate([network.weights[0][0], network.biases[0], on]).astype(float)
        if problem.max_nonzero is None:
            return columns
        return budget_start(columns, np.arange(problem.x.shape[1] + 1))

    def matrix_network(self, columns: np.ndarray, problem: TrainingProblem) -> IntegerNetwork:
        """The one-neuron network of a solution of :meth:`matrix` (rounded: the solver's integers
        carry tolerance)."""
        n_inputs = problem.x.shape[1]
        integers = np.rint(columns[: n_inputs + 1]).astype(np.int64)
        return IntegerNetwork((integers[None, :n_inputs],), (integers[n_inputs:],), problem.P)
