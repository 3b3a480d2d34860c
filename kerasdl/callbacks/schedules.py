"""Learning-rate schedules (serializable, so optimizers inside ``.keras`` files reload)."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasdl")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``initial_scale * peak`` to ``peak`` over ``warmup_steps``,
    then half-cosine decay to ``final_scale * peak`` at ``total_steps`` (the shape of
    Smith's one-cycle policy and of Loshchilov & Hutter's SGDR without restarts)."""

    def __init__(self, peak, total_steps, warmup_steps=0, initial_scale=0.1, final_scale=0.0):
        if peak <= 0:
            raise ValueError(f"peak must be positive, got {peak!r}")
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"need total_steps >= 1 and 0 <= warmup_steps < total_steps, got "
                f"total_steps={total_steps!r}, warmup_steps={warmup_steps!r}"
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
