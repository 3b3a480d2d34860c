"""Blocks of the mobile networks: Howard et al., "MobileNets: Efficient Convolutional
Neural Networks for Mobile Vision Applications", 2017 (depthwise-separable convolution);
Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018;
Howard et al., "Searching for MobileNetV3", ICCV 2019 (hard swish, squeeze-excite with
a hard-sigmoid gate); Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", ICML 2019 (MBConv with swish and stochastic depth).

One inverted-residual function serves MobileNetV2, MobileNetV3 and EfficientNet; only
the layer names differ, and they are keras.applications' names for each network
(``naming=``), so its checkpoints load by name into our builders.
"""

from __future__ import annotations

import keras

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int

ACTIVATIONS = ("relu", "relu6", "hard_swish", "swish", "hard_sigmoid", "sigmoid")
NAMINGS = ("mobilenet_v2", "mobilenet_v3", "efficientnet")

# EfficientNet's initialisers (its reference TPU code, kept by keras.applications): a
# fan-out He normal for convolutions, fan-out uniform 1/3 for the classifier.
EFFICIENTNET_CONV_INIT = {"class_name": "VarianceScaling",
                          "config": {"scale": 2.0, "mode": "fan_out",
                                     "distribution": "truncated_normal"}}
EFFICIENTNET_DENSE_INIT = {"class_name": "VarianceScaling",
                           "config": {"scale": 1.0 / 3.0, "mode": "fan_out",
                                      "distribution": "uniform"}}

# keras.applications' layer names in each network, as suffixes of the block prefix.
_NAMES = {
    "mobilenet_v2": {
        "expand": "expand", "expand_bn": "expand_BN", "expand_act": "expand_relu",
        "pad": "pad", "depthwise": "depthwise", "depthwise_bn": "depthwise_BN",
        "depthwise_act": "depthwise_relu", "project": "project", "project_bn": "project_BN",
        "se": None, "drop": "drop", "add": "add",
    },
    "mobilenet_v3": {
        "expand": "expand", "expand_bn": "expand_bn", "expand_act": "expand_act",
        "pad": "depthwise_pad", "depthwise": "depthwise", "depthwise_bn": "depthwise_bn",
        "depthwise_act": "depthwise_act", "project": "project", "project_bn": "project_bn",
        "se": ("squeeze_excite_avg_pool", "squeeze_excite_conv", "squeeze_excite_relu",
               "squeeze_excite_conv_1", "squeeze_excite_gate", "squeeze_excite_mul"),
        "drop": "drop", "add": "add",
    },
    "efficientnet": {
        "expand": "expand_conv", "expand_bn": "expand_bn", "expand_act": "expand_activation",
        "pad": "dwconv_pad", "depthwise": "dwconv", "depthwise_bn": "bn",
        "depthwise_act": "activation", "project": "project_conv", "project_bn": "project_bn",
        "se": ("se_squeeze", "se_reduce", "se_reduce_activation", "se_expand", "se_gate",
               "se_excite"),
        "drop": "drop", "add": "add",
    },
}


def make_divisible(v, divisor=8, min_value=None):
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``,
    default ``divisor``), one multiple higher where rounding would lose more than 10% of
    ``v``: the channel rule of the MobileNetV2/V3 and EfficientNet reference code, so
    that scaled widths suit vectorised kernels."""
    check_positive_int(divisor, "divisor")
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * v:
        rounded += divisor
    return int(rounded)


def hard_sigmoid(x, name=None):
    """``relu6(x + 3) / 6`` (Howard et al. 2019, Sec. 5.2), a piecewise-linear sigmoid
    that quantises well; Keras' ``"hard_sigmoid"`` computes exactly this, as
    keras.applications' MobileNetV3 does with ``ReLU(6)(x + 3) / 6``."""
    return keras.layers.Activation("hard_sigmoid", name=name)(x)


def hard_swish(x, name=None):
    """``x * relu6(x + 3) / 6`` (Howard et al. 2019, Eq. 2), Keras' ``"hard_swish"``."""
    return keras.layers.Activation("hard_swish", name=name)(x)


def apply_activation(x, activation, name=None):
    """One of ``ACTIVATIONS`` as a layer. ``relu6`` is a capped ``ReLU`` (MobileNet v1/v2
    cap activations at 6 to keep them in range for low-precision inference)."""
    check_choice(activation, ACTIVATIONS, "activation")
    if activation == "relu":
        return keras.layers.ReLU(name=name)(x)
    if activation == "relu6":
        return keras.layers.ReLU(6.0, name=name)(x)
    return keras.layers.Activation(activation, name=name)(x)


