"""Benchmark: the sparse integer start (``pipeline/solving/sparse_start.py``) against the tiny models
a user would deploy instead, on the same splits (``benchmarks/support/rivals.py``).

For each case, seed and budget B (non-zero parameters, weights and biases counted):

* **sparse start**: ``sparse_linear_network`` with ``max_nonzero = B``, picked on validation;
* **FasterRisk** (two classes; ``make rivals-env``) with k = B − 1 features (its intercept is the
  B-th parameter), its own pick and its pool's best on validation;
* **L1 logistic regression, rounded** to [−P, P] along its regularisation path;
* **CART trees** of depth 1-6 (2 numbers per split);
* **float logistic regression**, dense: the reference line.

A rival's entry at budget B is its model best on validation among those with at most B non-zero
parameters (``rivals.best_within``), so every family is compared at the same size and with the same
help. Data: intnet's own splits (``TrainConfig``): Adult (official test rows, validation 20 % of the
rest), Heart, and scikit-learn's breast cancer, wine and digits written to CSV files and loaded with
``TrainConfig(data=..., label=...)`` (stratified 20 % test, 10 % validation). Writes
docs/results/sparse_rivals.{json,md} after every case (``--quick``: sparse_rivals-quick.*).

    python benchmarks/sparse_rivals.py                    # every case (about an hour on 2 cores)
    python benchmarks/sparse_rivals.py --cases adult-800
    python benchmarks/sparse_rivals.py --quick            # Heart, one seed, two budgets
"""

from __future__ import annotations

import os

# One BLAS thread: the machine's 2 cores are shared, and measured under a load of 4, OpenBLAS's two
# threads made the search's cross products 5 times slower than one thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from support import rivals  # noqa: E402
from support.report import machine_line, write_results  # noqa: E402

from pipeline import training  # noqa: E402
from pipeline.config import TrainConfig  # noqa: E402
from pipeline.solving.sparse_start import sparse_linear_network  # noqa: E402

CASES = {
    "adult-800": {"config": {"dataset": "adult", "train_size": 800}, "seeds": (0, 1, 2), "Ps": (15, 3),
                  "budgets": (4, 6, 8, 11, 16)},
    "adult-all": {"config": {"dataset": "adult"}, "seeds": (0,), "Ps": (15,), "budgets": (6, 11, 15, 16)},
    "heart": {"config": {"dataset": "heart"}, "seeds": (0, 1, 2), "Ps": (15,), "budgets": (2, 4, 6, 8, 11, 16)},
    "breast-cancer": {"sklearn": "load_breast_cancer", "seeds": (0, 1, 2), "Ps": (15,), "budgets": (2, 4, 6, 8, 11, 16)},
    "wine": {"sklearn": "load_wine", "seeds": (0, 1, 2), "Ps": (15,), "budgets": (3, 6, 9, 12, 18, 24)},
    "digits": {"sklearn": "load_digits", "seeds": (0,), "Ps": (15,), "budgets": (20, 40, 80, 160)},
}
QUICK = {"heart-quick": {"config": {"dataset": "heart"}, "seeds": (0,), "Ps": (15,), "budgets": (3, 6)}}
FAMILIES = ("FasterRisk", "L1 logistic, rounded", "CART tree")


def sklearn_csv(loader: str, folder: Path) -> Path:
    """A scikit-learn dataset as a CSV file with a string label column, for intnet's file loader."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    path = folder / f"{loader}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(bunch.data.shape[1])] + ["label"])
        for row, target in zip(bunch.data, bunch.target):
            writer.writerow([repr(float(v)) for v in row] + [f"class{target}"])
    return path


def run_case(name: str, case: dict, folder: Path) -> dict:
    base = dict(case.get("config", {}))
    if "sklearn" in case:
        base.update(data=sklearn_csv(case["sklearn"], folder), label="label")
    results = {"case": name, "runs": []}
    for seed in case["seeds"]:
        config = TrainConfig(**base, seed=seed)
        split = training.split_data(config, training.load_dataset(config))
        n_classes = int(max(split.train_y.max(), split.val_y.max(), split.test_y.max())) + 1
        reference = rivals.float_logistic(split)
        trees = rivals.trees(split)
        for P in case["Ps"]:
            family = {"L1 logistic, rounded": rivals.l1_logistic(split, P), "CART tree": trees}
            if n_classes == 2:
                family["FasterRisk"] = rivals.fasterrisk(split, sorted({b - 1 for b in case["budgets"] if b > 1}), P)
            for budget in case["budgets"]:
                began = time.perf_counter()
                network = sparse_linear_network(split.train_x, split.train_y, n_classes, P, budget,
                                                x_val=split.val_x, y_val=split.val_y, seed=seed)
                ours = rivals.integer_model("sparse start", f"budget {budget}", network, split,
                                            time.perf_counter() - began)
                row = {"seed": seed, "P": P, "budget": budget, "load": os.getloadavg()[0], "ours": ours.row(),
                       "float logistic": reference.row()}
                for label, models in family.items():
                    best = rivals.best_within(models, budget)
                    row[label] = None if best is None else best.row()
                results["runs"].append(row)
                print(f"{name} seed {seed} P {P} B {budget}: ours {ours.test:.4f} ({ours.nonzero} nz, "
                      f"{ours.seconds:.1f} s) | " + " | ".join(
                          f"{label} {row[label]['test']:.4f} ({row[label]['nonzero']} nz)"
                          for label in family if row[label]) + f" | float {reference.test:.4f}", flush=True)
        results.setdefault("all_models", []).extend(
            {"seed": seed, **model.row()} for model in [reference, *trees])
    return results


def markdown(results: list[dict]) -> str:
    lines = ["# Sparse start against tiny rivals", "", machine_line(), "",
             "Test accuracy (%), mean over seeds, of each family's model best on validation within the "
             "budget; in brackets its mean non-zero parameters. Seconds: the sparse start's mean. "
             "Load: the 1-minute load average of the 2-core machine during the run.", ""]
    for case in results:
        lines += [f"## {case['case']}", "",
                  "| P | budget | sparse start | s | FasterRisk | L1 rounded | CART | float LR (dense) | load |",
                  "|---|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple, list[dict]] = {}
        for run in case["runs"]:
            groups.setdefault((run["P"], run["budget"]), []).append(run)
        for (P, budget), runs in groups.items():
            def cell(label: str, runs=runs) -> str:
                picked = [run[label] for run in runs if run.get(label)]
                if not picked:
                    return "–"
                return (f"{100 * statistics.fmean(m['test'] for m in picked):.2f} "
                        f"({statistics.fmean(m['nonzero'] for m in picked):.1f})")
            lines.append(f"| {P} | {budget} | {cell('ours')} | {statistics.fmean(r['ours']['seconds'] for r in runs):.1f} "
                         f"| {cell('FasterRisk')} | {cell('L1 logistic, rounded')} | {cell('CART tree')} "
                         f"| {cell('float logistic')} | {statistics.fmean(r['load'] for r in runs):.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    parser.add_argument("--quick", action="store_true", help="Heart, one seed, two budgets")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results")
    args = parser.parse_args()
    cases = QUICK if args.quick else {name: CASES[name] for name in args.cases.split(",")}
    name = "sparse_rivals-quick" if args.quick else "sparse_rivals"
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for case_name, case in cases.items():
            results.append(run_case(case_name, case, Path(folder)))
            write_results(args.out, name, results, markdown(results))


if __name__ == "__main__":
    main()
