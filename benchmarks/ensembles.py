"""Benchmark: ensembles of integer networks against gradient ensembles of the same size.

For each dataset and seed, three runs of the whole pipeline (``pipeline.training.train``, batches on
Ray actors): one network, a bagging ensemble of K, and one-vs-one. Every run reports its gradient
start (the straight-through estimator; for an ensemble, the vote of the members' starts: the
gradient ensemble of the same K on the same resamples) and its final model (the MIP and local
search from exactly those starts), so that start -> final is what the MIP added and nothing else.
Beside them, float logistic regression on the same training set. Test accuracy: MNIST on every
image of the shipped 5,000 that training did not use, Heart and Adult on the split's test set.
Wall time and peak memory (the driver's, and the largest solving actor's) per run. Writes
docs/results/ensembles.{json,md,png}.

    python benchmarks/ensembles.py                  # the docs' run (hours on 2 cores)
    python benchmarks/ensembles.py --only mnist-10  # one setting
    python benchmarks/ensembles.py --quick          # Heart, 2 seeds, small limits, a few minutes
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from support.float_baselines import accuracy, logistic_regression
from support.report import machine_line, mean_std, pyplot, save_figure, write_results

from pipeline import training
from pipeline.config import TrainConfig

PUBLISHED = [
    ("BeMi (IJOC 2025), one-vs-one MIP ensemble, Gurobi, official test set", "mnist-10", "68.4"),
    ("BeMi (IJOC 2025)", "mnist-40", "81.8"),
    ("Thorbjarnarson & Yorke-Smith 2023, best of three MIP models, Adult N = 280, P = 3", "adult-280", "81.2 ± 0.5"),
]


@dataclass(frozen=True)
class Setting:
    name: str
    base: dict
    seeds: int
    bagging: int
    kinds: tuple[str, ...] = ("single", "bagging", "ovo")
    solver: dict = field(default_factory=dict)


def settings(quick: bool) -> list[Setting]:
    if quick:
        return [Setting("heart-200", dict(dataset="heart", train_size=200, P=1, hidden=(4,), target_error=None),
                        seeds=2, bagging=3,
                        kinds=("single", "bagging"), solver=dict(time_limit=3, improve=2))]
    # Per member: a monolithic MIP from the gradient start, then local search; sized so that a run
    # stays within 30 min on 2 cores (45 one-vs-one members of MNIST at 2 actors: 45 × 40 s / 2).
    # No early target: the gradient start fits 10 images per class already, and at the default
    # 10 % target no MIP would be built at all (measured: seed 0, one network, the start stood).
    mnist = dict(dataset="mnist", P=1, hidden=(16,), target_error=None)
    tabular = dict(hidden=(16,), target_error=None)
    return [
        Setting("mnist-10", mnist | dict(per_class=10), seeds=3, bagging=9, solver=dict(time_limit=20, improve=20)),
        Setting("mnist-40", mnist | dict(per_class=40), seeds=3, bagging=9, solver=dict(time_limit=20, improve=40)),
        Setting("heart-200", tabular | dict(dataset="heart", train_size=200, P=1), seeds=5, bagging=9,
                kinds=("single", "bagging"), solver=dict(time_limit=10, improve=10)),
        Setting("adult-280", tabular | dict(dataset="adult", train_size=280, P=3), seeds=5, bagging=9,
                kinds=("single", "bagging"), solver=dict(time_limit=10, improve=10)),
    ]


def test_set(config: TrainConfig, data, split) -> tuple[np.ndarray, np.ndarray]:
    """MNIST: every image training did not use (rows are unique images); else the split's test set."""
    if config.dataset != "mnist":
        return split.test_x, split.test_y
    used = {row.tobytes() for row in split.train_x}
    unused = np.array([row.tobytes() not in used for row in data.x])
    return data.x[unused], data.y[unused]


def run_one(setting: Setting, seed: int, kind: str, workers: int, formulation: str) -> dict:
    ensemble = {"single": None, "bagging": setting.bagging, "ovo": "ovo"}[kind]
    config = TrainConfig(**setting.base, **setting.solver, ensemble=ensemble, seed=seed, workers=workers,
                         formulation=formulation)
    began = time.perf_counter()
    summary = training.train(config, persist=False)
    wall = time.perf_counter() - began
    x, y = test_set(config, summary.dataset, training.split_data(config, summary.dataset))
    return {
        "setting": setting.name, "seed": seed, "kind": kind, "formulation": formulation,
        "members": len(summary.members),
        "start_test": summary.start_model.accuracy(x, y), "final_test": summary.model.accuracy(x, y),
        "test_rows": len(y),
        "start_train": summary.start.train, "final_train": summary.final.train,
        "members_changed": sum(m.final_source != "start" for m in summary.members),
        "tied_test_votes": summary.tied_votes.get("test"),
        "seconds": wall, "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "actor_peak_rss_mb": max((b.worker_peak_rss_mb for b in summary.batches), default=float("nan")),
        "size_bits": summary.size_bits, "config": config.model_dump(mode="json", exclude={"out", "checkpoints"}),
    }


