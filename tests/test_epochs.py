"""Batch training's epochs and per-batch checkpoints: the pure steps, and resuming with real solves."""

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from networks import random_network

from formulations import IntegerNetwork
from pipeline import reporting, training
from pipeline.checkpoints import RECORD_KEY, BatchStore, run_key
from pipeline.config import TrainConfig
from pipeline.data.splits import Split
from pipeline.execution.executors import InProcessExecutor
from pipeline.networks.storage import network_table
from pipeline.solving.batches import BatchOptions, BatchTask, EpochStart, RunContext
from pipeline.solving.solve import SolverOptions


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
        return reporting.EpochRecord(epoch, None, 1, 0, 1, reporting.Accuracies(0.5, validation, None), 1.0)

    assert training.best_epoch([0.7, 0.8, 0.8, 0.6]) == 1
    table = reporting.epoch_table([record(0, 0.7), record(1, 0.8)], 1)
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

    def run(self, epochs, tasks):
        self.solved += [t.batch_id for t in tasks]
        yield from super().run(epochs, tasks)


def context_for(split, P=2):
    """The run's context, and an epoch starting from zeros."""
    run = RunContext(
        train_x=split.train_x, train_y=split.train_y, val_x=split.val_x, val_y=split.val_y, n_classes=2,
        hidden=(3,), P=P, batch=BatchOptions(formulation="sat_margin"),
        solver=SolverOptions(time_limit=5, target_error=None),
    )
    return run, EpochStart(IntegerNetwork.zeros([3, 3, 2], P))


def test_a_resumed_epoch_solves_only_the_batches_it_has_no_result_for(tmp_path):
    split = tiny_split(np.random.default_rng(1))
    context, epoch = context_for(split)
    tasks = training.make_tasks(TrainConfig(dataset="heart", batch_size=20), split, epoch=1)
    store = BatchStore(tmp_path, "run0")

    first = CountingExecutor(context)
    solved = training.solve_batches(first, context, [epoch], tasks, store=store)
    assert first.solved == [0, 1, 2] and all(r.ok for r in solved)
    store.path(1, 1).unlink()  # as if the run had been killed before batch 1 was written

    again = CountingExecutor(context)
    resumed = training.solve_batches(again, context, [epoch], tasks, store=store, resume=True)
    assert again.solved == [1]
    for before, after in zip(solved, resumed):
        assert after.batch_id == before.batch_id and after.epoch == 1
        assert after.network.equals(before.network)
    for i in (0, 2):  # taken from the store, record and all
        assert resumed[i].record() == solved[i].record()

    without = CountingExecutor(context)
    training.solve_batches(without, context, [epoch], tasks, store=store)
    assert without.solved == [0, 1, 2]  # without --resume every batch is solved again


def test_a_damaged_or_foreign_checkpoint_is_solved_again(tmp_path):
    split = tiny_split(np.random.default_rng(2))
    context, epoch = context_for(split)
    tasks = [BatchTask(0, np.arange(30)), BatchTask(1, np.arange(30, 60))]
    store = BatchStore(tmp_path, "run0")
    training.solve_batches(CountingExecutor(context), context, [epoch], tasks, store=store)
    store.path(0, 0).write_bytes(b"not parquet")
    other = BatchStore(tmp_path, "run1")
    other.root.mkdir(parents=True)
    (other.root / "epoch-0").symlink_to(store.root / "epoch-0")  # run0's files under run1's key
    with pytest.warns(UserWarning, match="not a Parquet file"):
        assert store.load(tasks[0], context, epoch) is None
    assert store.load(tasks[1], context, epoch) is not None
    with pytest.warns(UserWarning, match="'run' is 'run0', this run's batch has 'run1'"):
        assert other.load(tasks[1], context, epoch) is None


def test_a_cold_epoch_starts_every_batch_from_zero_inside_the_merged_networks_box():
    rng = np.random.default_rng(9)
    merged = random_network(rng, [4, 3, 2], 3)
    context = training.epoch_start(TrainConfig(dataset="heart", P=3, batch_start="zero"), merged, 2)
    assert context.start.equals(IntegerNetwork.zeros([4, 3, 2], 3))
    assert context.bounds.contains(merged)


def test_a_checkpoint_from_before_a_new_record_field_loads_with_the_fields_default(tmp_path):
    split = tiny_split(np.random.default_rng(3))
    store = BatchStore(tmp_path, "run0")
    task, (context, epoch) = BatchTask(0, np.arange(30)), context_for(split)
    (saved,) = training.solve_batches(CountingExecutor(context), context, [epoch], [task], store=store)
    path = store.path(0, 0)
    table = pq.read_table(path)
    record = json.loads(table.schema.metadata[RECORD_KEY])
    del record["worker_peak_rss_mb"]  # as written by intnet before the field existed
    pq.write_table(table.replace_schema_metadata({RECORD_KEY: json.dumps(record).encode()}), path)
    loaded = store.load(task, context, epoch)
    assert loaded is not None and loaded.network.equals(saved.network)
    assert math.isnan(loaded.worker_peak_rss_mb) and saved.worker_peak_rss_mb > 0


# --- a stored result is checked against the run, not trusted (issue 17, items 5 and 6) ---------


