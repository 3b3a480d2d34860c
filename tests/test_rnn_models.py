"""The rnn family's behaviour beyond the contract: parameter bookkeeping against the
course's PyTorch models, attention that ignores padding, the biLM's directions, ELMo's
layer mix, and decoding a seq2seq model."""

import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError


def test_course_models_count_as_keras_and_pytorch_do():
    lstm = kerasdl.create_model("course_lstm")
    gru = kerasdl.create_model("course_gru")
    assert lstm.count_params() == 5_865 and gru.count_params() == 4_545
    # PyTorch's nn.LSTM keeps b_ih and b_hh (4 x 20 each) per layer: 80 more per layer.
    lstm_layers = [layer for layer in lstm.layers if layer.name.startswith("lstm")]
    assert len(lstm_layers) == 2
    assert lstm.count_params() + 2 * 4 * 20 == 6_025
    # Keras' GRU (reset_after=True) already stores the two biases, shape (2, 3 x units).
    assert gru.get_layer("gru1").get_weights()[2].shape == (2, 60)
    x = np.random.default_rng(0).normal(size=(3, 7, 10)).astype("float32")
    assert lstm(x).shape == (3, 5)


@pytest.mark.parametrize("name", ["seq2seq_bahdanau", "seq2seq_luong", "seq2seq_luong_dot"])
def test_attention_ignores_source_padding(name):
    model = kerasdl.create_model(name, vocabulary_size=30, target_vocabulary_size=25,
                                 embedding_dim=8, units=6)
    source = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    target = np.array([[2, 4, 6, 0], [2, 3, 0, 0]])
    out = model([source, target])
    weights = np.asarray(out["attention"])
    assert weights.shape == (2, 4, 5) and out["logits"].shape == (2, 4, 25)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.abs(weights[0, :, 3:]).max() < 1e-6  # padded source positions get nothing
    # Changing a padded source token changes nothing.
    other = source.copy()
    other[0, 4] = 0
    other[0, 3] = 0
    again = model([other, target])
    np.testing.assert_allclose(np.asarray(again["logits"]), np.asarray(out["logits"]), atol=1e-6)


def test_seq2seq_decodes_with_greedy_and_beam_search():
    from kerasdl.decoding import beam_search, greedy_decode, seq2seq_step_fn

    model = kerasdl.create_model("seq2seq_luong", vocabulary_size=30,
                                 target_vocabulary_size=25, embedding_dim=8, units=6)
    source = np.array([[5, 6, 7, 0], [8, 9, 10, 11]])
    step = seq2seq_step_fn(model, source)
    greedy = greedy_decode(step, np.array([2, 2]), max_length=6, end_id=3)
    beam1 = beam_search(step, np.array([2, 2]), beam_width=1, max_length=6, end_id=3,
                        length_penalty=0.0)
    np.testing.assert_array_equal(greedy, beam1)
    assert greedy.shape[0] == 2 and (greedy[:, 0] == 2).all()


def test_bilm_directions_look_only_one_way():
    model = kerasdl.create_model("elmo_bilm", vocabulary_size=20, embedding_dim=6, units=6)
    x = np.random.default_rng(0).integers(1, 20, (2, 8))
    y = x.copy()
    y[:, 4] = y[:, 4] % 19 + 1
    a, b = model(x), model(y)
    forward_a, forward_b = np.asarray(a["forward"]), np.asarray(b["forward"])
    backward_a, backward_b = np.asarray(a["backward"]), np.asarray(b["backward"])
    assert np.abs(forward_a[:, :4] - forward_b[:, :4]).max() == 0  # the past only
    assert np.abs(forward_a[:, 4:] - forward_b[:, 4:]).max() > 0
    assert np.abs(backward_a[:, 5:] - backward_b[:, 5:]).max() == 0  # the future only
    assert np.abs(backward_a[:, :5] - backward_b[:, :5]).max() > 0


def test_elmo_layers_and_scalar_mix():
    import keras

    from kerasdl.models.rnn.elmo import ScalarMix, elmo_layers

    model = kerasdl.create_model("elmo_bilm", vocabulary_size=20, embedding_dim=6, units=6)
    x = np.random.default_rng(1).integers(1, 20, (2, 5))
    layers = elmo_layers(model, x)
    assert layers.shape == (2, 3, 5, 12)
    np.testing.assert_array_equal(layers[:, 0, :, :6], layers[:, 0, :, 6:])
    mix = ScalarMix()
    mixed = np.asarray(mix(keras.ops.convert_to_tensor(layers)))
    np.testing.assert_allclose(mixed, layers.mean(axis=1), atol=1e-6)  # s = 0: equal weights
    mix.s.assign(np.array([0.0, 0.0, 50.0], "float32"))
    np.testing.assert_allclose(np.asarray(mix(layers)), layers[:, 2], atol=1e-5)
    with pytest.raises(KerasdlError, match="elmo_bilm"):
        elmo_layers(kerasdl.create_model("lstm_classifier", vocabulary_size=20,
                                         embedding_dim=6, units=6), x)


def test_tagger_gives_one_distribution_per_token():
    model = kerasdl.create_model("bilstm_tagger", vocabulary_size=30, num_classes=5,
                                 embedding_dim=8, units=6)
    assert model(np.array([[3, 4, 5, 0]])).shape == (1, 4, 5)


def test_bilstm_max_pools_over_real_tokens_only():
    import keras

    from kerasdl.layers import MaskedGlobalMaxPooling1D

    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("bilstm_max_classifier", vocabulary_size=30, num_classes=2,
                                 embedding_dim=8, units=6)
    states = keras.Model(model.inputs, model.get_layer("rnn1_bilstm").output)
    pooled = keras.Model(model.inputs, model.get_layer("max_over_time").output)
    x = np.array([[3, 4, 5, 0, 0, 0]], dtype="int32")
    expected = np.asarray(states(x))[0, :3].max(axis=0)
    np.testing.assert_allclose(np.asarray(pooled(x))[0], expected, atol=1e-6)
    # Padding cannot win the maximum: some features stay negative, and more padding
    # changes nothing.
    assert expected.min() < 0
    longer = np.array([[3, 4, 5] + [0] * 9], dtype="int32")
    np.testing.assert_allclose(np.asarray(model(longer)), np.asarray(model(x)), atol=1e-6)
    # Without a mask it is a plain max; a row with no real step gives zeros.
    layer = MaskedGlobalMaxPooling1D()
    values = np.arange(12, dtype="float32").reshape(2, 3, 2) - 20
    np.testing.assert_array_equal(np.asarray(layer(values)), values.max(axis=1))
    ids = np.array([[7, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(layer([values, ids])),
                                  [values[0, 0], [0.0, 0.0]])
