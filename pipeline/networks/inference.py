"""Using a stored network: evaluate it, predict class labels for raw rows, describe it."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from formulations.network import bits_for, layered_size_bits, nonzero_parameters
from pipeline.config import TrainConfig
from pipeline.data.datasets import class_indices, feature_table, label_strings, load_builtin, read_table
from pipeline.data.preprocessing import Preprocessor
from pipeline.data.splits import split_dataset
from pipeline.errors import DataError, NetworkFileError, brief
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.storage import StoredNetwork, read_network, replacing


@dataclass(frozen=True)
class LoadedModel:
    stored: StoredNetwork
    preprocessor: Preprocessor
    path: Path

    @property
    def network(self) -> IntegerNetwork:
        """The network of a single-network file (an error for an ensemble's)."""
        return self.stored.network

    @property
    def ensemble(self) -> Ensemble:
        """What predicts: the file's ensemble, a single network being one member."""
        return self.stored.ensemble

    @property
    def label(self) -> str | None:
        return self.stored.preprocessing.get("label")

    def predict(self, rows) -> np.ndarray:
        """Class names for raw rows: a table, a DataFrame, or a 2-D array in the file's column order."""
        x = self.preprocessor.transform(feature_table(rows, [c.name for c in self.preprocessor.columns]))
        _check_inputs(self, x, "the rows")
        return np.array(self.stored.classes, dtype=object)[self.ensemble.predict(x)]


def load_model(path: str | Path) -> LoadedModel:
    stored = read_network(path)
    try:
        preprocessor = Preprocessor.from_json(stored.preprocessing)
    except NetworkFileError as error:
        raise NetworkFileError(f"{path}: {error}") from None
    label = stored.preprocessing.get("label")
    if label is not None and not isinstance(label, str):
        raise NetworkFileError(f"{path}: intnet.preprocessing key 'label' must be a string, got {brief(label)}")
    if len(preprocessor.feature_names) != stored.ensemble.n_inputs:
        raise NetworkFileError(
            f"{path}: the preprocessing makes {len(preprocessor.feature_names)} inputs, the network takes "
            f"{stored.ensemble.n_inputs}"
        )
    return LoadedModel(stored, preprocessor, Path(path))


def _check_inputs(model: LoadedModel, x: np.ndarray, source: str) -> None:
    if x.shape[1] != model.ensemble.n_inputs:
        raise DataError(f"{source} has {x.shape[1]} inputs, the network takes {model.ensemble.n_inputs}")


def labelled_data(
    model: LoadedModel, dataset: str | None = None, data: str | Path | None = None, label: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (inputs, labels) sets for a built-in dataset or a file of raw rows.

    When the network was trained on the built-in dataset, the run's own split is rebuilt from the
    stored seed and sizes (``train``, ``validation``, ``test``), so they mean what they did then;
    otherwise every row is in ``all`` (and an official test split in ``test``).
    """
    if dataset is not None:
        return _builtin_sets(model, dataset)
    label = label or model.label
    table = read_table(data)
    if not label or label not in table.column_names:
        raise DataError(f"label column {label!r} is not in {data}; name it with --label")
    x = model.preprocessor.transform(table)
    _check_inputs(model, x, str(data))
    return {"all": (x, class_indices(label_strings(label, table.column(label)), model.stored.classes))}


def _builtin_sets(model: LoadedModel, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    dataset = load_builtin(name)
    _check_inputs(model, dataset.x, f"dataset {name}")
    if tuple(dataset.classes) != model.stored.classes:
        raise DataError(f"dataset {name} has classes {dataset.classes}, the network {model.stored.classes}")
    provenance = model.stored.provenance
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if provenance.get("dataset") == name and "config" in provenance:
        config = stored_config(model)
        split = split_dataset(dataset, train_size=config.train_size, per_class=config.per_class,
                              seed=config.seed, validation_size=config.validation_size)
        sets["train"] = (split.train_x, split.train_y)
        sets["validation"] = (split.val_x, split.val_y)
        if split.test_x is not None:
            sets["test"] = (split.test_x, split.test_y)
    else:
        sets["all"] = (dataset.x, dataset.y)
        if dataset.test_x is not None:
            sets["test"] = (dataset.test_x, dataset.test_y)
    return sets


def stored_config(model: LoadedModel) -> TrainConfig:
    """The training configuration in the model's provenance (what rebuilds the run's split). Checked
    here, where it is used, not on read: ``predict`` and ``info`` do not need it."""
    from pydantic import ValidationError

    try:
        return TrainConfig.model_validate(model.stored.provenance["config"])
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "config"
        raise NetworkFileError(
            f"{model.path}: intnet.provenance key 'config' is not a training configuration: {where}: "
            f"{problem['msg']} (got {brief(problem.get('input'))})"
        ) from None


def accuracies(model: IntegerNetwork | Ensemble, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Each set's accuracy; for an ensemble of several members also each member's (on the rows of
    its classes) and the rows whose vote was tied."""
    report = {name: {"rows": int(len(y)), "accuracy": model.accuracy(x, y)} for name, (x, y) in sets.items()}
    if isinstance(model, Ensemble) and not model.is_single:
        for name, (x, y) in sets.items():
            report[name] |= {"tied_votes": model.tied_votes(x), "members": model.member_accuracies(x, y)}
    return report


def evaluate(
    model: LoadedModel, dataset: str | None = None, data: str | Path | None = None, label: str | None = None
) -> dict[str, Any]:
    """Accuracy on each set of :func:`labelled_data`."""
    sets = labelled_data(model, dataset, data, label)
    return {"model": str(model.stored.provenance.get("dataset")), "dataset": dataset or str(data),
            "splits": accuracies(model.ensemble, sets)}


def predict_file(model: LoadedModel, path: str | Path) -> list[str]:
    """Class labels, one per row of the file; columns the network was not trained on are ignored."""
    table = read_table(path)
    x = model.preprocessor.transform(table)
    _check_inputs(model, x, str(path))
    return [model.stored.classes[i] for i in model.ensemble.predict(x)]


def write_predictions(labels: list[str], out: str | Path | None) -> None:
    """A CSV with one column ``prediction``, to ``out`` (atomically) or to standard output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["prediction"])
    writer.writerows([label] for label in labels)
    if out is None:
        sys.stdout.write(buffer.getvalue())
        return
    with replacing(out) as handle:
        handle.write(buffer.getvalue().encode())


def describe(model: LoadedModel) -> dict[str, Any]:
    """What ``intnet info`` shows. ``neurons_kept`` and ``neurons_trained`` are the hidden widths
    stored and trained (they differ once switched-off neurons were stripped); ``size_bits_before_strip``
    the size of the architecture trained. A file written without neuron optimisation has both the same.
    ``size_bits`` counts each layer's parameters in the bits of the range the file records for it
    (``layer_bounds``, written by compression; else [−P, P], ``bits_per_parameter`` each); ``compressed`` the
    neurons, non-zero parameters and bits before and after compression (None without). For an
    ensemble, the first member's architecture and the ensemble's members, sizes and tied votes."""
    ensemble = model.ensemble
    network = ensemble.networks[0]
    provenance = model.stored.provenance
    accuracy = provenance.get("accuracy", {}).get("final", {})
    trained = provenance.get("sizes_before_strip", network.sizes)
    bounds = provenance.get("layer_bounds", [network.P] * len(network.weights))
    members = {}
    if not ensemble.is_single:
        members = {
            "ensemble": str(ensemble.kind), "members": len(ensemble.networks),
            "member_architectures": ["-".join(map(str, n.sizes)) for n in ensemble.networks],
            "member_classes": ensemble.pairs if ensemble.kind == EnsembleKind.ONE_VS_ONE else None,
            "ensemble_parameters": ensemble.n_parameters, "ensemble_size_bits": ensemble.size_bits,
            "tied_votes": provenance.get("tied_votes"),
            "member_accuracies": [m.get("final") for m in provenance.get("members", [])],
        }
    return members | {
        "architecture": "-".join(map(str, network.sizes)),
        "P": network.P,
        "parameters": network.n_parameters,
        "nonzero_parameters": nonzero_parameters(network),
        "size_bits": layered_size_bits(network, bounds),
        "bits_per_parameter": network.bits_per_parameter,
        "layer_bounds": bounds,
        "bits_per_layer": [bits_for(bound) for bound in bounds],
        "neurons_kept": network.sizes[1:-1],
        "neurons_trained": trained[1:-1],
        "size_bits_before_strip": provenance.get("size_bits_before_strip", network.size_bits),
        "neuron_penalty": provenance.get("config", {}).get("neuron_penalty"),
        "classes": list(model.stored.classes),
        "formulation": provenance.get("formulation"),
        "dataset": provenance.get("dataset"),
        "n_train": provenance.get("n_train"),
        "train_accuracy": accuracy.get("train"),
        "validation_accuracy": accuracy.get("validation"),
        "test_accuracy": accuracy.get("test"),
        "batches": len(provenance.get("batches", [])),
        "compressed": compression_summary(provenance.get("compressed")),
    }


def compression_summary(report: dict | None) -> dict | None:
    """Neurons, non-zero parameters and bits before and after compression, from its report."""
    if report is None:
        return None
    return {side: report.get(side) for side in ("before", "after")}
