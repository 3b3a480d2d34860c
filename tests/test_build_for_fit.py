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
