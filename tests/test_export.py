"""`intnet export`: the C header, compiled with the system compiler under strict warnings, and the
ONNX model, run by onnxruntime, predict what IntegerNetwork predicts on every row, including rows
whose pre-activations are exactly 0 and outputs that tie; from preprocessed inputs and from raw
rows (intnet_encode, --raw-inputs) as `intnet predict` does; for single networks, ensembles and
networks without a hidden layer; in the bits each layer's range needs."""

import csv
import json
import os
import re
import resource
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from networks import random_network

from flows.cli import main
from formulations import IntegerNetwork
from formulations.network import bits_for, layer_bounds, strip_neurons, switch_off
from intnet import load
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.data.datasets import _shipped_file, load_builtin, read_adult_file, read_table
from pipeline.data.preprocessing import MISSING_CATEGORY, as_strings
from pipeline.data.splits import split_dataset
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.export_c import export_c
from pipeline.networks.export_onnx import export_onnx
from pipeline.networks.storage import StoredNetwork, read_network, write_network

pytestmark = pytest.mark.subprocess

C_DIR = Path(__file__).parent / "c"
CFLAGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wpedantic", "-std=c99", "-O2"]
"""The warnings a user's strict build may turn on; the header and the test programs pass them all."""


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


STACK_BYTES = 8 * 2**20
"""Linux's default stack limit, set for every C program run here, so that a header that keeps
input-sized arrays on the stack fails whatever limit the machine running the tests has."""


