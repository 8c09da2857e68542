"""Run FasterRisk on one split, in FasterRisk's own environment (``make rivals-env``).

fasterrisk 0.1.10 pins pandas 1.5.2 and scikit-learn 1.2.0 and calls ``ndarray.tostring`` (gone in
numpy 2.3), so it cannot be imported next to intnet; ``benchmarks/support/rivals.py`` writes the
split to an .npz, runs this script with ``.venv-rivals/bin/python`` and reads the JSON it writes.
This script imports nothing from intnet.

    .venv-rivals/bin/python benchmarks/support/fasterrisk_runner.py SPLIT.npz OUT.json --ks 3,5 --P 15

The .npz holds train_x, train_y, val_x, val_y, test_x, test_y (labels 0/1). For every k the JSON
holds FasterRisk's own pick (its integer pool sorted by training logistic loss, model 0, as its
documentation uses it) and the pool's model best on validation accuracy (the selection rule the
sparse start uses, so that both are compared with the same help), each with its multiplier,
integer intercept and coefficients, accuracies and the seconds FasterRisk took for that k.

A FasterRisk model predicts class 1 exactly when (intercept + x·coefficients) / multiplier > 0
(``RiskScoreClassifier.predict``); the multiplier is positive, so that is intercept + x·c > 0,
intnet's two-class rule for the score difference. Accuracies here are FasterRisk's own predictions;
rivals.py recomputes them with the converted intnet network.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from fasterrisk.fasterrisk import RiskScoreClassifier, RiskScoreOptimizer


def accuracy(model: RiskScoreClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == 2 * y - 1))


def describe(multiplier: float, intercept: float, coefficients: np.ndarray, split: dict, x_train: np.ndarray) -> dict:
    model = RiskScoreClassifier(multiplier=multiplier, intercept=intercept, coefficients=coefficients, X_train=x_train)
    return {
        "multiplier": float(multiplier),
        "intercept": int(round(intercept)),
        "coefficients": [int(round(c)) for c in coefficients],
        "train": accuracy(model, split["train_x"], split["train_y"]),
        "validation": accuracy(model, split["val_x"], split["val_y"]),
        "test": accuracy(model, split["test_x"], split["test_y"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", help=".npz with train_x, train_y, val_x, val_y, test_x, test_y")
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--ks", required=True, help="comma list of support sizes (features, intercept not counted)")
    parser.add_argument("--P", type=int, required=True, help="coefficients in [-P, P]")
    args = parser.parse_args()

    split = dict(np.load(args.split))
    x = split["train_x"].astype(np.float64)
    y = 2.0 * split["train_y"] - 1.0  # FasterRisk's labels are -1 / +1
    results = []
    for k in (int(value) for value in args.ks.split(",")):
        began = time.perf_counter()
        # FasterRisk's defaults but for the coefficient box; its intercept box is its own [-100, 100].
        optimizer = RiskScoreOptimizer(X=x, y=y, k=k, lb=-args.P, ub=args.P)
        optimizer.optimize()
        multipliers, intercepts, coefficients = optimizer.get_models()
        seconds = time.perf_counter() - began
        pool = [describe(m, b, c, split, x) for m, b, c in zip(multipliers, intercepts, coefficients)]
        # max() keeps the first of equal validation accuracies: the lower training loss, as the pool is sorted.
        by_validation = max(pool, key=lambda model: model["validation"])
        results.append({"k": k, "seconds": seconds, "pool_size": len(pool), "own_pick": pool[0],
                        "validation_pick": by_validation})
        print(f"k = {k}: {seconds:.1f} s, test {pool[0]['test']:.4f} (own pick), "
              f"{by_validation['test']:.4f} (validation pick)", flush=True)
    with open(args.out, "w") as handle:
        json.dump({"P": args.P, "models": results}, handle, indent=1)


if __name__ == "__main__":
    main()
