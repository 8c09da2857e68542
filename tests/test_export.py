"""`intnet export`: the C header, compiled with the system compiler, and the ONNX model, run by
onnxruntime, predict what IntegerNetwork predicts on every row, including rows whose
pre-activations are exactly 0 and outputs that tie."""

import csv
import json
import os
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from flows.cli import main
from formulations import IntegerNetwork
from networks import random_network
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.data.datasets import _shipped_file, load_builtin, read_adult_file, read_table
from pipeline.data.splits import split_dataset
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.export_c import export_c
from pipeline.networks.export_onnx import export_onnx
from pipeline.networks.storage import StoredNetwork, read_network, write_network

pytestmark = pytest.mark.subprocess

C_DIR = Path(__file__).parent / "c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]


@pytest.fixture(scope="module")
def cc():
    """The system C compiler (CC, else cc). Compiling the header is part of the supported set-up:
    without a compiler these tests fail in CI (CI=true) and say why elsewhere."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        message = "no C compiler found (set CC or install cc): the exported C header cannot be checked"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return compiler


@pytest.fixture(scope="module")
def datasets():
    return {name: load_builtin(name) for name in ("heart", "adult", "mnist")}


def stored_for(network: IntegerNetwork, dataset) -> StoredNetwork:
    return StoredNetwork.single(network, dataset.classes, {**dataset.preprocessor.to_json(), "label": dataset.label},
                         {"dataset": dataset.name})


def held_out_rows(dataset) -> np.ndarray:
    return split_dataset(dataset, seed=0).test_x


def varied_random_network(sizes, P, x) -> IntegerNetwork:
    """The first random network (by seed) predicting more than one class on x: a constant network
    would not tell a wrong export from a right one."""
    for seed in range(100):
        network = random_network(np.random.default_rng(seed), sizes, P)
        if len(set(network.predict(x))) > 1:
            return network
    raise AssertionError(f"no random {sizes} network with P = {P} predicts two classes on these rows")


def integer_inputs(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 10**4).astype(np.int64)


def c_predictions(cc, header: str, x_int: np.ndarray, folder: Path) -> tuple[np.ndarray, list[str]]:
    """Class indices and labels from tests/c/predict_rows.c compiled with ``header`` as model.h."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.h").write_text(header)
    program = folder / "predict_rows"
    compiled = subprocess.run([cc, *CFLAGS, "-I", str(folder), "-o", str(program), str(C_DIR / "predict_rows.c")],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    rows = folder / "rows.txt"
    with open(rows, "w") as handle:
        handle.write(f"{x_int.shape[0]} {x_int.shape[1]}\n")
        np.savetxt(handle, x_int, fmt="%d")
    ran = subprocess.run([str(program), str(rows)], capture_output=True, text=True, check=True)
    lines = [line.split(" ", 1) for line in ran.stdout.splitlines()]
    return np.array([int(index) for index, _ in lines]), [label for _, label in lines]


def onnx_predictions(model: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (label,) = session.run(["label"], {"x": x.astype(np.float32)})
    assert label.dtype == np.int64 and label.shape == (len(x),)
    return label


@pytest.mark.parametrize("name", ["heart", "adult", "mnist"])
@pytest.mark.parametrize("P", [1, 15])
@pytest.mark.parametrize("hidden", [(16,), (16, 16), (40, 37)], ids=["one-hidden", "two-hidden", "wider-than-a-word"])
def test_random_networks_agree_on_every_test_row(cc, datasets, tmp_path, name, P, hidden):
    dataset = datasets[name]
    x = held_out_rows(dataset)
    network = varied_random_network([x.shape[1], *hidden, len(dataset.classes)], P, x)
    stored = stored_for(network, dataset)
    expected = network.predict(x)

    indices, labels = c_predictions(cc, export_c(stored).text, integer_inputs(x), tmp_path)
    np.testing.assert_array_equal(indices, expected)
    assert labels == [dataset.classes[i] for i in expected]
    np.testing.assert_array_equal(onnx_predictions(export_onnx(stored), x), expected)


@pytest.mark.parametrize("kind", [EnsembleKind.BAGGING, EnsembleKind.ONE_VS_ONE])
@pytest.mark.parametrize("P", [1, 3])
def test_an_ensemble_votes_inside_intnet_predict_and_the_onnx_graph(cc, datasets, tmp_path, kind, P):
    dataset = datasets["mnist"]
    x = held_out_rows(dataset)
    classes = len(dataset.classes)
    if kind == EnsembleKind.ONE_VS_ONE:
        member_classes = tuple(combinations(range(classes), 2))
    else:
        member_classes = ((*range(classes),),) * 5
    networks = tuple(random_network(np.random.default_rng(m), [x.shape[1], 8, len(c)], P)
                     for m, c in enumerate(member_classes))
    ensemble = Ensemble(kind, networks, member_classes, classes)
    stored = StoredNetwork(ensemble, dataset.classes, {**dataset.preprocessor.to_json(), "label": dataset.label}, {})
    expected = ensemble.predict(x)
    assert ensemble.tied_votes(x) > 0  # the tie rule is exercised, not assumed
    indices, labels = c_predictions(cc, export_c(stored).text, integer_inputs(x), tmp_path)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(onnx_predictions(export_onnx(stored), x), expected)


def ties_network(P: int) -> IntegerNetwork:
    """A 6-4-4-3 network whose pre-activations are often exactly 0 and whose outputs tie:
    layer 0 neuron 0 is P·x0 - P·x1 and neuron 1 is x2 + x3 - x4 (0 whenever x4 = x2 + x3);
    layer 1 neuron 0 is h0 - h1; output neurons 0 and 1 are equal, so only the tie rule decides."""
    rng = np.random.default_rng(7)
    w0, b0 = rng.integers(-P, P + 1, (4, 6)), rng.integers(-P, P + 1, 4)
    w0[0], b0[0] = [P, -P, 0, 0, 0, 0], 0
    w0[1], b0[1] = [0, 0, 1, 1, -1, 0], 0
    w1, b1 = rng.integers(-P, P + 1, (4, 4)), rng.integers(-P, P + 1, 4)
    w1[0], b1[0] = [1, -1, 0, 0], 0
    w2, b2 = rng.integers(-P, P + 1, (3, 4)), rng.integers(-P, P + 1, 3)
    w2[1], b2[1] = w2[0], b2[0]
    return IntegerNetwork((w0, w1, w2), (b0, b1, b2), P)


def ties_inputs(rng, n: int) -> np.ndarray:
    """Grid inputs where x0 = x1 often and x4 = x2 + x3 always, with x2 and x3 chosen so that in
    float32 x2 + x3 differs from x4: a float32 graph would give those sums the wrong sign."""
    x = np.round(rng.random((n, 6)), 4)
    x[: n // 2, 1] = x[: n // 2, 0]
    candidates = np.round(rng.random((20 * n, 2)) / 2, 4)
    sums = np.round(candidates.sum(axis=1), 4)
    f = candidates.astype(np.float32)
    inexact = (f[:, 0] + f[:, 1]) != sums.astype(np.float32)
    x[:, 2:4], x[:, 4] = candidates[inexact][:n], sums[inexact][:n]
    return x


@pytest.mark.parametrize("P", [1, 15])
def test_exact_zero_preactivations_and_ties(cc, tmp_path, P):
    network = ties_network(P)
    x = ties_inputs(np.random.default_rng(P), 400)
    z = network.preactivations(x)
    # the cases happen: exact zeros in both hidden layers, tied outputs that decide the class
    assert (z[0][:, 0] == 0).sum() >= 200 and (z[0][:, 1] == 0).all() and (z[1][:, 0] == 0).sum() >= 50
    winners = z[2].max(axis=1)
    assert ((z[2][:, 0] == winners) & (z[2][:, 1] == winners)).sum() >= 50
    # and a float32 computation would get them wrong
    assert ((x.astype(np.float32)[:, 2:5] @ np.float32([1, 1, -1])) != 0).sum() >= 100

    preprocessing = {"decimals": 4, "columns": [{"kind": "numeric", "name": f"v{i}", "low": 0.0, "high": 1.0}
                                                for i in range(6)], "label": "y"}
    stored = StoredNetwork.single(network, ("a", "b", "c"), preprocessing, {})
    expected = network.predict(x)
    indices, _ = c_predictions(cc, export_c(stored).text, integer_inputs(x), tmp_path)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(onnx_predictions(export_onnx(stored), x), expected)


def test_p1_stores_two_bits_per_parameter(datasets):
    adult = datasets["adult"]
    for sizes in ([108, 16, 2], [108, 16, 16, 2]):
        network = random_network(np.random.default_rng(0), sizes, 1)
        header = export_c(stored_for(network, adult))
        # each row of a bit-plane is padded to whole bytes: the first layer has one row per input
        # and one for the bias, deeper layers one per neuron and one bias row
        expected = 2 * (sizes[0] + 1) * -(-sizes[1] // 8) + sum(
            2 * (o * -(-i // 8) + -(-o // 8)) for i, o in zip(sizes[1:-1], sizes[2:]))
        assert header.weight_bytes == expected
        assert header.weight_bytes * 8 <= 2 * network.n_parameters + 64
    assert export_c(stored_for(random_network(np.random.default_rng(0), [108, 16, 2], 1), adult)).weight_bytes <= 450
    assert export_c(stored_for(random_network(np.random.default_rng(0), [108, 16, 2], 15), adult)).weight_bytes == 1778


def test_scale_numeric_gives_the_preprocessing_integers(cc, datasets, tmp_path):
    """intnet_scale_numeric against the Preprocessor on every raw numeric value of Heart and Adult,
    values outside the range, a constant column and values that fall half-way between grid points."""
    cases = []
    with _shipped_file("heart.csv.gz") as path:
        heart_raw = read_table(path)
    with _shipped_file("adult.test.gz") as path:
        adult_raw = read_adult_file(path)
    for dataset, raw in ((datasets["heart"], heart_raw), (datasets["adult"], adult_raw)):
        for column in dataset.preprocessor.columns:
            if hasattr(column, "low"):
                values = np.unique(raw.column(column.name).to_numpy().astype(float))
                cases += [(v, column.low, column.high) for v in values]
                cases += [(column.low - 1, column.low, column.high), (column.high + 1, column.low, column.high)]
    halves = [((2 * m + 1) / 32, 0.0, 1.0) for m in range(16)]  # (2m + 1) / 32 * 10^4 ends in .5 exactly
    cases += halves + [(3.0, 2.0, 2.0)]
    values = np.array(cases)
    from pipeline.data.preprocessing import round_to_grid

    low, high = values[:, 1], values[:, 2]
    span = np.where(high == low, 1.0, high - low)
    scaled = np.where(high == low, 0.0, np.clip((values[:, 0] - low) / span, 0.0, 1.0))
    expected = np.rint(round_to_grid(scaled, 4) * 10**4).astype(np.int64)

    stored = stored_for(random_network(np.random.default_rng(0), [21, 4, 2], 1), datasets["heart"])
    (tmp_path / "model.h").write_text(export_c(stored).text)
    program = tmp_path / "scale_numeric"
    subprocess.run([cc, *CFLAGS, "-I", str(tmp_path), "-o", str(program), str(C_DIR / "scale_numeric.c")], check=True)
    text = "".join(f"{float(v)!r} {float(lo)!r} {float(hi)!r}\n" for v, lo, hi in cases)
    ran = subprocess.run([str(program)], input=text, capture_output=True, text=True, check=True)
    np.testing.assert_array_equal(np.array(ran.stdout.split(), dtype=np.int64), expected)
    # halves go to the even integer (312.5 -> 312, 937.5 -> 938), as numpy's rounding does
    assert expected[-17:-1].tolist() == [round((2 * m + 1) * 312.5) for m in range(16)] and expected[-17] == 312


# --- a trained network, end to end through the CLI --------------------------------------------


def raw_rows(name: str, tmp_path: Path) -> Path:
    """The dataset's raw rows as a user's CSV file (Adult: its official test file)."""
    if name == "heart":
        with _shipped_file("heart.csv.gz") as path:
            table = read_table(path)
    elif name == "adult":
        with _shipped_file("adult.test.gz") as path:
            table = read_adult_file(path)
    else:
        names = [f"pixel{i}" for i in range(784)] + ["label"]
        with _shipped_file("mnist_5k.csv.gz") as path:
            table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(column_names=names)).slice(0, 1000)
    out = tmp_path / f"{name}_raw.csv"
    pa_csv.write_csv(table, out)
    return out


def contract_inputs(model: Path, raw: pa.Table) -> np.ndarray:
    """Integer inputs from raw rows by the header's recipe, read from the network file's metadata."""
    preprocessing = read_network(model).preprocessing
    scale = 10 ** preprocessing["decimals"]
    features = []
    for column in preprocessing["columns"]:
        values = raw.column(column["name"]).to_pylist()
        if column["kind"] == "numeric":
            low, high = column["low"], column["high"]
            v = np.array(values, dtype=float)
            features.append(np.zeros(len(v)) if high == low else np.round(np.clip((v - low) / (high - low), 0, 1) * scale))
        else:
            text = ["" if v is None else str(int(v)) if isinstance(v, (int, float)) and float(v).is_integer() else str(v)
                    for v in values]
            features += [np.array([scale * (t == category) for t in text]) for category in column["categories"]]
    return np.stack(features, axis=1).astype(np.int64)


@pytest.mark.parametrize("name,P,hidden", [("heart", 1, "16"), ("adult", 15, "16,16"), ("mnist", 1, "16")])
def test_trained_network_exports_agree_with_intnet_predict(cc, tmp_path, capsys, name, P, hidden):
    config = TrainConfig(dataset=name, train_size=200, P=P, hidden=hidden, heuristic_steps=200, seed=0)
    dataset = training.load_dataset(config)
    split = training.split_data(config, dataset)
    network = training.start_network(config, split, len(dataset.classes))
    model = write_network(tmp_path / f"{name}.parquet", stored_for(network, dataset))

    raw = raw_rows(name, tmp_path)
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), "--data", str(raw), "--out", str(predictions)]) == 0
    with open(predictions) as handle:
        predicted = [row["prediction"] for row in csv.DictReader(handle)]
    assert len(set(predicted)) > 1

    header = tmp_path / "model.h"
    assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
    printed = capsys.readouterr().out
    assert f"{export_c(read_network(model)).weight_bytes} bytes of weights" in printed
    x_int = contract_inputs(model, pa_csv.read_csv(raw))
    _, labels = c_predictions(cc, header.read_text(), x_int, tmp_path / "c")
    assert labels == predicted

    onnx_file = tmp_path / "model.onnx"
    assert main(["export", str(model), "--format", "onnx", "--out", str(onnx_file)]) == 0
    indices = onnx_predictions(onnx_file.read_bytes(), x_int / 10**4)
    assert [dataset.classes[i] for i in indices] == predicted
    metadata = {p.key: p.value for p in __import__("onnx").load(str(onnx_file)).metadata_props}
    assert json.loads(metadata["intnet.classes"]) == list(dataset.classes)


def test_export_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    out = tmp_path / "model.h"
    assert main(["export", str(bogus), "--format", "c", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("intnet export: error: ") and "\n" not in err and "not a Parquet file" in err
    model = write_network(tmp_path / "m.parquet", stored_for(random_network(np.random.default_rng(0), [6, 3, 2], 1),
                                                            _six_inputs()))
    assert main(["export", str(model), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.parquet", "m.parquet"]
    assert main(["export", str(model), "--format", "c"]) == 0  # default: MODEL with .h
    assert (tmp_path / "m.h").is_file()


def _six_inputs():
    from pipeline.data.datasets import Dataset
    from pipeline.data.preprocessing import NumericColumn, Preprocessor

    preprocessor = Preprocessor(tuple(NumericColumn(f"v{i}", 0.0, 1.0) for i in range(6)))
    return Dataset("six", np.zeros((1, 6)), np.zeros(1, dtype=np.int64), ("a", "b"), preprocessor, "y")
