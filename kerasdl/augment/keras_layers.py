"""In-graph augmentation from Keras 3 preprocessing layers, by short name.

:data:`KERAS_TRANSFORMS` maps each name to its layer and the defaults kerasdl uses; the
layers run on float32 raw pixels in [0, 255], so every layer that takes a
``value_range`` gets ``(0, 255)``. A pipeline works in ``tf.data`` and inside a model
(where it is active only in training). Keras class names (``"RandomFlip"``) are accepted
too.
"""

from __future__ import annotations

import inspect
from typing import Mapping

import keras

from kerasdl.augment.distortions import DIGIT_DISTORTION, SIMARD_ELASTIC, RandomDistortion
from kerasdl.errors import KerasdlError

__all__ = ["KERAS_TRANSFORMS", "keras_layer", "keras_pipeline"]

_AFFINE_ONLY = {k: v for k, v in DIGIT_DISTORTION.items() if k not in ("alpha", "sigma")}

# name -> (keras.layers class name, or a class; default parameters; geometric: whether the
# pipeline's fill_value applies to the space a transform uncovers)
KERAS_TRANSFORMS = {
    "flip": ("RandomFlip", {"mode": "horizontal"}, False),
    "rotation": ("RandomRotation", {"factor": 0.05}, True),        # +-18 degrees
    "translation": ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1}, True),
    "zoom": ("RandomZoom", {"height_factor": 0.1}, True),
    "shear": ("RandomShear", {"x_factor": 0.1, "y_factor": 0.1}, True),
    "perspective": ("RandomPerspective", {"factor": 0.5, "scale": 0.2}, True),
    "crop": ("RandomCrop", {}, False),                              # needs height, width
    "contrast": ("RandomContrast", {"factor": 0.2}, False),
    "brightness": ("RandomBrightness", {"factor": 0.2}, False),
    "color_jitter": ("RandomColorJitter", {"brightness_factor": 0.2, "contrast_factor": 0.2,
                                           "saturation_factor": (0.3, 0.7),
                                           "hue_factor": 0.05}, False),
    "hue": ("RandomHue", {"factor": 0.1}, False),
    "saturation": ("RandomSaturation", {"factor": (0.3, 0.7)}, False),
    "grayscale": ("RandomGrayscale", {"factor": 0.2}, False),
    "invert": ("RandomInvert", {"factor": 0.5}, False),
    "gaussian_blur": ("RandomGaussianBlur", {"factor": 0.5, "kernel_size": 3, "sigma": 1.0},
                      False),
    "sharpness": ("RandomSharpness", {"factor": (0.3, 0.7)}, False),
    "posterization": ("RandomPosterization", {"factor": 4}, False),
    "erasing": ("RandomErasing", {"factor": 0.5, "scale": (0.02, 0.2)}, False),
    "keras_elastic": ("RandomElasticTransform", {}, True),
    # kerasdl's own: Simard et al. (2003) elastic field, LeCun et al. (1998) affine maps.
    "elastic": (RandomDistortion, dict(SIMARD_ELASTIC), True),
    "affine": (RandomDistortion, dict(_AFFINE_ONLY), True),
    "distortion": (RandomDistortion, dict(DIGIT_DISTORTION), True),
}


def _resolve(name):
    if isinstance(name, str):
        if name in KERAS_TRANSFORMS:
            return name
        for key, (cls, _, _) in KERAS_TRANSFORMS.items():
            if name == (cls if isinstance(cls, str) else cls.__name__) and key != "distortion":
                return key
    valid = list(KERAS_TRANSFORMS) + sorted(
        {c for c, _, _ in KERAS_TRANSFORMS.values() if isinstance(c, str)})
    raise KerasdlError(f"name must be one of {', '.join(valid)}; got {name!r}",
                       argument="name")


def keras_layer(name, *, seed=None, fill_value=None, **params):
    """A Keras augmentation layer by short name, with kerasdl's defaults overridden by
    ``params``. ``fill_value`` (if given) fills what geometric transforms uncover, as a
    constant."""
    key = _resolve(name)
    cls, defaults, geometric = KERAS_TRANSFORMS[key]
    layer_cls = getattr(keras.layers, cls) if isinstance(cls, str) else cls
    accepted = set(inspect.signature(layer_cls).parameters)
    kwargs = dict(defaults)
    if "value_range" in accepted:
        kwargs["value_range"] = (0, 255)
    if geometric and fill_value is not None:
        kwargs["fill_value"] = float(fill_value)
        if "fill_mode" in accepted:
            kwargs["fill_mode"] = "constant"
    if seed is not None and "seed" in accepted:
        kwargs["seed"] = seed
    kwargs.update(params)
    if key == "crop" and not {"height", "width"} <= set(kwargs):
        raise KerasdlError("crop needs height and width, e.g. ('crop', {'height': 28, "
                           "'width': 28})", argument="params")
    unknown = sorted(set(kwargs) - accepted - {"name", "dtype"})
    if unknown and "kwargs" not in accepted:
        raise KerasdlError(f"{name} takes no parameter {', '.join(unknown)}", argument="params")
    try:
        return layer_cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise KerasdlError(f"bad parameters for {name} ({layer_cls.__name__}): {error}",
                           argument="params") from error


def keras_pipeline(transforms, *, seed=0, fill_value=None, name="augmentation"):
    """A ``keras.Sequential`` of augmentation layers from names or ``(name, params)``
    pairs (or ready layers), layer ``i`` seeded with ``seed + i`` (``seed=None``: unseeded).

    Example: ``keras_pipeline(["flip", ("rotation", {"factor": 0.03}), "contrast"])``.
    """
    if isinstance(transforms, str):
        transforms = [transforms]
    if not isinstance(transforms, (list, tuple)) or not transforms:
        raise KerasdlError(f"transforms must be a non-empty list of names or (name, params) "
                           f"pairs, got {transforms!r}", argument="transforms")
    layers = []
    for i, spec in enumerate(transforms):
        layer_seed = None if seed is None else seed + i
        if isinstance(spec, keras.layers.Layer):
            layers.append(spec)
        elif isinstance(spec, str):
            layers.append(keras_layer(spec, seed=layer_seed, fill_value=fill_value))
        elif (isinstance(spec, (tuple, list)) and len(spec) == 2
              and isinstance(spec[1], Mapping)):
            layers.append(keras_layer(spec[0], seed=layer_seed, fill_value=fill_value,
                                      **spec[1]))
        else:
            raise KerasdlError(f"each transform must be a name, a (name, params) pair or a "
                               f"Keras layer, got {spec!r}", argument="transforms")
    return keras.Sequential(layers, name=name)
