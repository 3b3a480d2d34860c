"""Input scaling inside the model, so that a ``.keras`` file, a SavedModel and a
``.tflite`` file each say what input they expect: raw pixel values in ``[0, 255]``.

``InputScaling`` computes ``y = x * scale + offset`` per channel (optionally after
reversing the channel order, as Caffe-trained networks expect BGR). It holds no weights,
so parameter counts stay those of the paper, and its ``spec()`` is the machine-readable
description that model cards carry.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlError

PIXEL_MAX = 255.0

# Named scalings. ``range``: (value of a black pixel, value of a white pixel);
# ``mean_std``: per-channel mean and standard deviation of pixels scaled to [0, 1].
SCALING_PRESETS = {
    "unit": {"range": (0.0, 1.0)},
    "symmetric": {"range": (-1.0, 1.0)},
    # LeCun et al. 1998: background -0.1 and ink 1.175, so that the input mean is roughly
    # 0 and the variance roughly 1.
    "lenet": {"range": (-0.1, 1.175)},
    # ImageNet statistics, as torchvision and keras.applications' "torch" mode use them.
    "imagenet": {"mean_std": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))},
    # Caffe-trained ResNets (keras.applications' "caffe" mode): BGR order, ImageNet mean
    # subtracted (offsets given in BGR order), no division.
    "caffe": {"scale": 1.0, "offset": (-103.939, -116.779, -123.68), "reverse_channels": True},
    # CIFAR-10 training-set statistics, as commonly used for CIFAR ResNets.
    "cifar10": {"mean_std": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))},
}


def _as_list(value, argument):
    values = np.atleast_1d(np.asarray(value, dtype="float64")).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise KerasdlError(f"{argument} must be finite numbers, got {value!r}", argument=argument)
    return [float(v) for v in values]


@keras.saving.register_keras_serializable(package="kerasdl")
class InputScaling(keras.layers.Layer):
    """``y = x[..., order] * scale + offset``, with ``scale`` and ``offset`` one number or
    one per channel; ``reverse_channels=True`` first turns RGB into BGR.

    Build it from the pixel values it should produce with :meth:`from_range`, or from
    per-channel statistics with :meth:`from_mean_std`.
    """

    def __init__(self, scale=1.0 / PIXEL_MAX, offset=0.0, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = _as_list(scale, "scale")
        self.offset = _as_list(offset, "offset")
        if 0.0 in self.scale:
            raise KerasdlError("scale must not contain 0", argument="scale")
        self.reverse_channels = bool(reverse_channels)

    @classmethod
    def from_range(cls, low, high, **kwargs):
        """Black (0) becomes ``low`` and white (255) becomes ``high``."""
        return cls(scale=(high - low) / PIXEL_MAX, offset=low, **kwargs)

    @classmethod
    def from_mean_std(cls, mean, std, **kwargs):
        """``(x / 255 - mean) / std`` per channel."""
        mean = np.asarray(mean, dtype="float64")
        std = np.asarray(std, dtype="float64")
        return cls(scale=1.0 / (PIXEL_MAX * std), offset=-mean / std, **kwargs)

    def build(self, input_shape):
        channels = input_shape[-1]
        for argument in ("scale", "offset"):
            n = len(getattr(self, argument))
            if n != 1 and channels is not None and n != channels:
                raise KerasdlError(
                    f"{argument} has {n} values but the input has {channels} channels "
                    "(give one value, or one per channel)",
                    argument=argument,
                )

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        scale = ops.convert_to_tensor(np.asarray(self.scale, "float32"), dtype=x.dtype)
        offset = ops.convert_to_tensor(np.asarray(self.offset, "float32"), dtype=x.dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def spec(self):
        """Machine-readable description of what this layer does to raw pixels."""
        return {
            "input_range": [0.0, PIXEL_MAX],
            "formula": "y = x[..., ::-1] * scale + offset" if self.reverse_channels
            else "y = x * scale + offset",
            "scale": list(self.scale),
            "offset": list(self.offset),
            "reverse_channels": self.reverse_channels,
        }

    def get_config(self):
        return {
            **super().get_config(),
            "scale": list(self.scale),
            "offset": list(self.offset),
            "reverse_channels": self.reverse_channels,
        }


def make_input_scaling(input_scaling, name="input_scaling"):
    """The :class:`InputScaling` layer for a builder's ``input_scaling`` argument.

    ``input_scaling`` is a preset name (``SCALING_PRESETS``), a dict with ``range``
    (low, high), ``mean_std`` (mean, std) or ``scale``/``offset`` (optionally
    ``reverse_channels``), or None for no layer (the model then takes its input as given).
    """
    if input_scaling is None:
        return None
    spec = input_scaling
    if isinstance(spec, str):
        if spec not in SCALING_PRESETS:
            raise KerasdlError(
                f"input_scaling must be one of {sorted(SCALING_PRESETS)}, a dict or None; "
                f"got {spec!r}",
                argument="input_scaling",
            )
        spec = SCALING_PRESETS[spec]
    if not isinstance(spec, dict):
        raise KerasdlError(
            f"input_scaling must be a preset name, a dict or None; got {input_scaling!r}",
            argument="input_scaling",
        )
    spec = dict(spec)
    reverse = bool(spec.pop("reverse_channels", False))
    if set(spec) == {"range"}:
        return InputScaling.from_range(*spec["range"], reverse_channels=reverse, name=name)
    if set(spec) == {"mean_std"}:
        return InputScaling.from_mean_std(*spec["mean_std"], reverse_channels=reverse, name=name)
    if set(spec) <= {"scale", "offset"} and spec:
        return InputScaling(**spec, reverse_channels=reverse, name=name)
    raise KerasdlError(
        "input_scaling dict must hold 'range', 'mean_std' or 'scale'/'offset' (and "
        f"optionally 'reverse_channels'); got keys {sorted(input_scaling)}",
        argument="input_scaling",
    )


def apply_input_scaling(x, input_scaling, name="input_scaling"):
    """``x`` through :func:`make_input_scaling`'s layer, or unchanged for None."""
    layer = make_input_scaling(input_scaling, name=name)
    return x if layer is None else layer(x)


def input_scaling_of(model):
    """The first :class:`InputScaling` layer of ``model`` (searching nested models), or None."""
    for layer in model.layers:
        if isinstance(layer, InputScaling):
            return layer
        if isinstance(layer, keras.Model):
            found = input_scaling_of(layer)
            if found is not None:
                return found
    return None


@keras.saving.register_keras_serializable(package="kerasdl")
class PixelCast(keras.layers.Layer):
    """Casts integer pixels (``uint8`` from a camera or an image file) to the layer's float
    dtype, so that a deployed model takes raw bytes; the scaling stays with the model."""

    def call(self, inputs):
        return keras.ops.cast(inputs, self.compute_dtype)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)


def with_uint8_input(model, name="image"):
    """``model`` behind a ``uint8`` input of the same shape (raw pixel values 0-255),
    sharing its layers and weights: the artifact a phone app feeds camera bytes to."""
    if len(model.inputs) != 1:
        raise KerasdlError(f"a uint8 input needs a single-input model; {model.name!r} has "
                           f"{len(model.inputs)} inputs", argument="raw_uint8")
    pixels = keras.Input(model.input_shape[1:], dtype="uint8", name=name)
    outputs = model(PixelCast(name="pixel_cast")(pixels))
    return keras.Model(pixels, outputs, name=f"{model.name}_uint8")
