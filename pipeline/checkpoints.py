"""Per-batch results on disk, so that a run killed mid-epoch and started again with ``--resume``
re-solves only the batches it has no result for.

A run's results live under ``<checkpoints>/<run key>/``, the run key being a hash of every setting
that shapes a result (:func:`run_key`: not the output path, the worker count or the executor). One
Parquet file per solved batch, ``epoch-<e>/batch-<b>.parquet``: the batch's network in the
network file's columns (one row per layer) and its record (:meth:`BatchResult.record`) with the
run key, epoch and batch as JSON metadata. Written atomically like a network file, so a kill
never leaves half a result to resume from. Failed batches are not stored: resuming retries them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from formulations import IntegerNetwork
from pipeline.batches import BatchResult
from pipeline.config import TrainConfig
from pipeline.storage import network_table, write_atomically

# Settings that change where or how fast batches are solved, not what a batch result is.
NOT_IN_RUN_KEY = ("out", "workers", "executor", "checkpoints", "resume")
RECORD_KEY = b"intnet.batch"


def run_key(config: TrainConfig) -> str:
    """16 hex digits naming the run's configuration."""
    settings = config.model_dump(mode="json", exclude=set(NOT_IN_RUN_KEY))
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class BatchStore:
    """The stored batch results of one run configuration."""

    def __init__(self, root: Path, key: str) -> None:
        self.root = Path(root) / key
        self.key = key

    def path(self, epoch: int, batch_id: int) -> Path:
        return self.root / f"epoch-{epoch}" / f"batch-{batch_id}.parquet"

    def save(self, epoch: int, result: BatchResult) -> None:
        """Store an ``ok`` result (one with a network); anything else is left to be re-solved."""
        if not result.ok:
            return
        record = result.record() | {"run": self.key, "epoch": epoch, "P": result.network.P}
        table = network_table(result.network).replace_schema_metadata({RECORD_KEY: json.dumps(record).encode()})
        write_atomically(table, self.path(epoch, result.batch_id))

    def load(self, epoch: int, batch_id: int) -> BatchResult | None:
        """The stored result of a batch, or None when there is none (or it cannot be read)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(epoch, batch_id)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
            record = json.loads(table.schema.metadata[RECORD_KEY])
        except (pa.ArrowException, OSError, KeyError, ValueError):
            return None  # unreadable: solve the batch again rather than trust it
        if record.get("run") != self.key or record.get("epoch") != epoch:
            return None
        rows = table.sort_by("layer").to_pylist()
        network = IntegerNetwork(
            tuple(np.array(r["weight"], dtype=np.int64).reshape(r["out_features"], r["in_features"]) for r in rows),
            tuple(np.array(r["bias"], dtype=np.int64) for r in rows),
            record["P"],
        )
        values = {}
        for field in fields(BatchResult):
            # A field newer than the checkpoint keeps its default.
            if field.name == "network" or field.name not in record:
                continue
            value = record[field.name]
            # record() writes NaN and infinity as null; every such field is a float.
            values[field.name] = math.nan if value is None and field.type == "float" else value
        return BatchResult(**values, network=network)
