"""Ways to tell attention where each token is, which it cannot see by itself.

- :func:`sinusoidal_encoding`, :class:`SinusoidalPositionEncoding`: Vaswani et al.,
  "Attention Is All You Need", NeurIPS 2017, section 3.5 (fixed, added to embeddings).
- :class:`LearnedPositionEmbedding`: a trained table of absolute positions, as in BERT
  (Devlin et al. 2019) and GPT-2 (Radford et al. 2019).
- :func:`relative_position_bucket`, :class:`RelativePositionBias`: Raffel et al.,
  "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer"
  (T5), JMLR 2020, section 2.1: a learned bias per head on the attention scores, by
  bucketed key-minus-query distance.
- :func:`apply_rotary`: Su et al., "RoFormer: Enhanced Transformer with Rotary Position
  Embedding", 2021: queries and keys rotated by their position, so that their dot
  product depends on the positions only through their difference.

All use ``keras.ops`` only and run on every backend.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_positive_int

__all__ = [
    "LearnedPositionEmbedding",
    "RelativePositionBias",
    "SinusoidalPositionEncoding",
    "apply_rotary",
    "relative_position_bucket",
    "sinusoidal_encoding",
]


# ---------------------------------------------------------------------------- sinusoidal


def sinusoidal_encoding(length, depth, dtype="float32"):
    """[length, depth] table of Vaswani et al. 2017, section 3.5::

        PE(pos, 2i)     = sin(pos / 10000^(2i / depth))
        PE(pos, 2i + 1) = cos(pos / 10000^(2i / depth))

    Sines and cosines interleave, as in the paper: dimensions 2i and 2i + 1 share a
    frequency. Many implementations (the TensorFlow tutorial, tensor2tensor) concatenate
    all the sines and then all the cosines instead, which is a permutation of the
    dimensions: equivalent for a model trained with it, but not the same numbers.
    ``length`` may be a tensor (a sequence length known only when running).
    """
    depth = check_positive_int(depth, "depth")
    positions = ops.expand_dims(ops.arange(length, dtype="float32"), 1)   # [T, 1]
    dims = ops.arange(depth, dtype="int32")
    two_i = ops.cast(dims - dims % 2, "float32")                          # 2i, for 2i and 2i+1
    angles = positions / ops.power(ops.convert_to_tensor(10000.0), two_i / depth)
    table = ops.where(ops.equal(dims % 2, 0), ops.sin(angles), ops.cos(angles))
    return ops.cast(table, dtype)


def _feature_depth(layer, shape):
    if len(shape) < 2 or shape[-1] is None:
        raise KerasdlError(f"{layer} needs inputs [batch, time, features] with a known "
                           f"number of features, got shape {tuple(shape)}", argument="inputs")
    return int(shape[-1])


@keras.saving.register_keras_serializable(package="kerasdl")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Adds :func:`sinusoidal_encoding` to embeddings [batch, time, depth]; no weights.

    ``scale_embeddings=True`` first multiplies the embeddings by ``sqrt(depth)``, as the
    paper does (section 3.4), so that embeddings initialised small are not swamped by
    the encoding, whose entries are of size 1. Keras masks pass through.
    """

    def __init__(self, scale_embeddings=False, **kwargs):
        super().__init__(**kwargs)
        self.scale_embeddings = bool(scale_embeddings)
        self.supports_masking = True

    def build(self, input_shape):
        _feature_depth(type(self).__name__, input_shape)

    def call(self, inputs):
        depth = _feature_depth(type(self).__name__, inputs.shape)
        if self.scale_embeddings:
            inputs = inputs * ops.cast(math.sqrt(depth), inputs.dtype)
        table = sinusoidal_encoding(ops.shape(inputs)[1], depth, dtype=inputs.dtype)
        return inputs + ops.expand_dims(table, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale_embeddings": self.scale_embeddings}


# ---------------------------------------------------------------------------- learned


@keras.saving.register_keras_serializable(package="kerasdl")
class LearnedPositionEmbedding(keras.layers.Layer):
    """Adds a learned [max_length, depth] table, row ``t`` to the embedding of token
    ``t`` (BERT, GPT-2). Sequences may be shorter than ``max_length``, never longer:
    the model has no embedding for later positions (a ``KerasdlError`` when the length
    is known, at build time). ``depth`` defaults to the inputs' feature size. The table
    starts as BERT's, a normal of standard deviation 0.02 truncated at two deviations.
    Keras masks pass through.
    """

    def __init__(self, max_length, depth=None, embeddings_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = check_positive_int(max_length, "max_length")
        self.depth = check_positive_int(depth, "depth", allow_none=True)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or keras.initializers.TruncatedNormal(stddev=0.02))
        self.supports_masking = True

    def _check_length(self, length):
        if length is not None and int(length) > self.max_length:
            raise KerasdlError(
                f"{self.name!r} embeds positions up to max_length={self.max_length}, got "
                f"a sequence of length {int(length)}: raise max_length or cut the "
                "sequences", argument="max_length")

    def build(self, input_shape):
        depth = _feature_depth(type(self).__name__, input_shape)
        if self.depth is not None and self.depth != depth:
            raise KerasdlError(f"{self.name!r} has depth={self.depth} but its inputs have "
                               f"{depth} features", argument="depth")
        self._check_length(input_shape[1])
        self.embeddings = self.add_weight(shape=(self.max_length, depth), name="embeddings",
                                          initializer=self.embeddings_initializer)

    def call(self, inputs):
        # A length unknown when building is known here when running eagerly.
        self._check_length(inputs.shape[1])
        table = self.embeddings[:ops.shape(inputs)[1]]
        return inputs + ops.expand_dims(ops.cast(table, inputs.dtype), 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length, "depth": self.depth,
                "embeddings_initializer":
                    keras.initializers.serialize(self.embeddings_initializer)}


# ---------------------------------------------------------------------------- T5 relative


def _bucket_layout(num_buckets, max_distance, bidirectional):
    """(buckets per direction, exact buckets per direction), checked."""
    num_buckets = check_positive_int(num_buckets, "num_buckets")
    max_distance = check_positive_int(max_distance, "max_distance")
    per_direction = num_buckets // 2 if bidirectional else num_buckets
    max_exact = per_direction // 2
    if max_exact < 1 or max_distance <= max_exact:
        raise KerasdlError(
            f"relative position buckets need at least 2 buckets per direction and "
            f"max_distance above the {max_exact} exact ones; got num_buckets={num_buckets}, "
            f"max_distance={max_distance}, bidirectional={bidirectional}",
            argument="num_buckets")
    return per_direction, max_exact


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32,
                             max_distance=128):
    """T5's bucket (Raffel et al. 2020) of each ``relative_position`` = key position
    minus query position, as int32.

    ``bidirectional=True`` (the encoder) gives half of the buckets to keys at or before
    the query and half to keys after it (offset by ``num_buckets // 2``);
    ``bidirectional=False`` (the decoder, which cannot see later keys) puts all later
    keys in bucket 0 with the query itself. Within a direction's ``b`` buckets, the
    first ``b // 2`` hold the exact distances 0, 1, ..., ``b // 2 - 1``; the others
    split the distances from ``b // 2`` up to ``max_distance`` logarithmically, and all
    farther distances share the last one (the last bucket begins before
    ``max_distance``: at distance 91 with the defaults). Distance 0 counts as an
    earlier key, so bidirectional bucket ``num_buckets // 2`` is never used, as in T5.
    Computed in float32 in the same order as T5's code, which matters only where the
    logarithm lands on a bucket boundary.
    """
    per_direction, max_exact = _bucket_layout(num_buckets, max_distance, bidirectional)
    distance = -ops.cast(relative_position, "int32")  # > 0: the key comes before the query
    if bidirectional:
        offset = ops.cast(ops.less(distance, 0), "int32") * per_direction
        distance = ops.abs(distance)
    else:
        offset = 0
        distance = ops.maximum(distance, 0)
    # max(., 1) keeps log() finite; distances that small take the exact branch anyway.
    ratio = ops.cast(ops.maximum(distance, 1), "float32") / max_exact
    log_part = (ops.log(ratio) / math.log(max_distance / max_exact)
                * (per_direction - max_exact))
    far = ops.minimum(max_exact + ops.cast(log_part, "int32"), per_direction - 1)
    return offset + ops.where(ops.less(distance, max_exact), distance, far)


