"""The small CNNs the course notes show before LeNet, as rows of one plain-CNN builder.

* ``basic_cnn``: the Keras Sequential example of the lecture notes: one 3x3 convolution,
  one pooling, one hidden dense layer (693,962 parameters on 28x28x1 input).
* ``simple_cnn``: the PyTorch ``SimpleCNN`` of the interview notes, rebuilt layer for
  layer (3,199,106 parameters on 28x28x1 input); its ``fc2`` is our ``predictions``.
  PyTorch flattens channels-first while Keras flattens channels-last, so porting its
  trained weights needs the rows of ``fc1`` permuted; the counts and shapes are
  otherwise identical.

Both return logits (the Keras original ends in softmax; pass
``classifier_activation="softmax"`` to get that back).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.heads import check_classifier_args, classifier
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import Recipe


@dataclass(frozen=True)
class ConvLayer:
    """One ReLU convolution, followed by 2x2 max pooling."""

    filters: int
    kernel_size: int
    padding: str = "valid"

    def __post_init__(self):
        check_positive_int(self.filters, "filters")
        check_positive_int(self.kernel_size, "kernel_size")
        check_choice(self.padding, ("valid", "same"), "padding")


@dataclass(frozen=True)
class PlainCNNConfig:
    """Convolution + pooling stages, then one hidden dense layer.

    Attributes:
        conv_layers: the convolutions, in order; each is followed by 2x2 max pooling.
        hidden_units: units of the hidden ReLU dense layer.
        hidden_dropout_rate: dropout on the flattened features, before the hidden layer
            (the PyTorch SimpleCNN's place for it); the standard ``dropout_rate`` is
            dropout before the classifier, as in every builder.
    """

    conv_layers: tuple = (ConvLayer(32, 3),)
    hidden_units: int = 128
    hidden_dropout_rate: float = 0.0

    def __post_init__(self):
        if not self.conv_layers or not all(isinstance(c, ConvLayer) for c in self.conv_layers):
            raise KerasdlError("conv_layers must be a non-empty tuple of ConvLayer",
                               argument="conv_layers")
        check_positive_int(self.hidden_units, "hidden_units")
        check_fraction(self.hidden_dropout_rate, "hidden_dropout_rate")

    def min_input_size(self):
        size = 1
        for conv in reversed(self.conv_layers):
            size = size * 2 + (conv.kernel_size - 1 if conv.padding == "valid" else 0)
        return size


def build_plain_cnn(
    config=PlainCNNConfig(),
    input_shape=(28, 28, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="unit",
    features_only=False,
    name="plain_cnn",
):
    """[Conv(ReLU) -> MaxPool 2] x N -> Flatten -> [Dropout] -> Dense(ReLU) -> logits.

    ``features_only=True`` returns ``{"stride_S": map}`` instead, the last map at each
    stride: the i-th pooling's output, or the convolution after it, at stride ``2**i``
    (``basic_cnn``: ``stride_2`` only; ``simple_cnn``: conv2's maps at ``stride_2``, pool2's
    at ``stride_4``), as timm's ``features_only``. Other arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=config.min_input_size())
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    for i, conv in enumerate(config.conv_layers, start=1):
        x = keras.layers.Conv2D(conv.filters, conv.kernel_size, padding=conv.padding,
                                activation="relu", name=f"conv{i}")(x)
        taps.record(x, 2 ** (i - 1))
        x = taps.record(keras.layers.MaxPooling2D(2, name=f"pool{i}")(x), 2 ** i)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = keras.layers.Flatten(name="flatten")(x)
    if config.hidden_dropout_rate:
        x = keras.layers.Dropout(config.hidden_dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="fc1")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    return keras.Model(inputs, x, name=name)


_SEED_RECIPE = Recipe(epochs=5, learning_rate=1e-3,
                      notes="the seeds train these for a few epochs with Adam")

register_family(
    build_plain_cnn,
    family="cnn",
    task="image_classification",
    test_kwargs={"input_shape": (12, 12, 1), "num_classes": 3},
    tags=("mnist", "seed"),
    default_dataset="mnist",
    variants=[
        Variant(
            "basic_cnn",
            PlainCNNConfig(conv_layers=(ConvLayer(32, 3),), hidden_units=128),
            paper="Course lecture notes (seed 001): the minimal Keras CNN for MNIST",
            description="Conv 32@3x3, max-pool, Dense 128, Dense out",
            reference_params={"Keras model.summary() of the seed's Sequential model": 693_962},
            recipe=_SEED_RECIPE,
        ),
        Variant(
            "simple_cnn",
            PlainCNNConfig(
                conv_layers=(ConvLayer(32, 5, "same"), ConvLayer(64, 5, "same")),
                hidden_units=1000,
                hidden_dropout_rate=0.25,
            ),
            paper="Course interview notes (seed 002): PyTorch SimpleCNN for MNIST",
            description="Conv 32@5x5, Conv 64@5x5 (same), 2 pools, Dropout, Dense 1000, out",
            reference_params={"PyTorch SimpleCNN parameter count in the seed": 3_199_106},
            recipe=_SEED_RECIPE,
        ),
    ],
)
