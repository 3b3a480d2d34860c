"""Argument checks shared by the embedding modules."""

from __future__ import annotations

import numbers

import numpy as np

from kerasdl.errors import KerasdlError


def check_positive_number(value, argument):
    """``value`` as a float > 0."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise KerasdlError(f"{argument} must be a positive number, got {value!r}",
                           argument=argument)
    return float(value)


def check_nonnegative_number(value, argument):
    """``value`` as a finite float >= 0."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or not 0 <= value < float("inf"):
        raise KerasdlError(f"{argument} must be a number >= 0, got {value!r}",
                           argument=argument)
    return float(value)


def check_nonnegative_int(value, argument):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise KerasdlError(f"{argument} must be an integer >= 0, got {value!r}",
                           argument=argument)
    return int(value)


def check_seed(seed, argument="seed"):
    if seed is None:
        return None
    return check_nonnegative_int(seed, argument)


def check_id_sequences(sequences, argument, *, vocab_size=None):
    """``sequences`` (an iterable of 1-D sequences of non-negative int ids) as a list of
    int64 arrays; ids must be below ``vocab_size`` when it is given."""
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__iter__"):
        raise KerasdlError(f"{argument} must be a list of sequences of word ids, got "
                           f"{type(sequences).__name__}", argument=argument)
    arrays = []
    for n, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)):
            raise KerasdlError(f"{argument}[{n}] is a string; encode the tokens to ids "
                               "first (Vocabulary.encode)", argument=argument)
        arr = np.asarray(seq)
        if arr.size == 0:
            arrays.append(np.zeros(0, dtype=np.int64))
            continue
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise KerasdlError(f"{argument}[{n}] must be a 1-D sequence of integer ids, got "
                               f"shape {arr.shape} and dtype {arr.dtype}", argument=argument)
        if arr.min() < 0 or (vocab_size is not None and arr.max() >= vocab_size):
            bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
            valid = ">= 0" if vocab_size is None else f"in [0, {vocab_size})"
            raise KerasdlError(f"{argument}[{n}] holds the id {bad}; ids must be {valid}",
                               argument=argument)
        arrays.append(arr.astype(np.int64))
    return arrays


def check_counts(counts, argument="counts"):
    """``counts`` (word frequencies, or a Vocabulary) as a 1-D float64 array of numbers
    >= 0 with a positive total."""
    counts = getattr(counts, "counts", counts)
    try:
        arr = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise KerasdlError(f"{argument} must be a 1-D array of word counts (or a Vocabulary)",
                           argument=argument) from None
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or (arr < 0).any() \
            or arr.sum() <= 0:
        raise KerasdlError(f"{argument} must be a non-empty 1-D array of finite counts >= 0 "
                           f"with a positive total, got shape {arr.shape}", argument=argument)
    return arr


def check_matrix(matrix, argument, *, square=False, nonnegative=False):
    try:
        arr = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise KerasdlError(f"{argument} must be a 2-D numeric array", argument=argument) from None
    if arr.ndim != 2 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise KerasdlError(f"{argument} must be a non-empty 2-D array of finite numbers, got "
                           f"shape {arr.shape}", argument=argument)
    if square and arr.shape[0] != arr.shape[1]:
        raise KerasdlError(f"{argument} must be square, got shape {arr.shape}", argument=argument)
    if nonnegative and (arr < 0).any():
        raise KerasdlError(f"{argument} must hold counts >= 0", argument=argument)
    return arr
