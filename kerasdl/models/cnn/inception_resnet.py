"""Inception-ResNet-v2: Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4, Inception-ResNet
and the Impact of Residual Connections on Learning", AAAI 2017 (arXiv 1602.07261).

The network of Fig. 15: a stem that takes a 299x299 image to a 35x35 grid, then three
stages of Inception-ResNet blocks separated by the two reduction modules,

    stem -> Inception-ResNet-A x N_A (35x35, Fig. 16) -> Reduction-A (Fig. 7)
         -> Inception-ResNet-B x N_B (17x17, Fig. 17) -> Reduction-B (Fig. 18)
         -> Inception-ResNet-C x N_C (8x8, Fig. 19) -> average pooling -> classifier.

An Inception-ResNet block is an Inception module used as a residual branch: parallel
branches of convolutions, concatenated, then a 1x1 convolution back to the block's input
width (the figures' "Linear": no ReLU, and no batch norm, which the paper keeps off the
summations; so it has a bias), scaled down and added to the block's input, then a ReLU.
Sec. 3.3 (Fig. 20): with more than about a thousand filters the residual variants "died"
early in training unless the residual was scaled by a factor between 0.1 and 0.3 before
the addition; here that is the ``residual_scales`` setting, one factor per stage,
applied by a ``Rescaling`` layer in front of the ``Add`` as Fig. 20 draws it.

Every box of the figures is a convolution, batch norm and ReLU (:class:`ConvBN`; "V"
in the figures is ``padding="valid"``). Batch norm has no learned scale (gamma): the ReLU
that follows makes it redundant, as in the released TF-slim checkpoint.

Where this follows keras.applications (the released TF-slim checkpoint) rather than the
paper, so that ``inception_resnet_v2`` takes keras.applications' weights:

- Stem: Inception-v3's stem (3x3/2 V 32, 3x3 V 32, 3x3 64, max pool, 1x1 V 80, 3x3 V 192,
  max pool) and a 35x35 Inception module to 320 channels ("mixed_5b"), instead of
  Fig. 3's stem to 384 channels.
- Widths: 320, 1088 and 2080 channels in the three stages (the paper's figures give
  384, 1154 and 2048), so each block's linear 1x1 convolution has those widths. The
  branches of Figs. 16-19 and Reduction-A's k, l, m, n = 256, 256, 384, 384 (Table 1)
  are the paper's.
- Depth: 10, 20 and 10 blocks per stage (Fig. 15 draws 5, 10 and 5) with residual
  scales 0.17, 0.1 and 0.2; the last C block adds its residual unscaled and has no
  ReLU (``linear_last_block``).
- A 1x1 convolution to 1536 channels ("conv_7b") before the average pooling, which
  Fig. 15 does not have.
- No dropout by default (Fig. 15 has dropout, keep 0.8: ``dropout_rate=0.2``; it has no
  weights, so the weights load either way).

``inception_resnet_v2`` has keras.applications' input scaling ("symmetric", its "tf"
mode) and its names where it gives them (``mixed_5b``, ``block35_1_mixed``,
``block35_1_conv``, ``block35_1_ac``, ..., ``conv_7b``, ``conv_7b_bn``, ``avg_pool``,
``predictions``); its unnamed convolutions and batch norms are matched by position.
299x299 input (75x75 at least), 55,873,736 parameters.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Szegedy, Ioffe, Vanhoucke, Alemi, Inception-v4, Inception-ResNet and the Impact "
         "of Residual Connections on Learning, AAAI 2017")
PADDINGS = ("same", "valid")


@dataclass(frozen=True)
class ConvBN:
    """One box of the figures: convolution (no bias), batch norm (no scale), ReLU.
    ``kernel`` is a size or (rows, columns) for the factorized 1x7, 7x1, 1x3 and 3x1
    convolutions; ``padding="valid"`` is the figures' "V"."""

    filters: int
    kernel: int | tuple = 1
    strides: int = 1
    padding: str = "same"

    def __post_init__(self):
        check_positive_int(self.filters, "ConvBN.filters")
        check_positive_int(self.strides, "ConvBN.strides")
        check_choice(self.padding, PADDINGS, "ConvBN.padding")


