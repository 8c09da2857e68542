"""The network file: round trip, atomic writes, and a clear error for anything off-contract."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from formulations import IntegerNetwork
from pipeline.errors import NetworkFileError
from pipeline.networks.calibration import Calibration
from pipeline.networks.storage import StoredNetwork, read_network, write_network


def stored_example(P=7):
    rng = np.random.default_rng(0)
    network = IntegerNetwork(
        weights=(rng.integers(-P, P + 1, (4, 3)), rng.integers(-P, P + 1, (2, 4))),
        biases=(rng.integers(-P, P + 1, 4), rng.integers(-P, P + 1, 2)),
        P=P,
    )
    return StoredNetwork.single(network, ("no", "yes"), {"decimals": 4, "columns": []}, {"formulation": "sat_margin"})


def test_round_trip_is_exact(tmp_path):
    stored = stored_example()
    path = write_network(tmp_path / "m.parquet", stored)
    back = read_network(path)
    assert back.network.equals(stored.network)
    assert back.classes == stored.classes
    assert back.preprocessing == stored.preprocessing and back.provenance == stored.provenance
    table = pq.read_table(path)
    assert table.schema.field("weight").type == pa.list_(pa.int8())
    assert table.column("layer").to_pylist() == [0, 1]
    # row-major by neuron: weight[o * in_features + i] multiplies input i into neuron o
    w = np.array(table.column("weight")[0].as_py()).reshape(4, 3)
    assert np.array_equal(w, stored.network.weights[0])
    assert json.loads(table.schema.metadata[b"intnet.format"]) == 2
    assert json.loads(table.schema.metadata[b"intnet.ensemble"]) == {"kind": "single", "members": 1}
    assert table.column("member").to_pylist() == [0, 0]  # a single network is member 0
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_the_calibration_round_trips_and_is_optional(tmp_path):
    calibration = Calibration(0.75, "validation", 30, 0.4)
    stored = stored_example()
    with_it = write_network(tmp_path / "with.parquet", StoredNetwork(
        stored.ensemble, stored.classes, stored.preprocessing, stored.provenance, calibration))
    assert read_network(with_it).calibration == calibration
    without = write_network(tmp_path / "without.parquet", stored)  # as files written before it
    assert read_network(without).calibration is None
    assert b"intnet.calibration" not in pq.read_table(without).schema.metadata


def test_a_failed_write_leaves_nothing(tmp_path):
    stored = stored_example()
    bad = StoredNetwork.single(stored.network, ("only one class",), {}, {})
    with pytest.raises(ValueError):
        write_network(tmp_path / "m.parquet", bad)
    assert list(tmp_path.iterdir()) == []


def rewrite(tmp_path, table, **metadata_changes):
    metadata = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    for key, value in metadata_changes.items():
        key = key.replace("_", ".", 1)
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    path = tmp_path / "edited.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        ({"intnet_format": "3"}, "file format 3"),
        ({"intnet_P": "200"}, "intnet.P must be an integer"),
        ({"intnet_P": "1"}, "outside [-1, 1]"),
        ({"intnet_activation": '"relu"'}, "not supported"),
        ({"intnet_classes": '["a"]'}, "member 0 has 2 outputs for 1 classes"),
        ({"intnet_classes": "not json"}, "not UTF-8 JSON"),
        ({"intnet_provenance": None}, "'intnet.provenance' is missing"),
        ({"intnet_calibration": '{"method": "isotonic"}'}, "intnet.calibration must be an object with method"),
        ({"intnet_calibration": '{"method": "softmax_temperature", "inverse_temperature": -1}'},
         "inverse_temperature must be a number in"),
        ({"intnet_calibration": "{"}, "'intnet.calibration' is not UTF-8 JSON"),
    ],
)
def test_metadata_errors_are_named(tmp_path, change, message):
    path = write_network(tmp_path / "m.parquet", stored_example())
    edited = rewrite(tmp_path, pq.read_table(path), **change)
    with pytest.raises(NetworkFileError, match=message.replace("[", r"\[")):
        read_network(edited)


def test_shape_and_type_errors_are_named(tmp_path):
    path = write_network(tmp_path / "m.parquet", stored_example())
    table = pq.read_table(path)
    short = table.set_column(3, "weight", pa.array([[1, 2], table.column("weight")[1].as_py()], pa.list_(pa.int8())))
    with pytest.raises(NetworkFileError, match="layer 0 should hold 4×3 weights"):
        read_network(rewrite(tmp_path, short))
    wide = table.set_column(3, "weight", table.column("weight").cast(pa.list_(pa.int32())))
    with pytest.raises(NetworkFileError, match="column 'weight' has type"):
        read_network(rewrite(tmp_path, wide))
    with pytest.raises(NetworkFileError, match="column 'bias' is missing"):
        read_network(rewrite(tmp_path, table.drop_columns(["bias"])))


def test_non_parquet_and_missing_files(tmp_path):
    text = tmp_path / "m.parquet"
    text.write_text("hello")
    with pytest.raises(NetworkFileError, match="not a Parquet file"):
        read_network(text)
    with pytest.raises(NetworkFileError, match="no such file"):
        read_network(tmp_path / "absent.parquet")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other.parquet")
    with pytest.raises(NetworkFileError, match="is this an intnet network file"):
        read_network(tmp_path / "other.parquet")


def durable_write_events(monkeypatch):
    """Record each fsync (the path its descriptor names and the bytes in it then) and each rename,
    in order: the calls a crash-safe write makes, checked since a crash test is impractical."""
    events = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        fsync(fd)

    def recorded_replace(source, target):
        events.append(("replace", str(source), str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    return events


def write_a_checkpoint(path):
    """A batch result stored as a checkpoint of the run ``path`` names (BatchStore.save)."""
    from pipeline.checkpoints import BatchStore
    from pipeline.solving.batches import BatchResult
    from pipeline.solving.solve import SolveStatus

    result = BatchResult(0, 4, SolveStatus.OPTIMAL, *[0.0] * 3, 0.0, True, 1.0, 1.0, 0, 0.0, 0, *[0.0] * 6, "here",
                         network=stored_example().network)
    store = BatchStore(path.parent, "run")
    store.save(0, result)
    return store.path(0, 0)


@pytest.mark.parametrize("writer", ["network", "predictions", "checkpoint"])
def test_a_file_reaches_the_disk_before_its_rename_and_the_rename_after(tmp_path, monkeypatch, writer):
    """A crash after the rename must not leave an empty file at the name (the data still in the page
    cache while the rename reached the disk): the temporary is fsynced before it is renamed, and its
    folder after, so that the rename itself is on disk when the write returns."""
    from pipeline.networks.inference import write_predictions

    events = durable_write_events(monkeypatch)
    if writer == "network":
        final = write_network(tmp_path / "m.parquet", stored_example())
    elif writer == "predictions":
        final = tmp_path / "p.csv"
        write_predictions(["yes", "no"], final)
    else:
        final = write_a_checkpoint(tmp_path / "runs" / "x")
    tmp = str(final.with_name(f".{final.name}.{os.getpid()}.tmp"))
    assert [event[:2] for event in events] == [("fsync", tmp), ("replace", tmp), ("fsync", str(final.parent))]
    assert events[0][2] == final.stat().st_size > 0  # the whole content, synced before the rename
    assert events[1][2] == str(final)
