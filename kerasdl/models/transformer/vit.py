"""Vision Transformer: Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner,
Dehghani, Minderer, Heigold, Gelly, Uszkoreit & Houlsby, "An Image is Worth 16x16 Words:
Transformers for Image Recognition at Scale", ICLR 2021.

The image is cut into non-overlapping ``P x P`` patches, each linearly embedded (one
``Conv2D`` with kernel = stride = ``P``, Eq. 1's ``E``); a learned class token is put in
front and learned position embeddings are added (``(H/P)(W/P) + 1`` of them); a pre-LN
encoder of exact-GELU MLP blocks (Eqs. 2-3) and a final LayerNorm (Eq. 4) follow, and
the head reads the class token's output. ``vit_b16`` is ViT-B/16 at 224x224 with a
1,000-class head and no pre-logits layer (the fine-tuned form): 86,567,656 parameters.

Departures: the head starts from Keras' Glorot initialisation, not the zeros the paper
uses when fine-tuning (a zero head passes no gradient to the layers below on the first
step, which fine-tuning from pretrained weights can afford and training from scratch
cannot). Inputs are raw pixels in [0, 255], scaled to [-1, 1] inside the model
(``input_scaling="symmetric"``, the released checkpoints' preprocessing).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import KerasdlError, check_positive_int
from kerasdl.heads import check_classifier_args, classifier
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.models.transformer import blocks
from kerasdl.layers.positions import LearnedPositionEmbedding
from kerasdl.models.transformer.layers import ClassToken, FirstToken
from kerasdl.registry import Variant, register_family
from kerasdl.train.recipes import Recipe, paper_recipe

PAPER = ("Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image "
         "Recognition at Scale, ICLR 2021")
EPSILON = 1e-6


@dataclass(frozen=True)
class ViTConfig:
    """ViT's sizes (Table 1): patch side, width D, layers, heads, MLP size."""

    patch_size: int = 16
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072

    def __post_init__(self):
        for value, argument in ((self.patch_size, "patch_size"), (self.hidden, "hidden"),
                                (self.layers, "layers"), (self.heads, "heads"),
                                (self.mlp_dim, "mlp_dim")):
            check_positive_int(value, argument)
        if self.hidden % self.heads:
            raise KerasdlError(f"hidden ({self.hidden}) must be a multiple of heads "
                               f"({self.heads})", argument="heads")


def num_patches(input_shape, patch_size):
    """How many patches an image of ``input_shape`` gives (the side must divide)."""
    h, w = input_shape[:2]
    if h % patch_size or w % patch_size:
        raise KerasdlError(f"input_shape {tuple(input_shape)} is not a whole number of "
                           f"{patch_size}x{patch_size} patches", argument="input_shape")
    return (h // patch_size) * (w // patch_size)


def build_vit(config=ViTConfig(), *, input_shape=(224, 224, 3), num_classes=1000,
              include_top=True, classifier_activation=None, dropout=0.0,
              input_scaling="symmetric", name=None):
    """A Vision Transformer (Dosovitskiy et al. 2021). ``include_top=False`` returns the
    class token's normalised output ``[batch, hidden]``. ``dropout`` acts after the
    position embeddings, inside and after each MLP and after attention (the paper's
    0.1 when training from scratch; 0.0 to fine-tune)."""
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout,
                                        min_size=config.patch_size)
    patches = num_patches(input_shape, config.patch_size)
    d = config.hidden
    image = keras.Input(input_shape, name="image")
    x = apply_input_scaling(image, input_scaling)
    x = keras.layers.Conv2D(d, config.patch_size, strides=config.patch_size, padding="valid",
                            name="patch_embedding")(x)
    x = keras.layers.Reshape((patches, d), name="patch_sequence")(x)
    x = ClassToken(name="class_token")(x)
    x = LearnedPositionEmbedding(
        patches + 1, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
        name="position_embeddings")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    attention = blocks.multi_head_attention(config.heads, d // config.heads)
    ffn = blocks.feed_forward(config.mlp_dim, "gelu", inner_dropout=dropout)
    for i in range(config.layers):
        x = blocks.encoder_block(x, self_attention=attention, feed_forward=ffn,
                                 norm=blocks.layer_norm(EPSILON), norm_position="pre",
                                 dropout=dropout, name=f"encoder{i + 1}")
    x = keras.layers.LayerNormalization(epsilon=EPSILON, name="final_norm")(x)
    x = FirstToken(name="class_token_output")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, name="predictions")
    return keras.Model(image, x, name=name or "vit")


