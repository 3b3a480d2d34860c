"""Seeded batch augmentations usable as the ``augment`` hook of :mod:`kerasdl.data`.

How seeds flow (the same for the in-graph distortions and the albumentations bridge).
Every hook here computes a batch's augmentation from an explicit batch seed, through
:meth:`SeededAugmentation.augment_batch`; the ways that seed is chosen:

* :func:`kerasdl.data.load_image_classification` calls ``augment_batch`` with a seed
  mixed from ``(its seed, the epoch, the batch's index)``, attached before the parallel
  map: what a batch gets depends on those alone, never on which thread ran first, each
  epoch sees new augmentations, and a rerun (or a run resumed at epoch ``k``) sees the
  same ones.
* :meth:`SeededAugmentation.apply_to_dataset`, for a batched dataset of your own, zips
  in ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: also independent
  of thread scheduling, a fresh stream on each iteration (epoch), and epoch ``k`` of one
  run equals epoch ``k`` of a rerun (a global ``tf.random.set_seed`` enters the stream too).
* Called as a plain ``fn(images, labels)`` (an eager call, or a hand-written
  ``ds.map(augment)``), the batch seed comes from a ``tf.random.Generator`` seeded with
  ``seed``: reproducible for sequential calls, but parallel map calls may take the draws
  in any order.
"""

from __future__ import annotations

from kerasdl.errors import KerasdlError

__all__ = ["SeededAugmentation", "InGraphAugmentation"]


def _check_seed(seed):
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise KerasdlError(f"seed must be an int, got {seed!r}", argument="seed")
    return seed


class SeededAugmentation:
    """Base of the batch hooks: subclasses implement ``augment_batch(images, labels,
    seed)``, a function of the batch, the scalar int64 batch ``seed`` (tensor or int) and
    the hook's own ``seed``."""

    def __init__(self, seed=0, name=None):
        import tensorflow as tf

        self.seed = _check_seed(seed)
        self.name = name or type(self).__name__
        # Created now, eagerly: a generator (a variable) cannot be created while tf.data
        # traces the map function.
        with tf.init_scope():
            self._generator = tf.random.Generator.from_seed(seed)

    def augment_batch(self, images, labels, seed):
        raise NotImplementedError

    def __call__(self, images, labels):
        seed = self._generator.uniform_full_int([], dtype="int64")
        return self.augment_batch(images, labels, seed)

    def apply_to_dataset(self, dataset, num_parallel_calls=None):
        """Map a batched ``(images, labels)`` dataset, reproducibly under parallel calls."""
        import tensorflow as tf

        seeds = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip((dataset, seeds)).map(
            lambda batch, seed: self.augment_batch(batch[0], batch[1], seed),
            num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
        )

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed})"


class InGraphAugmentation(SeededAugmentation):
    """A batch hook from ``fn(images, stateless_seed) -> images`` in TensorFlow ops, such
    as :func:`kerasdl.augment.distortions.distort` with fixed parameters."""

    def __init__(self, fn, seed=0, name=None):
        super().__init__(seed, name)
        self.fn = fn

    def augment_batch(self, images, labels, seed):
        import tensorflow as tf

        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        # The hook's own seed enters too, so two hooks given one batch seed still differ.
        return self.fn(images, tf.stack([seed, tf.constant(self.seed, tf.int64)])), labels
