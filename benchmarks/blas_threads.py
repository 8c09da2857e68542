"""Benchmark: the start network's time with numpy's BLAS threads capped (``pipeline/solving/blas.py``)
and without the cap, on all of Adult, with a CPU hog process beside it and without.

The start is what every run of a hidden layer computes first: the straight-through-estimator network
(``train_ste``, the run's default 2000 steps, one hidden layer of 16, P = 3) on Adult's whole
training split (26,049 rows, 108 inputs), judged on its validation split. "capped" is ``train_ste``
as the run calls it (one BLAS thread); "uncapped" is the same function unwrapped
(``train_ste.__wrapped__``), with as many BLAS threads as numpy's BLAS starts by default (one per
core). The hog is a process spinning on one core (``while True: pass``), as another user's job on
a shared machine. Each pair is measured in turn under the same condition, the networks compared.
Writes docs/results/blas_threads.{json,md} (``--quick``: blas_threads-quick.*, 30 steps, the
hog only).

    python benchmarks/blas_threads.py             # 2000 steps, hog then idle, once (25 min under load on 2 cores)
    python benchmarks/blas_threads.py --quick     # 30 steps, with the hog, once (under 2 minutes)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from support.report import machine_line, write_results
from threadpoolctl import threadpool_info

from pipeline import training
from pipeline.config import TrainConfig
from pipeline.solving.blas import BLAS_THREADS
from pipeline.solving.heuristic import SteSettings, train_ste

HIDDEN, P = (16,), 3


@contextmanager
def hog(on: bool):
    """A process spinning on one core while the block runs (nothing when ``on`` is false)."""
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it take its core
        yield
    finally:
        spinner.kill()
        spinner.wait()


def measure(split, steps: int, capped: bool, hogged: bool) -> dict:
    start = train_ste if capped else train_ste.__wrapped__
    n_classes = int(split.train_y.max()) + 1
    with hog(hogged):
        load = os.getloadavg()[0]
        began = time.perf_counter()
        network = start(split.train_x, split.train_y, n_classes, HIDDEN, P, seed=0, settings=SteSettings(steps=steps),
                        x_val=split.val_x, y_val=split.val_y)
        seconds = time.perf_counter() - began
    return {"capped": capped, "hog": hogged, "steps": steps, "seconds": seconds, "load": load,
            "validation": network.accuracy(split.val_x, split.val_y), "network": network}


def markdown(rows: list[dict], blas: list[dict], steps: int) -> str:
    lines = ["# BLAS threads of the start network", "", machine_line(), "",
             "BLAS: " + ", ".join(f"{b['internal_api']} {b.get('version')} ({b['num_threads']} threads by default)"
                                  for b in blas) + f"; capped: {BLAS_THREADS} thread.", "",
             f"The gradient start (`train_ste`, {steps} steps, hidden {HIDDEN[0]}, P = {P}) on all of Adult's training "
             "split (26,049 rows), seconds per run (mean of the repeats, min-max in brackets); load: the "
             "1-minute load average as the run began (the machine is shared with other work).", "",
             "| condition | uncapped (s) | capped (s) | uncapped / capped | same network | validation | load |",
             "|---|---|---|---|---|---|---|"]
    for hogged in (True, False):
        pairs = [r for r in rows if r["hog"] == hogged]
        if not pairs:
            continue
        uncapped = [r["seconds"] for r in pairs if not r["capped"]]
        capped = [r["seconds"] for r in pairs if r["capped"]]
        same = all(r["same_network"] for r in pairs if r["capped"])
        lines.append(
            f"| {'CPU hog beside it' if hogged else 'no hog'} | {statistics.fmean(uncapped):.1f} "
            f"({min(uncapped):.1f}-{max(uncapped):.1f}) | {statistics.fmean(capped):.1f} ({min(capped):.1f}-{max(capped):.1f}) "
            f"| {statistics.fmean(uncapped) / statistics.fmean(capped):.1f} | {'yes' if same else 'no'} "
            f"| {100 * statistics.fmean(r['validation'] for r in pairs if r['capped']):.2f} % "
            f"| {statistics.fmean(r['load'] for r in pairs):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 steps, with the hog, once")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results")
    parser.add_argument("--conditions", default="hog,idle", help="comma list of hog (a CPU hog beside the start) and idle")
    args = parser.parse_args()
    # Stopped by SIGTERM (timeout, CI), the hog's `finally` must still run: a hog left spinning
    # (measured: an orphan kept one core busy) would load the machine for everything after.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    wanted = tuple(name == "hog" for name in args.conditions.split(","))
    steps, repeats, conditions = (30, 1, (True,)) if args.quick else (2000, args.repeats, wanted)
    name = "blas_threads-quick" if args.quick else "blas_threads"
    config = TrainConfig(dataset="adult", hidden=HIDDEN, P=P)
    split = training.split_data(config, training.load_dataset(config))
    blas = [{k: v for k, v in info.items() if k != "filepath"} for info in threadpool_info() if info["user_api"] == "blas"]
    rows: list[dict] = []
    for hogged in conditions:
        for repeat in range(repeats):
            uncapped = measure(split, steps, capped=False, hogged=hogged)
            capped = measure(split, steps, capped=True, hogged=hogged)
            capped["same_network"] = capped.pop("network").equals(uncapped.pop("network"))
            rows += [uncapped | {"repeat": repeat}, capped | {"repeat": repeat}]
            print(f"hog {hogged} repeat {repeat}: uncapped {uncapped['seconds']:.1f} s, capped {capped['seconds']:.1f} s, "
                  f"same network {capped['same_network']}", flush=True)
            write_results(args.out, name, {"blas": blas, "capped_threads": BLAS_THREADS, "rows": rows},
                          markdown(rows, blas, steps))


if __name__ == "__main__":
    main()
