"""Benchmark: the paper's experiments 2A (Adult) and 2B (Heart) on HiGHS, every training model.

For each dataset, training size N, P, seed and model: the straight-through-estimator (STE) start
(the paper's gradient baseline, ``gradient`` in the tables), then one monolithic MIP of the model
from it (hard models, which the start rarely fits, from nothing), HiGHS with a stated time limit and
the paper's early cutoff (objective ≤ 10 % of N, docs/method.md §4.8). Beside them, on the same
split, two float references: logistic regression and a float MLP with the same hidden layer.
Records training and test accuracy, the solve's status and the time to reach the cutoff, beside the
paper's Adult numbers (docs/method.md §10.1: Gurobi, 10 h limit, mean ± std over 5 seeds). Cells
run in parallel worker processes, one HiGHS thread each. Writes docs/results/paper_grid.{json,md,png} (``--quick``:
paper_grid-quick.*).

    python benchmarks/paper_grid.py --seconds 10 --seeds 5 --models max_correct,sat_margin,min_hinge \
        --first-seed-models min_weight,max_margin,correct_margin,lexicographic    # the docs' run
    python benchmarks/paper_grid.py --quick    # Heart N = 40, P = 3, two models, 5 s
    python benchmarks/paper_grid.py --seconds 10 --seeds 1 --method "local search"    # intnet's local search
    python benchmarks/paper_grid.py --render docs/results/paper_grid.json docs/results/paper_grid-local-search.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from support.float_baselines import accuracy, float_mlp, logistic_regression
from support.report import machine_line, mean_std, pyplot, save_figure, write_results

from formulations import IntegerNetwork, TrainingProblem
from formulations.models import FORMULATIONS, Formulation
from pipeline import reporting, training
from pipeline.config import TrainConfig
from pipeline.solving.batches import RETURNED_NO_NETWORK
from pipeline.solving.improve import improve
from pipeline.solving.solve import SolverOptions, solve_mip

SIZES = {"adult": (40, 80, 120, 160, 200, 240, 280), "heart": (40, 80, 120, 160, 200)}
TARGET_ERROR = 0.1
FLOAT_MODELS = ("logistic", "float_mlp")

# Test accuracy (%) of the paper's Adult runs, mean over 5 seeds, by model, P and N (docs/method.md §10.1).
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

# Training accuracy (%) and runtime (s, 36000 = the 10 h limit) of the same runs (docs/method.md §10.1).
PAPER_ADULT_TRAIN = {
    ("max_correct", 1): (100.0, 97.0, 96.7, 91.6, 91.0, 92.4, 92.1),
    ("max_correct", 3): (99.5, 99.0, 97.3, 97.9, 92.3, 93.3, 91.6),
    ("max_correct", 7): (100.0, 97.8, 98.5, 97.5, 97.5, 96.3, 98.1),
    ("max_correct", 15): (100.0, 99.8, 98.3, 99.1, 100.0, 98.2, 98.0),
    ("sat_margin", 1): (100.0, 98.5, 96.2, 95.2, 95.3, 94.2, 92.4),
    ("sat_margin", 3): (100.0, 99.0, 97.7, 98.2, 96.2, 95.4, 95.2),
    ("sat_margin", 7): (100.0, 99.8, 99.3, 98.9, 98.1, 95.8, 96.1),
    ("sat_margin", 15): (100.0, 99.8, 99.8, 99.6, 99.1, 96.8, 96.9),
    ("min_hinge", 1): (99.0, 98.5, 98.2, 98.5, 98.4, 98.3, 97.5),
    ("min_hinge", 3): (100.0, 99.8, 99.5, 98.9, 98.9, 97.6, 97.6),
    ("min_hinge", 7): (100.0, 99.8, 98.7, 98.6, 98.7, 98.9, 98.9),
    ("min_hinge", 15): (99.5, 99.2, 99.5, 99.4, 98.2, 94.8, 91.6),
    ("gradient", 1): (99.0, 98.5, 98.3, 97.8, 97.9, 96.3, 94.6),
    ("gradient", 3): (99.5, 98.8, 98.7, 98.8, 99.0, 98.8, 97.9),
    ("gradient", 7): (93.5, 95.8, 96.7, 96.9, 96.9, 97.0, 97.0),
    ("gradient", 15): (88.0, 85.8, 86.3, 87.2, 90.4, 88.5, 89.8),
}
PAPER_ADULT_SECONDS = {
    ("max_correct", 1): (1, 3, 8, 9, 85, 28, 86),
    ("max_correct", 3): (1, 5, 11, 20, 23, 16, 32),
    ("max_correct", 7): (1, 4, 15, 28, 19, 35, 46),
    ("max_correct", 15): (1, 6, 21, 35, 24, 90, 29),
    ("sat_margin", 1): (1, 3, 19, 225, 6322, 29301, 36000),
    ("sat_margin", 3): (1, 4, 10, 55, 378, 7530, 13236),
    ("sat_margin", 7): (1, 4, 11, 30, 95, 408, 4053),
    ("sat_margin", 15): (1, 4, 11, 24, 60, 624, 1299),
    ("min_hinge", 1): (1, 9, 48, 417, 1926, 14205, 33433),
    ("min_hinge", 3): (1, 11, 35, 2586, 11561, 28659, 34790),
    ("min_hinge", 7): (1, 4, 12, 395, 1463, 8445, 16229),
    ("min_hinge", 15): (2, 7, 16, 70, 14904, 36000, 36000),
}


def run_cell(dataset: str, n: int, P: int, seed: int, models: list[str], with_floats: bool, seconds: float,
             method: str = "monolithic") -> list[dict]:
    """The gradient start and every model's MIP on one split (and the float references, once per
    split); ``method`` "local search" runs intnet's MIP local search from the start instead."""
    config = TrainConfig(dataset=dataset, train_size=n, P=P, seed=seed, executor="local")
    timings: dict[str, float] = {}
    run = training.prepare(config, timings=timings)
    split, start, n_classes = run.split, run.start, len(run.dataset.classes)
    rows = [{"model": "gradient", "P": P, "status": "–", "seconds": timings["start_network"],
             "time_to_target": None, **reporting.evaluate(start, split).as_dict()}]
    if with_floats:
        for name, fit in (("logistic", logistic_regression), ("float_mlp", float_mlp)):
            layers = fit(split.train_x, split.train_y, n_classes, seed=seed)
            rows.append({"model": name, "P": None, "status": "–", "time_to_target": None,
                         "train": accuracy(layers, split.train_x, split.train_y),
                         "test": accuracy(layers, split.test_x, split.test_y)})
    problem = TrainingProblem(split.train_x, split.train_y, n_classes, config.hidden, P)
    options = SolverOptions(time_limit=seconds, threads=1, target_error=TARGET_ERROR)
    for model in models:
        formulation = FORMULATIONS[model]()
        if method == "local search":
            network, row = local_search(formulation, problem, start, options, seed)
            rows.append(row | {"model": f"{model}, local search", **reporting.evaluate(network, split).as_dict()})
            continue
        outcome = solve_mip(formulation, problem, start, options)
        target = formulation.target(problem, TARGET_ERROR)
        # The cutoff is reached when the solve stopped on it, or proved an optimum within it; a hard
        # model (no cutoff) when it proved an optimum. A time-limited solve's time to it is unknown.
        reached = outcome.status == "target_reached" or (
            outcome.status == "optimal" and (target is None or outcome.objective <= target)
        )
        rows.append({"model": model, "P": P, "status": outcome.status, "seconds": outcome.solve_seconds,
                     "time_to_target": outcome.solve_seconds if reached else None,
                     "objective": outcome.objective, "start_objective": outcome.start_objective,
                     **reporting.evaluate(outcome.network, split).as_dict()})
    return [r | {"dataset": dataset, "N": n, "seed": seed} for r in rows]


