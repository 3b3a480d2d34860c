"""MobileNets v1, v2 and v3.

* v1: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017 (Table 1): a 3x3/2 convolution and 13 depthwise-separable
  layers, width multiplier ``alpha`` and resolution multiplier (the input size).
* v2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
  (Table 2): 17 inverted residuals with linear bottlenecks, ReLU6.
* v3: Howard et al., "Searching for MobileNetV3", ICCV 2019 (Tables 1 and 2): inverted
  residuals with squeeze-excite and hard swish, found by platform-aware NAS + NetAdapt.

Every row has keras.applications' layer names and weights
(:func:`kerasdl.models.load_keras_applications_weights`) and its input scaling ("tf"
mode, [-1, 1]: our ``"symmetric"``; MobileNetV3 carries the same scaling as a
``Rescaling`` layer of its own). Differences from the papers, all keras.applications':
v1's last depthwise layer has stride 1 (Table 1 prints "s2" but keeps 7x7 maps) and
v1's strided layers pad bottom/right only; keras' ``depth_multiplier`` is the depthwise
channel multiplier, not the paper's resolution multiplier; v3's 16-filter stem is not
scaled by ``alpha``. Parameter counts are keras.applications' (BatchNorm moving
statistics included); torchvision counts trainable weights only.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.blocks.mobile import (apply_activation, apply_depthwise_separable,
                                   apply_inverted_residual, make_divisible)
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER_V1 = ("Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam, MobileNets: "
            "Efficient Convolutional Neural Networks for Mobile Vision Applications, 2017")
PAPER_V2 = ("Sandler, Howard, Zhu, Zhmoginov, Chen, MobileNetV2: Inverted Residuals and "
            "Linear Bottlenecks, CVPR 2018")
PAPER_V3 = ("Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le, Adam, "
            "Searching for MobileNetV3, ICCV 2019")

# The smallest input keras.applications accepts for these networks (1x1 at stride 32).
MIN_SIZE = 32
TINY = {"input_shape": (32, 32, 3), "num_classes": 3}


def _check_alpha(alpha):
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha > 0):
        raise KerasdlError(f"alpha must be a positive number (width multiplier), got "
                           f"{alpha!r}", argument="alpha")


def _features_or_head(inputs, x, taps, *, features_only, include_top, pooling,
                      num_classes, classifier_activation, dropout_rate, name):
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


def _conv_head(x, filters_and_activation, *, num_classes, classifier_activation,
               dropout_rate, conv_name):
    """keras.applications' v1/v3 classifier: global average kept as a 1x1 map, optional
    1x1 convolution (v3's last point), dropout, 1x1 convolution to the classes, flatten.
    The logits layer is a 1x1 convolution (weights shaped (1, 1, C, classes)), as in the
    reference checkpoints; the last layer is always named ``predictions``."""
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    if filters_and_activation:
        filters, activation = filters_and_activation
        x = keras.layers.Conv2D(filters, 1, padding="same", name="conv_2")(x)
        x = apply_activation(x, activation, name="conv_2_act")
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Conv2D(num_classes, 1, padding="same", name=conv_name)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.layers.Activation(classifier_activation or "linear", name="predictions")(x)


# ---------------------------------------------------------------------------- v1

# Howard et al. 2017, Table 1: (pointwise filters, stride) of the 13 separable layers.
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
             (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@dataclass(frozen=True)
class MobileNetConfig:
    """Attributes:
        alpha: width multiplier (Sec. 3.3): every layer has ``int(alpha * filters)``.
        depth_multiplier: depthwise outputs per input channel (keras.applications'
            argument; 1 in the paper).
        layers: Table 1's (pointwise filters, stride) rows of the separable layers.
    """

    alpha: float = 1.0
    depth_multiplier: int = 1
    layers: tuple = V1_LAYERS

    def __post_init__(self):
        _check_alpha(self.alpha)
        if int(32 * self.alpha) < 1:
            raise KerasdlError(f"alpha must be at least 1/32 (the 32-filter stem keeps "
                               f"int(32 * alpha) filters), got {self.alpha!r}",
                               argument="alpha")
        check_positive_int(self.depth_multiplier, "depth_multiplier")
        for filters, stride in self.layers:
            check_positive_int(filters, "layers filters")
            check_choice(stride, (1, 2), "layers stride")


def build_mobilenet(
    config=MobileNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=1e-3,
    input_scaling="symmetric",
    features_only=False,
    name="mobilenet",
):
    """MobileNet v1 from its settings row. The resolution multiplier of Sec. 3.4 is the
    input size (224, 192, 160, 128 in the paper). ``dropout_rate`` defaults to
    keras.applications' 1e-3. Other arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`; ``features_only`` returns the last
    map at each stride (2: the stem, 4, 8, 16, 32)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=MIN_SIZE)
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.Conv2D(int(32 * config.alpha), 3, strides=2, padding="same",
                            use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = taps.record(keras.layers.ReLU(6.0, name="conv1_relu")(x), 2)
    stride = 2
    for block_id, (filters, strides) in enumerate(config.layers, start=1):
        stride *= strides
        x = apply_depthwise_separable(x, int(filters * config.alpha), strides,
                                      depth_multiplier=config.depth_multiplier,
                                      block_id=block_id)
        taps.record(x, stride)
    if features_only or not include_top:
        return _features_or_head(inputs, x, taps, features_only=features_only,
                                 include_top=False, pooling=pooling, num_classes=num_classes,
                                 classifier_activation=None, dropout_rate=0.0, name=name)
    x = _conv_head(x, None, num_classes=num_classes,
                   classifier_activation=classifier_activation, dropout_rate=dropout_rate,
                   conv_name="conv_preds")
    return keras.Model(inputs, x, name=name)


def _v1_row(alpha, keras_count, paper_millions):
    suffix = "" if alpha == 1.0 else f"_{int(round(alpha * 100)):03d}"
    return Variant(
        f"mobilenet{suffix}",
        MobileNetConfig(alpha=alpha),
        description=f"MobileNet v1 {alpha:g}-224: 13 depthwise-separable layers, "
                    f"width multiplier {alpha:g}",
        reference_params={f"keras.applications MobileNet(alpha={alpha:g}); Howard et al. "
                          f"2017 Table 6: {paper_millions}M": keras_count},
    )


# Howard et al. 2017, Sec. 4: RMSprop with asynchronous updates "similar to Inception
# V3", less augmentation and little or no weight decay on the depthwise filters; it
# gives no rate, batch or epochs. We take Inception V3's RMSprop rate 0.045, and
# MobileNetV2's batch 96 and L2 4e-5 (the same authors' TF-slim setting); 150 epochs and
# the light augmentation are ours.
_V1_RECIPE = paper_recipe(optimizer="rmsprop", learning_rate=0.045, paper_batch=96,
                          l2=4e-5, epochs=150, warmup_epochs=1.0, augmentation="light",
                          notes="Howard et al. 2017, Sec. 4 (rate from Inception V3, batch "
                                "and L2 from MobileNetV2; epochs ours)")

register_family(
    build_mobilenet,
    family="cnn",
    task="image_classification",
    paper=PAPER_V1,
    tags=("mobile", "keras_applications", "separable"),
    recipe=_V1_RECIPE,
    # Five separable layers, one per stride, at a quarter of the width.
    test_kwargs={**TINY, "alpha": 0.25,
                 "layers": ((64, 1), (128, 2), (256, 2), (512, 2), (1024, 2))},
    variants=[
        _v1_row(1.0, 4_253_864, 4.2),
        _v1_row(0.75, 2_601_976, 2.6),
        _v1_row(0.5, 1_342_536, 1.3),
        _v1_row(0.25, 475_544, 0.5),
    ],
)


# ---------------------------------------------------------------------------- v2

# Sandler et al. 2018, Table 2: (expansion t, output channels c, repeats n, stride s).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))


@dataclass(frozen=True)
class MobileNetV2Config:
    """Attributes:
        alpha: width multiplier; block widths are ``make_divisible(int(alpha * c), 8)``,
            the last 1x1 convolution stays 1280 unless ``alpha`` > 1 (Sec. 6.1).
        stages: Table 2's (t, c, n, s) rows.
        last_filters: width of the last 1x1 convolution at ``alpha`` <= 1.
    """

    alpha: float = 1.0
    stages: tuple = V2_STAGES
    last_filters: int = 1280

    def __post_init__(self):
        _check_alpha(self.alpha)
        for t, c, n, s in self.stages:
            for v, what in ((t, "expansion"), (c, "channels"), (n, "repeats")):
                check_positive_int(v, f"stages {what}")
            check_choice(s, (1, 2), "stages stride")
        check_positive_int(self.last_filters, "last_filters")


def build_mobilenet_v2(
    config=MobileNetV2Config(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="symmetric",
    features_only=False,
    name="mobilenet_v2",
):
    """MobileNetV2 from its settings row; arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`. ``features_only`` returns the last
    map at each stride (2, 4, 8, 16, and 32 after the last 1x1 convolution)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=MIN_SIZE)
    check_choice(pooling, POOLINGS, "pooling")
    c = config
    bn = dict(epsilon=1e-3, momentum=0.999)
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.Conv2D(make_divisible(32 * c.alpha, 8), 3, strides=2, padding="same",
                            use_bias=False, name="Conv1")(x)
    x = keras.layers.BatchNormalization(**bn, name="bn_Conv1")(x)
    x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)
    stride, block_id = 2, 0
    for t, channels, repeats, s in c.stages:
        filters = make_divisible(int(channels * c.alpha), 8)
        for i in range(repeats):
            strides = s if i == 0 else 1
            stride *= strides
            prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
            x = apply_inverted_residual(x, filters, expanded_filters=t * x.shape[-1],
                                        strides=strides, activation="relu6",
                                        naming="mobilenet_v2", name=prefix)
            taps.record(x, stride)
            block_id += 1
    last = make_divisible(c.last_filters * c.alpha, 8) if c.alpha > 1.0 else c.last_filters
    x = keras.layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = keras.layers.BatchNormalization(**bn, name="Conv_1_bn")(x)
    x = taps.record(keras.layers.ReLU(6.0, name="out_relu")(x), stride)
    return _features_or_head(inputs, x, taps, features_only=features_only,
                             include_top=include_top, pooling=pooling,
                             num_classes=num_classes,
                             classifier_activation=classifier_activation,
                             dropout_rate=dropout_rate, name=name)


def _v2_row(alpha, keras_count, paper, torchvision=None):
    suffix = "" if alpha == 1.0 else f"_{int(round(alpha * 100)):03d}"
    refs = {f"keras.applications MobileNetV2(alpha={alpha:g}); {paper}": keras_count}
    if torchvision:
        refs["torchvision mobilenet_v2 (trainable)"] = ParamCount(torchvision, True)
    return Variant(
        f"mobilenet_v2{suffix}",
        MobileNetV2Config(alpha=alpha),
        description=f"MobileNetV2 {alpha:g}-224: 17 inverted residuals, width {alpha:g}",
        reference_params=refs,
    )


# Sandler et al. 2018, Sec. 6.1: RMSprop, decay and momentum 0.9, weight decay 4e-5,
# initial rate 0.045 decayed by 0.98 per epoch, batch 96 (16 GPUs); no epoch count
# given, 150 is ours (0.98 ** 150 ~ 0.05, a decay comparable to cosine's).
_V2_RECIPE = paper_recipe(optimizer="rmsprop", learning_rate=0.045, paper_batch=96,
                          l2=4e-5, epochs=150, warmup_epochs=1.0,
                          notes="Sandler et al. 2018, Sec. 6.1; epochs ours")

register_family(
    build_mobilenet_v2,
    family="cnn",
    task="image_classification",
    paper=PAPER_V2,
    tags=("mobile", "keras_applications", "inverted_residual"),
    recipe=_V2_RECIPE,
    test_kwargs={**TINY, "alpha": 0.35,
                 "stages": ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 1, 2), (6, 64, 1, 2),
                            (6, 96, 1, 2)),
                 "last_filters": 64},
    variants=[
        _v2_row(1.0, 3_538_984, "Sandler et al. 2018 Table 4: 3.4M", torchvision=3_504_872),
        _v2_row(0.35, 1_691_208, "the authors' TF-slim checkpoint table: 1.7M"),
    ],
)


# ---------------------------------------------------------------------------- v3

# (kernel, expansion, output channels, squeeze-excite, activation, stride): Howard et
# al. 2019 Table 1 (Large) and Table 2 (Small); expansions are exp size / input width.
# "HS" is hard swish; ``minimalistic`` turns 5x5 kernels into 3x3, hard swish into ReLU
# and drops squeeze-excite.
V3_LARGE = (
    (3, 1, 16, False, "relu", 1), (3, 4, 24, False, "relu", 2), (3, 3, 24, False, "relu", 1),
    (5, 3, 40, True, "relu", 2), (5, 3, 40, True, "relu", 1), (5, 3, 40, True, "relu", 1),
    (3, 6, 80, False, "HS", 2), (3, 2.5, 80, False, "HS", 1), (3, 2.3, 80, False, "HS", 1),
    (3, 2.3, 80, False, "HS", 1), (3, 6, 112, True, "HS", 1), (3, 6, 112, True, "HS", 1),
    (5, 6, 160, True, "HS", 2), (5, 6, 160, True, "HS", 1), (5, 6, 160, True, "HS", 1),
)
V3_SMALL = (
    (3, 1, 16, True, "relu", 2), (3, 72 / 16, 24, False, "relu", 2),
    (3, 88 / 24, 24, False, "relu", 1), (5, 4, 40, True, "HS", 2), (5, 6, 40, True, "HS", 1),
    (5, 6, 40, True, "HS", 1), (5, 3, 48, True, "HS", 1), (5, 3, 48, True, "HS", 1),
    (5, 6, 96, True, "HS", 2), (5, 6, 96, True, "HS", 1), (5, 6, 96, True, "HS", 1),
)
V3_SIZES = {"large": (V3_LARGE, 1280), "small": (V3_SMALL, 1024)}


@dataclass(frozen=True)
class MobileNetV3Config:
    """Attributes:
        size: ``"large"`` (Table 1) or ``"small"`` (Table 2).
        alpha: width multiplier of the blocks (``make_divisible(alpha * c)``) and, above
            1, of the last-point convolution.
        minimalistic: the variant without squeeze-excite, hard swish or 5x5 kernels
            that the authors released with the checkpoints (keras.applications'
            ``minimalistic=True``; not in the paper).
        blocks: the number of the size's table rows used (None: all); fewer keeps only
            the first rows, for tiny test models.
    """

    size: str = "large"
    alpha: float = 1.0
    minimalistic: bool = False
    blocks: int | None = None

    def __post_init__(self):
        check_choice(self.size, tuple(V3_SIZES), "size")
        _check_alpha(self.alpha)
        check_positive_int(self.blocks, "blocks", allow_none=True)


def build_mobilenet_v3(
    config=MobileNetV3Config(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.2,
    input_scaling="symmetric",
    features_only=False,
    name="mobilenet_v3",
):
    """MobileNetV3 from its settings row. The classifier is the paper's (Fig. 5): global
    average, a 1x1 "last point" convolution with bias (1280 or 1024), hard swish,
    dropout (``dropout_rate``, 0.2 as keras.applications), 1x1 convolution to the
    classes. Without the top (``include_top=False``, ``features_only``) the network ends
    at the 1x1 convolution before the pooling, as keras.applications'. Other arguments
    as :func:`kerasdl.models.cnn.resnet.build_resnet`."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=MIN_SIZE)
    check_choice(pooling, POOLINGS, "pooling")
    c = config
    rows, last_point = V3_SIZES[c.size]
    rows = rows[:c.blocks] if c.blocks else rows
    hard = "relu" if c.minimalistic else "hard_swish"
    bn = dict(epsilon=1e-3, momentum=0.999)
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(**bn, name="conv_bn")(x)
    x = taps.record(apply_activation(x, hard, name="conv_act"), 2)
    stride = 2
    for block_id, (kernel, expansion, channels, se, act, strides) in enumerate(rows):
        if c.minimalistic:
            kernel, se = 3, False
        expanded = make_divisible(x.shape[-1] * expansion)
        stride *= strides
        x = apply_inverted_residual(
            x, make_divisible(channels * c.alpha), expanded_filters=expanded,
            kernel_size=kernel, strides=strides, activation=hard if act == "HS" else "relu",
            se_filters=make_divisible(expanded * 0.25) if se else None,
            se_activation="relu", se_gate="hard_sigmoid", naming="mobilenet_v3",
            name=f"expanded_conv_{block_id}_" if block_id else "expanded_conv_")
        taps.record(x, stride)
    x = keras.layers.Conv2D(make_divisible(x.shape[-1] * 6), 1, padding="same",
                            use_bias=False, name="conv_1")(x)
    x = keras.layers.BatchNormalization(**bn, name="conv_1_bn")(x)
    x = taps.record(apply_activation(x, hard, name="conv_1_act"), stride)
    if features_only or not include_top:
        return _features_or_head(inputs, x, taps, features_only=features_only,
                                 include_top=False, pooling=pooling, num_classes=num_classes,
                                 classifier_activation=None, dropout_rate=0.0, name=name)
    if c.alpha > 1.0:
        last_point = make_divisible(last_point * c.alpha)
    x = _conv_head(x, (last_point, hard), num_classes=num_classes,
                   classifier_activation=classifier_activation, dropout_rate=dropout_rate,
                   conv_name="logits")
    return keras.Model(inputs, x, name=name)


def _v3_row(size, keras_count, paper_millions, torchvision):
    return Variant(
        f"mobilenet_v3_{size}",
        MobileNetV3Config(size=size),
        description=f"MobileNetV3-{size.title()} 1.0-224: inverted residuals, "
                    "squeeze-excite, hard swish",
        reference_params={
            f"keras.applications MobileNetV3{size.title()}; Howard et al. 2019 Table 3: "
            f"{paper_millions}M": keras_count,
            f"torchvision mobilenet_v3_{size} (trainable)": ParamCount(torchvision, True),
        },
    )


# Howard et al. 2019, Sec. 6.1: RMSprop with momentum 0.9, initial rate 0.1, batch 4096
# (128 images per chip), rate decay 0.01 every 3 epochs, dropout 0.8 (keep), L2 1e-5,
# weight moving average 0.9999. No epoch count given; 300 is ours.
_V3_RECIPE = paper_recipe(optimizer="rmsprop", learning_rate=0.1, paper_batch=4096,
                          l2=1e-5, epochs=300, warmup_epochs=5.0,
                          notes="Howard et al. 2019, Sec. 6.1; epochs and warm-up ours"
                          ).replace(ema_momentum=0.9999)

register_family(
    build_mobilenet_v3,
    family="cnn",
    task="image_classification",
    paper=PAPER_V3,
    tags=("mobile", "keras_applications", "inverted_residual", "squeeze_excite"),
    recipe=_V3_RECIPE,
    # The first six rows hold every kind of block (SE or not, ReLU and hard swish in
    # Small; 3x3 and 5x5 kernels) at a quarter of the width.
    test_kwargs={**TINY, "alpha": 0.25, "blocks": 6},
    variants=[
        _v3_row("small", 2_554_968, 2.5, torchvision=2_542_856),
        _v3_row("large", 5_507_432, 5.4, torchvision=5_483_032),
    ],
)
