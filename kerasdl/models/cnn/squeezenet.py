"""SqueezeNet: Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", arXiv 1602.07360, 2016.

A fire module (Sec. 3.2) squeezes with ``s`` 1x1 filters and expands with ``e`` 1x1 and
``e`` 3x3 filters whose outputs are concatenated (2e channels), every convolution
followed by ReLU. The network (Table 1, Fig. 2 left) is a stem convolution, fire2..fire9
with 3x3/2 max pooling after some of them, 50% dropout, and a 1x1 convolution to the
classes with ReLU, averaged over all positions: no fully connected layer, no BatchNorm.

* ``squeezenet1_0``: Table 1, as the authors' Caffe files (``SqueezeNet_v1.0``): conv1
  96 filters 7x7/2, pooling after conv1, fire4 and fire8.
* ``squeezenet1_1``: the authors' ``SqueezeNet_v1.1`` files: conv1 64 filters 3x3/2,
  pooling after conv1, fire3 and fire5, the same fire modules; about 2.4x less
  computation for the same accuracy.

Fire modules (squeeze/expand): 16/64, 16/64, 32/128, 32/128, 48/192, 48/192, 64/256,
64/256. Pooling rounds its output size up, as Caffe's (and torchvision's ``ceil_mode``);
the convolutions start as the Caffe files say (Caffe's "xavier" filler, i.e. LeCun
uniform, and N(0, 0.01) for conv10). Layer names are the Caffe ones with "/" as "_".

Where kerasdl differs: the default input is 224x224 with ImageNet mean/std scaling (as
torchvision's SqueezeNets; the Caffe files crop 227 and subtract the BGR mean, which
``input_scaling="caffe"`` gives), and v1.0's conv10 has no 1-pixel zero padding (a quirk
of the Caffe file that torchvision also drops: it only adds border positions to pool10).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, pooled_head
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, SqueezeNet: AlexNet-level "
         "accuracy with 50x fewer parameters and <0.5MB model size, arXiv 2016")
POOL_SIZE = 3
POOL_STRIDE = 2


@dataclass(frozen=True)
class SqueezeNetConfig:
    """Attributes:
        stem_filters, stem_kernel: conv1 (stride 2, no padding).
        squeeze: squeeze filters of fire2, fire3, ...
        expand: 1x1 (and as many 3x3) expand filters of each fire module.
        pool_after: the layers followed by 3x3/2 max pooling, numbered as in the paper
            (1 is conv1, 2..9 are fire2..fire9).
    """

    stem_filters: int = 64
    stem_kernel: int = 3
    squeeze: tuple = (16, 16, 32, 32, 48, 48, 64, 64)
    expand: tuple = (64, 64, 128, 128, 192, 192, 256, 256)
    pool_after: tuple = (1, 3, 5)

    def __post_init__(self):
        check_positive_int(self.stem_filters, "stem_filters")
        check_positive_int(self.stem_kernel, "stem_kernel")
        if not self.squeeze or len(self.squeeze) != len(self.expand):
            raise KerasdlError(f"squeeze {self.squeeze} and expand {self.expand} must be "
                               "non-empty and of equal length", argument="squeeze")
        for n in (*self.squeeze, *self.expand):
            check_positive_int(n, "squeeze/expand")
        last = len(self.squeeze) + 1
        if any(not isinstance(i, int) or not 1 <= i <= last for i in self.pool_after):
            raise KerasdlError(f"pool_after must hold layer numbers from 1 (conv1) to {last} "
                               f"(the last fire module), got {self.pool_after}",
                               argument="pool_after")

    def min_input_size(self):
        """The smallest side for which every pooling window fits in its input."""
        side = self.stem_kernel
        while True:
            size, fits = (side - self.stem_kernel) // 2 + 1, True
            for _ in self.pool_after:
                fits = fits and size >= POOL_SIZE
                size = _ceil_pool_size(size)
            if fits:
                return side
            side += 1


def _ceil_pool_size(n):
    return -(-(n - POOL_SIZE) // POOL_STRIDE) + 1


def _max_pool(x, name):
    """3x3/2 max pooling that rounds the output size up (Caffe): the last window may
    hang over the bottom and right edges. Its inputs come out of a ReLU, so zeros
    padded there never change a maximum."""
    pads = [max(0, (_ceil_pool_size(n) - 1) * POOL_STRIDE + POOL_SIZE - n)
            for n in x.shape[1:3]]
    if any(pads):
        x = keras.layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(POOL_SIZE, strides=POOL_STRIDE, name=name)(x)


def _conv(x, filters, kernel_size, name, **kwargs):
    x = keras.layers.Conv2D(filters, kernel_size, kernel_initializer="lecun_uniform",
                            name=name, **kwargs)(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def apply_fire(x, squeeze, expand, *, name):
    """A fire module (Sec. 3.2): 1x1 squeeze, then 1x1 and 3x3 expand side by side,
    concatenated; ReLU after each convolution."""
    s = _conv(x, squeeze, 1, f"{name}_squeeze1x1")
    e1 = _conv(s, expand, 1, f"{name}_expand1x1")
    e3 = _conv(s, expand, 3, f"{name}_expand3x3", padding="same")
    return keras.layers.Concatenate(name=f"{name}_concat")([e1, e3])


def build_squeezenet(
    config=SqueezeNetConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.5,
    input_scaling="imagenet",
    features_only=False,
    name="squeezenet",
):
    """A SqueezeNet from its settings row.

    The classifier is the paper's: ``dropout_rate`` (drop9, 0.5), conv10 (1x1 to
    ``num_classes``, ReLU) and global average pooling (pool10); its outputs are the
    logits, non-negative because of conv10's ReLU. ``include_top=False`` ends at fire9
    (then ``pooling`` "avg" or "max" pools it); ``features_only=True`` returns
    ``{"stride_S": map}``, the last map at each stride (2, 4, 8, 16). Other arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`.
    """
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=config.min_input_size())
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    x = taps.record(_conv(x, config.stem_filters, config.stem_kernel, "conv1", strides=2), 2)
    stride = 2
    for number in range(1, len(config.squeeze) + 2):
        if number > 1:
            i = number - 2
            x = apply_fire(x, config.squeeze[i], config.expand[i], name=f"fire{number}")
            taps.record(x, stride)
        if number in config.pool_after:
            x = _max_pool(x, f"pool{number}")
            stride *= POOL_STRIDE
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    if not include_top:
        x = pooled_head(x, include_top=False, pooling=pooling, num_classes=num_classes)
        return keras.Model(inputs, x, name=name)
    last = len(config.squeeze) + 1
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=f"drop{last}")(x)
    x = keras.layers.Conv2D(num_classes, 1, name=f"conv{last + 1}",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    x = keras.layers.Activation("relu", name=f"conv{last + 1}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name=f"pool{last + 1}")(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation,
                                    name=f"predictions_{classifier_activation}")(x)
    return keras.Model(inputs, x, name=name)


# The authors' solver (SqueezeNet_v1.0/solver.prototxt; v1.1 ships none of its own): SGD
# with momentum 0.9, lr 0.08 at batch 1024 (32 x iter_size 32), "poly" decay (power 0.5)
# to zero over 85,000 iterations (68 epochs of ImageNet's 1,281,167 images), weight decay
# 2e-4.
_RECIPE = paper_recipe(learning_rate=0.08, paper_batch=1024, l2=2e-4, epochs=68,
                       warmup_epochs=1.0, notes="Iandola et al., SqueezeNet_v1.0/solver.prototxt")

register_family(
    build_squeezenet,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("mobile", "fire"),
    recipe=_RECIPE,
    # Narrower fire modules die: with every ReLU of some layer at zero for both test
    # images, its weights get no gradient (these did not in 60 seeded trials).
    test_kwargs={"input_shape": (48, 48, 3), "num_classes": 5, "stem_filters": 8,
                 "squeeze": (6,) * 8, "expand": (8,) * 8},
    variants=[
        Variant(
            "squeezenet1_0",
            SqueezeNetConfig(stem_filters=96, stem_kernel=7, pool_after=(1, 4, 8)),
            description="SqueezeNet 1.0 (Table 1): conv1 96x7x7/2, 8 fire modules, "
                        "pooling after conv1, fire4, fire8",
            reference_params={"torchvision squeezenet1_0": 1_248_424},
        ),
        Variant(
            "squeezenet1_1",
            SqueezeNetConfig(),
            description="SqueezeNet 1.1 (authors' v1.1): conv1 64x3x3/2, pooling after "
                        "conv1, fire3, fire5",
            reference_params={"torchvision squeezenet1_1": 1_235_496},
        ),
    ],
)
