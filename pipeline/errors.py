"""Errors a user can act on. Each message names what is wrong and how to fix it."""

from typing import Any


class IntnetError(Exception):
    """Base class: the CLI prints these as one line and exits with code 2."""


class DataError(IntnetError, ValueError):
    """The dataset, a data file, in-memory data or a split request cannot be used as given (a
    ValueError too, as Python code that passes bad data expects)."""


class NetworkFileError(IntnetError):
    """A file is not a valid intnet network file."""


class DataConversionWarning(UserWarning):
    """In-memory data was converted to what it should have been (a column vector of labels
    flattened); named as scikit-learn names it."""


def brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` shortened to fit a one-line message (a bad value may be a whole JSON object)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(error: BaseException) -> str:
    """The first line of an error's message (arrow's run over several), for a one-line message."""
    return (str(error).splitlines() or [type(error).__name__])[0]
