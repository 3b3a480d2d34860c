"""Keras model -> TFLite (LiteRT) flatbuffer, in four numeric variants.

Uses Keras' own LiteRT exporter (``model.export(..., format="litert")``), which goes
Keras -> SavedModel -> ``TFLiteConverter``, and passes the quantisation settings through.
Only TFLite builtin ops are allowed, so every artifact runs on the plain LiteRT runtime of
a phone, without the Flex (select TF ops) delegate.
"""

from __future__ import annotations

import os

import numpy as np

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
VARIANT_NOTES = {
    "float32": "no quantisation",
    "float16": "weights stored as float16, computed in float32",
    "dynamic_range": "weights int8, activations quantised on the fly",
    "int8": "full integer: weights and activations int8, int8 input and output",
}


def _converter_kwargs(variant, representative_images, per_channel=True):
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float32":
        return {"target_spec": {"supported_ops": builtins}}
    kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if variant == "float16":
        kwargs["target_spec"] = {"supported_ops": builtins, "supported_types": [tf.float16]}
    elif variant == "dynamic_range":
        kwargs["target_spec"] = {"supported_ops": builtins}
    else:
        if representative_images is None or len(representative_images) == 0:
            raise ValueError(
                "variant='int8' needs representative_images: a few hundred preprocessed "
                "training inputs to calibrate activation ranges"
            )
        images = np.asarray(representative_images, dtype="float32")

        def representative_dataset():
            for i in range(len(images)):
                yield [images[i : i + 1]]

        kwargs["representative_dataset"] = representative_dataset
        kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
        kwargs["inference_input_type"] = tf.int8
        kwargs["inference_output_type"] = tf.int8
        if not per_channel:
            # One scale per weight tensor instead of one per output channel. On a tiny
            # model the per-channel scales and zero points are a visible share of the
            # file (LeNet-5: 5.5 KiB of 77 KiB); on depthwise convolutions (MobileNet)
            # per-tensor scales cost accuracy, hence per-channel by default.
            kwargs["_experimental_disable_per_channel"] = True
    return kwargs


def convert_to_tflite(
    model, path, variant="float32", representative_images=None, per_channel=True
):
    """Write ``model`` as a ``.tflite`` file at ``path`` (which must end in .tflite).

    ``variant`` is one of ``VARIANTS``; ``"int8"`` needs ``representative_images``
    (preprocessed inputs from the *training* split) and quantises weights per output
    channel unless ``per_channel=False``. Returns the file size in bytes. The batch
    dimension is exported as dynamic; LiteRT resizes it at run time.
    """
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"path must end with '.tflite', got {path!r}")
    kwargs = _converter_kwargs(variant, representative_images, per_channel)
    model.export(path, format="litert", verbose=False, **kwargs)
    return os.path.getsize(path)
