"""DenseNet-BC: Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017, Table 1 (ImageNet): a 7x7/2 convolution (2k = 64 filters) and 3x3/2
max pooling, four dense blocks (growth rate k = 32, bottleneck 1x1 of 4k filters) joined
by transitions that halve the channels (compression 0.5) and the resolution.

``densenet121/169/201`` have keras.applications' layer names and weights
(:func:`kerasdl.models.load_keras_applications_weights`) and its input scaling
("imagenet" mean/std, its "torch" mode). keras.applications counts BatchNorm's moving
statistics as parameters; torchvision reports trainable weights only: both registered.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.blocks.dense import apply_dense_block, apply_transition
from kerasdl.errors import check_choice, check_fraction, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Huang, Liu, van der Maaten, Weinberger, Densely Connected Convolutional "
         "Networks, CVPR 2017")
EPSILON = 1.001e-5


@dataclass(frozen=True)
class DenseNetConfig:
    """Attributes:
        layers_per_block: dense layers in each of the dense blocks.
        growth_rate: k, the channels each dense layer adds.
        stem_filters: filters of the 7x7 stem convolution (2k in the paper).
        compression: share of channels a transition keeps (theta = 0.5 for "-BC").
    """

    layers_per_block: tuple = (6, 12, 24, 16)
    growth_rate: int = 32
    stem_filters: int = 64
    compression: float = 0.5

    def __post_init__(self):
        for n in (*self.layers_per_block, self.growth_rate, self.stem_filters):
            check_positive_int(n, "layers_per_block/growth_rate/stem_filters")
        check_fraction(self.compression, "compression", low=0.0, high=1.0, high_inclusive=True)


def build_densenet(
    config=DenseNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="imagenet",
    features_only=False,
    name="densenet",
):
    """A DenseNet-BC from its settings row. Arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`."""
    blocks = len(config.layers_per_block)
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=4 * 2 ** (blocks - 1))
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(config.stem_filters, 7, strides=2, use_bias=False,
                            kernel_initializer="he_normal", name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=EPSILON, name="conv1_bn")(x)
    x = taps.record(keras.layers.Activation("relu", name="conv1_relu")(x), 2)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    stride = 4
    for b, layers in enumerate(config.layers_per_block):
        x = apply_dense_block(x, layers, config.growth_rate, epsilon=EPSILON, name=f"conv{b + 2}")
        if b < blocks - 1:
            taps.record(x, stride)
            x = apply_transition(x, config.compression, epsilon=EPSILON, name=f"pool{b + 2}")
            stride *= 2
    x = keras.layers.BatchNormalization(epsilon=EPSILON, name="bn")(x)
    x = taps.record(keras.layers.Activation("relu", name="relu")(x), stride)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


def _row(depth, layers, keras_count, torchvision_count):
    return Variant(
        f"densenet{depth}",
        DenseNetConfig(layers_per_block=layers),
        description=f"DenseNet-{depth} (BC, k=32): dense blocks {'-'.join(map(str, layers))}",
        reference_params={
            f"keras.applications DenseNet{depth}": keras_count,
            f"torchvision densenet{depth} (trainable)": ParamCount(torchvision_count, True),
        },
    )


# Huang et al. 2017, Sec. 4.2: SGD with Nesterov momentum 0.9, batch 256, weight decay
# 1e-4, lr 0.1 divided by 10 at epochs 30 and 60, 90 epochs.
_RECIPE = paper_recipe(learning_rate=0.1, paper_batch=256, l2=1e-4, epochs=90,
                       nesterov=True, warmup_epochs=1.0, notes="Huang et al. 2017, Sec. 4.2")

register_family(
    build_densenet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("dense", "keras_applications"),
    recipe=_RECIPE,
    test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "growth_rate": 4,
                 "stem_filters": 8, "layers_per_block": (1, 2, 1, 1)},
    variants=[
        _row(121, (6, 12, 24, 16), 8_062_504, 7_978_856),
        _row(169, (6, 12, 32, 32), 14_307_880, 14_149_480),
        _row(201, (6, 12, 48, 32), 20_242_984, 20_013_928),
    ],
)
