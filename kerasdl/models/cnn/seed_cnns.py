"""Keras versions of the two small CNNs the course notes show before LeNet.

* ``basic_cnn``: the Keras Sequential example of the lecture notes: one 3x3 convolution,
  one pooling, one hidden dense layer (693,962 parameters on 28x28x1 input).
* ``simple_cnn``: the PyTorch ``SimpleCNN`` of the interview notes, rebuilt layer for
  layer (3,199,106 parameters on 28x28x1 input). PyTorch flattens channels-first while
  Keras flattens channels-last, so porting its trained weights needs the rows of ``fc1``
  permuted; the counts and shapes are otherwise identical.

Both return logits (the Keras original ends in softmax; pass
``classifier_activation="softmax"`` to get that back).
"""

from __future__ import annotations

import keras

from kerasdl.heads import check_input_shape, check_num_classes, check_rate, classifier
from kerasdl.registry import register_model


@register_model(
    "basic_cnn",
    family="cnn",
    task="image_classification",
    paper="Course lecture notes (seed 001): the minimal Keras CNN for MNIST",
    reference_params={"Keras model.summary() of the seed's Sequential model": 693_962},
    default_input_shape=(28, 28, 1),
    test_kwargs={"input_shape": (12, 12, 1), "num_classes": 3},
    tags=("mnist", "seed"),
    description="Conv 32@3x3, max-pool, Dense 128, Dense out",
)
def basic_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    name="basic_cnn",
):
    """Conv2D(32, 3x3, ReLU, valid) -> MaxPool 2 -> Flatten -> Dense(128, ReLU) -> logits."""
    input_shape = check_input_shape(input_shape, min_size=4)
    check_num_classes(num_classes, include_top)
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="fc1")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    return keras.Model(inputs, x, name=name)


@register_model(
    "simple_cnn",
    family="cnn",
    task="image_classification",
    paper="Course interview notes (seed 002): PyTorch SimpleCNN for MNIST",
    reference_params={"PyTorch SimpleCNN parameter count in the seed": 3_199_106},
    default_input_shape=(28, 28, 1),
    test_kwargs={"input_shape": (8, 8, 1), "num_classes": 3},
    tags=("mnist", "seed"),
    description="Conv 32@5x5, Conv 64@5x5 (same), 2 pools, Dropout, Dense 1000, out",
)
def simple_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.25,
    name="simple_cnn",
):
    """Conv2D(32, 5x5, pad 2) -> pool -> Conv2D(64, 5x5, pad 2) -> pool -> Flatten ->
    Dropout(0.25) -> Dense(1000, ReLU) -> logits, as in the PyTorch original."""
    input_shape = check_input_shape(input_shape, min_size=4)
    check_num_classes(num_classes, include_top)
    check_rate(dropout_rate)
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # The original applies its dropout to the flattened features, before fc1.
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(1000, activation="relu", name="fc1")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, name="fc2")
    return keras.Model(inputs, x, name=name)