def compiled(cc, header: str, program: str, folder: Path) -> Path:
    """tests/c/``program``.c compiled with ``header`` as model.h under :data:`CFLAGS`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.h").write_text(header)
    executable = folder / program
    result = subprocess.run([cc, *CFLAGS, "-I", str(folder), "-o", str(executable), str(C_DIR / f"{program}.c")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return executable


def run_c(executable: Path, *args: str) -> list[tuple[int, str]]:
    """(class index, label) per line that the program prints, run with :data:`STACK_BYTES` of stack."""
    def limit_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (STACK_BYTES, STACK_BYTES))

    ran = subprocess.run([str(executable), *args], capture_output=True, text=True, preexec_fn=limit_stack)
    assert ran.returncode == 0, f"exit {ran.returncode}: {ran.stderr}"
    return [(int(index), label) for index, label in (line.split(" ", 1) for line in ran.stdout.splitlines())]


def c_predictions(cc, header: str, x_int: np.ndarray, folder: Path) -> tuple[np.ndarray, list[str]]:
    """Class indices and labels from tests/c/predict_rows.c compiled with ``header`` as model.h."""
    program = compiled(cc, header, "predict_rows", folder)
    rows = folder / "rows.txt"
    with open(rows, "w") as handle:
        handle.write(f"{x_int.shape[0]} {x_int.shape[1]}\n")
        np.savetxt(handle, x_int, fmt="%d")
    lines = run_c(program, str(rows))
    return np.array([index for index, _ in lines], dtype=np.int64), [label for _, label in lines]


def onnx_outputs(model: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``label`` and ``scores`` of the ONNX model for ``x``, fed as the type its input ``x`` declares."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (declared,) = session.get_inputs()
    dtype = np.float64 if declared.type == "tensor(double)" else np.float32
    label, scores = session.run(["label", "scores"], {"x": x.astype(dtype)})
    assert label.dtype == np.int64 and label.shape == (len(x),)
    assert scores.dtype == np.float32 and scores.shape[0] == len(x)
    return label, scores


def onnx_predictions(model: bytes, x: np.ndarray) -> np.ndarray:
    return onnx_outputs(model, x)[0]


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
    label, scores = onnx_outputs(export_onnx(stored), x)
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(scores, network.output(x).astype(np.float32))  # the output layer's sums


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
    label, scores = onnx_outputs(export_onnx(stored), x)
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(scores, ensemble.votes(x))  # each class's votes


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


def every_neuron_read(rng, sizes, P) -> IntegerNetwork:
    """A random network whose every hidden neuron is read (no output column all 0), so that
    stripping leaves it as it is."""
    network = random_network(rng, sizes, P)
    weights = [np.where(w == 0, 1, w) if layer else w for layer, w in enumerate(network.weights)]
    return IntegerNetwork(tuple(weights), network.biases, P)


def test_each_layer_takes_the_bits_its_range_needs(datasets):
    adult = datasets["adult"]
    rng = np.random.default_rng(0)
    for sizes, bounds in (([108, 16, 2], [1, 1]), ([108, 16, 16, 2], [15, 1, 3]), ([108, 5, 3, 2], [2, 127, 7]),
                          ([108, 2], [4])):
        # layer l's parameters in [-bounds[l], bounds[l]], the largest reached, in a network of P = 127
        network = every_neuron_read(rng, sizes, 127)
        clipped = [np.clip(p, -bound, bound) for p, bound in zip(network.weights, bounds)]
        for p, bound in zip(clipped, bounds):
            p.flat[0] = bound
        network = IntegerNetwork(tuple(clipped), tuple(np.clip(b, -B, B) for b, B in zip(network.biases, bounds)), 127)
        assert layer_bounds(network) == bounds
        header = export_c(stored_for(network, adult))
        # each layer's planes pack its (in + 1) · out parameters without padding: at most one byte
        # per plane for the last bits and one byte of slack more than the bits themselves
        layers = [(w.size + b.size, bits_for(bound)) for w, b, bound in zip(network.weights, network.biases, bounds)]
        exact = sum(n * bits for n, bits in layers) / 8
        assert exact <= header.weight_bytes <= exact + sum(bits + 1 for _, bits in layers)
        assert header.parameters == network.n_parameters
    # Adult 108-16-2 at P = 1: 2 bits a parameter, rows of 16 bits need no rounding: 446 bytes
    assert export_c(stored_for(every_neuron_read(rng, [108, 16, 2], 1), adult)).weight_bytes == 446
    assert export_c(stored_for(every_neuron_read(rng, [108, 16, 2], 15), adult)).weight_bytes == 1115


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


def raw_rows(name: str, tmp_path: Path, dataset) -> Path:
    """The dataset's raw rows as a user's CSV file (Adult: its official test file), and 20 more
    whose numeric values lie outside the range the preprocessing was fitted on (below it in 10
    rows, above it in 10), to be clipped."""
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
    outside = table.slice(0, 20)
    for column in dataset.preprocessor.columns:
        if hasattr(column, "low"):
            values = [column.low - 5] * 10 + [column.high + 5] * 10
            field = outside.schema.field(column.name)
            outside = outside.set_column(outside.schema.get_field_index(column.name), field,
                                         pa.array(values).cast(field.type))
    out = tmp_path / f"{name}_raw.csv"
    pa_csv.write_csv(pa.concat_tables([table, outside]), out)
    return out


def raw_fields(preprocessing: dict, table: pa.Table) -> tuple[np.ndarray, list[list[str]]]:
    """What a user holds of raw rows: each numeric column's values (float64, as intnet reads them)
    and each categorical column's values as the text intnet compares (a missing value "")."""
    numeric, texts = [], []
    for column in preprocessing["columns"]:
        values = table.column(column["name"])
        if column["kind"] == "numeric":
            numeric.append(values.cast(pa.float64()).to_numpy(zero_copy_only=False))
        else:
            texts.append(as_strings(column["name"], values).fill_null(MISSING_CATEGORY).to_pylist())
    return np.array(numeric).reshape(len(numeric), table.num_rows).T, [list(row) for row in zip(*texts)]


def raw_onnx_inputs(preprocessing: dict, numeric: np.ndarray, texts: list[list[str]]) -> np.ndarray:
    """The input of a --raw-inputs ONNX model: numeric columns' raw values, one-hot 0/1 inputs."""
    features, at_numeric, at_text = [], 0, 0
    for column in preprocessing["columns"]:
        if column["kind"] == "numeric":
            features.append(numeric[:, at_numeric])
            at_numeric += 1
        else:
            features += [np.array([row[at_text] == category for row in texts], dtype=np.float64)
                         for category in column["categories"]]
            at_text += 1
    return np.stack(features, axis=1)


def c_encoded_predictions(cc, header: str, numeric: np.ndarray, texts: list[list[str]], folder: Path) -> list[str]:
    """Labels from tests/c/encode_rows.c: raw values through intnet_category and intnet_encode."""
    program = compiled(cc, header, "encode_rows", folder)
    rows = folder / "raw_rows.txt"
    lines = [str(len(numeric))]
    for values, row_texts in zip(numeric, texts or [[]] * len(numeric)):
        lines += [repr(float(v)) for v in values] + row_texts
    rows.write_text("\n".join(lines) + "\n")
    return [label for _, label in run_c(program, str(rows))]


