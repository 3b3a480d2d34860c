"""kerasdl.scratch.regularization against Keras: dropout statistics, penalty values,
DropConnect against Dense, magnitude pruning during fit, and gradient clipping against
what an optimizer built with clipvalue/clipnorm/global_clipnorm applies."""

import math

import keras
import numpy as np
import pytest

from kerasdl.callbacks import gradient_clipping
from kerasdl.errors import KerasdlError
from kerasdl.scratch.regularization import (
    DropConnect,
    MagnitudePruning,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    compressed_size,
    dropout,
    dropout_backward,
    l1_penalty,
    l2_penalty,
    magnitude_prune,
    polynomial_sparsity,
    zero_fraction,
)



def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# ------------------------------------------------------------------- dropout and penalties


def test_numpy_dropout_has_the_statistics_of_keras_dropout():
    x = np.ones((100, 200), dtype="float32")
    rate = 0.3
    ours, scale = dropout(x, rate, rng=0)
    theirs = _numpy(keras.layers.Dropout(rate, seed=0)(x, training=True))
    # 20,000 Bernoulli draws: the dropped fraction has standard deviation 0.0032.
    for out in (ours, theirs):
        assert np.mean(out == 0) == pytest.approx(rate, abs=0.016)
        np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=1e-6)
        assert out.mean() == pytest.approx(1.0, abs=0.03)
    np.testing.assert_array_equal(ours, x * scale)
    np.testing.assert_array_equal(dropout(x, 0.0, rng=1)[0], x)
    with pytest.raises(KerasdlError, match="rate"):
        dropout(x, 1.0)


def test_dropout_backward_is_the_derivative_with_the_same_mask():
    rng = np.random.default_rng(3)
    x, upstream = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    _, scale = dropout(x, 0.5, rng=7)
    h = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += h
        # The same seed draws the same mask, so this differentiates one dropout function.
        numeric[index] = np.sum(upstream * (dropout(shifted, 0.5, rng=7)[0]
                                            - dropout(x, 0.5, rng=7)[0])) / h
    np.testing.assert_allclose(dropout_backward(upstream, scale), numeric, atol=1e-6)
    assert 0 < np.count_nonzero(scale) < scale.size


def _numeric_gradient(f, w, h=1e-6):
    grad = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        plus, minus = w.copy(), w.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (f(plus) - f(minus)) / (2 * h)
    return grad


def test_l1_l2_penalties_equal_keras_regularizers_with_their_gradients():
    w = np.random.default_rng(0).normal(size=(4, 3))
    w[np.abs(w) < 1e-2] = 0.5  # L1 has a kink at 0, where differences do not apply
    l1_value, l1_grad = l1_penalty(w, 0.02)
    l2_value, l2_grad = l2_penalty(w, 0.03)
    assert l1_value == pytest.approx(float(keras.regularizers.L1(0.02)(w)), rel=1e-6)
    assert l2_value == pytest.approx(float(keras.regularizers.L2(0.03)(w)), rel=1e-6)
    assert l1_value + l2_value == pytest.approx(
        float(keras.regularizers.L1L2(l1=0.02, l2=0.03)(w)), rel=1e-6)
    np.testing.assert_allclose(l1_grad, _numeric_gradient(lambda v: l1_penalty(v, 0.02)[0], w),
                               atol=1e-6)
    np.testing.assert_allclose(l2_grad, _numeric_gradient(lambda v: l2_penalty(v, 0.03)[0], w),
                               atol=1e-6)
    with pytest.raises(KerasdlError, match="l2"):
        l2_penalty(w, -1.0)


# ------------------------------------------------------------------------------ DropConnect


def test_dropconnect_at_inference_is_dense_with_the_same_weights():
    x = np.random.default_rng(1).normal(size=(5, 7)).astype("float32")
    drop = DropConnect(4, rate=0.5, activation="tanh", seed=0)
    dense = keras.layers.Dense(4, activation="tanh")
    drop.build((None, 7))
    dense.build((None, 7))
    dense.set_weights(drop.get_weights())
    assert drop.count_params() == dense.count_params() == 7 * 4 + 4
    np.testing.assert_allclose(_numpy(drop(x)), _numpy(dense(x)), rtol=1e-6)
    np.testing.assert_allclose(_numpy(drop(x, training=False)), _numpy(dense(x)), rtol=1e-6)
    assert not np.allclose(_numpy(drop(x, training=True)), _numpy(dense(x)))


