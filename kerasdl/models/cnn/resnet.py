"""ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR
2016 (arXiv 2015), and "Identity Mappings in Deep Residual Networks", ECCV 2016 (v2).

One builder, :func:`build_resnet`, reads the networks off the papers' tables:

* ImageNet ResNets (Table 1): a 7x7/2 convolution and 3x3/2 max pooling, then four
  stages of basic (18, 34) or bottleneck (50, 101, 152) blocks with 64, 128, 256, 512
  filters; stages 3-5 halve the resolution in their first block.
* Plain networks (Sec. 4.1, Fig. 3 middle): the same layers without shortcuts.
* CIFAR ResNets (Sec. 4.2): a 3x3 convolution with 16 filters, then 3 stages of ``n``
  basic blocks with 16, 32, 64 filters (depth 6n + 2), shortcut option A (identity with
  zero-padded extra channels: no parameters) as in the paper, option B as a switch.
* ResNet v2 (pre-activation, 2016b): BN-ReLU before each convolution, as
  keras.applications' ResNetV2 builds it (stride in the last block of stages 2-4).
* SE-ResNet-50 (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018): an SE block
  (reduction 16) on the residual branch of every bottleneck.
* ResNeXt-50 32x4d (Xie et al. 2017, Table 1): ResNet-50 whose 3x3 convolutions are
  grouped, 32 groups of 4 channels per 64 filters (128-256-512-1024 wide).
* Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016): CIFAR layout of pre-activation basic
  blocks, (d - 4) / 6 per stage, 16k, 32k, 64k filters, dropout between the
  convolutions (0.3 as in the paper's best CIFAR runs).

keras.applications compatibility: ``resnet50/101/152`` and ``resnet50_v2/101_v2/152_v2``
have keras.applications' layer names, weight shapes and order, so its weights load by
name (:func:`kerasdl.models.load_keras_applications_weights`); their input scaling equals
its ``preprocess_input`` ("caffe" for v1, "symmetric" for v2). keras.applications' v1
bottlenecks keep the convolution biases of the original Caffe models (``conv_bias=True``),
and Keras counts BatchNorm's moving mean and variance as (non-trainable) parameters;
torchvision's counts have neither. Both counts are registered: keras.applications' as
``count_params()``, torchvision's as the trainable count with ``conv_bias=False``.

Where kerasdl differs: convolutions start from He-normal weights (the paper's own
initialisation) where keras.applications uses Glorot-uniform; ImageNet ResNet-18/34 take
ImageNet mean/std scaling (torchvision's) since keras.applications has no such model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import (
    FeatureTaps,
    apply_basic_block,
    apply_bottleneck_block,
    apply_conv_bn,
    apply_preact_basic_block,
    apply_preact_bottleneck_block,
)
from kerasdl.blocks.residual import SHORTCUTS
from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import Recipe, paper_recipe

PAPER = "He, Zhang, Ren, Sun, Deep Residual Learning for Image Recognition, CVPR 2016"
PAPER_V2 = "He, Zhang, Ren, Sun, Identity Mappings in Deep Residual Networks, ECCV 2016"
PAPER_SE = "Hu, Shen, Sun, Squeeze-and-Excitation Networks, CVPR 2018"
PAPER_RESNEXT = ("Xie, Girshick, Dollar, Tu, He, Aggregated Residual Transformations for Deep "
                 "Neural Networks, CVPR 2017")
PAPER_WRN = "Zagoruyko, Komodakis, Wide Residual Networks, BMVC 2016"
BLOCKS = ("basic", "bottleneck", "preact_bottleneck", "preact_basic")
PREACT = ("preact_bottleneck", "preact_basic")
STEMS = ("imagenet", "cifar")


@dataclass(frozen=True)
class ResNetConfig:
    """The settings that tell ResNets apart.

    Attributes:
        block: "basic" (two 3x3), "bottleneck" (1x1-3x3-1x1, x4 expansion),
            "preact_bottleneck" (v2) or "preact_basic" (Wide ResNet).
        blocks_per_stage: residual blocks in each stage.
        stage_filters: filters of each stage (a bottleneck outputs 4x as many).
        stem: "imagenet" (7x7/2 conv, 3x3/2 max pool) or "cifar" (3x3 conv).
        stem_filters: filters of the stem convolution.
        shortcut: "projection" (option B), "zero_pad" (option A) or "none" (plain net).
        conv_bias: biases in the convolutions (keras.applications' v1 bottlenecks).
        bn_epsilon: BatchNorm epsilon (keras.applications: 1.001e-5).
        se_ratio: squeeze-and-excitation reduction on each block, or None.
        groups, width_per_group: ResNeXt's cardinality and bottleneck width (32, 4 for
            32x4d; 1, 64 is a plain bottleneck).
        block_dropout_rate: dropout between a Wide ResNet block's convolutions.
    """

    block: str = "bottleneck"
    blocks_per_stage: tuple = (3, 4, 6, 3)
    stage_filters: tuple = (64, 128, 256, 512)
    stem: str = "imagenet"
    stem_filters: int = 64
    shortcut: str = "projection"
    conv_bias: bool = False
    bn_epsilon: float = 1e-5
    se_ratio: int | None = None
    groups: int = 1
    width_per_group: int = 64
    block_dropout_rate: float = 0.0

    def __post_init__(self):
        check_choice(self.block, BLOCKS, "block")
        check_choice(self.stem, STEMS, "stem")
        check_choice(self.shortcut, SHORTCUTS, "shortcut")
        if len(self.blocks_per_stage) != len(self.stage_filters) or not self.blocks_per_stage:
            raise KerasdlError(
                f"blocks_per_stage {self.blocks_per_stage} and stage_filters "
                f"{self.stage_filters} must be non-empty and of equal length",
                argument="blocks_per_stage")
        for n in (*self.blocks_per_stage, *self.stage_filters, self.stem_filters):
            check_positive_int(n, "blocks_per_stage/stage_filters/stem_filters")
        if self.block in PREACT and (self.shortcut != "projection" or self.se_ratio):
            raise KerasdlError("the pre-activation ResNets take shortcut='projection' and "
                               "no se_ratio", argument="block")
        check_positive_int(self.groups, "groups")
        check_positive_int(self.width_per_group, "width_per_group")
        check_fraction(self.block_dropout_rate, "block_dropout_rate")
        if self.groups > 1 and any(self.width_per_group * f % 64 for f in self.stage_filters):
            raise KerasdlError(
                f"with groups={self.groups}, width_per_group x stage_filters / 64 must be "
                f"whole channels per group; got width_per_group={self.width_per_group}, "
                f"stage_filters={self.stage_filters}", argument="width_per_group")

    def min_input_size(self):
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.stage_filters) - 1)


def _stem(x, config, taps):
    if config.stem == "cifar":
        if config.block in PREACT:
            # Pre-activation: the first block normalises and activates.
            x = keras.layers.Conv2D(config.stem_filters, 3, padding="same", use_bias=False,
                                    kernel_initializer="he_normal", name="conv1_conv")(x)
        else:
            x = apply_conv_bn(x, config.stem_filters, 3, use_bias=config.conv_bias,
                              epsilon=config.bn_epsilon, name="conv1")
        return taps.record(x, 1), 1
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    if config.block == "preact_bottleneck":
        # keras.applications' ResNetV2 stem: a biased convolution, activated later.
        x = keras.layers.Conv2D(config.stem_filters, 7, strides=2, kernel_initializer="he_normal",
                                name="conv1_conv")(x)
    else:
        x = apply_conv_bn(x, config.stem_filters, 7, 2, padding="valid",
                          use_bias=config.conv_bias, epsilon=config.bn_epsilon, name="conv1")
        taps.record(x, 2)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return taps.record(x, 4), 4


def _stages(x, config, stride, taps):
    common = {"epsilon": config.bn_epsilon}
    last = len(config.stage_filters) - 1
    for s, (filters, blocks) in enumerate(zip(config.stage_filters, config.blocks_per_stage)):
        for b in range(blocks):
            name = f"conv{s + 2}_block{b + 1}"
            if config.block == "preact_basic":
                step = 2 if b == 0 and s > 0 else 1
                x = apply_preact_basic_block(x, filters, step, name=name,
                                             dropout_rate=config.block_dropout_rate, **common)
            elif config.block == "preact_bottleneck":
                # Stride in the stage's last block, none in the last stage (ResNetV2).
                step = 2 if b == blocks - 1 and s != last else 1
                x = apply_preact_bottleneck_block(x, filters, step, project=b == 0,
                                                  name=name, **common)
            else:
                step = 2 if b == 0 and s > 0 else 1
                apply = apply_basic_block if config.block == "basic" else apply_bottleneck_block
                grouping = ({"groups": config.groups, "width_per_group": config.width_per_group}
                            if config.block == "bottleneck" else {})
                x = apply(x, filters, step, shortcut=config.shortcut, use_bias=config.conv_bias,
                          se_ratio=config.se_ratio, name=name, **grouping, **common)
            stride *= step
            taps.record(x, stride)
    if config.block in PREACT:
        x = keras.layers.BatchNormalization(epsilon=config.bn_epsilon, name="post_bn")(x)
        x = keras.layers.Activation("relu", name="post_relu")(x)
        taps.record(x, stride)
    return x


def build_resnet(
    config=ResNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="caffe",
    features_only=False,
    name="resnet",
):
    """A ResNet from its settings row (see the module docstring for the registered rows).

    Args:
        config: a :class:`ResNetConfig`.
        input_shape: (height, width, 3) raw pixels.
        num_classes: number of output logits.
        include_top: global average pooling and the classifier; False ends at the last
            stage's feature map (then ``pooling`` "avg" or "max" pools it).
        pooling: None, "avg" or "max", used when ``include_top`` is False.
        classifier_activation: None for logits or e.g. "softmax".
        dropout_rate: dropout before the classifier (not in the paper).
        input_scaling: see :func:`kerasdl.layers.preprocessing.make_input_scaling`.
        features_only: return ``{"stride_S": feature map}``, the last map at each stride
            (2..32 for the ImageNet stem; 2 and 4 for the CIFAR stem), as timm's
            ``features_only``.
        name: the Keras model name.
    """
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=config.min_input_size())
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x, stride = _stem(x, config, taps)
    x = _stages(x, config, stride, taps)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


# ---------------------------------------------------------------------------- rows

_KERAS_V1 = {"conv_bias": True, "bn_epsilon": 1.001e-5}
_TORCHVISION = ParamCount  # trainable-only counts, as torchvision reports them


# He et al. 2015, Sec. 3.4: SGD, batch 256, lr 0.1 divided by 10 on plateaus, weight decay
# 1e-4, momentum 0.9, 60e4 iterations (about 120 epochs). ResNeXt (Xie et al. 2017, Sec.
# 4) keeps that recipe; SENet (Hu et al. 2018, Sec. 6) trains 100 epochs at batch 1024,
# lr 0.6 divided by 10 every 30 epochs.
_IMAGENET_RECIPE = paper_recipe(learning_rate=0.1, paper_batch=256, l2=1e-4, epochs=120,
                                warmup_epochs=1.0, notes="He et al. 2015, Sec. 3.4")
_SE_RECIPE = paper_recipe(learning_rate=0.6, paper_batch=1024, l2=1e-4, epochs=100,
                          warmup_epochs=1.0, notes="Hu et al. 2018, Sec. 6")


def _imagenet(name, block, blocks, *, description, references, scaling="imagenet",
              paper=None, tags=(), test_kwargs=None, recipe=_IMAGENET_RECIPE, **settings):
    return Variant(
        name,
        ResNetConfig(block=block, blocks_per_stage=blocks, **settings),
        description=description,
        reference_params=references,
        defaults={"input_scaling": scaling},
        paper=paper,
        tags=(*tags, "plain" if settings.get("shortcut") == "none" else "residual"),
        test_kwargs=test_kwargs,
        recipe=recipe,
    )


def _cifar_trainable(n):
    """The CIFAR ResNet's trainable weights from Sec. 4.2's layer table (option A
    shortcuts have none): the 3x3x3x16 stem, 2n 3x3 convolutions per stage at 16, 32
    and 64 filters (the first of stages 2-3 widening), a BatchNorm (2 per channel) after
    each convolution, and the 64x10 classifier with biases."""
    convs = 27 * 16 + 2 * n * 9 * 16 * 16 + 9 * 16 * 32 + (2 * n - 1) * 9 * 32 * 32 \
        + 9 * 32 * 64 + (2 * n - 1) * 9 * 64 * 64
    batchnorm = 2 * (16 + 2 * n * (16 + 32 + 64))
    return convs + batchnorm + 64 * 10 + 10


# The paper trains the CIFAR nets with SGD (momentum 0.9, weight decay 1e-4, batch 128,
# lr 0.1 divided by 10 at 32k and 48k of 64k iterations: 182 epochs) on 4-pixel-padded
# random crops and flips, on all 50k training images (its 45k/5k split only chose the
# schedule). This recipe keeps the optimiser, batch, augmentation and the whole training
# set, and swaps the step schedule for warm-up + cosine over 60 epochs, a third of the
# paper's: cosine decay reaches a given accuracy in fewer epochs than steps do.
# Weight decay: Keras applies it decoupled (w -= lr * wd * w, outside the momentum), while
# the paper's L2 term passes through momentum, which multiplies its steady-state step by
# 1 / (1 - 0.9) = 10. So Keras' 5e-3 is the usual short-schedule L2 of 5e-4; the stronger
# regularisation than the paper's 1e-4 makes up for the shorter schedule.
_CIFAR_RECIPE = Recipe(
    optimizer="sgd", learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3,
    schedule="cosine", warmup_epochs=1.0, epochs=60, batch_size=128, augmentation="cifar",
    validation_fraction=0.0,
    notes="SGD 0.1 (Nesterov 0.9), decoupled weight decay 5e-3 (= L2 5e-4 through "
          "momentum), 1-epoch warm-up then cosine over 60 epochs, whole-pixel 4 px shifts "
          "and flips, all 50,000 training images (the test curve is logged for plotting)",
)


def _cifar(depth, paper_params, shortcut="zero_pad", suffix=""):
    n = (depth - 2) // 6
    trainable = _cifar_trainable(n)
    if shortcut == "zero_pad":
        kind = "shortcut option A (zero-padded identity)"
        refs = {f"He et al. 2015, Table 6: {paper_params}; exact trainable count of Sec. "
                f"4.2's layers with n={n}": ParamCount(trainable, trainable_only=True)}
    elif shortcut == "projection":
        # Two projections (16->32 and 32->64 channels: 1x1 conv + BN).
        projections = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
        kind = "shortcut option B (1x1 projections where the shape changes)"
        refs = {f"Sec. 4.2's layers with n={n} ({trainable:,}) plus two projections "
                f"({projections:,}), trainable": ParamCount(trainable + projections, True)}
    else:
        kind = "plain: no shortcuts (Sec. 4.2's plain baseline)"
        refs = {f"Sec. 4.2's layers with n={n}, as ResNet-{depth} (its option A "
                "shortcuts have no weights), trainable": ParamCount(trainable, True)}
    return Variant(
        f"resnet{depth}{suffix}",
        ResNetConfig(block="basic", blocks_per_stage=(n, n, n), stage_filters=(16, 32, 64),
                     stem="cifar", stem_filters=16, shortcut=shortcut),
        description=f"CIFAR ResNet-{depth} (6n+2, n={n}), {kind}",
        reference_params=refs,
        reference_kwargs={"input_shape": (32, 32, 3), "num_classes": 10},
        defaults={"input_shape": (32, 32, 3), "num_classes": 10, "input_scaling": "cifar10"},
        tags=("cifar", "plain" if shortcut == "none" else "residual"),
        recipe=_CIFAR_RECIPE,
        default_dataset="cifar10",
        test_kwargs={"input_shape": (16, 16, 3), "num_classes": 3, "stem_filters": 4,
                     "stage_filters": (4, 8, 8), "blocks_per_stage": (1, 1, 1)},
    )


register_family(
    build_resnet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    # Tiny widths and one block per stage keep the contract fast; the block types,
    # shortcuts and stems are those of each row.
    test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "stem_filters": 8,
                 "stage_filters": (4, 8, 8, 8), "blocks_per_stage": (1, 1, 1, 1)},
    variants=[
        _imagenet("resnet18", "basic", (2, 2, 2, 2),
                  description="ResNet-18 (Table 1): basic blocks 2-2-2-2",
                  references={"torchvision resnet18 (trainable; Keras also counts BatchNorm "
                              "moving statistics)": _TORCHVISION(11_689_512, True)}),
        _imagenet("resnet34", "basic", (3, 4, 6, 3),
                  description="ResNet-34 (Table 1): basic blocks 3-4-6-3",
                  references={"torchvision resnet34 (trainable)": _TORCHVISION(21_797_672, True)}),
        _imagenet("resnet18_plain", "basic", (2, 2, 2, 2), shortcut="none",
                  description="Plain-18 (Sec. 4.1): ResNet-18's layers without shortcuts",
                  references={"torchvision resnet18 minus its three projection shortcuts "
                              "(1x1 conv + BN: 8,448 + 33,280 + 132,096): 11,689,512 - "
                              "173,824 (trainable)": _TORCHVISION(11_515_688, True)}),
        _imagenet("resnet34_plain", "basic", (3, 4, 6, 3), shortcut="none",
                  description="Plain-34 (Sec. 4.1): ResNet-34's layers without shortcuts",
                  references={"torchvision resnet34 minus its three projection shortcuts: "
                              "21,797,672 - 173,824 (trainable)": _TORCHVISION(21_623_848, True)}),
        _imagenet("resnet50", "bottleneck", (3, 4, 6, 3), scaling="caffe", **_KERAS_V1,
                  description="ResNet-50 (Table 1): bottlenecks 3-4-6-3, as keras.applications",
                  references={"keras.applications ResNet50": 25_636_712,
                              "torchvision resnet50 (trainable, no conv biases)":
                                  _TORCHVISION(25_557_032, True, {"conv_bias": False})},
                  tags=("keras_applications",)),
        _imagenet("resnet101", "bottleneck", (3, 4, 23, 3), scaling="caffe", **_KERAS_V1,
                  description="ResNet-101 (Table 1): bottlenecks 3-4-23-3",
                  references={"keras.applications ResNet101": 44_707_176,
                              "torchvision resnet101 (trainable, no conv biases)":
                                  _TORCHVISION(44_549_160, True, {"conv_bias": False})},
                  tags=("keras_applications",)),
        _imagenet("resnet152", "bottleneck", (3, 8, 36, 3), scaling="caffe", **_KERAS_V1,
                  description="ResNet-152 (Table 1): bottlenecks 3-8-36-3",
                  references={"keras.applications ResNet152": 60_419_944,
                              "torchvision resnet152 (trainable, no conv biases)":
                                  _TORCHVISION(60_192_808, True, {"conv_bias": False})},
                  tags=("keras_applications",)),
        _imagenet("resnet50_v2", "preact_bottleneck", (3, 4, 6, 3), scaling="symmetric",
                  bn_epsilon=1.001e-5, paper=PAPER_V2,
                  description="ResNet-50 v2 (pre-activation), as keras.applications ResNet50V2",
                  references={"keras.applications ResNet50V2": 25_613_800},
                  tags=("keras_applications", "preactivation")),
        _imagenet("resnet101_v2", "preact_bottleneck", (3, 4, 23, 3), scaling="symmetric",
                  bn_epsilon=1.001e-5, paper=PAPER_V2,
                  description="ResNet-101 v2 (pre-activation)",
                  references={"keras.applications ResNet101V2": 44_675_560},
                  tags=("keras_applications", "preactivation")),
        _imagenet("resnet152_v2", "preact_bottleneck", (3, 8, 36, 3), scaling="symmetric",
                  bn_epsilon=1.001e-5, paper=PAPER_V2,
                  description="ResNet-152 v2 (pre-activation)",
                  references={"keras.applications ResNet152V2": 60_380_648},
                  tags=("keras_applications", "preactivation")),
        _imagenet("se_resnet50", "bottleneck", (3, 4, 6, 3), se_ratio=16, paper=PAPER_SE,
                  recipe=_SE_RECIPE,
                  description="SE-ResNet-50: ResNet-50 with squeeze-and-excitation (r=16)",
                  references={"Hu et al. 2018 Table 1: 28.1M; timm seresnet50 (trainable)":
                              _TORCHVISION(28_088_024, True)},
                  tags=("squeeze_excite",)),
        _imagenet("resnext50_32x4d", "bottleneck", (3, 4, 6, 3), groups=32, width_per_group=4,
                  paper=PAPER_RESNEXT, test_kwargs={
                      "input_shape": (32, 32, 3), "num_classes": 3, "stem_filters": 8,
                      "stage_filters": (16, 16, 16, 16), "blocks_per_stage": (1, 1, 1, 1)},
                  description="ResNeXt-50 (32x4d): ResNet-50 with 32-group 3x3 convolutions",
                  references={"Xie et al. 2017 Table 1: 25.0M; torchvision resnext50_32x4d "
                              "(trainable)": _TORCHVISION(25_028_904, True)}),
        Variant(
            "wrn28_10",
            ResNetConfig(block="preact_basic", blocks_per_stage=(4, 4, 4),
                         stage_filters=(160, 320, 640), stem="cifar", stem_filters=16,
                         block_dropout_rate=0.3),
            paper=PAPER_WRN,
            description="Wide ResNet WRN-28-10: pre-activation basic blocks 4-4-4, 10x wide",
            reference_params={"Zagoruyko & Komodakis 2016, Table 5: 36.5M; exact trainable "
                              "count of the paper's layers": ParamCount(36_479_194, True)},
            reference_kwargs={"input_shape": (32, 32, 3), "num_classes": 10},
            defaults={"input_shape": (32, 32, 3), "num_classes": 10, "input_scaling": "cifar10"},
            tags=("cifar", "residual", "wide"),
            recipe=_CIFAR_RECIPE,
            default_dataset="cifar10",
            test_kwargs={"input_shape": (16, 16, 3), "num_classes": 3, "stem_filters": 4,
                         "stage_filters": (4, 8, 8), "blocks_per_stage": (1, 1, 1)},
        ),
        _cifar(20, "0.27M"),
        _cifar(32, "0.46M"),
        _cifar(44, "0.66M"),
        _cifar(56, "0.85M"),
        _cifar(110, "1.7M"),
        _cifar(20, "0.27M", shortcut="projection", suffix="_b"),
        _cifar(20, "", shortcut="none", suffix="_plain"),
        _cifar(56, "", shortcut="none", suffix="_plain"),
    ],
)
