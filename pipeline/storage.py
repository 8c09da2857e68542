"""The network file: one Parquet file, one row per layer, metadata as UTF-8 JSON (README, "The
network file"). Written atomically; read back only after every part of the contract is checked."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from pipeline.errors import NetworkFileError

FORMAT_VERSION = 1
MAX_P = 127  # parameters are stored as int8
ACTIVATION = "sign"
OUTPUT = "argmax"
REQUIRED_KEYS = ("intnet.format", "intnet.P", "intnet.activation", "intnet.output", "intnet.classes",
                 "intnet.preprocessing", "intnet.provenance")


@dataclass(frozen=True)
class StoredNetwork:
    """A network with what it needs to be used: class labels and the raw-row preprocessing."""

    network: IntegerNetwork
    classes: tuple[str, ...]
    preprocessing: dict[str, Any]
    provenance: dict[str, Any]


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("layer", pa.int32()),
        ("in_features", pa.int32()),
        ("out_features", pa.int32()),
        ("weight", pa.list_(pa.int8())),
        ("bias", pa.list_(pa.int8())),
    ])


def network_table(network: IntegerNetwork):
    """The network as the file's table: one row per layer (metadata not yet attached)."""
    import pyarrow as pa

    if network.P > MAX_P:
        raise ValueError(f"P = {network.P} does not fit the file's int8 parameters (P <= {MAX_P})")
    return pa.table(
        {
            "layer": list(range(len(network.weights))),
            "in_features": [w.shape[1] for w in network.weights],
            "out_features": [w.shape[0] for w in network.weights],
            "weight": [w.reshape(-1).tolist() for w in network.weights],
            "bias": [b.tolist() for b in network.biases],
        },
        schema=_schema(),
    )


def write_atomically(table, path: str | Path) -> Path:
    """Write a Parquet table through a temporary file and a rename, so a reader never sees half a
    file and a failed (or killed) write leaves nothing behind."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomically(data: bytes, path: str | Path) -> Path:
    """Write ``data`` through a temporary file and a rename, as :func:`write_atomically` does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_network(path: str | Path, stored: StoredNetwork) -> Path:
    """Write ``stored`` to ``path`` atomically (:func:`write_atomically`)."""
    network = stored.network
    if len(stored.classes) != network.sizes[-1]:
        raise ValueError(f"{len(stored.classes)} class labels for {network.sizes[-1]} outputs")
    table = network_table(network)
    metadata = {
        "intnet.format": FORMAT_VERSION,
        "intnet.P": network.P,
        "intnet.activation": ACTIVATION,
        "intnet.output": OUTPUT,
        "intnet.classes": list(stored.classes),
        "intnet.preprocessing": stored.preprocessing,
        "intnet.provenance": stored.provenance,
    }
    return write_atomically(table.replace_schema_metadata({k: json.dumps(v) for k, v in metadata.items()}), path)


def read_network(path: str | Path) -> StoredNetwork:
    """Read and validate a network file; any departure from the contract is a NetworkFileError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise NetworkFileError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise NetworkFileError(f"{path}: not a Parquet file ({error})") from None
    metadata = _read_metadata(path, table.schema.metadata or {})
    for field in _schema():
        if field.name not in table.column_names:
            raise NetworkFileError(f"{path}: column '{field.name}' is missing")
        if not table.schema.field(field.name).type.equals(field.type):
            raise NetworkFileError(
                f"{path}: column '{field.name}' has type {table.schema.field(field.name).type}, expected {field.type}"
            )
    rows = table.sort_by("layer").to_pylist()
    if [row["layer"] for row in rows] != list(range(len(rows))) or not rows:
        raise NetworkFileError(f"{path}: layers must be numbered 0, 1, ... without gaps")
    weights, biases = [], []
    for row in rows:
        n_in, n_out = row["in_features"], row["out_features"]
        if row["weight"] is None or row["bias"] is None or len(row["weight"]) != n_in * n_out or len(row["bias"]) != n_out:
            raise NetworkFileError(
                f"{path}: layer {row['layer']} should hold {n_out}×{n_in} weights and {n_out} biases"
            )
        weights.append(np.array(row["weight"], dtype=np.int64).reshape(n_out, n_in))
        biases.append(np.array(row["bias"], dtype=np.int64))
    try:
        network = IntegerNetwork(tuple(weights), tuple(biases), metadata["intnet.P"])
    except ValueError as error:
        raise NetworkFileError(f"{path}: {error}") from None
    classes = tuple(metadata["intnet.classes"])
    if len(classes) != network.sizes[-1]:
        raise NetworkFileError(f"{path}: {len(classes)} classes for {network.sizes[-1]} output neurons")
    return StoredNetwork(network, classes, metadata["intnet.preprocessing"], metadata["intnet.provenance"])


def _read_metadata(path: Path, raw: dict[bytes, bytes]) -> dict[str, Any]:
    metadata = {}
    for key in REQUIRED_KEYS:
        value = raw.get(key.encode())
        if value is None:
            raise NetworkFileError(f"{path}: metadata key '{key}' is missing; is this an intnet network file?")
        try:
            metadata[key] = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise NetworkFileError(f"{path}: metadata key '{key}' is not UTF-8 JSON") from None
    if metadata["intnet.format"] != FORMAT_VERSION:
        raise NetworkFileError(
            f"{path}: file format {metadata['intnet.format']!r}, this intnet reads format {FORMAT_VERSION}"
        )
    P = metadata["intnet.P"]
    if not isinstance(P, int) or isinstance(P, bool) or not 1 <= P <= MAX_P:
        raise NetworkFileError(f"{path}: intnet.P must be an integer in 1..{MAX_P}, got {P!r}")
    if metadata["intnet.activation"] != ACTIVATION or metadata["intnet.output"] != OUTPUT:
        raise NetworkFileError(
            f"{path}: activation {metadata['intnet.activation']!r} / output {metadata['intnet.output']!r} "
            f"are not supported (expected {ACTIVATION!r} / {OUTPUT!r})"
        )
    classes = metadata["intnet.classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise NetworkFileError(f"{path}: intnet.classes must be a list of strings")
    if not isinstance(metadata["intnet.preprocessing"], dict) or not isinstance(metadata["intnet.provenance"], dict):
        raise NetworkFileError(f"{path}: intnet.preprocessing and intnet.provenance must be JSON objects")
    return metadata