def cli_predictions(model: Path, raw: Path, tmp_path: Path) -> list[str]:
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), "--data", str(raw), "--out", str(predictions)]) == 0
    with open(predictions) as handle:
        return [row["prediction"] for row in csv.DictReader(handle)]


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


@pytest.mark.parametrize("name,P,hidden", [("heart", 1, "16"), ("adult", 15, "16,16"), ("mnist", 1, "16"),
                                           ("heart", 15, "0"), ("mnist", 3, "0")])
def test_trained_network_exports_agree_with_intnet_predict(cc, tmp_path, capsys, name, P, hidden):
    config = TrainConfig(dataset=name, train_size=200, P=P, hidden=hidden, heuristic_steps=200, seed=0,
                         start_seconds=5)
    dataset = training.load_dataset(config)
    split = training.split_data(config, dataset)
    network = training.start_network(config, split, len(dataset.classes))
    model = write_network(tmp_path / f"{name}.parquet", stored_for(network, dataset))

    raw = raw_rows(name, tmp_path, dataset)
    predicted = cli_predictions(model, raw, tmp_path)
    assert len(set(predicted)) > 1
    table = read_table(raw)
    assert list(load(model).predict(table)) == predicted

    header = tmp_path / "model.h"
    assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
    printed = capsys.readouterr().out
    assert f"{export_c(read_network(model)).weight_bytes} bytes of weights" in printed
    x_int = contract_inputs(model, pa_csv.read_csv(raw))
    _, labels = c_predictions(cc, header.read_text(), x_int, tmp_path / "c")
    assert labels == predicted
    # the same raw rows through intnet_encode, every row, the clipped ones too
    numeric, texts = raw_fields(read_network(model).preprocessing, table)
    assert c_encoded_predictions(cc, header.read_text(), numeric, texts, tmp_path / "encode") == predicted

    onnx_file = tmp_path / "model.onnx"
    assert main(["export", str(model), "--format", "onnx", "--out", str(onnx_file)]) == 0
    indices = onnx_predictions(onnx_file.read_bytes(), x_int / 10**4)
    assert [dataset.classes[i] for i in indices] == predicted
    metadata = {p.key: p.value for p in __import__("onnx").load(str(onnx_file)).metadata_props}
    assert json.loads(metadata["intnet.classes"]) == list(dataset.classes) and metadata["intnet.inputs"] == "preprocessed"
    # and the graph that scales raw values itself
    raw_file = tmp_path / "raw.onnx"
    assert main(["export", str(model), "--format", "onnx", "--raw-inputs", "--out", str(raw_file)]) == 0
    x_raw = raw_onnx_inputs(read_network(model).preprocessing, numeric, texts)
    assert [dataset.classes[i] for i in onnx_predictions(raw_file.read_bytes(), x_raw)] == predicted


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
    assert main(["export", str(model), "--format", "c", "--raw-inputs", "--out", str(out)]) == 2
    assert "--raw-inputs is for --format onnx" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.parquet", "m.parquet"]
    assert main(["export", str(model), "--format", "c"]) == 0  # default: MODEL with .h
    assert (tmp_path / "m.h").is_file()


def _six_inputs():
    from pipeline.data.datasets import Dataset
    from pipeline.data.preprocessing import NumericColumn, Preprocessor

    preprocessor = Preprocessor(tuple(NumericColumn(f"v{i}", 0.0, 1.0) for i in range(6)))
    return Dataset("six", np.zeros((1, 6)), np.zeros(1, dtype=np.int64), ("a", "b"), preprocessor, "y")


# --- raw rows: intnet_encode and --raw-inputs -------------------------------------------------


