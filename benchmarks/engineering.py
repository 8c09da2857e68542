"""Benchmark: where the time goes, how batches scale across actors, memory, inference speed.

Four measurements on Adult, sat_margin, P = 3, one hidden layer of 16, the paper's 10 % cutoff:

1. The time split of one batch solve (Pyomo model build / solver set-up / HiGHS solve) across batch
   sizes, solved in process from the straight-through-estimator (STE) start, median over batches.
2. The parallel speed-up of 1 against 2 Ray actors solving the same batches (one HiGHS thread
   each), both timed in this run, actor start-up included: the ratio of the two wall-clock times.
3. The peak resident memory of each actor (its process's peak, reported with every batch), and of
   this driver process.
4. Inference throughput of :class:`IntegerNetwork` (examples per second) on batches of 1, 1,000
   and 100,000 rows, median of repeats.

Writes docs/results/engineering.{json,md,png} (``--quick``: engineering-quick.*).

    python benchmarks/engineering.py            # the docs' run (~10 min on 2 cores)
    python benchmarks/engineering.py --quick    # ~1 min
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from support.report import machine_line, pyplot, save_figure, write_results

from pipeline import training
from pipeline.config import TrainConfig
from pipeline.execution.ray_executor import RayExecutor, ensure_ray, stop_ray
from pipeline.solving.batches import BatchTask, EpochStart, solve_batch

DATASET, MODEL, P = "adult", "sat_margin", 3


def setting(train_size: int, batch_size: int, seconds: float) -> tuple[TrainConfig, training.Prepared]:
    """A run's config, and the run prepared up to its first epoch."""
    config = TrainConfig(dataset=DATASET, formulation=MODEL, train_size=train_size, batch_size=batch_size, P=P,
                         time_limit=seconds, threads=1, seed=0, executor="local")
    return config, training.prepare(config)


def time_split(sizes: list[int], repeats: int, seconds: float) -> list[dict]:
    rows = []
    for size in sizes:
        config, run = setting(size * repeats, size, seconds)
        epoch = EpochStart(run.start)
        results = [solve_batch(run.context, epoch, task) for task in training.make_tasks(config, run.split)[:repeats]]
        rows.append({
            "batch_size": size, "batches": len(results), "time_limit": seconds,
            "build_seconds": statistics.median(r.build_seconds for r in results),
            "setup_seconds": statistics.median(r.setup_seconds for r in results),
            "solve_seconds": statistics.median(r.solve_seconds for r in results),
            "statuses": sorted({r.status for r in results}),
        })
        print(f"time split, batch {size}: {rows[-1]}", flush=True)
    return rows


