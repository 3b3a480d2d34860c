"""Classify image files with a deployed ``.tflite`` model, as a phone app would: read the
images, run them through LiteRT, and name the top classes with their probabilities."""

from __future__ import annotations

import os

import numpy as np

from kerasdl.errors import KerasdlError, NotFoundError, check_positive_int

__all__ = ["load_images", "predict_images", "resolve_tflite", "format_prediction"]

_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def _image_size(input_shape):
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise KerasdlError(
            f"input_shape must be (height, width, channels), got {shape}; predict handles "
            "image models only",
            argument="input_shape",
        )
    height, width, channels = shape
    if channels not in _COLOR_MODES:
        raise KerasdlError(
            f"the model takes {channels} channels per pixel; predict reads images as 1 "
            "(grey), 3 (RGB) or 4 (RGBA) channels",
            argument="input_shape",
        )
    return height, width, channels


def load_images(paths, input_shape):
    """Image files as a float32 array ``[n, H, W, C]`` of raw pixel values in [0, 255].

    Each file is read with ``keras.utils.load_img`` (PIL: PNG, JPEG, BMP, GIF, ...),
    converted to grey when ``C == 1``, RGB when ``C == 3`` (alpha dropped) or RGBA when
    ``C == 4``, and brought to ``(H, W)`` by the rule training uses
    (``kerasdl.data``): an image no larger than that in both sides is padded with black,
    centred (an MNIST digit 28x28 for LeNet-5's 32x32), any other is resized with PIL's
    bilinear interpolation (aspect ratio not kept; PIL widens the filter when shrinking,
    so it smooths like an antialiased resize). A 16-bit grey image is brought down to
    [0, 255] (levels / 257, rounded) before any conversion. ``H`` or ``W`` None keeps
    the files' own size, which must then agree.

    A file that does not exist raises :class:`NotFoundError`, one that is not a readable
    image :class:`KerasdlError`, each naming the file.
    """
    height, width, channels = _image_size(input_shape)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise KerasdlError("paths must name at least one image file", argument="paths")
    target = None if height is None or width is None else (int(height), int(width))
    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise NotFoundError(f"no image file at {path}", argument="paths")
        try:
            img = _read_image(path, channels)
            pad = False
            if target is not None and img.size != (target[1], target[0]):
                pad = img.size[0] <= target[1] and img.size[1] <= target[0]
                if not pad:
                    img = img.resize((target[1], target[0]), _bilinear())
            x = np.asarray(img, dtype="float32")
            if pad:
                x = _pad_centred(x, target)
        except (OSError, ValueError, SyntaxError) as e:
            raise KerasdlError(f"{path} is not a readable image: {e}", argument="paths") from e
        if x.ndim == 2:
            x = x[..., None]
        images.append(x)
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        listed = ", ".join(f"{p} {im.shape[1]}x{im.shape[0]}" for p, im in zip(paths, images))
        raise KerasdlError(
            f"the model takes any image size, but one batch needs one size; got {listed}",
            argument="paths",
        )
    return np.stack(images).astype("float32")


def _pad_centred(x, target):
    """``x`` in a black ``target``-sized canvas, offset as ``tf.image.resize_with_crop_or_pad``."""
    height, width = target
    top, left = (height - x.shape[0]) // 2, (width - x.shape[1]) // 2
    canvas = np.zeros((height, width) + x.shape[2:], dtype=x.dtype)
    canvas[top:top + x.shape[0], left:left + x.shape[1]] = x
    return canvas


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I")  # 16-bit (or 32-bit) grey


def _read_image(path, channels):
    """The file as a PIL image with 8-bit grey, RGB or RGBA pixels."""
    import keras
    from PIL import Image

    with Image.open(path) as probe:  # reads the header only
        wide = probe.mode in _WIDE_MODES
    if not wide:
        return keras.utils.load_img(path, color_mode=_COLOR_MODES[channels])
    # PIL's convert() clips 16-bit values at 255 instead of scaling them: scale first.
    img = keras.utils.load_img(path, color_mode="grayscale")
    levels = np.asarray(img, dtype="float64") / 257.0  # 65535 -> 255
    img = Image.fromarray(np.clip(np.round(levels), 0, 255).astype("uint8"), "L")
    return img if channels == 1 else img.convert("RGB" if channels == 3 else "RGBA")


