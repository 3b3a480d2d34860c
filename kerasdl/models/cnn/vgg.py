"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015.

The rows are Table 1's columns, stage by stage (a number is a 3x3 convolution with that
many filters, ``(filters, 1)`` a 1x1 convolution; each stage ends in 2x2 max pooling),
then FC-4096, FC-4096 and the classifier:

* A (``vgg11``), A-LRN (``vgg11_lrn``: local response normalisation after the first
  layer), B (``vgg13``), C (``vgg16_c``: a 1x1 convolution closing stages 3-5),
  D (``vgg16``) and E (``vgg19``); ``batch_norm=True`` adds BatchNorm after every
  convolution (not in the paper; torchvision's ``vgg*_bn``).

Table 2 gives 133, 133, 133, 134, 138 and 144 million parameters; the exact counts are
torchvision's and keras.applications' (VGG16, VGG19: same layer names and weights, so
:func:`kerasdl.models.load_keras_applications_weights` copies them). Dropout 0.5 after
the two FC layers is the paper's (``fc_dropout_rate``). Input scaling: "caffe", as
keras.applications' ``preprocess_input`` for VGG (BGR, ImageNet mean subtracted).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.blocks import FeatureTaps
from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.heads import POOLINGS, check_classifier_args, classifier, pooled_head
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import paper_recipe

PAPER = ("Simonyan, Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
         "Recognition, ICLR 2015")


def _conv_spec(spec):
    """``(filters, kernel_size)`` of one stage entry: an int is a 3x3 convolution."""
    filters, kernel = (spec, 3) if isinstance(spec, int) else tuple(spec)
    check_positive_int(filters, "stages")
    check_choice(kernel, (1, 3), "stages kernel size")
    return filters, kernel


@dataclass(frozen=True)
class VGGConfig:
    """The settings that tell VGG configurations apart.

    Attributes:
        stages: the convolutions of each stage, as in Table 1 (see the module docstring).
        lrn: local response normalisation after the first convolution (A-LRN).
        batch_norm: BatchNorm after every convolution (not in the paper).
        fc_units: units of the two hidden FC layers.
        fc_dropout_rate: dropout after each hidden FC layer (paper: 0.5).
    """

    stages: tuple = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
    lrn: bool = False
    batch_norm: bool = False
    fc_units: int = 4096
    fc_dropout_rate: float = 0.5

    def __post_init__(self):
        if not self.stages or not all(self.stages):
            raise KerasdlError("stages must hold at least one non-empty stage",
                               argument="stages")
        for stage in self.stages:
            for spec in stage:
                _conv_spec(spec)
        check_positive_int(self.fc_units, "fc_units")
        check_fraction(self.fc_dropout_rate, "fc_dropout_rate")


def build_vgg(
    config=VGGConfig(),
    input_shape=(224, 224, 3),
    num_classes=1000,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    dropout_rate=0.0,
    input_scaling="caffe",
    features_only=False,
    name="vgg",
):
    """A VGG network from its Table 1 column (see the module docstring). Arguments as
    :func:`kerasdl.models.cnn.resnet.build_resnet`; ``features_only`` taps each stage's
    pooled output (strides 2, 4, ..., 32)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate,
                                        min_size=2 ** len(config.stages))
    check_choice(pooling, POOLINGS, "pooling")
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    taps = FeatureTaps()
    for b, stage in enumerate(config.stages, start=1):
        for i, spec in enumerate(stage, start=1):
            filters, kernel = _conv_spec(spec)
            name_ = f"block{b}_conv{i}"
            if config.batch_norm:
                x = keras.layers.Conv2D(filters, kernel, padding="same", name=name_)(x)
                x = keras.layers.BatchNormalization(name=f"block{b}_bn{i}")(x)
                x = keras.layers.Activation("relu", name=f"block{b}_relu{i}")(x)
            else:
                x = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu",
                                        name=name_)(x)
            if config.lrn and b == 1 and i == 1:
                x = LocalResponseNormalization(name="block1_lrn")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
        taps.record(x, 2 ** b)
    if features_only:
        return keras.Model(inputs, taps.outputs(), name=name)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for j in (1, 2):
            x = keras.layers.Dense(config.fc_units, activation="relu", name=f"fc{j}")(x)
            if config.fc_dropout_rate:
                x = keras.layers.Dropout(config.fc_dropout_rate, name=f"fc{j}_dropout")(x)
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    else:
        x = pooled_head(x, include_top=False, pooling=pooling, num_classes=num_classes)
    return keras.Model(inputs, x, name=name)


# Table 1, column by column.
A = ((64,), (128,), (256, 256), (512, 512), (512, 512))
B = ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))
C = ((64, 64), (128, 128), (256, 256, (256, 1)), (512, 512, (512, 1)), (512, 512, (512, 1)))
D = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
E = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


def _tiny(stages):
    """The same layers at 1/16 of the width: what the contract builds."""
    return tuple(tuple(s // 16 if isinstance(s, int) else (s[0] // 16, s[1]) for s in stage)
                 for stage in stages)


def _row(name, stages, description, references, lrn=False, tags=()):
    return Variant(
        name, VGGConfig(stages=stages, lrn=lrn), description=description,
        reference_params=references, tags=tags,
        test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "stages": _tiny(stages),
                     "fc_units": 8},
    )


# Simonyan & Zisserman 2015, Sec. 3.1: SGD, batch 256, momentum 0.9, weight decay 5e-4,
# lr 0.01 divided by 10 three times on plateaus, 74 epochs.
_RECIPE = paper_recipe(learning_rate=0.01, paper_batch=256, l2=5e-4, epochs=74,
                       notes="Simonyan & Zisserman 2015, Sec. 3.1")

register_family(
    build_vgg,
    family="cnn",
    task="image_classification",
    paper=PAPER,
    tags=("classic",),
    recipe=_RECIPE,
    variants=[
        _row("vgg11", A, "VGG configuration A: 8 conv + 3 FC",
             {"Table 2: 133M; torchvision vgg11": 132_863_336}),
        _row("vgg11_lrn", A, "VGG configuration A-LRN: A with LRN after the first layer",
             {"Table 2: 133M (LRN has no parameters); torchvision vgg11": 132_863_336},
             lrn=True),
        _row("vgg13", B, "VGG configuration B: 10 conv + 3 FC",
             {"Table 2: 133M; torchvision vgg13": 133_047_848}),
        _row("vgg16_c", C, "VGG configuration C: B plus a 1x1 conv closing stages 3-5",
             {"Table 2: 134M; D's count with three 3x3 convs as 1x1: 138,357,544 - "
              "589,824 + 65,536 - 2 x (2,359,296 - 262,144)": 133_638_952}),
        _row("vgg16", D, "VGG configuration D (VGG16): 13 conv + 3 FC",
             {"keras.applications VGG16; torchvision vgg16; Table 2: 138M": 138_357_544},
             tags=("keras_applications",)),
        _row("vgg19", E, "VGG configuration E (VGG19): 16 conv + 3 FC",
             {"keras.applications VGG19; torchvision vgg19; Table 2: 144M": 143_667_240},
             tags=("keras_applications",)),
    ],
)