def test_dropconnect_training_drops_kernel_entries_and_matches_dense_in_expectation():
    """With one-hot rows as inputs and no bias, a training call returns the kernel it
    used; with rate p about p of its entries are zero, the others W / (1 - p), and the
    average over calls (and so the expected output, linear in the kernel) is Dense's."""
    n_in, units, rate, calls = 32, 16, 0.25, 200
    layer = DropConnect(units, rate=rate, use_bias=False, seed=5)
    extra = np.random.default_rng(2).normal(size=(4, n_in)).astype("float32")
    inputs = np.concatenate([np.eye(n_in, dtype="float32"), extra])
    layer.build((None, n_in))
    kernel = _numpy(layer.kernel)
    outputs = np.stack([_numpy(layer(inputs, training=True)) for _ in range(calls)])
    used = outputs[:, :n_in]  # (calls, n_in, units): each call's dropped kernel

    dropped = used == 0
    # 512 entries per call: the dropped fraction has standard deviation 0.019.
    assert dropped[0].mean() == pytest.approx(rate, abs=0.08)
    assert dropped.mean() == pytest.approx(rate, abs=0.01)
    np.testing.assert_allclose(used[~dropped], np.broadcast_to(kernel, used.shape)[~dropped]
                               / (1 - rate), rtol=1e-5)
    assert not np.array_equal(dropped[0], dropped[1])  # a fresh mask per call

    # Mean of `calls` draws of w m / (1 - p): standard error |w| sqrt(p / (1 - p) / calls).
    spread = math.sqrt(rate / (1 - rate) / calls)
    assert np.all(np.abs(used.mean(0) - kernel) <= 5 * spread * np.abs(kernel) + 1e-7)
    dense = extra @ kernel
    variance = rate / (1 - rate) * (extra ** 2) @ (kernel ** 2)
    assert np.all(np.abs(outputs[:, n_in:].mean(0) - dense)
                  <= 5 * np.sqrt(variance / calls))
    # The variance the "gaussian" inference rule assumes is the variance of the calls.
    ratio = outputs[:, n_in:].var(0, ddof=1) / variance
    assert ratio.mean() == pytest.approx(1.0, abs=0.15)


def test_dropconnect_gaussian_inference_matches_the_moment_matched_expectation():
    """For u ~ N(mu, s^2), E[relu(u)] = mu Phi(mu / s) + s phi(mu / s): the layer's
    average over samples of u converges to it, above relu(mu), the mean rule's answer."""
    rate, samples = 0.5, 20000
    x = np.random.default_rng(4).normal(size=(3, 10)).astype("float32")
    layer = DropConnect(6, rate=rate, activation="relu", inference="gaussian",
                        samples=samples, seed=2)
    out = _numpy(layer(x))
    kernel, bias = layer.get_weights()
    mu = x @ kernel + bias
    s = np.sqrt(rate / (1 - rate) * (x ** 2) @ (kernel ** 2))
    z = mu / s
    phi = np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    expected = mu * cdf + s * phi
    tolerance = 4 * s / math.sqrt(samples)  # relu(u) varies less than u
    assert np.all(np.abs(out - expected) <= tolerance)
    above = expected - np.maximum(mu, 0) > 3 * tolerance  # units near relu's kink
    assert above.sum() >= 3 and np.all(out[above] > np.maximum(mu, 0)[above])


