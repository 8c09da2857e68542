"""Batch training's epochs and per-batch checkpoints: the pure steps, and resuming with real solves."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from formulations import IntegerNetwork
from pipeline import training
from pipeline.batches import BatchTask, EpochStart, RunContext
from pipeline.checkpoints import RECORD_KEY, BatchStore, run_key
from pipeline.config import TrainConfig
from pipeline.executors import InProcessExecutor
from pipeline.solve import SolverOptions
from pipeline.splits import Split
from networks import random_network


def test_the_box_shrinks_by_one_per_epoch_as_the_paper_and_never_below_one():
    assert [training.epoch_radius(3, e) for e in range(6)] == [None, 3, 2, 1, 1, 1]


@pytest.mark.parametrize("epoch", [0, 1, 2, 5])
def test_an_epoch_starts_every_batch_from_the_merged_network_inside_its_box(epoch):
    rng = np.random.default_rng(epoch)
    P = 3
    merged = random_network(rng, [4, 3, 2], P)
    context = training.epoch_start(TrainConfig(dataset="heart", P=P), merged, epoch)
    assert context.start is merged
    radius = training.epoch_radius(P, epoch)
    if radius is None:
        assert context.bounds is None
        return
    bounds = context.bounds
    assert bounds.contains(merged)
    for value, lower, upper in zip(merged.weights + merged.biases, bounds.weight_lower + bounds.bias_lower,
                                   bounds.weight_upper + bounds.bias_upper):
        assert np.all(lower == np.maximum(value - radius, -P)) and np.all(upper == np.minimum(value + radius, P))


def tiny_split(rng, n=60):
    x = np.round(rng.random((n, 3)), 4)
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    return Split(train_x=x, train_y=y, val_x=x[:20], val_y=y[:20], test_x=None, test_y=None)


def test_every_epoch_partitions_the_training_set_afresh():
    split = tiny_split(np.random.default_rng(0))
    config = TrainConfig(dataset="heart", batch_size=20, seed=4)
    epochs = [training.make_tasks(config, split, e) for e in range(3)]
    for tasks in epochs:
        assert sorted(np.concatenate([t.indices for t in tasks]).tolist()) == list(range(60))
    assert [t.epoch for t in epochs[2]] == [2, 2, 2]
    first = [t.indices.tolist() for t in epochs[0]]
    assert first == [t.indices.tolist() for t in training.make_tasks(config, split, 0)]  # reproducible
    assert first != [t.indices.tolist() for t in epochs[1]]  # reshuffled


def test_the_kept_epoch_is_the_best_on_validation_the_earliest_of_equals():
    def record(epoch, validation):
        return training.EpochRecord(epoch, None, 1, 0, 1, training.Accuracies(0.5, validation, None), 1.0)

    assert training.best_epoch([record(0, 0.7), record(1, 0.8), record(2, 0.8), record(3, 0.6)]) == 1
    table = training.epoch_table([record(0, 0.7), record(1, 0.8)], 1)
    assert "| 1 (kept) |" in table and table.count("\n") == 4


def test_the_run_key_follows_what_shapes_a_result_not_where_it_runs(tmp_path):
    base = TrainConfig(dataset="heart", batch_size=20)
    assert run_key(base) == run_key(base.model_copy(update={"out": tmp_path / "x.parquet", "workers": 4,
                                                           "executor": "local", "resume": True}))
    assert run_key(base) != run_key(base.model_copy(update={"seed": 1}))
    assert run_key(base) != run_key(base.model_copy(update={"P": 5}))


class CountingExecutor(InProcessExecutor):
    def __init__(self, context):
        super().__init__()
        self.open(context)
        self.solved = []

    def run(self, epoch, tasks):
        self.solved += [t.batch_id for t in tasks]
        yield from super().run(epoch, tasks)


def context_for(split, P=2):
    """The run's context, and an epoch starting from zeros."""
    run = RunContext(
        train_x=split.train_x, train_y=split.train_y, val_x=split.val_x, val_y=split.val_y, n_classes=2,
        hidden=(3,), P=P, formulation="sat_margin", solver=SolverOptions(time_limit=5, target_error=None),
    )
    return run, EpochStart(IntegerNetwork.zeros([3, 3, 2], P))


def test_a_resumed_epoch_solves_only_the_batches_it_has_no_result_for(tmp_path):
    split = tiny_split(np.random.default_rng(1))
    context, epoch = context_for(split)
    tasks = training.make_tasks(TrainConfig(dataset="heart", batch_size=20), split, epoch=1)
    store = BatchStore(tmp_path, "run0")

    first = CountingExecutor(context)
    solved = training.solve_batches(first, epoch, tasks, store=store)
    assert first.solved == [0, 1, 2] and all(r.ok for r in solved)
    store.path(1, 1).unlink()  # as if the run had been killed before batch 1 was written

    again = CountingExecutor(context)
    resumed = training.solve_batches(again, epoch, tasks, store=store, resume=True)
    assert again.solved == [1]
    for before, after in zip(solved, resumed):
        assert after.batch_id == before.batch_id and after.epoch == 1
        assert after.network.equals(before.network)
    for i in (0, 2):  # taken from the store, record and all
        assert resumed[i].record() == solved[i].record()

    without = CountingExecutor(context)
    training.solve_batches(without, epoch, tasks, store=store)
    assert without.solved == [0, 1, 2]  # without --resume every batch is solved again


def test_a_damaged_or_foreign_checkpoint_is_solved_again(tmp_path):
    split = tiny_split(np.random.default_rng(2))
    context, epoch = context_for(split)
    tasks = [BatchTask(0, np.arange(30)), BatchTask(1, np.arange(30, 60))]
    store = BatchStore(tmp_path, "run0")
    training.solve_batches(CountingExecutor(context), epoch, tasks, store=store)
    store.path(0, 0).write_bytes(b"not parquet")
    other = BatchStore(tmp_path, "run1")
    other.root.mkdir(parents=True)
    (other.root / "epoch-0").symlink_to(store.root / "epoch-0")  # run0's files under run1's key
    assert store.load(0, 0) is None and store.load(0, 1) is not None
    assert other.load(0, 1) is None


def test_a_cold_epoch_starts_every_batch_from_zero_inside_the_merged_networks_box():
    rng = np.random.default_rng(9)
    merged = random_network(rng, [4, 3, 2], 3)
    context = training.epoch_start(TrainConfig(dataset="heart", P=3, batch_start="zero"), merged, 2)
    assert context.start.equals(IntegerNetwork.zeros([4, 3, 2], 3))
    assert context.bounds.contains(merged)


def test_a_checkpoint_from_before_a_new_record_field_loads_with_the_fields_default(tmp_path):
    split = tiny_split(np.random.default_rng(3))
    store = BatchStore(tmp_path, "run0")
    (saved,) = training.solve_batches(CountingExecutor(context_for(split)[0]), context_for(split)[1],
                                      [BatchTask(0, np.arange(30))], store=store)
    path = store.path(0, 0)
    table = pq.read_table(path)
    record = json.loads(table.schema.metadata[RECORD_KEY])
    del record["worker_peak_rss_mb"]  # as written by intnet before the field existed
    pq.write_table(table.replace_schema_metadata({RECORD_KEY: json.dumps(record).encode()}), path)
    loaded = store.load(0, 0)
    assert loaded is not None and loaded.network.equals(saved.network)
    assert math.isnan(loaded.worker_peak_rss_mb) and saved.worker_peak_rss_mb > 0
