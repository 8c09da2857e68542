"""Errors a user can act on. Each message names what is wrong and how to fix it."""

from typing import Any


class IntnetError(Exception):
    """Base class: the CLI prints these as one line and exits with code 2."""


class DataError(IntnetError):
    """The dataset, a data file or a split request cannot be used as given."""


class NetworkFileError(IntnetError):
    """A file is not a valid intnet network file."""


def brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` shortened to fit a one-line message (a bad value may be a whole JSON object)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(error: BaseException) -> str:
    """The first line of an error's message (arrow's run over several), for a one-line message."""
    return (str(error).splitlines() or [type(error).__name__])[0]
