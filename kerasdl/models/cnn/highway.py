"""Highway networks (Srivastava, Greff, Schmidhuber, "Training Very Deep Networks", NIPS
2015), dense and convolutional, built from :mod:`kerasdl.layers.highway`.

* ``highway_mlp``: the paper's MNIST networks (Sec. 3.1, Fig. 1): a plain layer maps the
  784 pixels to 50 units, then ``depth`` highway layers of 50 units (ReLU), then the
  classifier; transform-gate biases start at -2. Depth 10 by default; 20, 50 and 100 are
  a setting away (``depth=100``).
* ``highway_cnn``: a convolutional highway network for 32x32 images. The paper's CIFAR
  networks follow FitNets with maxout units; kerasdl keeps the idea (3x3 highway
  convolutions, gate bias -2) in a simpler layout: per stage a plain 3x3 convolution
  sets the width, then ``layers_per_stage`` highway convolutions and 2x2 max pooling,
  then global average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import check_classifier_args, classifier
from kerasdl.layers.highway import HighwayConv2D, HighwayDense
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import Recipe

PAPER = "Srivastava, Greff, Schmidhuber, Training Very Deep Networks, NIPS 2015"


@dataclass(frozen=True)
class HighwayConfig:
    """Attributes:
        kind: "dense" (an MLP) or "conv".
        depth: highway layers of the MLP.
        units: width of the MLP.
        stage_filters: widths of the convolutional stages.
        layers_per_stage: highway convolutions per stage.
        gate_bias: initial transform-gate bias (negative: carry the input at first).
    """

    kind: str = "dense"
    depth: int = 10
    units: int = 50
    stage_filters: tuple = (32, 64, 128)
    layers_per_stage: int = 2
    gate_bias: float = -2.0

    def __post_init__(self):
        check_choice(self.kind, ("dense", "conv"), "kind")
        for n in (self.depth, self.units, self.layers_per_stage, *self.stage_filters):
            check_positive_int(n, "depth/units/layers_per_stage/stage_filters")


def build_highway(
    config=HighwayConfig(),
    input_shape=(28, 28, 1),
    num_classes=10,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="unit",
    features_only=False,
    name="highway",
):
    """A highway network from its settings row (see the module docstring); arguments
    as :func:`kerasdl.models.cnn.resnet.build_resnet`.

    ``features_only=True`` (convolutional networks only: the MLP has no feature maps)
    returns ``{"stride_S": map}``, the last map at each stride, as timm's
    ``features_only``: stage ``s``'s last highway convolution at stride ``2**(s - 1)``
    from 2 up, and the last stage's pooling at ``2**stages`` (strides 2, 4 and 8 for
    ``highway_cnn``)."""
    if features_only and config.kind == "dense":
        raise KerasdlError("features_only=True needs a convolutional highway network "
                           "(kind='conv'); the highway MLP has no feature maps",
                           argument="features_only")
    input_shape = check_classifier_args(
        input_shape, num_classes, include_top, dropout_rate,
        min_size=1 if config.kind == "dense" else 2 ** len(config.stage_filters))
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    if config.kind == "dense":
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(config.units, activation="relu", name="project")(x)
        for i in range(1, config.depth + 1):
            x = HighwayDense(gate_bias=config.gate_bias, name=f"highway{i}")(x)
    else:
        taps = FeatureTaps()
        for s, filters in enumerate(config.stage_filters, start=1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    kernel_initializer="he_normal", name=f"stage{s}_conv")(x)
            for i in range(1, config.layers_per_stage + 1):
                x = HighwayConv2D(3, gate_bias=config.gate_bias, name=f"stage{s}_highway{i}")(x)
            taps.record(x, 2 ** (s - 1))
            x = taps.record(keras.layers.MaxPooling2D(2, name=f"stage{s}_pool")(x), 2 ** s)
        if features_only:
            return keras.Model(inputs, taps.outputs(), name=name)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    return keras.Model(inputs, x, name=name)


register_family(
    build_highway,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("highway",),
    variants=[
        Variant(
            "highway_mlp", HighwayConfig(kind="dense", depth=10, units=50),
            description="Highway MLP (MNIST, Fig. 1): 784 -> 50, 10 highway layers of 50",
            reference_params={"hand count: 784x50 + 50 = 39,250; 10 x 2 x (50x50 + 50) = "
                              "51,000; 50x10 + 10 = 510": 90_760},
            test_kwargs={"input_shape": (8, 8, 1), "num_classes": 3, "depth": 3, "units": 6},
            # No spatial maps: the contract checks that features_only=True is refused.
            tags=("no_feature_maps",),
            default_dataset="mnist",
            recipe=Recipe(epochs=10, learning_rate=1e-3, notes="Adam, warm-up + cosine"),
        ),
        Variant(
            "highway_cnn", HighwayConfig(kind="conv", stage_filters=(32, 64, 128),
                                         layers_per_stage=2),
            description="Convolutional highway network for 32x32 images: 3 stages of 2",
            reference_params={
                "hand count: stage convs 896 + 18,496 + 73,856; highway convs "
                "2 x 2 x (9 x 32 x 32 + 32) + 2 x 2 x (9 x 64 x 64 + 64) + 2 x 2 x "
                "(9 x 128 x 128 + 128) = 36,992 + 147,712 + 590,336; 128x10 + 10": 869_578},
            defaults={"input_shape": (32, 32, 3), "input_scaling": "cifar10"},
            test_kwargs={"input_shape": (16, 16, 3), "num_classes": 3,
                         "stage_filters": (4, 8, 8), "layers_per_stage": 1},
            default_dataset="cifar10",
            tags=("cifar",),
            recipe=Recipe(epochs=30, learning_rate=1e-3, augmentation="cifar",
                          notes="ours, not the paper's: Adam, warm-up + cosine, CIFAR "
                                "shifts and flips"),
        ),
    ],
)
