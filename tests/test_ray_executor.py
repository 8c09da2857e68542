"""The Ray executor's process settings, checked on real Ray workers."""

import os


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
    from pipeline.batches import BatchTask, EpochStart, RunContext, neighbourhood_step
    from pipeline.executors import InProcessExecutor
    from pipeline.improve import neighbourhoods
    from pipeline.ray_executor import RayExecutor
    from pipeline.solve import SolverOptions

    rng = np.random.default_rng(0)
    x = np.round(rng.random((80, 4)), 4)
    y = (x[:, 0] > x[:, 1]).astype(int)
    context = RunContext(train_x=x, train_y=y, val_x=x, val_y=y, n_classes=2, hidden=(3,), P=2,
                         formulation="correct_margin", solver=SolverOptions(time_limit=0, target_error=None),
                         improve_seconds=8)
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
    assert [found for _, found, *_ in on_actors] == [found for _, found, *_ in in_process.map(neighbourhood_step, steps)]
    assert result.status == "local_search" and result.error is None
    assert result.objective <= result.start_objective and result.improving_steps > 0
