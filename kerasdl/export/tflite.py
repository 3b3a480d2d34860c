"""Keras model -> TFLite (LiteRT) flatbuffer, in four numeric variants.

Uses Keras' own LiteRT exporter (``model.export(..., format="litert")``), which goes
Keras -> SavedModel -> ``TFLiteConverter``, and passes the quantisation settings through.
Only TFLite builtin ops are allowed by default, so every artifact runs on the plain LiteRT runtime of
a phone, without the Flex (select TF ops) delegate.
"""

from __future__ import annotations

import os
import re

import numpy as np

from kerasdl.atomic import atomic_file, check_writable_target
from kerasdl.errors import KerasdlError, check_positive_int

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
VARIANT_NOTES = {
    "float32": "no quantisation",
    "float16": "weights stored as float16, computed in float32",
    "dynamic_range": "weights int8, activations quantised on the fly",
    "int8": "full integer: weights and activations int8",
}


INT8_IO = ("int8", "uint8", "float32")


def _converter_kwargs(variant, representative_images, per_channel=True, int8_io="int8",
                      select_tf_ops=False):
    import tensorflow as tf

    if variant not in VARIANTS:
        raise KerasdlError(f"variant must be one of {VARIANTS}, got {variant!r}",
                           argument="variant")
    if int8_io not in INT8_IO:
        raise KerasdlError(f"int8_io must be one of {INT8_IO}, got {int8_io!r}",
                           argument="int8_io")
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        builtins.append(tf.lite.OpsSet.SELECT_TF_OPS)
    if variant == "float32":
        return {"target_spec": {"supported_ops": builtins}}
    kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if variant == "float16":
        kwargs["target_spec"] = {"supported_ops": builtins, "supported_types": [tf.float16]}
    elif variant == "dynamic_range":
        kwargs["target_spec"] = {"supported_ops": builtins}
    else:
        if representative_images is None or len(representative_images) == 0:
            raise KerasdlError(
                "variant='int8' needs representative_images: a few hundred preprocessed "
                "training inputs to calibrate activation ranges",
                argument="representative_images",
            )
        # One array, or a list with one array per model input (in its input order).
        several = isinstance(representative_images, (list, tuple))
        arrays = [np.asarray(a) for a in (representative_images if several
                                          else [representative_images])]
        arrays = [a if np.issubdtype(a.dtype, np.integer) else a.astype("float32")
                  for a in arrays]

        def representative_dataset():
            for i in range(len(arrays[0])):
                yield [a[i : i + 1] for a in arrays]

        kwargs["representative_dataset"] = representative_dataset
        int8_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if select_tf_ops:
            int8_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        kwargs["target_spec"] = {"supported_ops": int8_ops}
        # "uint8" takes raw uint8 pixels in (scale 1, zero point 0 when the calibration
        # images span 0-255) and gives int8 out; "float32" keeps float input and output
        # around an int8 body, for apps that cannot (de)quantise themselves.
        io = {"int8": (tf.int8, tf.int8), "uint8": (tf.uint8, tf.int8),
              "float32": (tf.float32, tf.float32)}[int8_io]
        kwargs["inference_input_type"], kwargs["inference_output_type"] = io
        if not per_channel:
            # One scale per weight tensor instead of one per output channel. On a tiny
            # model the per-channel scales and zero points are a visible share of the
            # file (LeNet-5: 5.5 KiB of 77 KiB); on depthwise convolutions (MobileNet)
            # per-tensor scales cost accuracy, hence per-channel by default.
            kwargs["_experimental_disable_per_channel"] = True
    return kwargs


_UNSUPPORTED = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_LOCATION = re.compile(r'fused\["(\w+):", "([^"@]+)@')


def _layer_of(scope, model):
    """The model's layer named in a TF name scope like ``functional_1/conv_3/erfinv/Erfinv``
    (Keras appends ``_N`` to scopes of layers called more than once)."""
    names = {layer.name for layer in getattr(model, "_flatten_layers", lambda: [])()}
    for part in scope.split("/")[1:]:
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                return candidate
    return None


def explain_conversion_error(message, model, variant, select_tf_ops=False):
    """A one-paragraph explanation of a converter failure that names the unsupported
    TensorFlow ops, the layers that use them and the options that would help, or None
    when the message is not about unsupported ops."""
    ops = list(dict.fromkeys(_UNSUPPORTED.findall(message)))
    if not ops:
        return None
    where = {}
    for op, scope in _LOCATION.findall(message):
        layer = _layer_of(scope, model)
        if op in ops and layer:
            where.setdefault(op, []).append(layer)
    parts = []
    for op in ops:
        layers = list(dict.fromkeys(where.get(op, [])))
        parts.append(f"TensorFlow op {op}" + (f" in layer {', '.join(map(repr, layers))}"
                                             if layers else ""))
    head = f"TFLite conversion ({variant}) failed: {'; '.join(parts)}"
    if select_tf_ops:
        return (f"{head} is neither a TFLite builtin nor a Select TF op; replace the op "
                "with supported ones, or implement and register it as a TFLite custom op")
    return (
        f"{head} has no TFLite builtin kernel. Replace the op with supported ones, or "
        "convert with select_tf_ops=True (kerasdl export --select-tf-ops), which keeps it "
        "as a TensorFlow op where TensorFlow allows that: the app then needs the Flex "
        "delegate (a larger runtime), which the plain LiteRT interpreter lacks"
    )


