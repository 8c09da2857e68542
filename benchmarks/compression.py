"""Benchmark: MIP compression (issue 16, docs/method.md §13) against gradient baselines.

For each case and seed, from the run's own split (``training.prepare``):

* **gradient, trained small**: the straight-through estimator (STE, ``pipeline/solving/heuristic.py``)
  trained with 1, 2, 4, 8 and 16 hidden neurons at P ∈ {1, 3, 15};
* **gradient, iterative magnitude pruning** from the usual 16-neuron start at the case's P: remove
  the smallest |weights| (40 % of the non-zero ones a round) or the neurons with the smallest
  outgoing |weights| (half the width a round), retrain with the rest held at 0, repeat;
* **MIP compression** (``pipeline.solving.compress``) from the usual 16-neuron STE start and from the best
  small gradient network (width ≤ 2, best on validation), keeping the training set's correct count
  less a tolerance (0, 1, 2, 4 % of N from the start; 0, 1, 2 % from the small network);
* the paper's experiment 3 (neuron optimisation, docs/method.md §10.2) where the case is its.

Every network is measured by non-zero parameters, dense bits (each layer in the bits of its
largest |parameter|) and test accuracy; the plot draws both families' frontiers. Writes
docs/results/compression.{json,md,png} (``--quick``: compression-quick.*), after every seed.

    python benchmarks/compression.py                                   # every case, seeds 0-2
    python benchmarks/compression.py --cases adult-800 --seeds 0 --seconds 120
    python benchmarks/compression.py --quick                           # Heart N = 40, 10 s, one seed
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from support.report import machine_line, mean_std, pyplot, save_figure, write_results

from formulations import IntegerNetwork
from formulations.network import layer_bounds, layered_size_bits, nonzero_parameters, strip_neurons
from pipeline import reporting, training
from pipeline.config import TrainConfig
from pipeline.solving.compress import compress, fold_constant_neurons
from pipeline.solving.heuristic import train_ste
from pipeline.solving.solve import SolverOptions

CASES = {
    "adult-800": {"dataset": "adult", "train_size": 800, "P": 15},  # the paper's experiment 3
    "adult-2000": {"dataset": "adult", "train_size": 2000, "P": 15},
    "heart-200": {"dataset": "heart", "train_size": 200, "P": 1},  # experiment 2B's size
    "mnist-10": {"dataset": "mnist", "per_class": 10, "P": 1},  # experiment 1
}
QUICK_CASE = {"heart-40": {"dataset": "heart", "train_size": 40, "P": 3}}
WIDTHS, PS = (1, 2, 4, 8, 16), (1, 3, 15)
START_TOLERANCES, SMALL_TOLERANCES = (0.0, 0.01, 0.02, 0.04), (0.0, 0.01, 0.02)
WEIGHT_PRUNE_SHARE, PRUNE_ROUNDS = 0.4, 8
MIP_FAMILY = ("MIP from 16", "MIP from small")
GRADIENT_FAMILY = ("STE small", "STE pruned weights", "STE pruned neurons")

PAPER_EXPERIMENT_3 = {
    "source": "docs/method.md §10.2 (5 seeds, Gurobi, 10 h): neurons kept and test accuracy; non-zero "
              "parameters not published, so the dense size of a 108-k-2 network at P = 15 (5 bits each)",
    "rows": [{"alpha": 0.1, "neurons": 5.2, "test": 0.7884}, {"alpha": 0.01, "neurons": 2.2, "test": 0.7794}],
}


def point(method: str, setting: str, network: IntegerNetwork, split, seconds: float, **extra) -> dict:
    """A network's sizes and accuracies, measured on the same function with its unread and constant
    neurons removed (what compression stores), so that pruned networks are counted as small as they are."""
    network = strip_neurons(fold_constant_neurons(network))
    accuracies = reporting.evaluate(network, split)
    return {"method": method, "setting": setting, "neurons": sum(network.sizes[1:-1]),
            "nonzeros": nonzero_parameters(network), "bits": layered_size_bits(network, layer_bounds(network)),
            "train": accuracies.train, "validation": accuracies.validation, "test": accuracies.test,
            "seconds": seconds, **extra}


def ste(split, n_classes: int, width: int, P: int, seed: int, keep=None) -> IntegerNetwork:
    return train_ste(split.train_x, split.train_y, n_classes, (width,), P, seed=seed, x_val=split.val_x,
                     y_val=split.val_y, keep=keep)


def masks(network: IntegerNetwork) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(w != 0, b != 0) for w, b in zip(network.weights, network.biases)]


def pruned_weights(network: IntegerNetwork, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """The non-zero parameters but the smallest |θ| share (ties in random order)."""
    flat = np.concatenate([np.abs(a).ravel() for w, b in zip(network.weights, network.biases) for a in (w, b)])
    nonzero = np.flatnonzero(flat)
    order = nonzero[np.lexsort((rng.random(len(nonzero)), flat[nonzero]))]
    keep = flat != 0
    keep[order[: int(WEIGHT_PRUNE_SHARE * len(nonzero))]] = False
    result, at = [], 0
    for w, b in zip(network.weights, network.biases):
        result.append((keep[at:at + w.size].reshape(w.shape), keep[at + w.size:at + w.size + b.size]))
        at += w.size + b.size
    return result


def pruned_neurons(network: IntegerNetwork, kept: np.ndarray) -> tuple[np.ndarray, list]:
    """The neurons of ``kept`` with the largest outgoing |weights|, half of them, as masks."""
    strength = np.where(kept, np.abs(network.weights[1]).sum(axis=0), -1)
    keep = np.zeros_like(kept)
    keep[np.argsort(-strength, kind="stable")[: max(1, int(kept.sum()) // 2)]] = True
    return keep, [(np.repeat(keep[:, None], network.weights[0].shape[1], axis=1), keep),
                  (np.repeat(keep[None, :], network.weights[1].shape[0], axis=0), np.ones(network.sizes[-1], bool))]


def gradient_points(split, n_classes: int, P: int, start: IntegerNetwork, seed: int, quick: bool) -> list[dict]:
    rows = []
    for width in WIDTHS[:2] if quick else WIDTHS:
        for p in PS[:2] if quick else PS:
            began = time.perf_counter()
            network = ste(split, n_classes, width, p, seed)
            rows.append(point("STE small", f"{width} neurons, P = {p}", network, split, time.perf_counter() - began,
                              trained=network))
    rng = np.random.default_rng(seed)
    network, began = start, time.perf_counter()
    for round_ in range(1, (2 if quick else PRUNE_ROUNDS) + 1):
        network = ste(split, n_classes, 16, P, seed, keep=pruned_weights(network, rng))
        rows.append(point("STE pruned weights", f"round {round_}", network, split, time.perf_counter() - began))
        if nonzero_parameters(network) < 20:
            break
    network, kept, began = start, np.ones(16, dtype=bool), time.perf_counter()
    while kept.sum() > 1:
        kept, keep = pruned_neurons(network, kept)
        network = ste(split, n_classes, 16, P, seed, keep=keep)
        rows.append(point("STE pruned neurons", f"{int(kept.sum())} neurons", network, split,
                          time.perf_counter() - began))
    return rows


def mip_points(method: str, start: IntegerNetwork, split, n_classes: int, tolerances, seconds: float,
               step_limit: float, threads: int) -> list[dict]:
    rows = []
    for share in tolerances:
        tolerance = int(round(share * len(split.train_y)))
        outcome = compress(start, split.train_x, split.train_y, n_classes, seconds, SolverOptions(threads=threads),
                           tolerance=tolerance, improve_step_limit=step_limit)
        report = outcome.report()
        rows.append(point(method, f"tolerance {share:.0%}", outcome.network, split, outcome.seconds,
                          tolerance=tolerance, steps=report["steps"], accepted=report["accepted_steps"],
                          mismatched=report["mismatched_steps"]))
        print(f"  {method}, tolerance {tolerance}: {rows[-1]['neurons']} neurons, {rows[-1]['nonzeros']} non-zero, "
              f"test {rows[-1]['test']:.4f}, {outcome.seconds:.0f} s", flush=True)
    return rows


def run_seed(name: str, case: dict, seed: int, seconds: float, step_limit: float, threads: int, quick: bool) -> list[dict]:
    sizes = {key: case[key] for key in ("train_size", "per_class") if key in case}
    config = TrainConfig(dataset=case["dataset"], P=case["P"], hidden=(16,), seed=seed, **sizes)
    run = training.prepare(config)
    split, start, n_classes = run.split, run.start, len(run.dataset.classes)
    rows = [point("start (STE 16)", f"P = {case['P']}", start, split, 0.0)]
    rows += gradient_points(split, n_classes, case["P"], start, seed, quick)
    small = [r for r in rows if r["method"] == "STE small" and r["neurons"] <= 2]
    best_small = max(small, key=lambda r: (r["validation"], -r["nonzeros"]))
    rows += mip_points("MIP from small", best_small["trained"], split, n_classes,
                       SMALL_TOLERANCES[:1] if quick else SMALL_TOLERANCES, seconds / 2, step_limit, threads)
    rows += mip_points("MIP from 16", start, split, n_classes, START_TOLERANCES[:1] if quick else START_TOLERANCES,
                       seconds, step_limit, threads)
    for row in rows:
        row.pop("trained", None)
        row |= {"case": name, "seed": seed}
    return rows


def aggregated(rows: list[dict]) -> list[dict]:
    """One entry per (case, method, setting): means over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["case"], r["method"], r["setting"]), []).append(r)
    return [{"case": case, "method": method, "setting": setting, "seeds": len(group),
             **{key: statistics.fmean(r[key] for r in group) for key in ("neurons", "nonzeros", "bits", "test", "seconds")},
             "test_values": [r["test"] for r in group]}
            for (case, method, setting), group in groups.items()]


