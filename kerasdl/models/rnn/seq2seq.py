"""Recurrent encoder-decoders with attention for translation.

Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR 2015 (additive attention, bidirectional encoder, decoder state
initialised from the encoder); Luong, Pham & Manning, "Effective Approaches to
Attention-based Neural Machine Translation", EMNLP 2015 (multiplicative "general" and
"dot" scores, the attentional hidden state tanh(W_c [c_t; h_t])).

One arrangement serves both scores, Luong's: the decoder GRU runs over the (teacher-
forced) target prefix, each of its states queries the encoder states, and the context
joins the state in ``tanh(W_c [c_t; h_t])`` before the output layer. Bahdanau's original
decoder instead feeds the context of the *previous* state into the recurrent input; that
needs a custom recurrent cell and a step-by-step loop even in training, so here the
additive score is used in Luong's arrangement, as most tutorials do (documented in the
builder). The model returns ``{"logits": [b, T, V], "attention": [b, T, S]}``; decoding
(:mod:`kerasdl.decoding`) re-runs it on the growing prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import check_choice, check_fraction, check_positive_int
from kerasdl.registry import InputDecl, Variant, register_family
from kerasdl.train.recipes import Recipe

SCORES = ("additive", "general", "dot")


@keras.saving.register_keras_serializable(package="kerasdl")
class GeneralScoreAttention(keras.layers.Layer):
    """Luong's "general" score ``h_t^T W_a h_s`` followed by a softmax over the source
    positions (masked) and the weighted sum of the source states; returns
    ``(context, weights)``."""

    def build(self, input_shape):
        query_shape, value_shape = input_shape
        self.w_a = self.add_weight(name="w_a", shape=(query_shape[-1], value_shape[-1]),
                                   initializer="glorot_uniform")

    def call(self, inputs, mask=None):
        query, value = inputs
        # Two batched matmuls rather than one three-operand einsum, which the TFLite
        # converter turned into an unreadable file (a tensor of overflowing size).
        scores = keras.ops.matmul(keras.ops.matmul(query, self.w_a),
                                  keras.ops.transpose(value, (0, 2, 1)))
        if mask is not None and mask[1] is not None:
            value_mask = keras.ops.expand_dims(keras.ops.cast(mask[1], scores.dtype), 1)
            scores = scores - 1e9 * (1.0 - value_mask)
        weights = keras.ops.softmax(scores, axis=-1)
        return keras.ops.matmul(weights, value), weights

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else [mask[0], None]

    def compute_output_spec(self, inputs, mask=None):
        query, value = inputs
        b, t, s = query.shape[0], query.shape[1], value.shape[1]
        return (keras.KerasTensor((b, t, value.shape[-1]), dtype=query.dtype),
                keras.KerasTensor((b, t, s), dtype=query.dtype))


@dataclass(frozen=True)
class Seq2SeqConfig:
    score: str = "additive"


def build_seq2seq_attention(config=Seq2SeqConfig(), *, vocabulary_size=10_000,
                            target_vocabulary_size=10_000, embedding_dim=256, units=512,
                            dropout=0.2, sequence_length=None, name=None):
    """Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015).

    Encoder: embeddings (padding masked), a bidirectional GRU of ``units`` per direction.
    The decoder GRU (``units``) starts from ``tanh(W [h_fwd; h_bwd])`` of the encoder's
    final states (Bahdanau's initialisation) and reads the target prefix; each decoder
    state scores every encoder state (``config.score``: ``"additive"`` = Bahdanau's
    ``v^T tanh(W_1 h_t + W_2 h_s)``, ``"general"`` = Luong's ``h_t^T W_a h_s``,
    ``"dot"``), the softmax over source positions gives the attention weights, and the
    context joins the state as ``tanh(W_c [c_t; h_t])`` (Luong's attentional state)
    before the output projection. Inputs ``[source ids, target-in ids]``, outputs
    ``{"logits", "attention"}``.
    """
    check_choice(config.score, SCORES, "score")
    for value, argument in ((vocabulary_size, "vocabulary_size"),
                            (target_vocabulary_size, "target_vocabulary_size"),
                            (embedding_dim, "embedding_dim"), (units, "units")):
        check_positive_int(value, argument)
    check_fraction(dropout, "dropout")
    source = keras.Input((sequence_length,), dtype="int32", name="source")
    target_in = keras.Input((sequence_length,), dtype="int32", name="target_in")

    s = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True,
                               name="source_embedding")(source)
    s = keras.layers.Dropout(dropout, name="source_dropout")(s)
    encoder = keras.layers.Bidirectional(
        keras.layers.GRU(units, return_sequences=True, return_state=True,
                         name="encoder_gru"), name="encoder")
    states, forward, backward = encoder(s)
    start = keras.layers.Dense(units, activation="tanh", name="decoder_init")(
        keras.layers.Concatenate(name="encoder_final")([forward, backward]))
    # Encoder states (2 x units) brought to the decoder's width so that every score
    # compares vectors of one size.
    keys = keras.layers.Dense(units, use_bias=False, name="encoder_projection")(states)

    t = keras.layers.Embedding(target_vocabulary_size, embedding_dim, mask_zero=True,
                               name="target_embedding")(target_in)
    t = keras.layers.Dropout(dropout, name="target_dropout")(t)
    decoded = keras.layers.GRU(units, return_sequences=True, name="decoder_gru")(
        t, initial_state=start)

    if config.score == "general":
        context, weights = GeneralScoreAttention(name="attention")([decoded, keys])
    elif config.score == "additive":
        # v^T tanh(W_1 h_t + W_2 h_s): keras' AdditiveAttention holds v (its scale) and
        # adds query and key; W_2 is the encoder projection, W_1 this one.
        query = keras.layers.Dense(units, use_bias=False, name="query_projection")(decoded)
        context, weights = keras.layers.AdditiveAttention(name="attention")(
            [query, keys], return_attention_scores=True)
    else:
        context, weights = keras.layers.Attention(name="attention")(
            [decoded, keys], return_attention_scores=True)
    joined = keras.layers.Concatenate(name="context_and_state")([context, decoded])
    attentional = keras.layers.Dense(units, activation="tanh", name="attentional")(joined)
    attentional = keras.layers.Dropout(dropout, name="output_dropout")(attentional)
    logits = keras.layers.Dense(target_vocabulary_size, name="logits")(attentional)
    weights = keras.layers.Identity(name="attention_weights")(weights)
    return keras.Model([source, target_in], {"logits": logits, "attention": weights},
                       name=name or f"seq2seq_{config.score}")


# Multi30k German-English: Adam with warm-up + cosine, global-norm clipping, word tokens.
_RECIPE = Recipe(
    optimizer="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5, epochs=15,
    batch_size=64, validation_fraction=0.0, tokenization="word", vocabulary_size=10_000,
    sequence_length=40, gradient_clipping="global_norm", clip_threshold=1.0,
    notes="Multi30k de->en: word tokens (lower-cased, punctuation split), 10k vocabularies, "
          "40 tokens; Adam 1e-3, warm-up + cosine, 15 epochs, batch 64, global-norm "
          "clipping 1.0")


def _row(name, score, description):
    v, e, u = 10_000, 256, 512
    gru = 3 * (u * (e + u) + 2 * u)  # reset_after: two bias vectors
    count = (v * e + 2 * gru + (2 * u * u + u)  # source embedding, encoder, decoder_init
             + 2 * u * u  # encoder_projection
             + v * e + 3 * (u * (e + u) + 2 * u)  # target embedding, decoder GRU
             + {"additive": u * u + u, "general": u * u, "dot": 0}[score]  # score weights
             + (2 * u * u + u) + (u * v + v))  # attentional state, output layer
    return Variant(name, Seq2SeqConfig(score), description=description,
                   reference_params={
                       "hand count at 10k/10k vocabularies, embeddings 256, GRUs 512": count})


register_family(
    build_seq2seq_attention,
    family="rnn",
    task="seq2seq",
    paper="Bahdanau, Cho & Bengio, ICLR 2015; Luong, Pham & Manning, EMNLP 2015",
    test_kwargs={"vocabulary_size": 20, "target_vocabulary_size": 17, "embedding_dim": 8,
                 "units": 6},
    inputs=(InputDecl("int", 1, "vocabulary_size"),
            InputDecl("int", 1, "target_vocabulary_size")),
    output_shape=[(None, None), (None, "target_vocabulary_size")],
    default_dataset="multi30k",
    recipe=_RECIPE,
    tags=("text", "attention"),
    variants=[
        _row("seq2seq_bahdanau", "additive",
             "GRU encoder-decoder with additive (Bahdanau) attention"),
        _row("seq2seq_luong", "general",
             "GRU encoder-decoder with multiplicative (Luong general) attention"),
        _row("seq2seq_luong_dot", "dot",
             "GRU encoder-decoder with Luong's dot-product attention"),
    ],
)
