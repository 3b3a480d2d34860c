"""User errors, kept apart from bugs.

Everything a user can get wrong (an unknown model or dataset name, a bad argument value,
missing data, an output that already exists) raises :class:`KerasdlError` or one of its
subclasses. The CLI prints these as one ``kerasdl: error: ...`` line; any other exception
is a bug and keeps its traceback.

Messages name the Python argument (``overwrite=True``); an error raised with
``argument="overwrite"`` lets the CLI add the matching flag (``--overwrite``).
"""

from __future__ import annotations

__all__ = [
    "KerasdlError",
    "InvalidArgumentError",
    "DataNotFoundError",
    "OutputExistsError",
    "NotFoundError",
    "check_choice",
    "check_positive_int",
    "check_fraction",
]


class KerasdlError(ValueError):
    """A mistake in what the user asked for. ``argument`` names the Python argument at
    fault, when there is one, so that front ends can name their own spelling of it."""

    def __init__(self, message, *, argument=None):
        super().__init__(message)
        self.argument = argument


class InvalidArgumentError(KerasdlError, TypeError):
    """An argument a function does not take (also a ``TypeError``, as Python raises for
    unexpected keyword arguments)."""


class NotFoundError(KerasdlError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class DataNotFoundError(NotFoundError):
    """A dataset is not prepared locally and cannot be downloaded."""


class OutputExistsError(KerasdlError, FileExistsError):
    """An output would overwrite something that exists, and ``overwrite`` was not given."""

    def __init__(self, path, what=None):
        what = f" ({what})" if what else ""
        super().__init__(
            f"{path} already exists{what}; pass overwrite=True to replace it",
            argument="overwrite",
        )
        self.path = path


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value, argument, *, allow_none=False):
    """``value`` as an int >= 1, or ``KerasdlError`` naming ``argument``."""
    if value is None and allow_none:
        return None
    if not _is_int(value) or value < 1:
        raise KerasdlError(f"{argument} must be a positive integer, got {value!r}",
                           argument=argument)
    return value


def check_fraction(value, argument, *, low=0.0, high=1.0, high_inclusive=False):
    """``value`` as a float in ``[low, high)`` (or ``[low, high]``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise KerasdlError(f"{argument} must be a number in [{low}, {high}{bracket}, got {value!r}",
                           argument=argument)
    return float(value)


def check_choice(value, choices, argument):
    """``value`` if it is one of ``choices``, else ``KerasdlError`` listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise KerasdlError(f"{argument} must be one of {listed}; got {value!r}",
                           argument=argument)
    return value
