"""kerasdl.scratch.neurons against Keras, central differences and TensorFlow's autodiff,
and the registered Keras ``mlp`` against its hand count and the numpy MLP."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.scratch import neurons as nn

ON_TENSORFLOW = keras.config.backend() == "tensorflow"
# JAX computes in float32 unless jax_enable_x64 is set for the whole process, and these
# comparisons are at float64 precision.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # JAX warns that it truncates to float32
    KERAS_FLOAT64 = keras.backend.standardize_dtype(
        keras.ops.convert_to_tensor(np.zeros(1), dtype="float64").dtype) == "float64"
needs_float64 = pytest.mark.skipif(not KERAS_FLOAT64,
                                   reason="the Keras backend does not compute in float64")
GRAD_TOL = 1e-6  # largest relative error a correct float64 gradient may show


def _keras(fn, x, **kwargs):
    """A keras.activations / keras.losses function on float64 inputs, back as numpy."""
    tensors = [keras.ops.convert_to_tensor(np.asarray(v), dtype="float64") for v in x]
    return keras.ops.convert_to_numpy(fn(*tensors, **kwargs))


def _points(seed=0, shape=(4, 6), scale=3.0):
    """Random inputs kept at least 1e-3 away from 0, where ReLU-like derivatives jump
    and central differences straddling the kink would be wrong."""
    x = np.random.default_rng(seed).normal(scale=scale, size=shape)
    return np.where(np.abs(x) < 1e-3, 0.5, x)


# ------------------------------------------------------------------------ activations

# TensorFlow builds some float64 constants from Python floats through float32: GELU's
# 1/sqrt(2) and 0.044715 (tf.nn.gelu) and leaky ReLU's slope (tf.nn.leaky_relu). Those
# activations agree with the float64 formulas to ~3e-7 only; the rest to rounding.
TF_FLOAT32_CONSTANT_RTOL = 1e-6
EXACT_RTOL = 1e-12

# (our function, its derivative, the Keras activation, keyword arguments for both sides)
ELEMENTWISE = [
    pytest.param(nn.linear, nn.linear_grad, "linear", {}, {}, id="linear"),
    pytest.param(nn.sigmoid, nn.sigmoid_grad, "sigmoid", {}, {}, id="sigmoid"),
    pytest.param(nn.tanh, nn.tanh_grad, "tanh", {}, {}, id="tanh"),
    pytest.param(nn.relu, nn.relu_grad, "relu", {}, {}, id="relu"),
    pytest.param(nn.leaky_relu, nn.leaky_relu_grad, "leaky_relu", {"alpha": 0.1},
                 {"negative_slope": 0.1}, id="leaky_relu"),
    pytest.param(nn.elu, nn.elu_grad, "elu", {}, {}, id="elu"),
    pytest.param(nn.elu, nn.elu_grad, "elu", {"alpha": 0.5}, {"alpha": 0.5}, id="elu_alpha"),
    pytest.param(nn.gelu, nn.gelu_grad, "gelu", {}, {}, id="gelu_exact"),
    pytest.param(nn.gelu, nn.gelu_grad, "gelu", {"approximate": True},
                 {"approximate": True}, id="gelu_tanh"),
]


@needs_float64
@pytest.mark.parametrize("fn, grad, keras_name, ours, theirs", ELEMENTWISE)
def test_activation_values_match_keras(fn, grad, keras_name, ours, theirs):
    x = _points()
    want = _keras(getattr(keras.activations, keras_name), [x], **theirs)
    loose = ON_TENSORFLOW and keras_name in ("gelu", "leaky_relu")
    rtol = TF_FLOAT32_CONSTANT_RTOL if loose else EXACT_RTOL
    np.testing.assert_allclose(fn(x, **ours), want, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("fn, grad, keras_name, ours, theirs", ELEMENTWISE)
def test_activation_derivatives_match_central_differences(fn, grad, keras_name, ours, theirs):
    x = _points(seed=1)
    # Element-wise f: d(sum f(x)) / dx_i = f'(x_i).
    error = nn.gradient_check(lambda v: np.sum(fn(v, **ours)), x, grad(x, **ours))
    assert error < GRAD_TOL


@needs_float64
def test_keras_default_gelu_is_the_exact_erf_form():
    """The docstring's claim: ``keras.activations.gelu`` defaults to the erf form, and the
    tanh approximation differs from it by more than rounding."""
    x = np.linspace(-4, 4, 41)
    default = _keras(keras.activations.gelu, [x])
    exact, approx = nn.gelu(x), nn.gelu(x, approximate=True)
    np.testing.assert_allclose(default, exact, rtol=TF_FLOAT32_CONSTANT_RTOL, atol=1e-12)
    # The two forms differ by far more than that tolerance (up to ~5e-4 near |x| = 2).
    assert np.max(np.abs(exact - approx)) > 1e-4
    assert np.max(np.abs(default - approx)) > 1e-4
    # Its value at 1 is Phi(1) = 0.841344746...
    assert nn.gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-12)


def test_sigmoid_and_softmax_do_not_overflow():
    with np.errstate(over="raise"):
        s = nn.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        p = nn.softmax(np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0], nn.softmax(np.array([0.0, 1.0, 2.0])))


@needs_float64
def test_softmax_matches_keras():
    x = _points(seed=2, shape=(3, 5))
    for axis in (-1, 0):
        want = _keras(keras.activations.softmax, [x], axis=axis)
        np.testing.assert_allclose(nn.softmax(x, axis=axis), want, rtol=1e-12)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(3)
    z, g = rng.normal(size=5), rng.normal(size=5)
    jac = nn.softmax_jacobian(z)
    # Column j of the Jacobian by central differences, for every j at once.
    numeric = np.stack([nn.numerical_gradient(lambda v: nn.softmax(v)[i], z)
                        for i in range(5)])
    np.testing.assert_allclose(jac, numeric, atol=1e-9)
    np.testing.assert_allclose(nn.softmax_backward(z, g), jac.T @ g, atol=1e-14)
    batch, grads = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    error = nn.gradient_check(lambda v: np.sum(grads * nn.softmax(v)), batch,
                              nn.softmax_backward(batch, grads))
    assert error < GRAD_TOL


# ------------------------------------------------------------------------------ losses


def _targets(seed, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    binary = rng.integers(0, 2, size=shape).astype(float)
    onehot = np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[0])]
    return rng, binary, onehot


@needs_float64
def test_mse_matches_keras():
    rng = np.random.default_rng(4)
    y, p = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    want = np.mean(_keras(keras.losses.mean_squared_error, [y, p]))
    assert nn.mse(y, p) == pytest.approx(float(want), rel=1e-12)


def test_mse_gradient_matches_central_differences():
    rng = np.random.default_rng(4)
    y, p = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    assert nn.gradient_check(lambda v: nn.mse(y, v), p, nn.mse_grad(y, p)) < GRAD_TOL


@needs_float64
def test_binary_crossentropy_matches_keras():
    rng, y, _ = _targets(5)
    logits = rng.normal(scale=4.0, size=y.shape)
    probs = nn.sigmoid(logits)
    probs[0, :2] = [0.0, 1.0]  # outside the clipping range: both must clip alike
    for out, from_logits in ((logits, True), (probs, False)):
        want = np.mean(_keras(keras.losses.binary_crossentropy, [y, out],
                              from_logits=from_logits))
        got = nn.binary_crossentropy(y, out, from_logits=from_logits)
        assert got == pytest.approx(float(want), rel=1e-10)


def test_binary_crossentropy_from_logits_is_stable():
    y = np.array([[1.0], [0.0]])
    z = np.array([[-800.0], [800.0]])  # confident and wrong: loss 800 each
    assert nn.binary_crossentropy(y, z, from_logits=True) == pytest.approx(800.0)
    # From probabilities the same mistake is capped by the clipping at -log(1e-7).
    p = nn.sigmoid(z)
    assert nn.binary_crossentropy(y, p) == pytest.approx(-math.log(nn.EPSILON), rel=1e-6)


@needs_float64
def test_categorical_crossentropy_matches_keras():
    rng, _, y = _targets(6)
    logits = rng.normal(scale=3.0, size=y.shape)
    # Rows that do not sum to 1: Keras rescales them first, and so must we.
    unnormalised = rng.uniform(0.1, 2.0, size=y.shape)
    for out, from_logits in ((logits, True), (nn.softmax(logits), False),
                             (unnormalised, False)):
        want = np.mean(_keras(keras.losses.categorical_crossentropy, [y, out],
                              from_logits=from_logits))
        got = nn.categorical_crossentropy(y, out, from_logits=from_logits)
        assert got == pytest.approx(float(want), rel=1e-10)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("loss, grad, targets", [
    (nn.binary_crossentropy, nn.binary_crossentropy_grad, "binary"),
    (nn.categorical_crossentropy, nn.categorical_crossentropy_grad, "onehot"),
])
def test_crossentropy_gradients_match_central_differences(loss, grad, targets, from_logits):
    rng, binary, onehot = _targets(7)
    y = binary if targets == "binary" else onehot
    if from_logits:
        out = rng.normal(scale=2.0, size=y.shape)
    else:
        # Inside the clipping range, and for the categorical loss rows that do not sum
        # to 1, so that the rescaling's share of the gradient is checked too.
        out = rng.uniform(0.05, 0.95, size=y.shape)
    error = nn.gradient_check(lambda v: loss(y, v, from_logits=from_logits), out,
                              grad(y, out, from_logits=from_logits))
    assert error < GRAD_TOL


def test_softmax_cross_entropy_gradient_is_the_chain_rule():
    """The fused ``(softmax(z) - y) / batch`` equals the loss gradient with respect to
    the probabilities carried back through the softmax's Jacobian."""
    rng, _, y = _targets(8)
    z = rng.normal(size=y.shape)
    fused = nn.categorical_crossentropy_grad(y, z, from_logits=True)
    chained = nn.softmax_backward(z, nn.categorical_crossentropy_grad(y, nn.softmax(z)))
    np.testing.assert_allclose(fused, chained, atol=1e-12)
    np.testing.assert_allclose(fused, (nn.softmax(z) - y) / y.shape[0], atol=1e-15)


