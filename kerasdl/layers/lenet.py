"""Layers of the original LeNet-5 (LeCun, Bottou, Bengio, Haffner, "Gradient-Based
Learning Applied to Document Recognition", Proc. IEEE 86(11), 1998)."""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from kerasdl.errors import KerasdlError


@keras.saving.register_keras_serializable(package="kerasdl")
class ScaledTanh(keras.layers.Layer):
    """``amplitude * tanh(slope * x)``; the paper's squashing function (Appendix A) uses
    amplitude 1.7159 and slope 2/3, so that f(1) = 1 and f(-1) = -1."""

    def __init__(self, amplitude=1.7159, slope=2.0 / 3.0, **kwargs):
        super().__init__(**kwargs)
        self.amplitude = float(amplitude)
        self.slope = float(slope)

    def call(self, inputs):
        return self.amplitude * ops.tanh(self.slope * inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "amplitude": self.amplitude, "slope": self.slope}


@keras.saving.register_keras_serializable(package="kerasdl")
class TrainableSubsampling(keras.layers.Layer):
    """LeNet-5's S2/S4 layers: each unit adds the ``pool_size x pool_size`` inputs of its
    non-overlapping window, multiplies the sum by a trainable per-map coefficient and adds
    a trainable per-map bias (two parameters per feature map).

    The coefficient starts at ``1 / pool_area``, so the layer starts as average pooling.
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        if int(pool_size) < 1:
            raise KerasdlError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.pool_size = int(pool_size)

    def build(self, input_shape):
        channels = input_shape[-1]
        area = float(self.pool_size**2)
        self.coefficient = self.add_weight(
            name="coefficient",
            shape=(channels,),
            initializer=keras.initializers.Constant(1.0 / area),
        )
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        window_sum = ops.average_pool(
            inputs, pool_size=self.pool_size, strides=self.pool_size, padding="valid"
        ) * float(self.pool_size**2)
        return window_sum * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        def down(d):
            return None if d is None else d // self.pool_size

        return (input_shape[0], down(input_shape[1]), down(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


# Table I of the paper: which S2 maps (0-5) feed each of the 16 C3 maps. The first six
# take 3 contiguous maps, the next six 4 contiguous, three take 4 non-contiguous, the
# last takes all six: 60 connections, 60 * 25 + 16 = 1,516 parameters.
LENET5_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


@keras.saving.register_keras_serializable(package="kerasdl")
class ConnectionTableConv2D(keras.layers.Layer):
    """A 'valid' convolution in which output map ``j`` sees only the input maps listed in
    ``table[j]`` (LeNet-5's C3). Only the connected kernels are weights, so
    ``count_params()`` is the paper's count; the full kernel is assembled in ``call`` by a
    constant one-hot scatter, which keeps the layer backend-neutral and exportable.

    Each output map is initialised uniformly with limit ``sqrt(3 / fan_in)``, where
    ``fan_in`` is that map's own number of inputs (LeCun uniform per map).
    """

    def __init__(self, filters, kernel_size, table, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.table = tuple(tuple(int(i) for i in row) for row in table)
        if len(self.table) != self.filters:
            raise KerasdlError(
                f"table must have one row per filter ({self.filters}), got {len(self.table)}"
            )
        if any(len(row) == 0 for row in self.table):
            raise KerasdlError("every row of table must list at least one input map")

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if max(max(row) for row in self.table) >= in_channels or min(min(r) for r in self.table) < 0:
            raise KerasdlError(
                f"table refers to input maps outside 0..{in_channels - 1} "
                f"(the layer's input has {in_channels} channels)"
            )
        pairs = [(i, j) for j, row in enumerate(self.table) for i in row]
        selector = np.zeros((len(pairs), in_channels, self.filters), dtype="float32")
        fan_in = np.zeros((len(pairs),), dtype="float32")
        for c, (i, j) in enumerate(pairs):
            selector[c, i, j] = 1.0
            fan_in[c] = len(self.table[j]) * self.kernel_size**2
        self._selector = selector
        limits = np.sqrt(3.0 / fan_in)

        def init(shape, dtype=None):
            return keras.random.uniform(shape, -1.0, 1.0, dtype=dtype) * limits

        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k, k, len(pairs)), initializer=init)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        selector = ops.convert_to_tensor(self._selector, dtype=self.kernel.dtype)
        full_kernel = ops.einsum("hwc,cio->hwio", self.kernel, selector)
        return ops.conv(inputs, full_kernel, strides=1, padding="valid") + self.bias

    def compute_output_shape(self, input_shape):
        def shrink(d):
            return None if d is None else d - self.kernel_size + 1

        return (input_shape[0], shrink(input_shape[1]), shrink(input_shape[2]), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "table": [list(row) for row in self.table],
        }
