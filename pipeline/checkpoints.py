"""Per-batch results on disk, so that a run killed mid-epoch and started again with ``--resume``
re-solves only the batches it has no result for.

A run's results live under ``<checkpoints>/<run key>/``, the run key being a hash of every setting
that shapes a result and, for a data file, of the file's bytes (:func:`run_key`: not the output
path, the worker count or the executor). One Parquet file per solved batch,
``epoch-<e>/batch-<b>.parquet``: the batch's network in the network file's columns (one row per
layer) and its record (:meth:`BatchResult.record`) with the run key, epoch and batch as JSON
metadata. Written atomically like a network file, so a kill never leaves half a result to resume
from. Failed batches are not stored: resuming retries them.

A stored result is not trusted: :meth:`BatchStore.load` checks it against the batch the run asks
for and recomputes what the merge reads from it; one that fails a check is reported as a warning
and its batch solved again.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig
from pipeline.errors import DataError, NetworkFileError, brief
from pipeline.networks.storage import (
    is_count,
    is_number_or_null,
    network_table,
    open_parquet,
    read_layers,
    write_atomically,
)
from pipeline.solving.batches import BatchResult, BatchTask, EpochStart, RunContext, batch_problem
from pipeline.solving.solve import SolveStatus

# Settings that change where or how fast batches are solved, what the result is scored on (the
# test file) or what happens after the batches (compression), not what a batch result is.
NOT_IN_RUN_KEY = ("out", "workers", "executor", "checkpoints", "resume", "test_data", "compress", "keep", "tolerance")
RECORD_KEY = b"intnet.batch"
# What a record's JSON value may be for each type of BatchResult field (null: a NaN or infinite float).
RECORD_TYPES = {
    "int": is_count,
    "float": is_number_or_null,
    "bool": lambda value: isinstance(value, bool),
    "str": lambda value: isinstance(value, str),
    "str | None": lambda value: value is None or isinstance(value, str),
    "SolveStatus": lambda value: value in set(SolveStatus),
}


def run_key(config: TrainConfig) -> str:
    """16 hex digits naming the run's configuration and its data: the content of a data file, not
    only its path, so that results of a file since changed are not resumed. (The built-in datasets
    ship with intnet and do not change.)"""
    settings = config.model_dump(mode="json", exclude=set(NOT_IN_RUN_KEY))
    if config.data is not None:
        settings["data_sha256"] = file_sha256(config.data)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file's bytes, read in blocks (a data file may be large)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise DataError(f"cannot read data file '{path}' ({error.strerror}); check the path") from None


class BatchStore:
    """The stored batch results of one run configuration."""

    def __init__(self, root: Path, key: str) -> None:
        self.root = Path(root) / key
        self.key = key

    def path(self, epoch: int, batch_id: int) -> Path:
        return self.root / f"epoch-{epoch}" / f"batch-{batch_id}.parquet"

    def check_writable(self) -> None:
        """Fail before any work where a solved batch could not be stored (else the run ends in a
        traceback once its first batch is solved): a file where the run's folder or an epoch's
        folder goes, or a folder (or anything else but a file) where a batch's file goes."""
        def refuse(path: Path, problem: str) -> None:
            raise DataError(f"--checkpoints {self.root.parent}: {path} is {problem}; remove it, or choose another "
                            "--checkpoints folder")

        if not self.root.exists():
            return
        if not self.root.is_dir():
            refuse(self.root, "a file where this run's folder of checkpoints goes")
        for epoch in self.root.glob("epoch-*"):
            if not epoch.is_dir():
                refuse(epoch, "a file where a folder of an epoch's checkpoints goes")
            for batch in epoch.glob("batch-*.parquet"):
                if not batch.is_file():
                    refuse(batch, "a folder where a batch's checkpoint file goes")

    def save(self, epoch: int, result: BatchResult) -> None:
        """Store an ``ok`` result (one with a network); anything else is left to be re-solved."""
        if not result.ok:
            return
        record = result.record() | {"run": self.key, "epoch": epoch, "P": result.network.P}
        table = network_table(result.network).replace_schema_metadata({RECORD_KEY: json.dumps(record).encode()})
        write_atomically(table, self.path(epoch, result.batch_id))

    def load(self, task: BatchTask, context: RunContext, epoch: EpochStart) -> BatchResult | None:
        """The stored result of ``task`` in the run ``context``, in the epoch that starts as ``epoch``
        (the one its batches are solved in), or None when there is none or it cannot be trusted. A stored file that
        cannot be read or is not what this batch could have produced is reported as a warning and
        None returned, so that the batch is solved again."""
        path = self.path(task.epoch, task.batch_id)
        if not path.is_file():
            return None
        try:
            return self._checked(path, task, context, epoch)
        except NetworkFileError as problem:
            warnings.warn(f"checkpoint not used, its batch is solved again: {problem}", stacklevel=2)
            return None

    def _checked(self, path: Path, task: BatchTask, context: RunContext, epoch: EpochStart) -> BatchResult:
        """The stored result, checked: the record's fields of their types and naming this run, epoch,
        batch and size; the network of the run's architecture and inside the batch's bounds (so
        within [-P, P]), and, when it is not the batch's start, accepted as the batch's rule says.
        The validation accuracies are computed here (the merge's weights), not read."""
        with open_parquet(path) as parquet:
            record = _record(path, parquet.schema_arrow.metadata or {})
            values = _record_values(path, record)
            expected = {"run": self.key, "P": context.P, "epoch": task.epoch, "batch_id": task.batch_id,
                        "size": len(task.indices), "member": task.member}
            record.setdefault("member", 0)  # written before ensembles: a single network's batch
            for key, value in expected.items():
                if record.get(key) != value:
                    raise NetworkFileError(f"{path}: the record's '{key}' is {brief(record.get(key))}, "
                                           f"this run's batch has {value!r}")
            network = read_layers(path, parquet, context.P)
        if network.sizes != epoch.start.sizes:
            raise NetworkFileError(f"{path}: a {'-'.join(map(str, network.sizes))} network, this run trains "
                                   f"{'-'.join(map(str, epoch.start.sizes))}")
        problem, _ = batch_problem(context, epoch, task.indices, task.member)
        if not problem.bounds.contains(network):
            raise NetworkFileError(f"{path}: the network leaves the bounds of this batch's epoch")
        start = problem.bounds.clip(epoch.start)
        accuracy = context.validation_accuracy(task.member, network)
        start_accuracy = context.validation_accuracy(task.member, start)
        if not network.equals(start):
            if not values["accepted"]:
                raise NetworkFileError(f"{path}: a batch that kept its start stores another network")
            if context.batch.accept == "validation" and accuracy < start_accuracy:
                raise NetworkFileError(f"{path}: the network is worse on validation than the batch's start "
                                       f"({accuracy:.4f} < {start_accuracy:.4f}), so it was not accepted")
        values["start_validation_accuracy"] = start_accuracy
        if values["accepted"]:
            values["validation_accuracy"] = accuracy
        # else the solved network was not kept; its accuracy (reported, never merged) stays as stored
        return BatchResult(**values, network=network)


def _record(path: Path, metadata: dict[bytes, bytes]) -> dict[str, Any]:
    raw = metadata.get(RECORD_KEY)
    if raw is None:
        raise NetworkFileError(f"{path}: no batch record; not an intnet checkpoint")
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        raise NetworkFileError(f"{path}: the batch record is not UTF-8 JSON") from None
    if not isinstance(record, dict):
        raise NetworkFileError(f"{path}: the batch record is not a JSON object")
    return record


def _record_values(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """BatchResult's fields (but the network) from the record, each of its field's type."""
    values = {}
    for field in fields(BatchResult):
        if field.name == "network":
            continue
        if field.name not in record:
            if field.default is MISSING:
                raise NetworkFileError(f"{path}: the batch record has no '{field.name}'")
            continue  # a field newer than the checkpoint keeps its default
        value = record[field.name]
        if not RECORD_TYPES[field.type](value):
            raise NetworkFileError(f"{path}: the batch record's '{field.name}' should be {field.type}, "
                                   f"got {brief(value)}")
        if field.type == "SolveStatus":
            value = SolveStatus(value)
        values[field.name] = math.nan if value is None and field.type == "float" else value
    return values
