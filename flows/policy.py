"""What a run that `intnet serve` starts may be asked to read and write.

A trigger of a served deployment gives the run's whole configuration, paths included. Unchecked,
anyone who could trigger a run could have the serving account read any file it can read as
``--data`` (its values end up in the network file's preprocessing and in the run's log) and write
the network file or checkpoints anywhere it can write. So a run started by `intnet serve` checks
its configuration first, before anything reads or writes a path: every path it names must be the
one the operator gave `intnet serve` for that flag, or lie inside a folder the operator allowed
(``--allow-dir``, repeated). Paths are compared after resolving symbolic links, so a link inside an
allowed folder does not lead out of it.

The policy travels in the environment (:data:`VARIABLE`): Prefect's runner starts each flow run in
a process of its own, which inherits the serving process's environment, and no trigger can change
that. (Which solvers a run may use is the configuration's own check, the same for every run:
pipeline/config.py.)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import IntnetError

VARIABLE = "INTNET_SERVE_POLICY"
PATH_FIELDS = ("data", "test_data", "out", "checkpoints")
"""The TrainConfig fields that name files or folders the run reads or writes."""


class RefusedRun(IntnetError):
    """A served run asked for a path its policy does not allow."""


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


@dataclass(frozen=True)
class ServePolicy:
    allowed: tuple[str, ...]
    """Folders, resolved, inside which a run may name any path."""
    given: dict[str, str]
    """The operator's own path for each path flag given to `intnet serve`, resolved."""

    @classmethod
    def for_serve(cls, allow_dirs: list[str], config) -> ServePolicy:
        """The policy of `intnet serve` with ``--allow-dir`` ``allow_dirs`` and its own ``config``."""
        allowed = []
        for folder in allow_dirs:
            if not Path(folder).is_dir():
                raise IntnetError(f"--allow-dir {folder}: no such folder; give an existing folder the runs may use")
            allowed.append(str(Path(folder).resolve()))
        given = {name: str(Path(getattr(config, name)).resolve())
                 for name in PATH_FIELDS if getattr(config, name) is not None}
        return cls(tuple(allowed), given)

    def to_environment(self) -> str:
        return json.dumps({"allowed": list(self.allowed), "given": self.given})

    @classmethod
    def from_environment(cls) -> ServePolicy | None:
        text = os.environ.get(VARIABLE)
        if text is None:
            return None
        value = json.loads(text)
        return cls(tuple(value["allowed"]), value["given"])

    def check(self, config) -> None:
        """Raise :class:`RefusedRun` naming the first path of ``config`` the policy does not allow."""
        for name in PATH_FIELDS:
            value = getattr(config, name)
            if value is None:
                continue
            path = Path(value).resolve()
            if str(path) == self.given.get(name) or any(path.is_relative_to(folder) for folder in self.allowed):
                continue
            where = (f"outside the folders it may use (--allow-dir): {', '.join(self.allowed)}" if self.allowed else
                     "not the deployment's own, and intnet serve was given no --allow-dir for others")
            raise RefusedRun(f"this served run may not use {flag(name)} {value}: {path} is {where}")
