"""``kerasdl.train.build_for_fit``: the TensorFlow training step is traced once, and the
weights after training are the same as without it."""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.train import build_for_fit

pytestmark = pytest.mark.skipif(keras.config.backend() != "tensorflow",
                                reason="the double trace is TensorFlow's")


def _train(build_first, data_kind):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 10, 64)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16) if data_kind == "dataset" \
        else (x, y)
    traces = []
    step = model.train_step
    model.train_step = lambda batch: (traces.append(1), step(batch))[1]
    if build_first:
        build_for_fit(model, data)
        assert model.optimizer.built
    if data_kind == "dataset":
        history = model.fit(data, epochs=2, verbose=0)
    else:
        history = model.fit(*data, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return [w.copy() for w in model.get_weights()], history.history, len(traces)


@pytest.mark.parametrize("data_kind", ["dataset", "arrays"])
def test_one_trace_and_the_same_training(data_kind):
    weights, history, traces = _train(True, data_kind)
    assert traces == 1
    ref_weights, ref_history, _ = _train(False, data_kind)
    assert history == ref_history
    for a, b in zip(weights, ref_weights):
        np.testing.assert_array_equal(a, b)


def test_ragged_batches_are_left_to_fit():
    import tensorflow as tf

    model = kerasdl.create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ragged = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2], [3]])).batch(2)
    build_for_fit(model, ragged)
    assert not model.optimizer.built


def test_batches_of_different_lengths_are_traced_once():
    """Per-batch padded text: fit's step is traced for the dataset's element spec
    (length None), not once per batch width."""
    import tensorflow as tf

    model = kerasdl.create_model("seq2seq_luong", vocabulary_size=20,
                                 target_vocabulary_size=17, embedding_dim=8, units=6)
    model.compile(optimizer="adam", loss={"logits": keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0)})
    rng = np.random.default_rng(0)

    def batches():
        for width in (3, 7, 5, 9, 4, 6):
            ids = rng.integers(1, 17, (4, width)).astype("int32")
            yield (ids, ids), {"logits": ids}

    spec = tf.TensorSpec((None, None), tf.int32)
    data = tf.data.Dataset.from_generator(batches, output_signature=(
        (spec, spec), {"logits": spec}))
    traces = []
    step = model.train_step
    model.train_step = lambda batch: (traces.append(1), step(batch))[1]
    build_for_fit(model, data)
    model.fit(data, epochs=2, verbose=0)
    assert traces == [1]