def tied_raw_model(P: int, tmp_path: Path) -> tuple[Path, IntegerNetwork]:
    """ties_network's 6 inputs as numeric columns v0 .. v5 (v5 on [1, 5], the rest on [0, 1]), then a
    constant numeric column c (low = high = 2) and a categorical column k (a, b, c): 10 inputs. The
    new inputs feed only neurons 2 and 3, so neurons 0 and 1 keep their exact zeros, and a wrong
    encoding of c or k (c must give 0) moves neurons 2 and 3."""
    base = ties_network(P)
    rng = np.random.default_rng(P)
    extra = rng.integers(-P, P + 1, (4, 4))
    extra[:2] = 0
    extra[2:, 0] = P  # the constant column's input, which must be 0
    network = IntegerNetwork((np.hstack([base.weights[0], extra]), *base.weights[1:]), base.biases, P)
    columns = ([{"kind": "numeric", "name": f"v{i}", "low": 0.0, "high": 1.0} for i in range(5)]
               + [{"kind": "numeric", "name": "v5", "low": 1.0, "high": 5.0},
                  {"kind": "numeric", "name": "c", "low": 2.0, "high": 2.0},
                  {"kind": "categorical", "name": "k", "categories": ["a", "b", "c"]}])
    stored = StoredNetwork.single(network, ("x", "y", "z"), {"decimals": 4, "columns": columns, "label": "label"}, {})
    return write_network(tmp_path / "ties.parquet", stored), network


def tied_raw_rows(tmp_path: Path) -> Path:
    """Rows whose inputs give exact zero pre-activations and tied outputs (ties_inputs), rows with
    values outside the columns' ranges, and rows whose scaled value lies exactly half-way between two
    grid points ((2m + 1) / 32 · 10^4 ends in .5), which round to the even one."""
    rng = np.random.default_rng(3)
    x = ties_inputs(rng, 400)
    halves = (2 * np.arange(16) + 1) / 32
    rows = {f"v{i}": list(x[:, i]) for i in range(5)}
    rows["v5"] = list(1 + 4 * x[:, 5])
    # v0 half-way, v1 at the grid point above it: neuron 0, P·x0 - P·x1, is 0 where v0 rounds up (to
    # the even point) and -P where it rounds down; a rounding half up or half down changes which
    above = (np.floor(halves * 10**4) + 1) / 10**4
    for i in range(5):  # outside [0, 1], then half-way
        rows[f"v{i}"] += [-0.25 - i, 1.5 + i] * 8 + list(above if i == 1 else halves)
    rows["v5"] += [0.5, 9.0] * 8 + list(1 + 4 * halves)
    n = len(rows["v0"])
    rows["c"] = list(rng.normal(2.0, 3.0, n))
    rows["k"] = [str(v) if v != "none" else None for v in rng.choice(["a", "b", "c", "unseen", "none"], n)]
    rows["label"] = ["x"] * n
    path = tmp_path / "ties.csv"
    pa_csv.write_csv(pa.table(rows), path)
    return path


@pytest.mark.parametrize("P", [1, 15])
def test_raw_rows_through_intnet_encode_and_the_raw_onnx_graph_give_intnet_predict(cc, tmp_path, P):
    model, network = tied_raw_model(P, tmp_path)
    raw = tied_raw_rows(tmp_path)
    table = read_table(raw)
    predicted = cli_predictions(model, raw, tmp_path)
    assert list(load(model).predict(table)) == predicted
    # the cases happen: exact zeros, tied outputs, clipped values and half-way values
    z = network.preactivations(load(model).preprocessor.transform(table))
    assert (z[0][:, 0] == 0).sum() >= 100 and (z[0][:, 1] == 0).sum() >= 100 and (z[1][:, 0] == 0).sum() >= 20
    assert ((z[2][:, 0] == z[2].max(axis=1)) & (z[2][:, 1] == z[2].max(axis=1))).sum() >= 20
    fraction = table.column("v0").to_numpy() * 10**4
    assert ((fraction % 1) == 0.5).sum() == 16 and ((fraction < 0) | (fraction > 10**4)).sum() == 16
    assert sorted(np.unique(z[0][-16:, 0] * 10**4)) == [-P, 0]  # both ways of rounding half-way to even
    assert set(predicted) == {"x", "z"}  # outputs 0 and 1 are equal: the tie rule never picks y

    numeric, texts = raw_fields(read_network(model).preprocessing, table)
    assert c_encoded_predictions(cc, export_c(read_network(model)).text, numeric, texts, tmp_path / "c") == predicted
    x_raw = raw_onnx_inputs(read_network(model).preprocessing, numeric, texts)
    indices = onnx_predictions(export_onnx(read_network(model), raw_inputs=True), x_raw)
    assert [("x", "y", "z")[i] for i in indices] == predicted


# --- ensembles through the CLI, networks without a hidden layer --------------------------------


