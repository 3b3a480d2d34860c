"""One-to-many generation: a label in, its sentence out (conditional_lstm_lm on TREC),
and the decoders driving models of fixed input length as kerasdl train builds them."""

import os

import keras
import numpy as np
import pytest

from kerasdl.data.text import (END_ID, START_ID, load_conditional_language_modeling,
                               load_text_classification)
from kerasdl.decoding import greedy_decode, lm_step_fn, seq2seq_step_fn
from kerasdl.errors import KerasdlError

TFDS = os.environ.get("TFDS_DATA_DIR", "")
needs_trec = pytest.mark.skipif(not os.path.isdir(os.path.join(TFDS, "trec")),
                                reason="needs the offline TFDS text data")


@needs_trec
def test_labels_and_framed_sentences_line_up_with_the_classification_data():
    data = load_conditional_language_modeling("trec", vocabulary_size=500, sequence_length=8,
                                              max_examples=64)
    plain = load_text_classification("trec", vocabulary_size=500, sequence_length=8,
                                     max_examples=64, codec=data.codec)
    (labels, inputs), targets = data.arrays("test")
    words, classes = plain.arrays("test")
    assert labels.shape == (64, 1) and inputs.shape == targets.shape == (64, 8)
    assert list(labels[:, 0]) == list(classes)
    assert (inputs[:, 0] == START_ID).all()
    for w, x, y in zip(words, inputs, targets):
        n = min(int((w > 0).sum()), 7)  # seven words fit beside the start or end token
        assert list(x[1:n + 1]) == list(w[:n]) and list(y[:n]) == list(w[:n])
        assert y[n] == END_ID and not y[n + 1:].any()
        # The decoder input is the same frame one step earlier: [start] words [end] 0...
        assert list(x[n + 1:n + 2]) in ([END_ID], []) and not x[n + 2:].any()
    with pytest.raises(KerasdlError) as info:
        load_conditional_language_modeling("trec", codec=plain.codec.__class__(
            "word", ["", "[UNK]", "a", "b"], 8))
    assert info.value.argument == "codec"


@needs_trec
def test_the_label_steers_what_the_model_writes(tmp_path):
    from kerasdl.train import get_recipe, load_run, train

    recipe = get_recipe("conditional_lstm_lm").replace(
        epochs=12, learning_rate=1e-2, vocabulary_size=500, sequence_length=12)
    record = train("conditional_lstm_lm", "trec", output_dir=tmp_path, recipe=recipe,
                   max_examples=2000, model_kwargs={"embedding_dim": 32, "units": 64},
                   verbose=0)
    # The right label makes the test questions likelier than a wrong one.
    assert record["test_condition_gain_nats"] > 0.05
    model, record = load_run(tmp_path)
    names = record["class_names"]
    labels = np.arange(len(names))[:, None]
    ids = greedy_decode(seq2seq_step_fn(model, labels), np.full(len(names), START_ID), 12,
                        END_ID)
    first = {name: int(row[1]) for name, row in zip(names, ids)}
    from kerasdl.data.text import load_codecs

    vocabulary = load_codecs(tmp_path)["text"].vocabulary
    # TREC's question types: people are asked about with "who", numbers with "how".
    assert vocabulary[first["HUM"]] == "who" and vocabulary[first["NUM"]] == "how"


def test_step_functions_pad_prefixes_for_a_fixed_length_model():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(11, 4)(tokens)
    x = keras.layers.LSTM(5, return_sequences=True)(x)
    model = keras.Model(tokens, keras.layers.Dense(11)(x))
    prefix = np.array([[3, 4, 5]], dtype=np.int32)
    free = keras.Model(*(lambda t: (t, model.layers[-1](model.layers[2](model.layers[1](t)))))(
        keras.Input((None,), dtype="int32")))
    expected = keras.ops.convert_to_numpy(free(prefix))[:, -1]
    np.testing.assert_allclose(lm_step_fn(model)(prefix), expected, atol=1e-6)
    # Longer prefixes slide: the model sees their last six tokens.
    long = np.array([[1, 2, 3, 4, 5, 6, 7, 8]], dtype=np.int32)
    window = keras.ops.convert_to_numpy(model(long[:, -6:]))[:, -1]
    np.testing.assert_allclose(lm_step_fn(model)(long), window, atol=1e-6)

    source = keras.Input((1,), dtype="int32")
    s2s = keras.Model([source, tokens], model(tokens) + keras.layers.Embedding(3, 11)(source))
    step = seq2seq_step_fn(s2s, np.array([[1]]))
    assert step(prefix).shape == (1, 11)
    with pytest.raises(KerasdlError) as info:
        step(long)
    assert info.value.argument == "max_length"