def test_dropconnect_config_round_trip_and_keras_file(tmp_path):
    layer = DropConnect(8, rate=0.4, inference="gaussian", samples=7, seed=3,
                        activation="relu", name="dc")
    config = layer.get_config()
    clone = DropConnect.from_config(config)
    assert clone.get_config() == config
    assert (clone.rate, clone.inference, clone.samples, clone.seed) == (0.4, "gaussian", 7, 3)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is DropConnect

    model = keras.Sequential([keras.Input((5,)), DropConnect(8, rate=0.4, seed=3, name="dc"),
                              keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    path = str(tmp_path / "dropconnect.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("dc")) is DropConnect
    assert loaded.get_layer("dc").rate == 0.4
    for ours, theirs in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs, argument", [
    ({"rate": 1.0}, "rate"), ({"rate": -0.1}, "rate"), ({"inference": "sample"}, "inference"),
    ({"samples": 0}, "samples"),
])
def test_dropconnect_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(KerasdlError, match=argument) as raised:
        DropConnect(4, **kwargs)
    assert raised.value.argument == argument


# ------------------------------------------------------------------------- magnitude pruning


def test_magnitude_prune_reaches_the_exact_sparsity_per_layer_and_globally():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(10, 10)), 10 * rng.normal(size=(50,))
    pruned, masks = magnitude_prune([small, large], 0.3)
    assert [int(np.sum(~m)) for m in masks] == [30, 15]
    for w, p, m in zip([small, large], pruned, masks):
        np.testing.assert_array_equal(p, np.where(m, w, 0))
        assert np.abs(w[~m]).max() <= np.abs(w[m]).min()  # the smallest went

    pruned, masks = magnitude_prune([small, large], 0.3, scope="global")
    assert sum(int(np.sum(~m)) for m in masks) == 45
    assert zero_fraction(pruned) == pytest.approx(0.3)
    # One threshold for all: the ten times larger weights lose fewer.
    assert int(np.sum(~masks[1])) < 15 < int(np.sum(~masks[0]))
    threshold = max(np.abs(w[~m]).max() for w, m in zip([small, large], masks))
    assert all(np.abs(w[m]).min() >= threshold for w, m in zip([small, large], masks))

    single, mask = magnitude_prune(small, 0.5)
    assert isinstance(single, np.ndarray) and zero_fraction(single) == 0.5
    again, wider = magnitude_prune(single, 0.8)
    assert np.all(wider <= mask) and zero_fraction(again) == 0.8  # the old mask is kept
    assert zero_fraction(magnitude_prune(small, 1.0)[0]) == 1.0
    np.testing.assert_array_equal(magnitude_prune(small, 0.0)[0], small)
    with pytest.raises(KerasdlError, match="scope"):
        magnitude_prune(small, 0.5, scope="row")
    with pytest.raises(KerasdlError, match="sparsity"):
        magnitude_prune(small, 1.5)