def test_gradient_check_catches_a_wrong_gradient():
    x = _points(seed=9)
    wrong = nn.sigmoid(x)  # sigmoid's value instead of its derivative
    assert nn.gradient_check(lambda v: np.sum(nn.sigmoid(v)), x, wrong) > 0.1
    assert nn.numerical_gradient(lambda v: float(np.sum(v ** 3)), np.array([2.0]))[0] \
        == pytest.approx(12.0, rel=1e-8)


# --------------------------------------------------------------------------- the MLP

MLP_CONFIGS = [
    pytest.param(dict(activations="tanh", output_activation="sigmoid",
                      loss="binary_crossentropy"), id="tanh-sigmoid-bce"),
    pytest.param(dict(activations=["relu", "elu"], output_activation="softmax",
                      loss="categorical_crossentropy"), id="relu-elu-softmax-cce"),
    pytest.param(dict(activations=["gelu", "sigmoid"], output_activation="linear",
                      loss="mse"), id="gelu-sigmoid-linear-mse"),
    pytest.param(dict(activations="leaky_relu", output_activation="softmax", loss="mse",
                      alpha=0.2), id="leaky-softmax-mse"),
    pytest.param(dict(activations="tanh", output_activation="sigmoid", loss="mse"),
                 id="tanh-sigmoid-mse"),
]
SIZES = [3, 5, 4, 2]


