"""What a training run did, in the forms people and programs read it: the accuracies of each
network on each split, a record per epoch and per ensemble member, the run's summary (the terminal
table, ``--json``) and the provenance stored in the network file."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from pipeline.config import TrainConfig
from pipeline.data.datasets import Dataset
from pipeline.data.splits import Split
from pipeline.networks.calibration import Calibration
from pipeline.networks.ensembles import Ensemble, EnsembleKind, member_labels
from pipeline.networks.storage import StoredNetwork, write_network
from pipeline.solving.batches import BatchResult
from pipeline.solving.compress import compressed_provenance
from pipeline.solving.solve import START_MEETS_TARGET

PACKAGES = ("intnet", "numpy", "pyomo", "highspy", "pyarrow", "ray", "prefect", "pydantic")


@dataclass(frozen=True)
class Accuracies:
    train: float
    validation: float
    test: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def evaluate(network: IntegerNetwork | Ensemble, split: Split) -> Accuracies:
    test = None if split.test_x is None else network.accuracy(split.test_x, split.test_y)
    return Accuracies(
        train=network.accuracy(split.train_x, split.train_y),
        validation=network.accuracy(split.val_x, split.val_y),
        test=test,
    )


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: its box, how its batches ended, and its merged network's accuracies."""

    epoch: int
    radius: int | None
    batches: int
    failed: int
    accepted: int
    merged: Accuracies
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "radius": self.radius, "batches": self.batches, "failed": self.failed,
                "accepted": self.accepted, "merged": self.merged.as_dict(), "seconds": self.seconds}


def epoch_record(epoch: int, radius: int | None, results: list[BatchResult], merged: IntegerNetwork | Ensemble,
                 split: Split, seconds: float) -> EpochRecord:
    return EpochRecord(
        epoch=epoch, radius=radius, batches=len(results),
        failed=sum(not r.ok for r in results), accepted=sum(r.accepted for r in results),
        merged=evaluate(merged, split), seconds=seconds,
    )


