"""Learning-rate schedules (serializable, so optimizers inside ``.keras`` files reload).

Keras optimizers call a schedule with their iteration counter, which starts at 0: step
``s`` below is the 0-based index of the optimizer step about to be taken.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.callbacks._checks import check_open_fraction, check_positive
from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["WarmupCosine", "StepDecay", "OneCycle", "Noam"]


@keras.saving.register_keras_serializable(package="kerasdl")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``initial_scale * peak`` to ``peak`` over ``warmup_steps``,
    then half-cosine decay to ``final_scale * peak`` at ``total_steps`` (the shape of
    Smith's one-cycle policy and of Loshchilov & Hutter's SGDR without restarts)."""

    def __init__(self, peak, total_steps, warmup_steps=0, initial_scale=0.1, final_scale=0.0):
        if isinstance(peak, bool) or not isinstance(peak, (int, float)) or peak <= 0:
            raise KerasdlError(f"peak must be a positive number, got {peak!r}",
                               argument="peak")
        check_positive_int(total_steps, "total_steps")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or not 0 <= warmup_steps < total_steps:
            raise KerasdlError(
                f"need total_steps >= 1 and 0 <= warmup_steps < total_steps, got "
                f"total_steps={total_steps!r}, warmup_steps={warmup_steps!r}",
                argument="warmup_steps",
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.initial_scale = float(initial_scale)
        self.final_scale = float(final_scale)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        ramp = self.peak * (
            self.initial_scale + (1.0 - self.initial_scale) * ops.minimum(step / warm, 1.0)
        )
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        low = self.final_scale * self.peak
        decay = low + (self.peak - low) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, ramp, decay)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "initial_scale": self.initial_scale,
            "final_scale": self.final_scale,
        }


@keras.saving.register_keras_serializable(package="kerasdl")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant decay: ``initial * factor ** k`` where ``k`` counts the
    ``boundaries`` (in optimizer steps) already reached, i.e. step ``s`` uses the
    decayed rate once ``s >= boundary``.

    He et al. (2015, Sec. 4.2) train the CIFAR-10 ResNets at 0.1 and divide by 10 at 32k
    and 48k iterations: ``StepDecay(0.1, [32000, 48000])``. For boundaries in epochs use
    :meth:`at_epochs`. AlexNet and VGG divided by 10 when validation error stopped
    improving instead; that needs :class:`~kerasdl.callbacks.DivideOnPlateau`.
    """

    def __init__(self, initial, boundaries, factor=0.1):
        self.initial = check_positive(initial, "initial")
        self.factor = check_positive(factor, "factor")
        try:
            boundaries = list(boundaries)
        except TypeError:
            boundaries = None
        if not boundaries or any(
            not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in boundaries
        ) or any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise KerasdlError(
                "boundaries must be a non-empty, strictly increasing list of positive "
                "integer step counts",
                argument="boundaries",
            )
        self.boundaries = boundaries

    @classmethod
    def at_epochs(cls, initial, epochs, steps_per_epoch, factor=0.1):
        """The same schedule with boundaries given in epochs (``[30, 60]`` divides at the
        start of epochs 31 and 61, counting from 1)."""
        steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
        try:
            epochs = list(epochs)
        except TypeError:
            raise KerasdlError("epochs must be a list of positive integers",
                               argument="epochs") from None
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
            raise KerasdlError("epochs must be a list of positive integers", argument="epochs")
        return cls(initial, [e * steps_per_epoch for e in epochs], factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        # A Python loop over a handful of boundaries keeps this one fused expression.
        reached = sum(ops.cast(step >= float(b), "float32") for b in self.boundaries)
        return self.initial * ops.power(self.factor, reached)

    def get_config(self):
        return {"initial": self.initial, "boundaries": list(self.boundaries),
                "factor": self.factor}


@keras.saving.register_keras_serializable(package="kerasdl")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle policy of Smith & Topin (2018, "Super-Convergence"): the rate rises
    linearly from ``max_lr / div_factor`` at step 0 to ``max_lr`` at step
    ``p = round(pct_start * (total_steps - 1))``, then follows a half cosine down to
    ``max_lr / (div_factor * final_div_factor)`` at the last step ``total_steps - 1``,
    and stays there. (The paper's annealing phase is linear; cosine annealing is the
    common later variant.)"""

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0,
                 final_div_factor=1e4):
        self.max_lr = check_positive(max_lr, "max_lr")
        self.total_steps = check_positive_int(total_steps, "total_steps")
        self.pct_start = check_open_fraction(pct_start, "pct_start")
        self.div_factor = check_positive(div_factor, "div_factor")
        self.final_div_factor = check_positive(final_div_factor, "final_div_factor")
        peak = self.peak_step
        if not 1 <= peak <= self.total_steps - 2:
            raise KerasdlError(
                f"total_steps={total_steps} and pct_start={pct_start} leave no room for "
                f"both phases (need at least one step of warm-up and one of annealing)",
                argument="total_steps",
            )

    @property
    def peak_step(self):
        return int(round(self.pct_start * (self.total_steps - 1)))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = float(self.peak_step)
        start = self.max_lr / self.div_factor
        end = start / self.final_div_factor
        warm = start + (self.max_lr - start) * ops.clip(step / peak, 0.0, 1.0)
        progress = ops.clip((step - peak) / (self.total_steps - 1 - peak), 0.0, 1.0)
        anneal = end + (self.max_lr - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < peak, warm, anneal)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor}


@keras.saving.register_keras_serializable(package="kerasdl")
class Noam(keras.optimizers.schedules.LearningRateSchedule):
    """The Transformer's warm-up then inverse-square-root decay (Vaswani et al. 2017,
    eq. 3): ``scale * d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)`` with
    ``n = s + 1``, the paper's 1-based step number (Keras counts from 0, and ``n = 0``
    would give a zero, then an infinite, rate). The paper uses ``warmup_steps=4000``
    with ``scale=1``; the peak, at ``n = warmup_steps``, is
    ``scale * (d_model * warmup_steps) ** -0.5``."""

    def __init__(self, d_model, warmup_steps=4000, scale=1.0):
        self.d_model = check_positive_int(d_model, "d_model")
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        self.scale = check_positive(scale, "scale")

    def __call__(self, step):
        n = ops.cast(step, "float32") + 1.0
        return (self.scale * self.d_model ** -0.5) * ops.minimum(
            ops.rsqrt(n), n * float(self.warmup_steps) ** -1.5)

    def get_config(self):
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps,
                "scale": self.scale}