def test_polynomial_sparsity_endpoints_formula_and_monotonicity():
    args = dict(begin=100, end=1100, initial=0.1, final=0.8)
    assert polynomial_sparsity(0, **args) == pytest.approx(0.1)
    assert polynomial_sparsity(100, **args) == pytest.approx(0.1)
    assert polynomial_sparsity(1100, **args) == pytest.approx(0.8)
    assert polynomial_sparsity(5000, **args) == pytest.approx(0.8)
    # Zhu & Gupta eq. 1 halfway: s_f + (s_i - s_f) (1 - 1/2)^3.
    assert polynomial_sparsity(600, **args) == pytest.approx(0.8 - 0.7 / 8)
    values = [polynomial_sparsity(t, **args) for t in range(0, 1200, 10)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    steps = [polynomial_sparsity(t, **args) - polynomial_sparsity(t - 100, **args)
             for t in (200, 600, 1100)]
    assert steps[0] > steps[1] > steps[2] > 0  # fast first, slow at the end
    linear = polynomial_sparsity(600, power=1, **args)
    assert linear == pytest.approx(0.45)
    for bad, argument in [({"end": 100}, "end"), ({"initial": 0.9}, "initial"),
                          ({"final": 1.0}, "final"), ({"begin": -1}, "begin")]:
        with pytest.raises(KerasdlError, match=argument):
            polynomial_sparsity(10, **{**args, **bad})


def _pruned_fit_check(refit=True):
    """Fits a small model with MagnitudePruning (end_step 10 of 16 steps), then once
    more: every kernel ends exactly 75% zero, and the zeros stay where they were while
    the kept weights go on training. Also run under JAX, where the callback must sync
    the trainer's state to see and change the weights."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), DropConnect(16, rate=0.2, seed=1,
                                                             activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    pruning = MagnitudePruning(0.75, end_step=10, begin_step=2, frequency=4)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[pruning], verbose=0, shuffle=False)
    assert [step for step, _ in pruning.history] == [2, 6, 10]
    assert [s for _, s in pruning.history] == sorted(s for _, s in pruning.history)
    assert pruning.history[-1][1] == pytest.approx(0.75)
    kernels = [_numpy(layer.kernel) for layer in model.layers]
    assert [zero_fraction(k) for k in kernels] == [0.75, 0.75]
    bias = _numpy(model.layers[0].bias)
    assert np.count_nonzero(bias) == bias.size  # biases are not pruned
    if not refit:
        return
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[pruning], verbose=0)
    assert len(pruning.history) == 3  # no pruning after end_step, only the mask
    for before, layer in zip(kernels, model.layers):
        after = _numpy(layer.kernel)
        np.testing.assert_array_equal(after == 0, before == 0)
        assert not np.allclose(after[after != 0], before[before != 0])


def test_magnitude_pruning_callback_holds_the_mask_through_training():
    _pruned_fit_check()


def test_magnitude_pruning_callback_checks_its_arguments():
    with pytest.raises(KerasdlError, match="end_step") as raised:
        MagnitudePruning(0.5, end_step=5, begin_step=5)
    assert raised.value.argument == "end_step"
    with pytest.raises(KerasdlError, match="final_sparsity"):
        MagnitudePruning(1.5, end_step=5)
    with pytest.raises(KerasdlError, match="frequency"):
        MagnitudePruning(0.5, end_step=5, frequency=0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Normalization()])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(KerasdlError, match="no kernel"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 3)), callbacks=[
            MagnitudePruning(0.5, end_step=5)], verbose=0)


def test_pruned_weights_compress_much_better():
    kernel = np.random.default_rng(0).normal(size=(256, 256)).astype("float32")
    pruned, _ = magnitude_prune(kernel, 0.9)
    dense_size, pruned_size = compressed_size(kernel), compressed_size(pruned)
    assert dense_size > 0.8 * kernel.nbytes  # random float32 hardly compress
    assert pruned_size < 0.3 * dense_size
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert compressed_size(model) == compressed_size(model.get_weights())
    with pytest.raises(KerasdlError, match="level"):
        compressed_size(kernel, level=10)
    with pytest.raises(KerasdlError, match="model_or_weights"):
        compressed_size("weights.keras")


# ------------------------------------------------------------------------ gradient clipping


@pytest.mark.parametrize("by, threshold, clip", [
    ("value", 0.5, clip_by_value),
    ("norm", 1.0, clip_by_norm),
    ("global_norm", 2.0, clip_by_global_norm),
])
def test_clipping_equals_one_sgd_step_with_the_optimizers_clipping(by, threshold, clip):
    """SGD at learning rate 1 from zero weights moves them by minus the clipped gradient."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)).astype("float32"),
             0.1 * rng.normal(size=(5,)).astype("float32")]  # the second under any norm
    variables = [keras.Variable(np.zeros(g.shape, "float32")) for g in grads]
    optimizer = keras.optimizers.SGD(1.0, **gradient_clipping(by, threshold))
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    applied = [-_numpy(v) for v in variables]
    ours = clip(grads, threshold)
    for a, b in zip(ours, applied):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(ours[0], grads[0])  # the clipping was active


def test_clipping_rules_keep_or_change_the_direction():
    g = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]  # norms 5 and 12, global 13
    np.testing.assert_allclose(clip_by_value(g, 1.0)[0], [1.0, 1.0])
    np.testing.assert_allclose(clip_by_norm(g, 1.0)[0], [0.6, 0.8])
    np.testing.assert_allclose(clip_by_norm(g, 100.0)[1], [0.0, 12.0])
    np.testing.assert_allclose(clip_by_global_norm(g, 1.3)[0], [0.3, 0.4])
    np.testing.assert_allclose(clip_by_global_norm(g, 1.3)[1], [0.0, 1.2])
    assert isinstance(clip_by_norm(np.array([3.0, 4.0]), 1.0), np.ndarray)
    with pytest.raises(KerasdlError, match="threshold"):
        clip_by_norm(g, 0.0)
