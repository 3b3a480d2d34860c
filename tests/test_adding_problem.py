"""The adding problem's data and the gradient norms over time steps."""

import keras
import numpy as np
import pytest

from kerasdl.analysis import gradient_norms_by_time
from kerasdl.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from kerasdl.errors import KerasdlError


@pytest.mark.parametrize("length", [2, 7, 50])
def test_adding_problem_markers_and_targets(length):
    x, y = adding_problem(300, length, seed=3)
    assert x.shape == (300, length, 2) and x.dtype == np.float32
    assert y.shape == (300, 1) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1.0)
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1.0)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


def test_adding_problem_is_reproducible_and_uses_every_position():
    x, y = adding_problem(2000, 10, seed=1)
    again_x, again_y = adding_problem(2000, 10, seed=1)
    np.testing.assert_array_equal(x, again_x)
    np.testing.assert_array_equal(y, again_y)
    assert not np.array_equal(x, adding_problem(2000, 10, seed=2)[0])
    assert np.all(x[..., 1].sum(axis=0) > 0)  # each step is marked in some example


def test_predicting_the_mean_scores_the_baseline():
    _, y = adding_problem(50_000, 20)
    assert abs(np.mean((y - 1.0) ** 2) - ADDING_BASELINE_MSE) < 0.005
    assert ADDING_BASELINE_MSE == pytest.approx(0.1667, abs=1e-4)


@pytest.mark.parametrize("kwargs, argument", [
    ({"num_examples": 0, "length": 10}, "num_examples"),
    ({"num_examples": 10, "length": 1}, "length"),
    ({"num_examples": 10, "length": 10.0}, "length"),
    ({"num_examples": 10, "length": 10, "seed": -1}, "seed"),
    ({"num_examples": 10, "length": 10, "seed": True}, "seed"),
])
def test_adding_problem_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(KerasdlError) as raised:
        adding_problem(**kwargs)
    assert raised.value.argument == argument


def test_gradient_norms_by_time_end_where_the_output_stops_looking():
    """A model that reads only the last step gets exactly zero gradient before it."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((7, 2)), keras.layers.Cropping1D((6, 0)),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    x, y = adding_problem(16, 7)
    norms = gradient_norms_by_time(model, x, y)
    assert norms.shape == (7,)
    np.testing.assert_array_equal(norms[:6], 0.0)
    assert norms[6] > 0


def test_gradient_norms_by_time_are_each_examples_own_gradient():
    """For ``Dense(Flatten(x))`` and squared error the gradient is ``2 (p - y) W_t`` per
    example and step; a repeated batch gives the same norms, not half of them."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    x, y = adding_problem(8, 4)
    kernel = keras.ops.convert_to_numpy(model.layers[-1].kernel).reshape(4, 2)
    residual = keras.ops.convert_to_numpy(model(x)) - y
    expected = np.mean(np.abs(2 * residual), axis=0) * np.linalg.norm(kernel, axis=-1)
    norms = gradient_norms_by_time(model, x, y)
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    doubled = gradient_norms_by_time(model, np.concatenate([x, x]), np.concatenate([y, y]))
    np.testing.assert_allclose(doubled, norms, rtol=1e-5)


def test_gradient_norms_by_time_through_a_recurrent_layer():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 2)), keras.layers.SimpleRNN(8),
                              keras.layers.Dense(1)])
    x, y = adding_problem(32, 12)
    norms = gradient_norms_by_time(model, x, y, loss=keras.losses.MeanAbsoluteError())
    assert norms.shape == (12,) and np.all(np.isfinite(norms)) and np.all(norms > 0)
    with pytest.raises(KerasdlError, match="batch, time, features"):
        gradient_norms_by_time(model, x[0], y)
