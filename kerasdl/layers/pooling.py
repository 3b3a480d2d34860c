"""Pooling over time that respects a padding mask.

``keras.layers.GlobalMaxPooling1D`` ignores masks (Keras 3 drops them with a warning), so
over padded sentences the maximum also ranges over the padding positions, whose
recurrent outputs Keras sets to zero: every feature is then at least 0 for any sentence
shorter than the window. :class:`MaskedGlobalMaxPooling1D` takes the maximum over the
real positions only.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasdl")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """``[batch, time, features] -> [batch, features]``: the maximum over the real time
    steps. Called on ``[values, token_ids]``, a step is real where its token id is not
    ``pad_id``; called on ``values`` alone, every step is. A sequence without any real
    step gives zeros. The token ids are passed explicitly (not as a Keras mask) so that
    the layer means the same in a ``.keras`` file, a TFLite file and on every backend.
    Used by the BiLSTM-max sentence encoder (Conneau et al., EMNLP 2017)."""

    def __init__(self, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            return ops.max(inputs, axis=1)
        values, ids = inputs
        keep = ops.expand_dims(ops.not_equal(ops.cast(ids, "int32"), self.pad_id), -1)
        lowest = ops.full_like(values, -3.0e38 if values.dtype == "float32" else -6.0e4)
        pooled = ops.max(ops.where(keep, values, lowest), axis=1)
        return ops.where(ops.any(keep, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        return (shape[0], shape[2])

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}