def random_ensemble(kind: EnsembleKind, hidden: tuple[int, ...], P: int, x: np.ndarray, classes: int) -> Ensemble:
    if kind == EnsembleKind.ONE_VS_ONE:
        member_classes = tuple(combinations(range(classes), 2))
    else:
        member_classes = ((*range(classes),),) * 5
    networks = tuple(random_network(np.random.default_rng(m), [x.shape[1], *hidden, len(c)], P)
                     for m, c in enumerate(member_classes))
    return Ensemble(kind, networks, member_classes, classes)


@pytest.mark.parametrize("kind", [EnsembleKind.BAGGING, EnsembleKind.ONE_VS_ONE])
def test_exporting_an_ensemble_file_exits_0_and_reports_its_bytes(cc, datasets, tmp_path, capsys, kind):
    dataset = datasets["mnist"]
    x = held_out_rows(dataset)
    ensemble = random_ensemble(kind, (8,), 1, x, len(dataset.classes))
    stored = StoredNetwork(ensemble, dataset.classes, {**dataset.preprocessor.to_json(), "label": dataset.label}, {})
    model = write_network(tmp_path / "ensemble.parquet", stored)
    header = tmp_path / "ensemble.h"
    assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
    exported = export_c(read_network(model))
    assert capsys.readouterr().out.strip() == (
        f"wrote {header}: {exported.weight_bytes} bytes of weights and biases for {exported.parameters} parameters "
        f"of {len(ensemble.networks)} member networks ({8 * exported.weight_bytes / exported.parameters:.2f} bits each)")
    assert exported.parameters <= ensemble.n_parameters  # members' unread neurons are not exported
    indices, _ = c_predictions(cc, header.read_text(), integer_inputs(x), tmp_path / "c")
    np.testing.assert_array_equal(indices, ensemble.predict(x))
    assert main(["export", str(model), "--format", "onnx", "--out", str(tmp_path / "ensemble.onnx")]) == 0
    np.testing.assert_array_equal(onnx_predictions((tmp_path / "ensemble.onnx").read_bytes(), x), ensemble.predict(x))


