"""Autoencoders: dense and convolutional; undercomplete, denoising and sparse.

An autoencoder learns ``x -> code -> x`` through a bottleneck (Rumelhart, Hinton &
Williams 1986; Hinton & Salakhutdinov 2006). Variants:

* undercomplete: the code is smaller than the input, so the network must compress;
* denoising (Vincent et al. 2008): Gaussian noise corrupts the input during training and
  the target stays the clean image, so the code must capture structure, not pixels;
* sparse: a penalty on the code's activity, either L1 on the code (Ng 2011's lecture
  notes, and the Keras examples) or the KL divergence between a target firing rate
  ``rho`` and each sigmoid unit's mean activation over the batch (Ng 2011).

Images come in as raw pixels in [0, 255] (kerasdl's convention: the model scales them)
and reconstructions come out in [0, 1]. The loss is the binary cross-entropy of the
pixels (as Bernoulli probabilities) summed over the image, or the squared error, plus the
sparsity penalty; it is reported per image.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.registry import InputDecl, register_model

PAPER = ("Hinton & Salakhutdinov, Science 2006; Vincent et al., ICML 2008 (denoising); "
         "Ng, Sparse autoencoder (CS294A notes) 2011")
RECONSTRUCTION_LOSSES = ("bce", "mse")
SPARSITY = ("none", "l1", "kl")


def reconstruction_error(x01, y_pred, kind="bce"):
    """Per-image reconstruction loss ``[batch]`` of images ``x01`` in [0, 1]: the pixels'
    binary cross-entropy (nats) or squared error, summed over the image."""
    axes = tuple(range(1, len(y_pred.shape)))
    if kind == "bce":
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        per_pixel = -(x01 * ops.log(p) + (1.0 - x01) * ops.log(1.0 - p))
    else:
        per_pixel = ops.square(x01 - y_pred)
    return ops.sum(per_pixel, axis=axes)


@keras.saving.register_keras_serializable(package="kerasdl")
class KLSparsity(keras.layers.Layer):
    """Identity on sigmoid codes that adds ``weight * sum_j KL(rho || mean_j)``, the mean
    activation of unit j over the batch (Ng 2011), to the model's losses."""

    def __init__(self, rho=0.05, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.rho = check_fraction(rho, "rho", low=1e-6)
        self.weight = float(weight)

    def call(self, codes):
        rho_hat = ops.clip(ops.mean(codes, axis=0), 1e-6, 1.0 - 1e-6)
        rho = self.rho
        kl = rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))
        self.add_loss(self.weight * ops.sum(kl))
        return codes

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "weight": self.weight}


@keras.saving.register_keras_serializable(package="kerasdl")
class Autoencoder(keras.Model):
    """``decoder(encoder(x))`` trained on ``x`` alone by the ordinary ``fit``: its loss
    is the reconstruction error per image (``reconstruction="bce"`` or ``"mse"``) plus
    the encoder's own penalties (sparsity), tracked as ``loss``, ``reconstruction`` and
    ``penalty``."""

    def __init__(self, encoder, decoder, reconstruction="bce", **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = check_choice(reconstruction, RECONSTRUCTION_LOSSES,
                                           "reconstruction")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")

    @property
    def inputs(self):
        return self.encoder.inputs

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.penalty_tracker]

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.cast(x, y_pred.dtype) / 255.0
        reconstruction = ops.mean(reconstruction_error(target, y_pred, self.reconstruction))
        penalty = ops.sum(ops.stack(self.losses)) if self.losses else ops.zeros(())
        loss = reconstruction + penalty
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.penalty_tracker.update_state(penalty)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    def encode(self, x):
        return self.encoder(x, training=False)

    def decode(self, codes):
        return self.decoder(codes, training=False)

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "reconstruction": self.reconstruction}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def check_image_shape(input_shape, multiple=1):
    """``input_shape`` as ``(height, width, channels)`` with sides divisible by
    ``multiple`` (the decoder's upsampling must land on the input size)."""
    ok = (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
          and all(isinstance(d, int) and d > 0 for d in input_shape))
    if not ok or input_shape[0] % multiple or input_shape[1] % multiple:
        raise KerasdlError(
            f"input_shape must be (height, width, channels) with height and width "
            f"divisible by {multiple}, got {input_shape!r}", argument="input_shape")
    return tuple(int(d) for d in input_shape)


