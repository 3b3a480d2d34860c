"""Seeded, resumable randomness for training runs.

Every epoch's randomness is a function of the run's seed and the epoch number alone: the
shuffle order and the augmentation (the training pipeline counts its epochs, see
:func:`kerasdl.data.load_image_classification`) and the model's own random streams
(dropout, stochastic depth; :class:`EpochSeeds`). A run resumed at epoch ``k`` therefore
sees the batches an uninterrupted run would. ``deterministic=True`` also makes
TensorFlow's kernels deterministic and the augmentation run in order, so that two runs
with one seed, interrupted or not, end with identical weights.
"""

from __future__ import annotations

import keras
import numpy as np

from kerasdl.errors import KerasdlError
from kerasdl.seeds import epoch_seed, seed_generators  # noqa: F401 (re-exported)


class EpochSeeds(keras.callbacks.Callback):
    """Sets the model's random streams (dropout and the like) at the start of every
    epoch to states drawn from ``(seed, epoch, stream index)``, so that they do not
    depend on how many epochs this process has run."""

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_train_begin(self, logs=None):
        self._streams = seed_generators(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        for index, generator in enumerate(self._streams):
            generator.state.assign(np.array([epoch_seed(self.seed, epoch, index), 0],
                                            dtype=generator.state.dtype))


def resume_epoch(backup_dir):
    """The epoch a run resumes at from ``keras.callbacks.BackupAndRestore``'s folder
    (0 without one), read from the metadata Keras writes beside its checkpoint."""
    import json
    import os

    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        return int(json.load(f).get("epoch", 0))


def enable_determinism():
    """Make TensorFlow's kernels deterministic for the rest of the process (it cannot be
    undone; ops without a deterministic kernel then raise). Returns what was set."""
    import tensorflow as tf

    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError as err:  # pragma: no cover - TF older than 2.9
        raise KerasdlError("deterministic runs need TensorFlow 2.9 or newer",
                           argument="deterministic") from err
    return "tf.config.experimental.enable_op_determinism"
