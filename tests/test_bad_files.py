"""Hostile or mistaken input through the real CLI: every case is one line on stderr, exit code 2,
and nothing written; and the files intnet does write respect the umask and leave no temporaries."""

import json
import os
import stat

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from networks import random_network

from flows.cli import main
from pipeline.data.preprocessing import Preprocessor
from pipeline.networks.storage import MAX_PARAMETERS, StoredNetwork, write_network


def raw_rows() -> pa.Table:
    return pa.table({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "b"], "y": ["no", "yes", "no", "yes"]})


def model_file(tmp_path, preprocessor=None, provenance=None, classes=("no", "yes")):
    """A network file for ``raw_rows`` (or for ``preprocessor``), made without training."""
    preprocessor = preprocessor or Preprocessor.fit(raw_rows().drop_columns(["y"]))
    network = random_network(np.random.default_rng(0), [len(preprocessor.feature_names), 3, len(classes)], 3)
    stored = StoredNetwork.single(network, tuple(classes), preprocessor.to_json() | {"label": "y"},
                           provenance or {"formulation": "sat_margin", "dataset": "rows.csv"})
    return write_network(tmp_path / "model.parquet", stored)


def edit_metadata(path, key, change):
    """Rewrite the file with ``change(value)`` as metadata ``key``'s decoded JSON value."""
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata)
    metadata[key.encode()] = json.dumps(change(json.loads(metadata[key.encode()]))).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def run(capsys, *args):
    """The exit code and the one line on stderr of ``intnet ARGS``."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return code, err


def assert_refused(capsys, args, *words, written=None):
    code, err = run(capsys, *args)
    assert code == 2 and all(word in err for word in words), err
    assert written is None or not written.exists()


# --- sizes: the footer is checked before a list is read (issue 17, item 9) ---------------------


def huge_layer_file(tmp_path, n_in):
    """One layer of n_in × 2 zero weights: a file of a few KB that expands to n_in × 2 values."""
    n_out = 2
    weights = pa.ListArray.from_arrays(pa.array([0, n_in * n_out], pa.int32()), pa.array(np.zeros(n_in * n_out, np.int8)))
    table = pa.table({
        "layer": pa.array([0], pa.int32()), "in_features": pa.array([n_in], pa.int32()),
        "out_features": pa.array([n_out], pa.int32()), "weight": weights,
        "bias": pa.array([[0, 0]], pa.list_(pa.int8())),
    })
    metadata = pq.read_schema(model_file(tmp_path)).metadata
    path = tmp_path / "huge.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")
    return path


def test_a_small_file_declaring_a_huge_layer_is_refused_before_its_lists_are_read(tmp_path, capsys):
    path = huge_layer_file(tmp_path, MAX_PARAMETERS // 2 + 1)
    assert path.stat().st_size < 100_000
    assert_refused(capsys, ["info", path], "10,000,004 parameters stored", "at most 10,000,000")


def test_damaged_pages_under_an_intact_footer_are_a_one_line_error(tmp_path, capsys):
    path = model_file(tmp_path)
    content = bytearray(path.read_bytes())
    content[8:60] = bytes(b ^ 0xFF for b in content[8:60])  # the first page, after the magic bytes
    path.write_bytes(bytes(content))
    assert_refused(capsys, ["info", path], str(path), "its layers cannot be read")


# --- metadata: every value intnet reads is checked on read (item 10) ---------------------------


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("accuracy", [0.5], ["'accuracy'", "{split: accuracy or null}"]),
        ("accuracy", {"final": {"train": "high"}}, ["'accuracy'"]),
        ("sizes_before_strip", "3-3-2", ["'sizes_before_strip'", "layer widths"]),
        ("size_bits_before_strip", -1, ["'size_bits_before_strip'", "a count"]),
        ("config", [], ["'config'", "a JSON object"]),
        ("batches", 7, ["'batches'", "a list"]),
        ("n_train", True, ["'n_train'"]),
        ("dataset", 3, ["'dataset'", "a string"]),
        # intnet info crashed on these two (issue 26, item 5): members is read by an ensemble's
        # info, compressed's before and after by the text output
        ("members", {"final": {}}, ["'members'", "a list of objects"]),
        ("members", ["a"], ["'members'", "a list of objects"]),
        ("members", [{"final": 0.5}], ["'members'", "{split: accuracy or null}"]),
        ("compressed", {}, ["'compressed'", "'before' and 'after'"]),
        ("compressed", {"before": 5, "after": 6}, ["'compressed'", "neurons, nonzeros and bits"]),
        ("compressed", {"before": {"neurons": 1, "nonzeros": 2, "bits": 3}, "after": {}}, ["'compressed'"]),
    ],
)
def test_provenance_of_the_wrong_type_is_refused_naming_the_key(tmp_path, capsys, key, value, words):
    path = edit_metadata(model_file(tmp_path), "intnet.provenance", lambda provenance: provenance | {key: value})
    assert_refused(capsys, ["info", path], str(path), *words)


def test_an_ensembles_members_of_the_wrong_shape_are_refused_naming_the_key(tmp_path, capsys):
    from pipeline.networks.ensembles import Ensemble, EnsembleKind

    preprocessor = Preprocessor.fit(raw_rows().drop_columns(["y"]))
    rng = np.random.default_rng(0)
    members = tuple(random_network(rng, [len(preprocessor.feature_names), 3, 2], 1) for _ in range(2))
    stored = StoredNetwork(Ensemble(EnsembleKind.BAGGING, members, ((0, 1),) * 2, 2), ("no", "yes"),
                           preprocessor.to_json() | {"label": "y"}, {"members": [[0.5], [0.7]]})
    path = write_network(tmp_path / "ensemble.parquet", stored)
    assert_refused(capsys, ["info", path, "--json"], str(path), "'members'", "a list of objects")


def test_a_stored_data_path_that_is_no_string_is_refused_naming_the_key(tmp_path, capsys):
    data = tmp_path / "rows.parquet"
    pq.write_table(raw_rows(), data)
    path = model_file(tmp_path, provenance={"config": {"data": 5, "label": "y"}})
    assert_refused(capsys, ["evaluate", path, "--data", data], str(path), "key 'config'", "data", "5")


def edit_column(index, **changes):
    def change(preprocessing):
        preprocessing["columns"][index] |= changes
        return preprocessing
    return change


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda p: p | {"decimals": 400}, ["'decimals'", "0..6", "400"]),
        (lambda p: p | {"decimals": -3}, ["'decimals'", "-3"]),
        (lambda p: p | {"decimals": "4"}, ["'decimals'"]),
        (lambda p: p | {"columns": {"x": 1}}, ["'columns'", "a list"]),
        (lambda p: p | {"label": ["y"]}, ["'label'", "a string"]),
        (edit_column(0, low=float("nan")), ["column 0 ('x')", "'low'", "finite", "nan"]),
        (edit_column(0, high=float("inf")), ["'high'", "finite"]),
        (edit_column(0, low=5.0), ["'low' 5.0 is above 'high' 3.0"]),
        (edit_column(0, low="0"), ["'low'", "finite number"]),
        (edit_column(1, categories=[1, 2]), ["column 1 ('c')", "'categories'", "list of strings"]),
        (edit_column(1, kind="ordinal"), ["'kind'", "'ordinal'"]),
        (edit_column(0, name=7), ["column 0", "'name'"]),
    ],
)
def test_bad_preprocessing_is_refused_naming_the_key(tmp_path, capsys, change, words):
    path = edit_metadata(model_file(tmp_path), "intnet.preprocessing", change)
    data = tmp_path / "rows.parquet"
    pq.write_table(raw_rows(), data)
    out = tmp_path / "predictions.csv"
    assert_refused(capsys, ["predict", path, "--data", data, "--out", out], str(path), "intnet.preprocessing",
                   *words, written=out)


def test_a_stored_configuration_that_does_not_validate_is_refused_naming_the_key(tmp_path, capsys):
    from pipeline.data.datasets import load_builtin

    heart = load_builtin("heart")
    config = {"dataset": "heart", "P": 0}
    path = model_file(tmp_path, heart.preprocessor, {"dataset": "heart", "config": config}, heart.classes)
    assert_refused(capsys, ["evaluate", path, "--dataset", "heart"], str(path), "key 'config'", "P:", "0")


# --- writing: permissions and temporaries (item 12) --------------------------------------------


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield 0o640
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_umasks_permissions(tmp_path, capsys, umask_027):
    path = model_file(tmp_path)
    assert mode(path) == umask_027
    data = tmp_path / "rows.parquet"
    pq.write_table(raw_rows(), data)
    out = tmp_path / "predictions.csv"
    assert run(capsys, "predict", path, "--data", data, "--out", out)[0] == 0
    assert mode(out) == umask_027


def test_a_temporary_left_by_a_killed_write_is_removed_by_the_next_one(tmp_path):
    no_such_pid = 2**22 + 1  # above Linux's largest pid
    stale = tmp_path / f".model.parquet.{no_such_pid}.tmp"
    stale.write_bytes(b"half a file")
    live = tmp_path / ".model.parquet.1.tmp"  # pid 1 always runs: another process writing
    live.write_bytes(b"being written")
    odd = tmp_path / f".model.parquet.{no_such_pid + 1}.tmp"
    odd.mkdir()  # a folder named as a temporary is none of intnet's: left alone, and no traceback
    model_file(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, odd.name, "model.parquet"])


def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def interrupted(table, where, **options):
        raise KeyboardInterrupt  # Ctrl-C while the temporary file is open

    monkeypatch.setattr(pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model_file(tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- data files: duplicated columns (item 8) and text in a numeric column (item 12) ------------


def train_args(tmp_path, data):
    return ["train", "--data", data, "--label", "y", "--out", tmp_path / "m.parquet",
            "--checkpoints", tmp_path / "runs", "--time-limit", "1"]


@pytest.mark.parametrize("duplicated", ["x", "y"])
def test_training_on_a_file_with_two_columns_of_one_name_is_refused(tmp_path, capsys, duplicated):
    data = tmp_path / "rows.csv"
    header = ",".join(["x", "c", "y", duplicated])
    data.write_text(header + "\n0,a,no,1\n1,b,yes,1\n2,a,no,0\n3,b,yes,0\n")
    assert_refused(capsys, train_args(tmp_path, data), f"2 columns named '{duplicated}'", "rename or drop",
                   written=tmp_path / "m.parquet")


@pytest.mark.parametrize("duplicated", ["x", "notes"])
def test_predicting_on_a_file_with_two_columns_of_one_name_is_refused_even_if_unused(tmp_path, capsys, duplicated):
    data = tmp_path / "rows.parquet"
    rows = raw_rows().append_column("notes", pa.array(["n"] * 4))
    pq.write_table(rows.append_column(duplicated, rows.column(duplicated)), data)
    out = tmp_path / "predictions.csv"
    assert_refused(capsys, ["predict", model_file(tmp_path), "--data", data, "--out", out],
                   f"2 columns named '{duplicated}'", written=out)


def test_a_typo_in_a_numeric_csv_column_is_refused_naming_the_value(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text("age,c,y\n40,a,no\n4O,b,yes\n35,a,no\n,b,yes\n51.5,a,yes\n")
    assert_refused(capsys, train_args(tmp_path, data), "column 'age'", "1 value(s)", "'4O' in row 2",
                   "fix them", "Parquet", written=tmp_path / "m.parquet")


def test_a_text_column_with_some_numbers_is_still_categorical(tmp_path):
    from pipeline.data.datasets import load_file

    data = tmp_path / "rows.csv"
    data.write_text("size,y\nsmall,no\nlarge,yes\n3,no\nsmall,yes\n")
    assert load_file(data, "y").preprocessor.feature_names == ["size=3", "size=large", "size=small"]


# --- data files without rows (issue 26, item 4) ---------------------------------------------------


@pytest.mark.parametrize("command", [["evaluate"], ["improve", "--seconds", "1"], ["compress", "--seconds", "1"]],
                         ids=["evaluate", "improve", "compress"])
def test_a_data_file_of_a_header_alone_is_refused(tmp_path, capsys, command):
    data = tmp_path / "header.csv"
    data.write_text("x,c,y\n")
    out = tmp_path / "out.parquet"
    extra = [] if command[0] == "evaluate" else ["--out", out]
    assert_refused(capsys, [command[0], model_file(tmp_path), "--data", data, *command[1:], *extra],
                   "header.csv", "no data rows", written=out)


# --- checkpoints in odd places (issue 26, item 5) -------------------------------------------------


def heart_config(tmp_path, **changes):
    from pipeline.config import TrainConfig

    return TrainConfig(**{"dataset": "heart", "train_size": 40, "hidden": (2,), "P": 1, "time_limit": 1,
                          "heuristic_steps": 50, "target_error": None, "out": tmp_path / "m.parquet",
                          "checkpoints": tmp_path / "runs"} | changes)


def refused_before_any_work(monkeypatch, config, *words):
    """Training ``config`` is refused in one line naming ``words`` before its data is loaded, and
    writes no network."""
    from pipeline import training
    from pipeline.errors import DataError

    def no_work(*args, **kwargs):
        raise AssertionError("the run began its work")

    monkeypatch.setattr(training, "load_dataset", no_work)
    with pytest.raises(DataError) as refused:
        training.train(config)
    message = str(refused.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert not config.out.exists()


@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_where_a_checkpoint_file_goes_is_refused_before_any_work(tmp_path, monkeypatch, resume):
    from pipeline.checkpoints import BatchStore, run_key

    config = heart_config(tmp_path, resume=resume)
    batch = BatchStore(config.checkpoints, run_key(config)).path(0, 0)
    batch.mkdir(parents=True)
    refused_before_any_work(monkeypatch, config, str(batch), "is a folder", "remove it")


@pytest.mark.parametrize("where", ["run", "epoch"])
def test_a_file_where_a_checkpoint_folder_goes_is_refused_before_any_work(tmp_path, monkeypatch, where):
    from pipeline.checkpoints import BatchStore, run_key

    config = heart_config(tmp_path)
    store = BatchStore(config.checkpoints, run_key(config))
    folder = store.root if where == "run" else store.path(0, 0).parent
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder")
    refused_before_any_work(monkeypatch, config, str(folder), "is a file", "remove it")


@pytest.mark.parametrize("inside", [False, True], ids=["the same path", "inside it"])
def test_checkpoints_at_or_inside_out_are_refused_before_any_work(tmp_path, monkeypatch, inside):
    out = tmp_path / "m.parquet"
    config = heart_config(tmp_path, out=out, checkpoints=out / "runs" if inside else out)
    refused_before_any_work(monkeypatch, config, "--checkpoints", "--out", str(out))


# --- local search needs one objective that every network has (issue 26, item 2) -------------------


@pytest.mark.parametrize("flag,trained_with", [("lexicographic", "sat_margin"), ("min_weight", "sat_margin"),
                                               ("max_margin", "sat_margin"), (None, "min_weight")])
def test_improve_refuses_a_model_local_search_cannot_lower(tmp_path, capsys, flag, trained_with):
    data = tmp_path / "rows.parquet"
    pq.write_table(raw_rows(), data)
    path = model_file(tmp_path, provenance={"formulation": trained_with})
    out = tmp_path / "improved.parquet"
    chosen = [] if flag is None else ["--formulation", flag]
    code = main([str(a) for a in ["improve", path, "--data", data, "--seconds", "2", *chosen, "--out", out]])
    printed = capsys.readouterr()
    assert code == 2 and printed.out == "", printed.out  # lexicographic's solver errors were printed there
    err = printed.err.strip()
    assert "\n" not in err and (flag or trained_with) in err, err
    assert "one of sat_margin, correct_margin, max_correct, min_hinge" in err, err
    assert not out.exists()


@pytest.mark.parametrize("command", ["improve", "compress"])
def test_improve_and_compress_refuse_a_model_trained_with_class_weights(tmp_path, capsys, command):
    # They count every example once: on such a model they would undo the weighting unannounced.
    data = tmp_path / "rows.parquet"
    pq.write_table(raw_rows(), data)
    path = model_file(tmp_path, provenance={"formulation": "max_correct", "config": {"class_weight": "balanced"}})
    out = tmp_path / "changed.parquet"
    code = main([str(a) for a in [command, path, "--data", data, "--seconds", "2", "--out", out]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--class-weight" in err and f"--{command}" in err, err
    assert not out.exists()