@keras.saving.register_keras_serializable(package="kerasdl")
class RelativePositionBias(keras.layers.Layer):
    """T5's relative position bias: [1, num_heads, T_q, T_k], for the attention scores.

    ``layer(query, key=None)`` reads only the lengths of ``query`` [batch, T_q, ...] and
    ``key`` [batch, T_k, ...] (default: ``query``); entry ``[0, h, i, j]`` is head
    ``h``'s learned scalar for :func:`relative_position_bucket` of ``j - i``. Its one
    weight is an ``Embedding(num_buckets, num_heads)`` table (``num_buckets * num_heads``
    numbers; T5 keeps one in the first layer of the encoder and one in the first layer
    of the decoder, and shares it with the other layers). T5 does not divide its scores
    by sqrt(d_k): use ``scale=1.0`` in :func:`~kerasdl.layers.attention_weights` to
    copy it exactly.
    """

    def __init__(self, num_heads, num_buckets=32, max_distance=128, bidirectional=True,
                 embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.num_buckets = check_positive_int(num_buckets, "num_buckets")
        self.max_distance = check_positive_int(max_distance, "max_distance")
        self.bidirectional = bool(bidirectional)
        _bucket_layout(self.num_buckets, self.max_distance, self.bidirectional)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.relative_attention_bias = keras.layers.Embedding(
            self.num_buckets, self.num_heads, embeddings_initializer=self.embeddings_initializer,
            name="relative_attention_bias")
        # The output is a bias, not a sequence: it must not carry the inputs' mask.
        self.supports_masking = True

    def build(self, query_shape, key_shape=None):
        self.relative_attention_bias.build((None,))

    def call(self, query, key=None):
        if isinstance(query, (list, tuple)):  # layer([query, key]), as a functional node lists them
            query, key = query
        key = query if key is None else key
        query_positions = ops.arange(ops.shape(query)[1], dtype="int32")
        key_positions = ops.arange(ops.shape(key)[1], dtype="int32")
        relative = ops.expand_dims(key_positions, 0) - ops.expand_dims(query_positions, 1)
        buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets,
                                           self.max_distance)
        bias = self.relative_attention_bias(buckets)                     # [T_q, T_k, h]
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def compute_output_shape(self, query_shape, key_shape=None):
        if isinstance(query_shape, list) and query_shape and isinstance(query_shape[0], (list, tuple)):
            query_shape, key_shape = query_shape
        key_shape = query_shape if key_shape is None else key_shape
        return (1, self.num_heads, query_shape[1], key_shape[1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "num_buckets": self.num_buckets, "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "embeddings_initializer":
                    keras.initializers.serialize(self.embeddings_initializer)}


# ---------------------------------------------------------------------------- rotary


def apply_rotary(x, positions=None, base=10000):
    """Rotary position embedding (Su et al. 2021, eq. 34) of ``x`` [..., T, d], d even.

    Each pair of dimensions (2i, 2i + 1) of the vector at position ``m`` is rotated by
    the angle ``m * theta_i``, ``theta_i = base^(-2i / d)``. Applied to queries and keys
    (not values), it makes ``rot(q, m) . rot(k, n)`` a function of ``m - n`` and leaves
    norms unchanged. The paper pairs adjacent dimensions, as here; GPT-NeoX and LLaMA
    code pairs dimension ``i`` with ``i + d/2`` (``rotate_half``), a permutation of the
    dimensions. ``positions`` [T] (default 0, 1, ..., T - 1) or, for ``x`` [B, heads, T,
    d], [B, T]; they may be fractional.
    """
    x = ops.convert_to_tensor(x)
    depth = x.shape[-1]
    if depth is None or depth % 2:
        raise KerasdlError(f"apply_rotary rotates pairs of dimensions: the last axis must "
                           f"be known and even, got shape {tuple(x.shape)}", argument="x")
    if positions is None:
        positions = ops.arange(ops.shape(x)[-2], dtype="float32")
    positions = ops.cast(positions, "float32")
    theta = ops.power(ops.convert_to_tensor(float(base)),
                      -ops.arange(0, depth, 2, dtype="float32") / depth)    # [d/2]
    angles = ops.expand_dims(positions, -1) * theta                           # [.., T, d/2]
    if len(angles.shape) == 3:
        angles = ops.expand_dims(angles, 1)                                   # heads axis
    cos, sin = ops.cast(ops.cos(angles), x.dtype), ops.cast(ops.sin(angles), x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = ops.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
    return ops.reshape(rotated, ops.shape(x))
