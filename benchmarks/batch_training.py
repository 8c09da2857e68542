"""Benchmark: test accuracy against data size, one MIP against the paper's batch training.

Adult, P = 15, one hidden layer of 16, sat_margin (the paper's experiment 4 model):
* one MIP on N = 200 (HiGHS from the STE start, then MIP local search);
* batch training on N = 2,000 and N = 25,000: batches of 100, P + 1 = 16 epochs, every batch
  solved by MIP local search from the merged network inside the epoch's box, on 2 Ray workers.
Each run goes through the Prefect flow, as `intnet train` does. Writes
docs/results/batch_training.{json,md} with the wall time, the driver's peak memory and the
epoch tables.

    python benchmarks/batch_training.py            # the full table (about 40 min on 2 cores)
    python benchmarks/batch_training.py --quick    # Heart, 2 epochs, a few minutes
    python benchmarks/batch_training.py --starts   # N = 2,000: shared merged start against cold batches

``--starts`` measures what the shared start adds: the same batch training on N = 2,000 with every
batch started from the merged network (intnet) and from all zeros inside the epoch's box (the
paper's batches had no warm start), written to docs/results/batch_start.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from support.report import machine_line, pyplot, save_figure, write_results

from pipeline import training
from pipeline.config import TrainConfig

PAPER = ("the paper's experiment 4 (docs/method.md §7.1): Adult, N = 25,000, batches of 100, P = 15, "
         "108-16-2, sat_margin, 16 epochs, Gurobi with 2 threads and 15 min per batch MIP, batches cold-started "
         "(only the epoch box carried over), 5 seeds; its accuracies were not published in its code repository")


def runs(quick: bool) -> list[tuple[str, dict]]:
    if quick:
        base = dict(dataset="heart", P=3, hidden=(8,), formulation="sat_margin", seed=0)
        return [
            ("one MIP", base | dict(train_size=80, time_limit=5, improve=5)),
            ("batch training", base | dict(train_size=200, batch_size=40, epochs=2, time_limit=0, improve=1,
                                           workers=2)),
        ]
    base = dict(dataset="adult", P=15, hidden=(16,), formulation="sat_margin", seed=0)
    batch = dict(batch_size=100, time_limit=0, improve=1, workers=2)
    return [
        ("one MIP", base | dict(train_size=200, time_limit=60, improve=60)),
        ("batch training", base | batch | dict(train_size=2000)),
        ("batch training", base | batch | dict(train_size=25000)),
    ]


def run(name: str, settings: dict, scratch: Path) -> dict:
    config = TrainConfig(**settings, out=scratch / f"{name.replace(' ', '-')}-{settings['train_size']}.parquet",
                         checkpoints=scratch / "runs")
    began = time.perf_counter()
    summary = training.train(config)
    wall = time.perf_counter() - began
    batches = summary.batches
    return {
        "method": name, "N": summary.n_train, "batches_per_epoch": summary.epochs[0].batches,
        "epochs": len(summary.epochs), "best_epoch": summary.best_epoch, "seconds": wall,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start": summary.start.as_dict(), "final": summary.final.as_dict(), "final_source": summary.final_source,
        "failed_batches": sum(not b.ok for b in batches), "accepted_batches": sum(b.accepted for b in batches),
        "median_batch_seconds": sorted(b.seconds for b in batches)[len(batches) // 2],
        "epoch_table": [e.as_dict() for e in summary.epochs],
        "config": config.model_dump(mode="json", exclude={"out", "checkpoints"}),
    }


def markdown(rows: list[dict]) -> str:
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [
        "# Test accuracy against data size: one MIP, batch training (Adult, P = 15, 108-16-2, sat_margin)",
        "",
        f"{machine_line()} One seed (0). Accuracies in %; the start is the "
        "straight-through-estimator network on the same training set (the gradient baseline).",
        "",
        "| method | N | batches × epochs | start train / val / test | final train / val / test | final from | "
        "batches accepted / failed | median batch s | wall time | driver peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, f = r["start"], r["final"]
        lines.append(
            f"| {r['method']} | {r['N']:,} | {r['batches_per_epoch']} × {r['epochs']} | "
            f"{pct(s['train'])} / {pct(s['validation'])} / {pct(s['test'])} | "
            f"{pct(f['train'])} / {pct(f['validation'])} / {pct(f['test'])} | {r['final_source']} "
            f"(epoch {r['best_epoch']}) | {r['accepted_batches']} / {r['failed_batches']} | "
            f"{r['median_batch_seconds']:.1f} | {r['seconds'] / 60:.1f} min | {r['driver_peak_rss_mb']:.0f} MB |"
        )
    lines += ["", "Settings: " + "; ".join(
        f"{r['method']} N = {r['N']}: time limit {r['config']['time_limit']:g} s, local search "
        f"{r['config']['improve']:g} s per batch, {r['config']['workers']} worker(s)" for r in rows) + ".",
        "", "Beside: " + PAPER + "."]
    return "\n".join(lines) + "\n"


def compare_starts(out: Path) -> None:
    base = dict(dataset="adult", P=15, hidden=(16,), formulation="sat_margin", seed=0, train_size=2000,
                batch_size=100, time_limit=0, improve=1, workers=2)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for start in ("merged", "zero"):
            row = run("batch training", base | dict(batch_start=start), Path(scratch))
            rows.append(row | {"batch_start": start})
    lines = [
        "# Shared batch start against cold batches (Adult N = 2,000, batches of 100, P = 15, 16 epochs, sat_margin)",
        "",
        "Every batch solved by 1 s of MIP local search on 2 Ray workers, one seed. `merged`: every batch of an "
        "epoch starts from the network merged so far (intnet); `zero`: from the all-zero network inside the "
        "epoch's box (the paper's batches had no warm start, only the box). Accuracies in %.",
        "",
        "| batch start | best epoch | its merged network train / val / test | final (from) | batches accepted | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        best = r["epoch_table"][r["best_epoch"]]["merged"]
        lines.append(
            f"| {r['batch_start']} | {r['best_epoch']} | {100 * best['train']:.1f} / {100 * best['validation']:.1f} / "
            f"{100 * best['test']:.1f} | {100 * r['final']['test']:.1f} ({r['final_source']}) | "
            f"{r['accepted_batches']} of {r['batches_per_epoch'] * r['epochs']} | {r['seconds'] / 60:.1f} min |"
        )
    write_results(out, "batch_start", rows, "\n".join(lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    """The merged network's test accuracy after every epoch, against its start, for each run."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 3.2))
    for r in rows:
        epochs = [e["epoch"] for e in r["epoch_table"]]
        line, = ax.plot(epochs, [100 * e["merged"]["test"] for e in r["epoch_table"]], marker="o", markersize=3,
                        label=f"{r['method']}, N = {r['N']:,}")
        ax.axhline(100 * r["start"]["test"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("merged network's test accuracy %")
    ax.set_title("Batch training on Adult, P = 15 (dotted: each run's gradient start)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--starts", action="store_true", help="compare the shared batch start with cold batches")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--render", metavar="JSON", help="only draw the plot of a stored run")
    args = parser.parse_args()
    if args.render:
        plot(json.loads(Path(args.render).read_text())["rows"], Path(args.render).with_suffix(".png"))
        return
    out = Path(args.out)
    if args.starts:
        compare_starts(out)
        return
    name = "batch_training-quick" if args.quick else "batch_training"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for method, settings in runs(args.quick):
            rows.append(run(method, settings, Path(scratch)))
            print(f"{method} N={rows[-1]['N']}: test {rows[-1]['final']['test']}, {rows[-1]['seconds']:.0f} s", flush=True)
            write_results(out, name, {"paper": PAPER, "rows": rows}, markdown(rows))
    plot(rows, out / f"{name}.png")


if __name__ == "__main__":
    main()