def epoch_table(records: list[EpochRecord], best: int | None) -> str:
    """The epochs as a Markdown table (the run's Prefect artifact)."""
    def pct(value):
        return "–" if value is None else f"{100 * value:.1f}"

    lines = ["| epoch | box | batches | failed | accepted | train % | validation % | test % | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(records):
        box = "[−P, P]" if r.radius is None else f"±{r.radius}"
        mark = " (kept)" if i == best else ""
        lines.append(f"| {r.epoch}{mark} | {box} | {r.batches} | {r.failed} | {r.accepted} | {pct(r.merged.train)} | "
                     f"{pct(r.merged.validation)} | {pct(r.merged.test)} | {r.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class ArchitectureTrial:
    """One architecture ``--hidden auto`` trained: its hidden widths, the final network's validation
    and test accuracy, size, and the seconds its run took."""

    hidden: tuple[int, ...]
    validation: float
    test: float | None
    nonzero_parameters: int
    size_bits: int
    seconds: float
    chosen: bool = False

    @property
    def name(self) -> str:
        return ",".join(map(str, self.hidden)) or "0"

    def as_dict(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "validation_accuracy": self.validation, "test_accuracy": self.test,
                "nonzero_parameters": self.nonzero_parameters, "size_bits": self.size_bits, "seconds": self.seconds,
                "chosen": self.chosen}


def architecture_table(trials: list[ArchitectureTrial]) -> str:
    """What ``--hidden auto`` tried, as the terminal shows it."""
    lines = ["  architectures tried (kept: the smallest within 0.2 points of the best validation accuracy):",
             f"    {'hidden':>8} {'validation':>10} {'test':>7} {'non-zero':>8} {'bits':>7} {'seconds':>7}"]
    for t in trials:
        test = "   n/a" if t.test is None else f"{100 * t.test:6.2f}%"
        note = "  <- kept" if t.chosen else ""
        lines.append(f"    {t.name:>8} {100 * t.validation:9.2f}% {test} {t.nonzero_parameters:>8} {t.size_bits:>7} "
                     f"{t.seconds:>7.1f}{note}")
    return "\n".join(lines)


@dataclass(frozen=True)
class MemberRecord:
    """One ensemble member: what it was trained on and how it did on the rows of its own classes."""

    member: int
    classes: tuple[int, ...]
    examples: int
    start: Accuracies
    final: Accuracies
    final_source: str
    best_epoch: int
    sizes: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"member": self.member, "classes": list(self.classes), "examples": self.examples,
                "start": self.start.as_dict(), "final": self.final.as_dict(), "final_source": self.final_source,
                "best_epoch": self.best_epoch, "sizes": self.sizes}


@dataclass
class TrainSummary:
    """What a run did, for the terminal, ``--json`` and the file's provenance. For an ensemble the
    accuracies are the vote's, and ``start`` is the vote of the members' gradient starts: the
    gradient ensemble of the same members, on the same resamples."""

    config: TrainConfig
    sizes: list[int]
    n_train: int
    n_validation: int
    n_test: int
    final: Accuracies
    start: Accuracies
    merged: Accuracies
    final_source: str
    size_bits: int
    n_parameters: int
    nonzero_parameters: int
    """Weights and biases that are not 0 (what ``--max-nonzero`` bounds and ``intnet info`` reports)."""
    trained_sizes: list[int]
    """The architecture trained: ``sizes`` before switched-off neurons were stripped."""
    trained_size_bits: int
    batches: list[BatchResult]
    timings: dict[str, float]
    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = 0
    """The epoch kept (None for an ensemble: each member keeps its own, in ``members``)."""
    model_path: str | None = None
    model: Ensemble | None = field(default=None, repr=False)
    """The model stored (or, without a file, the one the run returns); one member for a single network."""
    start_model: Ensemble | None = field(default=None, repr=False)
    """The gradient starts, voting: what the MIP started from (``start``'s accuracies are its)."""
    members: list[MemberRecord] = field(default_factory=list)
    tied_votes: dict[str, int | None] = field(default_factory=dict)
    dataset: Dataset | None = field(default=None, repr=False)
    """The data it was trained on, with the preprocessing that raw rows go through."""
    constraints: dict | None = None
    """With ``--monotone``, ``--fair`` or ``--min-recall``: how the start was made to hold them
    (``repair``) and each one's value on every split, recomputed from the stored network
    (``checks``, :meth:`pipeline.solving.guarantees.Guarantees.certificate`)."""
    architectures: list[ArchitectureTrial] = field(default_factory=list)
    """With ``--hidden auto``, every architecture trained, in order (empty otherwise)."""
    calibration: Calibration | None = None
    """How the final model's scores become probabilities, fitted on validation (stored in the file)."""
    compression: dict | None = None
    """``--compress``'s report (:meth:`pipeline.solving.compress.CompressOutcome.report`), None without."""

    @property
    def network(self) -> IntegerNetwork | Ensemble | None:
        """The single network trained, or the ensemble."""
        if self.model is None:
            return None
        return self.model.networks[0] if self.model.is_single else self.model

    @property
    def batches_at_target_from_start(self) -> int:
        """Batches whose start already met the target error, so that no MIP was built for them."""
        return sum(r.message == START_MEETS_TARGET for r in self.batches)

    def ensemble_json(self) -> dict[str, Any]:
        model = self.model
        description = {"kind": str(model.kind), "members": len(model.networks)} if model else {}
        if model is not None and model.kind == EnsembleKind.ONE_VS_ONE:
            description["pairs"] = model.pairs
        return description | {"tied_votes": self.tied_votes}

    def to_json(self) -> dict[str, Any]:
        return {
            "train_accuracy": self.final.train,
            "validation_accuracy": self.final.validation,
            "test_accuracy": self.final.test,
            "seconds": self.timings.get("total", float("nan")),
            "model_path": self.model_path,
            "dataset": self.config.dataset_name,
            "formulation": self.config.formulation,
            "P": self.config.P,
            "sizes": self.sizes,
            "n_train": self.n_train,
            "n_validation": self.n_validation,
            "n_test": self.n_test,
            "size_bits": self.size_bits,
            "n_parameters": self.n_parameters,
            "nonzero_parameters": self.nonzero_parameters,
            "sizes_before_strip": self.trained_sizes,
            "size_bits_before_strip": self.trained_size_bits,
            "final_source": self.final_source,
            "start": self.start.as_dict(),
            "merged": self.merged.as_dict(),
            "timings": self.timings,
            "epochs": [e.as_dict() for e in self.epochs],
            "best_epoch": self.best_epoch,
            "ensemble": self.ensemble_json(),
            "members": [m.as_dict() for m in self.members],
            "batches": [r.record() for r in self.batches],
            "compression": self.compression,
            "architectures": [t.as_dict() for t in self.architectures],
            "constraints": self.constraints,
        }


def tied_votes(model: Ensemble, split: Split) -> dict[str, int | None]:
    """Rows of each split whose vote was tied (decided by the lowest class index)."""
    return {"train": model.tied_votes(split.train_x), "validation": model.tied_votes(split.val_x),
            "test": None if split.test_x is None else model.tied_votes(split.test_x)}


def member_accuracies(network: IntegerNetwork, classes: tuple[int, ...], split: Split) -> Accuracies:
    """A member's accuracies on the rows of its classes, labelled by its outputs."""
    def on(x, y):
        if x is None:
            return None
        mine = np.isin(y, classes)
        return network.accuracy(x[mine], member_labels(y[mine], classes)) if mine.any() else None

    return Accuracies(train=on(split.train_x, split.train_y), validation=on(split.val_x, split.val_y),
                      test=on(split.test_x, split.test_y))


def summarize(
    config: TrainConfig, split: Split, start: Ensemble, merged: Ensemble, final: Ensemble, final_source: str,
    results: list[BatchResult], timings: dict[str, float], epochs: list[EpochRecord] | None = None,
    best: int | None = 0, members: list[MemberRecord] | None = None,
) -> TrainSummary:
    """``merged`` is the kept epochs' merged networks; ``results`` every epoch's batches; ``final``
    is the model stored; ``start`` has the architecture every batch trained."""
    return TrainSummary(
        config=config, sizes=final.networks[0].sizes, n_train=len(split.train_y), n_validation=len(split.val_y),
        n_test=0 if split.test_y is None else len(split.test_y),
        final=evaluate(final, split), start=evaluate(start, split), merged=evaluate(merged, split),
        final_source=final_source, size_bits=final.size_bits, n_parameters=final.n_parameters,
        nonzero_parameters=final.nonzero_parameters,
        trained_sizes=start.networks[0].sizes, trained_size_bits=start.size_bits,
        batches=results, timings=timings, epochs=list(epochs or []), best_epoch=best, model=final, start_model=start,
        members=list(members or []), tied_votes=tied_votes(final, split),
    )


def save_network(config: TrainConfig, dataset: Dataset, model: Ensemble, summary: TrainSummary) -> Path:
    provenance = {
        "formulation": config.formulation,
        "dataset": config.dataset_name,
        "config": config.model_dump(mode="json"),
        "sizes": summary.sizes,
        "sizes_before_strip": summary.trained_sizes,
        "size_bits_before_strip": summary.trained_size_bits,
        "n_train": summary.n_train,
        "n_validation": summary.n_validation,
        "n_test": summary.n_test,
        "seed": config.seed,
        "solver": config.solver,
        "versions": package_versions(),
        "accuracy": {"final": summary.final.as_dict(), "start": summary.start.as_dict(),
                     "merged": summary.merged.as_dict()},
        "final_source": summary.final_source,
        "epochs": [e.as_dict() for e in summary.epochs],
        "best_epoch": summary.best_epoch,
        "members": [m.as_dict() for m in summary.members],
        "tied_votes": summary.tied_votes,
        "batches": [r.record() for r in summary.batches],
        "timings": summary.timings,
        "created": time.time(),
    }
    if summary.architectures:
        provenance["architectures"] = [t.as_dict() for t in summary.architectures]
    if summary.constraints is not None:
        provenance["constraints"] = summary.constraints
    if summary.compression is not None:
        provenance = compressed_provenance(provenance, summary.compression)
    stored = StoredNetwork(
        ensemble=model, classes=dataset.classes,
        preprocessing=dataset.preprocessor.to_json() | {"label": dataset.label}, provenance=provenance,
        calibration=summary.calibration,
    )
    return write_network(config.out, stored)
