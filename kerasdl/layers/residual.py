"""Layers of residual networks (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016)."""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import check_positive_int


@keras.saving.register_keras_serializable(package="kerasdl")
class ZeroPadShortcut(keras.layers.Layer):
    """The paper's option A shortcut (Sec. 4.2): identity, subsampled by taking every
    ``stride``-th pixel, with the missing channels filled with zeros (half before, half
    after, as common CIFAR implementations do). No parameters."""

    def __init__(self, filters, stride=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.stride = check_positive_int(stride, "stride")

    def call(self, inputs):
        x = inputs[:, :: self.stride, :: self.stride, :]
        missing = self.filters - inputs.shape[-1]
        if missing > 0:
            before = missing // 2
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, missing - before]])
        return x

    def compute_output_shape(self, input_shape):
        def down(d):
            return None if d is None else -(-d // self.stride)

        return (input_shape[0], down(input_shape[1]), down(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}
