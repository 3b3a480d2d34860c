"""Augmentation presets usable as the ``augment`` hook of :mod:`kerasdl.data`.

Each preset is built from Keras preprocessing layers and runs in-graph on whole training
batches. (The albumentations pipelines of the augmentation chapter plug into the same hook.)
"""

from __future__ import annotations

import keras

from kerasdl.errors import KerasdlError

PRESETS = ("none", "shift", "affine", "cifar")


def make_augmentation(preset, image_shape, fill_value=0.0, seed=0):
    """Return ``fn(images, labels) -> (images, labels)`` for a preset, or None for "none".

    * ``"shift"``: random translation by up to 2 pixels each way (for 28-32 px digits).
    * ``"cifar"``: random whole-pixel translation by up to 4 pixels, the same as the CIFAR
      ResNets' zero padding by 4 and random 32x32 crop, and horizontal flips (He et al.
      2015, Sec. 4.2).
    * ``"affine"``: the same shift plus rotation up to about 8 degrees and zoom up to 8%,
      the kind of small distortions LeCun et al. (1998) added to reach 0.8% on MNIST.
    Empty space is filled with ``fill_value`` (0: black, for raw pixels).
    """
    if preset not in PRESETS:
        raise KerasdlError(f"augmentation preset must be one of {PRESETS}, got {preset!r}")
    if preset == "none":
        return None
    height, width = image_shape[0], image_shape[1]
    fill = {"fill_mode": "constant", "fill_value": float(fill_value)}
    shift = 4.0 if preset == "cifar" else 2.0
    # Nearest-neighbour sampling keeps CIFAR's shifts whole pixels, as a crop would be:
    # bilinear sampling at fractional offsets would also blur every training image.
    interpolation = "nearest" if preset == "cifar" else "bilinear"
    layers = [
        keras.layers.RandomTranslation(shift / height, shift / width, seed=seed,
                                       interpolation=interpolation, **fill),
    ]
    if preset == "cifar":
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    if preset == "affine":
        layers += [
            keras.layers.RandomRotation(8.0 / 360.0, seed=seed + 1, **fill),
            keras.layers.RandomZoom(0.08, seed=seed + 2, **fill),
        ]
    pipeline = keras.Sequential(layers, name=f"augment_{preset}")

    def augment(images, labels):
        return pipeline(images, training=True), labels

    return augment
