"""Seeds drawn from ``(seed, epoch, stream)``, and the random streams of layers and
augmentation hooks, so that a run's randomness can be a function of the epoch alone
(see :mod:`kerasdl.train.reproducibility`)."""

from __future__ import annotations

import keras
import numpy as np

def epoch_seed(seed, epoch, stream=0):
    """A 31-bit seed mixed from ``(seed, epoch, stream)`` (splitmix64 finaliser): nearby
    inputs give unrelated seeds, so epochs and streams do not share random numbers."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9
         + int(stream) * 0x94D049BB133111EB + 0x632BE59BD9B4E019) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return int((z ^ (z >> 31)) & 0x7FFFFFFF)


def seed_generators(*objects):
    """The ``keras.random.SeedGenerator`` objects of layers, models and augmentation
    callables (one exposing ``seed_generators`` or a Keras ``pipeline``), in a fixed
    order, each once."""
    found, seen = [], set()

    def add(generator):
        if id(generator) not in seen:
            seen.add(id(generator))
            found.append(generator)

    def walk(obj):
        if obj is None:
            return
        if isinstance(obj, keras.random.SeedGenerator):
            add(obj)
            return
        explicit = getattr(obj, "seed_generators", None)
        if explicit is not None and not isinstance(obj, keras.layers.Layer):
            for g in (explicit() if callable(explicit) else explicit):
                walk(g)
            return
        if isinstance(obj, keras.layers.Layer):
            for layer in obj._flatten_layers(include_self=True, recursive=True):
                for g in getattr(layer, "_seed_generators", ()):
                    add(g)
            return
        walk(getattr(obj, "pipeline", None))

    for obj in objects:
        walk(obj)
    return found


def fold_seed(seed, *values):
    """A stateless-op seed pair (int64 ``[2]``) from an int ``seed`` and int tensors such
    as an epoch, a stream and a batch or example index, each of which changes the pair."""
    import tensorflow as tf

    pair = tf.constant([int(seed), 0], dtype=tf.int64)
    for value in values:
        pair = tf.random.experimental.stateless_fold_in(pair, tf.cast(value, tf.int64))
    return pair


def mix_seed(seed, *values):
    """In-graph counterpart of :func:`epoch_seed` for tensors (inside ``tf.data``): a
    scalar int64 seed from ``seed`` and int tensors such as the epoch and batch index."""
    import tensorflow as tf

    # stateless_fold_in(pair, v) returns [draw from pair, v]: its first element never
    # sees the last value, so fold once more before taking it.
    pair = tf.random.experimental.stateless_fold_in(fold_seed(seed, *values), 0)
    return tf.math.floormod(tf.cast(pair[0], tf.int64), tf.constant(2**31 - 1, tf.int64))
