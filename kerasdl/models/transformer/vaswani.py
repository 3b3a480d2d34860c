"""The original Transformer: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser &
Polosukhin, "Attention Is All You Need", NeurIPS 2017.

An encoder-decoder of post-LN blocks (Sec. 3.1: ``LayerNorm(x + Sublayer(x))``) with
ReLU feed-forward networks, fixed sinusoidal positions (Sec. 3.5) added to embeddings
multiplied by ``sqrt(d_model)`` (Sec. 3.4), dropout 0.1 on the sums of embeddings and
positions and on every sublayer's output (Sec. 5.4). Padding (id 0) is masked in every
attention; the decoder's self-attention is causal.

Embedding sharing (Sec. 3.4): with one vocabulary (``target_vocabulary_size=None``) the
encoder embedding, decoder embedding and pre-softmax layer are one matrix; with two
vocabularies (kerasdl's translation data, ``kerasdl train``) the decoder embedding and
the pre-softmax layer are shared and the encoder has its own. The output layer has no
bias. ``transformer_base`` is Table 3's base model at WMT'14 English-German's shared
37,000-token vocabulary: 63,082,496 parameters by hand count (the paper's table rounds
its base model to 65M).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int
from kerasdl.models.transformer import blocks
from kerasdl.layers.positions import SinusoidalPositionEncoding
from kerasdl.models.transformer.layers import (AttentionMask,
                                               TiedEmbedding)
from kerasdl.registry import InputDecl, Variant, register_family
from kerasdl.train.recipes import Recipe

PAPER = ("Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin, "
         "Attention Is All You Need, NeurIPS 2017")
EPSILON = 1e-6


@dataclass(frozen=True)
class TransformerConfig:
    """Table 3's sizes: ``layers`` (N) per stack, ``d_model``, ``heads`` (h), ``ff_dim``
    (d_ff); keys and values are ``d_model / heads`` wide."""

    layers: int = 6
    d_model: int = 512
    heads: int = 8
    ff_dim: int = 2048

    def __post_init__(self):
        for value, argument in ((self.layers, "layers"), (self.d_model, "d_model"),
                                (self.heads, "heads"), (self.ff_dim, "ff_dim")):
            check_positive_int(value, argument)
        if self.d_model % self.heads or self.d_model % 2:
            raise KerasdlError(f"d_model ({self.d_model}) must be even and a multiple of "
                               f"heads ({self.heads})", argument="d_model")


def build_transformer(config=TransformerConfig(), *, vocabulary_size=37_000,
                      target_vocabulary_size=None, sequence_length=None, dropout=0.1,
                      name=None):
    """The Transformer (Vaswani et al. 2017): inputs ``[source ids, target-in ids]`` (0 =
    padding), output next-token logits ``[batch, target length, target vocabulary]``.
    ``target_vocabulary_size=None``: one shared vocabulary and embedding matrix (see the
    module docstring)."""
    check_positive_int(vocabulary_size, "vocabulary_size")
    check_positive_int(target_vocabulary_size, "target_vocabulary_size", allow_none=True)
    check_fraction(dropout, "dropout")
    check_positive_int(sequence_length, "sequence_length", allow_none=True)
    d = config.d_model
    source = keras.Input((sequence_length,), dtype="int32", name="source")
    target_in = keras.Input((sequence_length,), dtype="int32", name="target_in")
    # Standard deviation d^-0.5: after the multiplication by sqrt(d), unit variance,
    # the scale of the sinusoids they are added to.
    init = keras.initializers.RandomNormal(stddev=d ** -0.5)
    if target_vocabulary_size is None:
        target_embedding = TiedEmbedding(vocabulary_size, d, embeddings_initializer=init,
                                         name="shared_embedding")
        source_embedding = target_embedding
    else:
        source_embedding = keras.layers.Embedding(vocabulary_size, d,
                                                  embeddings_initializer=init,
                                                  name="source_embedding")
        target_embedding = TiedEmbedding(target_vocabulary_size, d,
                                         embeddings_initializer=init,
                                         name="target_embedding")

    def embed(ids, embedding, side):
        x = keras.layers.Rescaling(d ** 0.5, name=f"{side}_embedding_scale")(embedding(ids))
        x = SinusoidalPositionEncoding(name=f"{side}_positions")(x)
        return keras.layers.Dropout(dropout, name=f"{side}_dropout")(x)

    norm = blocks.layer_norm(EPSILON)
    ffn = blocks.feed_forward(config.ff_dim, "relu")
    key_dim = d // config.heads

    x = embed(source, source_embedding, "encoder")
    source_mask = AttentionMask(name="encoder_attention_mask")(source)
    attention = blocks.multi_head_attention(config.heads, key_dim, attention_mask=source_mask)
    for i in range(config.layers):
        x = blocks.encoder_block(x, self_attention=attention, feed_forward=ffn, norm=norm,
                                 norm_position="post", dropout=dropout, name=f"encoder{i + 1}")

    y = embed(target_in, target_embedding, "decoder")
    target_mask = AttentionMask(causal=True, name="decoder_attention_mask")(target_in)
    cross_mask = AttentionMask(name="cross_attention_mask")([target_in, source])
    self_attention = blocks.multi_head_attention(config.heads, key_dim,
                                                 attention_mask=target_mask)
    cross_attention = blocks.multi_head_attention(config.heads, key_dim,
                                                  attention_mask=cross_mask)
    for i in range(config.layers):
        y = blocks.decoder_block(y, x, self_attention=self_attention,
                                 cross_attention=cross_attention, feed_forward=ffn, norm=norm,
                                 norm_position="post", dropout=dropout, name=f"decoder{i + 1}")
    logits = target_embedding(y, reverse=True)
    return keras.Model([source, target_in], logits, name=name or "transformer")


def transformer_count(config, vocabulary_size, target_vocabulary_size=None):
    """The parameter count of :func:`build_transformer`, term by term."""
    d, f = config.d_model, config.ff_dim
    attention = 4 * (d * d + d)
    ffn = d * f + f + f * d + d
    encoder_layer = attention + ffn + 2 * 2 * d
    decoder_layer = 2 * attention + ffn + 3 * 2 * d
    return ((vocabulary_size + (target_vocabulary_size or 0)) * d
            + config.layers * (encoder_layer + decoder_layer))


# Multi30k de->en: Adam with warm-up (Sec. 5.3 uses beta2 0.98 and an inverse-square-
# root schedule over 4,000 warm-up steps; here warm-up + cosine, as kerasdl's other
# translators), dropout 0.1, label smoothing 0.1 (Sec. 5.4).
_RECIPE = Recipe(
    optimizer="adam", learning_rate=5e-4, schedule="cosine", warmup_epochs=1.0, epochs=20,
    label_smoothing=0.1,
    batch_size=64, validation_fraction=0.0, tokenization="word", vocabulary_size=10_000,
    sequence_length=40, gradient_clipping="global_norm", clip_threshold=1.0,
    notes="Multi30k de->en: word tokens, 10k vocabularies, 40 tokens; Adam 5e-4, 1-epoch "
          "warm-up + cosine, 20 epochs, batch 64, global-norm clipping 1.0, label "
          "smoothing 0.1")

SMALL = TransformerConfig(layers=3, d_model=256, heads=8, ff_dim=512)

register_family(
    build_transformer,
    family="transformer",
    task="seq2seq",
    paper=PAPER,
    test_kwargs={"vocabulary_size": 20, "target_vocabulary_size": 17, "layers": 2,
                 "d_model": 16, "heads": 2, "ff_dim": 32},
    inputs=(InputDecl("int", 1, "vocabulary_size"),
            InputDecl("int", 1, "target_vocabulary_size")),
    output_shape=(None, "target_vocabulary_size"),
    default_dataset="multi30k",
    recipe=_RECIPE,
    tags=("text", "attention"),
    variants=[
        Variant(
            "transformer_base", TransformerConfig(),
            description="Transformer base (6+6 layers, d_model 512, 8 heads, FF 2048)",
            reference_params={
                "hand count at one shared vocabulary of 37,000 (WMT'14 en-de BPE; Table 3 "
                "rounds to 65M): 37,000 x 512 embedding, 6 encoder layers of 4 x (512^2 + "
                "512) + 512 x 2,048 + 2,048 + 2,048 x 512 + 512 + 2 LayerNorms, 6 decoder "
                "layers with a second attention and a third LayerNorm, tied output "
                "without bias": transformer_count(TransformerConfig(), 37_000)}),
        Variant(
            "transformer_small", SMALL,
            description="small Transformer for Multi30k (3+3 layers, d_model 256, 8 heads, "
                        "FF 512)",
            defaults={"vocabulary_size": 10_000},
            reference_params={
                "hand count at one shared vocabulary of 10,000, 3+3 layers of width 256, "
                "FF 512": transformer_count(SMALL, 10_000)}),
    ],
)