def logistic_row(setting: Setting, seed: int) -> dict:
    config = TrainConfig(**setting.base, seed=seed)
    run = training.prepare(config.model_copy(update={"heuristic_steps": 0}))
    layers = logistic_regression(run.split.train_x, run.split.train_y, len(run.dataset.classes), seed)
    x, y = test_set(config, run.dataset, run.split)
    return {"setting": setting.name, "seed": seed, "kind": "logistic regression (float)",
            "final_test": accuracy(layers, x, y), "test_rows": len(y)}


def markdown(rows: list[dict], quick: bool) -> str:
    lines = [
        "# Ensembles of integer networks: what the MIP adds to a gradient ensemble of the same size",
        "",
        machine_line(),
        "",
        "Each run: `pipeline.training.train` on Ray actors (2 workers). *Gradient* is the run's start: the "
        "straight-through-estimator network, or for an ensemble the vote of its members' starts (same K, same "
        "resamples, same seeds); *MIP* is the run's final model, every member started from its gradient "
        "member, so gradient → MIP is exactly what the MIP (monolithic solve, then local search) added. "
        "Test: MNIST on every unused image of the 5,000, else the split's test set. Mean ± std over seeds.",
        "",
        "| setting | model | MIP model | seeds | gradient test % | MIP test % | MIP − gradient | members changed | wall s (median) | actor peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["setting"] for r in rows):
        for kind, formulation in dict.fromkeys((r["kind"], r.get("formulation")) for r in rows if r["setting"] == name):
            group = [r for r in rows if r["setting"] == name and r["kind"] == kind and r.get("formulation") == formulation]
            if "start_test" not in group[0]:
                lines.append(f"| {name} | {kind} | – | {len(group)} | – | {mean_std([r['final_test'] for r in group])} "
                             "| – | – | – | – |")
                continue
            gains = [r["final_test"] - r["start_test"] for r in group]
            label = {"single": "one network", "bagging": f"bagging, K = {group[0]['members']}",
                     "ovo": f"one-vs-one, {group[0]['members']} members"}[kind]
            lines.append(
                f"| {name} | {label} | {formulation} | {len(group)} | {mean_std([r['start_test'] for r in group])} | "
                f"{mean_std([r['final_test'] for r in group])} | {100 * statistics.fmean(gains):+.1f} | "
                f"{statistics.fmean(r['members_changed'] / r['members'] for r in group):.0%} | "
                f"{statistics.median(r['seconds'] for r in group):.0f} | "
                f"{max(r['actor_peak_rss_mb'] for r in group):.0f} |")
    lines += ["", "Published, for reference (other test sets, other solvers):", ""]
    lines += [f"- {source}, {setting}: {value} %" for source, setting, value in PUBLISHED]
    if quick:
        lines += ["", "(--quick: a smoke run, not a measurement.)"]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    measured = [r for r in rows if "start_test" in r]
    names = list(dict.fromkeys(r["setting"] for r in measured))
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        kinds = list(dict.fromkeys((r["kind"], r["formulation"]) for r in measured if r["setting"] == name))
        for i, (kind, formulation) in enumerate(kinds):
            group = [r for r in measured
                     if r["setting"] == name and (r["kind"], r["formulation"]) == (kind, formulation)]
            axis.scatter([i - 0.1] * len(group), [100 * r["start_test"] for r in group], color="tab:gray",
                         label="gradient" if i == 0 else None)
            axis.scatter([i + 0.1] * len(group), [100 * r["final_test"] for r in group], color="tab:blue",
                         label="MIP" if i == 0 else None)
        axis.set_xticks(range(len(kinds)), [f"{kind}\n{formulation}" for kind, formulation in kinds])
        axis.set_title(name)
        axis.set_ylabel("test accuracy %")
        axis.legend()
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="run only the setting of this name (e.g. mnist-10)")
    parser.add_argument("--seeds", type=int, help="at most this many seeds per setting")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--formulation", default="min_hinge",
                        help="the members' MIP model (default min_hinge: its loss keeps rewarding margins once every "
                             "training example is right, where sat_margin's is already 0 at a gradient start that fits)")
    parser.add_argument("--kinds", help="comma list of single,bagging,ovo (default: the setting's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "results")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in the JSON and add the rest")
    args = parser.parse_args()
    name = "ensembles-quick" if args.quick else "ensembles"
    stored = args.out / f"{name}.json"
    rows = json.loads(stored.read_text())["rows"] if args.resume and stored.exists() else []
    done = {(r["setting"], r["seed"], r["kind"], r.get("formulation", args.formulation)) for r in rows}
    for setting in settings(args.quick):
        if args.only and setting.name != args.only:
            continue
        for seed in range(min(setting.seeds, args.seeds or setting.seeds)):
            kinds = args.kinds.split(",") if args.kinds else setting.kinds
            for kind in (*kinds, "logistic regression (float)"):
                formulation = None if kind.startswith("logistic") else args.formulation
                if (setting.name, seed, kind, formulation) in done or (
                        formulation is None and any(d[:3] == (setting.name, seed, kind) for d in done)):
                    continue
                row = (logistic_row(setting, seed) if formulation is None
                       else run_one(setting, seed, kind, args.workers, formulation))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "config"}), flush=True)
                write_results(args.out, name, {"rows": rows}, markdown(rows, args.quick))
    plot(rows, args.out / f"{name}.png")


if __name__ == "__main__":
    main()
