"""The network file: one Parquet file, one row per layer, metadata as UTF-8 JSON (README, "The
network file"). Written atomically; read back only after every part of the contract is checked,
and its sizes before its lists are read, so a small file cannot make a reader allocate gigabytes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from formulations import IntegerNetwork
from formulations.network import layer_bounds
from pipeline.errors import DataError, NetworkFileError, brief, one_line
from pipeline.networks.calibration import Calibration
from pipeline.networks.ensembles import Ensemble, EnsembleKind

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
"""Format 2 added ensembles (a ``member`` column, the ``intnet.ensemble`` key); a format-1 file is
one network, member 0."""
MAX_P = 127  # parameters are stored as int8
ACTIVATION = "sign"
OUTPUT = "argmax"
REQUIRED_KEYS = ("intnet.format", "intnet.P", "intnet.activation", "intnet.output", "intnet.classes",
                 "intnet.preprocessing", "intnet.provenance")
# Far beyond anything a MIP trains (MNIST's 784-16-10 has 12,730 parameters), small enough that a
# network at the limit costs about 100 MB in memory.
MAX_PARAMETERS = 10_000_000
MAX_LAYERS = 1_000
"""Rows of a file (layers, over every member of an ensemble)."""
MEMBER_FIELD = "member"


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def is_accuracies(value: Any) -> bool:
    """An object of {split: accuracy or null}, as a run records a network's accuracies."""
    return isinstance(value, dict) and all(is_number_or_null(a) for a in value.values())


SIZE_KEYS = ("neurons", "nonzeros", "bits")
"""What a compression report gives of the network before and after it (``intnet info`` shows them)."""


def is_size(value: Any) -> bool:
    return isinstance(value, dict) and all(is_count(value.get(key)) for key in SIZE_KEYS)


# The provenance keys intnet reads back (info, evaluate, improve), each optional; the rest of the
# provenance is a record for people. The configuration's content is checked where a command uses it.
PROVENANCE_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "formulation": (lambda value: isinstance(value, str), "a string"),
    "dataset": (lambda value: isinstance(value, str), "a string"),
    "config": (lambda value: isinstance(value, dict), "a JSON object"),
    "n_train": (is_count, "a count"),
    "sizes_before_strip": (
        lambda value: isinstance(value, list) and len(value) >= 2 and all(is_count(n) and n > 0 for n in value),
        "a list of layer widths",
    ),
    "size_bits_before_strip": (is_count, "a count"),
    "accuracy": (
        lambda value: isinstance(value, dict) and all(is_accuracies(split) for split in value.values()),
        "an object of {split: accuracy or null} objects",
    ),
    "members": (
        lambda value: isinstance(value, list) and all(
            isinstance(member, dict) and is_accuracies(member.get("final", {})) for member in value),
        "a list of objects, each member's 'final' an object of {split: accuracy or null}",
    ),
    "batches": (lambda value: isinstance(value, list), "a list"),
    "improved": (lambda value: isinstance(value, list), "a list"),
    "layer_bounds": (lambda value: isinstance(value, list) and all(is_count(b) and b > 0 for b in value),
                     "a list of positive counts"),
    "compressed": (lambda value: isinstance(value, dict) and is_size(value.get("before")) and is_size(value.get("after")),
                   "an object whose 'before' and 'after' give the counts neurons, nonzeros and bits"),
    "constraints": (lambda value: isinstance(value, dict) and isinstance(value.get("checks", []), list)
                    and all(isinstance(check, dict) for check in value.get("checks", [])),
                    "a JSON object whose 'checks' is a list of objects"),
}


@dataclass(frozen=True)
class StoredNetwork:
    """A network, or an ensemble of them, with what it needs to be used: class labels and the
    raw-row preprocessing."""

    ensemble: Ensemble
    classes: tuple[str, ...]
    preprocessing: dict[str, Any]
    provenance: dict[str, Any]
    calibration: Calibration | None = None
    """How its scores become class probabilities (``intnet.calibration``; None in files written
    before it, and after a change to the network with no validation split to refit it on)."""

    @classmethod
    def single(cls, network: IntegerNetwork, classes, preprocessing, provenance,
               calibration: Calibration | None = None) -> StoredNetwork:
        return cls(Ensemble.single(network), tuple(classes), preprocessing, provenance, calibration)

    @property
    def network(self) -> IntegerNetwork:
        """The network of a single-network file; an ensemble has no one network."""
        if not self.ensemble.is_single:
            raise DataError(f"this file holds an ensemble of {len(self.ensemble.networks)} networks "
                            f"({self.ensemble.kind}); this command takes a file of one network")
        return self.ensemble.networks[0]


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


