"""The recurrent layers written from their equations against Keras' own layers."""

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.layers import ScratchGRU, ScratchLSTM, ScratchSimpleRNN

UNITS = 4
# Float32 round-off of the same arithmetic summed in another order stays near 1e-7; a
# wrong gate order or bias layout moves outputs by 1e-2 or more (checked below).
OUTPUT_TOL = 1e-6
GRADIENT_TOL = 1e-5

CASES = {
    "simple_rnn": (keras.layers.SimpleRNN, ScratchSimpleRNN, {}),
    "lstm": (keras.layers.LSTM, ScratchLSTM, {}),
    "gru_reset_after": (keras.layers.GRU, ScratchGRU, {"reset_after": True}),
    "gru_reset_before": (keras.layers.GRU, ScratchGRU, {"reset_after": False}),
}
STATES = {"simple_rnn": 1, "lstm": 2, "gru_reset_after": 1, "gru_reset_before": 1}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(3, 7, 5)).astype("float32")


def _pair(case, seed=0, **options):
    """A Keras layer with random weights (biases included, so that their layout is
    tested too) and its scratch twin."""
    keras_class, scratch_class, kwargs = CASES[case]
    reference = keras_class(UNITS, **kwargs, **options)
    reference.build((None, 7, 5))
    rng = np.random.default_rng(seed + 1)
    reference.set_weights([rng.normal(0, 0.5, w.shape).astype("float32")
                           for w in reference.get_weights()])
    return reference, scratch_class.from_keras(reference)


def _max_diff(a, b):
    a = a if isinstance(a, (list, tuple)) else [a]
    b = b if isinstance(b, (list, tuple)) else [b]
    assert len(a) == len(b)
    return max(float(np.max(np.abs(_np(p) - _np(q)))) for p, q in zip(a, b))


@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_keras(case, return_sequences, return_state):
    reference, scratch = _pair(case, return_sequences=return_sequences,
                               return_state=return_state)
    x = _inputs()
    expected, got = reference(x), scratch(x)
    if return_state:
        assert len(got) == 1 + STATES[case]
    assert _max_diff(expected, got) < OUTPUT_TOL


@pytest.mark.parametrize("case", CASES)
def test_initial_state_equals_keras(case):
    reference, scratch = _pair(case, return_sequences=True, return_state=True)
    rng = np.random.default_rng(5)
    states = [rng.normal(size=(3, UNITS)).astype("float32") for _ in range(STATES[case])]
    x = _inputs()
    expected = reference(x, initial_state=states)
    assert _max_diff(expected, scratch(x, initial_state=states)) < OUTPUT_TOL
    assert _max_diff(expected, scratch(x)) > 1e-3  # the states were used


@pytest.mark.parametrize("case", CASES)
def test_masked_steps_match_keras(case):
    """Masked steps carry the state; the output repeats the previous one, zeros before
    the first unmasked step (example 1 starts masked, example 2 ends masked).
    ``unroll=True``: Keras' JAX scan repeats the initial state there instead of zeros."""
    reference, scratch = _pair(case, return_sequences=True, return_state=True, unroll=True)
    mask = np.ones((3, 7), dtype=bool)
    mask[0, 3] = False
    mask[1, :2] = False
    mask[2, 4:] = False
    x = _inputs()
    states = [np.full((3, UNITS), 0.3, "float32")] * STATES[case]
    expected = reference(x, mask=mask, initial_state=states)
    got = scratch(x, mask=mask, initial_state=states)
    assert _max_diff(expected, got) < OUTPUT_TOL
    assert not np.any(_np(got[0])[1, :2])
    np.testing.assert_array_equal(_np(got[0])[2, 4:], np.repeat(_np(got[0])[2, 3:4], 3, 0))


def test_mask_flows_from_the_previous_layer():
    """A ``Masking`` layer's mask reaches the layer, as it reaches Keras' LSTM."""
    reference, scratch = _pair("lstm")
    x = _inputs()
    x[:, 5:] = 0.0
    masking = keras.layers.Masking(0.0)
    model = keras.Sequential([keras.Input((7, 5)), masking, scratch])
    assert _max_diff(reference(x[:, :5]), model(x)) < OUTPUT_TOL


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
@pytest.mark.parametrize("case", CASES)
def test_gradients_equal_keras(case):
    import tensorflow as tf

    reference, scratch = _pair(case, return_sequences=True)
    x = tf.constant(_inputs())
    probe = tf.constant(np.random.default_rng(9).normal(size=(3, 7, UNITS)), tf.float32)

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * probe)
        return tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])

    expected, got = gradients(reference), gradients(scratch)
    assert [tuple(g.shape) for g in got] == [tuple(g.shape) for g in expected]
    assert _max_diff(expected, got) < GRADIENT_TOL