@dataclass(frozen=True)
class Pool:
    """A pooling box: ``kind`` "max" or "avg", 3x3 by default."""

    kind: str = "max"
    size: int = 3
    strides: int = 2
    padding: str = "valid"

    def __post_init__(self):
        check_choice(self.kind, ("max", "avg"), "Pool.kind")
        check_positive_int(self.size, "Pool.size")
        check_positive_int(self.strides, "Pool.strides")
        check_choice(self.padding, PADDINGS, "Pool.padding")


# A module is a tuple of branches, a branch a tuple of boxes from its input to the
# concatenation, left to right as the figures draw them (and as keras.applications
# orders its layers). The stem is one chain of boxes.

STEM = (  # Inception-v3's stem: 299 -> 35
    ConvBN(32, 3, strides=2, padding="valid"),
    ConvBN(32, 3, padding="valid"),
    ConvBN(64, 3),
    Pool("max"),
    ConvBN(80, 1, padding="valid"),
    ConvBN(192, 3, padding="valid"),
    Pool("max"),
)

STEM_MODULE = (  # "mixed_5b": 35x35, 192 -> 320 channels
    (ConvBN(96),),
    (ConvBN(48), ConvBN(64, 5)),
    (ConvBN(64), ConvBN(96, 3), ConvBN(96, 3)),
    (Pool("avg", strides=1, padding="same"), ConvBN(64)),
)

BLOCK_A = (  # Fig. 16, Inception-ResNet-A (35x35)
    (ConvBN(32),),
    (ConvBN(32), ConvBN(32, 3)),
    (ConvBN(32), ConvBN(48, 3), ConvBN(64, 3)),
)

REDUCTION_A = (  # Fig. 7 with Table 1's k, l, m, n = 256, 256, 384, 384: 35 -> 17
    (ConvBN(384, 3, strides=2, padding="valid"),),  # n
    (ConvBN(256), ConvBN(256, 3), ConvBN(384, 3, strides=2, padding="valid")),  # k, l, m
    (Pool("max"),),
)

BLOCK_B = (  # Fig. 17, Inception-ResNet-B (17x17)
    (ConvBN(192),),
    (ConvBN(128), ConvBN(160, (1, 7)), ConvBN(192, (7, 1))),
)

REDUCTION_B = (  # Fig. 18: 17 -> 8
    (ConvBN(256), ConvBN(384, 3, strides=2, padding="valid")),
    (ConvBN(256), ConvBN(288, 3, strides=2, padding="valid")),
    (ConvBN(256), ConvBN(288, 3), ConvBN(320, 3, strides=2, padding="valid")),
    (Pool("max"),),
)

BLOCK_C = (  # Fig. 19, Inception-ResNet-C (8x8)
    (ConvBN(192),),
    (ConvBN(192), ConvBN(224, (1, 3)), ConvBN(256, (3, 1))),
)

# keras.applications' name of each stage's residual blocks (after their grid size).
BLOCK_NAMES = ("block35", "block17", "block8")


@dataclass(frozen=True)
class InceptionResNetConfig:
    """Attributes:
        stem: the chain of boxes from the image to the 35x35 grid.
        stem_module: the Inception module that ends the stem ("mixed_5b").
        block_a, block_b, block_c: the branches of the Inception-ResNet-A, -B and -C
            blocks (Figs. 16, 17, 19); each block's linear 1x1 convolution takes their
            concatenation back to the block's input width.
        reduction_a, reduction_b: the reduction modules (Figs. 7 and 18).
        blocks: Inception-ResNet blocks per stage (10, 20, 10).
        residual_scales: the factor each stage's residuals are scaled by before the
            addition (Sec. 3.3: 0.1 to 0.3; 0.17, 0.1, 0.2).
        linear_last_block: the last C block adds its residual unscaled and has no ReLU
            (the released checkpoint's choice; not in the paper).
        final_filters: the 1x1 convolution before pooling ("conv_7b", 1536).
    """

    stem: tuple = STEM
    stem_module: tuple = STEM_MODULE
    block_a: tuple = BLOCK_A
    reduction_a: tuple = REDUCTION_A
    block_b: tuple = BLOCK_B
    reduction_b: tuple = REDUCTION_B
    block_c: tuple = BLOCK_C
    blocks: tuple = (10, 20, 10)
    residual_scales: tuple = (0.17, 0.1, 0.2)
    linear_last_block: bool = True
    final_filters: int = 1536

    def __post_init__(self):
        _check_boxes(self.stem, "stem")
        for field in ("stem_module", "block_a", "reduction_a", "block_b", "reduction_b",
                      "block_c"):
            branches = getattr(self, field)
            if not isinstance(branches, tuple) or not branches:
                raise KerasdlError(f"{field} must be a non-empty tuple of branches, got "
                                   f"{branches!r}", argument=field)
            for branch in branches:
                _check_boxes(branch, field)
        for field in ("blocks", "residual_scales"):
            if not isinstance(getattr(self, field), tuple) or len(getattr(self, field)) != 3:
                raise KerasdlError(f"{field} must hold three values (stages A, B, C), got "
                                   f"{getattr(self, field)!r}", argument=field)
        for n in self.blocks:
            check_positive_int(n, "blocks")
        for s in self.residual_scales:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0:
                raise KerasdlError(f"residual_scales must be positive numbers, got "
                                   f"{self.residual_scales!r}", argument="residual_scales")
        check_positive_int(self.final_filters, "final_filters")


