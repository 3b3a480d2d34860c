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
