"""Scaled dot-product and multi-head attention, written out step by step.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017, sections 3.2.1 and 3.2.2::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

:class:`ScratchMultiHeadAttention` holds the same weights, with the same shapes, as
``keras.layers.MultiHeadAttention`` (for inputs [batch, time, features]), and
:meth:`~ScratchMultiHeadAttention.from_keras` copies them: the Keras layer is the
reference it is tested against. Everything uses ``keras.ops`` and runs on every backend.

Masks follow Keras: boolean, ``True`` where a query may attend to a key, of shape
[batch, T_q, T_k] or anything that broadcasts to it (:func:`padding_mask` gives
[batch, 1, T_k], :func:`causal_mask` [1, T_q, T_k]). A 3-D mask is shared by all heads.

A query row whose keys are all masked attends to nothing: its weights are all zero and
its attention output is zero (before the output projection, so the layer outputs the
output bias there). Keras' ``MultiHeadAttention`` does the same when it returns its
scores or uses dropout, but its default fused path (``ops.dot_product_attention``) gives
such a row uniform weights over all keys instead. Such rows come from padded queries
(Keras' query masks) or from a sequence with no unmasked key at all.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int

__all__ = [
    "ScratchMultiHeadAttention",
    "attention_weights",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "scaled_dot_product_attention",
]


def _masked_score(dtype):
    """A finite stand-in for minus infinity: exp() of it, less the row maximum, is 0.

    Finite, so that a row with every key masked gives no ``inf - inf`` (NaN); float16
    cannot hold -1e9 (it would round to -inf), hence its smaller value. Keras' Softmax
    layer uses the same two numbers.
    """
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9


def attention_weights(q, k, mask=None, bias=None, scale=None):
    """``softmax(q k^T * scale + bias)`` over the keys, masked: [..., T_q, T_k].

    ``q`` [..., T_q, d_k], ``k`` [..., T_k, d_k]; ``scale`` defaults to
    ``1 / sqrt(d_k)`` (T5 uses 1). ``bias`` is added to the scaled scores and broadcasts
    to them ([1, heads, T_q, T_k] from :class:`~kerasdl.layers.RelativePositionBias`).
    ``mask`` is boolean, True = attend; a mask of lower rank than the scores gets a heads
    axis (before its last two) until the ranks agree, as in Keras' MultiHeadAttention.
    Masked positions get weight exactly 0, and a row with every key masked gets all
    zeros (no NaN).
    """
    q = ops.convert_to_tensor(q)
    k = ops.convert_to_tensor(k)
    if scale is None:
        depth = q.shape[-1]
        if depth is None:
            raise KerasdlError("the last axis of q (d_k) must be known to scale by "
                               "1/sqrt(d_k); or pass scale=", argument="scale")
        scale = 1.0 / math.sqrt(depth)
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * ops.cast(scale, q.dtype)
    if bias is not None:
        scores = scores + ops.cast(bias, scores.dtype)
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    while len(mask.shape) < len(scores.shape):
        mask = ops.expand_dims(mask, -3)
    scores = ops.where(mask, scores, ops.cast(_masked_score(scores.dtype), scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    # In a fully masked row every score is the same stand-in, so softmax alone would
    # spread the weight evenly over keys that were all ruled out.
    return ops.where(mask, weights, ops.zeros_like(weights))


def scaled_dot_product_attention(q, k, v, mask=None, bias=None, scale=None):
    """Attention (Vaswani et al. 2017, eq. 1): ``softmax(q k^T / sqrt(d_k) + bias) v``.

    ``q`` [..., T_q, d_k], ``k`` [..., T_k, d_k], ``v`` [..., T_k, d_v] (e.g. with
    ``... = batch, heads``). ``mask``, ``bias`` and ``scale`` as in
    :func:`attention_weights`. Returns ``(output [..., T_q, d_v], weights [..., T_q,
    T_k])``; a query row with every key masked gives zero weights and a zero output.
    """
    weights = attention_weights(q, k, mask=mask, bias=bias, scale=scale)
    return ops.matmul(weights, ops.cast(v, weights.dtype)), weights


def padding_mask(token_ids, pad_id=0):
    """[batch, 1, T] boolean: True at the keys that are not ``pad_id``.

    The middle axis broadcasts over the queries: every query, padded or not, may attend
    to every real token (Keras' query masks also blank out padded query rows; those
    outputs are padding anyway, and leaving them unmasked avoids fully masked rows).
    """
    return ops.expand_dims(ops.not_equal(token_ids, pad_id), 1)


def causal_mask(length, key_length=None):
    """[1, T_q, T_k] boolean, lower triangular: query ``i`` attends to keys ``j <= i``.

    ``key_length`` defaults to ``length``; for ``T_q != T_k`` the triangle starts at the
    top left corner, as Keras' ``use_causal_mask`` does.
    """
    key_length = length if key_length is None else key_length
    rows = ops.expand_dims(ops.arange(length, dtype="int32"), 1)
    columns = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.expand_dims(ops.greater_equal(rows, columns), 0)


def combine_masks(*masks):
    """The masks ANDed together, broadcasting their shapes; ``None`` entries are skipped
    (``None`` if all are). E.g. a decoder's self-attention mask:
    ``combine_masks(padding_mask(ids), causal_mask(T))`` -> [batch, T, T]."""
    combined = None
    for mask in masks:
        if mask is None:
            continue
        mask = ops.cast(mask, "bool")
        combined = mask if combined is None else ops.logical_and(combined, mask)
    return combined


@keras.saving.register_keras_serializable(package="kerasdl")
class ScratchMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al. 2017, sec. 3.2.2), one step at a time.

    For query [B, T_q, d_q] and value (and key) [B, T_k, d_v] with ``h`` heads:

    1. project: ``Q = query W^Q + b^Q`` [B, T_q, h * key_dim], likewise ``K`` from the
       key and ``V`` from the value (``value_dim`` per head);
    2. split heads: [B, T, h * dim] -> [B, h, T, dim];
    3. per head, :func:`scaled_dot_product_attention` (dropout, if any, on its weights);
    4. merge heads: [B, h, T_q, value_dim] -> [B, T_q, h * value_dim];
    5. output projection ``W^O`` back to d_q.

    Weights as ``keras.layers.MultiHeadAttention(num_heads, key_dim, value_dim,
    use_bias=...)``, in the same order: ``query_kernel`` [d_q, h, key_dim] and
    ``query_bias`` [h, key_dim], ``key_kernel`` / ``key_bias`` likewise, ``value_kernel``
    [d_v, h, value_dim] and ``value_bias``, ``output_kernel`` [h, value_dim, d_q] and
    ``output_bias`` [d_q]; no biases with ``use_bias=False``. Keras keeps the heads as
    an axis of each kernel: reshaping [d, h, k] to [d, h * k] gives the one wide
    projection of step 1, whose output columns are grouped by head.

    ``call`` takes Keras' arguments. Keras masks of the inputs (``Embedding(...,
    mask_zero=True)``) arrive as ``query_mask`` / ``value_mask`` / ``key_mask`` and are
    combined as Keras does: a padded query's row, and padded keys' columns, are masked.
    ``attention_bias`` (not in Keras) is added to the scaled scores, e.g. T5's relative
    position bias. A fully masked row gives zero weights (see the module docstring).
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.key_dim = check_positive_int(key_dim, "key_dim")
        self.value_dim = check_positive_int(value_dim, "value_dim", allow_none=True) \
            or self.key_dim
        self.dropout = check_fraction(dropout, "dropout")
        self.use_bias = bool(use_bias)
        self.seed = seed
        self.supports_masking = True
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed)

    # ------------------------------------------------------------------------ weights

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("value", value_shape),
                            ("key", key_shape)):
            if len(shape) != 3 or shape[-1] is None:
                raise KerasdlError(
                    f"ScratchMultiHeadAttention needs {name} [batch, time, features] with a "
                    f"known number of features, got shape {tuple(shape)}", argument=name)
        d_query, d_key, d_value = (int(s[-1]) for s in (query_shape, key_shape, value_shape))
        heads = self.num_heads

        def projection(name, shape, bias_shape):
            kernel = self.add_weight(shape=shape, name=f"{name}_kernel",
                                     initializer="glorot_uniform")
            bias = (self.add_weight(shape=bias_shape, name=f"{name}_bias",
                                    initializer="zeros") if self.use_bias else None)
            return kernel, bias

        self.query_kernel, self.query_bias = projection(
            "query", (d_query, heads, self.key_dim), (heads, self.key_dim))
        self.key_kernel, self.key_bias = projection(
            "key", (d_key, heads, self.key_dim), (heads, self.key_dim))
        self.value_kernel, self.value_bias = projection(
            "value", (d_value, heads, self.value_dim), (heads, self.value_dim))
        self.output_kernel, self.output_bias = projection(
            "output", (heads, self.value_dim, d_query), (d_query,))

    @classmethod
    def from_keras(cls, layer, **kwargs):
        """The twin of a built ``keras.layers.MultiHeadAttention``, with its weights
        copied. Only Keras' plain configuration is supported: inputs [batch, time,
        features], attention over time, no ``output_shape``, gate or sliding window."""
        if not isinstance(layer, keras.layers.MultiHeadAttention):
            raise KerasdlError(f"{cls.__name__}.from_keras needs a built "
                               f"keras.layers.MultiHeadAttention, got {type(layer).__name__}",
                               argument="layer")
        if not layer.built:
            raise KerasdlError(f"{layer.name!r} is not built: call it on data first",
                               argument="layer")
        config = layer.get_config()
        d_query = int(layer.query_dense.kernel.shape[0])
        output_shape = config.get("output_shape")
        unsupported = [f"{key}={config[key]!r}" for key in ("use_gate", "sliding_window")
                       if config.get(key)]
        if output_shape and tuple(output_shape) != (d_query,):
            unsupported.append(f"output_shape={output_shape!r}")
        if tuple(layer.attention_axes) != (1,):
            unsupported.append(f"attention_axes={layer.attention_axes!r} (inputs must be "
                               "[batch, time, features])")
        if unsupported:
            raise KerasdlError(f"{cls.__name__} does not implement {', '.join(unsupported)} "
                               f"of {layer.name!r}", argument="layer")
        twin = cls(**{"num_heads": layer.num_heads, "key_dim": layer.key_dim,
                      "value_dim": layer.value_dim, "dropout": layer.dropout,
                      "use_bias": layer.use_bias, "seed": config.get("seed"), **kwargs})
        twin.build((None, None, d_query), (None, None, int(layer.value_dense.kernel.shape[0])),
                   (None, None, int(layer.key_dense.kernel.shape[0])))
        pairs = [(twin.query_kernel, layer.query_dense.kernel),
                 (twin.key_kernel, layer.key_dense.kernel),
                 (twin.value_kernel, layer.value_dense.kernel),
                 (twin.output_kernel, layer.output_dense.kernel)]
        if twin.use_bias:
            pairs += [(twin.query_bias, layer.query_dense.bias),
                      (twin.key_bias, layer.key_dense.bias),
                      (twin.value_bias, layer.value_dense.bias),
                      (twin.output_bias, layer.output_dense.bias)]
        for ours, theirs in pairs:
            ours.assign(theirs)
        return twin

    # ------------------------------------------------------------------------ steps

    def _project(self, x, kernel, bias):
        """x [B, T, d] times kernel [d, h, k] (plus bias [h, k]): [B, T, h * k]."""
        d, heads, depth = kernel.shape
        y = ops.matmul(x, ops.reshape(kernel, (d, heads * depth)))
        if bias is not None:
            y = y + ops.reshape(bias, (heads * depth,))
        return y

    def _split_heads(self, x, depth):
        """[B, T, h * depth] -> [B, h, T, depth]: each head sees its own slice."""
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, steps, self.num_heads, depth))
        return ops.transpose(x, (0, 2, 1, 3))

    def _merge_heads(self, x):
        """[B, h, T, depth] -> [B, T, h * depth], the concatenation of the heads."""
        x = ops.transpose(x, (0, 2, 1, 3))
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, steps, self.num_heads * self.value_dim))

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask,
                        attention_mask, use_causal_mask):
        """Keras' rule: query mask [B, T_q, 1], value and key masks [B, 1, T_k], the
        causal mask and ``attention_mask``, ANDed; ``None`` when there is none."""
        masks = [attention_mask]
        if query_mask is not None:
            masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))
        for mask in (value_mask, key_mask):
            if mask is not None:
                masks.append(ops.expand_dims(ops.cast(mask, "bool"), -2))
        if use_causal_mask:
            masks.append(causal_mask(ops.shape(query)[1], ops.shape(value)[1]))
        return combine_masks(*masks)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, attention_bias=None):
        key = value if key is None else key
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask,
                                    attention_mask, use_causal_mask)
        q = self._split_heads(self._project(query, self.query_kernel, self.query_bias),
                              self.key_dim)
        k = self._split_heads(self._project(key, self.key_kernel, self.key_bias),
                              self.key_dim)
        v = self._split_heads(self._project(value, self.value_kernel, self.value_bias),
                              self.value_dim)
        weights = attention_weights(q, k, mask=mask, bias=attention_bias,
                                    scale=1.0 / math.sqrt(self.key_dim))
        # Keras returns the weights before dropout; so do we.
        dropped = self.dropout_layer(weights, training=training) if self.dropout else weights
        heads = ops.matmul(dropped, v)  # [B, h, T_q, value_dim]
        output = ops.matmul(self._merge_heads(heads),
                            ops.reshape(self.output_kernel,
                                        (self.num_heads * self.value_dim, -1)))
        if self.use_bias:
            output = output + self.output_bias
        if return_attention_scores:
            return output, weights
        return output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return tuple(query_shape)

    def compute_output_spec(self, query, value, key=None, query_mask=None, value_mask=None,
                            key_mask=None, attention_mask=None, return_attention_scores=False,
                            training=None, use_causal_mask=False, attention_bias=None):
        output = keras.KerasTensor(tuple(query.shape), dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        # [B, h, T_q, T_k]: Keras 3.15's MultiHeadAttention reports T_q for both.
        scores_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "key_dim": self.key_dim, "value_dim": self.value_dim,
                "dropout": self.dropout, "use_bias": self.use_bias, "seed": self.seed}