def ensemble_table(ensemble: Ensemble):
    """Every member's layers, one row per (member, layer), with the ``member`` column."""
    import pyarrow as pa

    tables = [network_table(network) for network in ensemble.networks]
    members = [pa.array(np.full(t.num_rows, m, dtype=np.int32)) for m, t in enumerate(tables)]
    return pa.concat_tables(tables).append_column(MEMBER_FIELD, pa.chunked_array(members, pa.int32()))


def ensemble_metadata(ensemble: Ensemble) -> dict[str, Any]:
    description: dict[str, Any] = {"kind": str(ensemble.kind), "members": len(ensemble.networks)}
    if ensemble.kind == EnsembleKind.ONE_VS_ONE:
        description["pairs"] = ensemble.pairs
    return description


def check_output_file(path: str | Path, example: str, flag: str = "--out") -> None:
    """Fail before any work when ``path`` could not be written at the end: a folder (``example``
    names a file to suggest inside it), or a path whose nearest existing folder is a file or not
    writable. Missing folders are fine: the writers here create them (``make demo`` writes
    out/heart.parquet on a fresh clone)."""
    out = Path(path)
    if out.is_dir():
        raise DataError(f"{flag} {out} is a directory; give a file path such as {out / example}")
    check_folder_creatable(out.absolute().parent, f"{flag} {out}")


def check_folder_creatable(folder: Path, what: str) -> None:
    """Fail when ``folder`` could not be created or written in: its nearest existing ancestor (or
    itself) must be a writable folder. ``what`` begins the message (the flag and its value)."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise DataError(f"{what}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK):
        raise DataError(f"{what}: the folder {existing} is not writable; choose another path")


@contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an exception, so a
    reader never sees half a file. The content goes to ``.<name>.<pid>.tmp`` beside ``path``,
    created with the umask's permissions like any other file, and is synced to disk before it is
    renamed (and the folder after), so a crash cannot leave an empty file at ``path``. It is removed
    on any exception, and one left by a process that was killed (its pid no longer running) is
    removed by the next write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = _temporary(path, os.getpid())
    tmp.unlink(missing_ok=True)  # one from an earlier process with this pid
    # O_EXCL: never write through a link planted at the temporary's name.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            # On disk before the rename: a file system may commit the rename first (ext4's delayed
            # allocation does), so a crash just after it would leave an empty file at the name.
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """The folder's entries on disk (the rename into it), so a written file is there after a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path, pid: int | str) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def _remove_stale_temporaries(path: Path) -> None:
    prefix = f".{path.name}."
    for leftover in path.parent.iterdir():
        pid = leftover.name.removeprefix(prefix).removesuffix(".tmp")
        # A folder of that name is no temporary of ours (unlink would fail on it): left alone.
        if (leftover.name == _temporary(path, pid).name and pid.isdigit() and not leftover.is_dir()
                and not _running(int(pid))):
            leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        pass
    return True


def write_atomically(table, path: str | Path) -> Path:
    """Write a Parquet table so that a reader never sees half a file (:func:`replacing`)."""
    import pyarrow.parquet as pq

    with replacing(path) as handle:
        pq.write_table(table, handle, compression="zstd")
    return Path(path)


def write_bytes_atomically(data: bytes, path: str | Path) -> Path:
    """Write ``data`` so that a reader never sees half a file (:func:`replacing`)."""
    with replacing(path) as handle:
        handle.write(data)
    return Path(path)


def write_network(path: str | Path, stored: StoredNetwork) -> Path:
    """Write ``stored`` to ``path`` atomically (:func:`write_atomically`)."""
    ensemble = stored.ensemble
    if len(stored.classes) != ensemble.n_classes:
        raise ValueError(f"{len(stored.classes)} class labels for an ensemble of {ensemble.n_classes} classes")
    table = ensemble_table(ensemble)
    metadata = {
        "intnet.format": FORMAT_VERSION,
        "intnet.ensemble": ensemble_metadata(ensemble),
        "intnet.P": ensemble.P,
        "intnet.activation": ACTIVATION,
        "intnet.output": OUTPUT,
        "intnet.classes": list(stored.classes),
        "intnet.preprocessing": stored.preprocessing,
        "intnet.provenance": stored.provenance,
    }
    if stored.calibration is not None:
        metadata["intnet.calibration"] = stored.calibration.as_json()
    return write_atomically(table.replace_schema_metadata({k: json.dumps(v) for k, v in metadata.items()}), path)