def local_search(formulation: Formulation, problem: TrainingProblem, start: IntegerNetwork, options: SolverOptions,
                 seed: int) -> tuple[IntegerNetwork, dict]:
    """intnet's MIP local search for the whole time limit; the time to the cutoff is when the first
    step took the objective to it (0 when the start was already there)."""
    target = formulation.target(problem, TARGET_ERROR)
    began = time.perf_counter()
    reached_at: list[float] = []

    def on_step(step, network) -> None:
        if not reached_at and step.objective_after <= target:
            reached_at.append(time.perf_counter() - began)

    outcome = improve(formulation, problem, start, options.time_limit, options, seed=seed, on_step=on_step)
    if outcome.start_objective <= target:
        reached_at.insert(0, 0.0)
    return outcome.network, {"P": problem.P, "status": f"{outcome.improving_steps} steps", "seconds": outcome.seconds,
                             "time_to_target": reached_at[0] if reached_at else None, "objective": outcome.objective,
                             "start_objective": outcome.start_objective}


MODEL_ORDER = ("gradient", "max_correct", "sat_margin", "min_hinge", "correct_margin", "lexicographic",
               "min_weight", "max_margin", *FLOAT_MODELS)


def _model_rank(model: str) -> tuple[int, str]:
    """Tables list the paper's models first, each with its local-search row after it."""
    base = model.split(",")[0]
    return MODEL_ORDER.index(base) if base in MODEL_ORDER else len(MODEL_ORDER), model