def _encoder_front(input_shape, noise_stddev, name):
    images = keras.Input(input_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_scale")(images)
    if noise_stddev:
        # Active in training only: the corrupted input, the clean target.
        x = keras.layers.GaussianNoise(noise_stddev, seed=0, name=f"{name}_noise")(x)
    return images, x


def _code_layer(x, code_dim, sparsity, sparsity_weight, rho):
    if sparsity == "kl":
        code = keras.layers.Dense(code_dim, activation="sigmoid", name="code")(x)
        return KLSparsity(rho, sparsity_weight, name="kl_sparsity")(code)
    regularizer = keras.regularizers.L1(sparsity_weight) if sparsity == "l1" else None
    return keras.layers.Dense(code_dim, activation="relu", activity_regularizer=regularizer,
                              name="code")(x)


def _check_common(code_dim, noise_stddev, sparsity, sparsity_weight, reconstruction):
    check_positive_int(code_dim, "code_dim")
    check_choice(sparsity, SPARSITY, "sparsity")
    check_choice(reconstruction, RECONSTRUCTION_LOSSES, "reconstruction")
    if not (isinstance(noise_stddev, (int, float)) and noise_stddev >= 0):
        raise KerasdlError(f"noise_stddev must be >= 0, got {noise_stddev!r}",
                           argument="noise_stddev")
    if not (isinstance(sparsity_weight, (int, float)) and sparsity_weight >= 0):
        raise KerasdlError(f"sparsity_weight must be >= 0, got {sparsity_weight!r}",
                           argument="sparsity_weight")


_COMMON = dict(
    family="generative",
    task="generation",
    paper=PAPER,
    inputs=(InputDecl("float", 0.0, 255.0),),
    output_shape=(None, None, None),
    target="self",
    default_dataset="mnist",
    tags=("image", "autoencoder"),
)


def _dense_count(pixels, hidden, code):
    return (pixels * hidden + hidden) + (hidden * code + code) \
        + (code * hidden + hidden) + (hidden * pixels + pixels)


@register_model(
    "dense_autoencoder",
    reference_params={
        "hand count at 28x28x1, hidden 256, code 32: 784x256 + 256, 256x32 + 32, 32x256 + "
        "256, 256x784 + 784": _dense_count(784, 256, 32)},
    test_kwargs={"input_shape": (8, 8, 1), "hidden_units": 6, "code_dim": 3},
    description="dense autoencoder (784-256-32-256-784 on MNIST); noise_stddev for "
                "denoising, sparsity='l1'/'kl' for sparse codes",
    **_COMMON,
)
def dense_autoencoder(input_shape=(28, 28, 1), hidden_units=256, code_dim=32,
                      noise_stddev=0.0, sparsity="none", sparsity_weight=1e-4, rho=0.05,
                      reconstruction="bce", name="dense_autoencoder"):
    """Flattened image -> ``hidden_units`` -> code -> ``hidden_units`` -> image, ReLU
    inside, sigmoid pixels out."""
    input_shape = check_image_shape(input_shape)
    check_positive_int(hidden_units, "hidden_units")
    _check_common(code_dim, noise_stddev, sparsity, sparsity_weight, reconstruction)
    images, x = _encoder_front(input_shape, noise_stddev, "encoder")
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="encoder_hidden")(x)
    code = _code_layer(x, code_dim, sparsity, sparsity_weight, rho)
    encoder = keras.Model(images, code, name="encoder")
    codes = keras.Input((code_dim,), name="codes")
    y = keras.layers.Dense(hidden_units, activation="relu", name="decoder_hidden")(codes)
    y = keras.layers.Dense(math.prod(input_shape), activation="sigmoid", name="pixels")(y)
    y = keras.layers.Reshape(input_shape, name="image")(y)
    decoder = keras.Model(codes, y, name="decoder")
    model = Autoencoder(encoder, decoder, reconstruction=reconstruction, name=name)
    model(ops.zeros((1,) + input_shape))
    return model