def frontier(entries: list[dict], key: str) -> list[dict]:
    """The entries no other beats on both ``key`` (fewer) and test accuracy (higher), by ``key``."""
    best, result = -1.0, []
    for entry in sorted(entries, key=lambda e: (e[key], -e["test"])):
        if entry["test"] > best:
            result.append(entry)
            best = entry["test"]
    return result


def comparison(entries: list[dict]) -> list[str]:
    """For each gradient frontier point: the MIP's fewest non-zero parameters at test accuracy
    within 0.5 points of it, and the ratio."""
    mip = [e for e in entries if e["method"] in MIP_FAMILY]
    lines = []
    for g in frontier([e for e in entries if e["method"] in GRADIENT_FAMILY], "nonzeros"):
        matching = [e for e in mip if e["test"] >= g["test"] - 0.005]
        if not matching:
            lines.append(f"- {g['method']} ({g['setting']}): {g['nonzeros']:.0f} non-zero, test {100 * g['test']:.1f} %: "
                         "no MIP network within 0.5 points")
            continue
        m = min(matching, key=lambda e: e["nonzeros"])
        lines.append(f"- {g['method']} ({g['setting']}): {g['nonzeros']:.0f} non-zero, test {100 * g['test']:.1f} % → "
                     f"{m['method']} ({m['setting']}): {m['nonzeros']:.0f} non-zero, test {100 * m['test']:.1f} % "
                     f"({g['nonzeros'] / max(m['nonzeros'], 1):.1f}× fewer)")
    return lines