def _keys(rows: list[dict], dataset: str) -> list[tuple[str, int | None]]:
    keys = {(r["model"], r["P"]) for r in rows if r["dataset"] == dataset}
    return sorted(keys, key=lambda key: (_model_rank(key[0]), key[1] or 0))


def _paper(table: dict, dataset: str, model: str, P: int | None, n: int) -> str:
    values = table.get((model.split(",")[0], P)) if dataset == "adult" else None
    return f" [{values[SIZES['adult'].index(n)]}]" if values and n in SIZES["adult"] else ""


def _accuracy_cell(found: list[dict], key: str) -> str:
    """Mean ± std over the runs that returned a network of their own (a hard model that fitted no
    network in time, or proved none fits, returns its start, which is not its answer)."""
    solved = [r[key] for r in found if r["status"] not in RETURNED_NO_NETWORK]
    if not found:
        return "–"
    if not solved:
        return "no network"
    return mean_std(solved) + ("" if len(solved) == len(found) else f" ({len(solved)}/{len(found)} runs)")


def _time_cell(found: list[dict]) -> str:
    times = [r["time_to_target"] for r in found if r["time_to_target"] is not None]
    if not times:
        return f"– 0/{len(found)}"
    return f"{statistics.median(times):.1f} {len(times)}/{len(found)}"


def summary(rows: list[dict]) -> list[str]:
    """Per dataset and model, over every (N, P, seed) run: how often the MIP returned a network,
    went below its start's objective and reached the cutoff, and its test accuracy against the
    start's on the same split."""
    start = {(r["dataset"], r["N"], r["P"], r["seed"]): r for r in rows if r["model"] == "gradient"}
    lines = ["", "## Summary over the grid", "",
             "| dataset | model | runs | returned a network | below the start's objective | reached the cutoff | "
             "test − start's test, median (min … max) |",
             "|---|---|---|---|---|---|---|"]
    for dataset in sorted({r["dataset"] for r in rows}):
        models = {r["model"] for r in rows if r["dataset"] == dataset} - {"gradient", *FLOAT_MODELS}
        for model in sorted(models, key=_model_rank):
            found = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            solved = [r for r in found if r["status"] not in RETURNED_NO_NETWORK]
            below = sum(r["objective"] < r["start_objective"] - 1e-9 for r in solved if r["start_objective"] is not None
                        and r["start_objective"] != float("inf"))
            deltas = [100 * (r["test"] - start[(dataset, r["N"], r["P"], r["seed"])]["test"]) for r in solved]
            spread = f"{statistics.median(deltas):+.1f} ({min(deltas):+.1f} … {max(deltas):+.1f})" if deltas else "–"
            lines.append(f"| {dataset} | {model} | {len(found)} | {len(solved)} | {below} | "
                         f"{sum(r['time_to_target'] is not None for r in found)} | {spread} |")
    return lines


