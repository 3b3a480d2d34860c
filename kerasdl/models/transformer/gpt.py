"""GPT-2: Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are
Unsupervised Multitask Learners", 2019.

A decoder-only Transformer language model: token embeddings plus learned absolute
positions, dropout, pre-LN blocks (Sec. 2.3: layer normalisation moved to each
sub-block's input, one more after the last block) of causal self-attention and a
tanh-approximated GELU feed-forward network, and an output layer tied to the token
embedding, without a bias. Residual projections start scaled by ``1 / sqrt(N)``, ``N``
the number of residual layers (Sec. 2.3). ``gpt2`` is GPT-2 small: Table 2 gives 117M
parameters; the released checkpoint (and this model) has 124,439,808.

Causality: ``keras.layers.MultiHeadAttention(use_causal_mask=True)``; the logits at
position t depend on tokens 0..t only. Padding (id 0) is not masked, as in kerasdl's
other language models: their training windows are cut from running text and hold none.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int
from kerasdl.models.transformer import blocks
from kerasdl.layers.positions import LearnedPositionEmbedding
from kerasdl.models.transformer.layers import TiedEmbedding
from kerasdl.registry import InputDecl, Variant, register_family
from kerasdl.train.recipes import Recipe

PAPER = ("Radford, Wu, Child, Luan, Amodei & Sutskever, Language Models are Unsupervised "
         "Multitask Learners, 2019")
EPSILON = 1e-5


@dataclass(frozen=True)
class GPTConfig:
    """GPT's sizes: blocks, width, heads, feed-forward width and context length."""

    layers: int = 12
    hidden: int = 768
    heads: int = 12
    ff_dim: int = 3072
    max_positions: int = 1024

    def __post_init__(self):
        for value, argument in ((self.layers, "layers"), (self.hidden, "hidden"),
                                (self.heads, "heads"), (self.ff_dim, "ff_dim"),
                                (self.max_positions, "max_positions")):
            check_positive_int(value, argument)
        if self.hidden % self.heads:
            raise KerasdlError(f"hidden ({self.hidden}) must be a multiple of heads "
                               f"({self.heads})", argument="heads")


def build_gpt(config=GPTConfig(), *, vocabulary_size=50_257, sequence_length=None,
              dropout=0.1, name=None):
    """GPT-2 (Radford et al. 2019): token ids ``[batch, length]`` -> next-token logits
    ``[batch, length, vocabulary_size]``. ``length`` may not exceed
    ``config.max_positions``. ``dropout`` (GPT-2's 0.1) acts on the embeddings, the
    attention weights and every sublayer's output. Weights start from a normal of
    standard deviation 0.02 (positions 0.01, as OpenAI's code)."""
    check_positive_int(vocabulary_size, "vocabulary_size")
    check_fraction(dropout, "dropout")
    check_positive_int(sequence_length, "sequence_length", allow_none=True)
    if sequence_length is not None and sequence_length > config.max_positions:
        raise KerasdlError(f"sequence_length {sequence_length} exceeds the model's "
                           f"{config.max_positions} positions", argument="sequence_length")
    init = keras.initializers.RandomNormal(stddev=0.02)
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    token_embeddings = TiedEmbedding(vocabulary_size, config.hidden,
                                     embeddings_initializer=init, name="token_embeddings")
    x = token_embeddings(tokens)
    x = LearnedPositionEmbedding(
        config.max_positions,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01),
        name="position_embeddings")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    attention = blocks.multi_head_attention(config.heads, config.hidden // config.heads,
                                            dropout=dropout, causal=True,
                                            kernel_initializer=init)
    ffn = blocks.feed_forward(config.ff_dim, "gelu_tanh", kernel_initializer=init)
    for i in range(config.layers):
        x = blocks.decoder_block(x, self_attention=attention, feed_forward=ffn,
                                 norm=blocks.layer_norm(EPSILON), norm_position="pre",
                                 dropout=dropout, name=f"block{i + 1}")
    x = keras.layers.LayerNormalization(epsilon=EPSILON, name="final_norm")(x)
    logits = token_embeddings(x, reverse=True)
    model = keras.Model(tokens, logits, name=name or "gpt")
    _scale_residual_projections(model, 1.0 / (2 * config.layers) ** 0.5)
    return model


