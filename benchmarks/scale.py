"""Benchmark: MIP local search on all of Adult's training data (issue 18).

For each cell (formulation, P, step rule, actors): the straight-through-estimator (STE) start on the
whole training split (26,049 examples), then local search from it for S seconds, one sub-MIP of 2 s
at most per step (doubled where the search would stop at an optimum it did not prove), as
`intnet train --time-limit 0 --improve S` runs it: in this process with one actor, side by side on
K Ray actors with K > 1. The step rule is ``plain`` (any step that lowers the
objective) or ``validation`` (``--improve-validation``: only steps that keep validation accuracy).
Reports objective and accuracies against time after every improving step, improving steps per
minute, the share of each step spent building the sub-MIP and handing it to HiGHS, and this
process's peak memory. Writes docs/results/scale.json, scale.md and scale.png.

    python benchmarks/scale.py                     # the full grid, 600 s per cell
    python benchmarks/scale.py --seconds 150 --cells max_correct:3:plain:1 ...   # what fits
    python benchmarks/scale.py --quick             # 2,000 examples, 20 s per cell, a couple of minutes
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from support.report import machine_line, pyplot, save_figure, write_results

from formulations.models import training_model
from pipeline import reporting, training
from pipeline.config import TrainConfig
from pipeline.execution.base import neighbourhood_solver
from pipeline.execution.executors import InProcessExecutor
from pipeline.solving.batches import BatchTask, EpochStart, batch_problem
from pipeline.solving.improve import improve
from pipeline.solving.solve import SolverOptions, SolveStatus

FULL_GRID = [f"{f}:{P}:{rule}:{actors}" for f, P, rule, actors in itertools.product(
    ("max_correct", "correct_margin", "sat_margin"), (3, 15), ("plain", "validation"), (1, 2))]
QUICK_GRID = ["max_correct:3:plain:1", "max_correct:3:plain:2"]


def run_cell(prepared: training.Prepared, formulation_name: str, rule: str, actors: int, seconds: float) -> dict:
    split, start = prepared.split, prepared.start
    context = replace(prepared.context, batch=replace(prepared.context.batch, formulation=formulation_name))
    epoch, task = EpochStart(start), BatchTask(0, np.arange(len(split.train_y)))
    problem, _ = batch_problem(context, epoch, task.indices)
    formulation = training_model(formulation_name)
    if actors == 1:
        executor = InProcessExecutor()
    else:
        from pipeline.execution.ray_executor import RayExecutor

        executor = RayExecutor(workers=actors, threads=1)
    executor.open(context)
    trace = [{"seconds": 0.0, "objective": formulation.objective_value(start, problem),
              **reporting.evaluate(start, split).as_dict()}]
    began = time.perf_counter()

    def record(step, network):
        if step.objective_after < step.objective_before:
            trace.append({"seconds": time.perf_counter() - began, "objective": step.objective_after,
                          "step": step.neighbourhood, **reporting.evaluate(network, split).as_dict()})

    try:
        outcome = improve(
            formulation, problem, start, seconds, SolverOptions(threads=1), seed=0, on_step=record,
            validation=(split.val_x, split.val_y) if rule == "validation" else None,
            solve_many=None if actors == 1 else neighbourhood_solver(executor, epoch, task), width=actors,
        )
    finally:
        executor.close()
    wall = time.perf_counter() - began
    solved = [s for s in outcome.steps if s.status != SolveStatus.UNCHANGED]
    shares = [s.overhead_seconds / s.seconds for s in solved if s.seconds > 0]
    by_kind = {kind: statistics.median([s.overhead_seconds / s.seconds for s in solved if s.kind == kind])
               for kind in {s.kind for s in solved}}
    return {
        "formulation": formulation_name, "P": problem.P, "rule": rule, "actors": actors, "seconds": wall,
        "N": len(split.train_y), "steps": len(outcome.steps), "improving_steps": outcome.improving_steps,
        "step_limit_end": outcome.step_limit_end, "ended": str(outcome.ended),
        "improving_steps_per_minute": 60 * outcome.improving_steps / wall,
        "overhead_share_median": statistics.median(shares) if shares else None,
        "overhead_share_max": max(shares) if shares else None,
        "overhead_share_median_by_kind": by_kind,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start": trace[0], "end": trace[-1], "trace": trace,
    }


def markdown(rows: list[dict], note: str) -> str:
    def pct(value):
        return "–" if value is None else f"{100 * value:.1f}"

    lines = [
        "# Local search on all of Adult (issue 18)", "", machine_line(), "", note, "",
        "Local search from the STE start on the whole training split, one-thread sub-MIPs of at most 2 s at "
        "first (cap: where it ended, doubled each time a search found nothing while a sub-MIP stopped at it). "
        "Objective recomputed from the weights. Accuracies in %: train / validation / test. Overhead: "
        "share of a step spent building its sub-MIP and handing it to HiGHS (median, max). Memory: this "
        "process's peak (the driver; actors are separate processes). Ended: at the time limit, or earlier "
        "at a local optimum of every neighbourhood that no sub-MIP left unproven.", "",
        "| formulation | P | rule | actors | N | seconds | ended | cap s | objective | start acc | end acc | improving steps / min "
        "| overhead median / max | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, e = r["start"], r["end"]
        lines.append(
            f"| {r['formulation']} | {r['P']} | {r['rule']} | {r['actors']} | {r['N']} | {r['seconds']:.0f} | "
            f"{r['ended']} | "
            f"{r['step_limit_end']:g} | "
            f"{s['objective']:.0f} → {e['objective']:.0f} | {pct(s['train'])} / {pct(s['validation'])} / "
            f"{pct(s['test'])} | {pct(e['train'])} / {pct(e['validation'])} / {pct(e['test'])} | "
            f"{r['improving_steps_per_minute']:.1f} | {pct(r['overhead_share_median'])} / "
            f"{pct(r['overhead_share_max'])} % | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, (objective_axis, test_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for r in rows:
        label = f"{r['formulation']} P={r['P']} {r['rule']} ×{r['actors']}"
        t = [p["seconds"] for p in r["trace"]]
        start = r["trace"][0]["objective"] or 1.0
        objective_axis.step(t, [p["objective"] / start for p in r["trace"]], where="post", label=label)
        test_axis.step(t, [100 * p["test"] for p in r["trace"]], where="post", label=label)
    objective_axis.set(xlabel="seconds", ylabel="objective / start's", title="objective")
    test_axis.set(xlabel="seconds", ylabel="test accuracy %", title="test accuracy")
    test_axis.legend(fontsize=7)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="seconds of local search per cell (default 600, quick 20)")
    parser.add_argument("--cells", nargs="*", help="FORMULATION:P:RULE:ACTORS cells to run (default: the grid)")
    parser.add_argument("--note", default="", help="what was run, and the machine's load")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 600.0)
    cells = args.cells or (QUICK_GRID if args.quick else FULL_GRID)
    out = Path(args.out)
    rows, prepared = [], {}
    for cell in cells:
        name, P, rule, actors = cell.split(":")
        if P not in prepared:
            config = TrainConfig(dataset="adult", train_size=2000 if args.quick else None, P=int(P), seed=0,
                                 time_limit=0, improve=seconds)
            prepared[P] = training.prepare(config)
        rows.append(run_cell(prepared[P], name, rule, int(actors), seconds))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "trace"}), flush=True)
        write_results(out, "scale", {"seconds": seconds, "note": args.note, "rows": rows}, markdown(rows, args.note))
        plot(rows, out / "scale.png")


if __name__ == "__main__":
    main()