def markdown(rows: list[dict], args, quick: bool) -> str:
    entries = aggregated(rows)
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# MIP compression against gradient baselines",
        "",
        f"{machine_line()} Each MIP compression: {args.seconds:g} s from the 16-neuron start, {args.seconds / 2:g} s "
        f"from the small network, sub-MIPs of at most {args.step_limit:g} s on {args.threads} thread(s); the "
        "kept set is the training set. Seeds: " + ", ".join(map(str, seeds)) + f". Load average when written: "
        f"{', '.join(f'{v:.1f}' for v in __import__('os').getloadavg())} (the machine is shared). "
        "Non-zero: weights and biases not 0; bits: dense, each layer in the bits of its largest |parameter| "
        "(⌊log₂ B⌋ + 2). Means over seeds; test accuracy mean ± std in %.",
        "",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [e for e in entries if e["case"] == case]
        lines += [f"## {case}", "", "| method | setting | seeds | hidden neurons | non-zero | bits | test % | seconds |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in mine:
            lines.append(f"| {e['method']} | {e['setting']} | {e['seeds']} | {e['neurons']:.1f} | {e['nonzeros']:.0f} | "
                         f"{e['bits']:.0f} | {mean_std(e['test_values'])} | {e['seconds']:.0f} |")
        lines += ["", "Gradient frontier against the MIP at equal test accuracy (within 0.5 points):", ""]
        lines += comparison(mine)
        small = [e for e in mine if e["method"] in MIP_FAMILY and e["nonzeros"] <= 65]
        if case == "adult-800":
            best = max(small, key=lambda e: e["test"], default=None)
            lines += ["", "Target (≥ 81.5 % test with ≤ 65 non-zero parameters): "
                      + ("no MIP network had ≤ 65 non-zero parameters" if best is None else
                         f"best MIP network with ≤ 65 non-zero: {best['method']} ({best['setting']}), "
                         f"{best['nonzeros']:.0f} non-zero, test {100 * best['test']:.1f} %, {best['seconds']:.0f} s"
                         + (" (met)" if best["test"] >= 0.815 else " (not met)")),
                      "", f"The paper's experiment 3 ({PAPER_EXPERIMENT_3['source']}):", ""]
            lines += [f"- α = {p['alpha']:g}: {p['neurons']} neurons, test {100 * p['test']:.2f} %, "
                      f"{paper_bits(p['neurons']):.0f} dense bits" for p in PAPER_EXPERIMENT_3["rows"]]
        lines.append("")
    if quick:
        lines += ["This is the `--quick` run (Heart, N = 40, 10 s, one seed): a check that the benchmark runs."]
    return "\n".join(lines) + "\n"


def paper_bits(neurons: float) -> float:
    """Dense bits of an Adult 108-k-2 network at P = 15 (5 bits per parameter)."""
    return ((108 + 1) * neurons + 2 * (neurons + 1)) * 5


def plot(rows: list[dict], path: Path) -> None:
    """Per case: non-zero parameters and dense bits against test accuracy, every method's means,
    with the MIP's and the gradient's frontiers drawn as steps."""
    entries = aggregated(rows)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    plt = pyplot()
    figure, axes = plt.subplots(len(cases), 2, figsize=(10, 3.6 * len(cases)), squeeze=False)
    markers = dict(zip(("start (STE 16)", *GRADIENT_FAMILY, *MIP_FAMILY), "Dsv^ox*"))
    for row, case in zip(axes, cases):
        mine = [e for e in entries if e["case"] == case]
        for ax, key, label in ((row[0], "nonzeros", "non-zero parameters"), (row[1], "bits", "dense bits")):
            for method, marker in markers.items():
                points = [e for e in mine if e["method"] == method]
                if points:
                    ax.scatter([e[key] for e in points], [100 * e["test"] for e in points], marker=marker, label=method,
                               s=22)
            for family, colour in ((MIP_FAMILY, "tab:red"), (GRADIENT_FAMILY, "tab:blue")):
                line = frontier([e for e in mine if e["method"] in family], key)
                ax.step([e[key] for e in line], [100 * e["test"] for e in line], where="post", color=colour,
                        alpha=0.6, label=("MIP" if family is MIP_FAMILY else "gradient") + " frontier")
            if case == "adult-800" and key == "bits":
                ax.scatter([paper_bits(p["neurons"]) for p in PAPER_EXPERIMENT_3["rows"]],
                           [100 * p["test"] for p in PAPER_EXPERIMENT_3["rows"]], marker="P", color="black",
                           label="paper, exp. 3 (Gurobi 10 h)")
            ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy %")
            ax.set_title(case, fontsize=9)
        row[0].legend(fontsize=6)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Heart, N = 40, 10 s, one seed")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--seconds", type=float, default=300.0, help="MIP compression time from the 16-neuron start")
    parser.add_argument("--step-limit", type=float, default=5.0, help="seconds per compression sub-MIP")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--render", metavar="JSON", help="only write the Markdown and plot of a stored run")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        stored = json.loads(Path(args.render).read_text())
        rows, name = stored["rows"], Path(args.render).stem
        args = argparse.Namespace(**stored["settings"])
        write_results(out, name, stored, markdown(rows, args, name.endswith("quick")))
        plot(rows, out / f"{name}.png")
        return
    if args.quick:
        cases, seeds, args.seconds = QUICK_CASE, [0], 10.0
    else:
        cases = {name: CASES[name] for name in args.cases.split(",")}
        seeds = [int(s) for s in args.seeds.split(",")]
    name = "compression-quick" if args.quick else "compression"
    settings = {"seconds": args.seconds, "step_limit": args.step_limit, "threads": args.threads}
    rows: list[dict] = []
    for case_name, case in cases.items():
        for seed in seeds:
            print(f"{case_name}, seed {seed}", flush=True)
            rows += run_seed(case_name, case, seed, args.seconds, args.step_limit, args.threads, args.quick)
            # Written after every seed, so a long run that is stopped keeps what it measured.
            write_results(out, name, {"settings": settings, "paper": PAPER_EXPERIMENT_3, "rows": rows},
                          markdown(rows, args, args.quick))
            plot(rows, out / f"{name}.png")


if __name__ == "__main__":
    main()