def read_network(path: str | Path) -> StoredNetwork:
    """Read and validate a network file; any departure from the contract is a NetworkFileError."""
    path = Path(path)
    if not path.is_file():
        raise NetworkFileError(f"{path}: no such file")
    with open_parquet(path) as parquet:
        metadata = _read_metadata(path, parquet.schema_arrow.metadata or {})
        networks = read_members(path, parquet, metadata["intnet.P"])
    classes = tuple(metadata["intnet.classes"])
    ensemble = _ensemble(path, metadata.get("intnet.ensemble"), networks, len(classes))
    _check_layer_bounds(path, metadata["intnet.provenance"], ensemble)
    return StoredNetwork(ensemble, classes, metadata["intnet.preprocessing"], metadata["intnet.provenance"],
                         metadata.get("intnet.calibration"))


def _ensemble(path: Path, description: Any, networks: list[IntegerNetwork], n_classes: int) -> Ensemble:
    """The file's networks as the ensemble ``intnet.ensemble`` describes (a format-1 file: one network)."""
    if description is None:
        description = {"kind": EnsembleKind.SINGLE, "members": 1}
    if not isinstance(description, dict) or description.get("kind") not in set(EnsembleKind):
        raise NetworkFileError(f"{path}: intnet.ensemble must be an object whose kind is one of "
                               f"{', '.join(EnsembleKind)}, got {brief(description)}")
    kind = EnsembleKind(description["kind"])
    if description.get("members") != len(networks):
        raise NetworkFileError(f"{path}: intnet.ensemble says {brief(description.get('members'))} members, "
                               f"the file holds {len(networks)}")
    if kind == EnsembleKind.ONE_VS_ONE:
        pairs = description.get("pairs")
        if (not isinstance(pairs, list) or len(pairs) != len(networks)
                or not all(isinstance(p, list) and len(p) == 2 and all(is_count(c) for c in p) for p in pairs)):
            raise NetworkFileError(f"{path}: intnet.ensemble's pairs must be one [i, j] of class indices per member")
        member_classes = tuple(tuple(p) for p in pairs)
    else:
        member_classes = tuple(tuple(range(n_classes)) for _ in networks)
    try:
        return Ensemble(kind, tuple(networks), member_classes, n_classes)
    except ValueError as error:
        raise NetworkFileError(f"{path}: {error}") from None


def _check_layer_bounds(path: Path, provenance: dict[str, Any], ensemble: Ensemble) -> None:
    """Compression records each layer's range (``layer_bounds``) of a single network; it must hold
    the layer's parameters and lie within [-P, P]."""
    bounds = provenance.get("layer_bounds")
    if bounds is None:
        return
    network = ensemble.networks[0]
    if not ensemble.is_single or len(bounds) != len(network.weights) or any(
            not largest <= bound <= network.P for largest, bound in zip(layer_bounds(network), bounds)):
        raise NetworkFileError(f"{path}: intnet.provenance key 'layer_bounds' must give each layer of one network "
                               f"a bound in [its largest |parameter|, P]: got {bounds} for {layer_bounds(network)}")


def open_parquet(path: Path):
    """The file's Parquet reader, which has read only the footer (schema, metadata, row counts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise NetworkFileError(f"{path}: not a Parquet file ({one_line(error)})") from None


def read_layers(path: Path, parquet, P: int) -> IntegerNetwork:
    """The one network in a file of the network file's columns (a format-1 network file or a
    checkpoint), with parameters in [-P, P]."""
    (network,) = read_members(path, parquet, P, allow_members=False)
    return network


def read_members(path: Path, parquet, P: int, allow_members: bool = True) -> list[IntegerNetwork]:
    """The networks in a file of the network file's columns, one per ``member`` (one network when
    there is no such column), with parameters in [-P, P]. The row and value counts in the footer
    are checked before any list is read, so memory stays within what :data:`MAX_PARAMETERS` allows
    whatever a layer declares."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = parquet.schema_arrow
    expected = list(_schema()) + ([pa.field(MEMBER_FIELD, pa.int32())] if MEMBER_FIELD in schema.names else [])
    if MEMBER_FIELD in schema.names and not allow_members:
        raise NetworkFileError(f"{path}: a '{MEMBER_FIELD}' column where one network is expected")
    for field in expected:
        if field.name not in schema.names:
            raise NetworkFileError(f"{path}: column '{field.name}' is missing")
        if not schema.field(field.name).type.equals(field.type):
            raise NetworkFileError(
                f"{path}: column '{field.name}' has type {schema.field(field.name).type}, expected {field.type}"
            )
    if not 1 <= parquet.metadata.num_rows <= MAX_LAYERS:
        raise NetworkFileError(f"{path}: {parquet.metadata.num_rows} layers; a file holds 1 to {MAX_LAYERS}")
    # A null or empty list counts as one value too: allow one per layer beyond the cap.
    stored_values = _list_values(parquet, "weight") + _list_values(parquet, "bias")
    if stored_values > MAX_PARAMETERS + 2 * parquet.metadata.num_rows:
        raise NetworkFileError(
            f"{path}: {stored_values:,} parameters stored; intnet reads networks of at most {MAX_PARAMETERS:,}"
        )
    try:
        table = parquet.read(columns=[field.name for field in expected])
    except (pa.ArrowException, OSError) as error:  # an intact footer over damaged pages
        raise NetworkFileError(f"{path}: its layers cannot be read ({one_line(error)})") from None
    if MEMBER_FIELD not in table.column_names:
        return [_network(path, table.sort_by("layer"), P, "")]
    if table.column(MEMBER_FIELD).null_count:
        raise NetworkFileError(f"{path}: column '{MEMBER_FIELD}' has missing values")
    members = sorted(set(table.column(MEMBER_FIELD).to_pylist()))
    if members != list(range(len(members))):
        raise NetworkFileError(f"{path}: members must be numbered 0, 1, ... without gaps")
    return [_network(path, table.filter(pc.equal(table.column(MEMBER_FIELD), m)).sort_by("layer"), P, f"member {m}, ")
            for m in members]


