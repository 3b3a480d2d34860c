"""Checks of custom layers, callbacks and losses that must hold on every Keras backend.

`scripts/test.sh` runs this module twice: with the TensorFlow pass and again in the JAX
pass next to the model contract (in-process there, cheaper than a JAX subprocess)."""

import keras
import numpy as np


def test_dropconnect_and_magnitude_pruning_train_on_this_backend():
    from tests.test_scratch_regularization import _pruned_fit_check

    _pruned_fit_check(refit=False)


def test_smoothed_crossentropy_on_this_backend():
    from kerasdl.losses import SmoothedSparseCrossentropy

    logits = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    labels = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    ours = SmoothedSparseCrossentropy(0.0, ignore_class=0)(labels, logits)
    reference = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0)(labels, logits)
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-6)
