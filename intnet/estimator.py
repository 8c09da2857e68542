"""A scikit-learn-style classifier over the training pipeline, and loading a stored network.

The conventions are scikit-learn's (``get_params``/``set_params``, ``fit`` returning ``self``,
fitted attributes ending in ``_``), kept by duck typing: scikit-learn itself is not needed.
"""

from __future__ import annotations

import inspect
import re
from contextlib import nullcontext
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from flows.run_scope import private_run
from pipeline import reporting, training
from pipeline.config import TrainConfig, first_problem
from pipeline.data.datasets import dataset_from_arrays, feature_table, without_columns, without_rows
from pipeline.networks.calibration import scores
from pipeline.networks.ensembles import Ensemble

NOT_ESTIMATOR_OPTIONS = ("dataset", "data", "label", "test_data", "test_size", "train_size", "per_class", "out",
                         "checkpoints", "resume")
"""Run options that name files or subsample the data: ``fit`` trains on the X and y it is given,
holding out a validation share (``validation_size``) and no test set, and writes nothing."""

PARAMETERS = tuple(name for name in TrainConfig.model_fields if name not in NOT_ESTIMATOR_OPTIONS)

DEFAULTS = {name: (lambda default: default.value if isinstance(default, Enum) else default)(
    TrainConfig.model_fields[name].default) for name in PARAMETERS}
"""Each parameter's default as the run's configuration declares it; an enumeration's as its plain
value, one of the types scikit-learn allows a default to be."""


def in_parameters(message: str) -> str:
    """A message of the run's configuration, which names the CLI's flags, naming the estimator's
    parameters instead (the same options); a flag that sets no parameter stays as it is."""
    def parameter(flag: re.Match) -> str:
        name = flag.group(1).replace("-", "_")
        return name if name in PARAMETERS else flag.group(0)

    return re.sub(r"--([a-z][a-z-]*)", parameter, message)


