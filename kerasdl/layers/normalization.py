"""Local response normalisation (Krizhevsky, Sutskever, Hinton, "ImageNet Classification
with Deep Convolutional Neural Networks", NIPS 2012, Sec. 3.3)."""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import KerasdlError


@keras.saving.register_keras_serializable(package="kerasdl")
class LocalResponseNormalization(keras.layers.Layer):
    """``b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta`` over ``n``
    adjacent channels, with the paper's k=2, n=5, alpha=1e-4, beta=0.75 (alpha multiplies
    the sum, as in the paper; Caffe's LRN divides it by n first). No parameters."""

    def __init__(self, depth=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth, int) or depth < 1 or depth % 2 == 0:
            raise KerasdlError(f"depth must be a positive odd integer, got {depth!r}",
                               argument="depth")
        self.depth, self.bias, self.alpha, self.beta = depth, float(bias), float(alpha), float(beta)

    def call(self, inputs):
        squared = ops.square(inputs)
        half = self.depth // 2
        padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[half, half]])
        channels = inputs.shape[-1]
        window = sum(padded[..., i : i + channels] for i in range(self.depth))
        return inputs / ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}
