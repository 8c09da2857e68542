"""Benchmark: the paper's experiment 3, neuron optimisation (docs/method.md §10.2), on HiGHS.

sat_margin on Adult, N = 800, P = 15, one hidden layer of 16, from the straight-through-estimator
(STE) start, for each penalty α ∈ {0, 0.1, 0.01}: α = 0 is the paper's run without compression
(no switches, the plain model); α > 0 adds α per neuron kept and reads the margin on the neurons
switched on (``--neuron-penalty α``). One seed and a stated time limit per α (the paper: 5 seeds,
10 h each, Gurobi). Inputs no training example uses have their weights pinned at 0, as the paper's
dead inputs. From the same start, two methods at the same time each: the monolithic MIP (the
paper's) and intnet's MIP local search (``--improve``) on the same penalised objective, since HiGHS
rarely improves the monolithic model at this N. Reports each network (not judged on validation),
stripped of its switched-off neurons: neurons kept, train / test accuracy, size in bits before and
after stripping, the objective recomputed from the weights, beside the paper's numbers. Writes
docs/results/neurons.{json,md,png} (``--name``; ``--quick``: neurons-quick.*).

    python benchmarks/neurons.py            # Adult N = 800, 120 s per α and method, 2 threads
    python benchmarks/neurons.py --alphas 0.1 --seconds 400 --name neurons-400s   # time to reach drops
    python benchmarks/neurons.py --quick    # Heart N = 40, 10 s per α ∈ {0, 0.1}
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from support.report import machine_line, pyplot, save_figure, write_results

from formulations.models import training_model
from formulations.network import strip_neurons
from formulations.neuron_switches import neurons_on
from pipeline import reporting, training
from pipeline.config import TrainConfig
from pipeline.solving.batches import EpochStart, batch_problem
from pipeline.solving.improve import improve
from pipeline.solving.solve import solve_mip

PAPER = {
    "source": "docs/method.md §10.2: Thorbjarnarson & Yorke-Smith's reference code, results/json/exp2/"
              "sat_margin-{α}.json (final commit bde49d8), recomputed; 5 seeds, 10 h limit (every run hit it), Gurobi",
    "rows": [
        {"alpha": 0.0, "train": "79.65 ± 3.63", "test": "78.10 ± 1.98", "neurons": "16 ± 0", "objective": "631.4 ± 68.8"},
        {"alpha": 0.1, "train": "86.95 ± 2.01", "test": "78.84 ± 1.90", "neurons": "5.2 ± 5.4 (3, 16, 2, 3, 2)",
         "objective": "228.7 ± 65.3"},
        {"alpha": 0.01, "train": "85.70 ± 2.91", "test": "77.94 ± 1.17", "neurons": "2.2 ± 0.4 (3, 2, 2, 2, 2)",
         "objective": "254.6 ± 86.5"},
    ],
}


def run_alpha(dataset: str, n: int, P: int, alpha: float, seconds: float, threads: int, seed: int) -> dict:
    config = TrainConfig(
        dataset=dataset, train_size=n, P=P, hidden=(16,), seed=seed, executor="local", time_limit=seconds,
        formulation="sat_margin",
        threads=threads, neuron_penalty=alpha or None, dead_inputs="zero",
    )
    run = training.prepare(config)
    split, context = run.split, run.context
    problem, _ = batch_problem(context, EpochStart(run.start), np.arange(len(split.train_y)))
    formulation = training_model(config.formulation, neuron_penalty=config.neuron_penalty)
    start = problem.bounds.clip(run.start)

    def describe(network, wall):
        stripped = strip_neurons(network)
        return {
            "objective": formulation.objective_value(network, problem), "seconds": wall,
            "neurons_kept": stripped.sizes[1], "neurons_on": neurons_on(network)[0],
            "bits_before": network.size_bits, "bits_after": stripped.size_bits,
            **reporting.evaluate(stripped, split).as_dict(),
        }

    row = {"dataset": dataset, "N": n, "P": P, "alpha": alpha, "seed": seed, "time_limit": seconds,
           "threads": threads, "start": describe(start, 0.0)}
    began = time.perf_counter()
    outcome = solve_mip(formulation, problem, start, context.solver)
    row["monolithic"] = describe(outcome.network, time.perf_counter() - began) | {
        "status": outcome.status, "bound": outcome.bound}
    began = time.perf_counter()
    local = improve(formulation, problem, start, seconds, replace(context.solver, threads=1), seed=seed)
    # Which neighbourhoods ran and which gained: whether the search reached its drop steps at all.
    kinds = collections.Counter(step.kind for step in local.steps)
    gains = collections.Counter(step.kind for step in local.steps if step.objective_after < step.objective_before)
    row["improve"] = describe(local.network, time.perf_counter() - began) | {
        "steps": len(local.steps), "improving_steps": local.improving_steps,
        "steps_by_kind": dict(kinds), "gains_by_kind": dict(gains)}
    return row


def markdown(rows: list[dict], quick: bool) -> str:
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    first = rows[0]
    lines = [
        f"# Neuron optimisation: the paper's experiment 3 on HiGHS ({first['dataset']}, N = {first['N']}, "
        f"P = {first['P']}, sat_margin, 16 hidden, {first['time_limit']:g} s per α, one seed)",
        "",
        f"{machine_line()} HiGHS with {first['threads']} thread(s), the paper's 10 % "
        "target for the monolithic MIP; local search: one-thread sub-MIPs of one neighbourhood each (2 s cap). "
        "Each network is stripped of switched-off neurons. "
        "Objective: sat_margin's unsatisfied (example, output) margins + α·neurons, recomputed from the weights "
        "(lower is better). Accuracies in %.",
        "",
        "| α | method | objective | neurons kept | train | test | bits before → after | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for method, label in (("start", "start (STE)"), ("monolithic", "monolithic MIP"), ("improve", "local search")):
            m = r[method]
            if method == "monolithic":
                label += f" ({m['status']})"
            lines.append(
                f"| {r['alpha']:g} | {label} | {m['objective']:g} | {m['neurons_kept']} | {pct(m['train'])} | "
                f"{pct(m['test'])} | {m['bits_before']} → {m['bits_after']} | {m['seconds']:.0f} |"
            )
    lines += ["", "Local search's steps by neighbourhood (gains / run; `drop` only with α > 0):", ""]
    lines += [
        f"- α = {r['alpha']:g}: " + ", ".join(
            f"{kind} {r['improve']['gains_by_kind'].get(kind, 0)} / {count}"
            for kind, count in sorted(r["improve"]["steps_by_kind"].items()))
        for r in rows
    ]
    lines += [
        "",
        f"The paper ({PAPER['source']}), Adult, N = 800, P = 15, mean ± std over 5 seeds:",
        "",
        "| α | train | test | neurons kept | objective |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {p['alpha']:g} | {p['train']} | {p['test']} | {p['neurons']} | {p['objective']} |" for p in PAPER["rows"]]
    if quick:
        lines += ["", "This is the `--quick` run (Heart, N = 40, 10 s): a check that the benchmark runs, not experiment 3."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Neurons kept and test accuracy per α, for the monolithic MIP and local search."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    labels = [f"α = {r['alpha']:g}" for r in rows]
    x = range(len(rows))
    for offset, method in ((-0.2, "monolithic"), (0.2, "improve")):
        label = "monolithic MIP" if method == "monolithic" else "MIP local search"
        left.bar([i + offset for i in x], [r[method]["neurons_kept"] for r in rows], width=0.4, label=label)
        right.bar([i + offset for i in x], [100 * r[method]["test"] for r in rows], width=0.4, label=label)
    right.axhline(100 * rows[0]["start"]["test"], color="black", linestyle=":", label="start (STE)")
    for ax, title in ((left, "hidden neurons kept"), (right, "test accuracy %")):
        ax.set_xticks(list(x), labels)
        ax.set_title(title, fontsize=9)
    right.set_ylim(50, 90)
    right.legend(fontsize=7)
    first = rows[0]
    figure.suptitle(f"Neuron optimisation, {first['dataset']} N = {first['N']}, P = {first['P']}, "
                    f"{first['time_limit']:g} s per α", fontsize=10)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Heart, N = 40, 10 s per α ∈ {0, 0.1}")
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit per α")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alphas", default="0,0.1,0.01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="neurons", help="file name of the results (without suffix)")
    parser.add_argument("--render", metavar="JSON", help="only draw the plot of a stored run")
    args = parser.parse_args()
    if args.render:
        plot(json.loads(Path(args.render).read_text())["rows"], Path(args.render).with_suffix(".png"))
        return
    if args.quick:
        dataset, n, seconds, alphas = "heart", 40, 10.0, [0.0, 0.1]
    else:
        dataset, n, seconds, alphas = "adult", 800, args.seconds, [float(a) for a in args.alphas.split(",")]
    out = Path(args.out)
    name = f"{args.name}-quick" if args.quick else args.name
    rows = []
    for alpha in alphas:
        row = run_alpha(dataset, n, 15, alpha, seconds, args.threads, args.seed)
        rows.append(row)
        for method in ("start", "monolithic", "improve"):
            m = row[method]
            print(f"α = {alpha:g}, {method}: objective {m['objective']:g}, {m['neurons_kept']} neurons kept, "
                  f"test {m['test']}", flush=True)
        # Written after every α, so a long run that is stopped keeps what it measured.
        write_results(out, name, {"paper": PAPER, "rows": rows}, markdown(rows, args.quick))
    plot(rows, out / f"{name}.png")


if __name__ == "__main__":
    main()
