"""One batch solve end to end, in process: dead inputs pinned, acceptance on validation, records."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from formulations import IntegerNetwork
from pipeline.execution.executors import InProcessExecutor
from pipeline.solving.batches import BatchOptions, BatchTask, EpochStart, RunContext, solve_batch
from pipeline.solving.improve import SearchOptions
from pipeline.solving.solve import SolverOptions


def context(rng, dead_inputs="start", accept="validation", n=30) -> tuple[RunContext, EpochStart]:
    x = np.round(rng.random((n, 4)), 4)
    x[:, 3] = 0.0  # input 3 is zero in every example
    y = (x[:, 0] > x[:, 1]).astype(int)
    start = IntegerNetwork(
        (rng.integers(-2, 3, (3, 4)), rng.integers(-2, 3, (2, 3))), (rng.integers(-2, 3, 3), rng.integers(-2, 3, 2)), 2
    )
    run = RunContext(
        train_x=x, train_y=y, val_x=x, val_y=y, n_classes=2, hidden=(3,), P=2,
        batch=BatchOptions(formulation="sat_margin", accept=accept, dead_inputs=dead_inputs),
        solver=SolverOptions(time_limit=10, target_error=None),
    )
    return run, EpochStart(start)


@pytest.mark.parametrize("dead_inputs", ["start", "zero"])
def test_weights_of_dead_inputs_are_pinned(dead_inputs):
    ctx, epoch = context(np.random.default_rng(0), dead_inputs=dead_inputs, accept="objective")
    result = solve_batch(ctx, epoch, BatchTask(0, np.arange(30)))
    assert result.status in ("optimal", "time_limit", "target_reached")
    assert result.fixed_inputs == 1
    # The solving process's peak memory: at least what numpy, Pyomo and HiGHS take, in MB.
    assert 50 < result.worker_peak_rss_mb < 100_000
    expected = epoch.start.weights[0][:, 3] if dead_inputs == "start" else np.zeros(3)
    assert np.array_equal(result.network.weights[0][:, 3], expected)


def test_a_result_is_accepted_only_if_validation_does_not_drop():
    ctx, epoch = context(np.random.default_rng(1))
    result = solve_batch(ctx, epoch, BatchTask(0, np.arange(30)))
    assert result.objective <= result.start_objective
    if result.accepted:
        assert result.validation_accuracy >= result.start_validation_accuracy
        assert result.contributed_validation_accuracy == result.validation_accuracy
    else:
        assert result.network.equals(epoch.start)
        assert result.contributed_validation_accuracy == result.start_validation_accuracy


def test_a_failing_batch_is_a_record_not_a_crash():
    ctx, epoch = context(np.random.default_rng(2))
    executor = InProcessExecutor()
    executor.open(replace(ctx, batch=BatchOptions(formulation="no_such_model")))
    results = list(executor.run([epoch], [BatchTask(0, np.arange(10)), BatchTask(1, np.arange(10, 20))]))
    assert [r.status for r in results] == ["error", "error"]
    assert all(not r.ok and "no_such_model" in r.error for r in results)
    record = results[0].record()
    json.dumps(record)  # JSON-ready: NaN becomes null
    assert record["objective"] is None and record["seconds"] >= 0 and not math.isnan(record["started"])


def test_local_search_alone_and_after_the_monolithic_solve():
    ctx, epoch = context(np.random.default_rng(4), accept="objective", n=40)
    task = BatchTask(0, np.arange(40))
    alone = solve_batch(replace(ctx, solver=replace(ctx.solver, time_limit=0), search=SearchOptions(improve=4)), epoch, task)
    assert alone.status == "local_search" and alone.monolithic_objective == alone.start_objective
    assert alone.objective < alone.start_objective and alone.improving_steps >= 1
    both = solve_batch(replace(ctx, solver=replace(ctx.solver, time_limit=2), search=SearchOptions(improve=3)), epoch, task)
    assert both.objective <= both.monolithic_objective <= both.start_objective


def test_a_batch_whose_solve_returns_no_network_is_left_out_of_the_merge():
    """Two identical examples with different labels: no network fits them, so a hard model's batch
    reports it and contributes nothing (not even its start) to the merge."""
    ctx, epoch = context(np.random.default_rng(5))
    x = np.vstack([ctx.train_x[:1], ctx.train_x[:1]])
    hard = replace(ctx, train_x=x, train_y=np.array([0, 1]), batch=BatchOptions(formulation="min_weight"))
    result = solve_batch(hard, epoch, BatchTask(0, np.arange(2)))
    assert result.status == "infeasible" and "no network with this architecture" in result.message
    assert not result.ok and result.error is None


def test_a_portfolio_batch_is_local_search_from_several_starts_and_never_worse():
    """``--time-limit 0 --improve S --improve-starts 3``: the batch runs searches from its start and
    two straight-through networks; its objective, recomputed, is at most the start's."""
    ctx, epoch = context(np.random.default_rng(3), accept="objective")
    ctx = replace(ctx, solver=replace(ctx.solver, time_limit=0), search=SearchOptions(improve=6, improve_starts=3))
    result = solve_batch(ctx, epoch, BatchTask(0, np.arange(30)))
    assert result.status == "local_search", result.error
    assert result.objective <= result.start_objective
    assert result.improving_steps > 0
