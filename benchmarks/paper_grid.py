"""Benchmark: the paper's experiments 2A (Adult) and 2B (Heart) on HiGHS, every training model.

For each dataset, training size N, P and model: the straight-through-estimator (STE) start (the
paper's gradient baseline, ``gradient`` in the table), then one monolithic MIP of the model from it
(hard models, which the start rarely fits, from nothing), HiGHS with a stated time limit and the
paper's early cutoff (objective ≤ 10 % of N, §2.7). Records training and test accuracy, the solve's
status and the time to reach the cutoff (blank where it was not reached), beside the paper's
Adult numbers (paper-method.md §6.1: Gurobi, 10 h limit, mean ± std over 5 seeds). Writes
docs/results/paper_grid.{json,md} (``--quick``: paper_grid-quick.*).

    python benchmarks/paper_grid.py --seconds 60              # every model, P ∈ {1, 3, 7, 15}, one seed
    python benchmarks/paper_grid.py --quick                   # Heart N = 40, P = 3, two models, 5 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from formulations import FORMULATIONS, TrainingProblem
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.solve import SolverOptions, solve_mip

SIZES = {"adult": (40, 80, 120, 160, 200, 240, 280), "heart": (40, 80, 120, 160, 200)}
TARGET_ERROR = 0.1

# Test accuracy (%) of the paper's Adult runs, mean over 5 seeds, by model, P and N (paper-method.md §6.1).
PAPER_ADULT_TEST = {
    ("max_correct", 1): (71.4, 74.4, 75.4, 75.7, 77.1, 77.3, 75.8),
    ("max_correct", 3): (72.5, 75.0, 75.5, 75.4, 74.7, 77.0, 76.6),
    ("max_correct", 7): (65.7, 73.5, 73.0, 76.2, 76.9, 76.0, 76.9),
    ("max_correct", 15): (69.0, 74.8, 74.0, 73.8, 77.3, 75.5, 75.1),
    ("sat_margin", 1): (72.6, 75.8, 77.9, 79.5, 80.2, 79.9, 79.6),
    ("sat_margin", 3): (72.6, 76.5, 77.1, 78.8, 79.6, 80.2, 81.2),
    ("sat_margin", 7): (71.0, 74.4, 76.0, 78.1, 79.2, 79.4, 80.5),
    ("sat_margin", 15): (71.1, 75.8, 75.6, 78.1, 78.9, 79.9, 80.1),
    ("min_hinge", 1): (72.7, 76.2, 77.7, 78.5, 79.2, 78.9, 79.7),
    ("min_hinge", 3): (71.8, 76.1, 77.1, 77.6, 78.9, 79.2, 79.7),
    ("min_hinge", 7): (72.2, 75.4, 77.1, 79.2, 78.8, 79.4, 79.7),
    ("min_hinge", 15): (72.1, 74.7, 76.7, 77.9, 78.4, 78.8, 79.9),
    ("gradient", 1): (75.4, 76.3, 77.3, 78.4, 79.4, 79.0, 78.8),
    ("gradient", 3): (74.9, 77.1, 78.1, 79.1, 79.1, 79.1, 79.8),
    ("gradient", 7): (70.0, 75.2, 76.6, 78.1, 78.8, 78.6, 80.0),
    ("gradient", 15): (72.2, 70.3, 75.0, 73.9, 76.6, 76.1, 78.2),
}


def run_cell(dataset: str, n: int, P: int, models: list[str], seconds: float, threads: int, seed: int) -> list[dict]:
    """The gradient start and every model's MIP on one split."""
    config = TrainConfig(dataset=dataset, train_size=n, P=P, seed=seed, executor="local")
    data = training.load_dataset(config)
    split = training.split_data(config, data)
    began = time.perf_counter()
    start = training.start_network(config, split, len(data.classes))
    rows = [{"model": "gradient", "status": "–", "seconds": time.perf_counter() - began, "time_to_target": None,
             **training.evaluate(start, split).as_dict()}]
    problem = TrainingProblem(split.train_x, split.train_y, len(data.classes), config.hidden, P)
    options = SolverOptions(time_limit=seconds, threads=threads, target_error=TARGET_ERROR)
    for model in models:
        formulation = FORMULATIONS[model]()
        outcome = solve_mip(formulation, problem, start, options)
        target = formulation.target(problem, TARGET_ERROR)
        # The cutoff is reached when the solve stopped on it, or proved an optimum within it; a hard
        # model (no cutoff) when it proved an optimum. A time-limited solve's time to it is unknown.
        reached = outcome.status == "target_reached" or (
            outcome.status == "optimal" and (target is None or outcome.objective <= target)
        )
        rows.append({"model": model, "status": outcome.status, "seconds": outcome.solve_seconds,
                     "time_to_target": outcome.solve_seconds if reached else None,
                     "objective": outcome.objective, "start_objective": outcome.start_objective,
                     **training.evaluate(outcome.network, split).as_dict()})
    return [r | {"dataset": dataset, "N": n, "P": P, "seed": seed} for r in rows]


