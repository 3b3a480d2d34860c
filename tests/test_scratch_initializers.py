"""Initialisers from their variance formulas, next to keras.initializers, and the
depth behaviour each one is known for (Glorot & Bengio 2010; He et al. 2015)."""

import math

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.scratch import initializers as init

DENSE = (400, 600)         # fan_in 400, fan_out 600: the three modes all differ
CONV = (3, 3, 64, 96)      # fan_in 9 * 64 = 576, fan_out 9 * 96 = 864

# name -> (ours, Keras class, scale, mode, truncated normal?)
CASES = {
    "glorot_normal": (init.glorot_normal, keras.initializers.GlorotNormal, 1.0, "fan_avg", True),
    "glorot_uniform": (init.glorot_uniform, keras.initializers.GlorotUniform, 1.0, "fan_avg", False),
    "he_normal": (init.he_normal, keras.initializers.HeNormal, 2.0, "fan_in", True),
    "he_uniform": (init.he_uniform, keras.initializers.HeUniform, 2.0, "fan_in", False),
    "lecun_normal": (init.lecun_normal, keras.initializers.LecunNormal, 1.0, "fan_in", True),
}


def test_fans_follow_keras_convention():
    assert init.compute_fans(DENSE) == (400, 600)
    assert init.compute_fans(CONV) == (576, 864)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.target_variance(CONV, 2.0, "fan_in") == pytest.approx(2 / 576)
    assert init.target_variance(CONV, 1.0, "fan_avg") == pytest.approx(2 / (576 + 864))
    assert init.target_variance(DENSE, 1.0, "fan_out") == pytest.approx(1 / 600)


def test_truncation_constant_is_the_std_of_a_normal_cut_at_two_sigma():
    assert init.truncated_normal_std(2.0) == pytest.approx(init.KERAS_TRUNCATION_FACTOR, abs=1e-15)
    # and it is what sampling gives: a unit normal cut at +-2 has std 0.8796, not 1
    cut = init._truncated_normal(np.random.default_rng(0), (200_000,), 1.0)
    assert cut.std() == pytest.approx(0.8796, abs=0.004)


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("name", list(CASES))
def test_ours_and_keras_match_the_variance_formula(name, shape):
    ours, keras_cls, scale, mode, truncated = CASES[name]
    fan_in, fan_out = init.compute_fans(shape)
    n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / n
    # Bound of the support: +-sqrt(3 var) for uniform, 2 * sqrt(var) / 0.8796 for Keras'
    # truncated normal (a plain normal this large would reach ~4.5 sigma).
    bound = (2 * math.sqrt(variance) / init.KERAS_TRUNCATION_FACTOR if truncated
             else math.sqrt(3 * variance))
    samples = {"ours": ours(shape, seed=1),
               "keras": np.asarray(keras_cls(seed=1)(shape), dtype=np.float64)}
    # Relative standard error of a variance estimate is about sqrt(2 / N) <= 0.6 % here.
    for who, w in samples.items():
        assert w.shape == shape
        assert w.var() == pytest.approx(variance, rel=0.03), who
        assert abs(w.mean()) < 5 * math.sqrt(variance / w.size), who  # 5 standard errors
        assert np.abs(w).max() <= bound * (1 + 1e-6), who
        assert np.abs(w).max() > 0.98 * bound, who


def test_untruncated_normal_is_a_plain_normal():
    w = init.variance_scaling(DENSE, 2.0, "fan_in", "untruncated_normal", seed=0)
    assert w.var() == pytest.approx(2 / 400, rel=0.03)
    assert np.abs(w).max() > 3.5 * math.sqrt(2 / 400)


def test_seeded_draws_repeat():
    np.testing.assert_array_equal(init.he_normal((5, 7), seed=3), init.he_normal((5, 7), seed=3))
    assert not np.array_equal(init.he_normal((5, 7), seed=3), init.he_normal((5, 7), seed=4))


def test_course_formula_as_written_is_sqrt_n_times_he():
    r = init.course_he_reading(256, depth=50)
    assert r["he"]["variance"] == pytest.approx(2 / 256)
    assert r["he"]["relu_gain"] == pytest.approx(1.0)
    assert r["course_variance"]["variance"] == pytest.approx(0.125)      # 2 / sqrt(256)
    assert r["course_variance"]["relu_gain"] == pytest.approx(16.0)      # sqrt(256)
    assert r["course_variance"]["gain_over_depth"] == pytest.approx(16.0 ** 50)
    assert r["course_std"]["relu_gain"] == pytest.approx(2.0)
    w = init.course_he_normal((256, 256), seed=0)
    assert w.var() == pytest.approx(0.125, rel=0.03)


