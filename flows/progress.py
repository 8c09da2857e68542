"""Progress on the terminal for `intnet train` (rich): a bar of the epoch's batches, and a line per
finished batch naming its member, status, objective and local-search steps. Shown only when
standard output is a terminal and --json is not given; Prefect's own log lines are then held back
to warnings, since the display says what they said."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.reporting import ArchitectureTrial, EpochRecord
from pipeline.solving.batches import BatchResult


class TerminalProgress:
    """A :class:`pipeline.training.RunObserver` drawing on the terminal (stderr, so that stdout
    keeps only what the command prints)."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[latest]}"), console=self.console, transient=False,
        )
        self.task = None

    def __enter__(self) -> TerminalProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def epoch_started(self, epoch: int, n_epochs: int, n_batches: int, where: str) -> None:
        self.task = self.progress.add_task(f"epoch {epoch} of 0-{n_epochs - 1}", total=n_batches, latest=where)

    def batch_finished(self, result: BatchResult, done: int, total: int) -> None:
        if result.ok:
            latest = (f"batch #{result.batch_id} (member {result.member}): {result.status}, objective "
                      f"{result.start_objective:g} -> {result.objective:g}, {result.improving_steps} local-search steps, "
                      f"{'accepted' if result.accepted else 'kept its start'}")
        else:
            latest = f"batch #{result.batch_id} (member {result.member}) failed: {(result.error or '').splitlines()[0]}"
        self.progress.update(self.task, completed=done, latest=latest)
        self.progress.console.print(f"  {latest}", highlight=False)

    def epoch_finished(self, record: EpochRecord) -> None:
        self.progress.update(self.task, latest=f"merged: train {100 * record.merged.train:.1f} %, "
                                               f"validation {100 * record.merged.validation:.1f} %")
        self.progress.stop_task(self.task)  # its clock stops at the epoch's end

    def architecture_tried(self, trial: ArchitectureTrial) -> None:
        self.progress.console.print(
            f"architecture {trial.name}: validation {100 * trial.validation:.2f} %, {trial.nonzero_parameters} "
            f"non-zero parameters, {trial.seconds:.1f} s", highlight=False)
