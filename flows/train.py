"""The Prefect flow ``train``: one task per step of :mod:`pipeline.training`, so a run reads in the
UI as the pipeline does in the code (per epoch: partition, solve batches, merge, evaluate), with
a Markdown artifact of the epoch table. Call it as a plain function (``train(config)``) or from a
deployment; it returns a :class:`~pipeline.training.TrainSummary`."""

# No `from __future__ import annotations` here: Prefect validates a deployment's parameters
# against the flow's signature, which needs TrainConfig itself, not the string "TrainConfig".
import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline import training
from pipeline.batches import BatchResult
from pipeline.checkpoints import BatchStore, run_key
from pipeline.config import TrainConfig

# Inputs are numpy arrays and networks: hashing them for Prefect's cache would cost more than
# recomputing, and a training step must not be skipped silently.
step = task(cache_policy=NO_CACHE, persist_result=False)
# Pure steps over values in memory: running one again gives the same answer, so a retry is safe.
# (Solving is not retried here: a failed batch is already reported and left out of the merge.)
safe_step = task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=1)


@safe_step(name="load data")
def load_data(config: TrainConfig):
    return training.load_dataset(config)


@safe_step(name="split")
def split(config: TrainConfig, dataset):
    return training.split_data(config, dataset)


@step(name="start network")
def start_network(config: TrainConfig, data_split, n_classes: int):
    return training.start_network(config, data_split, n_classes)


@safe_step(name="partition")
def partition(config: TrainConfig, data_split, epoch: int):
    return training.make_tasks(config, data_split, epoch)


@step(name="solve batches")
def solve_batches(config: TrainConfig, context, tasks, store: BatchStore):
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

    epoch = tasks[0].epoch
    logger.info("epoch %d/%d: solving %d batch MIPs (%s)", epoch + 1, config.n_epochs, len(tasks),
                "Ray actors" if config.use_ray else "in process")
    return training.solve_batches(training.make_executor(config), context, tasks, on_result=report,
                                  store=store, resume=config.resume)


@safe_step(name="merge")
def merge(config: TrainConfig, results, start):
    return training.merge_results(results, start, config.merge, neuron_vote=config.neuron_penalty is not None)


@safe_step(name="evaluate")
def evaluate_epoch(config: TrainConfig, epoch: int, results, merged, data_split, seconds: float):
    record = training.epoch_record(epoch, config.P, results, merged, data_split, seconds)
    get_run_logger().info(
        "epoch %d/%d merged: train %.3f, validation %.3f", epoch + 1, config.n_epochs,
        record.merged.train, record.merged.validation,
    )
    return record


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
    store = BatchStore(config.checkpoints, run_key(config))
    context = training.batch_context(config, data_split, len(dataset.classes), start)
    merged, results, records, networks = start, [], [], []
    for epoch in range(config.n_epochs):
        epoch_began = time.perf_counter()
        tasks = partition(config, data_split, epoch)
        epoch_results = solve_batches(config, training.epoch_context(context, merged, epoch, config.batch_start), tasks, store)
        merged = merge(config, epoch_results, merged)
        records.append(evaluate_epoch(config, epoch, epoch_results, merged, data_split,
                                      time.perf_counter() - epoch_began))
        results += epoch_results
        networks.append(merged)
    t = lap("solve", t)
    best = training.best_epoch(records)
    final, source = training.choose_final(networks[best], start, data_split)
    final = training.stored_network(config, final)
    create_markdown_artifact(
        key="train-epochs", markdown=training.epoch_table(records, best),
        description=f"intnet train: {config.dataset_name}, {config.formulation}, P = {config.P}",
    )
    t = lap("merge", t)
    summary = training.summarize(config, data_split, start, networks[best], final, source, results, timings,
                                 records, best)
    # The file's provenance records the time up to writing it; the summary returned adds the write.
    timings["total"] = time.perf_counter() - began
    path = write(config, dataset, final, summary)
    lap("write", t)
    timings["total"] = time.perf_counter() - began
    summary.model_path = str(path)
    return summary
