"""The embedded offline dataset: scikit-learn's bundled 8x8 handwritten digits.

1,797 images (UCI "Optical Recognition of Handwritten Digits", 16 grey levels) ship inside
scikit-learn, so they are there on any machine with no network and no TFDS copy. They are
upscaled to 28x28 so that they enter the same pipeline as MNIST. They are far easier and
far fewer than MNIST: results on them say nothing about MNIST.
"""

from __future__ import annotations

import numpy as np

NAME = "digits"
DESCRIPTION = (
    "scikit-learn's bundled 8x8 digits (1,797 images, upscaled to 28x28), "
    "the embedded offline stand-in for MNIST"
)
# Deterministic 70/10/20 split of the 1,797 images.
SPLIT_FRACTIONS = {"train": (0.0, 0.7), "validation": (0.7, 0.8), "test": (0.8, 1.0)}


def load_digits_arrays(size=28, seed=0):
    """Return ``{split: (images uint8 [n, size, size, 1], labels int64 [n])}``."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype("float32") * (255.0 / 16.0)
    images = tf.image.resize(images[..., None], (size, size), method="bilinear").numpy()
    images = np.clip(np.round(images), 0, 255).astype("uint8")
    labels = bunch.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(labels))
    out = {}
    for split, (lo, hi) in SPLIT_FRACTIONS.items():
        idx = order[int(lo * len(order)) : int(hi * len(order))]
        out[split] = (images[idx], labels[idx])
    return out
