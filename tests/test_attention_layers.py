"""Attention written out step by step against Keras' MultiHeadAttention, and the
position encodings against their papers' formulas."""

import math

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.layers import (
    LearnedPositionEmbedding,
    RelativePositionBias,
    ScratchMultiHeadAttention,
    SinusoidalPositionEncoding,
    apply_rotary,
    causal_mask,
    combine_masks,
    padding_mask,
    relative_position_bucket,
    scaled_dot_product_attention,
    sinusoidal_encoding,
)

# key_dim 5: 1/sqrt(5) is not a power of two, so scaling the queries (Keras' explicit
# path) and scaling the scores (ours, and Keras' fused path) round differently and the
# comparison is not bit for bit by accident. With weights of scale 0.3 the differences
# measure up to 2.4e-7; a misread kernel layout moves outputs by 1e-1 (checked below).
HEADS, KEY_DIM = 3, 5
OUTPUT_TOL = 1e-6


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _max_diff(a, b):
    return float(np.max(np.abs(_np(a) - _np(b))))


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _pair(query_shape, value_shape, key_shape=None, seed=0, **options):
    """A built Keras MultiHeadAttention with random weights (biases too, so that their
    layout is tested) and its scratch twin."""
    reference = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, **options)
    reference.build(query_shape, value_shape, key_shape)
    rng = np.random.default_rng(seed + 1)
    reference.set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                           for w in reference.get_weights()])
    return reference, ScratchMultiHeadAttention.from_keras(reference)


def _key_padding(batch, t_q, t_k):
    """[B, T_q, T_k]: example 0 has its last two keys padded, example 1 none; every
    query keeps at least one key."""
    lengths = np.array([t_k - 2, t_k])
    return np.broadcast_to((np.arange(t_k) < lengths[:, None])[:, None, :],
                           (batch, t_q, t_k)).copy()


# Self- and cross-attention, with and without biases, value_dim != key_dim, a key of its
# own, and the masks: padding, causal (top-left triangle when T_q != T_k), both.
CASES = {
    "self": dict(t_q=6, t_k=6, mask=None, causal=False, options={}),
    "self_no_bias_padding": dict(t_q=6, t_k=6, mask="padding", causal=False,
                                 options={"use_bias": False}),
    "self_causal": dict(t_q=6, t_k=6, mask=None, causal=True, options={}),
    "self_padding_and_causal": dict(t_q=6, t_k=6, mask="padding", causal=True,
                                    options={"use_bias": False}),
    "cross_value_dim": dict(t_q=6, t_k=4, mask="padding", causal=False,
                            options={"value_dim": 7}),
    "cross_causal_no_bias": dict(t_q=4, t_k=6, mask=None, causal=True,
                                 options={"use_bias": False}),
    "cross_separate_key": dict(t_q=6, t_k=4, mask="padding", causal=False, options={},
                               key_features=9),
}


@pytest.mark.parametrize("case", CASES)
def test_scratch_attention_equals_keras(case):
    spec = CASES[case]
    t_q, t_k = spec["t_q"], spec["t_k"]
    query, value = _random((2, t_q, 8), 1), _random((2, t_k, 6), 2)
    key = _random((2, t_k, spec["key_features"]), 3) if "key_features" in spec else None
    reference, scratch = _pair(query.shape, value.shape,
                               None if key is None else key.shape, **spec["options"])
    kwargs = {"key": key, "use_causal_mask": spec["causal"],
              "attention_mask": _key_padding(2, t_q, t_k) if spec["mask"] else None}
    # Keras' explicit path (it returns its scores) is the reference for both outputs.
    expected, expected_scores = reference(query, value, return_attention_scores=True,
                                          **kwargs)
    got, scores = scratch(query, value, return_attention_scores=True, **kwargs)
    assert tuple(scores.shape) == (2, HEADS, t_q, t_k)
    assert _max_diff(expected, got) < OUTPUT_TOL
    assert _max_diff(expected_scores, scores) < OUTPUT_TOL
    assert _max_diff(got, scratch(query, value, **kwargs)) == 0
    if spec["mask"] or spec["causal"]:
        assert _max_diff(got, scratch(query, value, key=key)) > 1e-2  # the mask was used
    # Keras' default fused path (ops.dot_product_attention) needs value_dim == key_dim
    # on JAX; on every row with a key to attend to it agrees with the explicit one.
    if "value_dim" not in spec["options"]:
        assert _max_diff(reference(query, value, **kwargs), got) < OUTPUT_TOL


def test_keras_masks_of_the_inputs_are_used_as_keras_does():
    """Embedding(mask_zero=True) masks reach both layers as query/value masks: padded
    keys get no weight, padded queries' rows are fully masked. There Keras' fused path
    gives uniform weights, its explicit path and ours zero weights (the output is then
    the output bias)."""
    tokens = np.array([[5, 3, 8, 2, 0, 0], [4, 4, 1, 6, 7, 9]], dtype="int32")
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    reference, scratch = _pair((None, 6, 8), (None, 6, 8))
    inputs = keras.Input((6,), dtype="int32")
    x = embedding(inputs)
    keras_model = keras.Model(inputs, reference(x, x, return_attention_scores=True))
    fused_model = keras.Model(inputs, reference(x, x))
    scratch_model = keras.Model(inputs, scratch(x, x, return_attention_scores=True))
    (expected, expected_scores), (got, scores) = keras_model(tokens), scratch_model(tokens)
    assert _max_diff(expected, got) < OUTPUT_TOL
    assert _max_diff(expected_scores, scores) < OUTPUT_TOL
    scores = _np(scores)
    assert not scores[0, :, :, 4:].any() and not scores[0, :, 4:, :].any()
    np.testing.assert_allclose(_np(got)[0, 4:], np.broadcast_to(_np(scratch.output_bias),
                                                                (2, 8)), atol=1e-7)
    fused = _np(fused_model(tokens))
    assert np.abs(fused[:, :4] - _np(got)[:, :4]).max() < OUTPUT_TOL
    assert np.abs(fused[0, 4:] - _np(got)[0, 4:]).max() > 1e-2  # Keras' two paths differ


def test_symbolic_scores_shape_for_cross_attention():
    """[B, heads, T_q, T_k] in a functional model (Keras 3.15's own layer says T_q, T_q)."""
    _, scratch = _pair((None, 6, 8), (None, 4, 6))
    _, scores = scratch(keras.Input((6, 8)), keras.Input((4, 6)), return_attention_scores=True)
    assert tuple(scores.shape) == (None, HEADS, 6, 4)


@pytest.mark.parametrize("misreading", ["flat_query_columns_by_dim", "value_heads_swapped"])
def test_tolerance_catches_a_misread_layout(misreading):
    """Reading the [d, heads, key_dim] query kernel's columns as grouped by dimension
    instead of by head, or pairing value heads with the wrong rows of the output
    kernel, misses the tolerance by orders of magnitude, so the equality above means
    something."""
    query = _random((2, 6, 8), 1)
    reference, scratch = _pair(query.shape, query.shape)
    if misreading == "flat_query_columns_by_dim":
        kernel = _np(scratch.query_kernel)
        scratch.query_kernel.assign(kernel.transpose(0, 2, 1).reshape(kernel.shape))
    else:
        for weight in (scratch.value_kernel, scratch.value_bias):
            swapped = _np(weight).copy()
            swapped[..., [0, 1], :] = swapped[..., [1, 0], :]
            weight.assign(swapped)
    expected = reference(query, query, return_attention_scores=True)[0]
    assert _max_diff(expected, scratch(query, query)) > 1e4 * OUTPUT_TOL


def test_weights_match_keras_in_names_shapes_and_order():
    reference = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, value_dim=7)
    scratch = ScratchMultiHeadAttention(HEADS, KEY_DIM, value_dim=7)
    for layer in (reference, scratch):
        layer.build((None, 6, 8), (None, 4, 6), (None, 4, 9))
    assert [tuple(w.shape) for w in scratch.weights] == \
        [tuple(w.shape) for w in reference.weights]
    assert [w.path.split("/")[-1] for w in scratch.weights] == [
        f"{part}_{kind}" for part in ("query", "key", "value", "output")
        for kind in ("kernel", "bias")]
    no_bias = ScratchMultiHeadAttention(HEADS, KEY_DIM, use_bias=False)
    no_bias.build((None, 6, 8), (None, 6, 8))
    assert len(no_bias.weights) == 4


def test_dropout_acts_on_the_weights_in_training_only():
    query = _random((2, 6, 8), 1)
    reference, plain = _pair(query.shape, query.shape)
    dropping = ScratchMultiHeadAttention.from_keras(reference, dropout=0.5, seed=1)
    expected = plain(query, query)
    assert _max_diff(dropping(query, query, training=False), expected) == 0
    dropped, scores = dropping(query, query, training=True, return_attention_scores=True)
    assert _max_diff(dropped, expected) > 1e-2
    # The returned scores are the weights before dropout, as in Keras.
    assert _max_diff(scores, plain(query, query, return_attention_scores=True)[1]) == 0


# ---------------------------------------------------------------------- the function


def _reference_attention(q, k, v, mask, bias, scale):
    """Equation 1 in numpy, float64, with masked scores at -inf (fine when every row
    keeps a key)."""
    scores = np.einsum("...qd,...kd->...qk", q.astype("float64"), k) * scale + bias
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v, weights


def test_scaled_dot_product_attention_is_equation_1():
    q, k, v = _random((2, 3, 5, 4), 1), _random((2, 3, 7, 4), 2), _random((2, 3, 7, 6), 3)
    bias = _random((1, 3, 5, 7), 4)
    mask = np.random.default_rng(5).random((2, 5, 7)) < 0.7
    mask[..., 0] = True  # every row keeps a key
    for scale in (None, 1.0):
        expected, expected_weights = _reference_attention(
            q, k, v, mask[:, None], bias, 0.5 if scale is None else scale)
        got, weights = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias,
                                                    scale=scale)
        assert _max_diff(expected, got) < 1e-5
        assert _max_diff(expected_weights, weights) < 1e-6
        weights = _np(weights)
        assert not weights[np.broadcast_to(~mask[:, None], weights.shape)].any()
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = _random((1, 2, 4, 3), 1), _random((1, 2, 5, 3), 2), _random((1, 2, 5, 3), 3)
    mask = np.ones((1, 4, 5), bool)
    mask[0, 2] = False                        # query 2 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    out, weights = _np(out), _np(weights)
    assert np.isfinite(out).all() and np.isfinite(weights).all()
    assert not weights[:, :, 2].any() and not out[:, :, 2].any()
    np.testing.assert_allclose(weights[:, :, [0, 1, 3]].sum(-1), 1.0, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_fully_masked_rows_have_finite_gradients():
    import tensorflow as tf

    q = tf.constant(_random((1, 1, 3, 4), 1))
    mask = np.array([[[True, True], [False, False], [True, False]]])
    with tf.GradientTape() as tape:
        tape.watch(q)
        out, _ = scaled_dot_product_attention(q, q[..., :2, :], q[..., :2, :], mask=mask)
        loss = tf.reduce_sum(out)
    assert np.isfinite(tape.gradient(loss, q).numpy()).all()


def test_mask_helpers():
    ids = np.array([[7, 2, 0, 0], [1, 0, 3, 5]])
    pad = _np(padding_mask(ids))
    assert pad.shape == (2, 1, 4) and pad.dtype == bool
    np.testing.assert_array_equal(pad[:, 0], ids != 0)
    np.testing.assert_array_equal(_np(padding_mask(ids, pad_id=5))[1, 0], [1, 1, 1, 0])
    causal = _np(causal_mask(4))
    np.testing.assert_array_equal(causal, np.tril(np.ones((1, 4, 4), bool)))
    np.testing.assert_array_equal(_np(causal_mask(2, 3))[0], [[1, 0, 0], [1, 1, 0]])
    both = _np(combine_masks(padding_mask(ids), None, causal_mask(4)))
    np.testing.assert_array_equal(both, (ids != 0)[:, None, :] & np.tril(np.ones((4, 4), bool)))
    assert combine_masks(None, None) is None


# ---------------------------------------------------------------------- save and load


def test_keras_file_round_trip_of_every_layer(tmp_path):
    """Embedding, both absolute encodings, T5's bias fed to the attention, causal."""
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 8)(inputs)
    x = SinusoidalPositionEncoding(scale_embeddings=True)(x)
    x = LearnedPositionEmbedding(10)(x)
    bias = RelativePositionBias(HEADS, num_buckets=8, max_distance=16, bidirectional=False)(x)
    attention = ScratchMultiHeadAttention(HEADS, KEY_DIM, value_dim=4, use_bias=False)
    attended = attention(x, x, attention_bias=bias, use_causal_mask=True)
    model = keras.Model(inputs, keras.layers.Dense(2)(attended))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    tokens = np.random.default_rng(0).integers(0, 20, size=(3, 6)).astype("int32")
    np.testing.assert_array_equal(_np(loaded(tokens)), _np(model(tokens)))
    ours = (SinusoidalPositionEncoding, LearnedPositionEmbedding, RelativePositionBias,
            ScratchMultiHeadAttention)
    layers = [layer for layer in model.layers if isinstance(layer, ours)]
    assert len(layers) == 4
    for layer in layers:
        twin = loaded.get_layer(layer.name)
        assert type(twin) is type(layer) and twin.get_config() == layer.get_config()
        for ours_w, loaded_w in zip(layer.get_weights(), twin.get_weights(), strict=True):
            np.testing.assert_array_equal(ours_w, loaded_w)
    # The bias reached the scores: the same attention without it computes otherwise.
    unbiased = attention(x, x, use_causal_mask=True)
    assert _max_diff(keras.Model(inputs, unbiased)(tokens),
                     keras.Model(inputs, attended)(tokens)) > 1e-4