def test_the_run_key_follows_the_data_files_content_not_only_its_path(tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("x,y\n1,a\n2,b\n")
    config = TrainConfig(data=data, label="y")
    before = run_key(config)
    data.write_text("x,y\n1,a\n3,b\n")  # edited in place: same path, same size
    assert run_key(config) != before
    data.write_text("x,y\n1,a\n2,b\n")
    assert run_key(config) == before


@pytest.fixture(scope="module")
def solved_run(tmp_path_factory):
    """Two batches solved and stored once, one of which kept a solved network; tests tamper with copies."""
    root = tmp_path_factory.mktemp("runs")
    context, epoch = context_for(tiny_split(np.random.default_rng(5)))
    tasks = [BatchTask(0, np.arange(30)), BatchTask(1, np.arange(30, 60))]
    results = training.solve_batches(CountingExecutor(context), context, [epoch], tasks, store=BatchStore(root, "run0"))
    assert any(not r.network.equals(epoch.start) for r in results)
    return BatchStore(root, "run0"), (context, epoch), tasks, results


def tampered_store(tmp_path, solved_run, batch_id, change):
    """A copy of the stored run with batch ``batch_id``'s file rewritten as ``change(table, record)`` returns."""
    original, *_ = solved_run
    table = pq.read_table(original.path(0, batch_id))
    table, record = change(table, json.loads(table.schema.metadata[RECORD_KEY]))
    store = BatchStore(tmp_path, "run0")
    store.path(0, batch_id).parent.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata({RECORD_KEY: json.dumps(record).encode()}), store.path(0, batch_id))
    return store


def with_record(**changes):
    return lambda table, record: (table, record | changes)


def without(field):
    return lambda table, record: (table, {k: v for k, v in record.items() if k != field})


def with_weights(change):
    def rewrite(table, record):
        weights = table.column("weight").to_pylist()
        change(weights)
        return table.set_column(3, "weight", pa.array(weights, pa.list_(pa.int8()))), record
    return rewrite


def with_network(network):
    return lambda table, record: (network_table(network), record)


def huge_first_layer(table, record):
    n_in = 5_000_001
    weights = pa.ListArray.from_arrays(pa.array([0, 2 * n_in], pa.int32()), pa.array(np.zeros(2 * n_in, np.int8)))
    huge = pa.table({"layer": pa.array([0], pa.int32()), "in_features": pa.array([n_in], pa.int32()),
                     "out_features": pa.array([2], pa.int32()), "weight": weights,
                     "bias": pa.array([[0, 0]], pa.list_(pa.int8()))})
    return huge, record


@pytest.mark.parametrize(
    "change,message",
    [
        (with_weights(lambda w: w[0].pop()), "layer 0 should hold 3×3 weights"),
        (with_weights(lambda w: w[0].__setitem__(0, 3)), r"outside \[-2, 2\]"),
        (with_network(IntegerNetwork.zeros([3, 4, 2], 2)), "a 3-4-2 network, this run trains 3-3-2"),
        (huge_first_layer, "at most 10,000,000"),
        (with_record(objective="low"), "'objective' should be float"),
        (with_record(accepted="yes"), "'accepted' should be bool"),
        (without("status"), "has no 'status'"),
        (with_record(batch_id=99), "'batch_id' is 99, this run's batch has 0"),
        (with_record(size=-5), "'size' should be int, got -5"),
        (with_record(size=29), "'size' is 29, this run's batch has 30"),
        (with_record(epoch=1), "'epoch' is 1"),
        (with_record(P=3), "'P' is 3"),
        (lambda table, record: (table, [record]), "not a JSON object"),
    ],
)
def test_a_checkpoint_that_does_not_fit_the_run_is_reported_and_solved_again(tmp_path, solved_run, change, message):
    _, (context, epoch), tasks, _ = solved_run
    store = tampered_store(tmp_path, solved_run, 0, change)
    with pytest.warns(UserWarning, match=message):
        assert store.load(tasks[0], context, epoch) is None
    again = CountingExecutor(context)
    with pytest.warns(UserWarning, match=message):
        training.solve_batches(again, context, [epoch], tasks[:1], store=store, resume=True)
    assert again.solved == [0]


def test_a_solved_network_stored_as_not_accepted_is_refused(tmp_path, solved_run):
    _, (context, epoch), tasks, results = solved_run
    solved = next(r for r in results if not r.network.equals(epoch.start))
    store = tampered_store(tmp_path, solved_run, solved.batch_id, with_record(accepted=False))
    with pytest.warns(UserWarning, match="kept its start stores another network"):
        assert store.load(tasks[solved.batch_id], context, epoch) is None


def test_the_merge_weight_of_a_stored_batch_is_computed_not_read(tmp_path, solved_run):
    _, (context, epoch), tasks, results = solved_run
    for result in results:
        store = tampered_store(tmp_path / str(result.batch_id), solved_run, result.batch_id,
                               with_record(validation_accuracy=0.125, start_validation_accuracy=0.875))
        loaded = store.load(tasks[result.batch_id], context, epoch)
        assert loaded.contributed_validation_accuracy == result.contributed_validation_accuracy
        assert loaded.contributed_validation_accuracy == loaded.network.accuracy(context.val_x, context.val_y)
        assert loaded.start_validation_accuracy == result.start_validation_accuracy
