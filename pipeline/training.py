"""A training run, as one function (:func:`train`) and the steps it is made of, in the order data
flows through them:

dataset -> split -> start network -> epochs of (batches -> solves -> merge) -> final network -> file.

An epoch (batch training, docs/method.md §7) reshuffles the training set into batches, solves every
batch from the network merged so far inside a box around it, and merges the batch networks; the box
shrinks by one per epoch, and the epoch whose merged network is best on validation is kept.

With neuron optimisation (``--neuron-penalty``) the merge also votes on the batches' neurons, and
the final network's switched-off neurons are stripped before it is stored.

Nothing here imports Prefect or Ray. The Prefect flow (``flows/train.py``) calls :func:`train` with
a step runner that makes each step a task; the CLI, the scikit-learn estimator (``intnet``),
benchmarks and tests call it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from formulations import IntegerNetwork, ParameterBounds, TrainingProblem
from formulations.models import Formulation
from formulations.network import layered_size_bits, strip_neurons, within_budget
from pipeline.checkpoints import BatchStore, run_key
from pipeline.config import AUTO_ARCHITECTURE, TrainConfig
from pipeline.data.datasets import Dataset, load_builtin, load_file, with_test_file, without_columns
from pipeline.data.splits import Split, split_dataset, stratified_batches
from pipeline.errors import DataError, IntnetError
from pipeline.execution.base import Executor
from pipeline.execution.executors import make_executor
from pipeline.networks.calibration import Calibration, fit_calibration_on_splits
from pipeline.networks.ensembles import Ensemble, EnsembleKind, Member, ensemble_kind, make_members, member_labels
from pipeline.networks.storage import check_folder_creatable, check_output_file
from pipeline.reporting import (
    ArchitectureTrial,
    EpochRecord,
    MemberRecord,
    TrainSummary,
    epoch_record,
    member_accuracies,
    save_network,
    summarize,
)
from pipeline.solving.batches import BatchOptions, BatchResult, BatchTask, EpochStart, RunContext
from pipeline.solving.blas import capped_blas
from pipeline.solving.compress import KeptSplit, compress, compression_report
from pipeline.solving.guarantees import Guarantees, balancing_weights, repair_start, resolve
from pipeline.solving.heuristic import SteSettings, train_ste, train_ste_within
from pipeline.solving.improve import SearchOptions
from pipeline.solving.merge import BATCH_STARTS, MERGE_RULES, epoch_bounds, keep_voted_neurons
from pipeline.solving.solve import START_MEETS_TARGET, SolverOptions, SolveStatus
from pipeline.solving.sparse_start import sparse_linear_network


def load_dataset(config: TrainConfig) -> Dataset:
    """The run's data: a built-in dataset or the user's file, with the user's test file if given."""
    if config.dataset is not None:
        dataset = without_columns(load_builtin(config.dataset), config.exclude)
    elif config.data is not None:
        dataset = load_file(config.data, config.label, config.exclude)
    else:
        raise DataError("give either --dataset NAME or --data FILE --label COLUMN")
    return dataset if config.test_data is None else with_test_file(dataset, config.test_data)


