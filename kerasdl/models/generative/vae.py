"""Variational autoencoders (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR
2014), beta-VAE (Higgins et al., ICLR 2017) and the conditional VAE (Sohn, Lee & Yan,
NeurIPS 2015).

The encoder gives the mean and log-variance of a diagonal Gaussian ``q(z|x)``; a code is
drawn by the reparameterisation ``z = mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``,
so the gradient flows through the mean and the variance; the decoder gives Bernoulli
probabilities of the pixels. The loss is the negative ELBO per image, in nats:

    reconstruction  -sum_pixels [x log p + (1 - x) log(1 - p)]      (one z per image)
    kl              KL(q(z|x) || N(0, I)) = -1/2 sum (1 + log_var - mean^2 - exp(log_var))
    loss            reconstruction + beta * kl

(beta = 1 is the ELBO; beta > 1 trades reconstruction for a more factorised code). The
pixels are Bernoulli variables, so the data should be binary: the recipe binarises MNIST
stochastically (each pixel on with probability intensity / 255, redrawn every epoch, as
Salakhutdinov & Murray 2008; validation and test with one fixed draw), which makes the
negative ELBO an upper bound on the test negative log-likelihood.

``call`` (and so ``predict``) encodes to the mean, without sampling, so that an
inference is deterministic; training and :func:`negative_elbo` sample.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_positive_int
from kerasdl.models.generative.autoencoder import (check_image_shape, conv_down, conv_filters,
                                                   conv_up, reconstruction_error)
from kerasdl.registry import InputDecl, register_model
from kerasdl.train.recipes import Recipe

PAPER = "Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014"


def kl_divergence(mean, log_var):
    """``KL(N(mean, exp(log_var)) || N(0, I))`` per example, summed over the code."""
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


@keras.saving.register_keras_serializable(package="kerasdl")
class VAE(keras.Model):
    """A VAE around a functional ``encoder`` (images [and labels] -> ``[mean,
    log_var]``) and ``decoder`` (codes [and labels] -> pixel probabilities in [0, 1]),
    trained on images alone (or ``[images, labels]`` when ``conditional``) by ``fit``.
    Tracks ``loss`` (the beta-weighted negative ELBO), ``reconstruction`` and ``kl``,
    per image in nats. Randomness comes from a seeded ``keras.random.SeedGenerator``."""

    def __init__(self, encoder, decoder, beta=1.0, conditional=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise KerasdlError(f"beta must be >= 0, got {beta!r}", argument="beta")
        self.beta = float(beta)
        self.conditional = bool(conditional)
        self.seed = int(seed)
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def inputs(self):
        return self.encoder.inputs

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _split(self, x):
        if self.conditional:
            images, labels = x
            return images, labels
        return x, None

    def _decode(self, z, labels, training=False):
        return self.decoder([z, labels] if self.conditional else z, training=training)

    def encode(self, x, training=False):
        """``(mean, log_var)`` of ``q(z|x)``."""
        mean, log_var = self.encoder(x, training=training)
        return mean, log_var

    def decode(self, codes, labels=None):
        """Pixel probabilities of ``codes`` (and ``labels`` for a conditional VAE)."""
        if self.conditional and labels is None:
            raise KerasdlError("a conditional VAE needs labels to decode", argument="labels")
        labels = None if labels is None else ops.convert_to_tensor(labels, "int32")
        return self._decode(ops.convert_to_tensor(codes, "float32"), labels)

    def sample_codes(self, mean, log_var):
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def call(self, x, training=False):
        images, labels = self._split(x)
        mean, log_var = self.encode(x, training=training)
        z = self.sample_codes(mean, log_var) if training else mean
        return self._decode(z, labels, training=training)

    def _terms(self, x, training):
        images, labels = self._split(x)
        mean, log_var = self.encode(x, training=training)
        probabilities = self._decode(self.sample_codes(mean, log_var), labels,
                                     training=training)
        target = ops.cast(images, probabilities.dtype) / 255.0
        return (reconstruction_error(target, probabilities, "bce"),
                kl_divergence(mean, log_var))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The ELBO needs a sampled code in evaluation too, so the terms are computed here
        # rather than from y_pred (which call() decodes from the mean when not training).
        reconstruction, kl = self._terms(x, training)
        reconstruction, kl = ops.mean(reconstruction), ops.mean(kl)
        loss = reconstruction + self.beta * kl
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    def generate(self, n, labels=None, seed=None):
        """``n`` images decoded from codes drawn from the prior ``N(0, I)`` (with
        ``labels`` ``[n]`` for a conditional VAE)."""
        check_positive_int(n, "n")
        if self.conditional and labels is None:
            raise KerasdlError("a conditional VAE needs labels for generate()",
                               argument="labels")
        rng = keras.random.SeedGenerator(self.seed if seed is None else seed)
        z = keras.random.normal((n, self.latent_dim), seed=rng)
        labels = None if labels is None else ops.convert_to_tensor(labels, "int32")
        return self._decode(z, labels)

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "beta": self.beta, "conditional": self.conditional, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def negative_elbo(vae, images, labels=None, samples=1, batch_size=500, seed=0):
    """Mean negative ELBO (nats per image) of ``images`` (raw pixels, [0, 255]) and its
    two terms, ``{"negative_elbo", "reconstruction", "kl", "bits_per_dim"}``, each code
    drawn ``samples`` times (Monte Carlo over q(z|x); the KL is exact)."""
    import numpy as np

    check_positive_int(samples, "samples")
    generator = keras.random.SeedGenerator(seed)
    reconstruction, kl = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        y = ops.convert_to_tensor(labels[start:start + batch_size], "int32") \
            if vae.conditional else None
        mean, log_var = vae.encode([ops.convert_to_tensor(x), y] if vae.conditional else x)
        target = ops.cast(ops.convert_to_tensor(x), "float32") / 255.0
        terms = []
        for _ in range(samples):
            eps = keras.random.normal(ops.shape(mean), seed=generator)
            z = mean + ops.exp(0.5 * log_var) * eps
            terms.append(reconstruction_error(target, vae._decode(z, y), "bce"))
        reconstruction.append(ops.convert_to_numpy(ops.mean(ops.stack(terms), axis=0)))
        kl.append(ops.convert_to_numpy(kl_divergence(mean, log_var)))
    rec, kl = float(np.concatenate(reconstruction).mean()), float(np.concatenate(kl).mean())
    dims = math.prod(images.shape[1:])
    return {"negative_elbo": rec + kl, "reconstruction": rec, "kl": kl,
            "bits_per_dim": (rec + kl) / (dims * math.log(2))}


def build_vae(latent_dim=32, *, input_shape=(28, 28, 1), filters=(32, 64), beta=1.0,
              conditional=False, num_classes=10, seed=0, name=None):
    """Convolutional VAE: two stride-2 3x3 ReLU convolutions, Dense to ``latent_dim``
    means and log-variances; the decoder mirrors it (Dense, two stride-2 transposed
    convolutions, 3x3 convolution to sigmoid pixels). A ``conditional`` VAE feeds a
    one-hot label to both encoder (as extra input channels) and decoder (concatenated to
    the code), so ``p(x|z, y)`` and labels steer generation."""
    check_positive_int(latent_dim, "latent_dim")
    input_shape = check_image_shape(input_shape, multiple=4)
    f1, f2 = conv_filters(filters)
    check_positive_int(num_classes, "num_classes")
    h, w, _ = input_shape

    images = keras.Input(input_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 255.0, name="encoder_scale")(images)
    encoder_inputs = images
    if conditional:
        labels = keras.Input((), dtype="int32", name="labels")
        one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot",
                                                name="encoder_one_hot")(labels)
        planes = keras.layers.RepeatVector(h * w, name="label_repeat")(one_hot)
        planes = keras.layers.Reshape((h, w, num_classes), name="label_planes")(planes)
        x = keras.layers.Concatenate(name="with_label")([x, planes])
        encoder_inputs = [images, labels]
    x = keras.layers.Flatten(name="flatten")(conv_down(x, (f1, f2)))
    mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    encoder = keras.Model(encoder_inputs, [mean, log_var], name="encoder")

    codes = keras.Input((latent_dim,), name="codes")
    decoder_inputs, z = codes, codes
    if conditional:
        code_labels = keras.Input((), dtype="int32", name="labels")
        one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot",
                                                name="decoder_one_hot")(code_labels)
        z = keras.layers.Concatenate(name="code_and_label")([codes, one_hot])
        decoder_inputs = [codes, code_labels]
    decoder = keras.Model(decoder_inputs, conv_up(z, input_shape, (f1, f2)), name="decoder")

    model = VAE(encoder, decoder, beta=beta, conditional=conditional, seed=seed,
                name=name or ("cvae" if conditional else "vae"))
    dummy = ops.zeros((1,) + input_shape)
    model([dummy, ops.zeros((1,), "int32")] if conditional else dummy)
    return model


def vae_count(latent_dim, input_shape=(28, 28, 1), filters=(32, 64), num_classes=0):
    """Parameters of :func:`build_vae` (``num_classes`` > 0: conditional)."""
    (f1, f2), (h, w, c) = filters, input_shape
    flat = h // 4 * w // 4 * f2
    k = num_classes
    encoder = (9 * (c + k) * f1 + f1) + (9 * f1 * f2 + f2) + 2 * (flat * latent_dim
                                                                 + latent_dim)
    decoder = ((latent_dim + k) * flat + flat) + (9 * f2 * f2 + f2) + (9 * f2 * f1 + f1) \
        + (9 * f1 * c + c)
    return encoder + decoder


# Adam 1e-3 as Kingma & Welling's successors (they used Adagrad); MNIST binarised anew
# every epoch; batch 128.
_RECIPE = Recipe(
    optimizer="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.0, epochs=30,
    batch_size=128, validation_fraction=0.1, augmentation="binarize",
    notes="Adam 1e-3, cosine decay, 30 epochs, batch 128; MNIST stochastically binarised "
          "(redrawn every epoch; validation and test one fixed draw)")

_COMMON = dict(family="generative", task="generation", output_shape=(None, None, None),
               target="self", default_dataset="mnist", recipe=_RECIPE)


@register_model(
    "vae_conv",
    paper=PAPER,
    reference_params={
        "hand count at 28x28x1, filters 32/64, code 32: Conv 1->32, 32->64; two Dense "
        "3,136->32 (mean, log-variance); Dense 32->3,136, ConvT 64->64, 64->32, Conv "
        "32->1": vae_count(32)},
    test_kwargs={"input_shape": (8, 8, 1), "filters": (2, 3), "latent_dim": 2},
    inputs=(InputDecl("float", 0.0, 255.0),),
    tags=("image", "vae"),
    description="convolutional VAE, 32-dimensional code (MNIST)",
    **_COMMON,
)
def vae_conv(input_shape=(28, 28, 1), latent_dim=32, filters=(32, 64), beta=1.0, seed=0,
             name="vae_conv"):
    """Convolutional VAE (:func:`build_vae`); ``beta`` > 1 for a beta-VAE."""
    return build_vae(latent_dim, input_shape=input_shape, filters=filters, beta=beta,
                     seed=seed, name=name)


@register_model(
    "vae_conv_2d",
    paper=PAPER,
    reference_params={"hand count as vae_conv with a 2-dimensional code": vae_count(2)},
    test_kwargs={"input_shape": (8, 8, 1), "filters": (2, 3)},
    inputs=(InputDecl("float", 0.0, 255.0),),
    tags=("image", "vae"),
    description="convolutional VAE with a 2-dimensional code, to plot the latent space",
    **_COMMON,
)
def vae_conv_2d(input_shape=(28, 28, 1), filters=(32, 64), beta=1.0, seed=0,
                name="vae_conv_2d"):
    """:func:`vae_conv` with a 2-dimensional code."""
    return build_vae(2, input_shape=input_shape, filters=filters, beta=beta, seed=seed,
                     name=name)


@register_model(
    "cvae_conv",
    paper="Sohn, Lee & Yan, Learning Structured Output Representation using Deep "
          "Conditional Generative Models, NeurIPS 2015",
    reference_params={
        "hand count as vae_conv plus 10 label planes into the first convolution and the "
        "one-hot label into the decoder's Dense": vae_count(32, num_classes=10)},
    test_kwargs={"input_shape": (8, 8, 1), "filters": (2, 3), "latent_dim": 2,
                 "num_classes": 3},
    inputs=(InputDecl("float", 0.0, 255.0), InputDecl("int", 0, "num_classes")),
    tags=("image", "vae", "conditional"),
    description="conditional convolutional VAE (label into encoder and decoder)",
    **_COMMON,
)
def cvae_conv(input_shape=(28, 28, 1), num_classes=10, latent_dim=32, filters=(32, 64),
              beta=1.0, seed=0, name="cvae_conv"):
    """Conditional convolutional VAE: inputs ``[images, labels]``."""
    return build_vae(latent_dim, input_shape=input_shape, filters=filters, beta=beta,
                     conditional=True, num_classes=num_classes, seed=seed, name=name)
