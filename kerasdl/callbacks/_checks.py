"""Argument checks shared by the callbacks and schedules (all raise ``KerasdlError``)."""

from __future__ import annotations

import math

from kerasdl.errors import KerasdlError


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(value, argument):
    """``value`` as a finite float > 0."""
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise KerasdlError(f"{argument} must be a positive number, got {value!r}",
                           argument=argument)
    return float(value)


def check_non_negative(value, argument):
    """``value`` as a finite float >= 0."""
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise KerasdlError(f"{argument} must be a number >= 0, got {value!r}",
                           argument=argument)
    return float(value)


def check_open_fraction(value, argument):
    """``value`` as a float strictly between 0 and 1."""
    if not (_is_number(value) and 0 < value < 1):
        raise KerasdlError(f"{argument} must be a number in (0, 1), got {value!r}",
                           argument=argument)
    return float(value)


def innermost_optimizer(optimizer):
    """The optimizer that owns the learning rate, looking through wrappers that keep
    theirs in ``inner_optimizer`` (``keras.optimizers.LossScaleOptimizer`` and
    :class:`~kerasdl.callbacks.AdaptiveGradientClipping`)."""
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer
