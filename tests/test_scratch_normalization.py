"""numpy batch/layer/instance/group normalisation against the Keras layers, and batch
norm's backward pass against TensorFlow's autodiff."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl.errors import KerasdlError
from kerasdl.scratch.normalization import BatchNorm, GroupNorm, InstanceNorm, LayerNorm

TOL = dict(rtol=1e-5, atol=1e-5)


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    # Per-channel offsets and scales, so that a wrong reduction axis shows.
    c = shape[-1]
    return (rng.normal(size=shape) * rng.uniform(0.5, 3.0, c) + rng.normal(0, 2, c)).astype("float32")


def _affine(shape, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, shape), rng.normal(0.0, 1.0, shape)


def _keras_layer(layer, x_shape, gamma, beta):
    layer.build(x_shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    return layer


@pytest.mark.parametrize("shape", [(32, 6), (8, 5, 5, 6)], ids=["dense", "conv"])
def test_batch_norm_equals_keras_in_training_and_inference(shape):
    gamma, beta = _affine(shape[-1])
    ours = BatchNorm(shape[-1], momentum=0.8, epsilon=1e-3, gamma=gamma, beta=beta)
    theirs = _keras_layer(keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-3),
                          shape, gamma, beta)
    for step in range(4):  # several batches, so the moving averages have moved
        x = _data(shape, seed=step)
        np.testing.assert_allclose(ours(x, training=True),
                                   np.asarray(theirs(x, training=True)), **TOL)
    np.testing.assert_allclose(ours.moving_mean, np.asarray(theirs.moving_mean), **TOL)
    np.testing.assert_allclose(ours.moving_variance, np.asarray(theirs.moving_variance), **TOL)
    # the moving variance uses the biased batch variance: with ddof=1 it would differ
    assert not np.allclose(ours.moving_variance,
                           0.8 ** 4 + sum(0.2 * 0.8 ** (3 - s) * _data(shape, s).reshape(-1, shape[-1])
                                          .var(axis=0, ddof=1) for s in range(4)), rtol=1e-4)
    x = _data(shape, seed=9)
    np.testing.assert_allclose(ours(x, training=False),
                               np.asarray(theirs(x, training=False)), **TOL)
    # inference does not touch the moving statistics
    before = ours.moving_mean.copy()
    ours(x)
    np.testing.assert_array_equal(before, ours.moving_mean)


def test_batch_norm_channels_first_axis():
    x = _data((6, 4, 3, 5)).transpose(0, 3, 1, 2).copy()  # (N, C, H, W)
    gamma, beta = _affine(5)
    theirs = _keras_layer(keras.layers.BatchNormalization(axis=1), x.shape, gamma, beta)
    ours = BatchNorm(5, axis=1, gamma=gamma, beta=beta)
    np.testing.assert_allclose(ours(x, training=True), np.asarray(theirs(x, training=True)), **TOL)


def test_batch_norm_output_has_mean_beta_and_variance_gamma_squared():
    x = _data((64, 4, 4, 3)).astype(np.float64)
    gamma, beta = _affine(3)
    eps = 1e-3
    y = BatchNorm(3, epsilon=eps, gamma=gamma, beta=beta)(x, training=True)
    per_feature = y.reshape(-1, 3)
    np.testing.assert_allclose(per_feature.mean(axis=0), beta, atol=1e-12)
    var = x.reshape(-1, 3).var(axis=0)
    # exactly gamma^2 * var / (var + eps); the data's variance is >= 0.25, so within 0.4 %
    np.testing.assert_allclose(per_feature.var(axis=0), gamma ** 2 * var / (var + eps), rtol=1e-12)
    np.testing.assert_allclose(per_feature.var(axis=0), gamma ** 2, rtol=4e-3)


@pytest.mark.parametrize("shape, axis", [((16, 10), -1), ((4, 5, 5, 6), -1),
                                         ((4, 5, 5, 6), (1, 2, 3))],
                         ids=["dense", "conv-last", "conv-all"])
def test_layer_norm_equals_keras(shape, axis):
    x = _data(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    norm_shape = tuple(shape[a] for a in axes)
    gamma, beta = _affine(norm_shape)
    theirs = _keras_layer(keras.layers.LayerNormalization(axis=list(axes) if len(axes) > 1 else axis),
                          shape, gamma, beta)
    ours = LayerNorm(norm_shape, axis=axis, gamma=gamma, beta=beta)
    for training in (True, False):
        np.testing.assert_allclose(ours(x, training=training),
                                   np.asarray(theirs(x, training=training)), **TOL)
    # per example: mean beta and variance gamma^2 when gamma, beta are uniform
    y = LayerNorm(norm_shape, axis=axis, gamma=np.full(norm_shape, 1.5),
                  beta=np.full(norm_shape, -0.5), epsilon=1e-9)(x)
    flat = y.reshape(shape[0], -1) if len(axes) > 1 else y.reshape(-1, shape[-1])
    np.testing.assert_allclose(flat.mean(axis=1), -0.5, atol=1e-9)
    np.testing.assert_allclose(flat.var(axis=1), 2.25, rtol=1e-6)


def test_layer_norm_axes_given_out_of_order_follow_keras():
    x = _data((3, 4, 5, 6))
    gamma, beta = _affine((4, 6))   # Keras sorts the axes: gamma is (H, C)
    theirs = _keras_layer(keras.layers.LayerNormalization(axis=[3, 1]), x.shape, gamma, beta)
    ours = LayerNorm((6, 4), axis=(3, 1), gamma=gamma.T, beta=beta.T)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), **TOL)


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_group_norm_equals_keras(groups):
    x = _data((4, 5, 5, 6))
    gamma, beta = _affine(6)
    theirs = _keras_layer(keras.layers.GroupNormalization(groups=groups), x.shape, gamma, beta)
    ours = GroupNorm(6, groups, gamma=gamma, beta=beta)
    for training in (True, False):
        np.testing.assert_allclose(ours(x, training=training),
                                   np.asarray(theirs(x, training=training)), **TOL)


def test_group_norm_one_group_is_layer_norm_over_position_and_channels():
    x = _data((4, 5, 5, 6))
    gamma, beta = _affine(6)
    ln_gamma = np.broadcast_to(gamma, (5, 5, 6))
    ln_beta = np.broadcast_to(beta, (5, 5, 6))
    np.testing.assert_allclose(GroupNorm(6, 1, gamma=gamma, beta=beta)(x),
                               LayerNorm((5, 5, 6), axis=(1, 2, 3), gamma=ln_gamma, beta=ln_beta)(x),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keras_groups", [6, -1])
def test_instance_norm_equals_keras_group_norm_with_one_channel_per_group(keras_groups):
    x = _data((3, 7, 6))
    gamma, beta = _affine(6)
    theirs = _keras_layer(keras.layers.GroupNormalization(groups=keras_groups), x.shape, gamma, beta)
    ours = InstanceNorm(6, gamma=gamma, beta=beta)
    y = ours(x, training=True)
    np.testing.assert_allclose(y, np.asarray(theirs(x)), **TOL)
    # each (example, channel) on its own: mean beta_c and variance
    # gamma_c^2 var / (var + eps) over its positions
    var = x.astype(np.float64).var(axis=1)
    np.testing.assert_allclose(y.mean(axis=1), np.broadcast_to(beta, (3, 6)), atol=1e-9)
    np.testing.assert_allclose(y.var(axis=1), gamma ** 2 * var / (var + 1e-3), rtol=1e-9)


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 5)], ids=["dense", "conv"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_equals_autodiff(shape, training):
    rng = np.random.default_rng(3)
    x = _data(shape).astype(np.float64)
    upstream = rng.normal(size=shape)
    gamma, beta = _affine(shape[-1])
    layer = _keras_layer(keras.layers.BatchNormalization(dtype="float64"), shape, gamma, beta)
    moving_mean, moving_var = rng.normal(size=shape[-1]), rng.uniform(0.5, 2.0, shape[-1])
    layer.moving_mean.assign(moving_mean)
    layer.moving_variance.assign(moving_var)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt, training=training) * upstream)
    dx_tf, dgamma_tf, dbeta_tf = tape.gradient(loss, [xt, layer.gamma, layer.beta])

    ours = BatchNorm(shape[-1], gamma=gamma, beta=beta)
    ours.moving_mean, ours.moving_variance = moving_mean, moving_var
    ours(x, training=training)
    dx, dgamma, dbeta = ours.backward(upstream)
    np.testing.assert_allclose(dx, np.asarray(dx_tf), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dgamma, np.asarray(dgamma_tf), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dbeta, np.asarray(dbeta_tf), rtol=1e-9, atol=1e-10)
    if training:
        # the batch-statistics terms make dx sum to 0 per feature: shifting a whole
        # feature by a constant does not change the normalised output
        flat = dx.reshape(-1, shape[-1])
        np.testing.assert_allclose(flat.sum(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize("make, argument", [
    (lambda: GroupNorm(6, 4), "groups"),
    (lambda: GroupNorm(6, 12), "groups"),
    (lambda: GroupNorm(6, 0), "groups"),
    (lambda: GroupNorm(6, 2, gamma=np.ones(3)), "gamma"),
    (lambda: BatchNorm(0), "num_features"),
    (lambda: BatchNorm(4, momentum=1.5), "momentum"),
    (lambda: BatchNorm(4, epsilon=0), "epsilon"),
    (lambda: BatchNorm(4, beta=np.zeros((4, 1))), "beta"),
    (lambda: BatchNorm(4, axis="last"), "axis"),
    (lambda: LayerNorm(4, axis=(1, 2)), "axis"),
    (lambda: LayerNorm((4, 0)), "normalized_shape"),
])
def test_bad_construction_names_the_argument(make, argument):
    with pytest.raises(KerasdlError) as err:
        make()
    assert err.value.argument == argument


@pytest.mark.parametrize("layer, x, argument", [
    (BatchNorm(4), np.zeros((8, 5)), "x"),              # wrong feature count
    (BatchNorm(4), np.zeros(4), "x"),                   # no batch axis
    (BatchNorm(8, axis=0), np.zeros((8, 4)), "axis"),   # normalising the batch axis
    (BatchNorm(4, axis=3), np.zeros((8, 4)), "axis"),   # axis out of range
    (LayerNorm(4), np.zeros((2, 5)), "x"),
    (GroupNorm(6, 3), np.zeros((2, 4, 4)), "x"),
    (InstanceNorm(6), np.zeros((2, 6)), "x"),           # nothing to average over
    (BatchNorm(4), [["a"] * 4], "x"),
])
def test_bad_input_names_the_argument(layer, x, argument):
    with pytest.raises(KerasdlError) as err:
        layer(x, training=True)
    assert err.value.argument == argument


def test_backward_before_forward_is_an_error():
    with pytest.raises(KerasdlError):
        BatchNorm(3).backward(np.zeros((2, 3)))
