"""A sparse integer scoring system: the network with no hidden layer, few non-zero parameters.

An intnet network without a hidden layer computes one integer score per class, z_c = w_c·x + b_c,
and predicts argmax_c z_c, the lowest index winning ties. For two classes only the difference
matters: class 1 exactly when v·x + c > 0 with v = w_1 − w_0, c = b_1 − b_0 (strictly: a tie is class
0). :func:`sparse_linear_network` finds such a network with every parameter an integer in [−P, P] and
at most ``max_nonzero`` non-zero weights and biases, as follows (numpy only, no solver).

**Score rows.** With C = 2 the model has one free score row s = v·x + c (class 0's score is 0); with
C > 2 it has C rows z_c. Write x̃ = (x, 1) and θ the rows' coefficients on x̃ (the bias is the last
column), so the scores are Θx̃. The smooth surrogate is the logistic (softmax) loss

    L(θ) = Σ_i [ log Σ_c exp(z_ic) − z_{i,y_i} ] + λ‖θ‖²,   z_i = Θ x̃_i,   (C = 2: z_i0 = 0)

with a tiny ridge λ = 10⁻⁷·N that only keeps separable supports finite.

**1. Supports by beam search.** An entry is one (row, column) of Θ, the bias column included, so the
search decides whether a bias is worth a non-zero. From the empty model, every beam member at size k
scores each entry e outside its support S by the loss decrease of one Newton step on S ∪ {e}:

    gain_e = g_e² / (2 (h_ee − h_eS H_SS⁻¹ h_Se)),

g the gradient, H the Hessian at the member's optimum (rows treated as independent blocks when C > 2),
so a dense feature that needs the bias to move with it (Adult's education-num) is scored as the
refit would score it. (Measured, Adult N = 800, seeds 0-2, P = 15, 4 non-zeros: with the plain
one-coordinate score g_e²/2h_ee the search never reached {education-num, married, capital gain,
bias} and tested 81.5-81.8 %; with the Schur complement 83.7-84.1 %.) The best ``CHILDREN`` entries of each member are added, each child is refitted
by Newton's method on its support, and the ``BEAM_WIDTH`` best distinct supports go on; the
``POOL`` best of each size are rounded (step 2). Sizes grow one entry at a time up to
``SINGLE_STEPS`` entries, then by a share ``GROWTH`` of the size, so budgets of hundreds stay fast.

**2. Integer rounding along rays.** An integer model V with |V| ≤ P read at temperature m is the real
model θ = V/m, whose entries lie in [−P/m, P/m]. So for each multiplier m of a geometric grid, the
support's loss is minimised in the box |θ| ≤ P/m (coordinate descent, warm-started along the grid),
rounded, V = round(mθ), and improved by integer coordinate descent (±1 moves that lower L(V/m)).
Small m gives coarse coefficients, large m clips the largest ones to ±P and refits the rest.
For C = 2 a coefficient of the difference may reach 2P at the cost of a second non-zero (w_1 = ±P,
w_0 = ∓(|v| − P)): when the budget has room, the largest entries of the support get the box 2P/m.

**3. Choice.** Every integer candidate of every size within the budget is scored exactly (integer
arithmetic on the 10⁻⁴ input grid, as :meth:`IntegerNetwork.predict`) and the one with the most
correct validation examples is returned; ties go to fewer non-zeros, then to more correct training
examples. Without validation data a stratified share ``HOLDOUT`` of the training rows, drawn with
``seed``, plays its part. Without a budget, sizes grow until ``PATIENCE`` consecutive sizes bring no
better validation accuracy.

Everything is deterministic given the data and ``seed``; ``time_limit`` stops the search and the
rounding early (then the result depends on the machine's speed), and the best candidate so far is
returned — at worst the all-zero network, which predicts class 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from formulations.network import INPUT_SCALE, IntegerNetwork
from formulations.problem import checked_weights
from pipeline.solving.blas import with_capped_blas

RIDGE = 1e-7
"""λ / N. Only keeps separable supports finite: a ridge of 10⁻⁴·N shrank Adult's capital-gain weight
(unpenalised ≈ 36) enough to reorder supports, and lost 0.4 points at 4 non-zeros (N = 800)."""

# Search effort. Measured on Adult, N = 800, P = 15, seeds 0-4, mean test accuracy over budgets 4, 6,
# 8, 11 and 16: 84.13 % with these values; a pool of 5 supports per size 84.06 % (the pick came from
# pool ranks 5-9 in 6 of 15 runs); 20 multipliers instead of 12 84.14 % at 1.6 times the time;
# SPREAD 16 or 32 84.09-84.10 %.
BEAM_WIDTH = 10
CHILDREN = 10
POOL = 10
MULTIPLIERS = 12
SPREAD = 8.0
"""The ray's multipliers run from 0.75/|θ|max (the largest entry rounds to ±1) to SPREAD·P/|θ|max
(it is clipped to ±P and the rest refitted in their box)."""

MAX_DOUBLED = 1
"""Two classes: how many of the largest entries may take the box 2P (two non-zeros). Against none,
at P = 3 and 6 non-zeros (Adult, N = 800, seeds 0-2): test 83.41/83.14/83.50 -> 83.94/83.67/83.94 %;
at P = 15 it is Adult's capital gain (30 = 2P) in most picks. Two instead of one changed no pick."""

