"""Custom CNN layers against independent references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl.errors import KerasdlError
from kerasdl.layers import LocalResponseNormalization, ZeroPadShortcut


def test_lrn_equals_tensorflows_formula():
    """Krizhevsky et al.'s k=2, n=5, alpha=1e-4, beta=0.75; TF's op takes the same sum."""
    x = np.random.default_rng(0).normal(0, 30, (2, 5, 5, 11)).astype("float32")
    expected = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4,
                                                  beta=0.75).numpy()
    got = keras.ops.convert_to_numpy(LocalResponseNormalization()(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(KerasdlError, match="depth"):
        LocalResponseNormalization(depth=4)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(8, 2)(x))
    assert y.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(y[..., 2:5], x[:, ::2, ::2, :])  # 5 zeros: 2 before, 3 after
    assert not y[..., :2].any() and not y[..., 5:].any()


def test_highway_gates_start_closed_so_the_input_is_carried():
    """Gate bias -2: T = sigmoid(-2) = 0.12 at the start, so a fresh highway layer passes
    about 88% of its input through (Srivastava et al. 2015, Sec. 2.2); with the gate
    forced open (+10) it is a plain layer and the input is not carried."""
    from kerasdl.layers import HighwayDense

    x = np.random.default_rng(0).normal(size=(64, 32)).astype("float32")
    carried = HighwayDense(gate_bias=-2.0)
    y = keras.ops.convert_to_numpy(carried(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(carried.gate.bias), -2.0)
    plain = keras.ops.convert_to_numpy(HighwayDense(gate_bias=10.0)(x))
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]  # noqa: E731
    assert corr(x, y) > 0.9 > corr(x, plain)
