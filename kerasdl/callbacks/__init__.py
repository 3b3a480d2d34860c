"""Callbacks and learning-rate schedules shared by every family."""

from kerasdl.callbacks.curves import TestCurve
from kerasdl.callbacks.schedules import WarmupCosine

__all__ = ["TestCurve", "WarmupCosine"]