def vit_count(config, input_shape, num_classes):
    """The parameter count of :func:`build_vit`, term by term."""
    d, m, p = config.hidden, config.mlp_dim, config.patch_size
    n = num_patches(input_shape, p)
    embedding = p * p * input_shape[2] * d + d + d + (n + 1) * d
    layer = 2 * 2 * d + 4 * (d * d + d) + (d * m + m) + (m * d + d)
    return embedding + config.layers * layer + 2 * d + d * num_classes + num_classes


# Table 3 (ImageNet, ViT-B/16): Adam(W) 3e-3 at batch 4,096, weight decay 0.3, 300
# epochs, warm-up and cosine decay; here scaled linearly to batch 128.
_IMAGENET_RECIPE = paper_recipe(
    optimizer="adamw", learning_rate=3e-3, paper_batch=4096, l2=0.3, epochs=300,
    batch_size=128, warmup_epochs=3.0,
    notes="Dosovitskiy et al. 2021, Table 3 (ImageNet from scratch)")

# CIFAR-10 from scratch at ViT-Lite-7/4 sizes (Hassani et al. 2021: AdamW 5e-4, decay
# 3e-2, batch 128, 300 epochs with heavy augmentation); a shorter run with crop-and-flip.
_CIFAR_RECIPE = Recipe(
    optimizer="adamw", learning_rate=5e-4, weight_decay=0.03, schedule="cosine",
    warmup_epochs=5.0, epochs=100, batch_size=128, augmentation="cifar",
    validation_fraction=0.0,
    notes="ViT-Lite-7/4 on CIFAR-10 (Hassani et al. 2021): AdamW 5e-4, decay 0.03, batch "
          "128, 5-epoch warm-up + cosine over 100 epochs (theirs: 300, with AutoAugment, "
          "Mixup, CutMix), whole-pixel 4 px shifts and flips")

VIT_LITE_7_4 = ViTConfig(patch_size=4, hidden=256, layers=7, heads=4, mlp_dim=512)

register_family(
    build_vit,
    family="transformer",
    task="image_classification",
    paper=PAPER,
    test_kwargs={"input_shape": (16, 16, 3), "num_classes": 3, "patch_size": 4, "hidden": 16,
                 "layers": 2, "heads": 2, "mlp_dim": 32},
    output_shape=("num_classes",),
    tags=("attention",),
    variants=[
        Variant(
            "vit_b16", ViTConfig(),
            description="ViT-B/16 (12 layers, 768 wide, 12 heads, 16x16 patches) at "
                        "224x224",
            reference_params={
                "timm vit_base_patch16_224 / HF ViTForImageClassification with a 1,000-"
                "class head, no pre-logits layer": 86_567_656},
            recipe=_IMAGENET_RECIPE),
        Variant(
            "vit_cifar", VIT_LITE_7_4,
            description="ViT-Lite-7/4 (7 layers, 256 wide, 4 heads, 4x4 patches) for "
                        "32x32 CIFAR images",
            paper=f"{PAPER}; Hassani et al., Escaping the Big Data Paradigm with Compact "
                  "Transformers, 2021 (ViT-Lite-7/4 sizes)",
            defaults={"input_shape": (32, 32, 3), "num_classes": 10, "dropout": 0.1},
            default_dataset="cifar10",
            reference_params={
                "hand count at 32x32x3, 10 classes: patch Conv2D 4x4x3x256 + 256, class "
                "token 256, 65 x 256 positions, 7 layers of 2 LayerNorms + 4 x (256^2 + "
                "256) + 256 x 512 + 512 + 512 x 256 + 256, final LayerNorm, head 256 x 10 "
                "+ 10 (ViT-Lite-7/4: 3.72M)": vit_count(VIT_LITE_7_4, (32, 32, 3), 10)},
            recipe=_CIFAR_RECIPE),
    ],
)