def _per_layer_factor(values):
    """Geometric mean of the layer-to-layer ratio."""
    return math.exp(np.diff(np.log(values)).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_he_keeps_signal_and_gradient_steady_over_50_layers(seed):
    p = init.propagate(depth=50, width=256, activation="relu", initializer="he",
                       batch=128, seed=seed)
    # First layer: Var[z] = 2, so Var[relu(z)] = 1 - 1/pi.
    assert p.preactivation[0] == pytest.approx(2.0, rel=0.1)
    assert p.activation[0] == pytest.approx(1 - 1 / math.pi, rel=0.1)
    for series in (p.activation, p.gradient):
        assert np.all(np.isfinite(series))
        # On average no drift; finite width lets the variance wander (a factor 2-7
        # over 50 layers at width 256, seeds 0-5), against 1e-15 for Glorot below.
        assert 0.95 < _per_layer_factor(series) < 1.05
        assert series.max() / series.min() < 10.0


def test_relu_glorot_halves_the_signal_per_layer():
    # fan_in = fan_out, so Glorot's Var[w] = 1/n: ReLU keeps half, 0.5 per layer.
    p = init.propagate(depth=50, width=128, activation="relu", initializer="glorot",
                       batch=128, seed=0)
    assert 0.4 < _per_layer_factor(p.activation) < 0.6
    assert p.activation[-1] < 1e-12 * p.activation[0]
    # the gradient fades the same way towards the input
    assert p.gradient[0] < 1e-12 * p.gradient[-1]


def test_tanh_with_small_weights_vanishes_both_ways():
    # tanh is linear near 0, so each layer multiplies by n * 0.01^2 = 0.0128 at n = 128.
    p = init.propagate(depth=50, width=128, activation="tanh", initializer="small",
                       batch=128, seed=0)
    assert _per_layer_factor(p.activation) == pytest.approx(128 * 1e-4, rel=0.15)
    assert p.activation[-1] < 1e-60
    assert p.gradient[0] < 1e-60


def test_sigmoid_gradients_vanish_even_with_glorot():
    # sigmoid' <= 1/4, so the backward factor is at most n Var[w] / 16 = 1/16.
    p = init.propagate(depth=20, width=128, activation="sigmoid", initializer="glorot",
                       batch=128, seed=0)
    assert _per_layer_factor(p.gradient[::-1]) < 1 / 16


def test_course_he_explodes_sqrt_n_per_layer_where_he_is_steady():
    p = init.propagate(depth=50, width=256, activation="relu", initializer="course_he",
                       batch=128, seed=0)
    assert _per_layer_factor(p.activation) == pytest.approx(16.0, rel=0.15)
    assert p.activation[-1] > 1e55
    assert p.gradient[0] > 1e55
    # as a deep linear check: He's 2/n doubles per layer without the ReLU halving
    lin = init.propagate(depth=20, width=128, activation="linear", initializer="he",
                         batch=64, seed=0)
    assert _per_layer_factor(lin.activation) == pytest.approx(2.0, rel=0.1)


def test_propagate_takes_a_callable_initializer():
    p = init.propagate(depth=3, width=16, batch=8,
                       initializer=lambda shape, rng: init.he_normal(shape, seed=rng))
    assert p.activation.shape == p.gradient.shape == p.weight_gradient.shape == (3,)
    grid = init.propagate_grid(("relu",), ("he", "glorot"), depth=2, width=8, batch=4)
    assert set(grid) == {("relu", "he"), ("relu", "glorot")}


@pytest.mark.parametrize("call, argument", [
    (lambda: init.compute_fans((3, 0)), "shape"),
    (lambda: init.compute_fans(()), "shape"),
    (lambda: init.variance_scaling((3, 3), mode="fan_mean"), "mode"),
    (lambda: init.variance_scaling((3, 3), distribution="normal"), "distribution"),
    (lambda: init.variance_scaling((3, 3), scale=0), "scale"),
    (lambda: init.he_normal((3, 3), seed="x"), "seed"),
    (lambda: init.propagate(activation="gelu"), "activation"),
    (lambda: init.propagate(initializer="zeros"), "initializer"),
    (lambda: init.propagate(depth=0), "depth"),
    (lambda: init.propagate(depth=2, width=4, initializer=lambda s, r: np.zeros((2, 2))),
     "initializer"),
    (lambda: init.course_he_reading(0), "fan_in"),
    (lambda: init.truncated_normal_std(-1), "bound"),
])
def test_bad_arguments_name_themselves(call, argument):
    with pytest.raises(KerasdlError) as err:
        call()
    assert err.value.argument == argument
