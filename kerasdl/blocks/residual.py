"""Residual blocks: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
(basic and bottleneck blocks, shortcut options A and B) and "Identity Mappings in Deep
Residual Networks", ECCV 2016 (pre-activation); Hu et al., "Squeeze-and-Excitation
Networks", CVPR 2018.

Layer names follow keras.applications' ResNet/ResNetV2 (``conv2_block1_1_conv``...), so
its weights load by name. The bottleneck puts its stride on the first 1x1 convolution,
as the paper's and keras.applications' models do (torchvision's "v1.5" moves it to the
3x3).
"""

from __future__ import annotations

import keras

from kerasdl.layers.residual import ZeroPadShortcut

SHORTCUTS = ("projection", "zero_pad", "none")


def apply_conv_bn(x, filters, kernel_size, strides=1, *, padding="same", use_bias=False,
                  epsilon=1e-5, activation="relu", name):
    """Conv -> BatchNorm -> optional activation, named ``{name}_conv/_bn/_relu``."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                            use_bias=use_bias, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_relu")(x)
    return x


def _shortcut(x, filters, stride, kind, use_bias, epsilon, name):
    """The shortcut of a block whose shape changes: option B (1x1 projection + BN,
    ``"projection"``) or option A (subsample and zero-pad, ``"zero_pad"``)."""
    if kind == "zero_pad":
        return ZeroPadShortcut(filters, stride, name=f"{name}_0_pad")(x)
    return apply_conv_bn(x, filters, 1, stride, padding="valid", use_bias=use_bias,
                         epsilon=epsilon, activation=None, name=f"{name}_0")


def apply_squeeze_excite(x, ratio=16, name="se"):
    """Squeeze-and-excitation as the SE-ResNets place it (Hu et al. 2018), on the
    residual branch before the addition: global average, 1x1 convolution to C/ratio with
    ReLU, 1x1 convolution back with a sigmoid gate, channel-wise rescaling. The block is
    the mobile networks' :func:`kerasdl.blocks.mobile.apply_squeeze_excite_gate`; only
    the reduction rule and the layer names are the ResNets'."""
    from kerasdl.blocks.mobile import apply_squeeze_excite_gate

    return apply_squeeze_excite_gate(
        x, max(1, x.shape[-1] // ratio), activation="relu", gate="sigmoid", prefix=name,
        names=("_squeeze", "_reduce", "_reduce_relu", "_expand", "_gate", "_excite"))


def apply_basic_block(x, filters, stride=1, *, shortcut="projection", use_bias=False,
                      epsilon=1e-5, se_ratio=None, name):
    """Two 3x3 convolutions (ResNet-18/34 and the CIFAR ResNets). ``shortcut="none"``
    gives the plain network's block (no residual connection)."""
    needs_match = stride != 1 or x.shape[-1] != filters
    residual = x
    x = apply_conv_bn(x, filters, 3, stride, use_bias=use_bias, epsilon=epsilon,
                      name=f"{name}_1")
    x = apply_conv_bn(x, filters, 3, use_bias=use_bias, epsilon=epsilon, activation=None,
                      name=f"{name}_2")
    if se_ratio:
        x = apply_squeeze_excite(x, se_ratio, name=f"{name}_se")
    if shortcut != "none":
        if needs_match:
            residual = _shortcut(residual, filters, stride, shortcut, use_bias, epsilon, name)
        x = keras.layers.Add(name=f"{name}_add")([residual, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def apply_bottleneck_block(x, filters, stride=1, *, expansion=4, project=None,
                           shortcut="projection", use_bias=False, epsilon=1e-5,
                           se_ratio=None, groups=1, width_per_group=64, name):
    """1x1 (stride) -> 3x3 -> 1x1 (``expansion * filters``), as keras.applications'
    ``residual_block_v1``. ``project`` forces (or forbids) the projection shortcut; by
    default it is used where the shapes differ. ``groups`` > 1 makes the 3x3 a grouped
    convolution of ``groups * width_per_group * filters / 64`` channels (ResNeXt's
    cardinality and bottleneck width, Xie et al. 2017: 32x4d)."""
    out = expansion * filters
    inner = groups * width_per_group * filters // 64
    if project is None:
        project = stride != 1 or x.shape[-1] != out
    residual = x
    if project and shortcut != "none":
        residual = _shortcut(x, out, stride, shortcut, use_bias, epsilon, name)
    x = apply_conv_bn(x, inner, 1, stride, padding="valid", use_bias=use_bias,
                      epsilon=epsilon, name=f"{name}_1")
    if groups > 1:
        x = keras.layers.Conv2D(inner, 3, padding="same", groups=groups, use_bias=use_bias,
                                kernel_initializer="he_normal", name=f"{name}_2_conv")(x)
        x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_2_bn")(x)
        x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    else:
        x = apply_conv_bn(x, inner, 3, use_bias=use_bias, epsilon=epsilon, name=f"{name}_2")
    x = apply_conv_bn(x, out, 1, padding="valid", use_bias=use_bias, epsilon=epsilon,
                      activation=None, name=f"{name}_3")
    if se_ratio:
        x = apply_squeeze_excite(x, se_ratio, name=f"{name}_se")
    if shortcut != "none":
        x = keras.layers.Add(name=f"{name}_add")([residual, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def apply_preact_basic_block(x, filters, stride=1, *, dropout_rate=0.0, epsilon=1e-5,
                             name):
    """Wide ResNet's block (Zagoruyko & Komodakis 2016): BN-ReLU-conv3x3 (stride),
    dropout, BN-ReLU-conv3x3, added to the input or, where the shape changes, to a 1x1
    projection of the pre-activated input."""
    preact = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_preact_bn")(x)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if stride != 1 or x.shape[-1] != filters:
        residual = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                       kernel_initializer="he_normal", name=f"{name}_0_conv")(preact)
    else:
        residual = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_1_conv")(preact)
    y = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_1_bn")(y)
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    if dropout_rate:
        y = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_2_conv")(y)
    return keras.layers.Add(name=f"{name}_out")([residual, y])


def apply_preact_bottleneck_block(x, filters, stride=1, *, expansion=4, project=False,
                                  epsilon=1.001e-5, name):
    """Pre-activation bottleneck (He et al. 2016b), exactly keras.applications'
    ``residual_block_v2``: BN-ReLU first, stride on the 3x3, identity or 1x1 projection
    from the pre-activated input, no activation after the addition."""
    out = expansion * filters
    preact = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_preact_bn")(x)
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if project:
        residual = keras.layers.Conv2D(out, 1, strides=stride, kernel_initializer="he_normal",
                                       name=f"{name}_0_conv")(preact)
    elif stride > 1:
        residual = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        residual = x
    x = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_1_conv")(preact)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_1_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_2_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_2_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = keras.layers.Conv2D(out, 1, kernel_initializer="he_normal", name=f"{name}_3_conv")(x)
    return keras.layers.Add(name=f"{name}_out")([residual, x])
