"""Argument checks and the classifier head shared by every image-classification builder.

Output convention (everywhere in kerasdl): classifiers return **logits** unless
``classifier_activation`` is given ("softmax" for probabilities). Train logits with
``SparseCategoricalCrossentropy(from_logits=True)``.

Standard arguments mean the same in every builder: ``input_shape`` (height, width,
channels of raw pixels), ``num_classes``, ``include_top``, ``pooling``,
``classifier_activation``, ``dropout_rate`` (dropout just before the classifier layer),
``input_scaling`` (see :mod:`kerasdl.layers.preprocessing`) and ``name``. A builder checks
them once, with :func:`check_classifier_args`.
"""

from __future__ import annotations

import keras

from kerasdl.errors import KerasdlError, check_fraction


def check_input_shape(input_shape, *, min_size=1, channels=None, argument="input_shape"):
    """Validate an image ``(height, width, channels)`` shape; return it as a tuple."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise KerasdlError(
            f"{argument} must be (height, width, channels), got {input_shape!r}",
            argument=argument,
        )
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise KerasdlError(f"{argument} must hold three positive integers, got {input_shape!r}",
                           argument=argument)
    h, w, c = input_shape
    if h < min_size or w < min_size:
        raise KerasdlError(
            f"{argument}={tuple(input_shape)} is too small: this model needs height and "
            f"width of at least {min_size}",
            argument=argument,
        )
    if channels is not None and c not in channels:
        raise KerasdlError(f"{argument} must have {channels} channels, got {c}",
                           argument=argument)
    return tuple(input_shape)


def check_num_classes(num_classes, include_top=True):
    if include_top and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1
    ):
        raise KerasdlError(f"num_classes must be a positive integer, got {num_classes!r}",
                           argument="num_classes")
    return num_classes


def check_classifier_args(input_shape, num_classes, include_top, dropout_rate=0.0, *,
                          min_size=1, channels=None):
    """Check a classifier builder's standard arguments once; return ``input_shape``."""
    input_shape = check_input_shape(input_shape, min_size=min_size, channels=channels)
    check_num_classes(num_classes, include_top)
    check_fraction(dropout_rate, "dropout_rate")
    return input_shape


def classifier(x, num_classes, classifier_activation=None, dropout_rate=0.0, name="predictions"):
    """Optional dropout, then ``Dense(num_classes)`` logits, then the optional activation.

    The arguments are the builder's standard ones, already checked by
    :func:`check_classifier_args`.
    """
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(num_classes, name=name)(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name=f"{name}_{classifier_activation}")(x)
    return x


POOLINGS = (None, "avg", "max")


def pooled_head(x, *, include_top, pooling, num_classes, classifier_activation=None,
                dropout_rate=0.0):
    """The end of a convolutional classifier, as keras.applications names it: global
    average pooling (``avg_pool``) and the classifier (``predictions``) when
    ``include_top``; else the feature map, pooled by ``pooling`` (None, "avg", "max")."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def main_output_model(model):
    """The single-output network inside a training model whose output is a dict of heads
    (``{"predictions": main, "aux1": ...}``): the same layers and weights without the
    auxiliary heads. A single-output model is returned as is."""
    outputs = model.output
    if not isinstance(outputs, dict):
        return model
    if "predictions" not in outputs:
        raise KerasdlError(f"{model.name} has outputs {sorted(outputs)} but no "
                           "'predictions' head to keep", argument="model")
    return keras.Model(model.inputs, outputs["predictions"], name=model.name)
