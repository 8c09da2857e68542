"""A stored network and the run that made it: the run's own split rebuilt, evaluation on it
(``intnet evaluate``), MIP local search on it (``intnet improve``) and compression
(``intnet compress``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import FORMULATIONS
from pipeline.config import SEARCHABLE, TrainConfig, architecture_problem, unsearchable
from pipeline.data.datasets import class_indices, label_strings, load_builtin, read_table, refuse_no_rows
from pipeline.errors import DataError, NetworkFileError, brief
from pipeline.networks.calibration import Calibration, fit_calibration_on_splits
from pipeline.networks.ensembles import Ensemble
from pipeline.networks.inference import LoadedModel, accuracies, check_inputs
from pipeline.networks.storage import StoredNetwork, write_network
from pipeline.solving.batches import BatchOptions
from pipeline.solving.blas import with_capped_blas
from pipeline.solving.compress import CompressionOptions, compress, compressed_provenance, compression_report
from pipeline.solving.improve import SearchOptions, improve
from pipeline.solving.solve import SolverOptions
from pipeline.training import load_dataset, split_data

Sets = dict[str, tuple[np.ndarray, np.ndarray]]


def labelled_data(
    model: LoadedModel, dataset: str | None = None, data: str | Path | None = None, label: str | None = None
) -> Sets:
    """Named (inputs, labels) sets for a built-in dataset or a file of raw rows.

    When the network was trained on that dataset or file, the run's own split is rebuilt by the
    run's own functions from its stored configuration (seed, sizes, ``--test-size``,
    ``--test-data``), so ``train``, ``validation`` and ``test`` are the rows they were then;
    otherwise every row is in ``all`` (and a built-in dataset's official test split in ``test``).
    """
    config = trained_on(model, dataset, data)
    if config is not None:
        run_data = load_dataset(config)
        check_inputs(model, run_data.x, dataset or str(data))
        if tuple(run_data.classes) != model.stored.classes:
            raise DataError(f"{dataset or data} has classes {run_data.classes}, the network {model.stored.classes}")
        split = split_data(config, run_data)
        sets = {"train": (split.train_x, split.train_y), "validation": (split.val_x, split.val_y)}
        if split.test_x is not None:
            sets["test"] = (split.test_x, split.test_y)
        return sets
    if dataset is not None:
        builtin = load_builtin(dataset)
        check_inputs(model, builtin.x, f"dataset {dataset}")
        if tuple(builtin.classes) != model.stored.classes:
            raise DataError(f"dataset {dataset} has classes {builtin.classes}, the network {model.stored.classes}")
        sets = {"all": (builtin.x, builtin.y)}
        if builtin.test_x is not None:
            sets["test"] = (builtin.test_x, builtin.test_y)
        return sets
    label = label or model.label
    table = read_table(data)
    refuse_no_rows(data, table)
    if not label or label not in table.column_names:
        raise DataError(f"label column {label!r} is not in {data}; name it with --label")
    x = model.preprocessor.transform(table)
    check_inputs(model, x, str(data))
    return {"all": (x, class_indices(label_strings(label, table.column(label)), model.stored.classes))}


def trained_on(model: LoadedModel, dataset: str | None, data: str | Path | None) -> TrainConfig | None:
    """The model's training configuration when it was trained on ``dataset`` (a built-in name) or
    on the file ``data`` (the same path), else None."""
    stored = model.stored.provenance.get("config")
    if stored is None:
        return None
    if dataset is not None:
        return run_config(model) if stored.get("dataset") == dataset else None
    if data is None or stored.get("data") is None:
        return None
    if not isinstance(stored["data"], str):
        raise NetworkFileError(f"{model.path}: intnet.provenance key 'config' is not a training configuration: data: "
                               f"must be the path of the data file, a string (got {brief(stored['data'])})")
    return run_config(model) if Path(stored["data"]).resolve() == Path(data).resolve() else None


def run_config(model: LoadedModel) -> TrainConfig:
    """The training configuration in the model's provenance (what rebuilds the run's split). Checked
    here, where it is used, not on read: ``predict`` and ``info`` do not need it."""
    try:
        return TrainConfig.model_validate(model.stored.provenance["config"])
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "config"
        raise NetworkFileError(
            f"{model.path}: intnet.provenance key 'config' is not a training configuration: {where}: "
            f"{problem['msg']} (got {brief(problem.get('input'))})"
        ) from None


def searchable_network(model: LoadedModel) -> IntegerNetwork:
    """The model's network, if local search and compression can take it: one network of the hidden
    widths a MIP trains (:func:`~pipeline.config.architecture_problem`), checked before any work.
    The reader takes any network of up to 10^7 parameters; one hidden layer of 400,000 neurons (a
    3.6 MB file) had made improve allocate 23.8 GB."""
    network = model.network
    problem = architecture_problem(network.sizes[1:-1])
    if problem is not None:
        raise DataError(f"{model.path}: {problem}; local search and compression take the networks training makes")
    return network


def evaluate(
    model: LoadedModel, dataset: str | None = None, data: str | Path | None = None, label: str | None = None
) -> dict[str, Any]:
    """Accuracy on each set of :func:`labelled_data`."""
    sets = labelled_data(model, dataset, data, label)
    return {"model": str(model.stored.provenance.get("dataset")), "dataset": dataset or str(data),
            "splits": accuracies(model.ensemble, sets)}


def refuse_class_weights(model: LoadedModel, command: str) -> None:
    """``intnet improve`` and ``compress`` count every example once: on a model trained with
    ``--class-weight`` they would undo the weighting without saying so."""
    config = model.stored.provenance.get("config")
    if isinstance(config, dict) and config.get("class_weight") is not None:
        raise DataError(f"{model.path} was trained with --class-weight; intnet {command} counts every example "
                        f"once and would undo it: give intnet train --class-weight with --{command} instead")


def recalibrated(network: IntegerNetwork, sets: Sets) -> Calibration | None:
    """A changed network's calibration, fitted again on the run's rebuilt validation split (its
    training split when validation has no rows, as training does); None without them (other data:
    the file then gives no probabilities rather than the old network's)."""
    if "validation" not in sets:
        return None
    return fit_calibration_on_splits(Ensemble.single(network), sets["validation"], sets["train"])


@with_capped_blas  # local search's passes over the examples, as in training
def improve_stored(
    model: LoadedModel, seconds: float, out: str | Path, *, dataset: str | None = None,
    data: str | Path | None = None, label: str | None = None, formulation: str | None = None,
    threads: int = SolverOptions.threads, improve_step_limit: float = SearchOptions.improve_step_limit,
    improve_validation: bool = SearchOptions.improve_validation, seed: int = 0,
) -> dict[str, Any]:
    """Improve ``model`` on its training examples (the rebuilt training split of the data it was
    trained on, else every row given) for ``seconds``, write it to ``out`` and return a report.
    With ``improve_validation`` and a rebuilt split, a step is taken only if it does not lower the
    validation accuracy, as in training. The objective is the formulation's: the one the model was
    trained with unless ``formulation`` names another."""
    name = formulation or model.stored.provenance.get("formulation") or BatchOptions.formulation
    if name not in FORMULATIONS:
        raise DataError(f"unknown formulation {name!r}; choose from {', '.join(sorted(FORMULATIONS))}")
    if name not in SEARCHABLE:
        given = "--formulation" if formulation else "the model's formulation (give another with --formulation)"
        raise DataError(f"{given} {name}: {unsearchable(name)}")
    refuse_class_weights(model, "improve")
    network = searchable_network(model)
    sets = labelled_data(model, dataset, data, label)
    x, y = sets.get("train", sets.get("all"))
    problem = TrainingProblem(x, y, len(model.stored.classes), tuple(network.sizes[1:-1]), network.P)
    validation = sets.get("validation") if improve_validation else None
    began = time.perf_counter()
    outcome = improve(FORMULATIONS[name](), problem, network, seconds, SolverOptions(threads=threads), seed=seed,
                      improve_step_limit=improve_step_limit, validation=validation)
    report = {
        "formulation": name,
        "start_objective": outcome.start_objective,
        "objective": outcome.objective,
        "improving_steps": outcome.improving_steps,
        "steps": len(outcome.steps),
        "seconds": time.perf_counter() - began,
        "ended": str(outcome.ended),
        "step_limit_end": outcome.step_limit_end,
        "validation_rule": validation is not None,
        "before": accuracies(network, sets),
        "after": accuracies(outcome.network, sets),
    }
    provenance = model.stored.provenance | {"improved": model.stored.provenance.get("improved", []) + [report]}
    stored = StoredNetwork.single(outcome.network, model.stored.classes, model.stored.preprocessing, provenance,
                                  recalibrated(outcome.network, sets))
    report["model_path"] = str(write_network(out, stored))
    return report


@with_capped_blas
def compress_stored(
    model: LoadedModel, seconds: float, out: str | Path, *, dataset: str | None = None,
    data: str | Path | None = None, label: str | None = None, keep: str = CompressionOptions.keep,
    tolerance: int = CompressionOptions.tolerance, threads: int = SolverOptions.threads,
    improve_step_limit: float = SearchOptions.improve_step_limit,
) -> dict:
    """Compress ``model`` keeping its correct count on the kept set: the rebuilt training (or
    validation) split of the data it was trained on, else every row given; write it to ``out`` and
    return the report with accuracies before and after."""
    refuse_class_weights(model, "compress")
    network = searchable_network(model)
    sets = labelled_data(model, dataset, data, label)
    if keep not in sets and "all" not in sets:
        raise DataError(f"--keep {keep} needs the data the model was trained on, whose split is rebuilt; "
                        "with other data every row is kept")
    kept = keep if keep in sets else "all"
    x, y = sets[kept]
    outcome = compress(network, x, y, len(model.stored.classes), seconds, SolverOptions(threads=threads),
                       tolerance=tolerance, improve_step_limit=improve_step_limit)
    report = compression_report(outcome, kept, tolerance)
    provenance = compressed_provenance(model.stored.provenance, report)
    stored = StoredNetwork.single(outcome.network, model.stored.classes, model.stored.preprocessing, provenance,
                                  recalibrated(outcome.network, sets))
    report |= {"before_accuracy": accuracies(network, sets), "after_accuracy": accuracies(outcome.network, sets)}
    report["model_path"] = str(write_network(out, stored))
    return report
