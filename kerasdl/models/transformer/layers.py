"""The small custom layers the Transformer builders need beyond ``keras.layers``.

Each is registered serialisable under the ``kerasdl`` package and computes with
``keras.ops`` only, so the models run on every Keras backend (learned absolute
positions are :class:`kerasdl.layers.LearnedPositionEmbedding`):

* :class:`TiedEmbedding`: a token embedding that can also project back onto the
  vocabulary with its own (transposed) matrix, for output layers tied to the input
  embedding (Press & Wolf 2017).
* :class:`OutputBias`: a bias vector alone (BERT's masked-LM decoder keeps one).
* :class:`ClassToken`: a learned vector put in front of the sequence (BERT's [CLS] role
  in ViT).
* :class:`FirstToken`: the first position's vector (the [CLS] / class-token output).
* :class:`ConstantIds`: ids of one value shaped like the input ids (BERT's segment 0
  when a model takes no segment input).
* :class:`AttentionMask`: the boolean ``[batch, queries, keys]`` mask hiding padding
  keys (id 0) and, optionally, future keys.
* :class:`RMSNorm`: T5's layer norm (scale only, no mean subtraction, no bias).
* :class:`T5Attention`: T5's attention (no biases, no score scaling), Raffel et al.
  2020, taking the bias of :class:`kerasdl.layers.RelativePositionBias`.

The fixed sinusoidal encoding and T5's relative position bias are the readable ones of
:mod:`kerasdl.layers.positions`, shared with the attention chapter.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_positive_int


def _large_negative(dtype):
    # Added to masked scores: large enough to zero a softmax weight, small enough not to
    # overflow float16 (whose largest finite value is 65,504).
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9


@keras.saving.register_keras_serializable(package="kerasdl")
class TiedEmbedding(keras.layers.Layer):
    """Token ids -> vectors; ``reverse=True``: vectors -> logits over the vocabulary with
    the transposed embedding matrix (one variable serves both, so input and output
    layers are tied). No bias: an output bias, when a model has one, is its own layer."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer)

    def call(self, inputs, reverse=False):
        if reverse:
            return ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
        if keras.backend.standardize_dtype(inputs.dtype) not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        return ops.cast(ops.take(self.embeddings, inputs, axis=0), self.compute_dtype)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            return keras.KerasTensor(tuple(inputs.shape[:-1]) + (self.input_dim,),
                                     dtype=self.compute_dtype)
        return keras.KerasTensor(tuple(inputs.shape) + (self.output_dim,),
                                 dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer":
                    keras.initializers.serialize(self.embeddings_initializer)}


