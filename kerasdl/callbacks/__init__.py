"""Callbacks and learning-rate schedules shared by every family."""

from kerasdl.callbacks.schedules import WarmupCosine

__all__ = ["WarmupCosine"]
