"""LeNet-5: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proceedings of the IEEE 86(11), 1998.

Layer sizes (Section II-B): input 32x32; C1 6@28x28 (5x5 conv); S2 6@14x14 (2x2
subsampling); C3 16@10x10 (5x5 conv, partial connections of Table I); S4 16@5x5; C5 120
(5x5 conv, i.e. fully connected to S4); F6 84; output 10. C1 to F6 hold 60,000 trainable
parameters: 156 + 12 + 1,516 + 32 + 48,120 + 10,164.

Where kerasdl differs from the paper, and why:

* Output layer. The paper's output is 10 Euclidean RBF units whose 84-dimensional centres
  are fixed, hand-drawn 7x12 bitmaps of the characters, trained with a MAP criterion.
  kerasdl uses a trainable ``Dense(num_classes)`` giving logits (850 parameters for ten
  classes) trained with softmax cross-entropy: the bitmaps are not published in usable
  form, and logits are what every other kerasdl classifier returns.
* Initialisation. The paper draws weights from U(-2.4/F, 2.4/F) (F = fan-in); kerasdl uses
  LeCun uniform, U(-sqrt(3/F), sqrt(3/F)) (unit-variance pre-activations, as in LeCun et
  al., "Efficient BackProp", 1998), for C1-F6. The output layer uses Keras' default
  Glorot uniform, like every kerasdl classifier head.
* Input. MNIST's 28x28 digits are padded by two pixels on each side to 32x32 by
  ``kerasdl.data`` (the model itself expects 32x32, as in the paper, and accepts larger
  inputs). The paper normalised pixels so that the background is -0.1 and ink 1.175;
  ``kerasdl.data``'s ``normalization="lenet"`` does that.
"""

from __future__ import annotations

import keras

from kerasdl.heads import check_input_shape, check_num_classes, check_rate, classifier
from kerasdl.layers.lenet import (
    LENET5_C3_TABLE,
    ConnectionTableConv2D,
    ScaledTanh,
    TrainableSubsampling,
)
from kerasdl.registry import register_model

PAPER = (
    "LeCun, Bottou, Bengio, Haffner, Gradient-Based Learning Applied to Document "
    "Recognition, Proc. IEEE 1998"
)
ACTIVATIONS = ("scaled_tanh", "relu", "tanh")
SUBSAMPLINGS = ("trainable", "max", "avg")
# C1..C5 shrink 32 -> 28 -> 14 -> 10 -> 5 -> 1.
MIN_INPUT_SIZE = 32


def _activation(x, activation, name):
    if activation == "scaled_tanh":
        return ScaledTanh(name=name)(x)
    return keras.layers.Activation(activation, name=name)(x)


def _subsample(x, kind, name):
    if kind == "trainable":
        return TrainableSubsampling(pool_size=2, name=name)(x)
    if kind == "max":
        return keras.layers.MaxPooling2D(2, name=name)(x)
    return keras.layers.AveragePooling2D(2, name=name)(x)


def build_lenet5(
    input_shape=(32, 32, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    activation="scaled_tanh",
    subsampling="trainable",
    connection_table=True,
    name="lenet5",
):
    """Generic LeNet-5 builder; :func:`lenet5` and :func:`lenet5_modern` are its two
    registered settings.

    Args:
        input_shape: (height, width, channels); height and width at least 32.
        num_classes: number of output logits.
        include_top: if False, the model ends at F6's 84 activations (a feature extractor).
        classifier_activation: None for logits (the kerasdl default) or e.g. "softmax".
        dropout_rate: dropout before the output layer (not in the paper; default 0).
        activation: "scaled_tanh" (paper: 1.7159 tanh(2x/3)), "relu" or "tanh".
        subsampling: "trainable" (paper: sum x coefficient + bias, then the activation),
            "max" or "avg" (plain pooling, no activation after it).
        connection_table: use the paper's partial C3 connections (Table I) instead of
            connecting every S2 map to every C3 map.
    """
    input_shape = check_input_shape(input_shape, min_size=MIN_INPUT_SIZE)
    check_num_classes(num_classes, include_top)
    check_rate(dropout_rate)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")

    inputs = keras.Input(shape=input_shape, name="image")
    init = "lecun_uniform"
    x = keras.layers.Conv2D(6, 5, kernel_initializer=init, name="c1")(inputs)
    x = _activation(x, activation, "c1_act")
    x = _subsample(x, subsampling, "s2")
    if subsampling == "trainable":
        x = _activation(x, activation, "s2_act")
    if connection_table:
        x = ConnectionTableConv2D(16, 5, table=LENET5_C3_TABLE, name="c3")(x)
    else:
        x = keras.layers.Conv2D(16, 5, kernel_initializer=init, name="c3")(x)
    x = _activation(x, activation, "c3_act")
    x = _subsample(x, subsampling, "s4")
    if subsampling == "trainable":
        x = _activation(x, activation, "s4_act")
    x = keras.layers.Conv2D(120, 5, kernel_initializer=init, name="c5")(x)
    x = _activation(x, activation, "c5_act")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(84, kernel_initializer=init, name="f6")(x)
    x = _activation(x, activation, "f6_act")
    if include_top:
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="output")
    return keras.Model(inputs, x, name=name)


@register_model(
    "lenet5",
    family="cnn",
    task="image_classification",
    paper=PAPER,
    reference_params={
        "LeCun et al. 1998, Sec. II-B: 60,000 in C1-F6, plus an 84x10 linear output "
        "in place of the fixed RBF layer": 60_850,
    },
    default_input_shape=(32, 32, 1),
    test_kwargs={"input_shape": (32, 32, 1), "num_classes": 3},
    tags=("classic", "mnist"),
    description="LeNet-5 as published: scaled tanh, trainable subsampling, partial C3",
)
def lenet5(
    input_shape=(32, 32, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    connection_table=True,
    name="lenet5",
):
    """LeNet-5 as published (scaled tanh, trainable subsampling, Table I's C3)."""
    return build_lenet5(
        input_shape, num_classes, include_top, classifier_activation, dropout_rate,
        activation="scaled_tanh", subsampling="trainable",
        connection_table=connection_table, name=name,
    )


@register_model(
    "lenet5_modern",
    family="cnn",
    task="image_classification",
    paper=PAPER,
    reference_params={
        "paper layer sizes with full C3 and an 84x10 output: "
        "156 + 2,416 + 48,120 + 10,164 + 850": 61_706,
    },
    default_input_shape=(32, 32, 1),
    test_kwargs={"input_shape": (32, 32, 1), "num_classes": 3},
    tags=("mnist",),
    description="LeNet-5 layer sizes with ReLU, max pooling and full C3",
)
def lenet5_modern(
    input_shape=(32, 32, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    name="lenet5_modern",
):
    """LeNet-5's layer sizes trained the way a 2020s CNN is: ReLU, max pooling, all
    S2 maps feeding every C3 map."""
    return build_lenet5(
        input_shape, num_classes, include_top, classifier_activation, dropout_rate,
        activation="relu", subsampling="max", connection_table=False, name=name,
    )