def stride2_padding(x, kernel_size):
    """The explicit padding that, before a "valid" strided convolution, reproduces
    TensorFlow's "same" padding for stride 2: one pixel less at the top/left when the
    side is even. Written out so that every backend (and TFLite) sees the pixels the
    reference weights were trained on."""
    pad = kernel_size // 2
    sides = []
    for size in x.shape[1:3]:
        sides.append((pad - (1 if size is None or size % 2 == 0 else 0), pad))
    return tuple(sides)


def apply_depthwise_separable(x, filters, strides=1, *, depth_multiplier=1,
                              activation="relu6", block_id):
    """MobileNet v1's layer (Howard et al. 2017, Fig. 3): 3x3 depthwise convolution,
    BN, ReLU6, then 1x1 pointwise convolution, BN, ReLU6. keras.applications' names
    (``conv_dw_{id}``, ``conv_pw_{id}``...). A strided block pads bottom/right by one
    and convolves "valid", as keras.applications' MobileNet does: TensorFlow's "same"
    on even sides (the checkpoints' 224, 192...); an odd side loses a row or column."""
    check_positive_int(filters, "filters")
    check_choice(strides, (1, 2), "strides")
    check_positive_int(depth_multiplier, "depth_multiplier")
    if strides != 1:
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=strides,
                                     padding="same" if strides == 1 else "valid",
                                     depth_multiplier=depth_multiplier, use_bias=False,
                                     name=f"conv_dw_{block_id}")(x)
    x = keras.layers.BatchNormalization(name=f"conv_dw_{block_id}_bn")(x)
    x = apply_activation(x, activation, name=f"conv_dw_{block_id}_relu")
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False,
                            name=f"conv_pw_{block_id}")(x)
    x = keras.layers.BatchNormalization(name=f"conv_pw_{block_id}_bn")(x)
    return apply_activation(x, activation, name=f"conv_pw_{block_id}_relu")


def apply_squeeze_excite_gate(x, reduced_filters, *, activation="relu", gate="sigmoid",
                              names, kernel_initializer="glorot_uniform", prefix=""):
    """Squeeze-and-excitation (Hu et al. 2018) as the mobile networks place it, after the
    depthwise convolution: global average, 1x1 convolution to ``reduced_filters`` with
    ``activation``, 1x1 convolution back with ``gate``, channel-wise rescaling.

    ``names`` are the six layer names (pool, reduce, its activation, expand, gate,
    multiply) after ``prefix``. MobileNetV3 gates with the hard sigmoid and reduces to a
    quarter of the expanded width; EfficientNet gates with the sigmoid, reduces to a
    quarter of the block's input width and uses swish in between.
    The SE-ResNets use it too (:func:`kerasdl.blocks.apply_squeeze_excite`: ReLU,
    reduction to C/ratio)."""
    check_positive_int(reduced_filters, "reduced_filters")
    pool, reduce, reduce_act, expand, gate_name, multiply = (f"{prefix}{n}" for n in names)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=pool)(x)
    s = keras.layers.Conv2D(reduced_filters, 1, padding="same",
                            kernel_initializer=kernel_initializer, name=reduce)(s)
    s = apply_activation(s, activation, name=reduce_act)
    s = keras.layers.Conv2D(x.shape[-1], 1, padding="same",
                            kernel_initializer=kernel_initializer, name=expand)(s)
    s = apply_activation(s, gate, name=gate_name)
    return keras.layers.Multiply(name=multiply)([x, s])