def _check_boxes(boxes, argument):
    if (not isinstance(boxes, tuple) or not boxes
            or not all(isinstance(b, (ConvBN, Pool)) for b in boxes)):
        raise KerasdlError(f"{argument}: a branch must be a non-empty tuple of ConvBN and "
                           f"Pool boxes, got {boxes!r}", argument=argument)


def _apply_box(x, box, name):
    """One box. A ConvBN's layers are named ``{name}``, ``{name}_bn`` and ``{name}_ac``
    (keras.applications' convention: ``conv_7b``, ``conv_7b_bn``, ``conv_7b_ac``); a
    pool is ``{name}_maxpool`` or ``{name}_avgpool``."""
    if isinstance(box, Pool):
        pool = keras.layers.MaxPooling2D if box.kind == "max" else keras.layers.AveragePooling2D
        return pool(box.size, strides=box.strides, padding=box.padding,
                    name=f"{name}_{box.kind}pool")(x)
    x = keras.layers.Conv2D(box.filters, box.kernel, strides=box.strides, padding=box.padding,
                            use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_ac")(x)


def _stride(boxes):
    return math.prod(box.strides for box in boxes)


def apply_inception_stem(x, boxes, taps=None, name="stem"):
    """The stem, Fig. 15's first box (Fig. 3 in the paper; Inception-v3's in the
    released network, see the module docstring): its boxes one after another, named
    ``stem_1``, ``stem_2``, ...; ``taps`` (a :class:`FeatureTaps`) records each box's
    output at its stride."""
    stride = 1
    for i, box in enumerate(boxes, start=1):
        x = _apply_box(x, box, f"{name}_{i}")
        stride *= box.strides
        if taps is not None:
            taps.record(x, stride)
    return x


def apply_inception_module(x, branches, name, concat_name=None):
    """Parallel branches from ``x``, concatenated along the channels (``concat_name``,
    default ``name``). Box ``j`` of branch ``b`` is named ``{name}_branch{b}_{j}``."""
    outputs = []
    for b, branch in enumerate(branches):
        y = x
        for j, box in enumerate(branch, start=1):
            y = _apply_box(y, box, f"{name}_branch{b}_{j}")
        outputs.append(y)
    return keras.layers.Concatenate(name=concat_name or name)(outputs)


def apply_inception_resnet_block(x, branches, scale, name, activation="relu"):
    """An Inception-ResNet block (Figs. 16-20): the Inception module's concatenation
    (``{name}_mixed``), a linear 1x1 convolution with bias back to ``x``'s width
    (``{name}_conv``), scaled by ``scale`` and added to ``x``, then ``activation``
    (``{name}_ac``; None for none)."""
    residual = apply_inception_module(x, branches, name, concat_name=f"{name}_mixed")
    residual = keras.layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_conv")(residual)
    residual = keras.layers.Rescaling(scale, name=f"{name}_scale")(residual)
    x = keras.layers.Add(name=f"{name}_add")([x, residual])
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_ac")(x)
    return x


def _inception_resnet_stage(x, config, stage):
    """``config.blocks[stage]`` blocks of stage A, B or C (0, 1, 2), named
    ``block35_1``, ...; with ``linear_last_block``, C's last is unscaled, without ReLU."""
    branches = (config.block_a, config.block_b, config.block_c)[stage]
    count = config.blocks[stage]
    for i in range(1, count + 1):
        linear = stage == 2 and i == count and config.linear_last_block
        x = apply_inception_resnet_block(
            x, branches, 1.0 if linear else config.residual_scales[stage],
            name=f"{BLOCK_NAMES[stage]}_{i}", activation=None if linear else "relu")
    return x


def build_inception_resnet(
    config=InceptionResNetConfig(),
    input_shape=(299, 299, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="symmetric",
    features_only=False,
    name="inception_resnet_v2",
):
    """Inception-ResNet from its settings row; arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`.

    ``features_only=True`` returns ``{"stride_S": map}``, the last map at each stride, as
    timm's ``inception_resnet_v2``: the stem's 64- and 192-channel convolutions (strides
    2 and 4), the ends of the A and B stages (8, 16) and ``conv_7b`` (32). The valid
    convolutions and pools leave the maps a few pixels short of the input size over the
    stride (147, 71, 35, 17 and 8 at 299x299)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=75)
    check_choice(pooling, POOLINGS, "pooling")
    c = config
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = apply_inception_stem(x, c.stem, taps)
    x = apply_inception_module(x, c.stem_module, "mixed_5b")
    stride = _stride(c.stem) * _stride(c.stem_module[0])
    x = taps.record(_inception_resnet_stage(x, c, 0), stride)  # 35x35, Inception-ResNet-A
    x = apply_inception_module(x, c.reduction_a, "mixed_6a")  # Reduction-A: 35 -> 17
    stride *= _stride(c.reduction_a[0])
    x = taps.record(_inception_resnet_stage(x, c, 1), stride)  # 17x17, Inception-ResNet-B
    x = apply_inception_module(x, c.reduction_b, "mixed_7a")  # Reduction-B: 17 -> 8
    stride *= _stride(c.reduction_b[0])
    x = _inception_resnet_stage(x, c, 2)  # 8x8, Inception-ResNet-C
    x = taps.record(_apply_box(x, ConvBN(c.final_filters), "conv_7b"), stride)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


def thinned(config, filters):
    """Keyword overrides that make every box of ``config`` (and the final convolution)
    ``filters`` wide: the same network, every branch, kernel and stride kept, but thin
    (the model contract's test configuration; one width also keeps the number of
    distinct weight shapes, which JAX compiles an initializer for, small)."""

    def thin(boxes):
        return tuple(dataclasses.replace(b, filters=filters) if isinstance(b, ConvBN) else b
                     for b in boxes)

    tables = {"stem": thin(config.stem)}
    for field in ("stem_module", "block_a", "reduction_a", "block_b", "reduction_b",
                  "block_c"):
        tables[field] = tuple(thin(branch) for branch in getattr(config, field))
    return {**tables, "final_filters": filters}


# Szegedy et al. 2017, Sec. 4: RMSProp (decay 0.9, epsilon 1.0), lr 0.045 decayed by 0.94
# every 2 epochs; no batch size or epoch count is given (asynchronous training on 20
# replicas), so the batch is ours (32, for 299x299 inputs) at the published lr, and the
# epochs are ours (100).
_RECIPE = paper_recipe(optimizer="rmsprop", learning_rate=0.045, paper_batch=32,
                       batch_size=32, epochs=100, warmup_epochs=1.0,
                       notes="Szegedy et al. 2017, Sec. 4; batch 32 and 100 epochs ours")

register_family(
    build_inception_resnet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("keras_applications", "inception"),
    recipe=_RECIPE,
    variants=[
        Variant("inception_resnet_v2", InceptionResNetConfig(),
                description="Inception-ResNet-v2: stem, 10 A, 20 B, 10 C scaled residual "
                            "Inception blocks",
                reference_params={"keras.applications InceptionResNetV2": 55_873_736},
                test_kwargs={"input_shape": (75, 75, 3), "num_classes": 3,
                             "blocks": (1, 1, 1), **thinned(InceptionResNetConfig(), 4)}),
    ],
)