_RNN_LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _rnn_layers(model):
    import keras

    found = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)):
            found.append(layer)
    return found


def with_sequence_length(model, length):
    """``model`` itself, or, when some input takes sequences of any length, a copy with
    the same weights whose such inputs are fixed at ``length`` steps. Runs trained on
    per-batch padded text build their models for any length; TFLite's unrolled
    recurrent layers need a fixed number of steps, and an app fills fixed-size buffers."""
    import keras

    def any_length(tensor):
        return len(tensor.shape) > 1 and tensor.shape[1] is None

    if not any(any_length(t) for t in model.inputs):
        return model
    length = check_positive_int(length, "sequence_length")
    inputs = [keras.Input((length if any_length(t) else t.shape[1],) + tuple(t.shape[2:]),
                          dtype=t.dtype, name=t.name) for t in model.inputs]
    copy = keras.models.clone_model(
        model, input_tensors=keras.tree.pack_sequence_as(model.input, inputs))
    copy.set_weights(model.get_weights())
    return copy


def unrolled_for_tflite(model):
    """``model`` itself, or, when it holds Keras recurrent layers, a copy with the same
    weights whose recurrent layers are unrolled over their (static) time steps.

    Keras 3's recurrent layers run a ``while`` loop over TensorArrays, which the TFLite
    converter cannot lower to builtin ops (``TensorListReserve ... element_shape``), and
    its TensorFlow implementation is not the tf.keras function the converter fuses into
    ``UNIDIRECTIONAL_SEQUENCE_LSTM``. Unrolled, each time step becomes plain builtin ops
    (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD; masks as SELECT_V2), so the file runs on
    the plain LiteRT runtime. It needs a fixed sequence length."""
    import keras

    layers = [layer for layer in _rnn_layers(model) if not layer.unroll]
    if not layers:
        return model
    for tensor in model.inputs:
        if len(tensor.shape) > 1 and tensor.shape[1] is None:
            raise KerasdlError(
                f"{model.name!r} has recurrent layers and input {tensor.name!r} of any "
                "length; TFLite needs them unrolled over a fixed number of steps: build the "
                "model with sequence_length=N", argument="model")

    def clone(layer):
        config = layer.get_config()
        if type(layer).__name__ in _RNN_LAYERS:
            config["unroll"] = True
        elif isinstance(layer, keras.layers.Bidirectional):
            for key in ("layer", "backward_layer"):
                if config.get(key):
                    config[key]["config"]["unroll"] = True
        return type(layer).from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    for layer in copy._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Bidirectional) and layer.return_sequences:
            # Keras' unrolled TensorFlow loop zeroes masked outputs of a go_backwards
            # layer with the mask in forward order while its outputs are still reversed
            # (keras 3.15, backend/tensorflow/rnn.py), zeroing real positions instead of
            # padding. Carrying the previous output there instead changes only masked
            # positions, which every later layer ignores.
            layer.backward_layer.zero_output_for_mask = False
    return copy


def convert_to_tflite(
    model, path, variant="float32", representative_images=None, per_channel=True,
    int8_io="int8", select_tf_ops=False, overwrite=False,
):
    """Write ``model`` as a ``.tflite`` file at ``path`` (which must end in .tflite).

    ``variant`` is one of ``VARIANTS``; ``"int8"`` needs ``representative_images``
    (preprocessed inputs from the *training* split), quantises weights per output
    channel unless ``per_channel=False``, and takes and returns ``int8_io`` tensors
    (``"int8"``, ``"uint8"`` input with int8 output, or ``"float32"``). Only TFLite
    builtin ops are allowed unless ``select_tf_ops=True``. Returns the file size in bytes.
    The batch dimension is exported as dynamic; LiteRT resizes it at run time.
    The file is written beside ``path`` and renamed into place: an existing file is
    replaced only with ``overwrite=True``, and a failed conversion leaves ``path`` as it
    was. One caused by unsupported ops raises a :class:`KerasdlError` naming the ops,
    their layers and the options.
    """
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise KerasdlError(f"path must end with '.tflite', got {path!r}", argument="path")
    check_writable_target(path, overwrite, "a TFLite file")
    kwargs = _converter_kwargs(variant, representative_images, per_channel, int8_io,
                               select_tf_ops)
    model = unrolled_for_tflite(model)
    with atomic_file(path, overwrite=overwrite) as tmp:
        try:
            model.export(tmp, format="litert", verbose=False, **kwargs)
        except Exception as err:
            explained = explain_conversion_error(str(err), model, variant, select_tf_ops)
            if explained is None:
                raise
            raise KerasdlError(explained, argument="select_tf_ops") from err
    return os.path.getsize(path)
