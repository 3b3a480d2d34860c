"""Xception: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
CVPR 2017 (Fig. 5): an entry flow (two 3x3 convolutions, then three separable-conv
blocks with strided 1x1 shortcuts), a middle flow of eight residual blocks of three
728-wide separable convolutions, and an exit flow, 36 convolutions in all.

Separable convolution here is as the paper and keras.applications build it: a depthwise
3x3 convolution *then* a pointwise 1x1 (Keras' ``SeparableConv2D``), with no activation
in between. The course's "extreme Inception" describes the reverse order (1x1 first,
then a 3x3 per channel, the way an Inception module reduces channels first); the paper
(Sec. 2) notes that the order makes little difference once the modules are stacked, and
that the missing non-linearity in between is what matters (Fig. 10).

``xception`` has keras.applications' layer names and weights (its four shortcut
convolutions, unnamed there, are matched by position) and its input scaling
("symmetric", the "tf" mode), 299x299 input, 22,910,480 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import check_choice, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017"


@dataclass(frozen=True)
class XceptionConfig:
    """Attributes:
        stem_filters: the two entry convolutions (32, 64).
        entry_filters: widths of the three entry-flow blocks (128, 256, 728).
        middle_blocks: residual blocks of the middle flow (8).
        exit_filters: the exit block's two separable convolutions (728, 1024), then the
            last two separable convolutions (1536, 2048).
    """

    stem_filters: tuple = (32, 64)
    entry_filters: tuple = (128, 256, 728)
    middle_blocks: int = 8
    exit_filters: tuple = (728, 1024, 1536, 2048)

    def __post_init__(self):
        for n in (*self.stem_filters, *self.entry_filters, *self.exit_filters):
            check_positive_int(n, "filters")
        check_positive_int(self.middle_blocks, "middle_blocks")


def _sep_bn(x, filters, name, act_name=None):
    if act_name:
        x = keras.layers.Activation("relu", name=act_name)(x)
    x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _downsampling_block(x, filters, block, first_act=True):
    """Two separable convolutions and a 3x3/2 max pool, plus a strided 1x1 shortcut."""
    residual = keras.layers.Conv2D(filters[-1], 1, strides=2, padding="same", use_bias=False,
                                   name=f"block{block}_shortcut_conv")(x)
    residual = keras.layers.BatchNormalization(name=f"block{block}_shortcut_bn")(residual)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1",
                f"block{block}_sepconv1_act" if first_act else None)
    x = _sep_bn(x, filters[-1], f"block{block}_sepconv2", f"block{block}_sepconv2_act")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
    return keras.layers.Add(name=f"block{block}_add")([x, residual])


def build_xception(
    config=XceptionConfig(),
    input_shape=(299, 299, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="symmetric",
    features_only=False,
    name="xception",
):
    """Xception from its settings row; arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`.

    ``features_only=True`` returns ``{"stride_S": map}``, the last map at each stride, as
    timm's ``xception``: the second stem convolution (stride 2), the entry-flow blocks
    (4, 8), the middle flow's last block (16) and the last separable convolution (32).
    The valid stem convolutions leave the maps a few pixels short of the input size over
    the stride (147, 74, 37, 19 and 10 at 299x299)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=71)
    check_choice(pooling, POOLINGS, "pooling")
    c = config
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    for i, (filters, strides) in enumerate(zip(c.stem_filters, (2, 1)), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, use_bias=False,
                                name=f"block1_conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"block1_conv{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"block1_conv{i}_act")(x)
    taps.record(x, 2)
    for block, filters in enumerate(c.entry_filters, start=2):
        x = _downsampling_block(x, (filters,), block, first_act=block > 2)
        taps.record(x, 2 ** block)
    width = c.entry_filters[-1]
    for i in range(c.middle_blocks):
        block = 5 + i
        residual = x
        for j in (1, 2, 3):
            x = _sep_bn(x, width, f"block{block}_sepconv{j}", f"block{block}_sepconv{j}_act")
        x = keras.layers.Add(name=f"block{block}_add")([x, residual])
    taps.record(x, 16)
    exit_block = 5 + c.middle_blocks
    x = _downsampling_block(x, c.exit_filters[:2], exit_block)
    for j, filters in enumerate(c.exit_filters[2:], start=1):
        layer = f"block{exit_block + 1}_sepconv{j}"
        x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=layer)(x)
        x = keras.layers.BatchNormalization(name=f"{layer}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{layer}_act")(x)
    taps.record(x, 32)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


# Chollet 2017, Sec. 4.3: SGD, momentum 0.9, lr 0.045 decayed by 0.94 every 2 epochs,
# weight decay 1e-5; the paper gives no batch size or epoch count (asynchronous training
# on 60 GPUs), so batch and lr stay as published and the epochs are ours (100).
_RECIPE = paper_recipe(learning_rate=0.045, paper_batch=128, l2=1e-5, epochs=100,
                       warmup_epochs=1.0, notes="Chollet 2017, Sec. 4.3; 100 epochs ours")

register_family(
    build_xception,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("keras_applications", "separable"),
    recipe=_RECIPE,
    variants=[
        Variant("xception", XceptionConfig(),
                description="Xception: entry, 8 middle and exit flows of separable convs",
                reference_params={"keras.applications Xception; paper Table 3: 22.8M": 22_910_480},
                test_kwargs={"input_shape": (71, 71, 3), "num_classes": 3,
                             "stem_filters": (4, 8), "entry_filters": (8, 8, 16),
                             "middle_blocks": 1, "exit_filters": (16, 16, 16, 16)}),
    ],
)
