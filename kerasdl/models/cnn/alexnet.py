"""AlexNet (Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012) and ZFNet (Zeiler & Fergus, "Visualizing and
Understanding Convolutional Networks", ECCV 2014; arXiv 2013), one builder.

AlexNet (Fig. 2, Sec. 3): conv1 96@11x11/4, LRN, overlapping 3x3/2 max pooling; conv2
256@5x5, LRN, pooling; conv3 384@3x3; conv4 384@3x3; conv5 256@3x3, pooling; FC 4096, FC
4096 (dropout 0.5 on both), FC 1000. LRN with k=2, n=5, alpha=1e-4, beta=0.75.
``alexnet`` is the single-tower model (62,378,344 parameters); ``alexnet_grouped``
keeps the paper's split across two GPUs as two-group convolutions in conv2, conv4 and
conv5 (60,965,224: the paper's "60 million").

Where kerasdl differs: the input is 227x227, not the 224x224 the paper states, because
only 227 gives the paper's 55x55 conv1 maps with an 11x11/4 valid convolution (a known
erratum). ZFNet: conv1 7x7/2 (padding 1) and conv2 5x5/2, with its pooling rounding up
(55 and 13 pixels as in its Fig. 3), single tower, LRN kept as in AlexNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import check_fraction, check_positive_int
from kerasdl.heads import check_classifier_args, classifier
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Krizhevsky, Sutskever, Hinton, ImageNet Classification with Deep Convolutional "
         "Neural Networks, NIPS 2012")
PAPER_ZF = "Zeiler, Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014"


@dataclass(frozen=True)
class AlexNetConfig:
    """Attributes:
        conv1_kernel, conv1_stride, conv1_padding: the first convolution (AlexNet 11/4/0,
            ZFNet 7/2/1).
        conv2_stride: stride of the 5x5 conv2 (AlexNet 1 with 'same' padding, ZFNet 2).
        groups: 2 splits conv2, conv4 and conv5 into two groups, as the paper's two GPUs.
        lrn: local response normalisation after conv1 and conv2.
        filters: conv1..conv5 filters.
        fc_units, fc_dropout_rate: the two hidden FC layers and their dropout (0.5).
    """

    conv1_kernel: int = 11
    conv1_stride: int = 4
    conv1_padding: int = 0
    conv2_stride: int = 1
    groups: int = 1
    lrn: bool = True
    filters: tuple = (96, 256, 384, 384, 256)
    fc_units: int = 4096
    fc_dropout_rate: float = 0.5

    def __post_init__(self):
        for n in (self.conv1_kernel, self.conv1_stride, self.conv2_stride, self.groups,
                  self.fc_units, *self.filters):
            check_positive_int(n, "AlexNetConfig")
        check_fraction(self.fc_dropout_rate, "fc_dropout_rate")


def build_alexnet(
    config=AlexNetConfig(),
    input_shape=(227, 227, 3),
    num_classes=1000,
    include_top=True,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="imagenet",
    features_only=False,
    name="alexnet",
):
    """AlexNet or ZFNet from its settings row; arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`.

    ``features_only=True`` returns ``{"stride_S": map}``, the last map at each stride, as
    timm's ``features_only``: AlexNet's conv1 (after norm1; stride 4, its 11x11/4 conv1
    skips stride 2), conv2 (after norm2; 8), conv5 (16) and pool5 (32); ZFNet's conv1 (2),
    pool1 (4), conv2 (8), conv5 (16) and pool5 (32). The valid convolutions and pooling
    leave each map a little smaller than the input size over the stride (AlexNet at
    227x227: 55, 27, 13 and 6 pixels)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=63)
    c = config
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    stride = c.conv1_stride
    if c.conv1_padding:
        x = keras.layers.ZeroPadding2D(c.conv1_padding, name="conv1_pad")(x)
    x = keras.layers.Conv2D(c.filters[0], c.conv1_kernel, strides=c.conv1_stride,
                            activation="relu", name="conv1")(x)
    if c.lrn:
        x = LocalResponseNormalization(name="norm1")(x)
    taps.record(x, stride)
    # ZFNet's maps (55, 13) need pooling that rounds up; AlexNet's overlapping pooling
    # divides exactly.
    pool_padding = "same" if c.conv2_stride > 1 else "valid"
    x = keras.layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool1")(x)
    stride *= 2
    taps.record(x, stride)
    conv2_padding = "valid" if c.conv2_stride > 1 else "same"
    x = keras.layers.Conv2D(c.filters[1], 5, strides=c.conv2_stride, padding=conv2_padding,
                            groups=c.groups, activation="relu", name="conv2")(x)
    if c.lrn:
        x = LocalResponseNormalization(name="norm2")(x)
    stride *= c.conv2_stride
    taps.record(x, stride)
    x = keras.layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool2")(x)
    stride *= 2
    # conv3 sees both towers (the paper's only cross-GPU convolution).
    for i, groups in ((3, 1), (4, c.groups), (5, c.groups)):
        x = keras.layers.Conv2D(c.filters[i - 1], 3, padding="same", groups=groups,
                                activation="relu", name=f"conv{i}")(x)
    taps.record(x, stride)
    x = taps.record(keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x), stride * 2)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for j in (6, 7):
            x = keras.layers.Dense(c.fc_units, activation="relu", name=f"fc{j}")(x)
            if c.fc_dropout_rate:
                x = keras.layers.Dropout(c.fc_dropout_rate, name=f"fc{j}_dropout")(x)
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    return keras.Model(inputs, x, name=name)


_TINY = {"filters": (4, 8, 8, 8, 8), "fc_units": 8}

# Krizhevsky et al. 2012, Sec. 5: SGD, batch 128, momentum 0.9, weight decay 5e-4, lr
# 0.01 divided by 10 when the validation error stopped improving (three times), about 90
# epochs; Zeiler & Fergus 2013 (Sec. 3) kept it for ZFNet (70 epochs).
_RECIPE = paper_recipe(learning_rate=0.01, paper_batch=128, l2=5e-4, epochs=90,
                       notes="Krizhevsky et al. 2012, Sec. 5")

register_family(
    build_alexnet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("classic",),
    recipe=_RECIPE,
    test_kwargs={"input_shape": (67, 67, 3), "num_classes": 3, **_TINY},
    variants=[
        Variant("alexnet", AlexNetConfig(),
                description="AlexNet, single tower: 5 conv (LRN, overlapping pooling) + 3 FC",
                reference_params={
                    "hand count of Fig. 2's layers in one tower: 34,944 + 614,656 + 885,120 "
                    "+ 1,327,488 + 884,992 + 37,752,832 + 16,781,312 + 4,097,000": 62_378_344}),
        Variant("alexnet_grouped", AlexNetConfig(groups=2),
                description="AlexNet as trained on two GPUs: conv2, conv4, conv5 in 2 groups",
                reference_params={
                    "Sec. 1: 60 million; single tower minus the cross-group kernels of conv2, "
                    "conv4, conv5: 62,378,344 - 307,200 - 663,552 - 442,368": 60_965_224},
                test_kwargs={"input_shape": (67, 67, 3), "num_classes": 3, **_TINY}),
        Variant("zfnet", AlexNetConfig(conv1_kernel=7, conv1_stride=2, conv1_padding=1,
                                       conv2_stride=2),
                paper=PAPER_ZF,
                description="ZFNet: AlexNet with a 7x7/2 first layer and a 5x5/2 conv2",
                reference_params={
                    "hand count of Fig. 3's layers: 14,208 + 614,656 + 885,120 + 1,327,488 "
                    "+ 884,992 + 37,752,832 + 16,781,312 + 4,097,000": 62_357_608},
                defaults={"input_shape": (224, 224, 3)}),
    ],
)