def _network(path: Path, table, P: int, where: str) -> IntegerNetwork:
    """One network from its rows, sorted by layer; ``where`` names the member in messages."""
    layers = table.column("layer").to_pylist()
    if layers != list(range(len(layers))):
        raise NetworkFileError(f"{path}: {where}layers must be numbered 0, 1, ... without gaps")
    weights, biases = [], []
    for layer, n_in, n_out, weight, bias in zip(layers, *(table.column(name) for name in
                                                         ("in_features", "out_features", "weight", "bias"))):
        n_in, n_out = n_in.as_py(), n_out.as_py()
        if (n_in is None or n_out is None or n_in < 1 or n_out < 1 or not weight.is_valid or not bias.is_valid
                or len(weight) != n_in * n_out or len(bias) != n_out):
            raise NetworkFileError(f"{path}: {where}layer {layer} should hold {n_out}×{n_in} weights and {n_out} biases")
        weights.append(weight.values.to_numpy(zero_copy_only=False).astype(np.int64).reshape(n_out, n_in))
        biases.append(bias.values.to_numpy(zero_copy_only=False).astype(np.int64))
    try:
        return IntegerNetwork(tuple(weights), tuple(biases), P)
    except ValueError as error:
        raise NetworkFileError(f"{path}: {where}{error}") from None


def _list_values(parquet, column: str) -> int:
    """Values of a list column over every row group, from the footer alone."""
    metadata = parquet.metadata
    (index,) = [j for j in range(metadata.num_columns) if metadata.schema.column(j).path.split(".")[0] == column]
    return sum(metadata.row_group(g).column(index).num_values for g in range(metadata.num_row_groups))


def _json_key(path: Path, raw: dict[bytes, bytes], key: str) -> Any:
    """The value of metadata ``key`` (present in ``raw``), decoded from UTF-8 JSON."""
    try:
        return json.loads(raw[key.encode()].decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, an integer too long, nested too deep
        raise NetworkFileError(f"{path}: metadata key '{key}' is not UTF-8 JSON") from None


def _read_metadata(path: Path, raw: dict[bytes, bytes]) -> dict[str, Any]:
    metadata = {}
    for key in REQUIRED_KEYS:
        if key.encode() not in raw:
            raise NetworkFileError(f"{path}: metadata key '{key}' is missing; is this an intnet network file?")
        metadata[key] = _json_key(path, raw, key)
    if metadata["intnet.format"] not in READABLE_FORMATS:
        raise NetworkFileError(
            f"{path}: file format {metadata['intnet.format']!r}, this intnet reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}"
        )
    if metadata["intnet.format"] >= 2:
        if b"intnet.ensemble" not in raw:
            raise NetworkFileError(f"{path}: metadata key 'intnet.ensemble' is missing (file format 2)")
        metadata["intnet.ensemble"] = _json_key(path, raw, "intnet.ensemble")
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
    if b"intnet.calibration" in raw:  # optional: files before it have none
        value = _json_key(path, raw, "intnet.calibration")
        try:
            metadata["intnet.calibration"] = Calibration.from_json(value)
        except NetworkFileError as error:
            raise NetworkFileError(f"{path}: {error}") from None
    for key, value in metadata["intnet.provenance"].items():
        is_valid, expected = PROVENANCE_KEYS.get(key, (None, ""))
        if is_valid is not None and not is_valid(value):
            raise NetworkFileError(f"{path}: intnet.provenance key '{key}' must be {expected}, got {brief(value)}")
    return metadata
