"""The Prefect flow ``train``: :func:`pipeline.training.train` with each of its steps run as a task,
so a run reads in the UI as the pipeline does in the code (per epoch: partition, solve batches,
merge, evaluate), logging to the run's logger, with a Markdown artifact of the epoch table. Call it
as a plain function (``train(config)``) or from a deployment; it returns a
:class:`~pipeline.reporting.TrainSummary`."""

# No `from __future__ import annotations` here: Prefect validates a deployment's parameters
# against the flow's signature, which needs TrainConfig itself, not the string "TrainConfig".
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline import reporting
from pipeline import training
from pipeline.config import TrainConfig


def as_task(name: str, function: Callable[..., Any], *args: Any, retry_safe: bool = False) -> Any:
    """Run one pipeline step as a Prefect task. Inputs are numpy arrays and networks: hashing them
    for Prefect's cache would cost more than recomputing, and a training step must not be skipped
    silently. Pure steps are retried; solving is not (a failed batch is reported and left out)."""
    step = task(function, name=name, cache_policy=NO_CACHE, persist_result=False,
                retries=2 if retry_safe else 0, retry_delay_seconds=1)
    return step(*args)


WATCHERS: list[training.RunObserver] = []
"""Observers of the flows run in this process beside the run's log (the CLI's terminal display):
a flow's parameters travel through Prefect's API, so an observer cannot be one."""


@contextmanager
def watched(observer: training.RunObserver):
    """Flows run in this block report to ``observer`` too."""
    WATCHERS.append(observer)
    try:
        yield observer
    finally:
        WATCHERS.remove(observer)


@flow(name="train", description="Train an integer network by MIP batch training and write it to Parquet.")
def train(config: TrainConfig) -> reporting.TrainSummary:
    observer = training.Observers(training.LogObserver(get_run_logger()), *WATCHERS)
    summary = training.train(config, run_step=as_task, observer=observer)
    create_markdown_artifact(
        key="train-epochs", markdown=reporting.epoch_table(summary.epochs, summary.best_epoch),
        description=f"intnet train: {config.dataset_name}, {config.formulation}, P = {config.P}",
    )
    return summary
