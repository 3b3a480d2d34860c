"""Highway layers: Srivastava, Greff, Schmidhuber, "Training Very Deep Networks", NIPS
2015 (arXiv "Highway Networks", 2015): ``y = H(x) * T(x) + x * (1 - T(x))`` with a
transform gate ``T(x) = sigmoid(W_T x + b_T)``. ``b_T`` starts negative (the paper uses
-1 to -3), so a fresh network carries its input through and trains at any depth."""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import check_positive_int


class _Highway(keras.layers.Layer):
    def __init__(self, activation="relu", gate_bias=-2.0, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.gate_bias = float(gate_bias)

    def call(self, inputs):
        h = self.activation(self.transform(inputs))
        t = ops.sigmoid(self.gate(inputs))
        return h * t + inputs * (1.0 - t)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(),
                "activation": keras.activations.serialize(self.activation),
                "gate_bias": self.gate_bias}


@keras.saving.register_keras_serializable(package="kerasdl")
class HighwayDense(_Highway):
    """A fully connected highway layer (as many units as inputs)."""

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.transform = keras.layers.Dense(units, name="transform")
        self.gate = keras.layers.Dense(
            units, bias_initializer=keras.initializers.Constant(self.gate_bias), name="gate")
        self.transform.build(input_shape)
        self.gate.build(input_shape)


@keras.saving.register_keras_serializable(package="kerasdl")
class HighwayConv2D(_Highway):
    """A convolutional highway layer: ``kernel_size`` convolutions with 'same' padding
    for H and T, as many filters as input channels."""

    def __init__(self, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")

    def build(self, input_shape):
        filters = int(input_shape[-1])
        self.transform = keras.layers.Conv2D(filters, self.kernel_size, padding="same",
                                             kernel_initializer="he_normal", name="transform")
        self.gate = keras.layers.Conv2D(
            filters, self.kernel_size, padding="same",
            bias_initializer=keras.initializers.Constant(self.gate_bias), name="gate")
        self.transform.build(input_shape)
        self.gate.build(input_shape)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