def markdown(rows: list[dict], seconds: float, threads: int) -> str:
    lines = [
        f"# The paper's experiments 2A / 2B on HiGHS ({seconds:g} s per MIP, {threads} thread(s))",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; versions "
        f"{json.dumps(training.package_versions())}. Each cell: test accuracy % (mean over the seeds run), then the "
        "time to the paper's cutoff (objective ≤ 10 % of N) in seconds where it was reached, `–` where not. "
        "`gradient` is the STE start every MIP began from. In brackets: the paper's Adult test accuracy (Gurobi, "
        "10 h, 5 seeds; paper-method.md §6.1).",
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        sizes = sorted({r["N"] for r in rows if r["dataset"] == dataset})
        lines += ["", f"## {dataset}", "", "| model | P | " + " | ".join(f"N={n}" for n in sizes) + " |",
                  "|---|---|" + "---|" * len(sizes)]
        keys = sorted({(r["model"], r["P"]) for r in rows if r["dataset"] == dataset},
                      key=lambda k: (k[0] != "gradient", k[0], k[1]))
        for model, P in keys:
            cells = []
            for i, n in enumerate(sizes):
                found = [r for r in rows if (r["dataset"], r["model"], r["P"], r["N"]) == (dataset, model, P, n)]
                test = statistics.mean(r["test"] for r in found)
                times = [r["time_to_target"] for r in found if r["time_to_target"] is not None]
                cell = f"{100 * test:.1f} ({statistics.mean(times):.0f} s)" if times else f"{100 * test:.1f} (–)"
                paper = PAPER_ADULT_TEST.get((model, P)) if dataset == "adult" else None
                if paper and n in SIZES["adult"]:
                    cell += f" [{paper[SIZES['adult'].index(n)]}]"
                cells.append(cell)
            lines.append(f"| {model} | {P} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Heart N = 40, P = 3, sat_margin and max_correct, 5 s")
    parser.add_argument("--datasets", default="adult,heart")
    parser.add_argument("--models", default=",".join(sorted(FORMULATIONS)))
    parser.add_argument("--P", default="1,3,7,15")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    if args.quick:
        grid, models, Ps, seconds = [("heart", 40)], ["sat_margin", "max_correct"], [3], 5.0
    else:
        grid = [(d, n) for d in args.datasets.split(",") for n in SIZES[d]]
        models, Ps, seconds = args.models.split(","), [int(p) for p in args.P.split(",")], args.seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "paper_grid-quick" if args.quick else "paper_grid"
    rows: list[dict] = []
    for dataset, n in grid:
        for P in Ps:
            for seed in range(args.seeds):
                rows += run_cell(dataset, n, P, models, seconds, args.threads, seed)
                print(f"{dataset} N={n} P={P} seed={seed}: " + ", ".join(
                    f"{r['model']} {100 * r['test']:.1f}" for r in rows[-len(models) - 1:]), flush=True)
                # Written after every cell, so a long run that is stopped keeps what it measured.
                (out / f"{name}.json").write_text(json.dumps({"seconds": seconds, "rows": rows}, indent=1))
                (out / f"{name}.md").write_text(markdown(rows, seconds, args.threads))


if __name__ == "__main__":
    main()
