"""The guarantees a run asks for (``--monotone``, ``--fair``, ``--min-recall``), resolved against its
data: which input a monotone column is, which group each example is in, which class a recall floor
is about; the rows and parameter boxes every MIP of the run holds (:mod:`formulations.constraints`);
the start's repair; and the certificate, each constraint's value recomputed from the integer
weights on every split (docs/method.md §16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.constraints import (
    CountRow,
    Fairness,
    Monotone,
    Orientations,
    cells_of,
    fairness_rows,
    monotone_bounds,
    monotone_orientations,
    recall_row,
    voted_orientations,
)
from formulations.models import Formulation
from formulations.network import within_budget
from pipeline.data.datasets import Dataset
from pipeline.data.preprocessing import CategoricalColumn, NumericColumn, as_strings
from pipeline.data.splits import Split
from pipeline.errors import DataError, IntnetError
from pipeline.solving.improve import improve
from pipeline.solving.solve import SolverOptions, SolveStatus, solve_mip


def balancing_weights(guarantees: Guarantees, y: np.ndarray, strength: float) -> np.ndarray:
    """One weight per training example that makes the labels less dependent on each fairness
    constraint's groups: (P(y) / P(y | g))^strength, multiplied over the constraints. At strength 1
    the weighted labels are independent of the groups (reweighing, Kamiran and Calders); a loss
    fitted on them has less to gain from inputs that stand in for the group."""
    weights = np.ones(len(y))
    for groups in guarantees.train_groups:
        for g in np.unique(groups):
            mine = groups == g
            for label in np.unique(y[mine]):
                cell = mine & (y == label)
                weights[cell] *= (np.mean(y == label) / np.mean(y[mine] == label)) ** strength
    return weights


Z_95 = 1.959963984540054
"""The standard normal's 97.5 % quantile: two-sided 95 % intervals."""


@dataclass(frozen=True)
class FairnessSpec:
    column: str
    kind: Fairness
    epsilon: float

    @property
    def name(self) -> str:
        return f"{self.column}:{self.kind}:{self.epsilon:g}"


@dataclass(frozen=True)
class RecallSpec:
    label: str
    cls: int
    rho: float

    @property
    def name(self) -> str:
        return f"recall {self.label} >= {self.rho:g}"