def _data(config, seed=10, batch=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, SIZES[0]))
    if config["loss"] == "categorical_crossentropy":
        y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], size=batch)]
    elif config["loss"] == "binary_crossentropy":
        y = rng.integers(0, 2, size=(batch, SIZES[-1])).astype(float)
    else:
        y = rng.normal(size=(batch, SIZES[-1]))
    return x, y


def _net(config, seed=11):
    net = nn.MLP(SIZES, seed=seed, **config)
    # Non-zero biases, so that their gradients are exercised away from the origin.
    rng = np.random.default_rng(seed + 1)
    for b in net.biases:
        b += rng.normal(scale=0.3, size=b.shape)
    return net


@pytest.mark.parametrize("config", MLP_CONFIGS)
def test_mlp_backward_matches_central_differences(config):
    net = _net(config)
    x, y = _data(config)
    net.forward(x)
    dW, db = net.backward(y)
    errors = []
    for param, grad in zip(net.parameters(), [g for pair in zip(dW, db) for g in pair]):
        errors.append(nn.gradient_check(lambda _: net.loss(x, y), param, grad))
    assert max(errors) < GRAD_TOL, errors


def _keras_twin(net):
    """A float64 Keras Sequential with ``net``'s layers and weights, ending in logits."""
    layers = [keras.Input((net.layer_sizes[0],), dtype="float64")]
    for units, act in zip(net.layer_sizes[1:-1], net.activations[:-1]):
        if act == "leaky_relu":
            layers.append(keras.layers.Dense(units, dtype="float64"))
            layers.append(keras.layers.LeakyReLU(negative_slope=net.alpha, dtype="float64"))
        else:
            layers.append(keras.layers.Dense(units, activation=act, dtype="float64"))
    layers.append(keras.layers.Dense(net.layer_sizes[-1], dtype="float64"))
    model = keras.Sequential(layers)
    model.set_weights(net.parameters())
    return model


