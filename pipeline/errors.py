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
