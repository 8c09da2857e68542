"""The tiny models a user would deploy instead of an intnet network, trained on intnet's own splits.

Each function takes a :class:`Split`-like object (train / validation / test arrays, labels 0..C−1)
and returns :class:`RivalModel` rows: accuracies, non-zero parameters, size in bits and seconds.

* :func:`fasterrisk`: FasterRisk (Liu et al., NeurIPS 2022), two classes only, run in its own
  environment (``make rivals-env``) by ``fasterrisk_runner.py``; each model is also converted to an
  intnet network when its intercept fits (|b| ≤ P in class 1's bias, or ≤ 2P over both biases).
* :func:`l1_logistic`: scikit-learn's L1 logistic regression over a path of regularisation
  strengths, each scaled and rounded to integers in [−P, P] (the scale picked on validation).
* :func:`trees`: scikit-learn CART of depth 1-6; a split stores a feature and a threshold, so it
  counts as 2 numbers.
* :func:`float_logistic`: dense float logistic regression, the reference line.

Sizes in bits: an integer model stores each non-zero parameter as its value (bits_for of the
largest |parameter|, as ``layered_size_bits``) and its position among all weight and bias slots
(⌈log₂ slots⌉ bits). A tree split stores a feature index (⌈log₂ inputs⌉ bits) and a threshold on the
10⁻⁴ input grid (14 bits: 10,001 values); a leaf its class (⌈log₂ C⌉ bits). A float model stores 32
bits per parameter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from formulations.network import IntegerNetwork, bits_for, nonzero_parameters

ROOT = Path(__file__).resolve().parents[2]
RIVALS_PYTHON = ROOT / ".venv-rivals" / "bin" / "python"
THRESHOLD_BITS = math.ceil(math.log2(10_001))  # a threshold on the 10⁻⁴ grid of [0, 1]
FLOAT_BITS = 32


@dataclass
class RivalModel:
    method: str
    setting: str
    train: float
    validation: float
    test: float
    nonzero: int
    bits: int
    seconds: float
    note: str = ""
    network: IntegerNetwork | None = field(default=None, repr=False)

    def row(self) -> dict:
        """The JSON-ready fields (the network as lists, when there is one)."""
        row = {key: value for key, value in self.__dict__.items() if key != "network"}
        if self.network is not None:
            row["weights"] = self.network.weights[0].tolist()
            row["biases"] = self.network.biases[0].tolist()
        return row


def sparse_bits(network: IntegerNetwork) -> int:
    """Bits of a sparse encoding of a network: per non-zero parameter its value and its position."""
    values = [np.concatenate([w.ravel(), b]) for w, b in zip(network.weights, network.biases)]
    largest = max(1, max(int(np.abs(v).max(initial=0)) for v in values))
    slots = sum(v.size for v in values)
    return nonzero_parameters(network) * (bits_for(largest) + math.ceil(math.log2(max(2, slots))))


def integer_model(method: str, setting: str, network: IntegerNetwork, split, seconds: float, note: str = "") -> RivalModel:
    """A RivalModel for an intnet network, its accuracies from IntegerNetwork.predict."""
    return RivalModel(
        method, setting,
        train=network.accuracy(split.train_x, split.train_y),
        validation=network.accuracy(split.val_x, split.val_y),
        test=network.accuracy(split.test_x, split.test_y),
        nonzero=nonzero_parameters(network), bits=sparse_bits(network), seconds=seconds, note=note, network=network,
    )


# ------------------------------------------------------------------------------------------ FasterRisk


def two_class_network(coefficients: np.ndarray, intercept: int, P: int) -> IntegerNetwork | None:
    """The intnet network predicting class 1 exactly when intercept + x·coefficients > 0: class 1's row
    holds the coefficients and as much of the intercept as fits in [−P, P], class 0's bias the rest
    with the opposite sign (z_1 − z_0 = x·c + b; a tie is class 0, as FasterRisk's ``> 0``). None when
    |intercept| > 2P or a coefficient is outside [−P, P]."""
    coefficients = np.asarray(coefficients, dtype=np.int64)
    if abs(intercept) > 2 * P or np.abs(coefficients).max(initial=0) > P:
        return None
    first = int(np.clip(intercept, -P, P))
    weights = np.vstack([np.zeros_like(coefficients), coefficients])
    return IntegerNetwork((weights,), (np.array([first - intercept, first], dtype=np.int64),), P)


def fasterrisk(split, ks: list[int], P: int, python: Path = RIVALS_PYTHON) -> list[RivalModel]:
    """FasterRisk with k features (intercept not counted) for each k, coefficients in [−P, P]: its own
    pick (lowest training logistic loss) and its pool's best on validation."""
    if len(np.unique(split.train_y)) != 2 or max(split.train_y.max(), split.test_y.max()) > 1:
        raise ValueError("FasterRisk handles two classes only")
    if not python.exists():
        raise FileNotFoundError(f"{python} does not exist: run `make rivals-env` first")
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "split.npz", Path(folder) / "models.json"
        np.savez(data, train_x=split.train_x, train_y=split.train_y, val_x=split.val_x, val_y=split.val_y,
                 test_x=split.test_x, test_y=split.test_y)
        subprocess.run([str(python), str(Path(__file__).with_name("fasterrisk_runner.py")), str(data), str(out),
                        "--ks", ",".join(map(str, ks)), "--P", str(P)],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": ""})
        result = json.loads(out.read_text())
    rows = []
    for entry in result["models"]:
        for pick in ("own_pick", "validation_pick"):
            model = entry[pick]
            network = two_class_network(np.array(model["coefficients"]), model["intercept"], P)
            setting = f"k={entry['k']}, {pick.replace('_', ' ')}"
            if network is None:
                # Not an intnet network: its own accuracies, and its parameters with the intercept counted once.
                nonzero = int(np.count_nonzero(model["coefficients"])) + int(model["intercept"] != 0)
                slots = len(model["coefficients"]) + 1
                rows.append(RivalModel(
                    "FasterRisk", setting, model["train"], model["validation"], model["test"], nonzero,
                    nonzero * (bits_for(max(P, abs(model["intercept"]))) + math.ceil(math.log2(slots))),
                    entry["seconds"], note=f"intercept {model['intercept']} outside [-2P, 2P]: no intnet network",
                ))
                continue
            converted = integer_model("FasterRisk", setting, network, split, entry["seconds"])
            if abs(converted.test - model["test"]) > 1e-12:
                converted.note = f"FasterRisk's own prediction: test {model['test']:.4f}"
            if abs(model["intercept"]) > P:
                converted.note = (converted.note + "; " if converted.note else "") + "intercept split over both biases"
            rows.append(converted)
    return rows


# ------------------------------------------------------------------------------------ L1 logistic


L1_STRENGTHS = np.geomspace(1e-3, 10.0, 25)  # scikit-learn's C: inverse regularisation strength


def l1_logistic(split, P: int, strengths: np.ndarray = L1_STRENGTHS) -> list[RivalModel]:
    """For each C, L1 logistic regression (binary, or multinomial for C > 2 classes, saga), its weights
    and biases scaled so the largest |parameter| is t for t in 1..2P (beyond P clipped to ±P) and
    rounded; the scale best on validation (ties: the smaller t) is kept."""
    from sklearn.linear_model import LogisticRegression

    n_classes = int(max(split.train_y.max(), split.val_y.max(), split.test_y.max())) + 1
    rows = []
    for strength in strengths:
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saga's convergence warnings at small C
            model = LogisticRegression(penalty="l1", C=float(strength), solver="saga", max_iter=5000, tol=1e-4,
                                       random_state=0).fit(split.train_x, split.train_y)
        weights, biases = _class_rows(model, n_classes)
        largest = max(np.abs(weights).max(initial=0.0), np.abs(biases).max(initial=0.0))
        if largest == 0:
            continue
        best = None
        for top in range(1, 2 * P + 1):
            scale = top / largest
            network = IntegerNetwork((np.clip(np.rint(weights * scale), -P, P).astype(np.int64),),
                                     (np.clip(np.rint(biases * scale), -P, P).astype(np.int64),), P)
            validation = network.accuracy(split.val_x, split.val_y)
            if best is None or validation > best[0]:
                best = (validation, network, top)
        seconds = time.perf_counter() - began
        rows.append(integer_model("L1 logistic, rounded", f"C={strength:.3g}, largest={best[2]}", best[1], split, seconds))
    return rows


def _class_rows(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One score row per class: scikit-learn's binary model is class 1 against class 0 (row 0 zero)."""
    weights = np.zeros((n_classes, model.coef_.shape[1]))
    biases = np.zeros(n_classes)
    if model.coef_.shape[0] == 1:
        weights[1], biases[1] = model.coef_[0], model.intercept_[0]
    else:
        weights[model.classes_], biases[model.classes_] = model.coef_, model.intercept_
    return weights, biases


# ---------------------------------------------------------------------------------------- trees


def trees(split, depths=range(1, 7)) -> list[RivalModel]:
    """CART (scikit-learn, Gini) of each maximum depth."""
    from sklearn.tree import DecisionTreeClassifier

    n_classes = int(max(split.train_y.max(), split.val_y.max(), split.test_y.max())) + 1
    rows = []
    for depth in depths:
        began = time.perf_counter()
        tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(split.train_x, split.train_y)
        seconds = time.perf_counter() - began
        splits = int(tree.tree_.node_count - tree.get_n_leaves())
        bits = int(splits * (math.ceil(math.log2(max(2, split.train_x.shape[1]))) + THRESHOLD_BITS)
                + tree.get_n_leaves() * math.ceil(math.log2(max(2, n_classes))))
        rows.append(RivalModel(
            "CART tree", f"depth {depth}", *(float(np.mean(tree.predict(x) == y)) for x, y in
                                           ((split.train_x, split.train_y), (split.val_x, split.val_y),
                                            (split.test_x, split.test_y))),
            nonzero=2 * splits, bits=bits, seconds=seconds, note=f"{splits} splits",
        ))
    return rows


# ------------------------------------------------------------------------------- float logistic


FLOAT_STRENGTHS = (0.01, 0.1, 1.0, 10.0, 100.0)


def float_logistic(split) -> RivalModel:
    """Dense float (L2) logistic regression, C picked on validation from FLOAT_STRENGTHS."""
    from sklearn.linear_model import LogisticRegression

    began = time.perf_counter()
    best = None
    for strength in FLOAT_STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=5000).fit(split.train_x, split.train_y)
        validation = float(np.mean(model.predict(split.val_x) == split.val_y))
        if best is None or validation > best[0]:
            best = (validation, model, strength)
    validation, model, strength = best
    parameters = model.coef_.size + model.intercept_.size
    return RivalModel(
        "float logistic", f"C={strength:g}", float(np.mean(model.predict(split.train_x) == split.train_y)), validation,
        float(np.mean(model.predict(split.test_x) == split.test_y)), nonzero=int(np.count_nonzero(model.coef_)
        + np.count_nonzero(model.intercept_)), bits=parameters * FLOAT_BITS, seconds=time.perf_counter() - began,
    )


def best_within(models: list[RivalModel], budget: int, size: str = "nonzero") -> RivalModel | None:
    """The model best on validation among those with at most ``budget`` non-zero parameters (or,
    with ``size="bits"``, bits; ties: smaller, then listed first): how a user picks a rival for a size."""
    fitting = [model for model in models if getattr(model, size) <= budget]
    if not fitting:
        return None
    return max(fitting, key=lambda model: (model.validation, -getattr(model, size)))
