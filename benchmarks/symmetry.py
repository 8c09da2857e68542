"""Benchmark: the effect of symmetry breaking among hidden neurons on the time to the paper's target.

Each instance is solved twice from the all-zero network, with the same HiGHS settings (one thread,
the paper's 10 % cutoff, a time limit): without and with ``symmetry_breaking`` (interchangeable
hidden neurons ordered by bias, docs/formulations.md). Instances: random labels on 5 random inputs
with 3 hidden neurons (N = 20; hard enough that the cutoff takes seconds), and Heart N = 40 with
16 hidden neurons (where 16! orderings of a layer are interchangeable). Writes
docs/results/symmetry.{json,md} (``--quick``: symmetry-quick.*).

    python benchmarks/symmetry.py            # 4 seeds, P ∈ {1, 3}, max_correct and min_hinge, 30 s
    python benchmarks/symmetry.py --quick    # random instances only, 2 seeds, P = 1, 5 s
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from support.report import machine_line, write_results

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import training_model
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.solving.solve import SolverOptions, solve_mip

TARGET_ERROR = 0.1


def instance(kind: str, seed: int, P: int) -> TrainingProblem:
    if kind == "random":
        rng = np.random.default_rng(seed)
        return TrainingProblem(np.round(rng.random((20, 5)), 4), rng.integers(0, 2, 20), 2, (3,), P)
    config = TrainConfig(dataset="heart", train_size=40, seed=seed, P=P, executor="local")
    split = training.prepare(config.model_copy(update={"heuristic_steps": 0})).split
    return TrainingProblem(split.train_x, split.train_y, 2, (16,), P)


def solve(problem: TrainingProblem, model: str, ordered: bool, seconds: float) -> dict:
    formulation = training_model(model, symmetry_breaking=ordered)
    start = IntegerNetwork.zeros([problem.x.shape[1], *problem.hidden, problem.n_classes], problem.P)
    outcome = solve_mip(formulation, problem, start, SolverOptions(time_limit=seconds, threads=1, target_error=TARGET_ERROR))
    target = formulation.target(problem, TARGET_ERROR)
    reached = outcome.status == "target_reached" or (outcome.status == "optimal" and outcome.objective <= target)
    return {"status": outcome.status, "objective": outcome.objective, "seconds": outcome.solve_seconds,
            "time_to_target": outcome.solve_seconds if reached else None}


def markdown(rows: list[dict], seconds: float) -> str:
    lines = [
        "# Symmetry breaking among hidden neurons: time to the paper's target",
        "",
        f"{machine_line()} HiGHS 1 thread, {seconds:g} s limit, the paper's 10 % cutoff, from the all-zero network. "
        "Each cell: time to the cutoff in s without → with symmetry breaking (`–`: not reached; then the "
        "final objective in brackets).",
        "",
        "| instance | model | P | seed | without | with |",
        "|---|---|---|---|---|---|",
    ]

    def cell(r: dict) -> str:
        return f"{r['time_to_target']:.1f}" if r["time_to_target"] is not None else f"– ({r['objective']:.4g})"

    for r in rows:
        lines.append(f"| {r['instance']} | {r['model']} | {r['P']} | {r['seed']} | {cell(r['without'])} | {cell(r['with'])} |")
    both = [(r["without"]["time_to_target"], r["with"]["time_to_target"]) for r in rows
            if r["without"]["time_to_target"] is not None and r["with"]["time_to_target"] is not None]
    reached = {k: sum(r[k]["time_to_target"] is not None for r in rows) for k in ("without", "with")}
    lines += ["", f"Reached the cutoff: {reached['without']} of {len(rows)} without, {reached['with']} with."]
    if both:
        ratios = [(w + 0.05) / (o + 0.05) for o, w in both]  # +0.05 s: a floor for near-instant solves
        lines.append(f"Where both reached it ({len(both)}): median time ratio with / without "
                     f"{statistics.median(ratios):.2f} (below 1: symmetry breaking faster).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    if args.quick:
        instances, seeds, Ps, models, seconds = ["random"], range(2), [1], ["max_correct"], 5.0
    else:
        instances, seeds, Ps, models, seconds = ["random", "heart"], range(4), [1, 3], ["max_correct", "min_hinge"], 30.0
    name = "symmetry-quick" if args.quick else "symmetry"
    rows: list[dict] = []
    for kind in instances:
        for P in Ps:
            for seed in seeds:
                problem = instance(kind, seed, P)
                for model in models:
                    rows.append({"instance": kind, "model": model, "P": P, "seed": seed,
                                 "without": solve(problem, model, False, seconds),
                                 "with": solve(problem, model, True, seconds)})
                    print(rows[-1], flush=True)
                    write_results(Path(args.out), name, {"seconds": seconds, "rows": rows}, markdown(rows, seconds))


if __name__ == "__main__":
    main()
