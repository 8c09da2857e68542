"""The one typed configuration of a training run, validated once at the edge (CLI, flow call,
estimator). Every option is declared here once: its name, type, limits and help. The CLI's flags
are generated from these fields (``flows/cli.py``), and the small vocabularies are the keys of the
registries that implement them, so adding a merge rule, an executor or a formulation is one edit
in one file.

The layers below own their options and defaults, as Pyomo's appsi layers its solver configs:
:class:`~pipeline.solving.solve.SolverOptions` (one MIP),
:class:`~pipeline.solving.batches.BatchOptions` (one batch),
:class:`~pipeline.solving.improve.SearchOptions` (local search) and
:class:`~pipeline.solving.compress.CompressionOptions`. A field here has the name and the default
of the option it sets, and :meth:`TrainConfig.options` builds each layer's options in one place.
Nothing below this module imports it."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formulations.constraints import Fairness
from formulations.models import FORMULATIONS, StagedFormulation
from pipeline.data.datasets import BUILTIN_DATASETS
from pipeline.errors import one_line
from pipeline.execution.executors import AUTO, EXECUTORS
from pipeline.networks.ensembles import ONE_VS_ONE
from pipeline.networks.storage import MAX_P
from pipeline.solving.batches import ACCEPT_RULES, DEAD_INPUT_VALUES, BatchOptions
from pipeline.solving.compress import CompressionOptions, KeptSplit
from pipeline.solving.improve import SearchOptions
from pipeline.solving.merge import BATCH_STARTS, MERGE_RULES
from pipeline.solving.solve import SolverOptions

Options = TypeVar("Options")

MAX_HIDDEN = 1024
"""Widest hidden layer accepted: each neuron adds N binaries and N·C products to a batch MIP, so a
wider layer is no MIP HiGHS solves (and 10^5 neurons took > 5 min and 2.7 GB before any solve)."""

MAX_HIDDEN_LAYERS = 4
"""Deepest network accepted (hidden layers): intnet's runs use one or two (the paper's, and the ones
``--hidden auto`` tries), and every layer beyond adds N·n_l·n_(l+1) products to each batch MIP
(building 40 Heart examples' model took 0.2 s with one layer of 16, 2.9 s with 4, 6.8 s with 8) and
to each local-search step a pass through it; a file of 1,000 layers (within the reader's caps) ran
``intnet improve`` 4x past its --seconds. Four leaves room to experiment."""


def architecture_problem(hidden: tuple[int, ...] | list[int]) -> str | None:
    """Why a MIP cannot train hidden layers of these widths, or None when it can: the widths
    training, local search and compression accept."""
    if len(hidden) > MAX_HIDDEN_LAYERS:
        return f"{len(hidden)} hidden layers are far beyond what a MIP can train (at most {MAX_HIDDEN_LAYERS})"
    if hidden and max(hidden) > MAX_HIDDEN:
        return f"a hidden layer of {max(hidden)} neurons is far beyond what a MIP can train (at most {MAX_HIDDEN})"
    return None


SEARCHABLE = tuple(name for name, model in FORMULATIONS.items()
                   if not model.hard and not issubclass(model, StagedFormulation))
"""The models MIP local search (``--improve``, ``intnet improve``) can lower: a step is taken only
if it lowers one objective, which every network must have. A hard model gives a network that does
not fit every example none (min_weight, max_margin: ``intnet improve`` ended in a traceback), and a
staged one is several objectives solved in turn (lexicographic: every step ran its three stages on
the step's sub-problem, and every batch of ``train --improve`` failed)."""


def unsearchable(name: str) -> str:
    """Why local search cannot lower the objective of model ``name`` and which models it can."""
    why = ("is several MIPs solved in turn, not one objective a step can lower"
           if issubclass(FORMULATIONS[name], StagedFormulation) else "must fit every example")
    return (f"local search needs a soft-loss formulation whose objective every network has, one of "
            f"{', '.join(SEARCHABLE)}; {name} {why}")


AUTO_ARCHITECTURE = "auto"
"""``--hidden auto``: the architecture chosen on validation (:func:`pipeline.training.train`)."""

CLASS_WEIGHT_FORMAT = "must be balanced or CLASS:W pairs with W a positive number (e.g. yes:3,no:1)"

HIDDEN_FORMAT = "must be a comma list of positive integers (16 or 16,16), 0 for no hidden layer, or auto"


def first_problem(error) -> tuple[str | None, str]:
    """What a pydantic ``ValidationError`` of :class:`TrainConfig` says, as a front end reports it
    in one line: the field it is about (None for a rule across fields) and its message, without
    pydantic's type code and documentation URL."""
    problem = error.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else None
    return field, one_line(problem["msg"].removeprefix("Value error, "))


def choices(registry) -> type:
    """``Literal`` of a registry's names: the config accepts what the code implements."""
    return Literal[tuple(registry)]


class TrainConfig(BaseModel):
    """Everything a training run depends on. Field names are the CLI flags (``train_size`` is
    ``--train-size``); the descriptions are the CLI's help; ``metavar`` names a flag's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: choices(BUILTIN_DATASETS) | None = Field(None, description="built-in dataset")
    data: Path | None = Field(None, description="CSV or Parquet file of your own (needs --label)",
                              json_schema_extra={"metavar": "FILE"})
    label: str | None = Field(None, description="label column of --data", json_schema_extra={"metavar": "COLUMN"})
    test_data: Path | None = Field(
        None, description="your own test file (same columns as --data): the test set, instead of a share of --data",
        json_schema_extra={"metavar": "FILE"},
    )
    test_size: float | None = Field(
        None, ge=0, lt=1, allow_inf_nan=False,
        description="share of the data held out as test when the dataset has no test split of its own (0: none); "
        "default: 0.2", json_schema_extra={"metavar": "SHARE"},
    )
    train_size: int | None = Field(None, ge=1, description="training examples (stratified); default: all left after test and validation",
                                   json_schema_extra={"metavar": "N"})
    per_class: int | None = Field(None, ge=1, description="training examples per class, instead of --train-size",
                                  json_schema_extra={"metavar": "K"})
    validation_size: int | None = Field(None, ge=1, description="validation examples; default: the dataset's share",
                                        json_schema_extra={"metavar": "N"})
    formulation: choices(FORMULATIONS) = Field(BatchOptions.formulation, description="MIP training model (docs/formulations.md)")
    P: int = Field(3, ge=1, le=MAX_P, description="parameters are integers in [-P, P]")
    hidden: tuple[int, ...] | Literal["auto"] = Field(
        (16,), description="hidden layer widths, a comma list: 16 or 16,16; 0 for no hidden layer (one integer score "
        "per class); auto tries no hidden layer, then 1, 2, 4, ... neurons (skipping widths w with 2^w below the number of classes; and a second layer where it pays) and keeps "
        "the best on validation, the smaller within 0.2 points", json_schema_extra={"metavar": "WIDTHS|0|auto"})
    max_nonzero: int | None = Field(
        None, ge=0, description="size budget: at most K non-zero parameters (weights and biases) in the whole network "
        "(in each member of an ensemble), held by the start and by every MIP; default: none",
        json_schema_extra={"metavar": "K"})
    ensemble: int | Literal["ovo"] | None = Field(
        None,
        description="train an ensemble that votes by majority: K members, each on its own stratified bootstrap resample "
        "of the training set from its own start (bagging), or ovo, a member per pair of classes trained on those "
        "two classes only; default: one network",
        json_schema_extra={"metavar": "K|ovo"},
    )
    batch_size: int | None = Field(None, ge=1, description="examples per batch MIP; default: one batch of all",
                                   json_schema_extra={"metavar": "B"})
    epochs: int | None = Field(
        None, ge=1,
        description="epochs of batch training, each reshuffling the batches, solving them from the merged network and "
        "shrinking the box around it; the epoch best on validation is kept; default: P + 1 with --batch-size, else 1",
        json_schema_extra={"metavar": "E"},
    )
    workers: int = Field(1, ge=1, description="parallel solver actors (Ray when > 1)", json_schema_extra={"metavar": "K"})
    threads: int = Field(SolverOptions.threads, ge=1, description="HiGHS threads per solve (CPUs each actor reserves)",
                         json_schema_extra={"metavar": "T"})
    time_limit: float = Field(SolverOptions.time_limit, ge=0, allow_inf_nan=False,
                              description="seconds per batch MIP, building its model included (0: skip the monolithic solve, e.g. to "
                              "only --improve)",
                              json_schema_extra={"metavar": "SECONDS"})
    improve: float = Field(SearchOptions.improve, ge=0, allow_inf_nan=False,
                           description="seconds of MIP local search per batch after the monolithic solve: one hidden "
                           "neuron or the output layer free at a time, never worse (0: none)",
                           json_schema_extra={"metavar": "SECONDS"})
    improve_step_limit: float = Field(
        SearchOptions.improve_step_limit, gt=0, allow_inf_nan=False, json_schema_extra={"metavar": "SECONDS"},
        description="seconds for each local-search sub-MIP; local search (not compression) doubles it rather than "
        "stop where no step was found but one stopped at it")
    improve_validation: bool = Field(
        SearchOptions.improve_validation, description="take a local-search step only if it does not lower validation accuracy; "
        "--no-improve-validation takes any step that lowers the objective (docs/method.md §8)")
    improve_starts: int = Field(
        SearchOptions.improve_starts, ge=1, description="local searches in a portfolio: from the solved network and from K-1 straight-through "
        "networks of the next seeds, then perturbed copies of the best while time is left; the best is kept",
        json_schema_extra={"metavar": "K"})
    compress: float = Field(
        CompressionOptions.compress, ge=0, allow_inf_nan=False,
        description="seconds of MIP compression after training: the fewest hidden neurons, then non-zero parameters, "
        "then bits per layer, classifying at least as many --keep examples correctly as the trained network, less "
        "--tolerance (0: none)", json_schema_extra={"metavar": "SECONDS"},
    )
    keep: KeptSplit = Field(
        CompressionOptions.keep, description="the examples whose correct count compression keeps: the validation split "
        "(held out, so test accuracy follows it) or the training split")
    tolerance: int = Field(CompressionOptions.tolerance, ge=0, description="correctly classified --keep examples compression may lose",
                           json_schema_extra={"metavar": "N"})
    mip_gap: float = Field(SolverOptions.mip_gap, ge=0, allow_inf_nan=False, description="relative MIP gap to stop at",
                           json_schema_extra={"metavar": "GAP"})
    solver: str = Field(SolverOptions.solver, min_length=1, description="MIP solver: highs, or any name pyomo.SolverFactory knows (e.g. scip_direct)",
                        json_schema_extra={"metavar": "NAME"})
    symmetry_breaking: bool = Field(BatchOptions.symmetry_breaking, description="order interchangeable hidden neurons by bias in the MIP")
    neuron_penalty: float | Literal["lex"] | None = Field(
        BatchOptions.neuron_penalty,
        description="optimise the number of hidden neurons too: ALPHA adds ALPHA per neuron kept to the loss; "
        "lex minimises the loss first, then the neurons; switched-off neurons are stripped from the file",
        json_schema_extra={"metavar": "ALPHA|lex"},
    )
    target_error: float | None = Field(
        SolverOptions.target_error, ge=0, le=1,
        description="stop a solve once the objective is at most this share of N (the paper's cutoff); none to solve to the gap",
        json_schema_extra={"metavar": "SHARE|none"},
    )
    seed: int = Field(0, ge=0, description="seed of splits, batches and the heuristic start",
                      json_schema_extra={"metavar": "S"})
    heuristic_steps: int = Field(2000, ge=0, description="straight-through-estimator steps for the start network (0: start from all zeros)",
                                 json_schema_extra={"metavar": "STEPS"})
    start_seconds: float = Field(
        300, gt=0, allow_inf_nan=False, json_schema_extra={"metavar": "SECONDS"},
        description="seconds for the sparse start of a network without a hidden layer (its search keeps the best "
        "scoring system found so far; with --monotone, --fair or --min-recall a second search as long keeps only "
        "candidates that hold them); without a size budget on many inputs it would run long (MNIST, 200 examples: "
        "over 25 minutes)")
    accept: choices(ACCEPT_RULES) = Field(
        BatchOptions.accept, description="a solved network replaces its start if it is not worse on validation accuracy, or on the objective"
    )
    batch_start: choices(BATCH_STARTS) = Field(
        "merged",
        description="where every batch of an epoch starts: the network merged so far, or the all-zero network (the paper's batches started cold) inside the epoch's box",
    )
    merge: choices(MERGE_RULES) = Field(
        "weighted_mean",
        description="how batch networks are merged: the paper's validation-weighted mean, plain mean, median, per-weight majority vote, or the best batch on validation",
    )
    dead_inputs: choices(DEAD_INPUT_VALUES) = Field(
        BatchOptions.dead_inputs,
        description="weights of inputs that are 0 in a whole batch are fixed to the start's value or to 0 "
        "(zero when --neuron-penalty is given)",
    )
    executor: choices((AUTO, *EXECUTORS)) = Field(
        AUTO, description="where batches are solved: Ray actors, or in this process; auto = Ray when workers > 1")
    out: Path = Field(Path("model.parquet"), description="network file to write", json_schema_extra={"metavar": "FILE"})
    checkpoints: Path = Field(Path(".intnet/runs"), description="directory where every solved batch is stored, for --resume",
                              json_schema_extra={"metavar": "DIR"})
    resume: bool = Field(False, description="reuse the stored batch results of an earlier run with the same settings; solve only the missing batches")
    exclude: tuple[str, ...] = Field(
        (), description="a column kept out of the features, such as a row identifier (repeat for more); predict then ignores it, "
        "and it may still define --fair groups",
        json_schema_extra={"metavar": "COLUMN", "repeat": True})
    class_weight: dict[str, float] | Literal["balanced"] | None = Field(
        None, description="how much an example of each class counts in every MIP objective and the start: CLASS:W "
        "pairs (a comma list; classes not named count 1) or balanced (n / (classes · the class's count)); default: "
        "1 each", json_schema_extra={"metavar": "CLASS:W,...|balanced"})
    monotone: tuple[str, ...] = Field(
        (), description="the positive class's score (z_1 - z_0; with more classes every z_c - z_0) never falls (+) or "
        "never rises (-) as that numeric column grows, for every input, proven from the weights (repeat for more)",
        json_schema_extra={"metavar": "COLUMN:+|-", "repeat": True})
    fair: tuple[str, ...] = Field(
        (), description="demographic parity (dp), equalised odds (eo) or equal opportunity (eopp) between every pair of "
        "groups of COLUMN: the rates differ by at most EPS on the training split, exactly (two classes, max_correct; "
        "repeat for more)", json_schema_extra={"metavar": "COLUMN:dp|eo|eopp:EPS", "repeat": True})
    min_recall: tuple[str, ...] = Field(
        (), description="at least the share RHO of CLASS's training examples classified as CLASS (a label, or a class "
        "index; max_correct; repeat for more)", json_schema_extra={"metavar": "CLASS:RHO", "repeat": True})

    @field_validator("exclude", "monotone", "fair", "min_recall", mode="before")
    @classmethod
    def _one_or_more(cls, value):
        return (value,) if isinstance(value, str) else value

    @field_validator("monotone")
    @classmethod
    def _check_monotone(cls, value: tuple[str, ...]):
        for entry in value:
            column, _, sign = entry.rpartition(":")
            if not column or sign not in ("+", "-"):
                raise ValueError(f"{entry!r} must be COLUMN:+ or COLUMN:- (e.g. age:+)")
        return value

    @field_validator("fair")
    @classmethod
    def _check_fair(cls, value: tuple[str, ...]):
        for entry in value:
            parts = entry.rsplit(":", 2)
            kinds = ", ".join(str(kind) for kind in Fairness)
            if len(parts) != 3 or not parts[0] or parts[1] not in set(Fairness):
                raise ValueError(f"{entry!r} must be COLUMN:KIND:EPS with KIND one of {kinds} (e.g. sex:dp:0.02)")
            try:
                epsilon = float(parts[2])
            except ValueError:
                epsilon = math.nan
            if not 0 <= epsilon <= 1:
                raise ValueError(f"{entry!r}: EPS must be a number in [0, 1] (a difference of rates)")
        return value

    @field_validator("min_recall")
    @classmethod
    def _check_min_recall(cls, value: tuple[str, ...]):
        for entry in value:
            label, _, share = entry.rpartition(":")
            try:
                rho = float(share)
            except ValueError:
                rho = math.nan
            if not label or not 0 < rho <= 1:
                raise ValueError(f"{entry!r} must be CLASS:RHO with RHO a share in (0, 1] (e.g. 1:0.8)")
        return value

    @field_validator("hidden", mode="before")
    @classmethod
    def _parse_hidden(cls, value):
        # 0 (or an empty list) is no hidden layer; an int is one layer of that width.
        if isinstance(value, str):
            if value.strip() == AUTO_ARCHITECTURE:
                return AUTO_ARCHITECTURE
            if not value.strip():
                raise ValueError(HIDDEN_FORMAT)
            try:
                value = tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError(HIDDEN_FORMAT) from None
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if isinstance(value, (tuple, list)) and tuple(value) == (0,):
            return ()
        return value

    @field_validator("hidden")
    @classmethod
    def _check_hidden(cls, value):
        if value == AUTO_ARCHITECTURE:
            return value
        if any(width < 1 for width in value):
            raise ValueError(HIDDEN_FORMAT)
        if (problem := architecture_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("ensemble", mode="before")
    @classmethod
    def _parse_ensemble(cls, value):
        if isinstance(value, str) and value.strip() != ONE_VS_ONE:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"must be a number of members >= 2 or '{ONE_VS_ONE}'") from None
        return value

    @field_validator("ensemble")
    @classmethod
    def _check_ensemble(cls, value):
        if isinstance(value, int) and value < 2:
            raise ValueError(f"an ensemble needs at least 2 members (got {value}); leave it out for one network")
        return value

    @field_validator("class_weight", mode="before")
    @classmethod
    def _parse_class_weight(cls, value):
        # The CLI's CLASS:W,CLASS:W, or the estimator's dict, whose keys may be the labels' own type.
        if isinstance(value, str) and value.strip() != "balanced":
            pairs = [part.rpartition(":") for part in value.split(",") if part.strip()]
            if not pairs or any(not label.strip() or not weight.strip() for label, _, weight in pairs):
                raise ValueError(CLASS_WEIGHT_FORMAT)
            value = {label.strip(): weight.strip() for label, _, weight in pairs}
        if isinstance(value, dict):
            return {str(label): weight for label, weight in value.items()}
        return value.strip() if isinstance(value, str) else value

    @field_validator("class_weight")
    @classmethod
    def _check_class_weight(cls, value):
        if isinstance(value, dict) and not all(math.isfinite(weight) and weight > 0 for weight in value.values()):
            raise ValueError(CLASS_WEIGHT_FORMAT)
        return value

    @field_validator("target_error", mode="before")
    @classmethod
    def _parse_target_error(cls, value):
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @model_validator(mode="before")
    @classmethod
    def _default_dead_inputs(cls, data):
        # A weight pinned to the start's non-zero value would keep its neuron on: with neuron
        # optimisation the inputs a batch never sees are pinned to 0 unless the caller says otherwise.
        if isinstance(data, dict) and data.get("dead_inputs") is None and data.get("neuron_penalty") is not None:
            data = {**data, "dead_inputs": "zero"}
        return data

    @field_validator("neuron_penalty", mode="before")
    @classmethod
    def _parse_neuron_penalty(cls, value):
        if isinstance(value, str) and value != "lex":
            try:
                return float(value)
            except ValueError:
                raise ValueError("must be a number >= 0 (the penalty per neuron) or 'lex'") from None
        return value

    @field_validator("neuron_penalty")
    @classmethod
    def _check_neuron_penalty(cls, value):
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            raise ValueError("must be a number >= 0 (the penalty per neuron) or 'lex'")
        return value

    @field_validator("solver")
    @classmethod
    def _check_solver(cls, value: str):
        # Found out at the end otherwise: every batch fails, and the start is all there is to write.
        if value != "highs":
            import pyomo.environ as pyo
            from pyomo.common.log import LoggingIntercept

            # Only a solver that runs here, named as Pyomo registers it: not `asl:PROGRAM`, for which
            # Pyomo runs any program as the solver; not Pyomo's private plugins (a leading _), which
            # its public names wrap, among them _neos, the client of the NEOS web service, which
            # sends it the model and so the training data; not sas, whose solves run in a SAS
            # session, which may be on another machine. A served run's trigger names the solver too.
            if value not in pyo.SolverFactory or value.startswith("_") or value == "sas":
                raise ValueError(f"{value!r} is not a MIP solver that runs on this machine; use highs, or the "
                                 "name of one Pyomo has installed here (e.g. scip_direct, gurobi_direct, cbc)")
            # Pyomo logs a traceback for a name it does not know; the message below says it in one line.
            with LoggingIntercept(io.StringIO(), "pyomo"):
                available = pyo.SolverFactory(value).available(exception_flag=False)
            if not available:
                raise ValueError(f"MIP solver {value!r} is not available to Pyomo here; use highs, or install it")
        return value

    @model_validator(mode="after")
    def _check_data_source(self):
        # Neither is fine here: the data may come as arrays (the estimator); a run without any
        # says so when it loads its data.
        if self.dataset is not None and self.data is not None:
            raise ValueError("give either --dataset NAME or --data FILE --label COLUMN, not both")
        if self.data is not None and not self.label:
            raise ValueError("--data needs --label COLUMN naming the label column")
        if self.dataset is not None and self.label:
            raise ValueError("--label goes with --data; built-in datasets know their label")
        if self.time_limit == 0 and self.improve == 0:
            raise ValueError("--time-limit 0 skips the monolithic solve; give --improve SECONDS, or a time limit")
        if self.improve > 0 and self.formulation not in SEARCHABLE:
            raise ValueError(f"--improve: {unsearchable(self.formulation)}")
        if self.neuron_penalty is not None:
            self._check_neuron_optimisation()
        if self.class_weight is not None and (problem := self.weighting_problem()) is not None:
            raise ValueError(f"--class-weight: {problem}")
        if self.compress > 0 and self.ensemble is not None:
            raise ValueError("--compress works on one network; leave out --ensemble, or compress none")
        if self.compress == 0 and (self.keep != type(self).model_fields["keep"].default or self.tolerance != 0):
            raise ValueError("--keep and --tolerance set what --compress SECONDS keeps; give --compress, or leave "
                             "them out")
        if self.train_size is not None and self.per_class is not None:
            raise ValueError("give --train-size or --per-class, not both")
        if self.hidden == AUTO_ARCHITECTURE:
            for flag, given in (("--ensemble", self.ensemble is not None), ("--neuron-penalty", self.neuron_penalty is not None),
                                ("--resume", self.resume)):
                if given:
                    raise ValueError(f"--hidden auto trains and compares single networks of several sizes; give the "
                                     f"widths (--hidden 16) to use {flag}")
        elif not self.hidden and self.neuron_penalty is not None:
            raise ValueError("--neuron-penalty switches hidden neurons off; --hidden 0 has none")
        if self.fair or self.min_recall:
            flag = "--fair" if self.fair else "--min-recall"
            if self.formulation != "max_correct":
                raise ValueError(f"{flag} counts training examples by their outcome, which max_correct models exactly; "
                                 f"use --formulation max_correct, not {self.formulation}")
        if (self.fair or self.min_recall or self.monotone) and self.ensemble is not None:
            raise ValueError("--fair, --min-recall and --monotone hold for one network, not an ensemble's vote; leave out "
                             "--ensemble")
        return self

    def _check_neuron_optimisation(self) -> None:
        if not FORMULATIONS[self.formulation].supports_neuron_switches:
            able = ", ".join(name for name, model in FORMULATIONS.items() if model.supports_neuron_switches)
            raise ValueError(f"--neuron-penalty needs a soft-loss formulation that can switch neurons off ({able}); "
                             f"not {self.formulation}")
        if self.dead_inputs == "start":
            raise ValueError("--neuron-penalty with --dead-inputs start would pin the weights of inputs a batch never "
                             "sees to the start's non-zero values and keep their neurons on; use --dead-inputs zero")
        if self.neuron_penalty == "lex" and self.improve > 0:
            raise ValueError("--improve accepts a step only if it lowers one objective; with it use "
                             "--neuron-penalty ALPHA, not lex")

    def weighting_problem(self) -> str | None:
        """Why this run cannot weight its training examples (sample and class weights), or None
        when every MIP objective and the start it computes count a row as many times as its weight."""
        if not FORMULATIONS[self.formulation].weighted_examples:
            able = ", ".join(name for name, model in FORMULATIONS.items() if model.weighted_examples)
            return (f"--formulation {self.formulation} cannot weight its examples (its objective is no sum over "
                    f"them); use one of {able}")
        if self.neuron_penalty is not None:
            return "--neuron-penalty's models count neurons beside an unweighted loss; leave it out to weight examples"
        if self.compress > 0:
            return "--compress keeps a count of correctly classified examples, unweighted; leave it out to weight examples"
        return None

    @property
    def dataset_name(self) -> str:
        return self.dataset or (str(self.data) if self.data is not None else "arrays")

    @property
    def n_epochs(self) -> int:
        """The paper's P + 1 epochs when training in batches; one pass over a single batch."""
        if self.epochs is not None:
            return self.epochs
        return self.P + 1 if self.batch_size is not None else 1

    def options(self, layer: type[Options]) -> Options:
        """The options of ``layer`` (:class:`SolverOptions`, :class:`BatchOptions`,
        :class:`SearchOptions` or :class:`CompressionOptions`) this run sets: each of its fields
        that is a field here takes this run's value, the others keep the layer's default."""
        return layer(**{f.name: getattr(self, f.name) for f in dataclasses.fields(layer) if f.name in type(self).model_fields})

    @property
    def use_ray(self) -> bool:
        return self.executor == "ray" or (self.executor == AUTO and self.workers > 1)
