"""Named augmentation presets: the ``augmentation`` of a training recipe."""

from __future__ import annotations

import functools

import keras

from kerasdl.errors import KerasdlError

PRESETS = ("none", "shift", "affine", "cifar", "light", "strong", "digits", "digits_mild",
           "elastic", "binarize")

PRESET_DESCRIPTIONS = {
    "none": "no augmentation",
    "shift": "random translation by up to 2 px each way, bilinear (28-32 px digits)",
    "affine": "shift up to 2 px, rotation up to ~8 degrees, zoom up to 8% (Keras layers)",
    "cifar": "whole-pixel shifts up to 4 px (pad 4 + random crop) and horizontal flips "
             "(He et al. 2015, Sec. 4.2)",
    "light": "horizontal flips and whole-pixel shifts up to 1/16 of the size (photos)",
    "strong": "albumentations: random resized crop (50-100% of the area), horizontal flip, "
              "colour jitter (p=0.8), one cutout hole of 1/4-1/2 the side (p=0.5)",
    "digits": "Simard et al. (2003) elastic field (alpha 34, sigma 4 px) plus LeCun et al. "
              "(1998) affine maps: rotation 8 degrees, scale 8% per axis, shear 0.15, "
              "shift 2 px",
    "digits_mild": "the digits preset with a weaker elastic field (alpha 20): LeNet-5's "
                   "recipe, better than alpha 34 for its 20 epochs",
    "elastic": "Simard et al. (2003) elastic field only (alpha 34, sigma 4 px)",
    "binarize": "stochastic binarisation: each pixel 255 with probability intensity / 255, "
                "else 0, redrawn every epoch (Salakhutdinov & Murray 2008; for Bernoulli "
                "likelihoods)",
}


def _check_shape(image_shape):
    ok = isinstance(image_shape, (tuple, list)) and len(image_shape) >= 2 and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_shape[:2])
    if not ok:
        raise KerasdlError(f"image_shape must start with (height, width) positive ints, got "
                           f"{image_shape!r}", argument="image_shape")
    return int(image_shape[0]), int(image_shape[1])


def _is_albumentations(obj):
    return type(obj).__module__.split(".")[0] == "albumentations"


def make_augmentation(preset, image_shape, fill_value=0.0, seed=0):
    """Return a batch hook ``fn(images, labels) -> (images, labels)``, or None for "none".

    ``preset`` is one of :data:`PRESETS` (see :data:`PRESET_DESCRIPTIONS`), a list of
    Keras-layer transforms for :func:`kerasdl.augment.keras_pipeline` (names or
    ``(name, params)`` pairs), or an albumentations transform or Compose (for example
    from :func:`kerasdl.augment.compose`), run through the bridge.

    * ``"shift"``: random translation by up to 2 pixels each way (for 28-32 px digits).
    * ``"cifar"``: random whole-pixel translation by up to 4 pixels, the same as the CIFAR
      ResNets' zero padding by 4 and random 32x32 crop, and horizontal flips (He et al.
      2015, Sec. 4.2).
    * ``"affine"``: the same shift plus rotation up to about 8 degrees and zoom up to 8%,
      the kind of small distortions LeCun et al. (1998) added to reach 0.8% on MNIST.
    * ``"light"``, ``"strong"``: for photos; ``"digits"``, ``"elastic"``: Simard et al.'s
      (2003) elastic distortions (with LeCun et al.'s affine maps for ``"digits"``);
      ``"digits_mild"``: ``"digits"`` with a weaker elastic field (LeNet-5's recipe).
    Empty space is filled with ``fill_value`` (0: black, for raw pixels).

    The ``strong``, ``digits``, ``digits_mild`` and ``elastic`` hooks also have ``apply_to_dataset``,
    which the data loader uses so that augmentation stays reproducible under parallel
    calls (:mod:`kerasdl.augment.seeding`).
    """
    if isinstance(preset, (list, tuple)):
        from kerasdl.augment.keras_layers import keras_pipeline

        pipeline = keras_pipeline(list(preset), seed=seed, fill_value=fill_value)
        return _layer_hook(pipeline)
    if _is_albumentations(preset):
        from kerasdl.augment.bridge import AlbumentationsAugmentation

        return AlbumentationsAugmentation(preset, seed=seed)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise KerasdlError(
            f"augmentation preset must be one of {PRESETS} (or a list of transforms, or an "
            f"albumentations transform), got {preset!r}", argument="preset")
    if preset == "none":
        return None
    height, width = _check_shape(image_shape)
    if preset in ("shift", "affine", "cifar"):
        return _classic(preset, height, width, fill_value, seed)
    if preset == "light":
        return _light(height, width, fill_value, seed)
    if preset == "strong":
        return _strong(height, width, fill_value, seed)
    from kerasdl.augment.distortions import PRESET_DISTORTIONS, distort
    from kerasdl.augment.seeding import InGraphAugmentation

    if preset == "binarize":
        return InGraphAugmentation(binarize, seed=seed, name=preset)

    params = PRESET_DISTORTIONS[preset]
    fn = functools.partial(distort, **params, fill_value=float(fill_value))
    return InGraphAugmentation(fn, seed=seed, name=preset)


def binarize(images, seed):
    """Raw pixels [0, 255] -> 0 or 255, each pixel on with probability intensity / 255,
    drawn from the stateless ``seed`` (two int64)."""
    import tensorflow as tf

    draw = tf.random.stateless_uniform(tf.shape(images), seed=seed, dtype=images.dtype)
    return tf.where(draw < images / 255.0, tf.constant(255.0, images.dtype),
                    tf.constant(0.0, images.dtype))


def _layer_hook(pipeline):
    def augment(images, labels):
        return pipeline(images, training=True), labels

    augment.pipeline = pipeline
    return augment


def _classic(preset, height, width, fill_value, seed):
    # The first presets, kept exactly as published runs used them.
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
    return _layer_hook(keras.Sequential(layers, name=f"augment_{preset}"))


def _light(height, width, fill_value, seed):
    shift_y, shift_x = max(1, round(height / 16)), max(1, round(width / 16))
    layers = [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(shift_y / height, shift_x / width, seed=seed + 1,
                                       interpolation="nearest", fill_mode="constant",
                                       fill_value=float(fill_value)),
    ]
    return _layer_hook(keras.Sequential(layers, name="augment_light"))


def strong_transforms(height, width, fill_value=0.0):
    """The albumentations specs of the ``"strong"`` preset."""
    return [
        # Inception-style crops (Szegedy et al. 2015), kept to half the area or more
        # because small images have little to spare.
        ("RandomResizedCrop", {"size": (height, width), "scale": (0.5, 1.0), "p": 1.0}),
        ("HorizontalFlip", {"p": 0.5}),
        ("ColorJitter", {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3,
                         "hue": 0.05, "p": 0.8}),
        # Cutout (DeVries & Taylor 2017): one square-ish hole, half the side at most.
        ("CoarseDropout", {"num_holes_range": (1, 1), "hole_height_range": (0.25, 0.5),
                           "hole_width_range": (0.25, 0.5), "fill": float(fill_value),
                           "p": 0.5}),
    ]


def _strong(height, width, fill_value, seed):
    from kerasdl.augment.albu import compose
    from kerasdl.augment.bridge import AlbumentationsAugmentation

    return AlbumentationsAugmentation(compose(strong_transforms(height, width, fill_value)),
                                      seed=seed, output_size=(height, width), name="strong")


def describe_preset(preset):
    """One line on what a preset does."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise KerasdlError(f"preset must be one of {PRESETS}; got {preset!r}", argument="preset")
    return PRESET_DESCRIPTIONS[preset]

