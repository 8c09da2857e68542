"""A scikit-learn-style classifier over the training pipeline, and loading a stored network.

The conventions are scikit-learn's (``get_params``/``set_params``, ``fit`` returning ``self``,
fitted attributes ending in ``_``), kept by duck typing: scikit-learn itself is not needed.
"""

from __future__ import annotations

import inspect
import re
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from flows.run_scope import private_run
from pipeline import reporting, training
from pipeline.config import TrainConfig, first_problem
from pipeline.data.datasets import dataset_from_arrays, feature_table, without_columns
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


def parameter_of(flag: str) -> str:
    """The parameter a CLI flag (without its dashes) sets, or the flag as it is when none does."""
    name = flag.replace("-", "_")
    return name if name in PARAMETERS else f"--{flag}"


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (a ValueError and an AttributeError, as scikit-learn's)."""


class IntegerNetworkClassifier:
    """An integer network classifier trained by MIP. Parameters are the run options of
    ``intnet train``, with the same names, defaults and checks (``intnet train --help`` describes
    each): formulation, P, hidden, batch_size, epochs, time_limit, improve, workers, seed, ...

    ``ensemble=K`` (bagging) or ``ensemble="ovo"`` (one-vs-one) trains networks that vote.

    After ``fit``: ``network_`` (the integer network, or the ensemble), ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (for a table or DataFrame), ``summary_`` (the run's summary, as
    ``intnet train --json`` reports it)."""

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
            # The config's messages name the CLI's flags; here the same options are parameters.
            message = re.sub(r"--([a-z][a-z-]*)", lambda flag: parameter_of(flag.group(1)), message)
            where = f"parameter {field}={given.get(field)!r}: " if field in PARAMETERS else ""
            raise ValueError(f"IntegerNetworkClassifier: {where}{message}") from None

    def fit(self, X, y) -> IntegerNetworkClassifier:
        config = self.config()
        dataset, classes = dataset_from_arrays(X, y)
        dataset = without_columns(dataset, config.exclude)
        # A run on Ray gets the CLI's run scope: Ray makes its session folder world-writable (0777,
        # measured) in the temporary folder, and a killed process left it there with two Ray agents
        # that lived up to 2 minutes. In the scope, the folder is inside a private one (0700) that a
        # watchdog removes, killing what the run started, however the process ends.
        with private_run() if config.use_ray else nullcontext():
            summary = training.train(config, data=dataset, persist=False)
        self.summary_ = summary
        self.network_ = summary.network
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
