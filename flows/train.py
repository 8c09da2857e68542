"""The Prefect flow ``train``: one task per step of :mod:`pipeline.training`, so a run reads in the
UI as the pipeline does in the code. Call it as a plain function (``train(config)``) or from a
deployment; it returns a :class:`~pipeline.training.TrainSummary`."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import training
from pipeline.batches import BatchResult
from pipeline.config import TrainConfig

# Inputs are numpy arrays and networks: hashing them for Prefect's cache would cost more than
# recomputing, and a training step must not be skipped silently.
step = task(cache_policy=NO_CACHE, persist_result=False)


@step(name="load data")
def load_data(config: TrainConfig):
    return training.load_dataset(config)


@step(name="split")
def split(config: TrainConfig, dataset):
    return training.split_data(config, dataset)


@step(name="start network")
def start_network(config: TrainConfig, data_split, n_classes: int):
    return training.start_network(config, data_split, n_classes)


@step(name="partition")
def partition(config: TrainConfig, data_split):
    return training.make_tasks(config, data_split)


@step(name="solve batches")
def solve_batches(config: TrainConfig, context, tasks):
    logger = get_run_logger()

    def report(result: BatchResult, done: int, total: int) -> None:
        if result.message:
            logger.warning("batch #%d: %s", result.batch_id, result.message)
        if result.ok:
            logger.info(
                "batch %d/%d (#%d, %d examples): %s, objective %g (start %g), validation %.3f (start %.3f)%s, %.1f s",
                done, total, result.batch_id, result.size, result.status, result.objective,
                result.start_objective, result.validation_accuracy, result.start_validation_accuracy,
                "" if result.accepted else ", kept the start", result.seconds,
            )
        else:
            logger.error("batch %d/%d (#%d) failed: %s", done, total, result.batch_id, result.error)

    logger.info("solving %d batch MIPs (%s)", len(tasks), "Ray actors" if config.use_ray else "in process")
    return training.solve_batches(training.make_executor(config), context, tasks, on_result=report)


@step(name="merge")
def merge(config: TrainConfig, results, start):
    return training.merge_results(results, start, config.merge, neuron_vote=config.neuron_penalty is not None)


@step(name="write network")
def write(config: TrainConfig, dataset, network, summary):
    return training.save_network(config, dataset, network, summary)


@flow(name="train", description="Train an integer network by MIP batch training and write it to Parquet.")
def train(config: TrainConfig) -> training.TrainSummary:
    timings: dict[str, float] = {}
    began = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        return now

    t = began
    dataset = load_data(config)
    data_split = split(config, dataset)
    t = lap("data", t)
    start = start_network(config, data_split, len(dataset.classes))
    t = lap("start_network", t)
    tasks = partition(config, data_split)
    context = training.batch_context(config, data_split, len(dataset.classes), start)
    results = solve_batches(config, context, tasks)
    t = lap("solve", t)
    merged = merge(config, results, start)
    final, source = training.choose_final(merged, start, data_split)
    final = training.stored_network(config, final)
    t = lap("merge", t)
    summary = training.summarize(config, data_split, start, merged, final, source, results, timings)
    # The file's provenance records the time up to writing it; the summary returned adds the write.
    timings["total"] = time.perf_counter() - began
    path = write(config, dataset, final, summary)
    lap("write", t)
    timings["total"] = time.perf_counter() - began
    summary.model_path = str(path)
    return summary
