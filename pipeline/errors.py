"""Errors a user can act on. Each message names what is wrong and how to fix it."""


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