def markdown(rows: list[dict], seconds: float, workers: int) -> str:
    lines = [
        f"# The paper's experiments 2A / 2B on HiGHS ({seconds:g} s per MIP)",
        "",
        f"{machine_line()} {workers} worker process(es), HiGHS with 1 thread each. Every MIP starts from the "
        "`gradient` network (the paper's straight-through-estimator baseline, also reported as a model), "
        "solved once, monolithically, with the paper's cutoff (stop at objective ≤ 10 % of N; hard models: "
        "none) and the time limit above; the paper gave Gurobi 10 h. Rows `…, local search`: intnet's MIP "
        "local search from the same start for the same time (it runs the whole time; its time to the cutoff "
        "is when a step first reached it). `logistic` and `float_mlp` (16 tanh "
        "neurons) are float references on the same splits. Accuracies in %, mean ± std over the seeds "
        "(population std, as the paper's np.std); the seeds run are counted in the time table. "
        "In brackets: the paper's Adult number (docs/method.md §10.1, Gurobi, 5 seeds, mean).",
    ]
    lines += summary(rows)
    for dataset in sorted({r["dataset"] for r in rows}):
        sizes = sorted({r["N"] for r in rows if r["dataset"] == dataset})
        head = ["| model | P | " + " | ".join(f"N={n}" for n in sizes) + " |", "|---|---|" + "---|" * len(sizes)]
        tables = {"Test accuracy": [], "Training accuracy": [], "Time to the cutoff": []}
        for model, P in _keys(rows, dataset):
            cells = {name: [] for name in tables}
            for n in sizes:
                found = [r for r in rows if (r["dataset"], r["model"], r["P"], r["N"]) == (dataset, model, P, n)]
                cells["Test accuracy"].append(_accuracy_cell(found, "test") + _paper(PAPER_ADULT_TEST, dataset, model, P, n))
                cells["Training accuracy"].append(_accuracy_cell(found, "train") + _paper(PAPER_ADULT_TRAIN, dataset, model, P, n))
                if model not in ("gradient", *FLOAT_MODELS):
                    cells["Time to the cutoff"].append(_time_cell(found) + _paper(PAPER_ADULT_SECONDS, dataset, model, P, n))
            label = f"| {model} | {'–' if P is None else P} | "
            for name, values in cells.items():
                if values:
                    tables[name].append(label + " | ".join(values) + " |")
        lines += ["", f"## {dataset}"]
        for name, body in tables.items():
            note = {
                "Time to the cutoff": " (s: median over the seeds that reached it, then reached/run; a hard "
                                      "model reaches it by proving its optimum; monolithic: HiGHS's solve time, "
                                      "local search: wall time from its start, model building included; in "
                                      "brackets the paper's runtime, 36000 = its 10 h limit)",
            }.get(name, "")
            lines += ["", f"### {name}{note}", "", *head, *body]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, seconds: float) -> None:
    """Test accuracy against N, one panel per dataset and P, a line per model (mean over seeds)."""
    plt = pyplot()
    datasets = sorted({r["dataset"] for r in rows})
    Ps = sorted({r["P"] for r in rows if r["P"] is not None})
    figure, axes = plt.subplots(len(datasets), len(Ps), figsize=(3.2 * len(Ps), 2.8 * len(datasets)),
                                squeeze=False, sharey="row")
    for i, dataset in enumerate(datasets):
        for j, P in enumerate(Ps):
            ax = axes[i][j]
            for model in ("gradient", "max_correct", "sat_margin", "min_hinge", "float_mlp"):
                found = [r for r in rows if r["dataset"] == dataset and r["model"] == model
                         and r["P"] in (P, None)]
                sizes = sorted({r["N"] for r in found})
                if sizes:
                    means = [100 * statistics.fmean(r["test"] for r in found if r["N"] == n) for n in sizes]
                    # The gradient start underneath, wide, since the MIPs often return it unchanged.
                    style = ({"color": "black", "linewidth": 4, "alpha": 0.3} if model == "gradient"
                             else {"linestyle": "--" if model == "float_mlp" else "-", "marker": "o", "markersize": 3})
                    ax.plot(sizes, means, label=model, **style)
            paper = PAPER_ADULT_TEST.get(("sat_margin", P)) if dataset == "adult" else None
            if paper:
                ax.plot(SIZES["adult"], paper, color="grey", linestyle=":", label="sat_margin (paper, Gurobi 10 h)")
            ax.set_title(f"{dataset}, P = {P}", fontsize=9)
            ax.set_xlabel("N")
            if j == 0:
                ax.set_ylabel("test accuracy %")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    figure.suptitle(f"Experiments 2A / 2B on HiGHS, {seconds:g} s per MIP, mean over seeds", fontsize=10)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Heart N = 40, P = 3, sat_margin and max_correct, 5 s")
    parser.add_argument("--datasets", default="adult,heart")
    parser.add_argument("--models", default="max_correct,sat_margin,min_hinge", help="models run on every seed")
    parser.add_argument("--first-seed-models", default="", help="models run on seed 0 only")
    parser.add_argument("--P", default="1,3,7,15")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="cells solved at once, one HiGHS thread each")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--method", choices=["monolithic", "local search"], default="monolithic",
                        help="one monolithic MIP per model (the paper's), or intnet's MIP local search")
    parser.add_argument("--resume", action="store_true", help="keep the cells the stored run finished; solve the rest")
    parser.add_argument("--render", metavar="JSON", nargs="+",
                        help="only write the Markdown and plot of stored runs, together, beside the first")
    args = parser.parse_args()
    if args.render:
        runs = [json.loads(Path(p).read_text()) for p in args.render]
        if len({(r["seconds"], r["workers"]) for r in runs}) > 1:
            parser.error("--render: the runs differ in --seconds or --workers")
        # Every run has its own gradient and float rows of the same splits: keep one of each.
        unique = {(r["dataset"], r["N"], r["P"], r["seed"], r["model"]): r for run in reversed(runs) for r in run["rows"]}
        rows = list(unique.values())
        path = Path(args.render[0])
        path.with_suffix(".md").write_text(markdown(rows, runs[0]["seconds"], runs[0]["workers"]))
        plot(rows, path.with_suffix(".png"), runs[0]["seconds"])
        return
    if args.quick:
        grid, Ps, seeds, seconds = [("heart", 40)], [3], 1, 5.0
        models, first_seed_models = ["sat_margin", "max_correct"], []
    else:
        grid = [(d, n) for d in args.datasets.split(",") for n in SIZES[d]]
        Ps, seeds, seconds = [int(p) for p in args.P.split(",")], args.seeds, args.seconds
        models = [m for m in args.models.split(",") if m]
        first_seed_models = [m for m in args.first_seed_models.split(",") if m]
    unknown = sorted(set(models + first_seed_models) - set(FORMULATIONS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(FORMULATIONS)}")
    out = Path(args.out)
    name = ("paper_grid-quick" if args.quick else "paper_grid") + ("-local-search" if args.method == "local search" else "")
    cells = [(dataset, n, P, seed, models + (first_seed_models if seed == 0 else []), Ps[0] == P)
             for seed in range(seeds) for dataset, n in grid for P in Ps]
    rows: list[dict] = []
    stored = out / f"{name}.json"
    if args.resume and stored.is_file():
        # A cell's rows are written together, so a stored gradient row marks a finished cell.
        previous = json.loads(stored.read_text())
        if previous["seconds"] != seconds:
            parser.error(f"--resume: the stored run used {previous['seconds']:g} s per MIP; give --seconds {previous['seconds']:g}")
        rows = previous["rows"]
        finished = {(r["dataset"], r["N"], r["P"], r["seed"]) for r in rows if r["model"] == "gradient"}
        cells = [cell for cell in cells if cell[:4] not in finished]
        print(f"resuming: {len(finished)} cells stored, {len(cells)} to solve", flush=True)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_cell, *cell, seconds, args.method) for cell in cells]
        for done, future in enumerate(as_completed(futures), 1):
            cell_rows = future.result()
            rows += cell_rows
            first = cell_rows[0]
            print(f"[{done}/{len(cells)}] {first['dataset']} N={first['N']} P={first['P']} seed={first['seed']}: "
                  + ", ".join(f"{r['model']} {100 * r['test']:.1f}" for r in cell_rows), flush=True)
            payload = {"seconds": seconds, "workers": args.workers, "target_error": TARGET_ERROR, "rows": rows}
            write_results(out, name, payload, markdown(rows, seconds, args.workers))
    plot(rows, out / f"{name}.png", seconds)


if __name__ == "__main__":
    main()
