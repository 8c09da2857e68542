"""The `intnet` command: one real training run as a Prefect flow on Ray actors, the file it writes
read back through the contract alone; a run without a Prefect API runs directly, starting no server
and importing no Prefect; one-line errors for bad input; a reader that leaves a pipe early."""

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from test_signals import TEST_MARKER, listening_sockets, processes_of

from flows.cli import main


@pytest.fixture
def raw_heart(tmp_path):
    return heart_raw_csv(tmp_path)


def heart_raw_csv(tmp_path):
    """Raw Heart rows as a user would have them (written from the shipped copy)."""
    from pipeline.data.datasets import _shipped_file, read_table

    with _shipped_file("heart.csv.gz") as path:
        table = read_table(path)
    out = tmp_path / "heart_raw.csv"
    pa_csv.write_csv(table, out)
    return out


def contract_forward(path, raw_rows):
    """Predictions from the network file using only pyarrow, numpy and the README's contract: every
    member's argmax is a vote (format 1: one network; format 2: the `member` column and
    `intnet.ensemble`), the most-voted class wins, the lowest class index on a tie."""
    table = pq.read_table(path)
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["intnet.format"] in (1, 2) and meta["intnet.activation"] == "sign" and meta["intnet.output"] == "argmax"
    prep = meta["intnet.preprocessing"]
    scale = 10 ** prep["decimals"]
    features = []
    for column in prep["columns"]:
        values = raw_rows.column(column["name"]).to_pylist()
        if column["kind"] == "numeric":
            low, high = column["low"], column["high"]
            v = np.array(values, dtype=float)
            v = np.zeros_like(v) if high == low else np.clip((v - low) / (high - low), 0, 1)
            features.append(np.round(v * scale))  # integer inputs on the 10^-decimals grid
        else:
            text = ["" if x is None else (str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)) for x in values]
            for category in column["categories"]:
                features.append(np.array([scale * (t == category) for t in text], dtype=float))
    inputs = np.stack(features, axis=1)  # scaled by 10^decimals: exact integers
    ensemble = meta.get("intnet.ensemble", {"kind": "single", "members": 1})
    n_classes = len(meta["intnet.classes"])
    votes = np.zeros((len(inputs), n_classes), dtype=int)
    for member in range(ensemble["members"]):
        a = inputs
        rows = sorted((r for r in table.to_pylist() if r.get("member", 0) == member), key=lambda r: r["layer"])
        for n, row in enumerate(rows):
            w = np.array(row["weight"], dtype=float).reshape(row["out_features"], row["in_features"])
            b = np.array(row["bias"], dtype=float)
            z = a @ w.T + (scale * b if n == 0 else b)
            a = np.where(z >= 0, 1.0, -1.0) if n < len(rows) - 1 else z
        output = np.argmax(a, axis=1)  # the lowest index on a tie
        voted = np.array(ensemble["pairs"][member])[output] if ensemble["kind"] == "one_vs_one" else output
        votes[np.arange(len(inputs)), voted] += 1
    return [meta["intnet.classes"][i] for i in np.argmax(votes, axis=1)]