def class_weighted(config: TrainConfig, split: Split, classes: tuple[str, ...]) -> Split:
    """``split`` with each example's weight its own (the estimator's ``sample_weight``) times its
    class's ``--class-weight`` (``balanced``: n / (classes · the class's count), scikit-learn's rule,
    counted on the training split: the rows a run trains on, not the test rows or those that
    ``--train-size`` and ``--per-class`` leave out)."""
    if config.class_weight is None:
        return split
    if config.class_weight == "balanced":
        counts = np.bincount(split.train_y, minlength=len(classes))
        per_class = len(split.train_y) / (len(classes) * np.maximum(counts, 1))
    else:
        unknown = sorted(set(config.class_weight) - set(classes))
        if unknown:
            raise DataError(f"--class-weight names {', '.join(map(repr, unknown))}, not a class of the data "
                            f"({', '.join(classes)})")
        per_class = np.array([config.class_weight.get(name, 1.0) for name in classes])

    def times(y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        return per_class[y] * (1.0 if weights is None else weights)

    return replace(split, train_weights=times(split.train_y, split.train_weights),
                   val_weights=times(split.val_y, split.val_weights))


def split_data(config: TrainConfig, dataset: Dataset) -> Split:
    return split_dataset(
        dataset, train_size=config.train_size, per_class=config.per_class, seed=config.seed,
        validation_size=config.validation_size, test_fraction=config.test_size,
    )


def start_network(config: TrainConfig, split: Split, n_classes: int, member: Member | None = None) -> IntegerNetwork:
    """The shared start of every batch (of ``member``'s, in an ensemble): a straight-through-
    estimator network trained on the member's training examples, judged on its validation examples
    (cheap, and a shared start is what makes the batches' hidden neurons correspond when their
    weights are averaged; within a size budget, pruned and retrained), or the all-zero network when
    ``heuristic_steps`` is 0. Without a hidden layer, the sparse integer scoring system of
    :mod:`pipeline.solving.sparse_start` (within the budget, if any)."""
    member = member or whole_training_set(config, split, n_classes)
    outputs = len(member.classes)
    if config.heuristic_steps == 0:
        return IntegerNetwork.zeros([split.train_x.shape[1], *config.hidden, outputs], config.P)
    mine = np.isin(split.val_y, member.classes)
    x, y = split.train_x[member.indices], member_labels(split.train_y[member.indices], member.classes)
    weights = None if split.train_weights is None else split.train_weights[member.indices]
    x_val, y_val = split.val_x[mine], member_labels(split.val_y[mine], member.classes)
    val_weights = None if split.val_weights is None else split.val_weights[mine]
    settings = SteSettings(steps=config.heuristic_steps)
    if not config.hidden:
        return sparse_linear_network(x, y, outputs, config.P, config.max_nonzero, x_val=x_val, y_val=y_val,
                                     seed=member.seed, time_limit=config.start_seconds, sample_weight=weights,
                                     validation_weight=val_weights)
    if config.max_nonzero is not None:
        return train_ste_within(x, y, outputs, config.hidden, config.P, config.max_nonzero, seed=member.seed,
                                settings=settings, x_val=x_val, y_val=y_val, sample_weight=weights,
                                validation_weight=val_weights)
    return train_ste(x, y, outputs, config.hidden, config.P, seed=member.seed, settings=settings,
                     x_val=x_val, y_val=y_val, sample_weight=weights, validation_weight=val_weights)


def whole_training_set(config: TrainConfig, split: Split, n_classes: int) -> Member:
    """The one member of a run that trains a single network."""
    return Member(np.arange(len(split.train_y)), tuple(range(n_classes)), config.seed)


def make_tasks(config: TrainConfig, split: Split, epoch: int = 0, members: list[Member] | None = None) -> list[BatchTask]:
    """The batches of ``epoch`` for every member (one member, the whole training set, if none are
    given), numbered across members: a fresh stratified partition of the member's examples every
    epoch, seeded by the member's seed + epoch."""
    members = members or [Member(np.arange(len(split.train_y)), (), config.seed)]
    tasks: list[BatchTask] = []
    for m, member in enumerate(members):
        n = len(member.indices)
        if config.batch_size is None or config.batch_size >= n:
            parts = [np.arange(n)]
        else:
            parts = stratified_batches(split.train_y[member.indices], config.batch_size, member.seed + epoch)
        tasks += [BatchTask(len(tasks) + i, member.indices[part], epoch, m) for i, part in enumerate(parts)]
    return tasks


def epoch_radius(P: int, epoch: int) -> int | None:
    """Half-width of the box around the merged network in ``epoch``: none in epoch 0 (the full
    [−P, P]), then P, P − 1, ... as the paper (its box after epoch e is θ̄ ± (P − e)), never below
    1 so that epochs beyond P + 1 still search."""
    return None if epoch == 0 else max(1, P - epoch + 1)


def epoch_start(config: TrainConfig, merged: IntegerNetwork, epoch: int) -> EpochStart:
    """What every batch of ``epoch`` starts from (``--batch-start``: the merged network, or the
    all-zero network as the paper's cold-started batches), inside the epoch's box around the merged
    network (a start outside it is moved to its nearest point)."""
    radius = epoch_radius(config.P, epoch)
    return EpochStart(start=BATCH_STARTS[config.batch_start](merged),
                      bounds=None if radius is None else epoch_bounds(merged, radius))


def run_context(config: TrainConfig, split: Split, n_classes: int, members: list[Member] | None = None,
                guarantees: Guarantees | None = None) -> RunContext:
    partial = [member.classes for member in members or ()]
    return RunContext(
        train_x=split.train_x, train_y=split.train_y, val_x=split.val_x, val_y=split.val_y,
        n_classes=n_classes, hidden=config.hidden, P=config.P, seed=config.seed, max_nonzero=config.max_nonzero,
        guarantees=guarantees or Guarantees(),
        batch=config.options(BatchOptions), solver=config.options(SolverOptions), search=config.options(SearchOptions),
        member_classes=tuple(partial) if any(len(c) != n_classes for c in partial) else (),
        train_weights=split.train_weights, val_weights=split.val_weights,
    )


@contextmanager
def opened(executor: Executor, context: RunContext):
    """The executor, holding the run's context from the first epoch to the last; closed however
    the run ends."""
    executor.open(context)
    try:
        yield executor
    finally:
        executor.close()


def solve_batches(
    executor: Executor, context: RunContext, epochs: list[EpochStart], tasks: list[BatchTask],
    on_result: Callable[[BatchResult, int, int], None] | None = None,
    store: BatchStore | None = None, resume: bool = False,
) -> list[BatchResult]:
    """Run every batch on an executor opened with ``context``, each from its member's start
    ``epochs[task.member]``; ``on_result(result, done, total)`` is called as each one finishes.
    Every solved batch is saved to ``store``; with ``resume`` a batch already stored there (and
    checked against ``context`` and its epoch start) is taken from it instead of solved again."""
    results = []

    def finished(result: BatchResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result, len(results), len(tasks))

    missing = []
    for task in tasks:
        stored = store.load(task, context, epochs[task.member]) if store is not None and resume else None
        if stored is None:
            missing.append(task)
        else:
            finished(stored)
    for result in executor.run(epochs, missing) if missing else ():
        if store is not None:
            store.save(result.epoch, result)
        finished(result)
    return sorted(results, key=lambda r: r.batch_id)


def merge_results(
    results: Iterable[BatchResult], start: IntegerNetwork, rule: str = "weighted_mean", neuron_vote: bool = False,
    max_nonzero: int | None = None,
) -> IntegerNetwork:
    """Merge the networks of the batches that produced one by ``rule`` (pipeline.solving.merge), each
    scored by its validation accuracy; ``start`` (the epoch's) when no batch produced a network. With
    ``neuron_vote`` (batches that optimised their neurons) a neuron is kept only where the batches'
    validation-weighted vote keeps it, except under ``best``, which takes one batch's network whole.
    Networks within a size budget can merge into one over it (their non-zero parameters differ): the
    merged network keeps its ``max_nonzero`` largest |θ| (:func:`~formulations.network.within_budget`)."""
    usable = [r for r in results if r.ok]
    if not usable:
        return start
    networks, scores = [r.network for r in usable], [r.contributed_validation_accuracy for r in usable]
    merged = MERGE_RULES[rule](networks, scores)
    if neuron_vote and rule != "best":
        merged = keep_voted_neurons(merged, networks, scores)
    return within_budget(merged, max_nonzero)


def merge_members(
    results: list[BatchResult], merged: list[IntegerNetwork], rule: str, neuron_vote: bool,
    max_nonzero: int | None = None,
) -> list[IntegerNetwork]:
    """Every member's batches merged into the member's network (:func:`merge_results`)."""
    return [merge_results([r for r in results if r.member == m], network, rule, neuron_vote, max_nonzero)
            for m, network in enumerate(merged)]


def best_epoch(validation: list[float]) -> int:
    """Index of the epoch whose merged network is best on validation (the earliest of equals)."""
    return max(range(len(validation)), key=lambda i: (validation[i], -i))


def failures(context: RunContext, network: IntegerNetwork, split: Split) -> list[str]:
    """The guarantees ``network`` breaks on the whole training split, recounted from its
    predictions (none when the run has none)."""
    if not context.guarantees.any:
        return []
    return context.guarantees.failures(network, split.train_x, split.train_y, np.arange(len(split.train_y)))


def choose_final(
    merged: IntegerNetwork, start: IntegerNetwork, validation: Callable[[IntegerNetwork], float]
) -> tuple[IntegerNetwork, str]:
    """The merged network, unless it is worse than the start on validation accuracy (the same rule
    a batch's solution passes before it replaces its start). The source says ``start`` whenever the
    network kept is the start itself, so a user sees at a glance whether the MIP changed anything."""
    if merged.equals(start) or validation(merged) < validation(start):
        return start, "start"
    return merged, "merged"


def calibrated(model: Ensemble, split: Split) -> Calibration:
    """How ``model``'s scores become probabilities, fitted on the validation split (on the training
    split when there is none)."""
    return fit_calibration_on_splits(model, (split.val_x, split.val_y), (split.train_x, split.train_y))


def stored_network(config: TrainConfig, network: IntegerNetwork) -> IntegerNetwork:
    """The network to store: with neuron optimisation its switched-off neurons stripped (the same
    function with smaller layers, :func:`~formulations.network.strip_neurons`), else as it is."""
    return network if config.neuron_penalty is None else strip_neurons(network)


def compress_final(config: TrainConfig, split: Split, network: IntegerNetwork,
                   context: RunContext) -> tuple[IntegerNetwork, dict]:
    """``--compress``: the final network compressed on the ``--keep`` split, and the report; a move
    that breaks one of the run's guarantees on the training split is not taken."""
    x, y = (split.train_x, split.train_y) if config.keep == KeptSplit.TRAIN else (split.val_x, split.val_y)
    outcome = compress(network, x, y, network.sizes[-1], config.compress, config.options(SolverOptions),
                       tolerance=config.tolerance, improve_step_limit=config.improve_step_limit,
                       max_nonzero=config.max_nonzero,
                       admits=lambda candidate: not failures(context, candidate, split))
    return outcome.network, compression_report(outcome, config.keep, config.tolerance)


# --- the run --------------------------------------------------------------------------------

T = TypeVar("T")


class StepRunner(Protocol):
    """Runs one step of :func:`train`: ``runner(name, function, *args, retry_safe=...)`` returns
    ``function(*args)``. ``retry_safe`` marks pure steps over values in memory, which may be run
    again after a failure; solving is not (a failed batch is already reported and left out)."""

    def __call__(self, name: str, function: Callable[..., T], *args: Any, retry_safe: bool = False) -> T: ...


def run_directly(name: str, function: Callable[..., T], *args: Any, retry_safe: bool = False) -> T:
    return function(*args)


class RunObserver(Protocol):
    """What a run reports as it goes. Epochs are numbered from 0 everywhere, as in the JSON."""

    def epoch_started(self, epoch: int, n_epochs: int, n_batches: int, where: str) -> None: ...

    def batch_finished(self, result: BatchResult, done: int, total: int) -> None: ...

    def epoch_finished(self, record: EpochRecord) -> None: ...

    def architecture_tried(self, trial: ArchitectureTrial) -> None: ...


class LogObserver:
    """Reports to ``logger`` (the ``intnet`` logger unless given one, e.g. Prefect's run logger)."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter | None = None):
        self.logger = logger or logging.getLogger("intnet")

    def epoch_started(self, epoch: int, n_epochs: int, n_batches: int, where: str) -> None:
        self.logger.info("epoch %d (of epochs 0-%d): solving %d batch MIP(s) %s", epoch, n_epochs - 1, n_batches, where)

    def batch_finished(self, result: BatchResult, done: int, total: int) -> None:
        if result.message:
            # A start at the target already is the ordinary case of an easy batch, not a warning.
            level = logging.INFO if result.message == START_MEETS_TARGET else logging.WARNING
            self.logger.log(level, "batch #%d (member %d): %s", result.batch_id, result.member, result.message)
        if result.ok:
            self.logger.info(
                "batch %d/%d (#%d, member %d, %d examples): %s, objective %g (start %g), validation %.3f "
                "(start %.3f)%s, %d local-search steps improved, %.1f s",
                done, total, result.batch_id, result.member, result.size, result.status, result.objective,
                result.start_objective, result.validation_accuracy, result.start_validation_accuracy,
                "" if result.accepted else ", kept the start", result.improving_steps, result.seconds,
            )
        else:
            self.logger.error("batch %d/%d (#%d, member %d) failed: %s", done, total, result.batch_id,
                              result.member, result.error)

    def epoch_finished(self, record: EpochRecord) -> None:
        self.logger.info("epoch %d merged: train %.3f, validation %.3f", record.epoch, record.merged.train,
                         record.merged.validation)

    def architecture_tried(self, trial: ArchitectureTrial) -> None:
        self.logger.info("architecture %s: validation %.4f, %d non-zero parameters, %.1f s", trial.name,
                         trial.validation, trial.nonzero_parameters, trial.seconds)


class Observers:
    """Several observers as one."""

    def __init__(self, *observers: RunObserver):
        self.observers = observers

    def epoch_started(self, epoch: int, n_epochs: int, n_batches: int, where: str) -> None:
        for observer in self.observers:
            observer.epoch_started(epoch, n_epochs, n_batches, where)

    def batch_finished(self, result: BatchResult, done: int, total: int) -> None:
        for observer in self.observers:
            observer.batch_finished(result, done, total)

    def epoch_finished(self, record: EpochRecord) -> None:
        for observer in self.observers:
            observer.epoch_finished(record)

    def architecture_tried(self, trial: ArchitectureTrial) -> None:
        for observer in self.observers:
            observer.architecture_tried(trial)


def check_outputs(config: TrainConfig) -> None:
    """Fail before any work when the run could not write its results at the end, or its batches'
    checkpoints on the way."""
    check_output_file(config.out, "model.parquet")
    checkpoints = Path(config.checkpoints).absolute()
    check_folder_creatable(checkpoints, f"--checkpoints {config.checkpoints}")
    checkpoints, out = checkpoints.resolve(), Path(config.out).resolve()
    if checkpoints == out or out in checkpoints.parents:
        raise DataError(f"--checkpoints {config.checkpoints} is --out {config.out} or inside it, which must be a file; "
                        "choose another folder for the checkpoints")
    # Only a folder that exists can hold something in the way; --hidden auto's trials store nothing.
    if checkpoints.is_dir() and config.hidden != AUTO_ARCHITECTURE:
        BatchStore(config.checkpoints, run_key(config)).check_writable()


@dataclass(frozen=True)
class Prepared:
    """A run up to its first epoch: what benchmarks of single solves start from, too."""

    dataset: Dataset
    split: Split
    members: list[Member]
    starts: list[IntegerNetwork]
    """Each member's start network (one member, the whole training set, for a single network)."""
    context: RunContext
    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Each ``--fair`` column's group of every example, by split."""
    repair: str | None = None
    """How the start was made to hold the run's guarantees (None without any)."""

    @property
    def start(self) -> IntegerNetwork:
        return self.starts[0]


def prepare(
    config: TrainConfig, data: Dataset | None = None, run_step: StepRunner = run_directly,
    timings: dict[str, float] | None = None,
) -> Prepared:
    """The data (``data`` if given, else what ``config`` names), its split, the ensemble's members
    (one for a single network), their start networks and the context every batch shares;
    ``timings`` gets the seconds of ``data`` and ``start_network``."""
    began = time.perf_counter()
    dataset = data if data is not None else run_step("load data", load_dataset, config, retry_safe=True)
    # --class-weight with such a run is refused when the config is made
    if dataset.weights is not None and (problem := config.weighting_problem()) is not None:
        raise DataError(f"weighted examples: {problem}")
    split = run_step("split", split_data, config, dataset, retry_safe=True)
    split = class_weighted(config, split, dataset.classes)
    n_classes = len(dataset.classes)
    members = make_members(config.ensemble, split.train_y, n_classes, config.seed)
    guarantees, groups = resolve(config.monotone, config.fair, config.min_recall, dataset, split)
    loaded = time.perf_counter()
    starts = [run_step("start network", start_network, config, split, n_classes, member) for member in members]
    repair = None
    if guarantees.any:  # one network: the config refuses constraints with --ensemble
        starts[0], guarantees, repair = run_step("repair start", repaired_start, config, split, starts[0], guarantees)
    if timings is not None:
        timings |= {"data": loaded - began, "start_network": time.perf_counter() - loaded}
    return Prepared(dataset, split, members, starts, run_context(config, split, n_classes, members, guarantees),
                    groups, repair)


def whole_training_problem(config: TrainConfig, split: Split, n_classes: int, guarantees: Guarantees) -> TrainingProblem:
    """The whole training split as one problem, with the run's size budget, the guarantees' sign
    boxes and counting rows: what the start is repaired on and every kept network must hold."""
    sizes = [split.train_x.shape[1], *config.hidden, n_classes]
    return TrainingProblem(split.train_x, split.train_y, n_classes, config.hidden, config.P,
                           guarantees.bounds(ParameterBounds.box(sizes, config.P)), weights=split.train_weights,
                           max_nonzero=config.max_nonzero,
                           rows=guarantees.rows(split.train_y, np.arange(len(split.train_y))))


def repaired_start(config: TrainConfig, split: Split, start: IntegerNetwork, guarantees: Guarantees):
    """The start made to hold the run's guarantees on the whole training split
    (:func:`pipeline.solving.guarantees.repair_start`), the guarantees with their orientations, and
    how."""
    formulation = config.options(BatchOptions).training_model()
    problem = whole_training_problem(config, split, start.sizes[-1], guarantees)
    if not config.hidden and config.heuristic_steps > 0:
        start = sparse_start_within(config, split, start, guarantees, problem, formulation)
    return repair_start(start, guarantees, problem, formulation, config.options(SolverOptions))


BALANCING_STRENGTHS = (0.0, 1.0, 2.0, 4.0)
"""The strengths of :func:`pipeline.solving.guarantees.balancing_weights` the sparse start is fitted
at under fairness constraints (0: the plain loss), the best on validation of those holding the
constraints kept. Measured, Adult N = 800, 10 non-zeros, seeds 0-2, 5 s MIP + 20 s local search:
sex:dp:0.02 tested 77.7/77.1/80.8 % with the plain loss alone and 80.9/80.6/80.8 % with these
(strengths 1-2 won on validation; 4 never did); race:dp:0.01 and sex:eo:0.02 moved by 0 to +0.6."""


def sparse_start_within(config: TrainConfig, split: Split, start: IntegerNetwork, guarantees: Guarantees,
                        problem: TrainingProblem, formulation: Formulation) -> IntegerNetwork:
    """The scoring system of the sparse start's search that holds the guarantees already, if it
    has one, else ``start``: its candidates differ in support and scale, and some trade accuracy
    for a smaller gap. Under fairness constraints the search also runs on the training examples
    reweighted towards labels independent of the groups (:data:`BALANCING_STRENGTHS`), whose
    candidates rely less on inputs that stand in for a group."""
    held = guarantees.with_orientations(start)
    boxed = replace(problem, bounds=held.bounds(problem.bounds))
    strengths = BALANCING_STRENGTHS if guarantees.fairness else BALANCING_STRENGTHS[:1]
    base = np.ones(len(split.train_y)) if split.train_weights is None else split.train_weights
    best, best_correct = None, -1.0
    deadline = time.perf_counter() + config.start_seconds  # --start-seconds for all of them together
    for done, strength in enumerate(strengths):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        weights = split.train_weights if strength == 0 else base * balancing_weights(guarantees, split.train_y, strength)
        fitting = sparse_linear_network(split.train_x, split.train_y, start.sizes[-1], config.P, config.max_nonzero,
                                        x_val=split.val_x, y_val=split.val_y, seed=config.seed,
                                        time_limit=left / (len(strengths) - done), sample_weight=weights,
                                        validation_weight=split.val_weights,
                                        admits=lambda network: formulation.admits(network, boxed))
        if fitting is None:
            continue
        correct = fitting.accuracy(split.val_x, split.val_y, split.val_weights) if len(split.val_y) else 0.0
        if correct > best_correct:  # a tie keeps the weaker reweighting
            best, best_correct = fitting, correct
    return start if best is None else best  # the all-zero network when no other candidate held them


def train(
    config: TrainConfig,
    data: Dataset | None = None,
    *,
    run_step: StepRunner = run_directly,
    observer: RunObserver | None = None,
    persist: bool = True,
) -> TrainSummary:
    """The whole run: the data (``data`` if given, else what ``config`` names), its split, the start
    networks, every epoch on one executor (every ensemble member's batches solved together), each
    member's final choice, stripping and, with ``persist``, the network file at ``config.out`` and a
    checkpoint per solved batch (else nothing is written). Returns the summary with timings; the
    summary's ``model`` is the model stored. With ``--hidden auto``, one such run per architecture
    tried, the one kept chosen on validation (:func:`choose_architecture`)."""
    # The run's numpy work in this process (the start, local search's and compression's passes,
    # every accuracy) on one BLAS thread (pipeline/solving/blas.py); Ray's workers get theirs from Ray.
    with capped_blas():
        if config.hidden == AUTO_ARCHITECTURE:
            return choose_architecture(config, data, run_step=run_step, observer=observer, persist=persist)
        return train_network(config, data, run_step=run_step, observer=observer, persist=persist)


ARCHITECTURE_TIE = 0.002
"""Validation accuracies within 0.2 points of the best count as equal, and the smallest of them is
kept: a validation split of a few hundred rows cannot tell them apart (one row of Heart's 25 is 4
points), and a smaller network is what a user of integer networks asks for."""

WIDTHS = (1, 2, 4, 8, 16)
"""The widths ``--hidden auto`` tries for one hidden layer after none, up to the default network's."""


def architecture_candidates(tried: list[ArchitectureTrial], n_classes: int = 2) -> tuple[int, ...] | None:
    """The next architecture to try given those tried so far, or None to stop: no hidden layer,
    then one layer of 1, 2, 4, ... neurons until two widths in a row fail to beat the best by more
    than :data:`ARCHITECTURE_TIE`, then a second layer as wide as the one-layer network that would
    be kept, where that one has two or more neurons and is as good as the best (within the tie).
    Widths w with 2^w < ``n_classes`` are not tried: w sign neurons have 2^w patterns, so such a
    network can never predict some of the classes (digits, 10 classes: 2 neurons scored 38 % on test
    against 94 % without a hidden layer; counted, 1 and 2 ended the search before any width that fits)."""
    if not tried:
        return ()
    single = [t for t in tried if len(t.hidden) == 1]
    widths = [t.hidden[0] for t in single]
    best = max(t.validation for t in tried)
    stalled = len(single) >= 2 and all(t.validation <= best_before(tried, t) + ARCHITECTURE_TIE for t in single[-2:])
    next_width = next((w for w in WIDTHS if w not in widths and 2**w >= n_classes), None)
    if next_width is not None and not stalled:
        return (next_width,)
    if any(len(t.hidden) == 2 for t in tried):
        return None
    if not single:
        return None
    leader = single[chosen_architecture(single)]
    if leader.hidden[0] < 2 or leader.validation < best - ARCHITECTURE_TIE:
        return None
    return (leader.hidden[0], leader.hidden[0])


def best_before(tried: list[ArchitectureTrial], trial: ArchitectureTrial) -> float:
    """The best validation accuracy of the architectures tried before ``trial``."""
    earlier = tried[: tried.index(trial)]
    return max((t.validation for t in earlier), default=-1.0)


def chosen_architecture(tried: list[ArchitectureTrial]) -> int:
    """The index of the trial kept: the smallest (non-zero parameters, then bits) of those within
    :data:`ARCHITECTURE_TIE` of the best validation accuracy."""
    best = max(t.validation for t in tried)
    near = [i for i, t in enumerate(tried) if t.validation >= best - ARCHITECTURE_TIE]
    return min(near, key=lambda i: (tried[i].nonzero_parameters, tried[i].size_bits, i))


def choose_architecture(
    config: TrainConfig, data: Dataset | None = None, *, run_step: StepRunner = run_directly,
    observer: RunObserver | None = None, persist: bool = True,
) -> TrainSummary:
    """``--hidden auto``: a whole run (:func:`train_network`, nothing written) per architecture of
    :func:`architecture_candidates`, each with the run's settings (size budget and time limits
    included), the one kept by :func:`chosen_architecture`; its summary lists every trial
    (``architectures``), its timings the whole search, and with ``persist`` its network is written."""
    observer = observer or LogObserver()
    if persist:
        check_outputs(config)
    began = time.perf_counter()
    dataset = data if data is not None else run_step("load data", load_dataset, config, retry_safe=True)
    tried: list[ArchitectureTrial] = []
    summaries: list[TrainSummary] = []
    while (hidden := architecture_candidates(tried, len(dataset.classes))) is not None:
        started = time.perf_counter()
        summary = train_network(config.model_copy(update={"hidden": hidden}), dataset, run_step=run_step,
                                observer=observer, persist=False)
        tried.append(ArchitectureTrial(hidden, summary.final.validation, summary.final.test,
                                       summary.nonzero_parameters, summary.size_bits, time.perf_counter() - started))
        summaries.append(summary)
        observer.architecture_tried(tried[-1])
    kept = chosen_architecture(tried)
    summary = summaries[kept]
    summary.architectures = [replace(t, chosen=i == kept) for i, t in enumerate(tried)]
    summary.timings["total"] = time.perf_counter() - began
    if persist:
        chosen = config.model_copy(update={"hidden": tried[kept].hidden})
        path = run_step("write network", save_network, chosen, summary.dataset, summary.model, summary)
        summary.model_path = str(path)
        summary.timings["total"] = time.perf_counter() - began
    return summary


def train_network(
    config: TrainConfig,
    data: Dataset | None = None,
    *,
    run_step: StepRunner = run_directly,
    observer: RunObserver | None = None,
    persist: bool = True,
) -> TrainSummary:
    """:func:`train` of one architecture (``config.hidden`` a tuple of widths)."""
    observer = observer or LogObserver()
    if persist:
        check_outputs(config)
    timings: dict[str, float] = {}
    began = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        return now

    run = prepare(config, data, run_step, timings)
    dataset, split, members, context = run.dataset, run.split, run.members, run.context
    n_classes = len(dataset.classes)
    kind = ensemble_kind(config.ensemble)

    def as_model(networks: list[IntegerNetwork]) -> Ensemble:
        return Ensemble(kind, tuple(networks), tuple(m.classes for m in members), n_classes)

    t = time.perf_counter()
    store = BatchStore(config.checkpoints, run_key(config)) if persist else None
    merged, results, records = list(run.starts), [], []
    history: list[list[IntegerNetwork]] = [[] for _ in members]  # every epoch's merged network, per member
    executor = make_executor(config.executor, config.workers, config.threads)
    where = "on Ray actors" if config.use_ray else "in process"
    with opened(executor, context):
        for epoch in range(config.n_epochs):
            epoch_began = time.perf_counter()
            tasks = run_step("partition", make_tasks, config, split, epoch, members, retry_safe=True)
            observer.epoch_started(epoch, config.n_epochs, len(tasks), where)
            epochs = [epoch_start(config, network, epoch) for network in merged]
            epoch_results = run_step("solve batches", solve_batches, executor, context, epochs, tasks,
                                     observer.batch_finished, store, config.resume)
            merged = run_step("merge", merge_members, epoch_results, merged, config.merge,
                              config.neuron_penalty is not None, config.max_nonzero, retry_safe=True)
            record = run_step("evaluate", epoch_record, epoch, epoch_radius(config.P, epoch), epoch_results,
                              as_model(merged), split, time.perf_counter() - epoch_began, retry_safe=True)
            observer.epoch_finished(record)
            records.append(record)
            results += epoch_results
            for m, network in enumerate(merged):
                history[m].append(network)
    if all(r.status == SolveStatus.ERROR for r in results):
        # Writing the start as if trained would hide it (e.g. a solver that fails on every batch).
        raise IntnetError("every batch MIP failed, so no network was trained; the first error: "
                          + results[0].error.splitlines()[0])
    t = lap("solve", t)
    kept, finals, member_records = [], [], []
    for m, member in enumerate(members):
        # A merged network that breaks a guarantee on the whole training split is not kept (each batch
        # held it on its own examples only); the start holds them all (repaired).
        holding = [network if not failures(context, network, split) else run.starts[m] for network in history[m]]
        validation = partial(context.validation_accuracy, m)
        best = best_epoch([validation(network) for network in holding])
        final, source = choose_final(holding[best], run.starts[m], validation)
        final = stored_network(config, final)
        kept.append(holding[best])
        finals.append(final)
        member_records.append(MemberRecord(
            member=m, classes=member.classes, examples=len(member.indices),
            start=member_accuracies(run.starts[m], member.classes, split),
            final=member_accuracies(final, member.classes, split), final_source=source, best_epoch=best,
            sizes=final.sizes))
    sources = {r.final_source for r in member_records}
    t = lap("merge", t)
    compression = None
    if config.compress > 0:  # one network: the config refuses --compress with --ensemble
        finals[0], compression = run_step("compress", compress_final, config, split, finals[0], context)
        member_records[0] = replace(member_records[0], sizes=finals[0].sizes,
                                    final=member_accuracies(finals[0], members[0].classes, split))
        t = lap("compress", t)
    summary = summarize(config, split, as_model(run.starts), as_model(kept), as_model(finals),
                        sources.pop() if len(sources) == 1 else "merged", results, timings, records,
                        member_records[0].best_epoch if kind == EnsembleKind.SINGLE else None, member_records)
    if compression is not None:
        summary.compression = compression
        summary.size_bits = layered_size_bits(finals[0], compression["layer_bounds"])
    summary.calibration = calibrated(summary.model, split)
    if context.guarantees.any:
        summary.constraints = {"repair": run.repair,
                               "checks": context.guarantees.certificate(finals[0], split, run.groups)}
    summary.dataset = dataset
    timings["total"] = time.perf_counter() - began
    if persist:
        # The file's provenance records the time up to writing it; the summary returned adds the write.
        path = run_step("write network", save_network, config, dataset, summary.model, summary)
        summary.model_path = str(path)
        lap("write", t)
        timings["total"] = time.perf_counter() - began
    return summary
