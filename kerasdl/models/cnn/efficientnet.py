"""EfficientNet B0-B7: Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", ICML 2019. B0 (Table 1) is a 3x3/2 stem, 16 MBConv
blocks in 7 stages (squeeze-excite, swish) and a 1x1 convolution to 1280; B1-B7 scale
its depth, width and resolution together.

Compound scaling (Sec. 3.3, Eq. 3): depth ``d = alpha ** phi``, width ``w = beta ** phi``,
resolution ``r = gamma ** phi`` with ``alpha, beta, gamma = 1.2, 1.1, 1.15`` from a grid
search at ``phi = 1`` under ``alpha * beta**2 * gamma**2 ~ 2`` (so FLOPS grow ~2**phi;
here 1.92). :func:`compound_coefficients` computes them. The released B1-B7 (the
reference code's table, used here and by keras.applications) are *not* these values at
integer ``phi``: B1 has width 1.0 and B7 depth 3.1 where ``phi = 1`` and ``phi = 7`` give
1.1 and 3.58. Fitting ``phi`` per model (least squares on the logarithms,
:func:`fit_phi`) gives phi ~ 0.44, 1.02, 1.93, 3.45, 4.65, 5.66, 6.63 for B1-B7, and
then the published multipliers lie within 7.5% of the phi-derived ones (B2 within 0.7%;
the largest gaps are B5-B7's depth, 6-7% below the rule, and resolution, 6-7% above):
the table is a rounded, hand-tuned reading of the rule, tested in ``tests/test_mobile.py``.

``efficientnet_b0`` ... ``_b7`` have keras.applications' layer names, weight shapes and
order. keras.applications puts ``Rescaling(1/255)`` and a ``Normalization`` layer in
front (plus, with ImageNet weights, a ``Rescaling`` that undoes the variance-for-std
slip of its checkpoints, tensorflow/tensorflow#49930), so that its ImageNet model sees
``(x / 255 - mean) / std``: our ``InputScaling("imagenet")`` computes that, without
weights. Their ``Normalization`` holds 7 non-trainable numbers (mean, variance, count)
that ``count_params()`` includes; our counts are theirs less those 7, stated so in the
registry. Their stem-to-head weights copy into ours one to one: pass
:func:`keras_applications_trunk` of their model to
:func:`kerasdl.models.load_keras_applications_weights` (the loader would otherwise look
for a counterpart of their ``Normalization``; EfficientNet is not in its
``KERAS_APPLICATIONS`` table for that reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.blocks.mobile import EFFICIENTNET_CONV_INIT, EFFICIENTNET_DENSE_INIT
from kerasdl.blocks.mobile import apply_mbconv, make_divisible, stride2_padding
from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Tan, Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural "
         "Networks, ICML 2019")

# Tan & Le 2019, Table 1 (stages 2-8): (kernel, repeats, output channels, expansion,
# stride). Stage 1 is the 32-filter stem, stage 9 the 1x1 convolution to 1280.
B0_STAGES = ((3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 2, 40, 6, 2), (3, 3, 80, 6, 2),
             (5, 3, 112, 6, 1), (5, 4, 192, 6, 2), (3, 1, 320, 6, 1))

# The released models: (width, depth, resolution, dropout) of B0-B7.
PUBLISHED = {
    0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 300, 0.3), 4: (1.4, 1.8, 380, 0.4), 5: (1.6, 2.2, 456, 0.4),
    6: (1.8, 2.6, 528, 0.5), 7: (2.0, 3.1, 600, 0.5),
}
BASE_RESOLUTION = 224


def compound_coefficients(phi, alpha=1.2, beta=1.1, gamma=1.15):
    """``(depth, width, resolution)`` multipliers of compound scaling at coefficient
    ``phi`` (Tan & Le 2019, Eq. 3): ``alpha ** phi``, ``beta ** phi``, ``gamma ** phi``.
    The resolution in pixels is ``224 * gamma ** phi``."""
    if not (isinstance(phi, (int, float)) and not isinstance(phi, bool)):
        raise KerasdlError(f"phi must be a number, got {phi!r}", argument="phi")
    for value, argument in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma")):
        if not (isinstance(value, (int, float)) and value >= 1):
            raise KerasdlError(f"{argument} must be a number >= 1, got {value!r}",
                               argument=argument)
    return alpha ** phi, beta ** phi, gamma ** phi


def fit_phi(depth, width, resolution, alpha=1.2, beta=1.1, gamma=1.15):
    """The ``phi`` whose :func:`compound_coefficients` come closest to the given
    multipliers (least squares on their logarithms; ``resolution`` a multiplier of 224)."""
    logs = [math.log(v) for v in (alpha, beta, gamma)]
    targets = [math.log(v) for v in (depth, width, resolution)]
    return sum(t * b for t, b in zip(targets, logs)) / sum(b * b for b in logs)


def keras_applications_trunk(model):
    """keras.applications' EfficientNet ``model`` from its stem on, without the
    ``Rescaling``/``Normalization`` front that our input scaling replaces: the weight
    source for :func:`kerasdl.models.load_keras_applications_weights`."""
    return keras.Model(model.get_layer("stem_conv_pad").input, model.output,
                       name=model.name)


@dataclass(frozen=True)
class EfficientNetConfig:
    """Attributes:
        width_coefficient: channel multiplier; widths are ``make_divisible(w * c, 8)``.
        depth_coefficient: each stage repeats its block ``ceil(d * n)`` times.
        drop_connect_rate: stochastic-depth rate of the last block, growing linearly
            from 0 at the first (survival probability 0.8 in the paper, Sec. 5.2).
        stages: Table 1's (kernel, repeats, channels, expansion, stride) rows.
        stem_filters, top_filters: the stem and last convolutions before scaling.
        se_ratio: squeeze-excite width over the block's input width.
    """

    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0
    drop_connect_rate: float = 0.2
    stages: tuple = B0_STAGES
    stem_filters: int = 32
    top_filters: int = 1280
    se_ratio: float = 0.25

    def __post_init__(self):
        for value, argument in ((self.width_coefficient, "width_coefficient"),
                                (self.depth_coefficient, "depth_coefficient")):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and value > 0):
                raise KerasdlError(f"{argument} must be a positive number, got {value!r}",
                                   argument=argument)
        check_fraction(self.drop_connect_rate, "drop_connect_rate")
        check_fraction(self.se_ratio, "se_ratio", high=1.0, high_inclusive=True)
        for kernel, repeats, channels, expansion, stride in self.stages:
            for value, what in ((kernel, "kernel"), (repeats, "repeats"),
                                (channels, "channels"), (expansion, "expansion")):
                check_positive_int(value, f"stages {what}")
            check_choice(stride, (1, 2), "stages stride")
        check_positive_int(self.stem_filters, "stem_filters")
        check_positive_int(self.top_filters, "top_filters")


def build_efficientnet(
    config=EfficientNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.2,
    input_scaling="imagenet",
    features_only=False,
    name="efficientnet",
):
    """EfficientNet from its settings row. ``dropout_rate`` is the dropout before the
    classifier (0.2 for B0 to 0.5 for B7); other arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`. ``features_only`` returns the last
    map at each stride (2, 4, 8, 16, and 32 after the top convolution)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=32)
    check_choice(pooling, POOLINGS, "pooling")
    c = config

    def width(filters):
        return make_divisible(filters * c.width_coefficient, 8)

    def repeats(n):
        return int(math.ceil(c.depth_coefficient * n))

    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.ZeroPadding2D(stride2_padding(x, 3), name="stem_conv_pad")(x)
    x = keras.layers.Conv2D(width(c.stem_filters), 3, strides=2, padding="valid",
                            use_bias=False, kernel_initializer=EFFICIENTNET_CONV_INIT,
                            name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("swish", name="stem_activation")(x)
    stride = 2
    total = sum(repeats(n) for _, n, _, _, _ in c.stages)
    b = 0
    for i, (kernel, n, channels, expansion, s) in enumerate(c.stages):
        for j in range(repeats(n)):
            strides = s if j == 0 else 1
            stride *= strides
            x = apply_mbconv(x, width(channels), expand_ratio=expansion, kernel_size=kernel,
                             strides=strides, se_ratio=c.se_ratio,
                             drop_rate=c.drop_connect_rate * b / total,
                             name=f"block{i + 1}{chr(ord('a') + j)}_")
            taps.record(x, stride)
            b += 1
    x = keras.layers.Conv2D(width(c.top_filters), 1, padding="same", use_bias=False,
                            kernel_initializer=EFFICIENTNET_CONV_INIT, name="top_conv")(x)
    x = keras.layers.BatchNormalization(name="top_bn")(x)
    x = taps.record(keras.layers.Activation("swish", name="top_activation")(x), stride)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = keras.layers.Dense(num_classes, kernel_initializer=EFFICIENTNET_DENSE_INIT,
                               name="predictions")(x)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation,
                                        name=f"predictions_{classifier_activation}")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


# keras.applications EfficientNetB{i}.count_params() at 1000 classes (which includes its
# input Normalization's 7 statistics) and torchvision's efficientnet_b{i} num_params
# (trainable weights only).
_KERAS_COUNTS = {0: 5_330_571, 1: 7_856_239, 2: 9_177_569, 3: 12_320_535, 4: 19_466_823,
                 5: 30_562_527, 6: 43_265_143, 7: 66_658_687}
_TORCHVISION = {0: 5_288_548, 1: 7_794_184, 2: 9_109_994, 3: 12_233_232, 4: 19_341_616,
                5: 30_389_784, 6: 43_040_704, 7: 66_347_960}
_PAPER_MILLIONS = {0: 5.3, 1: 7.8, 2: 9.2, 3: 12, 4: 19, 5: 30, 6: 43, 7: 66}
NORMALIZATION_WEIGHTS = 7  # mean (3), variance (3), count (1)


def _row(i):
    width, depth, resolution, dropout = PUBLISHED[i]
    theirs = _KERAS_COUNTS[i]
    return Variant(
        f"efficientnet_b{i}",
        EfficientNetConfig(width_coefficient=width, depth_coefficient=depth),
        description=f"EfficientNet-B{i}: width {width:g}, depth {depth:g}, "
                    f"{resolution}x{resolution}",
        reference_params={
            f"keras.applications EfficientNetB{i} ({theirs:,}) less its input "
            f"Normalization's {NORMALIZATION_WEIGHTS} statistics; Tan & Le 2019 Table 2: "
            f"{_PAPER_MILLIONS[i]}M": theirs - NORMALIZATION_WEIGHTS,
            f"torchvision efficientnet_b{i} (trainable)": ParamCount(_TORCHVISION[i], True),
        },
        defaults={"input_shape": (resolution, resolution, 3), "dropout_rate": dropout},
        # tests/test_mobile.py builds each B once against keras.applications and checks
        # these counts there; B7 (66M parameters) is not built a second time.
        tags=("heavy",) if i == 7 else (),
    )


# Tan & Le 2019, Sec. 5.2: RMSprop (decay 0.9, momentum 0.9), BN momentum 0.99, weight
# decay 1e-5, initial rate 0.256 decayed by 0.97 every 2.4 epochs, AutoAugment,
# stochastic depth 0.2, weight moving average 0.9999; batch 4096 and 350 epochs are the
# reference TPU code's (the paper states neither). Our nearest augmentation is "strong".
_RECIPE = paper_recipe(optimizer="rmsprop", learning_rate=0.256, paper_batch=4096, l2=1e-5,
                       epochs=350, warmup_epochs=5.0, augmentation="strong",
                       notes="Tan & Le 2019, Sec. 5.2; batch 4096 and 350 epochs from the "
                             "reference TPU code").replace(ema_momentum=0.9999)

register_family(
    build_efficientnet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("mobile", "keras_applications", "squeeze_excite", "inverted_residual",
          "compound_scaling"),
    recipe=_RECIPE,
    # A quarter of the width and four stages (strides 2 to 16), the second of two blocks
    # so that a residual block with stochastic depth is in the test model too.
    test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "width_coefficient": 0.25,
                 "depth_coefficient": 1.0,
                 "stages": ((3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 1, 40, 6, 2),
                            (3, 1, 80, 6, 2)),
                 "top_filters": 256},
    variants=[_row(i) for i in range(8)],
)
