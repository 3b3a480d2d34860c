"""Tiny test-only models, registered so that the model contract
(``tests/test_model_contract.py``) exercises every kind of model kerasdl will hold, before
those families exist: integer token inputs, two inputs (encoder and decoder tokens), a
subclassed model that trains on x alone, a ``mobile`` model for the TFLite path, and
a two-output model with a regression target.

Imported by ``tests/conftest.py``, so they are registered for the whole test session.
All names start with ``test_`` and all belong to family ``"test"``, task ``"test"``.
Each ``reference_params`` count is worked out by hand in its source string.
"""

from __future__ import annotations

import keras

from kerasdl.registry import InputDecl, register_model

TEST_MODELS = (
    "test_autoencoder",
    "test_mobile_cnn",
    "test_seq2seq",
    "test_token_classifier",
    "test_two_head_regressor",
)


@register_model(
    "test_token_classifier",
    family="test",
    task="test",
    reference_params={
        "hand count: Embedding 100x8 = 800; Dense 8x5 + 5 = 45; 800 + 45": 845,
    },
    reference_kwargs={"vocab_size": 100, "num_classes": 5},
    test_kwargs={"vocab_size": 11, "num_classes": 3},
    inputs=(InputDecl("int", 0, "vocab_size"),),
    output_shape=("num_classes",),
    target="classes",
)
def test_token_classifier(vocab_size=100, num_classes=5, name="test_token_classifier"):
    """Token ids -> Embedding(vocab_size, 8) -> mean over tokens -> Dense logits."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, 8, name="embedding")(tokens)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(tokens, x, name=name)


@register_model(
    "test_seq2seq",
    family="test",
    task="test",
    reference_params={
        "hand count: encoder Embedding 50x8 = 400; decoder Embedding 50x8 = 400; "
        "Attention (no scale) 0; Dense (8 + 8)x50 + 50 = 850; 400 + 400 + 850": 1_650,
    },
    reference_kwargs={"vocab_size": 50},
    test_kwargs={"vocab_size": 13},
    inputs=(InputDecl("int", 0, "vocab_size"), InputDecl("int", 0, "vocab_size")),
    output_shape=(None, "vocab_size"),
    target="classes",
)
def test_seq2seq(vocab_size=50, name="test_seq2seq"):
    """Encoder tokens and decoder tokens -> per-decoder-token logits over the vocabulary
    (decoder embeddings attend to encoder embeddings, then a Dense over both)."""
    encoder_tokens = keras.Input(shape=(None,), dtype="int32", name="encoder_tokens")
    decoder_tokens = keras.Input(shape=(None,), dtype="int32", name="decoder_tokens")
    enc = keras.layers.Embedding(vocab_size, 8, name="encoder_embedding")(encoder_tokens)
    dec = keras.layers.Embedding(vocab_size, 8, name="decoder_embedding")(decoder_tokens)
    context = keras.layers.Attention(name="attention")([dec, enc])
    x = keras.layers.Concatenate(name="concat")([dec, context])
    x = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model([encoder_tokens, decoder_tokens], x, name=name)


@keras.saving.register_keras_serializable(package="kerasdl_tests")
class TinyAutoencoder(keras.Model):
    """A dense autoencoder that trains on x alone: functional sub-networks, a complete
    ``get_config``/``from_config``, and its own loss in ``compute_loss``, the
    backend-neutral hook that Keras' ``train_step`` calls on TensorFlow, JAX and PyTorch
    alike (the contract runs it on TensorFlow and JAX)."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    @property
    def inputs(self):
        # Subclassed models have no ``inputs``; the contract reads shapes and dtypes from
        # it, so expose the encoder's.
        return self.encoder.inputs

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.mean(keras.ops.square(x - y_pred))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


@register_model(
    "test_autoencoder",
    family="test",
    task="test",
    reference_params={
        "hand count: Dense 16x8 + 8 = 136; Dense 8x4 + 4 = 36; Dense 4x8 + 8 = 40; "
        "Dense 8x16 + 16 = 144; 136 + 36 + 40 + 144": 356,
    },
    test_kwargs={"input_dim": 6, "hidden_dim": 5, "latent_dim": 2},
    inputs=(InputDecl("float", -1.0, 1.0),),
    output_shape=("input_dim",),
    target="self",
)
def test_autoencoder(input_dim=16, hidden_dim=8, latent_dim=4, name="test_autoencoder"):
    """Dense autoencoder: input_dim -> hidden -> latent -> hidden -> input_dim."""
    x_in = keras.Input(shape=(input_dim,), name="features")
    h = keras.layers.Dense(hidden_dim, activation="relu", name="enc_hidden")(x_in)
    z = keras.layers.Dense(latent_dim, name="enc_latent")(h)
    encoder = keras.Model(x_in, z, name="encoder")
    z_in = keras.Input(shape=(latent_dim,), name="latent")
    h = keras.layers.Dense(hidden_dim, activation="relu", name="dec_hidden")(z_in)
    x_out = keras.layers.Dense(input_dim, name="dec_out")(h)
    decoder = keras.Model(z_in, x_out, name="decoder")
    model = TinyAutoencoder(encoder, decoder, name=name)
    model(keras.ops.zeros((1, input_dim)))  # build, so count_params() and save work
    return model


@register_model(
    "test_mobile_cnn",
    family="test",
    task="test",
    reference_params={
        "hand count: Conv2D 3x3x3x4 + 4 = 112; Dense 4x5 + 5 = 25; 112 + 25": 137,
    },
    test_kwargs={"input_shape": (8, 8, 3), "num_classes": 3},
    tags=("mobile",),
)
def test_mobile_cnn(input_shape=(16, 16, 3), num_classes=5, name="test_mobile_cnn"):
    """Conv2D(4, 3x3, ReLU) -> global average pooling -> Dense logits."""
    image = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(image, x, name=name)


@register_model(
    "test_two_head_regressor",
    family="test",
    task="test",
    reference_params={
        "hand count: Dense 8x16 + 16 = 144; Dense 16x3 + 3 = 51; Dense 16x2 + 2 = 34; "
        "144 + 51 + 34": 229,
    },
    test_kwargs={"input_dim": 4, "num_outputs": 2},
    inputs=(InputDecl("float", -1.0, 1.0),),
    output_shape=[("num_outputs",), (2,)],
    target="regression",
)
def test_two_head_regressor(input_dim=8, num_outputs=3, name="test_two_head_regressor"):
    """Two outputs and a regression target: features -> Dense(16, ReLU) -> two heads."""
    x_in = keras.Input(shape=(input_dim,), name="features")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(x_in)
    values = keras.layers.Dense(num_outputs, name="values")(h)
    pair = keras.layers.Dense(2, name="pair")(h)
    return keras.Model(x_in, [values, pair], name=name)
