"""Callbacks that log the learning rate or lower it when progress stalls."""

from __future__ import annotations

import keras

from kerasdl.callbacks._checks import check_non_negative, check_open_fraction, innermost_optimizer
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = ["LearningRateLogger", "DivideOnPlateau", "current_learning_rate"]


def _uses_schedule(optimizer):
    """True when the learning rate is computed (a schedule or a callable) rather than
    held in a variable that callbacks can assign."""
    rate = getattr(innermost_optimizer(optimizer), "_learning_rate", None)
    return isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(rate) and not isinstance(rate, keras.Variable))


def current_learning_rate(optimizer):
    """The learning rate (float) of ``optimizer``'s most recent step.

    With a schedule this is the schedule at the last step taken (at step 0 before any
    step); with a plain rate it is the rate now held, which callbacks may have changed
    since that step."""
    inner = innermost_optimizer(optimizer)
    rate = getattr(inner, "_learning_rate", None)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        # The optimizer evaluates its schedule at the raw step counter before adding 1
        # (even under gradient accumulation), so the step just taken is counter - 1.
        done = int(keras.ops.convert_to_numpy(inner._iterations))
        value = rate(max(done - 1, 0))
    else:
        value = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(value))


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` to each epoch's logs: the rate of the epoch's last step
    (see :func:`current_learning_rate`), whether the optimizer holds a float, a variable
    or a schedule. Place it before ``keras.callbacks.CSVLogger`` so the CSV records it,
    and before callbacks that change the rate at the end of an epoch (such as
    :class:`DivideOnPlateau`) so the row shows the rate the epoch trained with."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


class DivideOnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Divide the learning rate by 10 (``factor=0.1``) when ``monitor`` has not improved
    for ``patience`` epochs: "divide the learning rate by 10 when the validation error
    rate stopped improving" (Krizhevsky et al. 2012, Sec. 5; likewise Simonyan &
    Zisserman 2015, Sec. 3.1, and He et al. 2015 on ImageNet, Sec. 3.4).

    A thin subclass of ``keras.callbacks.ReduceLROnPlateau`` that checks its arguments
    and fails at the start of training, not at the first plateau, when the optimizer's
    learning rate is a schedule (a schedule cannot be assigned a new value; build the
    optimizer with a float rate instead). Like its Keras parent, it writes
    ``learning_rate`` (the rate the epoch trained with, read before any division) into
    the epoch's logs.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=5, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, verbose=0):
        check_open_fraction(factor, "factor")
        check_positive_int(patience, "patience")
        check_choice(mode, ("auto", "min", "max"), "mode")
        check_non_negative(min_delta, "min_delta")
        check_non_negative(min_lr, "min_lr")
        if not isinstance(cooldown, int) or isinstance(cooldown, bool) or cooldown < 0:
            raise KerasdlError(f"cooldown must be an integer >= 0, got {cooldown!r}",
                               argument="cooldown")
        if not isinstance(monitor, str) or not monitor:
            raise KerasdlError(f"monitor must be a metric name, got {monitor!r}",
                               argument="monitor")
        super().__init__(monitor=monitor, factor=factor, patience=patience, mode=mode,
                         min_delta=min_delta, cooldown=cooldown, min_lr=min_lr,
                         verbose=verbose)

    def on_train_begin(self, logs=None):
        if _uses_schedule(self.model.optimizer):
            raise KerasdlError(
                "DivideOnPlateau needs an optimizer whose learning_rate is a number; this "
                "one uses a schedule, which cannot be divided. Build the optimizer with a "
                "float learning_rate, or drop DivideOnPlateau and keep the schedule",
                argument="learning_rate",
            )
        super().on_train_begin(logs)