@keras.saving.register_keras_serializable(package="kerasdl")
class OutputBias(keras.layers.Layer):
    """``x + b`` with one learned bias per feature of the last axis."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],),
                                    initializer="zeros")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kerasdl")
class ClassToken(keras.layers.Layer):
    """Puts one learned vector (initialised to zeros, as in ViT) in front of a
    ``[batch, length, dim]`` sequence: ``[batch, length + 1, dim]``."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]),
                                     initializer="zeros")

    def call(self, inputs):
        # Broadcast over the batch by adding to zeros of the right shape (no dynamic tile).
        first = ops.zeros_like(inputs[:, :1, :]) + ops.cast(self.token, inputs.dtype)
        return ops.concatenate([first, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


@keras.saving.register_keras_serializable(package="kerasdl")
class FirstToken(keras.layers.Layer):
    """``x[:, 0, :]``: the vector at the first position ([CLS], ViT's class token)."""

    def call(self, inputs):
        return inputs[:, 0, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="kerasdl")
class ConstantIds(keras.layers.Layer):
    """Integer ids all equal to ``value``, shaped like the input ids."""

    def __init__(self, value=0, **kwargs):
        super().__init__(**kwargs)
        self.value = int(value)

    def call(self, inputs):
        return ops.full_like(ops.cast(inputs, "int32"), self.value)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="int32")

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package="kerasdl")
class AttentionMask(keras.layers.Layer):
    """Boolean attention mask ``[batch, queries, keys]`` from token ids: a query may
    attend to a key unless the key is padding (``padding_id``; None: no padding mask) or,
    with ``causal=True``, lies after the query.

    Input: the ids of one sequence (self-attention) or ``[query ids, key ids]``
    (cross-attention). Padding *queries* are not masked: their outputs are never read.
    """

    def __init__(self, causal=False, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        self.causal = bool(causal)
        self.padding_id = None if padding_id is None else int(padding_id)

    def call(self, inputs):
        query, key = inputs if isinstance(inputs, (list, tuple)) else (inputs, inputs)
        query, key = ops.cast(query, "int32"), ops.cast(key, "int32")
        mask = ops.ones_like(query, dtype="bool")[:, :, None]  # [batch, T, 1]
        if self.padding_id is not None:
            mask = ops.logical_and(mask, ops.not_equal(key, self.padding_id)[:, None, :])
        else:
            mask = ops.logical_and(mask, ops.ones_like(key, dtype="bool")[:, None, :])
        if self.causal:
            t = ops.arange(ops.shape(query)[1])[:, None]
            s = ops.arange(ops.shape(key)[1])[None, :]
            mask = ops.logical_and(mask, (s <= t)[None])
        return mask

    def compute_output_spec(self, inputs):
        query, key = inputs if isinstance(inputs, (list, tuple)) else (inputs, inputs)
        return keras.KerasTensor((query.shape[0], query.shape[1], key.shape[1]), dtype="bool")

    def get_config(self):
        return {**super().get_config(), "causal": self.causal, "padding_id": self.padding_id}


@keras.saving.register_keras_serializable(package="kerasdl")
class RMSNorm(keras.layers.Layer):
    """T5's layer normalisation: ``x / sqrt(mean(x^2) + epsilon) * scale`` over the last
    axis, without subtracting the mean and without a bias (Raffel et al. 2020, Sec. 3.1.1;
    Zhang & Sennrich 2019). The statistics are taken in float32."""

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],),
                                     initializer="ones")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        x = x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        return ops.cast(x, self.compute_dtype) * ops.cast(self.scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kerasdl")
class T5Attention(keras.layers.Layer):
    """T5's multi-head attention: query, key, value and output projections without
    biases, logits ``q . k`` *not* divided by ``sqrt(key_dim)`` (T5 folds that factor
    into the query's initialisation), plus an optional relative position bias.

    Inputs ``[queries, context, mask]`` or ``[queries, context, mask, position_bias]``:
    ``mask`` is boolean ``[batch, T, S]`` (True: may attend), ``position_bias``
    ``[1, heads, T, S]``. Initialisation as T5 (Mesh TensorFlow): normal with standard
    deviation ``(d_model * key_dim)^-0.5`` for the query, ``d_model^-0.5`` for key and
    value, ``(heads * key_dim)^-0.5`` for the output.
    """

    def __init__(self, num_heads, key_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.key_dim = check_positive_int(key_dim, "key_dim")
        self.dropout = float(dropout)
        self.dropout_layer = keras.layers.Dropout(self.dropout)

    def build(self, input_shape):
        query_shape, context_shape = input_shape[0], input_shape[1]
        d_model, h, k = query_shape[-1], self.num_heads, self.key_dim

        def projection(name, std, equation, output_shape, from_shape):
            layer = keras.layers.EinsumDense(
                equation, output_shape=output_shape, name=name,  # no bias_axes: no bias
                kernel_initializer=keras.initializers.RandomNormal(stddev=std))
            layer.build(from_shape)
            return layer

        self.query = projection("query", (d_model * k) ** -0.5, "btd,dhk->bthk",
                                (None, h, k), query_shape)
        self.key = projection("key", context_shape[-1] ** -0.5, "bsd,dhk->bshk",
                              (None, h, k), context_shape)
        self.value = projection("value", context_shape[-1] ** -0.5, "bsd,dhk->bshk",
                                (None, h, k), context_shape)
        self.output_projection = projection("output", (h * k) ** -0.5, "bthk,hkd->btd",
                                            (None, d_model), tuple(query_shape[:2]) + (h, k))

    def call(self, inputs, training=None):
        query, context, mask = inputs[0], inputs[1], inputs[2]
        q, k, v = self.query(query), self.key(context), self.value(context)
        scores = ops.einsum("bthk,bshk->bhts", q, k)
        scores = ops.cast(scores, "float32")
        if len(inputs) > 3:
            scores = scores + ops.cast(inputs[3], "float32")
        mask = ops.cast(mask, "bool")[:, None, :, :]
        scores = ops.where(mask, scores, _large_negative("float32"))
        weights = ops.cast(ops.softmax(scores, axis=-1), q.dtype)
        weights = self.dropout_layer(weights, training=training)
        return self.output_projection(ops.einsum("bhts,bshk->bthk", weights, v))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "key_dim": self.key_dim, "dropout": self.dropout}
