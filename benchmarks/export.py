"""Benchmark: size and speed of the exported C header.

For Adult 108-16-2 at P = 1 and P = 15 and MNIST 784-16-10 at P = 1, each the straight-through-
estimator (STE) network trained on 2,000 examples (seed 0): the bytes of the header's weight and
bias arrays, and intnet_predict's rate on the dataset's test rows (examples per second, one
thread, timed inside the C program by benchmarks/support/time_predict.c in CPU time, median of
repeats), compiled with -O2 for the compiler's default target and with -O2 -march=native. The
predictions are checked against IntegerNetwork before any timing. Parameters and architecture are
those exported: hidden neurons that nothing reads are stripped.

Writes docs/results/export.{json,md} (``--quick``: export-quick.*).

    python benchmarks/export.py            # the docs' run (~1 min)
    python benchmarks/export.py --quick    # ~15 s
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from support.report import machine_line, write_results

from formulations.network import strip_neurons
from pipeline import training
from pipeline.config import TrainConfig
from pipeline.networks.export_c import export_c
from pipeline.networks.storage import StoredNetwork

TIMER = Path(__file__).parent / "support" / "time_predict.c"
NETWORKS = [("adult", 1), ("adult", 15), ("mnist", 1)]
FLAGS = {"-O2": ["-O2"], "-O2 -march=native": ["-O2", "-march=native"]}


def trained(name: str, P: int, steps: int) -> tuple[StoredNetwork, np.ndarray]:
    """The STE network for ``name`` at P and the dataset's test rows."""
    config = TrainConfig(dataset=name, train_size=2000, P=P, hidden=(16,), heuristic_steps=steps, seed=0)
    dataset = training.load_dataset(config)
    split = training.split_data(config, dataset)
    network = training.start_network(config, split, len(dataset.classes))
    stored = StoredNetwork.single(network, dataset.classes, {**dataset.preprocessor.to_json(), "label": dataset.label}, {})
    return stored, split.test_x


def rate(stored: StoredNetwork, x: np.ndarray, flags: list[str], seconds: float, repeats: int, folder: Path) -> float:
    """Median examples per second of intnet_predict over ``repeats`` timed runs."""
    (folder / "model.h").write_text(export_c(stored).text)
    program = folder / "time_predict"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wpedantic", *flags,
                    "-I", str(folder), "-o", str(program), str(TIMER)], check=True)
    x_int = np.rint(x * 10**4).astype(np.int64)
    rows = folder / "rows.txt"
    with open(rows, "w") as handle:
        handle.write(f"{x_int.shape[0]} {x_int.shape[1]}\n")
        np.savetxt(handle, x_int, fmt="%d")
    # one core: the program is single-threaded, and pinned where taskset exists
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    checksum = int(stored.network.predict(x).sum())
    rates = []
    for _ in range(repeats):
        out = subprocess.run([*pin, str(program), str(rows), str(seconds)], capture_output=True, text=True,
                             check=True).stdout.split()
        examples, elapsed, total = int(out[0]), float(out[1]), int(out[2])
        if total != checksum * (examples // len(x_int)):
            raise RuntimeError(f"the C predictions disagree with IntegerNetwork ({flags})")
        rates.append(examples / elapsed)
    return statistics.median(rates)


def compiler() -> str:
    return subprocess.run(["cc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def markdown(result: dict) -> str:
    lines = [
        "# Export: the C header's size and speed",
        "",
        f"{machine_line()} Compiler: {result['compiler']}. STE networks trained on 2,000 examples (seed 0), as "
        f"exported (hidden neurons that nothing reads stripped); intnet_predict timed on the test rows inside the C "
        f"program, one thread, in CPU time, median of {result['repeats']} runs of {result['seconds']:g} s. "
        f"Load average when written: {result['load']}.",
        "",
        "| network | P | parameters | weight bytes | bits per parameter | test rows | examples / s, -O2 | "
        "examples / s, -O2 -march=native |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["networks"]:
        lines.append(f"| {r['dataset']} {r['architecture']} | {r['P']} | {r['parameters']:,} | {r['weight_bytes']:,} | "
                     f"{r['bits_per_parameter']:.2f} | {r['rows']:,} | {r['rate']['-O2'] / 1e6:.1f} million | "
                     f"{r['rate']['-O2 -march=native'] / 1e6:.1f} million |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer STE steps, one short timing run")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    steps, seconds, repeats = (100, 0.2, 1) if args.quick else (2000, 2.0, 5)
    result = {"compiler": compiler(), "seconds": seconds, "repeats": repeats, "networks": []}
    with tempfile.TemporaryDirectory() as scratch:
        for name, P in NETWORKS:
            stored, x = trained(name, P, steps)
            header = export_c(stored)
            row = {"dataset": name, "architecture": "-".join(map(str, strip_neurons(stored.network).sizes)), "P": P,
                   "parameters": header.parameters, "weight_bytes": header.weight_bytes, "rows": len(x),
                   "rate": {label: rate(stored, x, flags, seconds, repeats, Path(scratch)) for label, flags in FLAGS.items()}}
            row["bits_per_parameter"] = 8 * row["weight_bytes"] / row["parameters"]
            result["networks"].append(row)
            print(f"{name} {row['architecture']} P = {P}: {row['weight_bytes']} weight bytes, "
                  + ", ".join(f"{label} {r / 1e6:.1f} M examples/s" for label, r in row["rate"].items()), flush=True)
    result["load"] = ", ".join(f"{load:.1f}" for load in os.getloadavg())
    write_results(Path(args.out), "export-quick" if args.quick else "export", result, markdown(result))


if __name__ == "__main__":
    main()
