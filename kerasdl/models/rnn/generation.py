"""One-to-many generation: one input in, a sequence out.

``conditional_lstm_lm`` writes a sentence from a single input, here a class label (a
question type of TREC, a sentiment of SST-2): the label is embedded and sets the LSTM's
starting state, and the network is then an ordinary language model over the sentence.
This is the captioning pattern with the image replaced by a label: Vinyals et al., "Show
and Tell: A Neural Image Caption Generator", CVPR 2015, feed the image embedding to the
LSTM as its first input instead; setting the starting state (as in Karpathy & Fei-Fei's
NeuralTalk, CVPR 2015, which adds the image at the first step) keeps every time step a
word, so the decoders of :mod:`kerasdl.decoding` drive it unchanged
(``seq2seq_step_fn(model, labels[:, None])``).
"""

from __future__ import annotations

import keras

from kerasdl.errors import check_fraction, check_positive_int
from kerasdl.registry import InputDecl, register_model
from kerasdl.train.recipes import Recipe

_RECIPE = Recipe(
    optimizer="adam", learning_rate=2e-3, schedule="cosine", warmup_epochs=0.5, epochs=20,
    batch_size=64, validation_fraction=0.1, tokenization="word", vocabulary_size=8_000,
    sequence_length=32, gradient_clipping="global_norm", clip_threshold=1.0,
    notes="a label in, its sentence out: word tokens, 8k vocabulary, 32 tokens; Adam 2e-3, "
          "warm-up + cosine, 20 epochs, batch 64, global-norm clipping 1.0")


def _count(num_classes, vocabulary_size, embedding_dim, units):
    return (num_classes * embedding_dim + 2 * (embedding_dim * units + units)
            + vocabulary_size * embedding_dim + 4 * units * (embedding_dim + units + 1)
            + units * vocabulary_size + vocabulary_size)


@register_model(
    "conditional_lstm_lm",
    family="rnn",
    task="conditional_language_modeling",
    paper="Vinyals et al., Show and Tell, CVPR 2015; Karpathy & Fei-Fei, Deep "
          "Visual-Semantic Alignments for Generating Image Descriptions, CVPR 2015",
    reference_params={
        "hand count at 6 classes (TREC), vocabulary 8,000, embedding 128, 256 units: label "
        "embedding 6x128, two 128->256 state projections, word embedding 8,000x128, LSTM "
        "4x256x(128+256+1), Dense 256->8,000": _count(6, 8_000, 128, 256),
    },
    test_kwargs={"num_classes": 3, "vocabulary_size": 20, "embedding_dim": 8, "units": 6},
    inputs=(InputDecl("int", 0, "num_classes"), InputDecl("int", 1, "vocabulary_size")),
    output_shape=(None, "vocabulary_size"),
    default_dataset="trec",
    recipe=_RECIPE,
    tags=("text",),
)
def build_conditional_lstm_lm(*, num_classes=6, vocabulary_size=8_000, embedding_dim=128,
                              units=256, dropout=0.1, sequence_length=None,
                              name="conditional_lstm_lm"):
    """A label-conditioned word LSTM: ``[label [batch, 1], tokens [batch, T]] -> logits
    [batch, T, vocabulary_size]``. ``num_classes`` is the number of labels it can be asked
    to write for."""
    for value, argument in ((num_classes, "num_classes"), (vocabulary_size, "vocabulary_size"),
                            (embedding_dim, "embedding_dim"), (units, "units")):
        check_positive_int(value, argument)
    check_fraction(dropout, "dropout")
    label = keras.Input((1,), dtype="int32", name="condition")
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    c = keras.layers.Embedding(num_classes, embedding_dim, name="condition_embedding")(label)
    c = keras.layers.Reshape((embedding_dim,), name="condition_vector")(c)
    state = [keras.layers.Dense(units, activation="tanh", name=f"initial_{s}")(c)
             for s in ("h", "c")]
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True,
                               name="embedding")(tokens)
    x = keras.layers.LSTM(units, return_sequences=True, dropout=dropout,
                          name="rnn1_lstm")(x, initial_state=state)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(x)
    return keras.Model([label, tokens], logits, name=name)