@dataclass(frozen=True, eq=False)
class Guarantees:
    """A run's constraints on its training split. ``train_groups[f]`` is the group of each training
    example for ``fairness[f]``; ``orientations[m]`` the orientations ``monotone[m]`` is held to,
    chosen when the start is repaired (:meth:`with_orientations`)."""

    monotone: tuple[Monotone, ...] = ()
    fairness: tuple[FairnessSpec, ...] = ()
    recall: tuple[RecallSpec, ...] = ()
    train_groups: tuple[np.ndarray, ...] = ()
    orientations: tuple[Orientations, ...] = ()
    names: dict[str, Any] = field(default_factory=dict)
    """The columns and classes the constraints name, for the certificate."""

    @property
    def any(self) -> bool:
        return bool(self.monotone or self.fairness or self.recall)

    def rows(self, y: np.ndarray, indices: np.ndarray) -> tuple[CountRow, ...]:
        """The counting rows over the training examples ``indices`` (labels ``y``, theirs)."""
        rows = []
        for spec, groups in zip(self.fairness, self.train_groups):
            rows += fairness_rows(spec.name, spec.kind, groups[indices], y, spec.epsilon)
        rows += [recall_row(spec.name, spec.cls, spec.rho, y) for spec in self.recall]
        return tuple(rows)

    def bounds(self, bounds: ParameterBounds) -> ParameterBounds:
        """``bounds`` inside the sign boxes of every monotone constraint's orientations."""
        for constraint, orientations in zip(self.monotone, self.orientations):
            bounds = monotone_bounds(bounds, constraint, orientations)
        return bounds

    def with_orientations(self, network: IntegerNetwork) -> Guarantees:
        """These guarantees with each monotone constraint held to orientations that suit
        ``network``: a proof of it where one exists (:func:`monotone_orientations`), else the vote of
        its weights (:func:`voted_orientations`)."""
        chosen = tuple(monotone_orientations(network, c) or voted_orientations(network, c) for c in self.monotone)
        return Guarantees(self.monotone, self.fairness, self.recall, self.train_groups, chosen, self.names)

    def failures(self, network: IntegerNetwork, x: np.ndarray, y: np.ndarray, indices: np.ndarray) -> list[str]:
        """What ``network`` breaks on the training examples ``indices`` (inputs ``x``, labels
        ``y``): the rows that fail, recounted from its predictions, and the monotone columns no
        orientation proves. Empty: it holds every guarantee."""
        errors = (network.predict(x) != y).astype(np.float64)
        failed = [row.name for row in self.rows(y, indices) if not row.holds(errors)]
        return failed + [f"monotone {c.name}" for c in self.monotone if monotone_orientations(network, c) is None]

    def certificate(self, network: IntegerNetwork, split: Split, groups: dict[str, dict[str, np.ndarray]]) -> list[dict]:
        """Each constraint's value on every split, recomputed from ``network``'s predictions, with a
        95 % interval on validation and test, and for monotonicity the orientations that prove it
        (or null where none does). ``groups[column][split]`` the group of every example of a split."""
        sets = {"train": (split.train_x, split.train_y), "validation": (split.val_x, split.val_y)}
        if split.test_x is not None:
            sets["test"] = (split.test_x, split.test_y)
        predictions = {name: network.predict(x) for name, (x, _) in sets.items()}
        report = []
        for spec in self.fairness:
            entry = {"constraint": "fair", "column": spec.column, "kind": str(spec.kind), "bound": spec.epsilon}
            for name, (_, y) in sets.items():
                entry[name] = largest_gap(spec.kind, groups[spec.column][name], y, predictions[name])
            entry["holds"] = entry["train"]["gap"] <= spec.epsilon + 1e-12
            report.append(entry)
        for spec in self.recall:
            entry = {"constraint": "min_recall", "class": spec.label, "bound": spec.rho}
            for name, (_, y) in sets.items():
                entry[name] = share_with_interval(int(np.sum((predictions[name] == spec.cls) & (y == spec.cls))),
                                                  int(np.sum(y == spec.cls)))
            entry["holds"] = entry["train"]["value"] is not None and entry["train"]["value"] >= spec.rho - 1e-12
            report.append(entry)
        for constraint in self.monotone:
            proof = monotone_orientations(network, constraint)
            report.append({"constraint": "monotone", "column": constraint.name,
                           "direction": "+" if constraint.increasing else "-", "input": constraint.input,
                           "holds": proof is not None, "orientations": None if proof is None else proof.as_lists()})
        return report


def share_with_interval(hits: int, total: int) -> dict[str, float | None]:
    """hits / total with its Wilson 95 % interval (None without examples)."""
    if total == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    p, z2 = hits / total, Z_95**2
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = Z_95 * math.sqrt(p * (1 - p) / total + z2 / (4 * total**2)) / (1 + z2 / total)
    return {"value": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "n": total}


