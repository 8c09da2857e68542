"""The ``intnet`` command: train, serve, evaluate, predict, improve, compress, info, export.

Heavy packages (Prefect, Ray, Pyomo) are imported inside the commands that need them, so
``intnet --help`` stays instant, and `intnet train` imports Prefect only when it runs as a Prefect
flow. Every user error is one line on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Literal, get_args, get_origin

EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
"""What a shell reports for a program that SIGPIPE ended, as it ends C programs whose reader left."""
EXPORT_SUFFIXES = {"c": ".h", "onnx": ".onnx"}
ENDING_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
"""Signals that end a run at once (Ctrl-C; what timeout, systemd and docker send), and the word
its line uses for each."""


class UsageError(Exception):
    """Bad arguments or data: printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (argparse's own prints the whole usage, 17 lines for
    train, above the one that matters)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    # Without argv this process is the command (the `intnet` script): its wall time counts from the
    # process's start, interpreter and imports included; called with argv (a test), from here.
    began = process_started() if argv is None else time.clock_gettime(time.CLOCK_BOOTTIME)
    try:
        try:
            arguments = sys.argv[1:] if argv is None else list(argv)
            return run_command(build_parser(next((arg for arg in arguments if not arg.startswith("-")), None)),
                               arguments, began)
        finally:
            sys.stdout.flush()  # a closed pipe shows here (after --help too), not in Python's exit
    except BrokenPipeError:
        if not stdout_closed():
            raise
        # The reader of standard output has left (`intnet info MODEL | head`): nothing more to say.
        # What is still buffered goes nowhere, instead of a second BrokenPipeError at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def run_command(parser: argparse.ArgumentParser, argv: list[str], began: float) -> int:
    args = parser.parse_args(argv)
    args.began = began
    from pipeline.errors import IntnetError

    try:
        return args.command(args)
    except (UsageError, IntnetError) as error:
        print(f"intnet {args.command_name}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"intnet {args.command_name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def process_started() -> float:
    """When this process started, on the CLOCK_BOOTTIME clock (Linux: /proc/self/stat's starttime,
    in clock ticks since boot, 10 ms on this machine)."""
    fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5); fields[0] is field 3


def stdout_closed() -> bool:
    """Whether standard output is a pipe or socket whose reader has gone (poll reports POLLERR)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (OSError, ValueError, AttributeError):  # no file descriptor behind sys.stdout
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command; the flags generated from the run's configuration only for ``command`` (all of
    them for None): that configuration brings the MIP stack with it, which ``info``, ``predict``
    and ``export`` do without (seconds of imports)."""

    def configured(name: str) -> bool:
        return command is None or command == name

    parser = OneLineParser(
        prog="intnet",
        description="Train integer-valued neural networks exactly with mixed-integer programming (HiGHS).",
    )
    parser.add_argument("--version", action="version", version=f"intnet {version('intnet')}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a network and write it to Parquet")
    if configured("train"):
        add_train_arguments(train)
    train.add_argument("--json", action="store_true", help="print one JSON object instead of the summary table")
    train.add_argument("--prefect", action="store_true",
                       help="run as the Prefect flow, each step a task (the default when a Prefect API is configured: "
                       "PREFECT_API_URL in the environment or the active Prefect profile; without one, Prefect's "
                       "temporary server is started for the run, 10-30 s)")
    train.set_defaults(command=run_train, command_name="train")

    serve = commands.add_parser(
        "serve", help="serve the training flow as a Prefect deployment (schedule and remote triggering, no work pool)",
        description="Create a deployment of the training flow whose default parameters are the training flags given "
                    "here, and run the flows it is asked for until stopped (Prefect's flow.serve).",
    )
    if configured("serve"):
        add_train_arguments(serve)
    serve.add_argument("--name", default="intnet-train", help="deployment name (default: intnet-train)")
    serve.add_argument("--cron", help="schedule as a cron string, e.g. '0 3 * * *' (default: none, runs only when triggered)")
    serve.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                       help="a folder inside which a triggered run may name any --data, --test-data, --out or "
                       "--checkpoints path (repeat for more); other paths must be the ones given here "
                       "(default: none, so a trigger cannot change paths)")
    serve.set_defaults(command=run_serve, command_name="serve")

    evaluate = commands.add_parser("evaluate", help="accuracy of a network on a dataset or file")
    evaluate.add_argument("model", metavar="MODEL")
    add_labelled_source(evaluate)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(command=run_evaluate, command_name="evaluate")

    predict = commands.add_parser("predict", help="class labels for the raw rows of a file")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("--data", metavar="FILE", required=True, help="rows with the training feature columns")
    predict.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    predict.set_defaults(command=run_predict, command_name="predict")

    polish = commands.add_parser("improve", help="polish a network file with MIP local search")
    polish.add_argument("model", metavar="MODEL")
    add_labelled_source(polish)
    polish.add_argument("--seconds", type=float, required=True, help="time for the local search")
    polish.add_argument("--formulation", help="objective to improve (default: the one the model was trained with)")
    if configured("improve"):
        add_config_flags(polish, "threads", "improve_step_limit", "improve_validation")
    polish.add_argument("--out", metavar="FILE", help="network file to write (default: MODEL with .improved before .parquet)")
    polish.add_argument("--json", action="store_true")
    polish.set_defaults(command=run_improve, command_name="improve")

    compress = commands.add_parser(
        "compress", help="make a network file smaller (hidden neurons, then non-zero parameters, then bits) "
        "without classifying fewer kept examples correctly")
    compress.add_argument("model", metavar="MODEL")
    add_labelled_source(compress)
    compress.add_argument("--seconds", type=float, required=True, help="time for the compression")
    if configured("compress"):
        add_config_flags(compress, "keep", "tolerance", "threads", "improve_step_limit")
    compress.add_argument("--out", metavar="FILE",
                          help="network file to write (default: MODEL with .compressed before .parquet)")
    compress.add_argument("--json", action="store_true")
    compress.set_defaults(command=run_compress, command_name="compress")

    info = commands.add_parser("info", help="architecture, size and provenance of a network file")
    info.add_argument("model", metavar="MODEL")
    info.add_argument("--json", action="store_true")
    info.set_defaults(command=run_info, command_name="info")

    export = commands.add_parser("export", help="a network as a C99 header or an ONNX model")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("--format", choices=EXPORT_SUFFIXES, required=True,
                        help="c: one header, integer arithmetic only; onnx: standard operators, opset 17")
    export.add_argument("--out", metavar="FILE", help="file to write (default: MODEL with .h or .onnx for .parquet)")
    export.add_argument("--raw-inputs", action="store_true",
                        help="onnx: x takes numeric columns' raw values (float64) and the graph scales them; "
                             "the C header always has intnet_encode for that")
    export.set_defaults(command=run_export, command_name="export")
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of TrainConfig (shared by train and serve)."""
    from pipeline.config import TrainConfig

    add_config_flags(parser, *TrainConfig.model_fields)


def add_config_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """Flags for run options, generated from TrainConfig's fields: the flag is the field's name,
    the help its description, the choices its Literal's values; the default is the field's own,
    shown in the help and applied by TrainConfig (a flag not given is not passed on)."""
    from pipeline.config import TrainConfig

    for name in names:
        parser.add_argument(flag_of(name), dest=name, default=argparse.SUPPRESS,
                            **flag_settings(TrainConfig.model_fields[name]))


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def flag_settings(field) -> dict:
    """argparse settings for a config field. Values stay strings: TrainConfig parses and checks
    them, so that a bad value gets the same message from the CLI, a flow call and the estimator."""
    extra = field.json_schema_extra or {}
    help_text = field.description
    if field.default is not None and field.default is not False and field.default != ():
        shown = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
        help_text += f" (default: {shown})"
    if field.annotation is bool:
        # An option on by default needs a way to turn it off: --no-FLAG.
        return {"action": argparse.BooleanOptionalAction if field.default else "store_true", "help": help_text}
    settings = {"help": help_text, "metavar": extra.get("metavar")}
    if extra.get("repeat"):  # a flag given once per value: --exclude a --exclude b
        settings["action"] = "append"
    literal = [arg for arg in get_args(field.annotation) if get_origin(arg) is Literal] or (
        [field.annotation] if get_origin(field.annotation) is Literal else [])
    if not extra.get("metavar") and (literal or isinstance(field.annotation, type) and issubclass(field.annotation, Enum)):
        # Shown like argparse's choices, but checked by TrainConfig like every other value.
        values = get_args(literal[0]) if literal else [str(member) for member in field.annotation]
        settings["metavar"] = "{" + ",".join(values) + "}"
    return settings


def add_labelled_source(command: argparse.ArgumentParser) -> None:
    """The labelled data a stored network is measured or polished on: a built-in dataset or a file."""
    from pipeline.data.datasets import BUILTIN_DATASETS

    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=BUILTIN_DATASETS)
    source.add_argument("--data", metavar="FILE")
    command.add_argument("--label", metavar="COLUMN", help="label column of --data (default: the one the model was trained on)")


# --- train ---------------------------------------------------------------------------------


def option_values(args: argparse.Namespace, *names: str, **alongside) -> dict:
    """The run options among ``names`` that were given, checked as TrainConfig checks them with the
    fields ``alongside`` (what the command itself stands for, e.g. ``compress`` seconds)."""
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    config = validated_config({**alongside, **given})
    return {name: getattr(config, name) for name in given}


def train_config(args: argparse.Namespace):
    """Validate the train flags given into a TrainConfig; a bad value names its flag."""
    from pipeline.config import TrainConfig

    return validated_config({name: getattr(args, name) for name in TrainConfig.model_fields if hasattr(args, name)})


def validated_config(fields: dict):
    from pydantic import ValidationError

    from pipeline.config import TrainConfig, first_problem

    try:
        return TrainConfig(**fields)
    except ValidationError as error:
        field, message = first_problem(error)
        if field is None:
            raise UsageError(message) from None
        raise UsageError(f"{flag_of(str(field))}: {message} (got {fields.get(field)!r})") from None


def checked_config(args: argparse.Namespace):
    """The run's config, with its outputs checked and its data loaded and split once: a bad path,
    file or split is a one-line error at once, not a failed run after Prefect's start-up (loading
    is < 1 s)."""
    config = train_config(args)
    from pipeline import training

    training.check_outputs(config)
    training.split_data(config, training.load_dataset(config))
    return config


@contextmanager
def signals_end_run(message: Callable[[str], str]) -> Iterator[Callable]:
    """Ctrl-C (SIGINT) and SIGTERM end the process at once with the line ``message(word)`` (the
    word: ``interrupted`` or ``terminated``) and exit code 128 + the signal's number (130, 143).
    Yields the handler, for code that must put it back after a library replaced it. Not by
    KeyboardInterrupt: measured, HiGHS (highspy under Pyomo) catches it and cancels the solve, so
    the run (or local search) went on and wrote its model; and in a run, Prefect's flow engine
    reports the crash to its API, which Ctrl-C in a terminal had killed, retrying for 148 s.
    Nothing needs the run's own clean-up: every finished batch is already stored (atomically), and
    the run's processes and temporary folder are the watchdog's (flows/run_scope.py)."""
    # A copy of the process's standard error (file descriptor 2) as the run started: while HiGHS
    # solves in this process, Pyomo points descriptor 2 at a pipe of its own (measured: the line
    # written there was lost). sys.stderr may be no file at all (a caller capturing it).
    stderr = os.dup(2)
    first = threading.Lock()

    def ended(signum, frame):
        first.acquire()  # never released: the first caller ends the process, a second waits for it
        os.write(stderr, message(ENDING_SIGNALS[signum]).encode() + b"\n")
        os._exit(128 + signum)

    # Python runs a handler on the main thread, between two bytecodes, and Ray's wait for a batch
    # looks for one once a second: measured, the line came 0.05-0.9 s after a SIGTERM to the run's
    # process group, which ends Ray's processes at once, and in 1 run of 6 the driver's Ray printed
    # lines of its own before it. Python's C-level handler also writes the signal's number to the
    # wakeup descriptor at once; a thread waiting on it runs the handler within milliseconds.
    woken, wakeup = os.pipe()
    os.set_blocking(wakeup, False)
    previous_wakeup = signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)

    def wait_for_signal():
        while numbers := os.read(woken, 64):  # b"" once the write end is closed
            for signum in numbers:
                if signum in ENDING_SIGNALS:
                    ended(signum, None)

    waiter = threading.Thread(target=wait_for_signal, name="intnet-signals", daemon=True)
    waiter.start()
    previous = {signum: signal.signal(signum, ended) for signum in ENDING_SIGNALS}
    try:
        yield ended
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wakeup)
        waiter.join()
        os.close(woken)
        os.close(stderr)


def interrupted_line(
    command: str, out: Path, unwritten: str = "nothing written", prefix: str = ""
) -> Callable[[str], str]:
    """The line for a signal that ends ``command`` (``how``: interrupted, terminated), whose result
    ``out`` is written atomically at its end: whether it was written by then (a file older than
    this call is not this run's), else ``unwritten``. ``prefix`` goes first (a terminal reset)."""
    started = time.time_ns()

    def message(how: str) -> str:
        if out.exists() and out.stat().st_mtime_ns >= started:
            return f"{prefix}intnet {command}: {how} after writing {out}"
        return f"{prefix}intnet {command}: {how}, {unwritten}"

    return message


def check_not_the_model(out: Path, model: str) -> None:
    """``--out`` must not be MODEL itself: the result would replace the network it was made from."""
    source = Path(model)
    same = out.resolve() == source.resolve() or (out.exists() and source.exists() and os.path.samefile(out, source))
    if same:
        raise UsageError(f"--out {out} is MODEL itself, which writing would replace; give another --out "
                         "(leave it out to write beside MODEL)")


@contextmanager
def logged_to_stderr(level: int) -> Iterator[None]:
    """The ``intnet`` logger's lines (the run's: epochs, batches, local search) from ``level`` on,
    on standard error, as Prefect's console shows a flow's."""
    logger = logging.getLogger("intnet")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s", "%H:%M:%S"))
    saved = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def run_train(args: argparse.Namespace) -> int:
    config = checked_config(args)
    show_progress = sys.stdout.isatty() and not args.json
    from flows.run_scope import configured_prefect_api, private_run

    as_flow = args.prefect or configured_prefect_api() is not None
    interrupted = interrupted_line(
        "train", Path(config.out),
        unwritten=f"no model written; the batches solved so far are kept under {config.checkpoints} (the same "
        "command with --resume solves only the others)",
        # The progress display hid the terminal's cursor; the hard exit must show it again.
        prefix="\x1b[?25h\n" if show_progress else "")

    with private_run(), signals_end_run(interrupted) as ended:
        ray = start_ray(config, ended)
        try:
            with ExitStack() as stack:
                progress = None
                if show_progress:
                    from flows.progress import TerminalProgress

                    progress = stack.enter_context(TerminalProgress())
                summary = (train_as_flow if as_flow else train_directly)(config, progress)
        finally:
            if ray:
                from pipeline.execution.ray_executor import stop_ray

                stop_ray()
    summary.timings["total"] = time.clock_gettime(time.CLOCK_BOOTTIME) - args.began
    if args.json:
        print(json.dumps(summary.to_json(), default=_json_default))
    else:
        print(format_summary(summary))
    return 0


def train_directly(config, progress):
    """The run in this process, as the estimator runs it: no Prefect (whose temporary server took
    22-30 s of a run whose training took 1-2 s, measured)."""
    from pipeline import training

    observer = training.LogObserver() if progress is None else training.Observers(training.LogObserver(), progress)
    # The display says what the INFO lines would; they would break its bar.
    with logged_to_stderr(logging.INFO if progress is None else logging.WARNING):
        return training.train(config, observer=observer)


def train_as_flow(config, progress):
    """The run as the Prefect flow, each step a task, on the configured API or a temporary server."""
    if progress is not None:
        # The display says what Prefect's INFO lines would; they would break its bar.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.run_scope import prefect_api

    with prefect_api():
        from flows.train import sigterm_handler_kept, train, watched

        with sigterm_handler_kept(), watched(progress) if progress is not None else nullcontext():
            return train(config)


def start_ray(config, handler: Callable) -> bool:
    """Start the run's Ray (when it uses one) here, before the run, and put the run's SIGTERM
    ``handler`` back after it: ray.init puts its own in place (sys.exit, which ended a two-worker
    run in SIGABRT, exit 134, after 7-13 lines of Ray's). A SIGTERM that comes while Ray starts
    meets Ray's handler as SystemExit(SIGTERM), and is handed to the run's. The run's executor
    uses this Ray and leaves it running; the caller stops it if this returns True. A Ray this
    process runs already (a test's) is left alone."""
    from pipeline.execution.ray_executor import ensure_ray, ray_running

    if not config.use_ray or ray_running():
        return False
    try:
        # As many CPUs as RayExecutor.open asks for (a local Ray; a cluster has its own).
        ensure_ray(max(config.workers * config.threads, os.cpu_count() or 1))
    except SystemExit as exit:
        if exit.code != signal.SIGTERM:
            raise
        handler(signal.SIGTERM, None)
    signal.signal(signal.SIGTERM, handler)
    return True


def run_serve(args: argparse.Namespace) -> int:
    config = checked_config(args)
    from flows.policy import VARIABLE, ServePolicy
    from flows.run_scope import environment, private_run, served_api

    policy = ServePolicy.for_serve(args.allow_dir, config)
    with private_run() as folder, served_api(folder) as access, environment({VARIABLE: policy.to_environment()}):
        from flows.train import train

        name = f"train/{args.name}"
        print(f"intnet serve: deployment '{name}'" + (f" on schedule '{args.cron}'" if args.cron else "") + "; runs "
              + (f"may name paths inside {', '.join(policy.allowed)} besides its own" if policy.allowed
                 else "keep its own paths (no --allow-dir)"), file=sys.stderr)
        if access is None:
            print(f"intnet serve: trigger a run with: prefect deployment run '{name}'", file=sys.stderr)
        else:
            print(f"intnet serve: its Prefect server takes only requests with the credentials in {access} (yours "
                  f"alone); trigger a run with: env $(cat {access}) prefect deployment run '{name}'", file=sys.stderr)
        # The flags are the deployment's default parameters; a trigger may override any field,
        # within the policy (flows/policy.py).
        train.serve(name=args.name, cron=args.cron, parameters={"config": config.model_dump(mode="json")},
                    pause_on_shutdown=False)
    return 0


def format_summary(summary) -> str:
    def pct(value):
        return "  n/a" if value is None else f"{100 * value:5.1f}%"

    t = summary.timings
    members = len(summary.members)
    what = (f"network {'-'.join(map(str, summary.sizes))}" if members == 1 else
            f"{summary.model.kind} ensemble of {members} networks like {'-'.join(map(str, summary.sizes))}")
    kept = f"epoch {summary.best_epoch}" if summary.best_epoch is not None else "each member's best epoch"
    rows = [
        f"intnet: {summary.config.dataset_name}, {summary.config.formulation}, P = {summary.config.P}, "
        f"{what}, {summary.n_train} training examples, "
        f"{len(summary.epochs)} epoch(s) of {summary.epochs[0].batches if summary.epochs else 0} batch(es)",
        "",
        f"  {'':33} train  validation   test",
        f"  {'start (' + ('sparse scoring system' if summary.sizes[1:-1] == [] else 'gradient, STE') + ')':32} {pct(summary.start.train)}   {pct(summary.start.validation)}   {pct(summary.start.test)}",
        f"  {'merged, ' + kept:32} {pct(summary.merged.train)}   {pct(summary.merged.validation)}   {pct(summary.merged.test)}",
        f"  {'final (' + summary.final_source + ')':32} {pct(summary.final.train)}   {pct(summary.final.validation)}   {pct(summary.final.test)}",
        "",
        f"  size: {summary.n_parameters} parameters × {summary.size_bits // max(summary.n_parameters, 1)} bits = "
        f"{summary.size_bits} bits; {summary.nonzero_parameters} non-zero (weights and biases)"
        + ("" if summary.config.max_nonzero is None else f", budget {summary.config.max_nonzero}"),
    ]
    if members > 1:
        tied = summary.tied_votes
        rows.append(f"  votes tied (decided by the lowest class index): train {tied['train']}, "
                    f"validation {tied['validation']}, test {tied['test'] if tied['test'] is not None else 'n/a'}")
        rows.append("  members' test accuracy on their classes, start -> final: " + ", ".join(
            f"{pct(m.start.test).strip()}->{pct(m.final.test).strip()}" for m in summary.members))
    if summary.trained_sizes != summary.sizes:
        kept = ", ".join(f"{n} of {m}" for n, m in zip(summary.sizes[1:-1], summary.trained_sizes[1:-1]))
        rows.append(f"  neurons kept per hidden layer: {kept}; trained {'-'.join(map(str, summary.trained_sizes))}, "
                    f"{summary.trained_size_bits} bits before stripping")
    solved = [b for b in summary.batches if b.ok]
    improved = sum(1 for b in solved if b.objective < b.start_objective)
    rows.append(
        f"  batches: {len(solved)}/{len(summary.batches)} solved, {improved} improved their start's objective, "
        f"{sum(b.accepted for b in solved)} accepted on validation"
    )
    if summary.batches_at_target_from_start:
        rows.append(f"  {summary.batches_at_target_from_start} batch(es) started at the target error already "
                    "(--target-error), so no MIP was built for them")
    if solved:
        rows.append(
            f"  batch time (sum over batches): build {sum(b.build_seconds for b in solved):.1f} s, solver set-up {sum(b.setup_seconds for b in solved):.1f} s, solve {sum(b.solve_seconds for b in solved):.1f} s"
        )
    rows.append(
        "  wall time: data {:.1f} s, start network {:.1f} s, batch MIPs {:.1f} s, merge {:.1f} s, total {:.1f} s".format(
            t.get("data", 0), t.get("start_network", 0), t.get("solve", 0), t.get("merge", 0), t.get("total", 0)
        )
    )
    if summary.compression is not None:
        rows.append("  " + format_compression(summary.compression))
    if summary.architectures:
        from pipeline.reporting import architecture_table

        rows.append(architecture_table(summary.architectures))
    if summary.constraints is not None:
        from pipeline.networks.inference import constraint_lines

        rows += ["  " + line for line in constraint_lines(summary.constraints)]
    rows.append(f"  written to {summary.model_path}")
    return "\n".join(rows)


def _json_default(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- evaluate, predict, info ---------------------------------------------------------------


def run_evaluate(args: argparse.Namespace) -> int:
    from pipeline import stored
    from pipeline.networks import inference

    model = inference.load_model(args.model)
    report = stored.evaluate(model, dataset=args.dataset, data=args.data, label=args.label)
    if args.json:
        print(json.dumps(report))
    else:
        for name, entry in report["splits"].items():
            print(f"{name:>10}: accuracy {entry['accuracy']:.4f} on {entry['rows']} rows")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from pipeline.networks import inference
    from pipeline.networks.storage import check_output_file

    if args.out is not None:
        check_output_file(args.out, "predictions.csv")
    stored = inference.load_model(args.model)
    labels = inference.predict_file(stored, args.data)
    inference.write_predictions(labels, args.out)
    return 0


def run_improve(args: argparse.Namespace) -> int:
    from pipeline.networks import inference
    from pipeline.networks.storage import check_output_file
    from pipeline.stored import improve_stored

    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds: must be a finite number > 0 (got {args.seconds})")
    options = option_values(args, "threads", "improve_step_limit", "improve_validation")
    source = Path(args.model)
    out = Path(args.out or source.with_name(source.stem + ".improved" + source.suffix))
    check_not_the_model(out, args.model)
    check_output_file(out, "model.improved.parquet")
    model = inference.load_model(args.model)
    with signals_end_run(interrupted_line("improve", out)):
        report = improve_stored(model, args.seconds, out, dataset=args.dataset, data=args.data, label=args.label,
                                formulation=args.formulation, **options)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['formulation']} objective {report['start_objective']:g} -> {report['objective']:g} "
              f"({report['improving_steps']} improving steps of {report['steps']}, {report['seconds']:.1f} s)")
        for name, after in report["after"].items():
            print(f"{name:>10}: accuracy {report['before'][name]['accuracy']:.4f} -> {after['accuracy']:.4f}")
        print(f"written to {report['model_path']}")
    return 0


