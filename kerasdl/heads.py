"""Argument checks and the classifier head shared by every image-classification builder.

Output convention (everywhere in kerasdl): classifiers return **logits** unless
``classifier_activation`` is given ("softmax" for probabilities). Train logits with
``SparseCategoricalCrossentropy(from_logits=True)``.
"""

from __future__ import annotations

import keras

def check_input_shape(input_shape, *, min_size=1, channels=None, argument="input_shape"):
    """Validate an image ``(height, width, channels)`` shape; return it as a tuple."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"{argument} must be (height, width, channels), got {input_shape!r}"
        )
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f"{argument} must hold three positive integers, got {input_shape!r}")
    h, w, c = input_shape
    if h < min_size or w < min_size:
        raise ValueError(
            f"{argument}={tuple(input_shape)} is too small: this model needs height and "
            f"width of at least {min_size}"
        )
    if channels is not None and c not in channels:
        raise ValueError(f"{argument} must have {channels} channels, got {c}")
    return tuple(input_shape)


def check_num_classes(num_classes, include_top=True):
    if include_top and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def check_rate(value, argument="dropout_rate"):
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{argument} must be a float in [0, 1), got {value!r}")
    return float(value)


def classifier(x, num_classes, classifier_activation=None, dropout_rate=0.0, name="predictions"):
    """Optional dropout, then ``Dense(num_classes)`` logits, then the optional activation."""
    check_rate(dropout_rate)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(num_classes, name=name)(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name=f"{name}_{classifier_activation}")(x)
    return x