_KERAS_LOSS = {
    ("sigmoid", "binary_crossentropy"):
        lambda y, z: keras.losses.binary_crossentropy(y, z, from_logits=True),
    ("softmax", "categorical_crossentropy"):
        lambda y, z: keras.losses.categorical_crossentropy(y, z, from_logits=True),
}


@pytest.mark.skipif(not ON_TENSORFLOW, reason="uses tf.GradientTape")
@pytest.mark.parametrize("config", MLP_CONFIGS)
def test_mlp_matches_tensorflow_autodiff(config):
    import tensorflow as tf

    net = _net(config)
    x, y = _data(config)
    model = _keras_twin(net)
    out_act = getattr(keras.activations, net.activations[-1])
    with tf.GradientTape() as tape:
        logits = model(x)
        fused = _KERAS_LOSS.get((net.activations[-1], net.loss_name))
        if fused:
            loss = tf.reduce_mean(fused(y, logits))
        else:
            loss = tf.reduce_mean(keras.losses.mean_squared_error(y, out_act(logits)))
    tf_grads = tape.gradient(loss, model.trainable_variables)

    out = net.forward(x)
    dW, db = net.backward(y)
    # 1e-6, not rounding: see TF_FLOAT32_CONSTANT_RTOL (GELU, leaky ReLU).
    np.testing.assert_allclose(out, out_act(logits).numpy(), rtol=1e-6, atol=1e-10)
    assert net.loss(x, y) == pytest.approx(float(loss), rel=1e-6)
    ours = [g for pair in zip(dW, db) for g in pair]
    assert len(ours) == len(tf_grads)
    for i, (got, want) in enumerate(zip(ours, tf_grads)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-10,
                                   err_msg=f"gradient {i}")


