"""The Prefect flow ``train``: :func:`pipeline.training.train` with each of its steps run as a task,
so a run reads in the UI as the pipeline does in the code (per epoch: partition, solve batches,
merge, evaluate), logging to the run's logger, with a Markdown artifact of the epoch table. Call it
as a plain function (``train(config)``) or from a deployment; it returns a
:class:`~pipeline.reporting.TrainSummary`."""

# No `from __future__ import annotations` here: Prefect validates a deployment's parameters
# against the flow's signature, which needs TrainConfig itself, not the string "TrainConfig".
import logging
import signal
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from flows import set_prefect_defaults

set_prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402  (after the defaults)
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows.policy import ServePolicy  # noqa: E402
from pipeline import reporting, training  # noqa: E402
from pipeline.config import TrainConfig  # noqa: E402

# The run's lines (and a long local search's progress) are INFO; Python's default level for a
# new logger is WARNING.
logging.getLogger("intnet").setLevel(logging.INFO)


class RunLogForwarder(logging.Handler):
    """Sends the ``intnet`` loggers' records (a long local search's progress) to the flow run's log
    while the flow runs. Not Prefect's PREFECT_LOGGING_EXTRA_LOGGERS: that gives the ``intnet``
    logger Prefect's handlers for the life of any process that imports Prefect, so every run in it
    afterwards, a plain one too, logged through them (to a stream long closed, in the tests: a
    'Logging error' traceback each line) and warned that it had no flow run to send to."""

    def __init__(self, run_logger) -> None:
        super().__init__()
        self.run_logger = run_logger

    def emit(self, record: logging.LogRecord) -> None:
        self.run_logger.log(record.levelno, record.getMessage())


@contextmanager
def forwarded_to(run_logger):
    handler = RunLogForwarder(run_logger)
    logger = logging.getLogger("intnet")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


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


KEPT_SIGTERM_HANDLERS: list[Any] = []
"""SIGTERM handlers the flows run in this process keep (the CLI's, which ends a run at once)."""


@contextmanager
def sigterm_handler_kept():
    """Flows run in this block put the process's SIGTERM handler back at their start. Prefect's
    flow engine replaces it for each flow run with one that raises an exception, which HiGHS
    catches when it solves in this process: SIGTERM failed one batch and the run went on to write
    its model (measured, before this)."""
    KEPT_SIGTERM_HANDLERS.append(signal.getsignal(signal.SIGTERM))
    try:
        yield
    finally:
        KEPT_SIGTERM_HANDLERS.pop()


@flow(name="train", description="Train an integer network by MIP batch training and write it to Parquet.")
def train(config: TrainConfig) -> reporting.TrainSummary:
    if KEPT_SIGTERM_HANDLERS:
        signal.signal(signal.SIGTERM, KEPT_SIGTERM_HANDLERS[-1])
    # A run that `intnet serve` started: the trigger's parameters are checked before anything
    # reads or writes a path (flows/policy.py).
    policy = ServePolicy.from_environment()
    if policy is not None:
        policy.check(config)
    run_logger = get_run_logger()
    observer = training.Observers(training.LogObserver(run_logger), *WATCHERS)
    with forwarded_to(run_logger):
        summary = training.train(config, run_step=as_task, observer=observer)
    create_markdown_artifact(
        key="train-epochs", markdown=reporting.epoch_table(summary.epochs, summary.best_epoch),
        description=f"intnet train: {config.dataset_name}, {config.formulation}, P = {config.P}",
    )
    return summary
