"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015
(arXiv 1409.4842), Table 1 and Fig. 3.

Nine Inception modules, each four parallel branches concatenated along channels: a 1x1
convolution; a 1x1 reduction then a 3x3; a 1x1 reduction then a 5x5; a 3x3/1 max pool
then a 1x1 projection. Every convolution is followed by ReLU. The stem is 7x7/2 conv,
3x3/2 max pool, LRN, 1x1 reduce + 3x3 conv, LRN, 3x3/2 max pool; max pools 3x3/2 sit
after 3b and 4e; the head is global average pooling (the paper's 7x7 average pool at
224x224), dropout 40% and a linear classifier: 6,998,552 parameters (6,990,272 weights
and 8,280 biases) with a 1000-class head.

Two **auxiliary classifiers** (Sec. 5) tap modules 4a and 4d during training: 5x5/3
average pool, 1x1 conv with 128 filters, a 1024-unit FC layer, 70% dropout, a linear
classifier. Their losses join the total with weight 0.3. ``aux_classifiers=True`` builds
the training model, whose output is ``{"predictions": main, "aux1": ..., "aux2": ...}``;
:func:`inference_model` cuts it down to the single-output network with the same layers
and weights, the model that is saved, evaluated and exported (the paper discards the
auxiliary networks at inference time).

Where this differs from the paper: LRN uses kerasdl's AlexNet LRN (the paper gives no
constants); convolutions and pools are "same"-padded so that 224 -> 112 -> 56 -> 28 -> 14
-> 7 as Table 1 lists.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import (
    POOLINGS,
    check_classifier_args,
    classifier,
    main_output_model,
    pooled_head,
)
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = "Szegedy et al., Going Deeper with Convolutions, CVPR 2015"

# Table 1: name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE_1 = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)

# The auxiliary classifiers' loss weight (Sec. 5); the recipe's ``aux_loss_weight``.
AUX_LOSS_WEIGHT = 0.3


@dataclass(frozen=True)
class GoogLeNetConfig:
    """Attributes:
        stem_filters: 7x7/2 conv, 1x1 reduce, 3x3 conv (64, 64, 192).
        modules: Table 1's Inception rows ``(name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5,
            pool proj)``.
        pool_after: modules followed by a 3x3/2 max pool ("3b", "4e").
        aux_after: modules that feed an auxiliary classifier ("4a", "4d").
        aux_filters, aux_units: the auxiliary 1x1 conv and FC widths (128, 1024).
        aux_dropout: the auxiliary dropout (0.7).
        lrn: local response normalisation in the stem, as Fig. 3 draws it.
    """

    stem_filters: tuple = (64, 64, 192)
    modules: tuple = TABLE_1
    pool_after: tuple = ("3b", "4e")
    aux_after: tuple = ("4a", "4d")
    aux_filters: int = 128
    aux_units: int = 1024
    aux_dropout: float = 0.7
    lrn: bool = True

    def __post_init__(self):
        names = [row[0] for row in self.modules]
        for row in self.modules:
            if len(row) != 7:
                raise KerasdlError(f"each Inception row is (name, 1x1, 3x3 reduce, 3x3, 5x5 "
                                   f"reduce, 5x5, pool proj), got {row!r}", argument="modules")
            for n in row[1:]:
                check_positive_int(n, "modules")
        for field in ("pool_after", "aux_after"):
            unknown = [n for n in getattr(self, field) if n not in names]
            if unknown:
                raise KerasdlError(f"{field} names modules {unknown} that are not in modules "
                                   f"{names}", argument=field)
        for n in (*self.stem_filters, self.aux_filters, self.aux_units):
            check_positive_int(n, "filters")


def _conv(x, filters, kernel, name, strides=1):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def inception_module(x, row):
    """One Inception module (Fig. 2b) from a Table 1 row."""
    name, n1, r3, n3, r5, n5, proj = row
    prefix = f"inception_{name}"
    b1 = _conv(x, n1, 1, f"{prefix}_1x1")
    b3 = _conv(_conv(x, r3, 1, f"{prefix}_3x3_reduce"), n3, 3, f"{prefix}_3x3")
    b5 = _conv(_conv(x, r5, 1, f"{prefix}_5x5_reduce"), n5, 5, f"{prefix}_5x5")
    bp = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}_pool")(x)
    bp = _conv(bp, proj, 1, f"{prefix}_pool_proj")
    return keras.layers.Concatenate(name=f"{prefix}_output")([b1, b3, b5, bp])