def _swap_gate_blocks(weights, units, a, b):
    """The weights with gate blocks ``a`` and ``b`` exchanged along the last axis."""
    swapped = []
    for w in weights:
        w = w.copy()
        block_a = w[..., a * units:(a + 1) * units].copy()
        w[..., a * units:(a + 1) * units] = w[..., b * units:(b + 1) * units]
        w[..., b * units:(b + 1) * units] = block_a
        swapped.append(w)
    return swapped


@pytest.mark.parametrize("case, gates", [("lstm", (0, 1)), ("lstm", (2, 3)),
                                         ("gru_reset_after", (0, 1)),
                                         ("gru_reset_before", (1, 2))])
def test_tolerance_catches_a_wrong_gate_order(case, gates):
    """Reading the weights with two gates exchanged (i and f, c and o; z and r, r and h)
    misses the tolerance by orders of magnitude, so the equality above means something."""
    reference, scratch = _pair(case, return_sequences=True)
    scratch.set_weights(_swap_gate_blocks(reference.get_weights(), UNITS, *gates))
    x = _inputs()
    assert _max_diff(reference(x), scratch(x)) > 1e3 * OUTPUT_TOL


@pytest.mark.parametrize("case", CASES)
def test_fresh_layers_have_keras_weight_shapes_and_initial_biases(case):
    keras_class, scratch_class, kwargs = CASES[case]
    reference, scratch = keras_class(UNITS, **kwargs), scratch_class(UNITS, **kwargs)
    reference.build((None, 7, 5))
    scratch.build((None, 7, 5))
    assert [(w.path.split("/")[-1], tuple(w.shape)) for w in scratch.weights] == \
        [(w.path.split("/")[-1], tuple(w.shape)) for w in reference.weights]
    np.testing.assert_array_equal(_np(scratch.bias), _np(reference.cell.bias))


@pytest.mark.parametrize("case", CASES)
def test_keras_file_round_trip(case, tmp_path):
    _, scratch_class, kwargs = CASES[case]
    model = keras.Sequential([keras.Input((7, 5)),
                              scratch_class(UNITS, return_sequences=True, **kwargs),
                              keras.layers.Dense(1)])
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[0]
    assert type(layer) is scratch_class and layer.return_sequences
    assert layer.get_config() == model.layers[0].get_config()
    x = _inputs()
    np.testing.assert_array_equal(_np(loaded(x)), _np(model(x)))


def test_simple_rnn_activation_is_kept():
    reference = keras.layers.SimpleRNN(UNITS, activation="relu")
    reference.build((None, 7, 5))
    scratch = ScratchSimpleRNN.from_keras(reference)
    assert scratch.get_config()["activation"] == "relu"
    x = _inputs()
    assert _max_diff(reference(x), scratch(x)) < OUTPUT_TOL


def test_user_errors():
    with pytest.raises(KerasdlError, match="units"):
        ScratchLSTM(0)
    with pytest.raises(KerasdlError, match="keras.layers.LSTM"):
        ScratchLSTM.from_keras(keras.layers.GRU(UNITS))
    with pytest.raises(KerasdlError, match="not built"):
        ScratchLSTM.from_keras(keras.layers.LSTM(UNITS))
    relu = keras.layers.GRU(UNITS, activation="relu", go_backwards=True)
    relu.build((None, 7, 5))
    with pytest.raises(KerasdlError, match="go_backwards.*activation='relu'"):
        ScratchGRU.from_keras(relu)
    with pytest.raises(KerasdlError, match="known number of time steps"):
        ScratchGRU(UNITS)(keras.Input((None, 5)))
    with pytest.raises(KerasdlError, match=r"2 state\(s\) \(h, c\), got 1"):
        ScratchLSTM(UNITS)(_inputs(), initial_state=[np.zeros((3, UNITS), "float32")])