def run_compress(args: argparse.Namespace) -> int:
    from pipeline.networks import inference
    from pipeline.networks.storage import check_output_file
    from pipeline.stored import compress_stored

    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds: must be a finite number > 0 (got {args.seconds})")
    options = option_values(args, "keep", "tolerance", "threads", "improve_step_limit", compress=args.seconds)
    source = Path(args.model)
    out = Path(args.out or source.with_name(source.stem + ".compressed" + source.suffix))
    check_not_the_model(out, args.model)
    check_output_file(out, "model.compressed.parquet")
    model = inference.load_model(args.model)
    with signals_end_run(interrupted_line("compress", out)):
        report = compress_stored(model, args.seconds, out, dataset=args.dataset, data=args.data, label=args.label,
                                 **options)
    if args.json:
        print(json.dumps(report))
        return 0
    print(format_compression(report))
    for name, after in report["after_accuracy"].items():
        print(f"{name:>10}: accuracy {report['before_accuracy'][name]['accuracy']:.4f} -> {after['accuracy']:.4f}")
    print(f"written to {report['model_path']}")
    return 0


def format_compression(report: dict) -> str:
    """Neurons, non-zero parameters and bits before -> after, and the kept set's correct counts."""
    before, after = report["before"], report["after"]
    return (f"compressed: hidden neurons {before['neurons']} -> {after['neurons']}, non-zero parameters "
            f"{before['nonzeros']} -> {after['nonzeros']}, bits {before['bits']} -> {after['bits']} "
            f"(layer ranges {report['layer_bounds']}); {report['keep']} examples correct {report['start_correct']} -> "
            f"{report['correct']} (at least {report['required_correct']}), {report['seconds']:.1f} s")