def _scale_residual_projections(model, factor):
    """Multiply the kernels that write into the residual stream (attention output and
    second feed-forward layer) by ``factor``: GPT-2's initialisation."""
    for variable in model.weights:
        path = variable.path
        if path.endswith("attention_output/kernel") or path.endswith("_ffn_outer/kernel"):
            variable.assign(variable * factor)


def gpt_count(config, vocabulary_size):
    """The parameter count of :func:`build_gpt`, term by term (tied output: no extra)."""
    d, f = config.hidden, config.ff_dim
    layer = 2 * 2 * d + 4 * (d * d + d) + (d * f + f) + (f * d + d)
    return (vocabulary_size + config.max_positions) * d + config.layers * layer + 2 * d


# Character-level Tiny Shakespeare after nanoGPT's shakespeare_char (Karpathy 2022): its
# peak rate 1e-3, weight decay 0.1, warm-up, cosine decay, clipping at 1.0 and batch 64.
# Where it differs (the recorded 1.508 nats/char run used exactly this recipe): Adam's
# beta_2 is Keras' 0.999 (nanoGPT 0.99), every weight is decayed (nanoGPT spares biases
# and LayerNorm scales), the rate decays to 0 (nanoGPT to 1e-4), and it counts epochs of
# windows rather than 5,000 iterations; the model's dropout is GPT-2's 0.1 (nanoGPT 0.2).
_RECIPE = Recipe(
    optimizer="adamw", learning_rate=1e-3, weight_decay=0.1, schedule="cosine",
    warmup_epochs=0.5, epochs=30, batch_size=64, validation_fraction=0.0,
    tokenization="character", vocabulary_size=0, sequence_length=128,
    gradient_clipping="global_norm", clip_threshold=1.0,
    notes="characters, windows of 128; AdamW 1e-3, decay 0.1 on every weight, betas "
          "(0.9, 0.999), warm-up + cosine to 0, 30 epochs, batch 64, global-norm "
          "clipping 1.0 (after nanoGPT's shakespeare_char, which uses beta_2 0.99, "
          "spares biases and norms from decay and ends at 1e-4)")

# nanoGPT's CPU configuration (4 layers, 4 heads, width 128) with a 128-character context.
CHAR_SMALL = GPTConfig(layers=4, hidden=128, heads=4, ff_dim=512, max_positions=128)

register_family(
    build_gpt,
    family="transformer",
    task="language_modeling",
    paper=PAPER,
    test_kwargs={"vocabulary_size": 20, "layers": 2, "hidden": 16, "heads": 2, "ff_dim": 32,
                 "max_positions": 16},
    inputs=(InputDecl("int", 1, "vocabulary_size"),),
    output_shape=(None, "vocabulary_size"),
    default_dataset="tiny_shakespeare",
    recipe=_RECIPE,
    tags=("text", "language_model", "attention"),
    variants=[
        Variant(
            "gpt2", GPTConfig(),
            description="GPT-2 small (12 layers, 768 wide, 12 heads, 1,024 positions)",
            reference_params={
                "OpenAI gpt2 (HF GPT2LMHeadModel, LM head tied to the token embedding) at "
                "vocabulary 50,257": 124_439_808},
            recipe=_RECIPE.replace(
                learning_rate=6e-4,
                notes="as gpt_char_small with GPT-2/3 small's peak rate 6e-4")),
        Variant(
            "gpt_char_small", CHAR_SMALL,
            description="small character-level GPT (4 layers, 128 wide, 4 heads, 128 "
                        "positions)",
            defaults={"vocabulary_size": 67},
            reference_params={
                "hand count at 67 characters (Tiny Shakespeare's 65 + padding + unknown): "
                "(67 + 128) x 128 embeddings, 4 blocks of 2 LayerNorms + 4 x (128^2 + 128) "
                "+ 128 x 512 + 512 + 512 x 128 + 128, final LayerNorm":
                    gpt_count(CHAR_SMALL, 67)}),
    ],
)
