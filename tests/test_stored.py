"""A stored network is judged, improved and compressed on the rows its run used: the split is
rebuilt by the run's own functions from the stored configuration, ``--test-size`` and
``--test-data`` included."""

import numpy as np
import pytest

from pipeline import stored
from pipeline.config import TrainConfig
from pipeline.networks.inference import load_model
from pipeline.training import load_dataset, split_data, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Heart with 30 % held out as test (the default is 20 %): a run whose split the old rebuild,
    which ignored --test-size, got wrong."""
    folder = tmp_path_factory.mktemp("stored")
    config = TrainConfig(dataset="heart", test_size=0.3, train_size=60, hidden=(2,), P=1, time_limit=1,
                         heuristic_steps=200, out=folder / "model.parquet", checkpoints=folder / "runs")
    summary = train(config)
    return config, summary, load_model(config.out)


def rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def test_the_rebuilt_split_is_the_runs_own(trained):
    config, summary, model = trained
    split = split_data(config, load_dataset(config))
    sets = stored.labelled_data(model, dataset="heart")
    assert set(sets) == {"train", "validation", "test"}
    for name, (x, y) in (("train", (split.train_x, split.train_y)), ("validation", (split.val_x, split.val_y)),
                         ("test", (split.test_x, split.test_y))):
        assert np.array_equal(sets[name][0], x) and np.array_equal(sets[name][1], y), name
    assert len(sets["test"][1]) == round(0.3 * 303) == summary.n_test


def test_evaluate_improve_and_compress_use_the_runs_rows(trained, tmp_path):
    config, summary, model = trained
    report = stored.evaluate(model, dataset="heart")["splits"]
    expected = summary.final.as_dict()
    assert {name: report[name]["accuracy"] for name in expected} == pytest.approx(expected)
    assert report["test"]["rows"] == summary.n_test and report["train"]["rows"] == summary.n_train

    improved = stored.improve_stored(model, 2, tmp_path / "improved.parquet", dataset="heart")
    assert improved["before"]["test"]["rows"] == summary.n_test
    assert improved["before"]["test"]["accuracy"] == pytest.approx(summary.final.test)
    assert improved["validation_rule"] is True

    compressed = stored.compress_stored(model, 2, tmp_path / "compressed.parquet", dataset="heart")
    assert compressed["keep"] == "validation"
    assert compressed["before_accuracy"]["validation"]["rows"] == summary.n_validation
    assert compressed["before_accuracy"]["test"]["accuracy"] == pytest.approx(summary.final.test)


def test_a_model_trained_on_a_file_is_judged_on_its_own_split_of_that_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((120, 2))
    data = tmp_path / "data.csv"
    lines = ["a,b,label"] + [f"{a:.4f},{b:.4f},{int(a > b)}" for a, b in x]
    data.write_text("\n".join(lines) + "\n")
    config = TrainConfig(data=data, label="label", test_size=0.25, hidden=(2,), P=1, time_limit=1,
                         heuristic_steps=100, out=tmp_path / "model.parquet", checkpoints=tmp_path / "runs")
    summary = train(config)
    sets = stored.labelled_data(load_model(config.out), data=data)
    assert len(sets["test"][1]) == summary.n_test == 30
    other = tmp_path / "other.csv"
    other.write_text(data.read_text())
    assert set(stored.labelled_data(load_model(config.out), data=other)) == {"all"}
