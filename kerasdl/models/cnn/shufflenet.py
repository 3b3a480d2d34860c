"""ShuffleNet V2: Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for
Efficient CNN Architecture Design", ECCV 2018.

Table 5: a 3x3/2 convolution (24 filters) and 3x3/2 max pooling, three stages of 4, 8
and 4 units, a 1x1 convolution (conv5), global average pooling and a fully connected
layer. Each stage starts with a downsampling unit (Fig. 3d: both branches see the whole
input; left a 3x3/2 depthwise convolution and a 1x1 convolution, right 1x1, 3x3/2
depthwise, 1x1), followed by basic units (Fig. 3c: channel split; the left half passes
unchanged, the right half goes through 1x1, 3x3 depthwise, 1x1). Both branches end with
half the stage's channels, are concatenated and channel-shuffled with 2 groups. BatchNorm
follows every convolution, ReLU every one but the depthwise ones (guideline G4: fewer
element-wise operations); the convolutions have no biases.

Output channels of stages 2-4 and conv5 (Table 5): 0.5x 48/96/192/1024, 1.0x
116/232/464/1024, 1.5x 176/352/704/1024, 2.0x 244/488/976/2048.

Where kerasdl differs: by default two kinds of BatchNorm parameter are left out, as
they add nothing in training mode, where the next BatchNorm normalises with the batch's
own statistics. The offset of every BatchNorm after a depthwise convolution: the 1x1
convolution and BatchNorm that follow subtract any constant again, so its gradient is
zero. The scale of the BatchNorm after each right branch's first 1x1 convolution: ReLU,
the depthwise convolution and its BatchNorm follow, all per channel, ReLU commutes with
a positive scale and that BatchNorm divides it out, so only the offset-to-scale ratio
matters (up to BatchNorm's epsilon); at the start, with zero offsets, the scale's
gradient comes from that epsilon alone. Neither changes what the network can compute; kept, they get zero or
near-zero gradients. ``full_batchnorm=True`` keeps them, as torchvision does; its
counts (trainable weights only: Keras' ``count_params()`` adds BatchNorm's moving mean
and variance, 2 per channel) are registered with that setting.

Padding is PyTorch's (1 pixel on each side of the 3x3/2 layers, not Keras' "same",
which pads only the bottom and right of an even input). The 2.0x model has 20% dropout
before the classifier, as in the authors' code (megvii-model's ShuffleNet-Series); the
others none. Input scaling is ImageNet mean/std (torchvision's).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.layers.shuffle import ChannelShuffle, ChannelSplit
from kerasdl.registry import ParamCount, Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Ma, Zhang, Zheng, Sun, ShuffleNet V2: Practical Guidelines for Efficient CNN "
         "Architecture Design, ECCV 2018")
EPSILON = 1e-5


@dataclass(frozen=True)
class ShuffleNetV2Config:
    """Attributes:
        stage_widths: output channels of each stage (even: the two branches split them).
        stage_repeats: units in each stage, the first of them downsampling.
        stem_filters: filters of conv1.
        final_filters: filters of conv5.
        full_batchnorm: keep the redundant BatchNorm offsets and scales (see the module
            docstring), as torchvision's models have them.
    """

    stage_widths: tuple = (116, 232, 464)
    stage_repeats: tuple = (4, 8, 4)
    stem_filters: int = 24
    final_filters: int = 1024
    full_batchnorm: bool = False

    def __post_init__(self):
        if not self.stage_widths or len(self.stage_widths) != len(self.stage_repeats):
            raise KerasdlError(f"stage_widths {self.stage_widths} and stage_repeats "
                               f"{self.stage_repeats} must be non-empty and of equal length",
                               argument="stage_widths")
        for n in (*self.stage_repeats, self.stem_filters, self.final_filters):
            check_positive_int(n, "stage_repeats/stem_filters/final_filters")
        for n in self.stage_widths:
            check_positive_int(n, "stage_widths")
            if n % 2:
                raise KerasdlError(f"stage_widths must be even (each branch makes half the "
                                   f"channels), got {self.stage_widths}",
                                   argument="stage_widths")

    def min_input_size(self):
        return 2 ** (2 + len(self.stage_widths))


def _pointwise(x, filters, name, scale=True):
    x = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=EPSILON, scale=scale, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _depthwise(x, stride, name, center):
    """3x3 depthwise convolution and BatchNorm, no ReLU (Fig. 3)."""
    padding = "same"
    if stride > 1:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding=padding, use_bias=False,
                                     depthwise_initializer="he_normal", name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(epsilon=EPSILON, center=center,
                                           name=f"{name}_bn")(x)


def apply_shufflenet_v2_unit(x, filters, stride, *, full_batchnorm=False, name):
    """One ShuffleNet V2 unit with ``filters`` output channels: the basic unit (Fig. 3c)
    for ``stride`` 1, which needs ``filters`` input channels, else the downsampling unit
    (Fig. 3d). ``full_batchnorm`` as in :class:`ShuffleNetV2Config`."""
    half = filters // 2
    if stride == 1:
        if x.shape[-1] != filters:
            raise KerasdlError(f"a stride-1 ShuffleNet V2 unit keeps its {x.shape[-1]} "
                               f"channels; got filters={filters}", argument="filters")
        left, right = ChannelSplit(name=f"{name}_split")(x)
    else:
        left = _depthwise(x, stride, f"{name}_branch1_dw", full_batchnorm)
        left = _pointwise(left, half, f"{name}_branch1_pw")
        right = x
    right = _pointwise(right, half, f"{name}_branch2_pw1", scale=full_batchnorm)
    right = _depthwise(right, stride, f"{name}_branch2_dw", full_batchnorm)
    right = _pointwise(right, half, f"{name}_branch2_pw2")
    x = keras.layers.Concatenate(name=f"{name}_concat")([left, right])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x)


def build_shufflenet_v2(
    config=ShuffleNetV2Config(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="imagenet",
    features_only=False,
    name="shufflenet_v2",
):
    """A ShuffleNet V2 from its settings row. ``include_top=False`` ends at conv5 (then
    ``pooling`` "avg" or "max" pools it); ``features_only=True`` returns ``{"stride_S":
    map}``, the last map at each stride (2 to 32, conv5 at 32). Other arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=config.min_input_size())
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = keras.layers.ZeroPadding2D(1, name="conv1_pad")(x)
    x = keras.layers.Conv2D(config.stem_filters, 3, strides=2, use_bias=False,
                            kernel_initializer="he_normal", name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=EPSILON, name="conv1_bn")(x)
    x = taps.record(keras.layers.Activation("relu", name="conv1_relu")(x), 2)
    # After the ReLU, zero padding acts as PyTorch's -inf padding of max pooling.
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = taps.record(keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x), 4)
    stride = 4
    for s, (filters, repeats) in enumerate(zip(config.stage_widths, config.stage_repeats)):
        stride *= 2
        for u in range(repeats):
            x = apply_shufflenet_v2_unit(x, filters, 2 if u == 0 else 1,
                                         full_batchnorm=config.full_batchnorm,
                                         name=f"stage{s + 2}_unit{u + 1}")
        taps.record(x, stride)
    x = taps.record(_pointwise(x, config.final_filters, f"conv{len(config.stage_widths) + 2}"),
                    stride)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    x = pooled_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return keras.Model(inputs, x, name=name)


