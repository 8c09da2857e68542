"""Benchmark: MIP local search (`--improve`) against the monolithic MIP at equal wall time.

For each dataset, training size N and P: the straight-through-estimator (STE) start, then from
that same start (a) the monolithic model solved by HiGHS for S seconds and (b) the local search for
S seconds. Reports each network's objective (recomputed from its weights) and its train /
validation / test accuracy. Writes docs/results/improve.json and improve.md.

    python benchmarks/improve_vs_monolithic.py            # the full grid, 60 s per method
    python benchmarks/improve_vs_monolithic.py --quick    # a few minutes
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from support.report import machine_line, write_results

from formulations import TrainingProblem
from formulations.models import FORMULATIONS
from pipeline import reporting, training
from pipeline.config import TrainConfig
from pipeline.solving.improve import improve
from pipeline.solving.solve import SolverOptions, solve_mip

FULL_GRID = [("heart", n) for n in (40, 120, 200)] + [("adult", n) for n in (200, 1000, 2000)]
QUICK_GRID = [("heart", 40), ("heart", 120)]


def run_instance(dataset: str, n: int, P: int, formulation_name: str, seconds: float, seed: int) -> dict:
    config = TrainConfig(dataset=dataset, train_size=n, P=P, seed=seed, executor="local")
    timings: dict[str, float] = {}
    run = training.prepare(config, timings=timings)
    split, start, n_classes = run.split, run.start, len(run.dataset.classes)
    ste_seconds = timings["start_network"]
    problem = TrainingProblem(split.train_x, split.train_y, n_classes, config.hidden, P)
    formulation = FORMULATIONS[formulation_name]()

    def describe(network, wall):
        return {"objective": formulation.objective_value(network, problem), "seconds": wall,
                **reporting.evaluate(network, split).as_dict()}

    row = {"dataset": dataset, "N": n, "P": P, "formulation": formulation_name, "seed": seed,
           "start": describe(start, ste_seconds)}
    began = time.perf_counter()
    mono = solve_mip(formulation, problem, start,
                     SolverOptions(time_limit=seconds, threads=2, mip_gap=0.0, target_error=None))
    row["monolithic"] = describe(mono.network, time.perf_counter() - began) | {"status": mono.status}
    began = time.perf_counter()
    local = improve(formulation, problem, start, seconds, SolverOptions(threads=1), seed=seed)
    row["improve"] = describe(local.network, time.perf_counter() - began) | {
        "steps": len(local.steps), "improving_steps": local.improving_steps, "rounds": local.rounds,
    }
    row["improve_cut"] = relative_cut(row["start"]["objective"], row["improve"]["objective"])
    row["monolithic_cut"] = relative_cut(row["start"]["objective"], row["monolithic"]["objective"])
    return row


def relative_cut(start: float, after: float) -> float:
    """Share of the start's objective removed; 0 when the start was already at 0."""
    return 0.0 if start == 0 else 1 - after / start


def markdown(rows: list[dict], seconds: float) -> str:
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [
        f"# Local search against the monolithic MIP ({seconds:g} s each, one seed)",
        "",
        f"{machine_line()} Monolithic: HiGHS, 2 threads, gap 0, no early "
        "target. Local search: one-thread sub-MIPs of one neighbourhood each (2 s cap per sub-MIP). "
        "Objective: the formulation's, recomputed from the weights (lower is better). Accuracies in %: "
        "train / validation / test.",
        "",
        "| formulation | data | N | P | start obj | monolithic obj | local search obj | cut by local search | start acc | monolithic acc | local search acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = [f"{pct(r[m]['train'])} / {pct(r[m]['validation'])} / {pct(r[m]['test'])}" for m in ("start", "monolithic", "improve")]
        lines.append(
            f"| {r['formulation']} | {r['dataset']} | {r['N']} | {r['P']} | {r['start']['objective']:g} | "
            f"{r['monolithic']['objective']:g} ({r['monolithic']['status']}) | {r['improve']['objective']:g} | "
            f"{100 * r['improve_cut']:.0f} % | {acc[0]} | {acc[1]} | {acc[2]} |"
        )
    for name in sorted({r["formulation"] for r in rows}):
        cuts = [r["improve_cut"] for r in rows if r["formulation"] == name]
        big = [r["improve_cut"] for r in rows if r["formulation"] == name and r["N"] >= 120]
        lines.append("")
        lines.append(
            f"{name}: median cut by local search {100 * statistics.median(cuts):.0f} % "
            f"(N ≥ 120: min {100 * min(big):.0f} %)" if big else f"{name}: median cut {100 * statistics.median(cuts):.0f} %"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small Heart instances, 10 s each")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--P", default="1,3,15")
    parser.add_argument("--formulations", default="sat_margin,correct_margin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    grid = QUICK_GRID if args.quick else FULL_GRID
    seconds = 10.0 if args.quick else args.seconds
    Ps = [3] if args.quick else [int(p) for p in args.P.split(",")]
    out = Path(args.out)
    name = "improve-quick" if args.quick else "improve"
    rows = []
    for formulation in args.formulations.split(","):
        for dataset, n in grid:
            for P in Ps:
                row = run_instance(dataset, n, P, formulation, seconds, args.seed)
                rows.append(row)
                print(f"{formulation} {dataset} N={n} P={P}: start {row['start']['objective']:g}, "
                      f"monolithic {row['monolithic']['objective']:g}, local search {row['improve']['objective']:g}",
                      flush=True)
                # Written after every instance, so a long run that is stopped keeps what it measured.
                write_results(out, name, {"seconds": seconds, "rows": rows}, markdown(rows, seconds))


if __name__ == "__main__":
    main()