def _aux_classifier(x, index, config, num_classes):
    name = f"aux{index}"
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, config.aux_filters, 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(config.aux_units, activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(config.aux_dropout, name=f"{name}_dropout")(x)
    return keras.layers.Dense(num_classes, name=name)(x)


def build_googlenet(
    config=GoogLeNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.4,
    input_scaling="imagenet",
    aux_classifiers=False,
    features_only=False,
    name="googlenet",
):
    """GoogLeNet from its settings row; standard arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`.

    ``aux_classifiers=True`` adds the two auxiliary heads (logits) and returns the
    training model with outputs ``{"predictions", "aux1", "aux2"}``; it needs
    ``include_top`` and inputs of at least 65x65 (the 5x5/3 pool on the 1/16 map).
    ``features_only=True`` returns ``{"stride_S": map}``: conv1 (2), conv2 (4), and the
    outputs of modules 3b (8), 4e (16) and 5b (32).
    """
    c = config
    min_size = 65 if aux_classifiers else 1
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=min_size)
    if features_only and aux_classifiers:
        raise KerasdlError("features_only and aux_classifiers exclude each other",
                           argument="features_only")
    if aux_classifiers and not include_top:
        raise KerasdlError("aux_classifiers=True needs include_top=True (the auxiliary "
                           "heads are classifiers)", argument="aux_classifiers")
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = taps.record(_conv(x, c.stem_filters[0], 7, "conv1_7x7", strides=2), 2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    if c.lrn:
        x = LocalResponseNormalization(name="norm1")(x)
    x = _conv(x, c.stem_filters[1], 1, "conv2_3x3_reduce")
    x = _conv(x, c.stem_filters[2], 3, "conv2_3x3")
    if c.lrn:
        x = LocalResponseNormalization(name="norm2")(x)
    taps.record(x, 4)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    stride = 8
    aux = {}
    for row in c.modules:
        x = taps.record(inception_module(x, row), stride)
        if aux_classifiers and row[0] in c.aux_after:
            index = len(aux) + 1
            aux[f"aux{index}"] = _aux_classifier(x, index, c, num_classes)
        if row[0] in c.pool_after:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                          name=f"pool_{row[0]}")(x)
            stride *= 2
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    if not aux_classifiers:
        x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                        classifier_activation=classifier_activation, dropout_rate=dropout_rate)
        return keras.Model(inputs, x, name=name)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, num_classes, classifier_activation, dropout_rate)
    return keras.Model(inputs, {"predictions": x, **aux}, name=name)


def inference_model(model):
    """The single-output GoogLeNet inside a training model built with
    ``aux_classifiers=True``: the same layers and weights without the auxiliary heads."""
    return main_output_model(model)


# Szegedy et al. 2015, Sec. 6: asynchronous SGD with momentum 0.9, lr decreased by 4% every
# 8 epochs; the batch size, base lr and weight decay are not given: lr 0.01 at batch 128
# and L2 2e-4 are those of the Caffe reproduction the paper's authors point to, and the
# 4%-per-8-epochs decay over 250 epochs is replaced by cosine over 60.
_RECIPE = dataclasses.replace(
    paper_recipe(learning_rate=0.01, paper_batch=128, l2=2e-4, epochs=60, warmup_epochs=1.0,
                 notes="Szegedy et al. 2015, Sec. 6, with the auxiliary losses weighted 0.3"),
    aux_loss_weight=AUX_LOSS_WEIGHT)

_TINY_MODULES = (("3a", 8, 8, 8, 4, 8, 8), ("3b", 8, 8, 8, 4, 8, 8),
                 ("4a", 8, 8, 8, 4, 8, 8), ("4d", 8, 8, 8, 4, 8, 8),
                 ("4e", 8, 8, 8, 4, 8, 8), ("5b", 8, 8, 8, 4, 8, 8))

register_family(
    build_googlenet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("inception",),
    variants=[
        Variant("googlenet", GoogLeNetConfig(),
                description="GoogLeNet / Inception v1: 9 Inception modules, 2 auxiliary "
                            "classifiers for training",
                reference_params={
                    "hand count from Table 1 (weights and biases)": 6_998_552,
                    "with both auxiliary classifiers (Sec. 5)": ParamCount(
                        13_378_280, kwargs={"aux_classifiers": True}),
                },
                recipe=_RECIPE,
                test_kwargs={"input_shape": (48, 48, 3), "num_classes": 3,
                             "stem_filters": (8, 8, 8), "modules": _TINY_MODULES,
                             "aux_units": 8, "aux_filters": 4}),
    ],
)
