"""The one typed configuration of a training run, validated once at the edge (CLI, flow call)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from formulations import FORMULATIONS
from pipeline.storage import MAX_P


class TrainConfig(BaseModel):
    """Everything a training run depends on. Field names match the CLI flags (``train_size`` is
    ``--train-size``); the descriptions are the CLI's help."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: Literal["heart", "adult", "mnist"] | None = Field(None, description="built-in dataset")
    data: Path | None = Field(None, description="CSV or Parquet file of your own (needs --label)")
    label: str | None = Field(None, description="label column of --data")
    train_size: int | None = Field(None, ge=1, description="training examples (stratified); default: all left after test and validation")
    per_class: int | None = Field(None, ge=1, description="training examples per class, instead of --train-size")
    validation_size: int | None = Field(None, ge=1, description="validation examples; default: the dataset's share")
    formulation: str = Field("sat_margin", description="MIP training model")
    P: int = Field(3, ge=1, le=MAX_P, description="parameters are integers in [-P, P]")
    hidden: tuple[int, ...] = Field((16,), description="hidden layer widths, e.g. 16 or 16,16")
    batch_size: int | None = Field(None, ge=1, description="examples per batch MIP; default: one batch of all")
    epochs: int | None = Field(
        None, ge=1,
        description="epochs of batch training, each reshuffling the batches, solving them from the merged network and shrinking the box around it; default: P + 1 with --batch-size, else 1",
    )
    workers: int = Field(1, ge=1, description="parallel solver actors (Ray when > 1)")
    threads: int = Field(1, ge=1, description="HiGHS threads per solve (CPUs each actor reserves)")
    time_limit: float = Field(60.0, ge=0, description="seconds per batch MIP (0: skip the monolithic solve, e.g. to only --improve)")
    improve: float = Field(0.0, ge=0, description="seconds of MIP local search per batch after the monolithic solve (0: none)")
    improve_step_limit: float = Field(2.0, gt=0, description="seconds for each local-search sub-MIP")
    mip_gap: float = Field(1e-4, ge=0, description="relative MIP gap to stop at")
    solver: str = Field("highs", min_length=1, description="MIP solver: highs, or any name pyomo.SolverFactory knows (e.g. scip_direct)")
    symmetry_breaking: bool = Field(False, description="order interchangeable hidden neurons by bias in the MIP")
    neuron_penalty: float | Literal["lex"] | None = Field(
        None,
        description="optimise the number of hidden neurons too: ALPHA adds ALPHA per neuron kept to the loss; "
        "lex minimises the loss first, then the neurons; switched-off neurons are stripped from the file",
    )
    target_error: float | None = Field(0.1, ge=0, le=1, description="stop a solve once the objective is at most this share of N (the paper's cutoff); none to solve to the gap")
    seed: int = Field(0, ge=0, description="seed of splits, batches and the heuristic start")
    heuristic_steps: int = Field(2000, ge=0, description="straight-through-estimator steps for the start network (0: start from all zeros)")
    accept: Literal["validation", "objective"] = Field(
        "validation", description="a solved network replaces its start if it is not worse on validation accuracy, or on the objective"
    )
    batch_start: Literal["merged", "zero"] = Field(
        "merged",
        description="where every batch of an epoch starts: the network merged so far, or the all-zero network (the paper's batches started cold) inside the epoch's box",
    )
    merge: Literal["weighted_mean", "mean", "median", "majority", "best"] = Field(
        "weighted_mean",
        description="how batch networks are merged: the paper's validation-weighted mean, plain mean, median, per-weight majority vote, or the best batch on validation",
    )
    dead_inputs: Literal["start", "zero"] = Field(
        "start",
        description="weights of inputs that are 0 in a whole batch are fixed to the start's value or to 0 "
        "(default: start; zero with --neuron-penalty)",
    )
    executor: Literal["auto", "ray", "local"] = Field("auto", description="where batches are solved: Ray actors, or in this process; auto = Ray when workers > 1")
    out: Path = Field(Path("model.parquet"), description="network file to write")
    checkpoints: Path = Field(Path(".intnet/runs"), description="directory where every solved batch is stored, for --resume")
    resume: bool = Field(False, description="reuse the stored batch results of an earlier run with the same settings; solve only the missing batches")

    @field_validator("hidden", mode="before")
    @classmethod
    def _parse_hidden(cls, value):
        if isinstance(value, str):
            try:
                value = tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError("must be a comma list of positive integers, e.g. 16 or 16,16") from None
        return value

    @field_validator("hidden")
    @classmethod
    def _check_hidden(cls, value: tuple[int, ...]):
        if not value or any(width < 1 for width in value):
            raise ValueError("must be a comma list of positive integers, e.g. 16 or 16,16")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_dead_inputs(cls, data):
        # A weight pinned to the start's non-zero value would keep its neuron on: with neuron
        # optimisation the inputs a batch never sees are pinned to 0 unless the caller says otherwise.
        if isinstance(data, dict) and data.get("dead_inputs") is None:
            data = {**data, "dead_inputs": "start" if data.get("neuron_penalty") is None else "zero"}
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

    @field_validator("formulation")
    @classmethod
    def _check_formulation(cls, value: str):
        if value not in FORMULATIONS:
            raise ValueError(f"unknown formulation {value!r}; choose from {', '.join(sorted(FORMULATIONS))}")
        return value

    @model_validator(mode="after")
    def _check_data_source(self):
        if (self.dataset is None) == (self.data is None):
            raise ValueError("give either --dataset NAME or --data FILE --label COLUMN")
        if self.data is not None and not self.label:
            raise ValueError("--data needs --label COLUMN naming the label column")
        if self.dataset is not None and self.label:
            raise ValueError("--label goes with --data; built-in datasets know their label")
        if self.time_limit == 0 and self.improve == 0:
            raise ValueError("--time-limit 0 skips the monolithic solve; give --improve SECONDS, or a time limit")
        if self.improve > 0 and FORMULATIONS[self.formulation].hard:
            raise ValueError(f"--improve needs a soft-loss formulation; {self.formulation} must fit every example")
        if self.neuron_penalty is not None:
            self._check_neuron_optimisation()
        if self.train_size is not None and self.per_class is not None:
            raise ValueError("give --train-size or --per-class, not both")
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

    @property
    def dataset_name(self) -> str:
        return self.dataset or str(self.data)

    @property
    def n_epochs(self) -> int:
        """The paper's P + 1 epochs when training in batches; one pass over a single batch."""
        if self.epochs is not None:
            return self.epochs
        return self.P + 1 if self.batch_size is not None else 1

    @property
    def use_ray(self) -> bool:
        return self.executor == "ray" or (self.executor == "auto" and self.workers > 1)