def test_mlp_step_is_plain_sgd():
    config = dict(activations="tanh", output_activation="sigmoid",
                  loss="binary_crossentropy")
    net = _net(config)
    x, y = _data(config)
    before = [p.copy() for p in net.parameters()]
    net.forward(x)
    dW, db = net.backward(y)
    net.step(0.5)
    grads = [g for pair in zip(dW, db) for g in pair]
    for old, new, grad in zip(before, net.parameters(), grads):
        np.testing.assert_allclose(new, old - 0.5 * grad, atol=1e-15)


def test_mlp_fit_with_minibatches_lowers_the_loss():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 3))
    y = np.sin(x @ np.array([[1.0], [-2.0], [0.5]]))
    net = nn.MLP([3, 16, 1], activations="tanh", output_activation="linear", loss="mse",
                 seed=0)
    history = net.fit(x, y, epochs=30, lr=0.1, batch_size=8)
    assert len(history) == 30
    assert history[-1] < 0.5 * history[0]
    assert history[-1] == pytest.approx(nn.mse(y, net.predict(x)))


def test_init_scales_follow_he_and_glorot():
    """He: std sqrt(2 / fan_in); Glorot uniform: std sqrt(2 / (fan_in + fan_out))."""
    relu = nn.MLP([400, 300, 1], activations="relu", seed=0)
    tanh = nn.MLP([400, 300, 1], activations="tanh", seed=0)
    assert relu.weights[0].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert tanh.weights[0].std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    limit = math.sqrt(6 / 700)
    assert np.abs(tanh.weights[0]).max() <= limit
    same = nn.MLP([400, 300, 1], activations="relu", seed=0)
    np.testing.assert_array_equal(same.weights[0], relu.weights[0])
    assert not np.array_equal(nn.MLP([400, 300, 1], activations="relu", seed=1).weights[0],
                              relu.weights[0])


# ------------------------------------------------------------------------------ XOR


def test_xor_without_a_hidden_layer_fails():
    result = nn.train_xor(None, seed=0)
    assert result.history[-1] == pytest.approx(math.log(2), abs=1e-3)
    np.testing.assert_allclose(result.predictions, 0.5, atol=1e-2)
    # Not for want of training: the loss started elsewhere and went to ln 2.
    assert abs(result.history[0] - math.log(2)) > abs(result.history[-1] - math.log(2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_with_one_hidden_layer_learns(seed):
    result = nn.train_xor(4, seed=seed)
    labels = nn.XOR_Y.astype(bool)
    assert np.all(result.predictions[labels] > 0.9), result.predictions.ravel()
    assert np.all(result.predictions[~labels] < 0.1), result.predictions.ravel()
    assert result.history[-1] < 0.05


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, argument", [
    (lambda: nn.MLP([3]), "layer_sizes"),
    (lambda: nn.MLP([3, 0, 1]), "layer_sizes"),
    (lambda: nn.MLP([3, 4, 1], activations="swish"), "activations"),
    (lambda: nn.MLP([3, 4, 4, 1], activations=["tanh"]), "activations"),
    (lambda: nn.MLP([3, 1], output_activation="maxout"), "output_activation"),
    (lambda: nn.MLP([3, 1], loss="hinge"), "loss"),
    (lambda: nn.MLP([3, 1], init="orthogonal"), "init"),
    (lambda: nn.MLP([3, 1], seed=-1), "seed"),
    (lambda: nn.MLP([3, 2], output_activation="softmax"), "loss"),
    (lambda: nn.MLP([3, 1]).forward(np.zeros((2, 4))), "x"),
    (lambda: nn.MLP([3, 1]).backward(np.zeros((2, 1))), "y"),
    (lambda: nn.MLP([3, 1]).step(0.1), "lr"),
    (lambda: nn.MLP([3, 1]).fit(np.zeros((2, 3)), np.zeros((2, 1)), epochs=0), "epochs"),
    (lambda: nn.MLP([3, 1]).fit(np.zeros((2, 3)), np.zeros((2, 1)), lr=-1.0), "lr"),
    (lambda: nn.MLP([3, 1]).fit(np.zeros((2, 3)), np.zeros((2, 1)), batch_size=0),
     "batch_size"),
    (lambda: nn.MLP([3, 1]).fit(np.zeros((2, 3)), np.zeros((3, 1))), "y"),
    (lambda: nn.mse(np.zeros(3), np.zeros(4)), "y_true"),
    (lambda: nn.binary_crossentropy(np.zeros(3), np.zeros(3), from_logits="yes"),
     "from_logits"),
    (lambda: nn.leaky_relu(np.zeros(3), alpha=-0.1), "alpha"),
    (lambda: nn.elu(np.zeros(3), alpha=0), "alpha"),
    (lambda: nn.sigmoid(["a", "b"]), "x"),
    (lambda: nn.softmax_jacobian(np.zeros((2, 2))), "x"),
    (lambda: nn.numerical_gradient(lambda v: 0.0, np.zeros(2), eps=0), "eps"),
    (lambda: nn.numerical_gradient(3, np.zeros(2)), "f"),
    (lambda: nn.gradient_check(lambda v: 0.0, np.zeros(2), np.zeros(3)), "analytic_grad"),
    (lambda: nn.train_xor(0), "hidden_units"),
])
def test_bad_input_raises_kerasdl_error(call, argument):
    with pytest.raises(KerasdlError, match=argument) as err:
        call()
    assert err.value.argument == argument