def largest_gap(kind: Fairness, groups: np.ndarray, y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """The largest difference of a rate between two groups over the rate's cells (§16), with
    Newcombe's 95 % interval for that difference (from the two groups' Wilson intervals), and the
    groups and cell it is between."""
    positive = predicted == 1
    best = {"gap": 0.0, "low": 0.0, "high": 0.0, "between": None, "rate": None}
    for cell, members in cells_of(kind, y):
        rates = {}
        for g in np.unique(groups):
            inside = members & (groups == g)
            if inside.any():
                rates[g] = share_with_interval(int(np.sum(positive & inside)), int(inside.sum()))
        for g in rates:
            for h in rates:
                difference = rates[g]["value"] - rates[h]["value"]
                if difference > best["gap"]:
                    a, b = rates[g], rates[h]
                    low = difference - math.sqrt((a["value"] - a["low"]) ** 2 + (b["high"] - b["value"]) ** 2)
                    high = difference + math.sqrt((a["high"] - a["value"]) ** 2 + (b["value"] - b["low"]) ** 2)
                    best = {"gap": difference, "low": max(-1.0, low), "high": min(1.0, high),
                            "between": [str(g), str(h)], "rate": cell}
    return best


def attribute_values(dataset: Dataset, split: Split, column: str) -> dict[str, np.ndarray]:
    """The values of raw column ``column`` (as strings) for the examples of each split."""
    if dataset.attributes is None or column not in dataset.attributes.column_names:
        names = [] if dataset.attributes is None else dataset.attributes.column_names
        raise DataError(f"--fair {column}: {dataset.name} has no column '{column}'; its columns are {', '.join(names)}")

    def values(table: pa.Table, rows: np.ndarray) -> np.ndarray:
        texts = as_strings(column, table.column(column)).to_numpy(zero_copy_only=False)
        return np.array(["" if v is None else v for v in texts], dtype=object)[rows]

    result = {"train": values(dataset.attributes, split.train_rows),
              "validation": values(dataset.attributes, split.val_rows)}
    if split.test_rows is not None:
        test_table = dataset.test_attributes if dataset.test_x is not None else dataset.attributes
        result["test"] = values(test_table, split.test_rows)
    return result


def resolve(monotone: tuple[str, ...], fair: tuple[str, ...], min_recall: tuple[str, ...], dataset: Dataset,
            split: Split) -> tuple[Guarantees, dict[str, dict[str, np.ndarray]]]:
    """The run's guarantees from the flags' values (checked as text by the configuration), and every
    fairness column's groups on every split; a column or class the data does not have is a
    one-line error naming the flag."""
    constraints = []
    offsets = np.cumsum([0] + [len(column.categories) if isinstance(column, CategoricalColumn) else 1
                               for column in dataset.preprocessor.columns])
    for entry in monotone:
        name, _, sign = entry.rpartition(":")
        position = next((i for i, column in enumerate(dataset.preprocessor.columns) if column.name == name), None)
        if position is None or not isinstance(dataset.preprocessor.columns[position], NumericColumn):
            kind = "not a feature" if position is None else "categorical"
            raise DataError(f"--monotone {entry}: '{name}' is {kind}; a monotone column must be a numeric feature "
                            f"(not excluded)")
        constraints.append(Monotone(int(offsets[position]), sign == "+", name))
    specs, groups = [], {}
    if fair and len(dataset.classes) != 2:
        raise DataError(f"--fair compares the positive class's rates; {dataset.name} has {len(dataset.classes)} "
                        "classes, and it needs 2")
    for entry in fair:
        column, kind, epsilon = entry.rsplit(":", 2)
        groups[column] = attribute_values(dataset, split, column)
        if len(np.unique(groups[column]["train"])) < 2:
            raise DataError(f"--fair {entry}: the training split has one group of '{column}'; it needs two or more")
        specs.append(FairnessSpec(column, Fairness(kind), float(epsilon)))
    recalls = []
    for entry in min_recall:
        label, _, share = entry.rpartition(":")
        if label in dataset.classes:
            cls = dataset.classes.index(label)
        elif label.isdigit() and int(label) < len(dataset.classes):
            cls = int(label)
        else:
            raise DataError(f"--min-recall {entry}: '{label}' is not a class of {dataset.name} ({', '.join(dataset.classes)}) "
                            "nor a class index")
        recalls.append(RecallSpec(dataset.classes[cls], cls, float(share)))
    train_groups = tuple(groups[spec.column]["train"] for spec in specs)
    return Guarantees(tuple(constraints), tuple(specs), tuple(recalls), train_groups), groups


REPAIRED_BY_MIP = "by a MIP on the whole training split, from no start"


def repair_start(
    start: IntegerNetwork, guarantees: Guarantees, problem: TrainingProblem, formulation: Formulation,
    options: SolverOptions,
) -> tuple[IntegerNetwork, Guarantees, str]:
    """A start that holds every guarantee on ``problem`` (the whole training split, its rows and
    boxes the guarantees'), the guarantees with their monotone orientations chosen, and how the
    start was made to hold them (docs/method.md §16):

    * monotone: orientations that prove ``start`` monotone, else its weights' vote; every weight of
      the wrong sign set to 0 (the network clipped into the sign boxes);
    * counting rows: kept if they hold; else the admissible network nearest the start among those
      differing in one output bias (shifted by up to ±2P, the most accurate on the training split),
      or the all-zero network (which predicts one class for everyone, so every gap is 0);
    * else a solve of the constrained model from no start. A start that still breaks a row raises
      :class:`~pipeline.errors.IntnetError` naming what could not be met.

    A start other than the original is then improved by MIP local search on the whole training
    split for ``options.time_limit`` seconds: the all-zero network is a poor start, and the
    monolithic model on hundreds of examples barely moves from it (measured on Adult N = 800 with
    demographic parity 0.02: 193 -> 191 errors in 60 s, where 60 s of local search reached 181)."""
    guarantees = guarantees.with_orientations(start)
    bounds = guarantees.bounds(problem.bounds)
    problem = replace(problem, bounds=bounds)
    start = within_budget(bounds.clip(start), problem.max_nonzero)
    how = "clipped into the monotone sign boxes" if guarantees.monotone else "kept"
    if formulation.admits(start, problem) and not start.equals(problem.zero_network()):
        return start, guarantees, how

    def polished(network: IntegerNetwork, how: str) -> tuple[IntegerNetwork, Guarantees, str]:
        if options.time_limit <= 0:
            return network, guarantees, how
        outcome = improve(formulation, problem, network, options.time_limit, options)
        return outcome.network, guarantees, f"{how}, then {outcome.seconds:.0f} s of local search on the training split"

    candidates = [candidate for candidate in bias_shifts(start) if formulation.admits(candidate, problem)]
    if candidates:
        best = max(candidates, key=lambda n: n.accuracy(problem.x, problem.y))
        return polished(best, "one output bias shifted until every counting row held")
    zero = problem.zero_network()
    if formulation.admits(zero, problem):
        return polished(zero, "the all-zero network (one class for everyone), every counting row holding")
    outcome = solve_mip(formulation, problem, zero, options)
    if formulation.admits(outcome.network, problem):
        return polished(outcome.network, REPAIRED_BY_MIP)
    failed = guarantees.failures(outcome.network, problem.x, problem.y, np.arange(problem.n_examples))
    reason = "no network satisfies them" if outcome.status == SolveStatus.INFEASIBLE else \
        f"none was found in {options.time_limit:g} s"
    raise IntnetError(f"the constraints cannot be met on the training split: {reason} (first failing: "
                      f"{failed[0] if failed else 'the size budget'}); loosen them, or give more --time-limit")


def bias_shifts(network: IntegerNetwork) -> list[IntegerNetwork]:
    """``network`` with one output bias moved by t ∈ [−2P, 2P] (kept in [−P, P]; for two classes
    the other class's bias moved the other way for the rest): thresholds that trade one class's
    predictions for another's."""
    P = network.P
    result = []
    for c in range(network.sizes[-1]):
        for t in range(-2 * P, 2 * P + 1):
            if t == 0:
                continue
            biases = network.biases[-1].copy()
            moved = int(np.clip(biases[c] + t, -P, P))
            rest = t - (moved - biases[c])
            biases[c] = moved
            if rest and len(biases) == 2:
                biases[1 - c] = int(np.clip(biases[1 - c] - rest, -P, P))
            result.append(IntegerNetwork(network.weights, network.biases[:-1] + (biases,), P))
    return result