def test_train_on_ray_actors_then_predict_evaluate_info(tmp_path, capsys, prefect_server, ray_session):
    model = tmp_path / "heart.parquet"
    # sat_margin, whose solves use their 8 s, so that the two actors' solves overlap (the default
    # max_correct's start can meet the target at once); --prefect: as the flow, each step a task
    code = main([
        "train", "--dataset", "heart", "--train-size", "80", "--batch-size", "40", "--P", "3", "--formulation", "sat_margin",
        "--hidden", "6", "--workers", "2", "--time-limit", "8", "--epochs", "2", "--seed", "1", "--out", str(model),
        "--checkpoints", str(tmp_path / "runs"), "--json", "--prefect",
    ])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("train_accuracy", "validation_accuracy", "test_accuracy", "seconds", "model_path", "batches",
                "epochs", "best_epoch"):
        assert key in summary
    assert summary["model_path"] == str(model) and model.is_file()
    assert [e["epoch"] for e in summary["epochs"]] == [0, 1] and [e["radius"] for e in summary["epochs"]] == [None, 3]
    assert summary["epochs"][summary["best_epoch"]]["merged"]["validation"] == max(
        e["merged"]["validation"] for e in summary["epochs"])
    assert len(summary["batches"]) == 4 and [b["epoch"] for b in summary["batches"]] == [0, 0, 1, 1]
    batches = summary["batches"][:2]
    for record in batches:
        for key in ("status", "objective", "bound", "started", "finished", "seconds", "start_objective"):
            assert key in record
        assert record["status"] != "error", record["error"]
        assert record["objective"] <= record["start_objective"]
    # two actors, two processes, solving at the same time
    assert len({r["worker"] for r in batches}) == 2
    (a, b) = batches
    assert a["started"] < b["finished"] and b["started"] < a["finished"]

    raw = heart_raw_csv(tmp_path)
    predictions = tmp_path / "pred.csv"
    assert main(["predict", str(model), "--data", str(raw), "--out", str(predictions)]) == 0
    with open(predictions) as handle:
        predicted = [row["prediction"] for row in csv.DictReader(handle)]
    assert len(predicted) == 303
    assert predicted == contract_forward(model, pa_csv.read_csv(raw))

    assert main(["evaluate", str(model), "--dataset", "heart", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["test"]["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert report["splits"]["train"]["rows"] == 80

    assert main(["evaluate", str(model), "--data", str(raw), "--json"]) == 0
    on_file = json.loads(capsys.readouterr().out)["splits"]["all"]
    labels = [str(v) for v in pa_csv.read_csv(raw).column("target").to_pylist()]
    assert on_file["accuracy"] == pytest.approx(np.mean(np.array(predicted) == np.array(labels)))

    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "21-6-2" and info["size_bits"] == (21 * 6 + 6 + 6 * 2 + 2) * 3
    from pipeline.networks.storage import read_network

    assert info["calibration"] == read_network(model).calibration.as_json()
    assert info["calibration"]["fitted_on"] == "validation" and info["calibration"]["rows"] == summary["n_validation"]

    polished = tmp_path / "polished.parquet"
    assert main(["improve", str(model), "--dataset", "heart", "--seconds", "5", "--out", str(polished), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["objective"] <= report["start_objective"] and report["steps"] >= 1
    assert report["ended"] in ("time limit", "local optimum", "objective 0") and report["step_limit_end"] >= 2
    assert report["before"]["train"]["accuracy"] == pytest.approx(summary["train_accuracy"])
    assert read_network(polished).provenance["improved"][0]["objective"] == report["objective"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "heart", "--P", "0"], "--P: "),
        (["--dataset", "heart", "--P", "300"], "--P: "),
        (["--dataset", "heart", "--hidden", "16,a"], "--hidden: "),
        (["--dataset", "heart", "--time-limit", "-1"], "--time-limit: "),
        (["--dataset", "heart", "--time-limit", "0"], "give --improve SECONDS"),
        (["--dataset", "heart", "--formulation", "nope"], "--formulation: Input should be 'sat_margin'"),
        # the NEOS web service's client, which would send it the data; any program Pyomo would run
        (["--dataset", "heart", "--solver", "_neos"], "--solver: '_neos' is not a MIP solver that runs on this machine"),
        (["--dataset", "heart", "--solver", "asl:/bin/true"], "--solver: 'asl:/bin/true' is not a MIP solver"),
        (["--dataset", "heart", "--formulation", "min_weight", "--improve", "5"], "soft-loss formulation"),
        # every batch failed in local search (issue 26, item 2)
        (["--dataset", "heart", "--formulation", "lexicographic", "--improve", "5"],
         "one of sat_margin, correct_margin, max_correct, min_hinge"),
        (["--dataset", "heart", "--train-size", "5000"], "5000"),
        (["--dataset", "heart", "--ensemble", "3", "--compress", "5"], "--compress works on one network"),
        (["--dataset", "heart", "--tolerance", "3"], "give --compress"),
        (["--dataset", "heart", "--keep", "train"], "give --compress"),
        (["--data", "missing.csv", "--label", "y"], "missing.csv"),
        (["--data", "RAW"], "--label"),
        (["--data", "RAW", "--label", "nope"], "label column 'nope'"),
        ([], "--dataset NAME or --data FILE"),
    ],
)
def test_train_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, raw_heart, args, message):
    args = [str(raw_heart) if a == "RAW" else a for a in args]
    out = tmp_path / "m.parquet"
    assert main(["train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not out.exists()


def test_model_file_errors(tmp_path, capsys, raw_heart):
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    for command in (["info", str(bogus)], ["predict", str(bogus), "--data", str(raw_heart)],
                    ["evaluate", str(bogus), "--dataset", "heart"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert "not a Parquet file" in err and "\n" not in err


@pytest.mark.parametrize("command", [["predict", "--data", "RAW"], ["improve", "--dataset", "heart", "--seconds", "5"]],
                         ids=["predict", "improve"])
@pytest.mark.parametrize("where", ["a directory", "a missing folder"])
def test_predict_and_improve_check_out_before_any_work(tmp_path, capsys, raw_heart, command, where):
    # The model does not exist either: the --out error shows that --out is checked first.
    (tmp_path / "plain.txt").write_text("a file where a folder should be")
    out = tmp_path if where == "a directory" else tmp_path / "plain.txt" / "out.file"
    args = [str(raw_heart) if a == "RAW" else a for a in command]
    assert main([args[0], str(tmp_path / "no-model.parquet"), *args[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"intnet {args[0]}: error: --out {out}"), err
    assert ("is a directory" if where == "a directory" else "is a file, not a folder") in err


@pytest.mark.subprocess
def test_train_creates_the_missing_folders_of_out(tmp_path, capsys):
    """`make demo` writes out/heart.parquet on a fresh clone, where out/ does not exist yet."""
    model = tmp_path / "new" / "folder" / "m.parquet"
    assert main(["train", "--dataset", "heart", "--train-size", "40", "--P", "1", "--hidden", "2", "--time-limit", "1",
                 "--heuristic-steps", "50", "--out", str(model), "--checkpoints", str(tmp_path / "runs")]) == 0
    assert model.is_file()


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-improve-validation"], False),
                                                 (["--improve-validation"], True)])
def test_an_option_on_by_default_can_be_turned_off(flags, expected):
    from flows.cli import build_parser, train_config

    args = build_parser().parse_args(["train", "--dataset", "heart", "--time-limit", "0", "--improve", "5", *flags])
    assert train_config(args).improve_validation is expected


# The command as the `intnet` script runs it (main() without argv), telling afterwards whether
# Prefect was imported.
AS_SCRIPT = ("import sys; from flows.cli import main; code = main(); "
             "print('prefect imported:', 'prefect' in sys.modules, file=sys.stderr); sys.exit(code)")


def boottime_started(pid: int) -> float:
    """When process ``pid`` started, on the CLOCK_BOOTTIME clock (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


@pytest.mark.subprocess
def test_train_without_a_prefect_api_runs_directly_and_reports_the_commands_wall_time(tmp_path):
    """The README's quick command: no Prefect API configured (no PREFECT_API_URL, no profile), so no
    Prefect server starts (no process of the run listens on any port) and Prefect is not even
    imported; `seconds` is the command's wall time from its process's start."""
    home = tmp_path / "home"  # no ~/.prefect/profiles.toml
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_"))} | {
        "HOME": str(home), TEST_MARKER: str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[1])}
    run = subprocess.Popen(
        [sys.executable, "-c", AS_SCRIPT, "train", "--dataset", "heart", "--train-size", "100", "--hidden", "4",
         "--time-limit", "5", "--workers", "1", "--out", str(tmp_path / "m.parquet"), "--checkpoints",
         str(tmp_path / "runs"), "--json"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = boottime_started(run.pid)
    stderr: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: stderr.extend(
        (time.clock_gettime(time.CLOCK_BOOTTIME), line) for line in run.stderr), daemon=True)
    reader.start()
    listening, others = [], {}
    while run.poll() is None:  # the run's processes while it runs
        processes = processes_of(str(tmp_path))
        others |= {pid: command for pid, command in processes.items() if pid != run.pid}
        listening += listening_sockets(processes)
        time.sleep(0.1)
    out = run.stdout.read()
    printed = time.clock_gettime(time.CLOCK_BOOTTIME)
    reader.join(timeout=10)
    assert run.returncode == 0, "".join(line for _, line in stderr)[-3000:]
    assert listening == [], listening
    assert [command.split()[1:3] for command in others.values()] == [["-m", "flows.run_scope"]], others  # the watchdog
    assert stderr[-1][1].strip() == "prefect imported: False"
    seconds = json.loads(out)["seconds"]
    # From the process's start (the first log line comes after loading the data and the start
    # network, which a time measured inside the run's function would begin with) to the summary.
    first_line = stderr[0][0]
    assert first_line - started <= seconds <= printed - started + 0.02, (first_line - started, seconds, printed - started)


def heart_model(tmp_path) -> Path:
    from pipeline import training
    from pipeline.config import TrainConfig

    model = tmp_path / "model.parquet"
    training.train(TrainConfig(dataset="heart", train_size=40, P=1, hidden=(2,), time_limit=1, heuristic_steps=50,
                               out=str(model), checkpoints=str(tmp_path / "runs")))
    return model


@pytest.mark.parametrize("command", [["improve", "--dataset", "heart", "--seconds", "5"],
                                     ["compress", "--dataset", "heart", "--seconds", "5"], ["export", "--format", "c"]],
                         ids=["improve", "compress", "export"])
@pytest.mark.parametrize("how", ["as given", "through a link"])
def test_out_that_is_the_model_itself_is_refused(tmp_path, capsys, command, how):
    model = heart_model(tmp_path)
    capsys.readouterr()  # what making the model logged
    before = model.read_bytes()
    out = model
    if how == "through a link":
        out = tmp_path / "link.parquet"
        out.symlink_to(model.name)
    assert main([command[0], str(model), *command[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"intnet {command[0]}: error: --out {out} is MODEL itself"), err
    assert model.read_bytes() == before


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"intnet {version('intnet')}\n"


@pytest.mark.parametrize("command", [["info", "MODEL"], ["info", "MODEL", "--json"],
                                     ["evaluate", "MODEL", "--dataset", "heart"], ["predict", "MODEL", "--data", "RAW"]],
                         ids=["info", "info-json", "evaluate", "predict"])
@pytest.mark.subprocess
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_reader_that_left_the_pipe_ends_the_command_quietly(tmp_path, raw_heart, command, buffered):
    """`intnet info MODEL | head`: the reader is gone before the command writes (the pipe's read end
    is closed here first), so every write fails, at the print (PYTHONUNBUFFERED) or when the
    output is flushed; the command ends with no traceback, with the status a shell reports for a
    program SIGPIPE ended (141)."""
    model = heart_model(tmp_path)
    args = [str(model) if a == "MODEL" else str(raw_heart) if a == "RAW" else a for a in command]
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {
        "PYTHONPATH": str(Path(__file__).parents[1])} | ({} if buffered else {"PYTHONUNBUFFERED": "1"})
    done = subprocess.run([sys.executable, "-m", "flows.cli", *args], stdout=write, stderr=subprocess.PIPE, env=env,
                          timeout=300)
    os.close(write)
    assert done.stderr == b""
    assert done.returncode == 141


def people_csv(tmp_path, rows=40) -> Path:
    """People with a name on every row (an identifier), a numeric and a categorical feature, a label."""
    path = tmp_path / "people.csv"
    path.write_text("name,age,city,y\n" + "".join(
        f"person {i},{20 + i % 30},{'north' if i % 3 else 'south'},{'yes' if i % 2 else 'no'}\n" for i in range(rows)))
    return path


def test_an_identifier_column_is_refused_naming_exclude(tmp_path, capsys):
    out = tmp_path / "m.parquet"
    assert main(["train", "--data", str(people_csv(tmp_path)), "--label", "y", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "column 'name'" in err and "--exclude name" in err, err
    assert not out.exists()


def test_excluded_columns_stay_out_of_the_network_and_predict_and_evaluate_ignore_them(tmp_path, capsys):
    from flows.cli import build_parser, train_config
    from pipeline import training
    from pipeline.networks.storage import read_network

    data, model = people_csv(tmp_path), tmp_path / "m.parquet"
    args = build_parser().parse_args([
        "train", "--data", str(data), "--label", "y", "--exclude", "name", "--exclude", "city", "--hidden", "2",
        "--P", "1", "--time-limit", "1", "--heuristic-steps", "50", "--out", str(model),
        "--checkpoints", str(tmp_path / "runs")])
    config = train_config(args)
    assert config.exclude == ("name", "city")
    training.train(config)
    assert [column["name"] for column in read_network(model).preprocessing["columns"]] == ["age"]
    capsys.readouterr()
    predictions = tmp_path / "p.csv"
    assert main(["predict", str(model), "--data", str(data), "--out", str(predictions)]) == 0
    assert len(predictions.read_text().splitlines()) == 1 + 40
    assert main(["evaluate", str(model), "--data", str(data), "--json"]) == 0  # the run's split, rebuilt
    assert set(json.loads(capsys.readouterr().out)["splits"]) == {"train", "validation", "test"}


def test_a_built_in_dataset_s_column_can_be_excluded_and_still_define_groups():
    """Adult without sex: the preprocessing is fitted again without it (on the official test rows
    too, as Adult's), sex's two inputs are gone, and the column is still there for --fair."""
    from pipeline.config import TrainConfig
    from pipeline.training import load_dataset

    full = load_dataset(TrainConfig(dataset="adult"))
    without = load_dataset(TrainConfig(dataset="adult", exclude=["sex"]))
    assert without.x.shape[1] == full.x.shape[1] - 2 and without.test_x.shape[1] == without.x.shape[1]
    assert not any(name.startswith("sex=") for name in without.preprocessor.feature_names)
    assert "sex" in without.attributes.column_names and "sex" in without.test_attributes.column_names
    assert main(["train", "--dataset", "heart", "--exclude", "nonesuch"]) == 2


def test_a_label_of_a_thousand_classes_is_refused_in_one_line(tmp_path, capsys):
    """It had taken 2 min 16 s and 4.4 GB, building 39 s past --time-limit 5 (issue 26, item 3)."""
    data, out = tmp_path / "many.csv", tmp_path / "m.parquet"
    data.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 11},k{i}\n" for i in range(1000)))
    assert main(["train", "--data", str(data), "--label", "label", "--time-limit", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "1000 classes" in err and "at most 100" in err, err
    assert not out.exists()
