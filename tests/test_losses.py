"""Label-smoothed sparse cross-entropy against Keras' own losses."""

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.losses import SmoothedSparseCrossentropy, sparse_crossentropy
from kerasdl.train.recipes import Recipe


def _logits(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32") * 3


def test_equals_categorical_crossentropy_with_label_smoothing():
    logits = _logits((6, 9))
    labels = np.array([0, 3, 8, 2, 2, 5])
    ours = SmoothedSparseCrossentropy(0.1)(labels, logits)
    keras_ = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        keras.ops.one_hot(labels, 9), logits)
    np.testing.assert_allclose(float(ours), float(keras_), rtol=1e-6)
    # Smoothing changes the loss: the test can tell the two apart.
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert abs(float(ours) - float(plain)) > 1e-3


def test_without_smoothing_equals_sparse_crossentropy_ignoring_padding():
    logits = _logits((3, 7, 11), seed=1)
    labels = np.array([[4, 2, 9, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0], [3, 0, 0, 0, 0, 0, 0]])
    ours = SmoothedSparseCrossentropy(0.0, ignore_class=0)(labels, logits)
    keras_ = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)(
        labels, logits)
    np.testing.assert_allclose(float(ours), float(keras_), rtol=1e-6)


def test_padding_takes_no_part_with_smoothing():
    logits = _logits((2, 5, 8), seed=2)
    labels = np.array([[3, 1, 2, 0, 0], [5, 6, 0, 0, 0]])
    loss = SmoothedSparseCrossentropy(0.2, ignore_class=0)
    changed = logits.copy()
    changed[labels == 0] += 50.0  # padded positions' predictions must not matter
    np.testing.assert_allclose(float(loss(labels, logits)), float(loss(labels, changed)),
                               rtol=1e-6)
    # The mean runs over the five real tokens: recompute it by hand.
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = labels != 0
    nll = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    by_hand = (0.8 * nll - 0.2 * log_p.mean(-1))[real].mean()
    np.testing.assert_allclose(float(loss(labels, logits)), by_hand, rtol=1e-5)


def test_serialises_and_recipe_validates():
    loss = SmoothedSparseCrossentropy(0.1, ignore_class=0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.label_smoothing, again.ignore_class) == (0.1, 0)
    assert isinstance(sparse_crossentropy(0.0), keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(sparse_crossentropy(0.1), SmoothedSparseCrossentropy)
    with pytest.raises(KerasdlError, match="label_smoothing"):
        Recipe(label_smoothing=1.0)
    with pytest.raises(KerasdlError, match="label_smoothing"):
        SmoothedSparseCrossentropy(-0.1)


@pytest.mark.parametrize("task, ignore", [("image_classification", None),
                                          ("sequence_classification", None),
                                          ("seq2seq", 0), ("language_modeling", None)])
def test_tasks_train_with_the_recipes_label_smoothing(task, ignore):
    from kerasdl.tasks import get_task

    smoothed = get_task(task).compile_kwargs(None, Recipe(label_smoothing=0.1))["loss"]
    assert isinstance(smoothed, SmoothedSparseCrossentropy)
    assert (smoothed.label_smoothing, smoothed.ignore_class) == (0.1, ignore)
    plain = get_task(task).compile_kwargs(None, Recipe())["loss"]
    assert isinstance(plain, keras.losses.SparseCategoricalCrossentropy)


def test_transformer_recipe_smooths_as_the_paper():
    from kerasdl.registry import model_info

    assert model_info("transformer_small").recipe.label_smoothing == 0.1
