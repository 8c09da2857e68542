"""``--hidden auto``: which architectures are tried, which one is kept, and a real run that prints
what it tried and why it chose."""

import json

import pytest

from flows.cli import main
from pipeline.reporting import ArchitectureTrial
from pipeline.training import architecture_candidates, chosen_architecture


def trial(hidden, validation, nonzero):
    return ArchitectureTrial(tuple(hidden), validation, None, nonzero, 3 * nonzero, 1.0)


def tried_in_order(validations: dict, n_classes: int = 2) -> list:
    """The architectures the search asks for, each scored as ``validations`` says."""
    tried = []
    while (hidden := architecture_candidates(tried, n_classes)) is not None:
        tried.append(trial(hidden, validations[hidden], 10 * (1 + sum(hidden))))
    return [t.hidden for t in tried]


def test_no_hidden_layer_first_then_widths_until_two_in_a_row_do_not_pay():
    validations = {(): 0.80, (1,): 0.81, (2,): 0.83, (4,): 0.831, (8,): 0.829, (16,): 0.9}
    # 4 and 8 are within 0.2 points of 2's 0.83: the search stops before 16, then tries 2,2.
    assert tried_in_order(validations | {(2, 2): 0.83}) == [(), (1,), (2,), (4,), (8,), (2, 2)]


def test_every_width_while_they_keep_paying_then_a_second_layer():
    validations = {(): 0.70, (1,): 0.72, (2,): 0.74, (4,): 0.76, (8,): 0.78, (16,): 0.80, (16, 16): 0.79}
    assert tried_in_order(validations) == [(), (1,), (2,), (4,), (8,), (16,), (16, 16)]


def test_widths_whose_sign_patterns_are_fewer_than_the_classes_are_not_tried():
    # digits-like: 10 classes, 2^3 = 8 patterns < 10, so 4 neurons come first; 4 and 8 not paying
    # stop the search before 16 only once they were tried.
    validations = {(): 0.94, (4,): 0.75, (8,): 0.90, (16,): 0.95, (16, 16): 0.93}
    assert tried_in_order(validations, n_classes=10) == [(), (4,), (8,)]
    assert tried_in_order(validations | {(8,): 0.945}, n_classes=10) == [(), (4,), (8,), (16,), (16, 16)]
    assert tried_in_order({(): 0.5, (2,): 0.6, (4,): 0.7, (8,): 0.7, (16,): 0.7, (4, 4): 0.7}, n_classes=3)[:2] == [(), (2,)]


def test_no_second_layer_when_no_hidden_layer_or_one_neuron_is_best():
    assert tried_in_order({(): 0.90, (1,): 0.85, (2,): 0.86}) == [(), (1,), (2,)]
    assert tried_in_order({(): 0.80, (1,): 0.90, (2,): 0.85, (4,): 0.89}) == [(), (1,), (2,), (4,)]


def test_the_smallest_within_two_tenths_of_a_point_of_the_best_is_kept():
    tried = [trial((), 0.830, 20), trial((4,), 0.8315, 90), trial((8,), 0.8330, 170)]
    assert chosen_architecture(tried) == 1  # 0.8315 is within 0.002 of 0.8330, () at 0.830 is not
    tried[0] = trial((), 0.8311, 20)
    assert chosen_architecture(tried) == 0


@pytest.mark.parametrize("flag", ["--ensemble 3", "--neuron-penalty 0.1", "--resume"])
def test_auto_with_options_that_need_fixed_widths_is_refused_in_one_line(tmp_path, capsys, flag):
    assert main(["train", "--dataset", "heart", "--hidden", "auto", *flag.split(), "--out", str(tmp_path / "m.parquet")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--hidden auto" in error and flag.split()[0] in error
    assert not (tmp_path / "m.parquet").exists()


@pytest.mark.subprocess  # the CLI's run starts its watchdog
def test_auto_on_heart_prints_what_it_tried_and_keeps_the_chosen_network(tmp_path, capsys):
    out = tmp_path / "auto.parquet"
    assert main(["train", "--dataset", "heart", "--train-size", "80", "--hidden", "auto", "--P", "3",
                 "--time-limit", "1", "--heuristic-steps", "300", "--out", str(out),
                 "--checkpoints", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out
    assert "architectures tried" in printed and "<- kept" in printed
    assert main(["train", "--dataset", "heart", "--train-size", "80", "--hidden", "auto", "--P", "3",
                 "--time-limit", "1", "--heuristic-steps", "300", "--out", str(out),
                 "--checkpoints", str(tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    trials = report["architectures"]
    assert trials[0]["hidden"] == [] and sum(t["chosen"] for t in trials) == 1
    kept = next(t for t in trials if t["chosen"])
    best = max(t["validation_accuracy"] for t in trials)
    assert kept["validation_accuracy"] >= best - 0.002
    assert all(t["nonzero_parameters"] >= kept["nonzero_parameters"] for t in trials
               if t["validation_accuracy"] >= best - 0.002)
    assert report["sizes"][1:-1] == kept["hidden"] and report["nonzero_parameters"] == kept["nonzero_parameters"]
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nonzero_parameters"] == kept["nonzero_parameters"]