def speed_up(batches: int, batch_size: int, seconds: float) -> dict:
    config, run = setting(batches * batch_size, batch_size, seconds)
    tasks: list[BatchTask] = training.make_tasks(config, run.split)
    ensure_ray(2)
    walls, peaks = {}, {}
    for workers in (1, 2):
        began = time.perf_counter()
        with training.opened(RayExecutor(workers=workers, threads=1), run.context) as executor:
            results = list(executor.run([EpochStart(run.start)], tasks))
        walls[workers] = time.perf_counter() - began
        by_worker: dict[str, float] = {}
        for r in results:
            by_worker[r.worker] = max(by_worker.get(r.worker, 0.0), r.worker_peak_rss_mb)
        peaks[workers] = sorted(by_worker.values())
        print(f"{workers} actor(s): {walls[workers]:.1f} s, statuses {sorted({r.status for r in results})}", flush=True)
    stop_ray()
    return {"batches": len(tasks), "batch_size": batch_size, "time_limit": seconds,
            "wall_seconds_1": walls[1], "wall_seconds_2": walls[2], "speed_up": walls[1] / walls[2],
            "actor_peak_rss_mb_1": peaks[1], "actor_peak_rss_mb_2": peaks[2],
            "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def inference(repeats: int) -> list[dict]:
    _, run = setting(200, 200, 1.0)
    network = run.start
    rows = []
    for rows_per_call in (1, 1_000, 100_000):
        x = np.resize(run.split.test_x, (rows_per_call, run.split.test_x.shape[1]))
        calls = max(1, 20_000 // rows_per_call)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            for _ in range(calls):
                network.predict(x)
            times.append((time.perf_counter() - began) / calls)
        median = statistics.median(times)
        rows.append({"rows_per_call": rows_per_call, "seconds_per_call": median,
                     "examples_per_second": rows_per_call / median, "sizes": network.sizes})
        print(f"inference, {rows_per_call} rows per call: {rows_per_call / median:,.0f} examples/s", flush=True)
    return rows


def markdown(result: dict) -> str:
    s = result["speed_up"]
    lines = [
        "# Engineering: time split, parallel speed-up, memory, inference",
        "",
        f"{machine_line()} {DATASET}, {MODEL}, P = {P}, hidden 16, seed 0, the paper's 10 % cutoff, HiGHS 1 thread "
        "per solve, every solve from the STE start.",
        "",
        "## Time split of one batch solve (median over batches, s)",
        "",
        "| batch size | batches | time limit | model build | solver set-up | solve | statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["time_split"]:
        lines.append(f"| {r['batch_size']} | {r['batches']} | {r['time_limit']:g} | {r['build_seconds']:.2f} | "
                     f"{r['setup_seconds']:.2f} | {r['solve_seconds']:.2f} | {', '.join(r['statuses'])} |")
    lines += [
        "",
        f"## Parallel speed-up: {s['batches']} batches of {s['batch_size']}, {s['time_limit']:g} s limit each",
        "",
        "| actors | wall clock s | actor peak RSS MB |",
        "|---|---|---|",
        f"| 1 | {s['wall_seconds_1']:.1f} | {', '.join(f'{m:.0f}' for m in s['actor_peak_rss_mb_1'])} |",
        f"| 2 | {s['wall_seconds_2']:.1f} | {', '.join(f'{m:.0f}' for m in s['actor_peak_rss_mb_2'])} |",
        "",
        f"Speed-up of 2 actors over 1, same batches, one run: **{s['speed_up']:.2f}×**. Driver peak RSS "
        f"{s['driver_peak_rss_mb']:.0f} MB.",
        "",
        "## Inference throughput of IntegerNetwork.predict (median of repeats)",
        "",
        "| rows per call | µs per call | examples / s |",
        "|---|---|---|",
    ]
    for r in result["inference"]:
        lines.append(f"| {r['rows_per_call']:,} | {1e6 * r['seconds_per_call']:,.1f} | {r['examples_per_second']:,.0f} |")
    lines.append(f"\nNetwork sizes {result['inference'][0]['sizes']}.")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    plt = pyplot()
    rows = result["time_split"]
    sizes = [str(r["batch_size"]) for r in rows]
    figure, ax = plt.subplots(figsize=(5, 3))
    bottom = np.zeros(len(rows))
    for key, label in (("build_seconds", "model build"), ("setup_seconds", "solver set-up"), ("solve_seconds", "solve")):
        values = np.array([r[key] for r in rows])
        ax.bar(sizes, values, bottom=bottom, label=label)
        bottom += values
    ax.set_xlabel("batch size (examples)")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"One batch solve, {DATASET} {MODEL} P = {P}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two batch sizes, 4 batches, 2 s limits")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    if args.quick:
        sizes, repeats, seconds, batches, repeats_inference = [20, 40], 2, 2.0, 4, 3
    else:
        sizes, repeats, seconds, batches, repeats_inference = [25, 50, 100, 200, 400], 3, 20.0, 12, 7
    name = "engineering-quick" if args.quick else "engineering"
    result = {"time_split": time_split(sizes, repeats, seconds),
              "speed_up": speed_up(batches, 40, seconds / 2),
              "inference": inference(repeats_inference)}
    out = Path(args.out)
    write_results(out, name, result, markdown(result))
    plot(result, out / f"{name}.png")


if __name__ == "__main__":
    main()