def run_info(args: argparse.Namespace) -> int:
    from pipeline.networks import inference

    stored = inference.load_model(args.model)
    description = inference.describe(stored)
    if args.json:
        print(json.dumps(description))
    else:
        width = max(map(len, description))
        for key, value in description.items():
            if key == "calibration" and value is not None:
                value = (f"softmax(β · scores), β = {value['inverse_temperature']:.4g}, fitted on {value['rows']} "
                         f"{value['fitted_on']} rows (log loss {value['log_loss']:.4g})")
            if key == "compressed" and value is not None:
                value = ", ".join(f"{name} {value['before'][name]} -> {value['after'][name]}" for name in value["before"])
            if key == "constraints" and value is not None:
                from pipeline.networks.inference import constraint_lines

                print("\n".join(f"{'':>{width}}  {line}" if i else f"{key:>{width}}: {line}"
                                 for i, line in enumerate(constraint_lines(value)[1:])))
                continue
            print(f"{key:>{width}}: {value}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pipeline.networks.export_c import export_c
    from pipeline.networks.export_onnx import export_onnx
    from pipeline.networks.inference import load_model
    from pipeline.networks.storage import check_output_file, write_bytes_atomically

    if args.raw_inputs and args.format != "onnx":
        raise UsageError("--raw-inputs is for --format onnx; the C header encodes raw values with intnet_encode")
    out = Path(args.out or Path(args.model).with_suffix(EXPORT_SUFFIXES[args.format]))
    check_not_the_model(out, args.model)
    check_output_file(out, "model" + EXPORT_SUFFIXES[args.format])
    model = load_model(args.model)
    if args.format == "c":
        header = export_c(model.stored)
        write_bytes_atomically(header.text.encode("utf-8"), out)
        members = len(model.ensemble.networks)
        # the parameters exported: hidden neurons that nothing reads are not
        of_what = f"{header.parameters} parameters" + (f" of {members} member networks" if members > 1 else "")
        print(f"wrote {out}: {header.weight_bytes} bytes of weights and biases for {of_what} "
              f"({8 * header.weight_bytes / header.parameters:.2f} bits each)")
    else:
        data = export_onnx(model.stored, raw_inputs=args.raw_inputs)
        write_bytes_atomically(data, out)
        print(f"wrote {out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