def _bilinear():
    from PIL import Image

    return Image.Resampling.BILINEAR if hasattr(Image, "Resampling") else Image.BILINEAR


def resolve_tflite(artifact, argument="artifact"):
    """The ``.tflite`` file to use for ``artifact``: the file itself, or the float32 file
    (``*_float32.tflite``) of an export folder or of a run folder's ``export/``."""
    from kerasdl.export.bench import find_artifacts

    path = os.path.abspath(os.fspath(artifact))
    files, _, _ = find_artifacts(path, argument=argument)
    if os.path.isfile(path):
        return path
    float32 = [f for f in files if f.endswith("_float32.tflite")]
    folder = os.path.dirname(files[0])
    if not float32:
        names = ", ".join(os.path.basename(f) for f in files)
        raise NotFoundError(
            f"{folder} has no *_float32.tflite file (it has {names}); pass the .tflite "
            "file to use",
            argument=argument,
        )
    if len(float32) > 1:
        names = ", ".join(os.path.basename(f) for f in float32)
        raise KerasdlError(f"{folder} has several float32 files ({names}); pass the one to use",
                           argument=argument)
    return float32[0]


def _softmax(logits):
    z = logits.astype("float64")
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def predict_images(artifact, paths, top=3, num_threads=None):
    """The ``top`` most likely classes of each image file, as ``[(label, probability)]``
    per image, best first.

    ``artifact`` is a ``.tflite`` classifier (raw pixels in, logits out; its input may be
    float32, uint8 or int8: the runner converts), or an export folder or run folder, whose
    ``*_float32.tflite`` is used. The images are read with :func:`load_images` at the
    model's input size, run as one batch, and the logits turned into probabilities with a
    softmax. Labels come from the file's metadata or a ``labels.txt`` beside it
    (:func:`kerasdl.export.metadata.read_labels`), else ``"class 7"``. ``top`` is clamped
    to the number of classes.
    """
    from kerasdl.export.metadata import read_labels
    from kerasdl.export.runtime import TFLiteRunner

    top = check_positive_int(top, "top")
    num_threads = check_positive_int(num_threads, "num_threads", allow_none=True)
    path = resolve_tflite(artifact)
    runner = TFLiteRunner(path, num_threads=num_threads)
    if len(runner.input_details) != 1 or len(runner.output_details) != 1:
        raise KerasdlError(
            f"{path} has {len(runner.input_details)} inputs and {len(runner.output_details)} "
            "outputs; predict needs an image classifier (one image in, logits out)",
            argument="artifact",
        )
    shape = runner.input_details[0]["shape"]
    if len(shape) != 4:
        raise KerasdlError(
            f"{path} takes inputs of shape {shape[1:]} per example; predict needs an image "
            "classifier with (height, width, channels) input",
            argument="artifact",
        )
    images = load_images(paths, shape[1:])
    logits = np.asarray(runner.predict(images))
    if logits.ndim != 2:
        raise KerasdlError(
            f"{path} outputs shape {logits.shape[1:]} per example; predict needs one logit "
            "per class",
            argument="artifact",
        )
    num_classes = logits.shape[1]
    labels = read_labels(path)
    if labels is not None and len(labels) != num_classes:
        raise KerasdlError(
            f"{path} has {num_classes} classes but its labels list {len(labels)}",
            argument="artifact",
        )
    if labels is None:
        labels = [f"class {i}" for i in range(num_classes)]
    top = min(top, num_classes)
    probs = _softmax(logits)
    results = []
    for p in probs:
        best = np.argsort(-p, kind="stable")[:top]
        results.append([(labels[i], float(p[i])) for i in best])
    return results


def _percent(p):
    """``91.2%``; a probability that is not exactly 1 or 0 never shows as 100.0% or 0.0%."""
    text = f"{100 * p:.1f}%"
    if text == "100.0%" and p < 1.0:
        return ">99.9%"
    if text == "0.0%" and p > 0.0:
        return "<0.1%"
    return text


def format_prediction(name, pairs):
    """``cat.png: cat 91.2%, dog 5.1%, frog 1.0%``."""
    return f"{name}: " + ", ".join(f"{label} {_percent(p)}" for label, p in pairs)
