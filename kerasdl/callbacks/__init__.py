"""Callbacks, learning-rate schedules and gradient clipping shared by every family.

Schedules (serializable, for ``keras.optimizers.*(learning_rate=...)``):
:class:`WarmupCosine`, :class:`StepDecay`, :class:`OneCycle`, :class:`Noam`.
Learning-rate callbacks: :class:`LearningRateLogger`, :class:`DivideOnPlateau`.
Gradient clipping: :func:`gradient_clipping` (Keras' own), :class:`AdaptiveGradientClipping`
and :func:`with_adaptive_gradient_clipping` (AGC, Brock et al. 2021).
Monitors: :class:`Throughput`, :func:`early_stopping`, :class:`TestCurve`,
:class:`SampleScoreLogger` (Fréchet distance and confidence of generated samples).
Writers: :class:`ImageSampleWriter`, :class:`ConfusionMatrixWriter`.
"""

from kerasdl.callbacks.clipping import (
    AdaptiveGradientClipping,
    adaptive_clip,
    gradient_clipping,
    unitwise_norm,
    with_adaptive_gradient_clipping,
)
from kerasdl.callbacks.curves import TestCurve
from kerasdl.callbacks.learning_rate import (
    DivideOnPlateau,
    LearningRateLogger,
    current_learning_rate,
)
from kerasdl.callbacks.monitors import SampleScoreLogger, Throughput, early_stopping
from kerasdl.callbacks.schedules import Noam, OneCycle, StepDecay, WarmupCosine
from kerasdl.callbacks.writers import (
    ConfusionMatrixWriter,
    ImageSampleWriter,
    confusion_matrix,
    image_grid,
)

__all__ = [
    "AdaptiveGradientClipping",
    "ConfusionMatrixWriter",
    "DivideOnPlateau",
    "ImageSampleWriter",
    "LearningRateLogger",
    "Noam",
    "OneCycle",
    "SampleScoreLogger",
    "StepDecay",
    "TestCurve",
    "Throughput",
    "WarmupCosine",
    "adaptive_clip",
    "confusion_matrix",
    "current_learning_rate",
    "early_stopping",
    "gradient_clipping",
    "image_grid",
    "unitwise_norm",
    "with_adaptive_gradient_clipping",
]
