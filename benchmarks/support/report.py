"""How every benchmark states its machine and writes its results (JSON + Markdown, PNG plots)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

from pipeline import reporting


def machine_line() -> str:
    """The facts a reader needs to compare a run with another machine's."""
    return (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
            f"versions {json.dumps(reporting.package_versions())}.")


def write_results(out: Path, name: str, payload: Any, markdown: str) -> None:
    """Write ``name.json`` and ``name.md``; called after every measured unit, so a long run that is
    stopped keeps what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (out / f"{name}.md").write_text(markdown)


def mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` (population std, as the paper's np.std) or the single value."""
    if not values:
        return "–"
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.pstdev(values) * scale:.{digits}f}"


def pyplot():
    """matplotlib's pyplot on the file-only backend (benchmarks run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> None:
    """Lay out, write as PNG and free a figure."""
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