# ------------------------------------------------------------------ the Keras ``mlp``


def test_registered_mlp_count_follows_the_dense_formula():
    """``sum (fan_in + 1) * fan_out`` over the dense layers, for a configuration other
    than the registered reference: 12 inputs (2x2x3), 7 and 5 hidden units, 4 classes:
    13*7 + 8*5 + 6*4 = 91 + 40 + 24 = 155."""
    model = kerasdl.create_model("mlp", input_shape=(2, 2, 3), hidden_units=(7, 5),
                                 num_classes=4)
    assert model.count_params() == 155
    assert model.output_shape == (None, 4)
    info = kerasdl.model_info("mlp")
    assert info.family == "mlp" and info.task == "image_classification"
    features = kerasdl.create_model("mlp", input_shape=(2, 2, 3), hidden_units=(7, 5),
                                    include_top=False)
    assert features.output_shape == (None, 5)
    dropped = kerasdl.create_model("mlp", input_shape=(2, 2, 3), hidden_units=(7, 5),
                                   dropout_rate=0.5)
    assert sum(isinstance(l, keras.layers.Dropout) for l in dropped.layers) == 2


def test_registered_mlp_computes_what_the_numpy_mlp_computes():
    """Same weights, same function: the Keras model's softmax of logits equals the numpy
    network's softmax output (float32 in Keras, hence 1e-5)."""
    net = nn.MLP([6, 5, 3], activations="tanh", output_activation="softmax",
                 loss="categorical_crossentropy", seed=3)
    model = kerasdl.create_model("mlp", input_shape=(2, 3, 1), hidden_units=(5,),
                                 activation="tanh", num_classes=3, input_scaling=None)
    model.set_weights(net.parameters())
    x = np.random.default_rng(13).normal(size=(4, 2, 3, 1))
    logits = keras.ops.convert_to_numpy(model(x.astype("float32")))
    np.testing.assert_allclose(nn.softmax(logits), net.forward(x.reshape(4, 6)), atol=1e-5)


@pytest.mark.parametrize("kwargs, argument", [
    ({"hidden_units": 64}, "hidden_units"),
    ({"hidden_units": (64, 0)}, "hidden_units"),
    ({"activation": "no_such_activation"}, "activation"),
    ({"dropout_rate": 1.0}, "dropout_rate"),
    ({"num_classes": 0}, "num_classes"),
])
def test_registered_mlp_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(KerasdlError, match=argument):
        kerasdl.create_model("mlp", **kwargs)
