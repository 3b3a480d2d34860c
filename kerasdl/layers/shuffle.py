"""Channel operations of ShuffleNet: Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely
Efficient Convolutional Neural Network for Mobile Devices", CVPR 2018 (channel shuffle),
and Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018 (channel split).

Both hold no weights and use only ``keras.ops``, so they run on every backend and
convert to TFLite builtins (RESHAPE, TRANSPOSE, SPLIT). Channels-last layout.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_positive_int


def _channels(input_shape, groups, layer, argument):
    channels = input_shape[-1]
    if channels is None or channels % groups:
        raise KerasdlError(
            f"{layer} needs a known number of channels divisible by {groups}, got input "
            f"shape {tuple(input_shape)}", argument=argument)
    return channels


@keras.saving.register_keras_serializable(package="kerasdl")
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle with ``groups`` groups (ShuffleNet, Sec. 3.1): the channels,
    read as a ``groups x (C / groups)`` matrix, are transposed, so that output channel
    ``j * groups + g`` is input channel ``g * (C / groups) + j``. Each group of the next
    split or grouped convolution then sees channels from every group of this one."""

    def __init__(self, groups=2, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_positive_int(groups, "groups")

    def build(self, input_shape):
        _channels(input_shape, self.groups, type(self).__name__, "groups")

    def call(self, inputs):
        channels = inputs.shape[-1]
        # Batch and spatial axes folded into one keep the transpose 3-D, which every
        # backend and the TFLite runtime handle; the shuffle acts on each position alone.
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (-1, self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 2, 1))
        return ops.reshape(x, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="kerasdl")
class ChannelSplit(keras.layers.Layer):
    """Channel split (ShuffleNet V2, Sec. 4): the first and the second half of the
    channels, as two outputs."""

    def build(self, input_shape):
        _channels(input_shape, 2, type(self).__name__, "inputs")

    def call(self, inputs):
        return ops.split(inputs, 2, axis=-1)

    def compute_output_shape(self, input_shape):
        half = tuple(input_shape[:-1]) + (input_shape[-1] // 2,)
        return [half, half]