# ShuffleNet V2 trains as ShuffleNet V1 did (Zhang et al. 2018, Sec. 4.1; the authors'
# ShuffleNet-Series code): SGD with momentum 0.9, lr 0.5 at batch 1024 decayed linearly
# to 0 over 300,000 iterations (240 epochs), weight decay 4e-5.
_RECIPE = paper_recipe(learning_rate=0.5, paper_batch=1024, l2=4e-5, epochs=240,
                       warmup_epochs=1.0, notes="Ma et al. 2018 / Zhang et al. 2018, Sec. 4.1")


def _row(width, widths, final, torchvision_count, redundant, dropout_rate=0.0):
    tag = f"x{width.replace('.', '_')}"
    return Variant(
        f"shufflenet_v2_{tag}",
        ShuffleNetV2Config(stage_widths=widths, final_filters=final),
        description=f"ShuffleNet V2 {width}x (Table 5): stages {'/'.join(map(str, widths))}, "
                    f"conv5 {final}",
        reference_params={
            f"torchvision shufflenet_v2_{tag} (trainable)":
                ParamCount(torchvision_count, True, {"full_batchnorm": True}),
            f"torchvision shufflenet_v2_{tag} less its {redundant:,} redundant BatchNorm "
            "offsets and scales (trainable)":
                ParamCount(torchvision_count - redundant, True),
        },
        defaults={"dropout_rate": dropout_rate} if dropout_rate else {},
    )


register_family(
    build_shufflenet_v2,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("mobile", "shuffle"),
    recipe=_RECIPE,
    test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "stem_filters": 4,
                 "stage_widths": (8, 8, 8), "stage_repeats": (1, 2, 1), "final_filters": 8},
    variants=[
        _row("0.5", (48, 96, 192), 1024, 1_366_792, 1_896),
        _row("1.0", (116, 232, 464), 1024, 2_278_604, 4_548),
        _row("1.5", (176, 352, 704), 1024, 3_503_624, 6_888),
        _row("2.0", (244, 488, 976), 2048, 7_393_996, 9_540, dropout_rate=0.2),
    ],
)
