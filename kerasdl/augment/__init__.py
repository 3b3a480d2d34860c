"""Data augmentation: presets for training recipes, albumentations by name (bridged into
``tf.data``), Keras preprocessing layers by name, Simard et al.'s (2003) elastic and
LeCun et al.'s (1998) affine distortions, test-time augmentation and a plot helper.

Images are raw pixels, float32 in [0, 255], as :mod:`kerasdl.data` yields them.

* :func:`make_augmentation`: the ``augment`` hook for a preset in :data:`PRESETS`
  (:data:`PRESET_DESCRIPTIONS`), a list of Keras-layer transforms or an albumentations
  pipeline.
* :func:`albumentation`, :func:`compose`, :data:`ALIASES`: albumentations transforms by
  current or course (1.x) name. :class:`AlbumentationsAugmentation` (batch hook) and
  :func:`augment_dataset` (elements with masks and boxes) run them in ``tf.data``.
* :func:`keras_layer`, :func:`keras_pipeline`, :data:`KERAS_TRANSFORMS`: Keras layers.
* :func:`distort`, :class:`RandomDistortion`: elastic and affine distortions.
* :func:`tta_predict`: test-time augmentation. :func:`plot_augmentations`: a figure.

Seeding is described in :mod:`kerasdl.augment.seeding`.
"""

from __future__ import annotations

from kerasdl.augment.albu import (
    ALIASES,
    BOX_FORMATS,
    COURSE_TRANSFORMS,
    albumentation,
    albumentations_names,
    compose,
)
from kerasdl.augment.bridge import AlbumentationsAugmentation, augment_dataset
from kerasdl.augment.distortions import (
    DIGIT_DISTORTION,
    DIGIT_DISTORTION_MILD,
    SIMARD_ELASTIC,
    RandomDistortion,
    distort,
)
from kerasdl.augment.keras_layers import KERAS_TRANSFORMS, keras_layer, keras_pipeline
from kerasdl.augment.plot import augmented_views, plot_augmentations
from kerasdl.augment.presets import (
    PRESET_DESCRIPTIONS,
    PRESETS,
    describe_preset,
    make_augmentation,
    strong_transforms,
)
from kerasdl.augment.seeding import InGraphAugmentation, SeededAugmentation
from kerasdl.augment.tta import REDUCTIONS, VIEWS, apply_view, tta_predict

__all__ = [
    "ALIASES",
    "BOX_FORMATS",
    "COURSE_TRANSFORMS",
    "DIGIT_DISTORTION",
    "DIGIT_DISTORTION_MILD",
    "KERAS_TRANSFORMS",
    "PRESETS",
    "PRESET_DESCRIPTIONS",
    "REDUCTIONS",
    "SIMARD_ELASTIC",
    "VIEWS",
    "AlbumentationsAugmentation",
    "InGraphAugmentation",
    "RandomDistortion",
    "SeededAugmentation",
    "albumentation",
    "albumentations_names",
    "apply_view",
    "augment_dataset",
    "augmented_views",
    "compose",
    "describe_preset",
    "distort",
    "keras_layer",
    "keras_pipeline",
    "make_augmentation",
    "plot_augmentations",
    "strong_transforms",
    "tta_predict",
]