def apply_inverted_residual(x, filters, *, expanded_filters, kernel_size=3, strides=1,
                            activation="relu6", se_filters=None, se_activation="relu",
                            se_gate="hard_sigmoid", drop_rate=0.0, residual=True,
                            bn_epsilon=1e-3, bn_momentum=0.999,
                            kernel_initializer="glorot_uniform", naming="mobilenet_v2",
                            name):
    """The inverted residual with linear bottleneck (Sandler et al. 2018, Fig. 3b):
    1x1 expansion to ``expanded_filters`` (skipped when it equals the input width), BN,
    ``activation``; ``kernel_size`` depthwise convolution (stride ``strides``), BN,
    ``activation``; optional squeeze-excite to ``se_filters`` (MobileNetV3,
    EfficientNet); 1x1 linear projection to ``filters``, BN, no activation (a ReLU on the
    narrow bottleneck would destroy information, Sec. 3.2). When the shapes allow,
    the input is added back; ``drop_rate`` > 0 first drops the whole residual branch
    per example (stochastic depth, Huang et al. 2016, which EfficientNet calls drop
    connect), with Keras' ``Dropout`` scaling survivors by ``1 / (1 - drop_rate)``.

    ``name`` is the block prefix (``"block_3_"``, ``"expanded_conv_3_"``, ``"block2a_"``)
    and ``naming`` picks keras.applications' layer names of that network."""
    check_choice(naming, NAMINGS, "naming")
    check_positive_int(filters, "filters")
    check_positive_int(expanded_filters, "expanded_filters")
    check_choice(strides, (1, 2), "strides")
    check_fraction(drop_rate, "drop_rate")
    names = _NAMES[naming]
    inputs = x
    bn = dict(epsilon=bn_epsilon, momentum=bn_momentum)
    if expanded_filters != x.shape[-1]:
        x = keras.layers.Conv2D(expanded_filters, 1, padding="same", use_bias=False,
                                kernel_initializer=kernel_initializer,
                                name=f"{name}{names['expand']}")(x)
        x = keras.layers.BatchNormalization(**bn, name=f"{name}{names['expand_bn']}")(x)
        x = apply_activation(x, activation, name=f"{name}{names['expand_act']}")
    if strides == 2:
        x = keras.layers.ZeroPadding2D(stride2_padding(x, kernel_size),
                                       name=f"{name}{names['pad']}")(x)
    x = keras.layers.DepthwiseConv2D(kernel_size, strides=strides,
                                     padding="same" if strides == 1 else "valid",
                                     use_bias=False, depthwise_initializer=kernel_initializer,
                                     name=f"{name}{names['depthwise']}")(x)
    x = keras.layers.BatchNormalization(**bn, name=f"{name}{names['depthwise_bn']}")(x)
    x = apply_activation(x, activation, name=f"{name}{names['depthwise_act']}")
    if se_filters:
        if names["se"] is None:
            raise KerasdlError(f"naming={naming!r} has no squeeze-excite layers; "
                               "se_filters must be None", argument="se_filters")
        x = apply_squeeze_excite_gate(x, se_filters, activation=se_activation, gate=se_gate,
                                      names=names["se"], prefix=name,
                                      kernel_initializer=kernel_initializer)
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False,
                            kernel_initializer=kernel_initializer,
                            name=f"{name}{names['project']}")(x)
    x = keras.layers.BatchNormalization(**bn, name=f"{name}{names['project_bn']}")(x)
    if residual and strides == 1 and inputs.shape[-1] == filters:
        if drop_rate > 0:
            # One draw per example, shared by every position and channel: the whole
            # branch is dropped, leaving the identity.
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1),
                                     name=f"{name}{names['drop']}")(x)
        x = keras.layers.Add(name=f"{name}{names['add']}")([x, inputs])
    return x


def apply_mbconv(x, filters, *, expand_ratio=6, kernel_size=3, strides=1, se_ratio=0.25,
                 activation="swish", drop_rate=0.0, id_skip=True, bn_epsilon=1e-3,
                 bn_momentum=0.99, name):
    """EfficientNet's MBConv block (Tan & Le 2019, Table 1; Tan et al. 2019, MnasNet):
    the inverted residual with input width times ``expand_ratio`` inside, swish, and a
    squeeze-excite reducing to ``se_ratio`` of the block's *input* width (at least 1),
    gated by the sigmoid; stochastic depth at ``drop_rate``. keras.applications'
    EfficientNet names (``block2a_expand_conv``...) and initialisers."""
    check_positive_int(expand_ratio, "expand_ratio")
    check_fraction(se_ratio, "se_ratio", high=1.0, high_inclusive=True)
    filters_in = x.shape[-1]
    return apply_inverted_residual(
        x, filters, expanded_filters=filters_in * expand_ratio, kernel_size=kernel_size,
        strides=strides, activation=activation,
        se_filters=max(1, int(filters_in * se_ratio)) if se_ratio else None,
        se_activation=activation, se_gate="sigmoid", drop_rate=drop_rate, residual=id_skip,
        bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
        kernel_initializer=EFFICIENTNET_CONV_INIT, naming="efficientnet", name=name)