def weighted_rows(X, y, sample_weight):
    """``X`` and ``y`` without the rows of weight 0, and the others' weights: one non-negative finite
    number per row, not all 0 (scikit-learn's reading: weight 0 is as if the row were not given)."""
    table = feature_table(X)
    weights = np.asarray(sample_weight, dtype=np.float64) if not np.isscalar(sample_weight) else \
        np.full(table.num_rows, float(sample_weight))
    if weights.shape != (table.num_rows,):
        raise ValueError(f"IntegerNetworkClassifier: parameter sample_weight: one weight per row of X ({table.num_rows}), "
                         f"got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("IntegerNetworkClassifier: parameter sample_weight: weights must be finite and >= 0")
    if not np.any(weights > 0):
        raise ValueError("IntegerNetworkClassifier: parameter sample_weight: every weight is zero; at least one must "
                         "be positive")
    kept = weights > 0
    labels = np.asarray(y)
    if len(labels) != table.num_rows:
        return table, labels, weights  # the labels' own check says what is wrong
    return table.filter(kept), labels[kept], weights[kept]


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (a ValueError and an AttributeError, as scikit-learn's)."""


class IntegerNetworkClassifier:
    """An integer network classifier trained by MIP. Parameters are the run options of
    ``intnet train``, with the same names, defaults and checks (``intnet train --help`` describes
    each): formulation, P, hidden, batch_size, epochs, time_limit, improve, workers, seed, ...

    ``ensemble=K`` (bagging) or ``ensemble="ovo"`` (one-vs-one) trains networks that vote.
    ``hidden`` is a tuple of widths or an int (``hidden=4`` is ``(4,)``), 0 for no hidden layer, or
    ``"auto"``. ``class_weight`` (a dict label → weight, or ``"balanced"``) and ``fit``'s
    ``sample_weight`` make an example count that many times in every MIP objective and in the start;
    the formulations whose objective is no sum over examples (min_weight, max_margin, lexicographic),
    ``neuron_penalty`` and ``compress`` refuse weights. A bad parameter is a one-line ValueError naming it.

    **What fit spends**: the start network (``heuristic_steps`` gradient steps; with no hidden layer
    the sparse search, at most ``start_seconds``, and with ``monotone``, ``fair`` or ``min_recall`` a
    second search of up to ``start_seconds`` that keeps only candidates holding them, its reweighted
    searches under ``fair`` included;
    not counted in the limits), then per epoch every batch at most ``time_limit + improve`` seconds
    (building its MIP included), ``workers`` batches at a time: with the defaults (one batch, one epoch) at most
    ``time_limit + improve`` seconds beyond the start, plus ``compress``, plus evaluating the
    networks; ``hidden="auto"`` is one such run per architecture it tries. A start that already
    meets ``target_error`` is not solved at all (``target_error=None`` solves to the limit).

    After ``fit``: ``network_`` (the integer network, or the ensemble), ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (for a table or DataFrame), ``summary_`` (the run's summary, as
    ``intnet train --json`` reports it; it keeps the preprocessing, not the training rows, so a
    pickled model is the size of its network), ``calibration_`` (how ``predict_proba`` reads the
    scores)."""

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(PARAMETERS)
        if unknown:
            raise TypeError(f"unknown parameter(s) {', '.join(sorted(unknown))}; see IntegerNetworkClassifier's signature")
        for name in PARAMETERS:
            setattr(self, name, params.get(name, DEFAULTS[name]))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PARAMETERS}

    def set_params(self, **params: Any) -> IntegerNetworkClassifier:
        for name, value in params.items():
            if name not in PARAMETERS:
                raise ValueError(f"invalid parameter {name!r} for IntegerNetworkClassifier")
            setattr(self, name, value)
        return self

    _estimator_type = "classifier"  # how scikit-learn before 1.6 tells a classifier

    def __sklearn_tags__(self):
        """What scikit-learn (>= 1.6) asks of an estimator; only it calls this, so it is there to import."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        # poor_score: an integer network of a few ternary neurons trained for seconds need not
        # reach the accuracy scikit-learn's generic checks ask of any classifier.
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(poor_score=True), input_tags=InputTags(two_d_array=True),
                    non_deterministic=False)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != DEFAULTS[k]}
        return f"IntegerNetworkClassifier({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def config(self) -> TrainConfig:
        """The run options as the pipeline takes them; a bad value is a ValueError naming it."""
        # Only what differs from the defaults is passed, so that defaults that depend on other
        # options (dead_inputs with a neuron penalty) are the config's own.
        given = {k: v for k, v in self.get_params().items() if v != DEFAULTS[k]}
        try:
            return TrainConfig(**given, test_size=0)
        except ValidationError as error:
            field, message = first_problem(error)
            message = in_parameters(message)
            where = f"parameter {field}={given.get(field)!r}: " if field in PARAMETERS else ""
            raise ValueError(f"IntegerNetworkClassifier: {where}{message}") from None

    def fit(self, X, y, sample_weight=None) -> IntegerNetworkClassifier:
        """Train on ``X`` and ``y`` (a validation share held out); ``sample_weight``: how much each
        row counts (non-negative; rows of weight 0 are left out, as if not given)."""
        config = self.config()
        if sample_weight is not None:
            if (problem := config.weighting_problem()) is not None:
                raise ValueError(f"IntegerNetworkClassifier: parameter sample_weight: {in_parameters(problem)}")
            X, y, sample_weight = weighted_rows(X, y, sample_weight)
        dataset, classes = dataset_from_arrays(X, y)
        dataset = replace(without_columns(dataset, config.exclude), weights=sample_weight)
        # A run on Ray gets the CLI's run scope: Ray makes its session folder world-writable (0777,
        # measured) in the temporary folder, and a killed process left it there with two Ray agents
        # that lived up to 2 minutes. In the scope, the folder is inside a private one (0700) that a
        # watchdog removes, killing what the run started, however the process ends.
        with private_run() if config.use_ray else nullcontext():
            summary = training.train(config, data=dataset, persist=False)
        summary.dataset = without_rows(summary.dataset)
        self.summary_ = summary
        self.network_ = summary.network
        self.calibration_ = summary.calibration
        self.classes_ = classes
        self.n_features_in_ = len(dataset.preprocessor.columns)
        columns = [column.name for column in dataset.preprocessor.columns]
        if not all(name == f"x{i}" for i, name in enumerate(columns)):
            self.feature_names_in_ = np.array(columns, dtype=object)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError("this IntegerNetworkClassifier is not fitted yet; call fit(X, y) first")

    def _inputs(self, X) -> np.ndarray:
        """``X`` as the network's inputs, through the preprocessing fitted on the training data."""
        self._check_fitted()
        if not (hasattr(X, "columns") or hasattr(X, "column_names") or hasattr(X, "toarray")):
            X = np.asarray(X)
        width = X.shape[1] if isinstance(X, np.ndarray) and X.ndim == 2 else None
        if width is not None and width != self.n_features_in_:
            raise ValueError(f"X has {width} features, but IntegerNetworkClassifier is expecting "
                             f"{self.n_features_in_} features as input")
        preprocessor = self.summary_.dataset.preprocessor
        return preprocessor.transform(feature_table(X, [column.name for column in preprocessor.columns]))

    def decision_function(self, X) -> np.ndarray:
        """The output layer's pre-activations (an ensemble's: its votes), one column per class; for
        two classes, as scikit-learn expects, one column: class 1's minus class 0's (> 0 predicts
        class 1)."""
        inputs = self._inputs(X)
        scores = self.network_.votes(inputs) if isinstance(self.network_, Ensemble) else self.network_.output(inputs)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict_proba(self, X) -> np.ndarray:
        """Each class's probability (rows × classes, in the order of ``classes_``; rows sum to 1): a
        softmax of the integer scores with one temperature fitted on the validation split
        (``calibration_``, stored in the network file, so ``intnet.load(path).predict_proba`` gives
        the same). Its argmax is ``predict``: equal scores get equal probabilities, the lowest class
        index first, as ``predict`` breaks ties."""
        inputs = self._inputs(X)
        model = self.network_ if isinstance(self.network_, Ensemble) else Ensemble.single(self.network_)
        return self.calibration_.probabilities(scores(model, inputs))

    def predict(self, X) -> np.ndarray:
        inputs = self._inputs(X)
        return self.classes_[self.network_.predict(inputs)]

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def save(self, path: str | Path) -> Path:
        """Write the network file (README, "The network file"): ``intnet info``, ``intnet
        predict`` and :func:`load` read it, as any reader of the contract can."""
        self._check_fitted()
        summary = self.summary_
        config = summary.config.model_copy(update={"out": Path(path)})
        return reporting.save_network(config, summary.dataset, summary.model, summary)


IntegerNetworkClassifier.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=DEFAULTS[name])
       for name in PARAMETERS]
)
"""scikit-learn reads an estimator's parameters from its ``__init__`` signature: these are the
run options, declared once in TrainConfig."""
