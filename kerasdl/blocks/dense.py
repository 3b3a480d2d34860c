"""Dense blocks and transitions: Huang, Liu, van der Maaten, Weinberger, "Densely
Connected Convolutional Networks", CVPR 2017 (DenseNet-BC). Layer names follow
keras.applications' DenseNet (``conv2_block1_1_conv``, ``pool2_conv``...)."""

from __future__ import annotations

import keras


def apply_dense_layer(x, growth_rate, *, bottleneck=4, epsilon=1.001e-5, name):
    """BN-ReLU-Conv1x1 (``bottleneck * growth_rate``) - BN-ReLU-Conv3x3 (``growth_rate``),
    concatenated to the input: every layer sees every earlier feature map."""
    y = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_0_bn")(x)
    y = keras.layers.Activation("relu", name=f"{name}_0_relu")(y)
    y = keras.layers.Conv2D(bottleneck * growth_rate, 1, use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_1_conv")(y)
    y = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_1_bn")(y)
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = keras.layers.Conv2D(growth_rate, 3, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_2_conv")(y)
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def apply_dense_block(x, layers, growth_rate, *, epsilon=1.001e-5, name):
    """``layers`` dense layers; the channels grow by ``growth_rate`` each."""
    for i in range(layers):
        x = apply_dense_layer(x, growth_rate, epsilon=epsilon, name=f"{name}_block{i + 1}")
    return x


def apply_transition(x, compression=0.5, *, epsilon=1.001e-5, name):
    """BN-ReLU-Conv1x1 keeping ``compression`` of the channels, then 2x2 average pooling."""
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    x = keras.layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)
