"""An ELMo-style bidirectional language model whose layer states are contextual
embeddings.

Peters et al., "Deep contextualized word representations", NAACL 2018: a forward LSTM
language model predicts each next token, a backward one each previous token; they share
the token embeddings and the softmax, and ELMo represents a token by a learned, softmax-
normalised mix of the layers (token layer and each LSTM layer, both directions
concatenated) times a scale gamma. The paper's input is a character CNN and its LSTMs
have 4096 cells projected to 512; here the inputs are token embeddings and the sizes are
arguments (the defaults train on this CPU).
"""

from __future__ import annotations

import keras
import numpy as np

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int
from kerasdl.registry import InputDecl, register_model
from kerasdl.train.recipes import Recipe


@keras.saving.register_keras_serializable(package="kerasdl")
class Reverse(keras.layers.Layer):
    """Reverses the time axis: the backward language model reads right to left."""

    def call(self, x):
        return keras.ops.flip(x, axis=1)


@keras.saving.register_keras_serializable(package="kerasdl")
class ScalarMix(keras.layers.Layer):
    """ELMo's task-specific mix ``gamma * sum_j softmax(s)_j h_j`` of stacked layer
    representations ``[batch, layers, time, dim]`` (Peters et al. 2018, Eq. 1)."""

    def build(self, input_shape):
        self.s = self.add_weight(name="s", shape=(input_shape[1],), initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="ones")

    def call(self, layers):
        weights = keras.ops.softmax(self.s)
        return self.gamma * keras.ops.einsum("l,bltd->btd", weights, layers)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])


def build_elmo_bilm(*, vocabulary_size=10_000, embedding_dim=256, units=256, layers=2,
                    dropout=0.1, sequence_length=None, name="elmo_bilm"):
    """Token ids -> ``{"forward": logits, "backward": logits}``: the forward stack's
    state at position t predicts token t+1, the backward stack's predicts token t-1;
    both share the embeddings and the output layer (the paper ties the softmax too). The
    layers are named ``forward_lstm{i}``/``backward_lstm{i}`` for :func:`elmo_layers`."""
    for value, argument in ((vocabulary_size, "vocabulary_size"),
                            (embedding_dim, "embedding_dim"), (units, "units"),
                            (layers, "layers")):
        check_positive_int(value, argument)
    check_fraction(dropout, "dropout")
    if units != embedding_dim:
        raise KerasdlError(f"units ({units}) must equal embedding_dim ({embedding_dim}): the "
                           "layers are mixed into one representation", argument="units")
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(tokens)
    softmax = keras.layers.Dense(vocabulary_size, name="softmax")
    outputs = {}
    for direction in ("forward", "backward"):
        x = embedded if direction == "forward" else Reverse(name="reverse_in")(embedded)
        for i in range(1, layers + 1):
            x = keras.layers.LSTM(units, return_sequences=True, name=f"{direction}_lstm{i}")(x)
            x = keras.layers.Dropout(dropout, name=f"{direction}_dropout{i}")(x)
        if direction == "backward":
            x = Reverse(name="reverse_out")(x)  # back to left-to-right positions
        outputs[direction] = softmax(x)
    return keras.Model(tokens, outputs, name=name)


register_model(
    "elmo_bilm",
    family="rnn",
    task="language_modeling",
    paper="Peters et al., Deep contextualized word representations, NAACL 2018",
    reference_params={
        "hand count at vocabulary 10,000, embeddings and LSTMs 256, 2 layers each way: "
        "10,000x256 + 4 x 4 x (256 x 512 + 256) + 256 x 10,000 + 10,000":
            10_000 * 256 + 4 * 4 * (256 * 512 + 256) + 256 * 10_000 + 10_000,
    },
    test_kwargs={"vocabulary_size": 20, "embedding_dim": 6, "units": 6},
    inputs=(InputDecl("int", 1, "vocabulary_size"),),
    output_shape=[(None, "vocabulary_size"), (None, "vocabulary_size")],
    default_dataset="tiny_shakespeare",
    recipe=Recipe(optimizer="adam", learning_rate=2e-3, epochs=10, batch_size=64,
                  validation_fraction=0.0, tokenization="word", vocabulary_size=10_000,
                  sequence_length=40, gradient_clipping="global_norm", clip_threshold=1.0,
                  notes="word tokens, 10k vocabulary, windows of 40; Adam 2e-3, cosine"),
    tags=("text", "language_model"),
)(build_elmo_bilm)


def elmo_layers(model, tokens):
    """The biLM's representations of ``tokens`` as ``[batch, layers + 1, time, 2 * units]``:
    layer 0 is the token embedding (doubled, as ELMo does for its character layer), layer
    j the forward and backward LSTM states of layer j, concatenated."""
    names = [layer.name for layer in model.layers]
    depth = sum(1 for n in names if n.startswith("forward_lstm"))
    if depth == 0 or "embedding" not in names:
        raise KerasdlError(f"{model.name!r} is not an elmo_bilm model", argument="model")
    wanted = [model.get_layer("embedding").output]
    for i in range(1, depth + 1):
        wanted += [model.get_layer(f"forward_lstm{i}").output,
                   model.get_layer(f"backward_lstm{i}").output]
    probe = keras.Model(model.input, wanted)
    outs = [keras.ops.convert_to_numpy(o) for o in probe(np.asarray(tokens), training=False)]
    stacked = [np.concatenate([outs[0], outs[0]], -1)]
    for i in range(depth):
        forward, backward = outs[1 + 2 * i], outs[2 + 2 * i]
        stacked.append(np.concatenate([forward, np.flip(backward, 1)], -1))
    return np.stack(stacked, axis=1)
