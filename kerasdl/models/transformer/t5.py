"""T5 (v1.0): Raffel, Shazeer, Roberts, Lee, Narang, Matena, Zhou, Li & Liu, "Exploring
the Limits of Transfer Learning with a Unified Text-to-Text Transformer", JMLR 2020.

An encoder-decoder Transformer with Sec. 3.1.1's changes to Vaswani et al.'s:

* layer normalisation that only rescales (no mean subtraction, no bias:
  :class:`~kerasdl.models.transformer.layers.RMSNorm`), placed at each sublayer's input
  (pre-LN) with one more at the end of each stack, and dropout after it;
* no biases in the attention and feed-forward layers; a ReLU feed-forward network (not
  gated: that is T5 v1.1);
* no absolute positions: a scalar per head and relative-position bucket (32 buckets,
  distances up to 128) added to the self-attention logits; only the first layer of each
  stack owns the table, the other layers reuse the bias it gives (as the released code).
  Cross-attention has none;
* attention logits not divided by ``sqrt(key_dim)`` (folded into the initialisation);
* one embedding matrix shared by encoder input, decoder input and output layer, the
  decoder's output scaled by ``d_model^-0.5`` before the tied output layer (v1.0).

``t5_small`` is T5-small: 60,506,624 parameters. kerasdl's translation data give the
source and target languages separate vocabularies; with ``target_vocabulary_size`` set
(as ``kerasdl train`` does) the encoder gets its own embedding and the decoder's
embedding is tied to the output layer, the closest sharing two vocabularies allow.
``target_vocabulary_size=None`` is T5's single shared vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int
from kerasdl.models.transformer import blocks
from kerasdl.layers.positions import RelativePositionBias
from kerasdl.models.transformer.layers import (AttentionMask, RMSNorm,
                                               T5Attention, TiedEmbedding)
from kerasdl.registry import InputDecl, Variant, register_family
from kerasdl.train.recipes import Recipe

PAPER = ("Raffel, Shazeer, Roberts, Lee, Narang, Matena, Zhou, Li & Liu, Exploring the "
         "Limits of Transfer Learning with a Unified Text-to-Text Transformer, JMLR 2020")
EPSILON = 1e-6


@dataclass(frozen=True)
class T5Config:
    """T5's sizes: ``layers`` per stack, ``d_model``, ``heads`` of ``key_dim`` each
    (``heads * key_dim`` need not equal ``d_model``), ``ff_dim``, and the relative
    position buckets."""

    layers: int = 6
    d_model: int = 512
    heads: int = 8
    key_dim: int = 64
    ff_dim: int = 2048
    num_buckets: int = 32
    max_distance: int = 128

    def __post_init__(self):
        for value, argument in ((self.layers, "layers"), (self.d_model, "d_model"),
                                (self.heads, "heads"), (self.key_dim, "key_dim"),
                                (self.ff_dim, "ff_dim"), (self.num_buckets, "num_buckets"),
                                (self.max_distance, "max_distance")):
            check_positive_int(value, argument)
        if self.num_buckets < 4:
            raise KerasdlError("num_buckets must be at least 4", argument="num_buckets")


def _t5_attention(config, dropout, mask, position_bias=None):
    """``(query, context, name) -> output`` with one new :class:`T5Attention`."""
    def attend(query, context, name):
        inputs = [query, context, mask] + ([position_bias] if position_bias is not None else [])
        return T5Attention(config.heads, config.key_dim, dropout=dropout, name=name)(inputs)

    return attend


def _stack_bias(config, x, bidirectional, name):
    return RelativePositionBias(
        config.heads, config.num_buckets, config.max_distance, bidirectional=bidirectional,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=config.d_model ** -0.5),
        name=name)(x, x)


def build_t5(config=T5Config(), *, vocabulary_size=32_128, target_vocabulary_size=None,
             sequence_length=None, dropout=0.1, name=None):
    """T5 v1.0 (Raffel et al. 2020): inputs ``[source ids, target-in ids]`` (0 =
    padding), output the next-token logits ``[batch, target length, target vocabulary]``.

    ``target_vocabulary_size=None``: one vocabulary of ``vocabulary_size`` and one shared
    embedding (T5); an int: a separate target vocabulary whose embedding is tied to the
    output layer. ``dropout`` (T5's 0.1) acts on the embeddings, attention weights,
    feed-forward activations, sublayer outputs and each stack's output."""
    check_positive_int(vocabulary_size, "vocabulary_size")
    check_positive_int(target_vocabulary_size, "target_vocabulary_size", allow_none=True)
    check_fraction(dropout, "dropout")
    check_positive_int(sequence_length, "sequence_length", allow_none=True)
    d = config.d_model
    source = keras.Input((sequence_length,), dtype="int32", name="source")
    target_in = keras.Input((sequence_length,), dtype="int32", name="target_in")

    # T5 initialises the shared embedding with unit variance: it is not rescaled on
    # input, and the output side scales the decoder state by d_model^-0.5 instead.
    unit = keras.initializers.RandomNormal(stddev=1.0)
    if target_vocabulary_size is None:
        target_embedding = TiedEmbedding(vocabulary_size, d, embeddings_initializer=unit,
                                         name="shared_embedding")
        source_embedding = target_embedding
    else:
        source_embedding = keras.layers.Embedding(vocabulary_size, d,
                                                  embeddings_initializer=unit,
                                                  name="source_embedding")
        target_embedding = TiedEmbedding(target_vocabulary_size, d,
                                         embeddings_initializer=unit,
                                         name="target_embedding")
    ffn = blocks.feed_forward(
        config.ff_dim, "relu", use_bias=False, inner_dropout=dropout,
        kernel_initializer=keras.initializers.RandomNormal(stddev=d ** -0.5),
        output_initializer=keras.initializers.RandomNormal(stddev=config.ff_dim ** -0.5))

    def norm(name):
        return RMSNorm(EPSILON, name=name)

    x = keras.layers.Dropout(dropout, name="encoder_dropout")(source_embedding(source))
    encoder_mask = AttentionMask(name="encoder_attention_mask")(source)
    encoder_bias = _stack_bias(config, x, True, "encoder1_relative_position_bias")
    attention = _t5_attention(config, dropout, encoder_mask, encoder_bias)
    for i in range(config.layers):
        x = blocks.encoder_block(x, self_attention=attention, feed_forward=ffn, norm=norm,
                                 norm_position="pre", dropout=dropout, name=f"encoder{i + 1}")
    x = norm("encoder_final_norm")(x)
    encoded = keras.layers.Dropout(dropout, name="encoder_output_dropout")(x)

    y = keras.layers.Dropout(dropout, name="decoder_dropout")(target_embedding(target_in))
    decoder_mask = AttentionMask(causal=True, name="decoder_attention_mask")(target_in)
    cross_mask = AttentionMask(name="cross_attention_mask")([target_in, source])
    decoder_bias = _stack_bias(config, y, False, "decoder1_relative_position_bias")
    self_attention = _t5_attention(config, dropout, decoder_mask, decoder_bias)
    cross_attention = _t5_attention(config, dropout, cross_mask)
    for i in range(config.layers):
        y = blocks.decoder_block(y, encoded, self_attention=self_attention,
                                 cross_attention=cross_attention, feed_forward=ffn, norm=norm,
                                 norm_position="pre", dropout=dropout, name=f"decoder{i + 1}")
    y = norm("decoder_final_norm")(y)
    y = keras.layers.Dropout(dropout, name="decoder_output_dropout")(y)
    y = keras.layers.Rescaling(d ** -0.5, name="tied_output_scale")(y)
    logits = target_embedding(y, reverse=True)
    return keras.Model([source, target_in], logits, name=name or "t5")


def t5_count(config, vocabulary_size, target_vocabulary_size=None):
    """The parameter count of :func:`build_t5`, term by term."""
    d, inner, f = config.d_model, config.heads * config.key_dim, config.ff_dim
    attention = 4 * d * inner
    ffn = 2 * d * f
    encoder_layer = attention + ffn + 2 * d
    decoder_layer = 2 * attention + ffn + 3 * d
    bias_table = config.num_buckets * config.heads
    embeddings = vocabulary_size * d + (target_vocabulary_size or 0) * d
    return (embeddings + config.layers * (encoder_layer + decoder_layer) + 2 * bias_table
            + 2 * d)


# Multi30k de->en from scratch. T5 pretrained with Adafactor (inverse square root
# schedule, 1e-2) and fine-tuned at a constant 1e-3; from scratch on 29k sentence pairs
# AdamW with warm-up and cosine decay converges more reliably.
_RECIPE = Recipe(
    optimizer="adamw", learning_rate=5e-4, weight_decay=0.01, schedule="cosine",
    warmup_epochs=1.0, epochs=20, batch_size=64, validation_fraction=0.0,
    tokenization="word", vocabulary_size=10_000, sequence_length=40,
    gradient_clipping="global_norm", clip_threshold=1.0,
    notes="Multi30k de->en from scratch: word tokens, 10k vocabularies, 40 tokens; AdamW "
          "5e-4, decay 0.01, 1-epoch warm-up + cosine, 20 epochs, batch 64, global-norm "
          "clipping 1.0 (T5 itself: Adafactor)")

# T5-Efficient-Tiny's sizes (Tay et al. 2021, "Scale Efficiently"), in T5 v1.0's layers.
TINY = T5Config(layers=4, d_model=256, heads=4, key_dim=64, ff_dim=1024)

register_family(
    build_t5,
    family="transformer",
    task="seq2seq",
    paper=PAPER,
    test_kwargs={"vocabulary_size": 20, "target_vocabulary_size": 17, "layers": 2,
                 "d_model": 16, "heads": 2, "key_dim": 8, "ff_dim": 32, "num_buckets": 8,
                 "max_distance": 16},
    inputs=(InputDecl("int", 1, "vocabulary_size"),
            InputDecl("int", 1, "target_vocabulary_size")),
    output_shape=(None, "target_vocabulary_size"),
    default_dataset="multi30k",
    recipe=_RECIPE,
    tags=("text", "attention"),
    variants=[
        Variant(
            "t5_small", T5Config(),
            description="T5-small v1.0 (6+6 layers, d_model 512, 8 heads, FF 2048)",
            reference_params={
                "HF t5-small (T5ForConditionalGeneration, LM head tied to the shared "
                "embedding) at vocabulary 32,128, one shared vocabulary": 60_506_624}),
        Variant(
            "t5_tiny", TINY,
            description="T5 v1.0 at T5-Efficient-Tiny sizes (4+4 layers, d_model 256, 4 "
                        "heads, FF 1024) for Multi30k",
            paper=f"{PAPER}; Tay et al., Scale Efficiently, ICLR 2022 (Tiny sizes)",
            defaults={"vocabulary_size": 10_000},
            reference_params={
                "hand count at one shared vocabulary of 10,000: 10,000 x 256 embedding; "
                "per encoder layer 4 x 256 x 256 + 2 x 256 x 1,024 + 2 x 256, per decoder "
                "layer 8 x 256 x 256 + 2 x 256 x 1,024 + 3 x 256; two 32 x 4 bias tables; "
                "two final norms": t5_count(TINY, 10_000)}),
    ],
)