# ---------------------------------------------------------------------- sinusoidal


def test_sinusoidal_encoding_is_the_papers_formula():
    length, depth = 50, 16
    expected = np.zeros((length, depth))
    for pos in range(length):
        for i in range(depth // 2):
            angle = pos / 10000 ** (2 * i / depth)
            expected[pos, 2 * i] = math.sin(angle)
            expected[pos, 2 * i + 1] = math.cos(angle)
    table = _np(sinusoidal_encoding(length, depth))
    assert table.shape == (length, depth) and table.dtype == np.float32
    # Float32 angles up to 49 rad: measured up to 5.8e-7 of rounding.
    assert np.abs(table - expected).max() < 2e-6
    # Interleaved, not concatenated: dimension 1 is cos(pos), dimension 8 is not.
    np.testing.assert_allclose(table[:, 1], np.cos(np.arange(length)), atol=1e-5)
    assert np.abs(table[:, 8] - np.cos(np.arange(length))).max() > 0.5


def test_sinusoidal_layer_adds_the_table_and_scales_if_asked():
    x = _random((2, 7, 6), 1)
    table = _np(sinusoidal_encoding(7, 6))[None]
    np.testing.assert_allclose(_np(SinusoidalPositionEncoding()(x)), x + table, atol=1e-6)
    np.testing.assert_allclose(_np(SinusoidalPositionEncoding(scale_embeddings=True)(x)),
                               x * math.sqrt(6) + table, atol=1e-5)
    layer = SinusoidalPositionEncoding()
    model = keras.Sequential([keras.Input((None, 6)), layer])  # length known only later
    np.testing.assert_allclose(_np(model(x)), x + table, atol=1e-6)
    assert not layer.weights


# ---------------------------------------------------------------------- learned


def test_learned_position_embedding_adds_its_rows():
    layer = LearnedPositionEmbedding(10, 6)
    x = _random((2, 7, 6), 1)
    out = _np(layer(x))
    np.testing.assert_allclose(out, x + _np(layer.embeddings)[None, :7], atol=1e-7)
    assert layer.count_params() == 60


def test_learned_position_embedding_rejects_long_sequences():
    with pytest.raises(KerasdlError, match="max_length=10.*length 12") as caught:
        LearnedPositionEmbedding(10)(keras.Input((12, 6)))
    assert caught.value.argument == "max_length"
    dynamic = LearnedPositionEmbedding(10)
    dynamic.build((None, None, 6))
    dynamic(_random((1, 10, 6), 1))
    with pytest.raises(KerasdlError, match="length 11"):
        dynamic(_random((1, 11, 6), 1))
    with pytest.raises(KerasdlError, match="depth=4"):
        LearnedPositionEmbedding(10, depth=4)(keras.Input((8, 6)))


# ---------------------------------------------------------------------- T5 buckets

RELATIVE = [-200, -130, -128, -100, -20, -16, -9, -8, -1, 0, 1, 7, 8, 9, 20, 100, 128, 500]
# num_buckets=32, max_distance=128; n = query - key position (> 0: an earlier key).
# Bidirectional: 16 buckets a direction, 8 exact (n < 8), then 8 + floor(8 log(n/8) /
# log(128/8)) = 8 + floor(2 log2(n/8)), at most 15; later keys (n < 0) add 16.
#   n=200: 2 log2(25) = 9.29 -> 17 -> 15; 130: 8.04 -> 15; 128: 8 -> 15; 100: 7.29 -> 15;
#   20: 2.64 -> 10; 16: 2 -> 10; 9: 0.34 -> 8; 8: 0 -> 8; 1 -> 1; 0 -> 0;
#   n=-1: 16+1; -7: 16+7; -8: 16+8; -9: 16+8; -20: 16+10; -100, -128, -500: 16+15.
BIDIRECTIONAL = [15, 15, 15, 15, 10, 10, 8, 8, 1, 0, 17, 23, 24, 24, 26, 31, 31, 31]
# Unidirectional: 32 buckets, 16 exact, then 16 + floor(16 log(n/16) / log(128/16)) =
# 16 + floor(16/3 log2(n/16)), at most 31; later keys all in bucket 0.
#   n=200: 16/3 log2(12.5) = 19.4 -> 35 -> 31; 130: 16.1 -> 31; 128: 16 -> 31;
#   100: 14.1 -> 30; 20: 1.72 -> 17; 16: 0 -> 16; 9, 8, 1, 0 exact.
UNIDIRECTIONAL = [31, 31, 31, 30, 17, 16, 9, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("bidirectional, expected", [(True, BIDIRECTIONAL),
                                                     (False, UNIDIRECTIONAL)])
def test_relative_position_buckets_by_hand(bidirectional, expected):
    got = _np(relative_position_bucket(np.array(RELATIVE), bidirectional=bidirectional))
    assert got.dtype == np.int32
    assert got.tolist() == expected


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (8, 20)])
def test_relative_position_bucket_properties(bidirectional, num_buckets, max_distance):
    per_direction = num_buckets // 2 if bidirectional else num_buckets
    relative = np.arange(-3 * max_distance, 3 * max_distance + 1)
    buckets = _np(relative_position_bucket(relative, bidirectional, num_buckets,
                                           max_distance))
    earlier = buckets[relative <= 0][::-1]          # distance 0, 1, 2, ... backwards
    later = buckets[relative > 0]                   # distance 1, 2, ... forwards
    assert (np.diff(earlier) >= 0).all()            # monotone in |distance|
    np.testing.assert_array_equal(earlier[:per_direction // 2], np.arange(per_direction // 2))
    assert (earlier[max_distance:] == per_direction - 1).all()  # saturated from there on
    if bidirectional:
        assert (np.diff(later) >= 0).all()
        np.testing.assert_array_equal(later, earlier[1:] + per_direction)
        # Every bucket but num_buckets // 2, "distance 0, later": 0 counts as earlier.
        assert sorted(set(buckets.tolist())) == \
            [b for b in range(num_buckets) if b != per_direction]
    else:
        assert not later.any()                      # later keys: bucket 0, as the query
        assert sorted(set(buckets.tolist())) == list(range(num_buckets))


def test_relative_position_bias_layer():
    layer = RelativePositionBias(8)            # T5-small: 8 heads, 32 buckets
    query, key = _random((2, 5, 4), 1), _random((2, 3, 4), 2)
    bias = _np(layer(query, key))
    assert bias.shape == (1, 8, 5, 3)
    assert layer.count_params() == 32 * 8
    table = _np(layer.weights[0])
    buckets = _np(relative_position_bucket(np.arange(3)[None, :] - np.arange(5)[:, None]))
    np.testing.assert_array_equal(bias[0], table[buckets].transpose(2, 0, 1))
    assert _np(layer(query)).shape == (1, 8, 5, 5)


# ---------------------------------------------------------------------- rotary


def test_rotary_scores_depend_only_on_relative_position():
    q, k = _random((2, 3, 6, 8), 1), _random((2, 3, 6, 8), 2)
    positions = np.array([0, 3, 4, 9, 10, 17], dtype="float32")

    def scores(shift):
        return _np(keras.ops.matmul(apply_rotary(q, positions + shift),
                                    keras.ops.swapaxes(apply_rotary(k, positions + shift),
                                                       -1, -2)))

    assert np.abs(scores(0.0) - scores(50.0)).max() < 1e-5  # measured 1.2e-6
    plain = _np(keras.ops.matmul(q, keras.ops.swapaxes(k, -1, -2)))
    assert np.abs(scores(0.0) - plain).max() > 1e-1  # the positions did change the scores
    # Per-example positions [B, T] give the same as shared ones.
    shared = _np(apply_rotary(q, positions))
    batched = _np(apply_rotary(q, np.stack([positions, positions])))
    np.testing.assert_allclose(batched, shared, atol=1e-6)


def test_rotary_rotates_pairs_and_keeps_norms():
    x = _random((1, 2, 5, 6), 1)
    rotated = _np(apply_rotary(x))
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1),
                               np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(rotated[:, :, 0], x[:, :, 0], atol=0)  # position 0
    # Dimensions 0 and 1 (theta_0 = 1) turn by m radians at position m.
    m = np.arange(5)
    np.testing.assert_allclose(rotated[..., 0], x[..., 0] * np.cos(m) - x[..., 1] * np.sin(m),
                               atol=1e-5)
    np.testing.assert_allclose(rotated[..., 1], x[..., 0] * np.sin(m) + x[..., 1] * np.cos(m),
                               atol=1e-5)


# ---------------------------------------------------------------------- errors


def test_user_errors():
    with pytest.raises(KerasdlError, match="num_heads"):
        ScratchMultiHeadAttention(0, 4)
    with pytest.raises(KerasdlError, match="dropout"):
        ScratchMultiHeadAttention(2, 4, dropout=1.0)
    with pytest.raises(KerasdlError, match="not built"):
        ScratchMultiHeadAttention.from_keras(keras.layers.MultiHeadAttention(2, 4))
    with pytest.raises(KerasdlError, match="keras.layers.MultiHeadAttention"):
        ScratchMultiHeadAttention.from_keras(keras.layers.Dense(2))
    gated = keras.layers.MultiHeadAttention(2, 4, output_shape=3, use_gate=True)
    gated.build((None, 5, 6), (None, 5, 6))
    with pytest.raises(KerasdlError, match="use_gate=True.*output_shape"):
        ScratchMultiHeadAttention.from_keras(gated)
    with pytest.raises(KerasdlError, match="even"):
        apply_rotary(np.zeros((1, 1, 3, 5), "float32"))
    with pytest.raises(KerasdlError, match="max_distance"):
        RelativePositionBias(2, num_buckets=8, max_distance=2)


def test_each_registered_layer_name_resolves_to_its_own_class():
    """Two classes registered under one ``kerasdl>Name`` make ``.keras`` files load the
    wrong one (the model builders once had their own SinusoidalPositionEncoding and
    RelativePositionBias): every public layer of kerasdl.layers must be what its
    registered name resolves to, after every model family is imported."""
    import inspect

    import kerasdl.layers
    import kerasdl.models  # noqa: F401  (registers the families' layers too)

    for name in kerasdl.layers.__all__:
        obj = getattr(kerasdl.layers, name)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
            assert keras.saving.get_registered_object(f"kerasdl>{name}") is obj, name


def test_relative_position_bias_takes_its_inputs_as_a_list_too():
    from kerasdl.layers import RelativePositionBias

    layer = RelativePositionBias(2, num_buckets=8, max_distance=16)
    q, k = np.zeros((1, 3, 4), "float32"), np.zeros((1, 5, 4), "float32")
    np.testing.assert_array_equal(np.asarray(layer([q, k])), np.asarray(layer(q, k)))
    assert tuple(layer([q, k]).shape) == (1, 2, 3, 5)
