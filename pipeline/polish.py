"""Polishing a stored network with MIP local search (``intnet improve``) and compressing it
(``intnet compress``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from formulations import FORMULATIONS, TrainingProblem
from pipeline.errors import DataError
from pipeline.networks.inference import LoadedModel, accuracies, labelled_data
from pipeline.networks.storage import StoredNetwork, write_network
from pipeline.solving.compress import compress, compressed_provenance, compression_report
from pipeline.solving.improve import improve
from pipeline.solving.solve import SolverOptions, option_default


def polish(
    model: LoadedModel, seconds: float, out: str | Path, *, dataset: str | None = None,
    data: str | Path | None = None, label: str | None = None, formulation: str | None = None,
    threads: int | None = None, step_time_limit: float | None = None, seed: int = 0,
) -> dict[str, Any]:
    """Improve ``model`` on its training examples (the rebuilt training split of a built-in
    dataset it was trained on, else every row given) for ``seconds``, write it to ``out`` and
    return a report. The objective is the formulation's: the one the model was trained with unless
    ``formulation`` names another. ``threads`` and ``step_time_limit`` default to the run options'."""
    name = formulation or model.stored.provenance.get("formulation") or "correct_margin"
    if name not in FORMULATIONS:
        raise DataError(f"unknown formulation {name!r}; choose from {', '.join(sorted(FORMULATIONS))}")
    sets = labelled_data(model, dataset, data, label)
    x, y = sets.get("train", sets.get("all"))
    network = model.network
    problem = TrainingProblem(x, y, len(model.stored.classes), tuple(network.sizes[1:-1]), network.P)
    began = time.perf_counter()
    options = SolverOptions() if threads is None else SolverOptions(threads=threads)
    outcome = improve(FORMULATIONS[name](), problem, network, seconds, options, seed=seed,
                      step_time_limit=step_time_limit)
    report = {
        "formulation": name,
        "start_objective": outcome.start_objective,
        "objective": outcome.objective,
        "improving_steps": outcome.improving_steps,
        "steps": len(outcome.steps),
        "seconds": time.perf_counter() - began,
        "ended": str(outcome.ended),
        "step_limit_end": outcome.step_time_limit,
        "before": accuracies(network, sets),
        "after": accuracies(outcome.network, sets),
    }
    provenance = model.stored.provenance | {"improved": model.stored.provenance.get("improved", []) + [report]}
    stored = StoredNetwork.single(outcome.network, model.stored.classes, model.stored.preprocessing, provenance)
    report["model_path"] = str(write_network(out, stored))
    return report


def compress_stored(
    model: LoadedModel, seconds: float, out: str | Path, *, dataset: str | None = None,
    data: str | Path | None = None, label: str | None = None, keep: str | None = None, tolerance: int = 0,
    threads: int | None = None, step_time_limit: float | None = None,
) -> dict:
    """Compress ``model`` keeping its correct count on the kept set: the rebuilt training (or
    validation) split of the built-in dataset it was trained on, else every row given; write it to
    ``out`` and return the report with accuracies before and after."""
    keep = keep or option_default("keep")
    sets = labelled_data(model, dataset, data, label)
    if keep not in sets and "all" not in sets:
        raise DataError(f"--keep {keep} needs the built-in dataset the model was trained on, whose split is rebuilt; "
                        "with other data every row is kept")
    kept = keep if keep in sets else "all"
    x, y = sets[kept]
    options = SolverOptions() if threads is None else SolverOptions(threads=threads)
    outcome = compress(model.network, x, y, len(model.stored.classes), seconds, options, tolerance=tolerance,
                       step_time_limit=step_time_limit)
    report = compression_report(outcome, kept, tolerance)
    provenance = compressed_provenance(model.stored.provenance, report)
    stored = StoredNetwork.single(outcome.network, model.stored.classes, model.stored.preprocessing, provenance)
    report |= {"before_accuracy": accuracies(model.network, sets), "after_accuracy": accuracies(outcome.network, sets)}
    report["model_path"] = str(write_network(out, stored))
    return report