def _conv_count(channels, filters, code, side):
    f1, f2 = filters
    flat = (side // 4) ** 2 * f2
    enc = (9 * channels * f1 + f1) + (9 * f1 * f2 + f2) + (flat * code + code)
    dec = (code * flat + flat) + (9 * f2 * f2 + f2) + (9 * f2 * f1 + f1) + (9 * f1 * channels
                                                                            + channels)
    return enc + dec


@register_model(
    "conv_autoencoder",
    reference_params={
        "hand count at 28x28x1, filters 32/64, code 32: Conv 3x3 1->32 and 32->64 (stride "
        "2), Dense 3,136->32; Dense 32->3,136, ConvT 64->64 and 64->32 (stride 2), Conv "
        "32->1": _conv_count(1, (32, 64), 32, 28)},
    test_kwargs={"input_shape": (8, 8, 1), "filters": (2, 3), "code_dim": 3},
    description="convolutional autoencoder (two stride-2 convolutions each way)",
    **_COMMON,
)
def conv_autoencoder(input_shape=(28, 28, 1), filters=(32, 64), code_dim=32,
                     noise_stddev=0.0, sparsity="none", sparsity_weight=1e-4, rho=0.05,
                     reconstruction="bce", name="conv_autoencoder"):
    """Two stride-2 3x3 convolutions down to a dense code, mirrored by two stride-2
    transposed convolutions and a 3x3 convolution to sigmoid pixels."""
    input_shape = check_image_shape(input_shape, multiple=4)
    _check_common(code_dim, noise_stddev, sparsity, sparsity_weight, reconstruction)
    f1, f2 = conv_filters(filters)
    images, x = _encoder_front(input_shape, noise_stddev, "encoder")
    x = conv_down(x, (f1, f2))
    code = _code_layer(keras.layers.Flatten(name="flatten")(x), code_dim, sparsity,
                       sparsity_weight, rho)
    encoder = keras.Model(images, code, name="encoder")
    codes = keras.Input((code_dim,), name="codes")
    decoder = keras.Model(codes, conv_up(codes, input_shape, (f1, f2)), name="decoder")
    model = Autoencoder(encoder, decoder, reconstruction=reconstruction, name=name)
    model(ops.zeros((1,) + input_shape))
    return model


def conv_filters(filters):
    if not (isinstance(filters, (tuple, list)) and len(filters) == 2
            and all(isinstance(f, int) and f > 0 for f in filters)):
        raise KerasdlError(f"filters must be two positive ints, got {filters!r}",
                           argument="filters")
    return int(filters[0]), int(filters[1])


def conv_down(x, filters, prefix="encoder"):
    """Two 3x3 stride-2 ReLU convolutions: a quarter of the side."""
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu",
                                name=f"{prefix}_conv{i + 1}")(x)
    return x


def conv_up(codes, input_shape, filters, prefix="decoder"):
    """Dense to a quarter-size map, two 3x3 stride-2 transposed convolutions, and a 3x3
    convolution to sigmoid pixels of ``input_shape``."""
    f1, f2 = filters
    h, w, channels = input_shape
    x = keras.layers.Dense(h // 4 * w // 4 * f2, activation="relu", name=f"{prefix}_dense")(
        codes)
    x = keras.layers.Reshape((h // 4, w // 4, f2), name=f"{prefix}_map")(x)
    for i, f in enumerate((f2, f1)):
        x = keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                         name=f"{prefix}_up{i + 1}")(x)
    return keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid",
                               name=f"{prefix}_pixels")(x)
