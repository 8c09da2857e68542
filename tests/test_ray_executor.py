"""The Ray executor on real Ray workers: their process settings, local search on the actors, and
the example weights the actors count."""

import os

import pytest


def test_ray_workers_run_at_the_drivers_priority(ray_session):
    # Ray's default worker niceness (15) starves the solving actors beside any busy process.
    @ray_session.remote
    def niceness() -> int:
        return os.nice(0)

    assert ray_session.get(niceness.remote()) == os.nice(0)


def test_one_batch_of_local_search_solves_its_neighbourhoods_on_the_actors(ray_session):
    """`--time-limit 0 --improve S --workers 2` with one batch: this process runs the search and
    the two actors solve neighbourhoods side by side; each one's answer is what the same step gives
    in process, and the batch ends no worse than its start."""
    from dataclasses import replace

    import numpy as np

    from formulations import IntegerNetwork
    from pipeline.execution.executors import InProcessExecutor
    from pipeline.execution.ray_executor import RayExecutor
    from pipeline.solving.batches import BatchOptions, BatchTask, EpochStart, RunContext, neighbourhood_step
    from pipeline.solving.improve import SearchOptions, neighbourhoods
    from pipeline.solving.solve import SolverOptions

    rng = np.random.default_rng(0)
    x = np.round(rng.random((80, 4)), 4)
    y = (x[:, 0] > x[:, 1]).astype(int)
    context = RunContext(train_x=x, train_y=y, val_x=x, val_y=y, n_classes=2, hidden=(3,), P=2,
                         batch=BatchOptions(formulation="correct_margin"),
                         solver=SolverOptions(time_limit=0, target_error=None), search=SearchOptions(improve=8))
    start = IntegerNetwork((rng.integers(-2, 3, (3, 4)), rng.integers(-2, 3, (2, 3))),
                           (rng.integers(-2, 3, 3), rng.integers(-2, 3, 2)), 2)
    epoch, task = EpochStart(start), BatchTask(0, np.arange(80))
    options = replace(context.solver, time_limit=10, mip_gap=0.0)
    objective = 1e9
    steps = [(epoch, task, start, objective, area, options) for area in neighbourhoods([4, 3, 2])[:4]]
    executor = RayExecutor(workers=2, threads=1)
    executor.open(context)
    try:
        on_actors = executor.map(neighbourhood_step, steps)
        (result,) = list(executor.run([epoch], [task]))
    finally:
        executor.close()
    in_process = InProcessExecutor()
    in_process.open(context)
    assert [step.objective for step in on_actors] == [step.objective for step in in_process.map(neighbourhood_step, steps)]
    assert result.status == "local_search" and result.error is None
    assert result.objective <= result.start_objective and result.improving_steps > 0


TWO_RUNS = """
from pipeline import training
from pipeline.config import TrainConfig
for seed in (0, 1):
    summary = training.train(TrainConfig(dataset="heart", train_size=80, batch_size=40, epochs=1, P=1, hidden=(3,),
                                         time_limit=2, workers=2, seed=seed), persist=False)
    assert all(b.error is None for b in summary.batches), [b.error for b in summary.batches]
    print("run", seed, len({b.worker for b in summary.batches}))
"""


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_process_runs_one_ray_run_after_another():
    """Each run starts its own Ray and stops it; the next one in the same process (a notebook's next
    fit, a benchmark's next row) must start again (it once failed: a new token per start)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TWO_RUNS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("run")] == ["run 0 2", "run 1 2"]


def test_batches_solved_on_ray_actors_count_the_class_weights(ray_session):
    """Two batches on two actors, class 1 weighing 3: each batch's objective (max_correct, solved to
    optimality) is the weighted count of the batch's rows that its integer network gets wrong,
    recomputed here, and differs from the unweighted run's: the weights reached the actors."""
    import numpy as np

    from pipeline import training
    from pipeline.config import TrainConfig
    from pipeline.data.datasets import dataset_from_arrays

    # A contested point where 40 rows say class 0 and 20 say class 1, beside two clear ones.
    x = np.array([[0.9, 0.1]] * 60 + [[0.9, 0.9]] * 40 + [[0.1, 0.1]] * 40)
    y = np.array([0] * 40 + [1] * 20 + [1] * 40 + [0] * 40)
    dataset, _ = dataset_from_arrays(x, y)
    objectives = {}
    for class_weight in ({"1": 3.0}, None):
        config = TrainConfig(formulation="max_correct", P=1, hidden=(2,), time_limit=60, target_error=None,
                             accept="objective", class_weight=class_weight, test_size=0, batch_size=60, epochs=1,
                             workers=2, executor="ray")
        summary = training.train(config, data=dataset, persist=False)
        split = training.class_weighted(config, training.split_data(config, dataset), dataset.classes)
        tasks = {task.batch_id: task.indices for task in training.make_tasks(config, split)}
        weights = np.ones(len(split.train_y)) if split.train_weights is None else split.train_weights
        assert len(summary.batches) == len(tasks) == 2 and len({batch.worker for batch in summary.batches}) == 2
        for batch in summary.batches:
            assert batch.status == "optimal" and batch.node, batch
            rows = tasks[batch.batch_id]
            wrong = np.argmax(batch.network.output(split.train_x[rows]), axis=1) != split.train_y[rows]
            assert batch.objective == wrong @ weights[rows]
        objectives[class_weight is None] = sorted(batch.objective for batch in summary.batches)
    assert objectives[False] != objectives[True], objectives