SINGLE_STEPS = 24
GROWTH = 0.15
"""Beyond SINGLE_STEPS entries a size step adds GROWTH·size entries at once (and rounds only those
sizes): a 10-class budget of hundreds (digits: 650 entries) would otherwise take hundreds of levels."""

PATIENCE = 6
"""Without a budget, sizes stop growing after this many sizes without a better validation count."""

HOLDOUT = 0.25
"""Without validation data, this share of the training rows (stratified, drawn with ``seed``) chooses."""

# Numerics: Newton iterations and their stopping rule, the size up to which all entries take one
# joint Newton step (beyond, one score row at a time), and the integer descent's limits.
NEWTON_STEPS = 30
FIT_TOLERANCE = 1e-7
JOINT_NEWTON = 64
CD_MOVES = 200
CD_CHECKS = 3


# ---------------------------------------------------------------------------------------------- API


@with_capped_blas
def sparse_linear_network(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    P: int,
    max_nonzero: int | None = None,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    admits: Callable[[IntegerNetwork], bool] | None = None,
    sample_weight: np.ndarray | None = None,
    validation_weight: np.ndarray | None = None,
) -> IntegerNetwork | None:
    """The sparse integer scoring system of the module docstring: a network with no hidden layer
    (``weights[0]`` of shape (n_classes, inputs)), parameters integers in [−P, P], at most
    ``max_nonzero`` of them (weights and biases) non-zero, chosen by validation accuracy. With
    ``admits``, only among the candidates it accepts (a run's guarantees on its training split);
    None when it accepts none, the all-zero network included. ``sample_weight`` (positive, one per
    example of ``x``) weights each example's logistic loss, as the MIP objectives weight its count;
    ``validation_weight`` each validation example's share of the correct count that picks the model."""
    n_classes = _positive_int(n_classes, "n_classes", minimum=2)
    P = _positive_int(P, "P", minimum=1)
    if max_nonzero is not None:
        max_nonzero = _positive_int(max_nonzero, "max_nonzero", minimum=0)
    seed = _positive_int(seed, "seed", minimum=0)
    if time_limit is not None and (isinstance(time_limit, bool) or not np.isfinite(time_limit) or time_limit <= 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None, got {time_limit!r}")
    x, y = _examples(x, y, n_classes, "x", "y")
    weights = checked_weights(sample_weight, len(y), "sample_weight")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val, y_val = _examples(x_val, y_val, n_classes, "x_val", "y_val")
        if x_val.shape[1] != x.shape[1]:
            raise ValueError(f"x_val has {x_val.shape[1]} inputs, x has {x.shape[1]}")
    validation_weights = None if x_val is None else checked_weights(validation_weight, len(y_val), "validation_weight")
    deadline = None if time_limit is None else time.perf_counter() + time_limit

    n_inputs = x.shape[1]
    zero = IntegerNetwork((np.zeros((n_classes, n_inputs), np.int64),), (np.zeros(n_classes, np.int64),), P)
    if max_nonzero == 0 or len(y) == 0:
        return zero if admits is None or admits(zero) else None
    if x_val is None or len(y_val) == 0:
        trains, validates = _holdout(y, seed)
        x, y, x_val, y_val = x[trains], y[trains], x[validates], y[validates]
        weights, validation_weights = (None, None) if weights is None else (weights[trains], weights[validates])

    problem = _Problem(x, y, n_classes, weights)
    judge = _Judge(problem, x_val, y_val, validation_weights)
    limit = max_nonzero if max_nonzero is not None else problem.rows * problem.columns
    best = judge.candidate(np.zeros((problem.rows, problem.columns), np.int64), P)
    if admits is not None and not admits(zero):
        best = None
    stale = 0
    for size, pool in _beam_search(problem, limit, deadline):
        improved = False
        for model in pool:
            for V in _round(problem, model, P, limit - size, deadline):
                candidate = judge.candidate(V, P)
                if candidate.cost <= limit and (best is None or candidate.key > best.key) and (
                        admits is None or admits(_network(V, n_classes, n_inputs, P))):
                    improved = improved or best is None or candidate.validation > best.validation
                    best = candidate
            if _past(deadline):
                break
        stale = 0 if improved else stale + 1
        if _past(deadline) or (max_nonzero is None and stale >= PATIENCE):
            break
    return None if best is None else _network(best.V, n_classes, n_inputs, P)


# ------------------------------------------------------------------------------------- the problem


class _Problem:
    """Training data as the search sees it: x̃ = (x, 1) column-major, one score row for two classes
    (class 0's score is 0) or one per class, targets T (rows × N), and each example's weight ``w``
    (mean 1; all 1 without weights): every loss, gradient and Hessian is a sum over examples of
    their terms times their weights."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> None:
        n, d = x.shape
        self.w = np.ones(n) if weights is None else weights / weights.mean()
        self.n, self.columns = n, d + 1
        self.binary = n_classes == 2
        self.rows = 1 if self.binary else n_classes
        self.X = np.asfortranarray(np.hstack([x, np.ones((n, 1))]))
        self.X2 = self.X * self.X
        self.y = y
        self.T = (y[:, None] == (np.array([1]) if self.binary else np.arange(n_classes))).astype(np.float64)
        self.ridge = RIDGE * n
        self.nonzero_rows = [np.flatnonzero(self.X[:, j]) for j in range(self.columns)]
        self.column_values = [self.X[rows, j] for j, rows in enumerate(self.nonzero_rows)]

    def row_losses(self, Z: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Per-example loss of scores Z (examples × score rows) for the examples ``rows``."""
        if self.binary:
            z = Z[:, 0]
            return np.logaddexp(0.0, z) - self.T[rows, 0] * z
        top = Z.max(axis=1, keepdims=True)
        return top[:, 0] + np.log(np.exp(Z - top).sum(axis=1)) - np.take_along_axis(Z, self.y[rows, None], 1)[:, 0]

    def probabilities(self, Z: np.ndarray) -> np.ndarray:
        if self.binary:
            return 0.5 * (1.0 + np.tanh(0.5 * Z))  # the logistic function, without overflow
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def objective(self, Z: np.ndarray, W: np.ndarray) -> float:
        return float(self.row_losses(Z) @ self.w) + self.ridge * float(np.vdot(W, W))


@dataclass
class _Model:
    """A real-valued model on a support of entries (flat indices row · columns + column)."""

    entries: frozenset[int]
    W: np.ndarray  # score rows × columns
    Z: np.ndarray  # examples × score rows
    loss: float


def _by_row(problem: _Problem, entries) -> dict[int, np.ndarray]:
    rows: dict[int, list[int]] = {}
    for entry in sorted(entries):
        row, column = divmod(entry, problem.columns)
        rows.setdefault(row, []).append(column)
    return {row: np.array(columns) for row, columns in rows.items()}


# ------------------------------------------------------------------------------------- the search


def _beam_search(problem: _Problem, limit: int, deadline: float | None):
    """Yield (size, the pool of best models of that size), size growing up to ``limit`` entries."""
    empty_W = np.zeros((problem.rows, problem.columns))
    empty_Z = np.zeros((problem.n, problem.rows))
    parents = [_Model(frozenset(), empty_W, empty_Z, problem.objective(empty_Z, empty_W))]
    size = 0
    total = problem.rows * problem.columns
    while size < min(limit, total) and not _past(deadline):
        step = 1 if size < SINGLE_STEPS else max(1, int(GROWTH * size))
        step = min(step, limit - size, total - size)
        children: dict[frozenset[int], _Model] = {}
        for parent in parents:
            if _past(deadline):
                break
            for entries in _expansions(problem, parent, step):
                if entries not in children:
                    children[entries] = _refit(problem, parent, entries)
        if not children:
            return
        ranked = sorted(children.values(), key=lambda model: (model.loss, sorted(model.entries)))
        size += step
        parents = ranked[:BEAM_WIDTH]
        yield size, ranked[:POOL]


def _expansions(problem: _Problem, parent: _Model, step: int) -> list[frozenset[int]]:
    """The supports of ``parent``'s children: ``step`` entries added, chosen by their one-step
    Newton gain with the parent's support refitted (the Schur complement of its Hessian)."""
    p = problem.probabilities(parent.Z)
    G = (problem.X.T @ ((p - problem.T) * problem.w[:, None])).T + 2 * problem.ridge * parent.W
    D = p * (1 - p) * problem.w[:, None]
    H = (problem.X2.T @ D).T + 2 * problem.ridge
    for row, columns in _by_row(problem, parent.entries).items():
        weighted = problem.X[:, columns] * D[:, row, None]
        H_SS = weighted.T @ problem.X[:, columns] + 2 * problem.ridge * np.eye(len(columns))
        cross = weighted.T @ problem.X
        H[row] -= np.sum(cross * np.linalg.lstsq(H_SS, cross, rcond=None)[0], axis=0)
    gain = (G * G / np.maximum(H, 1e-12)).ravel()
    gain[list(parent.entries)] = -1.0
    order = np.argsort(-gain, kind="stable")
    order = order[gain[order] > 0]
    if step == 1:
        return [parent.entries | {int(e)} for e in order[:CHILDREN]]
    # Several entries at once (large sizes): the best `step`, and variants that skip one of them.
    best = [int(e) for e in order[:step + CHILDREN - 1]]
    head = best[:step]
    variants = [parent.entries | set(head)]
    for skipped, replacement in zip(reversed(head), best[step:]):
        variants.append(parent.entries | (set(head) - {skipped}) | {replacement})
    return variants


def _refit(problem: _Problem, parent: _Model, entries: frozenset[int]) -> _Model:
    """The child's optimum on ``entries``, from the parent's."""
    W, Z = _fit(problem, sorted(entries), parent.W, parent.Z, np.inf)
    return _Model(entries, W, Z, problem.objective(Z, W))


def _offsets(problem: _Problem, Z: np.ndarray, row: int) -> np.ndarray:
    """a_i = log Σ_{c ≠ row} exp(z_ic): the example's loss is then logaddexp(a_i, z_i,row) minus its
    true class's score, so one score row at a time is a logistic problem with offset a (0 for two
    classes, where class 0's score is 0)."""
    if problem.binary:
        return np.zeros(problem.n)
    others = Z.copy()
    others[:, row] = -np.inf
    top = others.max(axis=1)
    return top + np.log(np.exp(others - top[:, None]).sum(axis=1))


def _blocks(problem: _Problem, entries: list[int]) -> list[np.ndarray]:
    """Positions (in ``entries``) of the entries one Newton step moves together: all of them while
    their Hessian is small, else one score row at a time."""
    if len(entries) <= JOINT_NEWTON:
        return [np.arange(len(entries))]
    rows = np.asarray(entries) // problem.columns
    return [np.flatnonzero(rows == row) for row in np.unique(rows)]


def _fit(problem: _Problem, entries: list[int], W: np.ndarray, Z: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """Minimise L over the entries with |θ_e| ≤ box_e (a scalar or one per entry; np.inf: no box) by
    projected Newton steps with backtracking, on blocks of entries in turn (``_blocks``). Entries at a
    bound whose gradient pushes outwards are held there for the step (Bertsekas)."""
    W, Z = W.copy(), Z.copy()
    entries_array = np.asarray(entries, dtype=np.int64)
    rows, columns = np.divmod(entries_array, problem.columns)
    limit_all = np.broadcast_to(np.asarray(box, dtype=np.float64), (len(entries),))
    same_row = rows[:, None] == rows[None, :]
    row_map = (rows[:, None] == np.arange(problem.rows)[None, :]).astype(np.float64)  # entries × score rows
    loss = problem.objective(Z, W)
    for _ in range(NEWTON_STEPS):
        start = loss
        for block in _blocks(problem, entries):
            Xb = problem.X[:, columns[block]]
            probabilities = problem.probabilities(Z)
            Pb = probabilities[:, rows[block]]
            w = W[rows[block], columns[block]]
            g = np.einsum("ij,ij->j", Xb, (Pb - problem.T[:, rows[block]]) * problem.w[:, None]) + 2 * problem.ridge * w
            limit = limit_all[block]
            held = ((w <= -limit) & (g > 0)) | ((w >= limit) & (g < 0))
            free = np.flatnonzero(~held)
            if not len(free):
                continue
            XP = Xb[:, free] * Pb[:, free]
            weighted = XP * problem.w[:, None]
            # Softmax Hessian: Σ_i w_i x_ia x_ib (p_ia [row a = row b] − p_ia p_ib), + 2λ on the diagonal.
            H = (weighted.T @ Xb[:, free]) * same_row[np.ix_(block[free], block[free])] - weighted.T @ XP
            H[np.diag_indices_from(H)] += 2 * problem.ridge
            direction = np.zeros(len(block))
            direction[free] = -np.linalg.lstsq(H, g[free], rcond=None)[0]
            step = 1.0
            while step > 1e-8:
                w_new = np.clip(w + step * direction, -limit, limit)
                Z_new = Z + (Xb * (w_new - w)) @ row_map[block]
                W_new = W.copy()
                W_new[rows[block], columns[block]] = w_new
                new = problem.objective(Z_new, W_new)
                if new <= loss + 1e-4 * float(g @ (w_new - w)):
                    break
                step *= 0.5
            if new < loss:
                W, Z, loss = W_new, Z_new, new
        if start - loss <= FIT_TOLERANCE * max(1.0, loss):
            break
    return W, Z


# ----------------------------------------------------------------------------------- the rounding


def _round(problem: _Problem, model: _Model, P: int, spare: int, deadline: float | None):
    """Integer models from ``model``'s support along the ray of multipliers (module docstring, 2)."""
    entries = sorted(model.entries)
    magnitude = np.abs(model.W.ravel()[entries])
    if magnitude.max(initial=0.0) <= 0:
        return
    by_size = [entries[i] for i in np.argsort(-magnitude, kind="stable")]
    largest = magnitude.max()
    multipliers = np.geomspace(0.75 / largest, SPREAD * P / largest, MULTIPLIERS)
    doubles = min(spare, len(entries), MAX_DOUBLED) if problem.binary else 0
    for doubled in range(doubles + 1):
        bound = np.full(len(entries), P, dtype=np.int64)
        bound[np.isin(entries, by_size[:doubled])] = 2 * P
        W, Z = model.W, model.Z
        seen = set()
        for m in multipliers:
            if _past(deadline):
                return
            if doubled and largest * m <= P:
                continue  # the doubled bound does not bind: the undoubled ray gave this model
            W, Z = _fit(problem, entries, W, Z, bound / m)
            values = np.clip(np.rint(W.ravel()[entries] * m), -bound, bound)
            if values.tobytes() in seen:  # small multipliers often round alike
                continue
            seen.add(values.tobytes())
            yield _integer_descent(problem, entries, values, bound, m)


def _integer_descent(problem: _Problem, entries: list[int], values: np.ndarray, bound: np.ndarray, m: float):
    """Lower L(V/m) by ±1 moves until none lowers it. Moves are tried in the order of their
    second-order estimate δ·g_e + ½ h_e (g, h the gradient and Hessian diagonal in V) and each is
    checked exactly on its score row before it is made."""
    V = np.zeros((problem.rows, problem.columns))
    V.ravel()[entries] = values
    Z = (problem.X @ V.T) / m
    blocks = [(row, columns, bound[[entries.index(row * problem.columns + c) for c in columns]])
              for row, columns in _by_row(problem, entries).items()]
    for _ in range(CD_MOVES):
        moved = False
        for row, columns, limit in blocks:
            a = _offsets(problem, Z, row)
            z, t = Z[:, row], problem.T[:, row]
            U = problem.X[:, columns] / m
            p = 0.5 * (1.0 + np.tanh(0.5 * (z - a)))
            g = U.T @ ((p - t) * problem.w)
            h = (U * U).T @ (p * (1 - p) * problem.w)
            w = V[row, columns]
            estimate = np.concatenate([-g + 0.5 * h, g + 0.5 * h])  # δ = −1 then +1
            estimate[np.concatenate([w - 1 < -limit, w + 1 > limit])] = np.inf
            before = None
            for choice in np.argsort(estimate, kind="stable")[:CD_CHECKS]:
                if estimate[choice] >= 0:
                    break
                delta, position = (-1.0, choice) if choice < len(columns) else (1.0, choice - len(columns))
                if before is None:
                    before = float((np.logaddexp(a, z) - t * z) @ problem.w)
                z_new = z + delta * U[:, position]
                if float((np.logaddexp(a, z_new) - t * z_new) @ problem.w) < before - 1e-9:
                    V[row, columns[position]] += delta
                    Z[:, row] = z_new
                    moved = True
                    break
        if not moved:
            break
    return V.astype(np.int64)


# -------------------------------------------------------------------------------------- the choice


@dataclass
class _Candidate:
    V: np.ndarray
    cost: int
    validation: float
    key: tuple


class _Judge:
    """Scores integer candidates exactly, on the integer scale x·10⁴ as IntegerNetwork does; with
    weights, a correct example counts its weight."""

    def __init__(self, problem: _Problem, x_val: np.ndarray, y_val: np.ndarray,
                 validation_weights: np.ndarray | None = None) -> None:
        self.problem = problem
        training_weights = None if validation_weights is None else problem.w
        self.sets = [(_integer_inputs(x_val), y_val, validation_weights),
                     (_integer_inputs(problem.X[:, :-1]), problem.y, training_weights)]
        self.seen: set[bytes] = set()

    def correct(self, V: np.ndarray, which: int) -> float:
        inputs, labels, weights = self.sets[which]
        used = np.flatnonzero(np.any(V != 0, axis=0))
        scores = inputs[:, used] @ V[:, used].T.astype(np.float64)
        predicted = (scores[:, 0] > 0).astype(np.int64) if self.problem.binary else np.argmax(scores, axis=1)
        if weights is None:
            return int(np.count_nonzero(predicted == labels))
        return float(weights[predicted == labels].sum())

    def candidate(self, V: np.ndarray, P: int) -> _Candidate:
        cost = int(np.count_nonzero(V) + np.count_nonzero(np.abs(V) > P))
        validation = self.correct(V, 0)
        # Measured alternatives (Heart, breast cancer, wine, 3 seeds; Adult N = 800, 5 seeds): training
        # accuracy before size, or validation and training correct counts pooled, were no better.
        return _Candidate(V, cost, validation, (validation, -cost, self.correct(V, 1)))


def _integer_inputs(x: np.ndarray) -> np.ndarray:
    """(x·10⁴ on the grid, 10⁴): integer scores as floats, exact below 2⁵³."""
    return np.hstack([np.rint(x * INPUT_SCALE), np.full((len(x), 1), float(INPUT_SCALE))])


def _network(V: np.ndarray, n_classes: int, n_inputs: int, P: int) -> IntegerNetwork:
    """The score rows as an IntegerNetwork. Two classes: v goes to class 1's row, and the part of a
    coefficient beyond ±P to class 0's with the opposite sign, so w_1 − w_0 = v."""
    if V.shape[0] == 1:
        v = V[0]
        first = np.clip(v, -P, P)
        full = np.vstack([first - v, first])
    else:
        full = V
    return IntegerNetwork((full[:, :n_inputs].astype(np.int64),), (full[:, n_inputs].astype(np.int64),), P)


# -------------------------------------------------------------------------------------- utilities


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def _holdout(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which rows train and which validate: a stratified share HOLDOUT of the rows (at least one per
    class that has two) validates, the rest train; every row does both when none could be held out."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        count = int(round(HOLDOUT * len(members))) if len(members) > 1 else 0
        held[members[:count]] = True
    if not held.any() or held.all():
        every = np.ones(len(y), dtype=bool)
        return every, every
    return ~held, held


def _positive_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _examples(x, y, n_classes: int, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{x_name} must be a 2-D array (examples × inputs), got shape {x.shape}")
    if labels.ndim != 1 or len(labels) != len(x):
        raise ValueError(f"{y_name} must hold one label per row of {x_name}: {labels.shape} for {x.shape}")
    if not np.all(np.isfinite(x)) or (x.size and (x.min() < 0 or x.max() > 1)):
        raise ValueError(f"{x_name} must be finite and in [0, 1] (inputs are min-max scaled)")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{y_name} must be integer class indices in [0, {n_classes - 1}]")
    return x, labels.astype(np.int64)