@pytest.mark.parametrize("name", ["heart", "mnist"], ids=["two-classes", "ten-classes"])
@pytest.mark.parametrize("P", [1, 3])
def test_a_network_without_a_hidden_layer_exports_and_agrees(cc, datasets, tmp_path, capsys, name, P):
    """Issue 23: the output layer reads the inputs. Through the file, the CLI, gcc and onnxruntime;
    and info, evaluate and predict read the file."""
    dataset = datasets[name]
    x = held_out_rows(dataset)
    network = varied_random_network([x.shape[1], len(dataset.classes)], P, x)
    model = write_network(tmp_path / "linear.parquet", stored_for(network, dataset))
    expected = network.predict(x)
    header, onnx_file = tmp_path / "linear.h", tmp_path / "linear.onnx"
    assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
    indices, labels = c_predictions(cc, header.read_text(), integer_inputs(x), tmp_path / "c")
    np.testing.assert_array_equal(indices, expected)
    assert labels == [dataset.classes[i] for i in expected]
    assert main(["export", str(model), "--format", "onnx", "--out", str(onnx_file)]) == 0
    label, scores = onnx_outputs(onnx_file.read_bytes(), x)
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(scores, network.output(x).astype(np.float32))

    assert main(["info", str(model)]) == 0
    assert f"architecture: {x.shape[1]}-{len(dataset.classes)}" in capsys.readouterr().out
    assert main(["evaluate", str(model), "--dataset", name, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["all"]["accuracy"] == pytest.approx(network.accuracy(dataset.x, dataset.y))
    raw = raw_rows(name, tmp_path, dataset)
    assert cli_predictions(model, raw, tmp_path) == list(load(model).predict(read_table(raw)))


@pytest.mark.parametrize("kind", [EnsembleKind.BAGGING, EnsembleKind.ONE_VS_ONE])
@pytest.mark.parametrize("name", ["heart", "mnist"], ids=["two-classes", "ten-classes"])
def test_an_ensemble_of_networks_without_a_hidden_layer_votes_the_same(cc, datasets, tmp_path, kind, name):
    dataset = datasets[name]
    x = held_out_rows(dataset)
    ensemble = random_ensemble(kind, (), 1, x, len(dataset.classes))
    stored = StoredNetwork(ensemble, dataset.classes, {**dataset.preprocessor.to_json(), "label": dataset.label}, {})
    stored = read_network(write_network(tmp_path / "linear.parquet", stored))
    expected = ensemble.predict(x)
    assert len(set(expected)) > 1
    indices, _ = c_predictions(cc, export_c(stored).text, integer_inputs(x), tmp_path)
    np.testing.assert_array_equal(indices, expected)
    label, scores = onnx_outputs(export_onnx(stored), x)
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(scores, ensemble.votes(x))


# --- size: the bits each layer needs ------------------------------------------------------------


def test_a_compressed_network_takes_fewer_bytes_and_predicts_the_same(cc, datasets, tmp_path, capsys):
    """What compression changes: hidden neurons switched off (nothing reads them; compression and
    the neuron penalty strip them from the file, and the export strips any left), and layers narrowed
    to [-1, 1] in a file of P = 3 (its provenance records layer_bounds). The old header stored all
    of them in the 68... bytes of the start."""
    heart = datasets["heart"]
    x = held_out_rows(heart)
    start = next(network for seed in range(100)
                 if len(set((network := every_neuron_read(np.random.default_rng(seed), [21, 4, 2], 3)).predict(x))) > 1)
    switched = switch_off(start, [np.array([True, False, True, False])])
    stripped = strip_neurons(switched)
    narrowed = IntegerNetwork(tuple(np.clip(w, -1, 1) for w in stripped.weights),
                              tuple(np.clip(b, -1, 1) for b in stripped.biases), 3)
    assert stripped.sizes == [21, 2, 2] and layer_bounds(narrowed) == [1, 1] and narrowed.P == 3
    sizes = {}
    for name, network in (("start", start), ("switched", switched), ("stripped", stripped), ("narrowed", narrowed)):
        provenance = {"layer_bounds": [1, 1]} if name == "narrowed" else {}
        stored = StoredNetwork.single(network, heart.classes, {**heart.preprocessor.to_json(), "label": heart.label},
                                      provenance)
        model = write_network(tmp_path / f"{name}.parquet", stored)
        header = tmp_path / f"{name}.h"
        assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
        sizes[name] = export_c(read_network(model)).weight_bytes
        assert f": {sizes[name]} bytes of weights" in capsys.readouterr().out
        indices, _ = c_predictions(cc, header.read_text(), integer_inputs(x), tmp_path / name)
        np.testing.assert_array_equal(indices, network.predict(x))
    assert sizes["switched"] == sizes["stripped"] < sizes["start"]
    # 2 bits a parameter where the start needs 3, whatever the file's P
    assert sizes["narrowed"] < sizes["stripped"]
    assert sizes["narrowed"] == export_c(StoredNetwork.single(
        IntegerNetwork(narrowed.weights, narrowed.biases, 1), heart.classes, heart.preprocessor.to_json(), {})).weight_bytes


# --- defects: names, class indices, inputs -------------------------------------------------------


NAMES = ["a*/b", "/*c", "*/ #include <stdio.h> /*", "ends??/", "x??=y", "back\\slash", 'quo"te', "tab\tend",
         "ünï/*cödé*/", "//", "?", "", "#define INTNET_INPUTS 0"]


def test_names_can_neither_break_nor_inject_into_the_header(cc, tmp_path):
    """Column names, categories and class labels hold what ends, opens or continues a C comment, a
    string or a line; the header compiles under -Werror (-Wcomment rejected "/*" in a name), none of
    them appears outside a comment or a string, and intnet_category finds every category."""
    columns = [{"kind": "numeric", "name": name, "low": 0.0, "high": 1.0} for name in NAMES]
    columns += [{"kind": "categorical", "name": "*/ k /*", "categories": NAMES + ["new\nline"]}]
    classes = ("a*/", "/*b", '"c??/')
    n_inputs = 2 * len(NAMES) + 1
    grid_x = np.round(np.random.default_rng(1).random((300, n_inputs)), 4)
    network = varied_random_network([n_inputs, 8, 3], 1, grid_x)
    stored = StoredNetwork.single(network, classes, {"decimals": 4, "columns": columns}, {})
    header = export_c(stored).text
    # what is left of the code without its comments and strings, read from left to right as C does:
    # a comment ends at the first */, a string at the first quote not escaped
    code = re.sub(r'/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', " ", header, flags=re.DOTALL)
    assert "stdio" not in code and "INTNET_INPUTS 0" not in code and "??" not in code
    indices, labels = c_predictions(cc, header, integer_inputs(grid_x), tmp_path)
    expected = network.predict(grid_x)
    np.testing.assert_array_equal(indices, expected)
    assert labels == [classes[i] for i in expected]
    # every category (but the one with a newline, which a line of the rows file cannot hold) is found
    numeric = grid_x[:len(NAMES), :len(NAMES)]
    texts = [[category] for category in NAMES]
    x = np.hstack([numeric, np.eye(len(NAMES), n_inputs - len(NAMES))])
    assert c_encoded_predictions(cc, header, numeric, texts, tmp_path / "encode") == [classes[i] for i in network.predict(x)]


def test_class_indices_from_65536_up(cc, tmp_path):
    """One-vs-one members that vote for classes 65,536 and above (the class table was uint16_t)."""
    n_classes = 70_001
    pairs = ((65_536, 70_000), (65_536, 69_999), (3, 65_537), (70_000, 65_537), (0, 1))
    rng = np.random.default_rng(5)
    x = np.round(rng.random((60, 6)), 4)
    networks = tuple(varied_random_network([6, 4, 2], 1, x) if m else random_network(rng, [6, 4, 2], 1)
                     for m in range(len(pairs)))
    ensemble = Ensemble(EnsembleKind.ONE_VS_ONE, networks, pairs, n_classes)
    expected = ensemble.predict(x)
    assert (expected >= 65_536).any() and len(set(expected)) > 1
    classes = tuple(f"c{i}" for i in range(n_classes))
    preprocessing = {"decimals": 4, "columns": [{"kind": "numeric", "name": f"v{i}", "low": 0.0, "high": 1.0}
                                                for i in range(6)]}
    stored = StoredNetwork(ensemble, classes, preprocessing, {})
    indices, labels = c_predictions(cc, export_c(stored).text, integer_inputs(x), tmp_path)
    np.testing.assert_array_equal(indices, expected)
    assert labels == [classes[i] for i in expected]
    np.testing.assert_array_equal(onnx_predictions(export_onnx(stored), x), expected)


def test_three_million_inputs_fit_the_stack(cc, tmp_path):
    """The header kept one int per input on the stack: 12 MB at 3,000,000 inputs, beyond Linux's
    default 8 MB (each C program here runs with that limit), so intnet_predict crashed."""
    n = 3_000_000
    rng = np.random.default_rng(0)
    network = IntegerNetwork((rng.integers(-1, 2, (2, n)), np.array([[1, -1], [-1, 1]])),
                             (np.zeros(2, int), np.array([0, 1])), 1)
    x_int = np.zeros((6, n), dtype=np.int64)
    for row in x_int:
        hot = rng.choice(n, 50, replace=False)
        row[hot] = rng.integers(1, 10**4 + 1, 50)
    expected = network.predict(x_int / 10**4)
    assert len(set(expected)) > 1
    preprocessing = {"decimals": 4, "columns": [{"kind": "numeric", "name": f"v{i}", "low": 0.0, "high": 1.0}
                                                for i in range(n)]}
    header = export_c(StoredNetwork.single(network, ("a", "b"), preprocessing, {})).text
    indices, _ = c_predictions(cc, header, x_int, tmp_path)
    np.testing.assert_array_equal(indices, expected)


def test_a_scoring_system_trained_by_the_cli_compiles_and_agrees_with_predict_on_every_test_row(cc, tmp_path, capsys):
    """No hidden layer, within a budget, the whole pipeline: the header compiled with the strict
    flags predicts the class `intnet predict` does on every row of Heart (its test rows included)."""
    model = tmp_path / "scores.parquet"
    assert main(["train", "--dataset", "heart", "--hidden", "0", "--max-nonzero", "6", "--P", "15", "--time-limit", "5",
                 "--out", str(model), "--checkpoints", str(tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == [21, 2] and report["nonzero_parameters"] <= 6
    dataset = training.load_dataset(TrainConfig(dataset="heart"))
    raw = raw_rows("heart", tmp_path, dataset)
    predicted = cli_predictions(model, raw, tmp_path)
    header = tmp_path / "scores.h"
    assert main(["export", str(model), "--format", "c", "--out", str(header)]) == 0
    _, labels = c_predictions(cc, header.read_text(), contract_inputs(model, pa_csv.read_csv(raw)), tmp_path / "c")
    assert labels == predicted and len(predicted) >= 303  # every row, and rows outside the training range
