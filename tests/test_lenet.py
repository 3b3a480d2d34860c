"""LeNet-5 against the paper: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning
Applied to Document Recognition", Proc. IEEE 1998 (Section II-B, Table I, Appendix A)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.layers.lenet import (
    LENET5_C3_TABLE,
    ConnectionTableConv2D,
    ScaledTanh,
    TrainableSubsampling,
)

# Table I of the paper, as printed: row i = S2 map i, column j = C3 map j, X = connected.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def paper_connections():
    """Boolean (6, 16) matrix of Table I: [i, j] is True where S2 map i feeds C3 map j."""
    rows = PAPER_TABLE_I.split()
    return np.array([[c == "X" for c in row] for row in rows])


@pytest.fixture(scope="module")
def lenet():
    keras.utils.set_random_seed(0)
    return kerasdl.create_model("lenet5")


def test_c1_to_f6_hold_60000_parameters(lenet):
    # Section II-B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.
    per_layer = {n: lenet.get_layer(n).count_params() for n in ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert per_layer == {
        "c1": 6 * (5 * 5 * 1) + 6,
        "s2": 2 * 6,
        "c3": 60 * 5 * 5 + 16,
        "s4": 2 * 16,
        "c5": 120 * (5 * 5 * 16) + 120,
        "f6": 84 * 120 + 84,
    }
    assert sum(per_layer.values()) == 60_000


def test_layer_output_shapes_follow_the_paper(lenet):
    shapes = {n: tuple(lenet.get_layer(n).output.shape[1:]) for n in ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert shapes == {
        "c1": (28, 28, 6),
        "s2": (14, 14, 6),
        "c3": (10, 10, 16),
        "s4": (5, 5, 16),
        "c5": (1, 1, 120),
        "f6": (84,),
    }
    assert lenet.output_shape == (None, 10)


def test_full_c3_without_connection_table():
    model = kerasdl.create_model("lenet5", connection_table=False)
    assert model.get_layer("c3").count_params() == 6 * 16 * 5 * 5 + 16 == 2_416


def test_include_top_false_ends_at_f6():
    model = kerasdl.create_model("lenet5", include_top=False)
    assert model.output_shape == (None, 84)


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 31, 1)])
def test_input_smaller_than_32_raises(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        kerasdl.create_model("lenet5", input_shape=input_shape)


def test_c3_table_is_the_papers_table_one():
    from_code = np.zeros((6, 16), dtype=bool)
    for j, row in enumerate(LENET5_C3_TABLE):
        from_code[list(row), j] = True
    np.testing.assert_array_equal(from_code, paper_connections())
    assert paper_connections().sum() == 60


def test_c3_output_ignores_unconnected_input_maps(lenet):
    """Perturbing S2 map i changes exactly the C3 maps that Table I connects to i."""
    c3 = lenet.get_layer("c3")
    connected = paper_connections()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 14, 14, 6)).astype("float32")
    base = keras.ops.convert_to_numpy(c3(x))
    for i in range(6):
        bumped = x.copy()
        bumped[..., i] += rng.standard_normal((1, 14, 14)).astype("float32")
        delta = np.abs(keras.ops.convert_to_numpy(c3(bumped)) - base).max(axis=(0, 1, 2))
        for j in range(16):
            if connected[i, j]:
                assert delta[j] > 1e-3, f"C3 map {j} should depend on S2 map {i}"
            else:
                assert delta[j] == 0.0, f"C3 map {j} must not see S2 map {i} (Table I)"


def test_connection_table_conv_matches_masked_dense_convolution():
    """The layer equals an ordinary convolution whose kernel is zero off the table."""
    table = ((0,), (0, 1), (1, 2))
    layer = ConnectionTableConv2D(3, 2, table=table)
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.kernel)  # (2, 2, 5): one slice per connection
    bias = keras.ops.convert_to_numpy(layer.bias)
    full = np.zeros((2, 2, 3, 3), dtype="float32")
    c = 0
    for j, row in enumerate(table):
        for i in row:
            full[:, :, i, j] = kernel[:, :, c]
            c += 1
    expected = np.zeros((2, 3, 3, 3), dtype="float32")
    for r in range(3):
        for s in range(3):
            patch = x[:, r : r + 2, s : s + 2, :]
            expected[:, r, s, :] = np.einsum("bhwi,hwio->bo", patch, full) + bias
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_connection_table_rejects_bad_tables():
    with pytest.raises(ValueError, match="one row per filter"):
        ConnectionTableConv2D(2, 3, table=((0,),))
    with pytest.raises(ValueError, match="input maps outside"):
        ConnectionTableConv2D(1, 1, table=((3,),))(np.zeros((1, 2, 2, 2), "float32"))


def test_scaled_tanh_maps_one_to_one():
    f = ScaledTanh()
    y = keras.ops.convert_to_numpy(f(np.array([-1.0, 0.0, 1.0, 50.0], dtype="float32")))
    np.testing.assert_allclose(y[:3], [-1.0, 0.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(y[3], 1.7159, atol=1e-4)  # the amplitude A of Appendix A


def test_trainable_subsampling_starts_as_average_pooling():
    layer = TrainableSubsampling(pool_size=2)
    x = np.random.default_rng(2).standard_normal((2, 4, 6, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    window_sum = x.reshape(2, 2, 2, 3, 2, 3).sum(axis=(2, 4))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.coefficient), [0.25] * 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias), [0.0] * 3)
    np.testing.assert_allclose(y, 0.25 * window_sum, rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 2 * 3


def test_trainable_subsampling_is_sum_times_coefficient_plus_bias():
    layer = TrainableSubsampling(pool_size=2)
    x = np.random.default_rng(3).standard_normal((1, 4, 4, 2)).astype("float32")
    layer(x)
    layer.coefficient.assign(np.array([2.0, -0.5], dtype="float32"))
    layer.bias.assign(np.array([0.1, 1.0], dtype="float32"))
    y = keras.ops.convert_to_numpy(layer(x))
    window_sum = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4))
    expected = window_sum * np.array([2.0, -0.5]) + np.array([0.1, 1.0])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_lenet5_modern_is_relu_max_pool_full_c3():
    model = kerasdl.create_model("lenet5_modern")
    assert isinstance(model.get_layer("s2"), keras.layers.MaxPooling2D)
    assert isinstance(model.get_layer("c3"), keras.layers.Conv2D)
    assert model.get_layer("c1_act").get_config()["activation"] == "relu"
