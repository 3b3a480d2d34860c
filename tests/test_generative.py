"""Autoencoders and VAEs: their losses against the formulas, binarisation, and a real
`kerasdl train` run on MNIST that writes samples, reloads and evaluates."""

import json
import math
import os

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.models.generative.vae import kl_divergence, negative_elbo
from kerasdl.tasks.generation import fixed_binarization


def test_kl_divergence_of_diagonal_gaussians_by_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(1, 3)).astype("float32")
    log_var = rng.normal(scale=0.5, size=(1, 3)).astype("float32")
    closed = float(keras.ops.convert_to_numpy(kl_divergence(mean, log_var))[0])
    # E_q[log q(z) - log p(z)] estimated from 200,000 draws.
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((200_000, 3))
    log_q = -0.5 * (((z - mean) / std) ** 2 + log_var + math.log(2 * math.pi)).sum(1)
    log_p = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(1)
    assert closed == pytest.approx(float((log_q - log_p).mean()), abs=0.02)


def test_binarisation_draws_pixels_with_their_intensity():
    from kerasdl.augment import make_augmentation

    images = np.tile(np.linspace(0, 255, 6, dtype="float32").reshape(1, 6, 1, 1),
                     (4000, 1, 1, 1))
    hook = make_augmentation("binarize", (6, 1), seed=3)
    out, _ = hook.augment_batch(images, np.zeros(4000), 7)
    out = np.asarray(out)
    assert set(np.unique(out)) <= {0.0, 255.0}
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)) / 255, np.linspace(0, 1, 6), atol=0.03)
    again, _ = hook.augment_batch(images, np.zeros(4000), 7)
    other, _ = hook.augment_batch(images, np.zeros(4000), 8)
    assert np.array_equal(out, np.asarray(again)) and not np.array_equal(out, np.asarray(other))
    fixed = fixed_binarization(images[:10])
    assert np.array_equal(fixed, fixed_binarization(images[:10]))


def test_random_binary_images_cost_one_bit_per_pixel_untrained():
    keras.utils.set_random_seed(0)
    vae = kerasdl.create_model("vae_conv", input_shape=(8, 8, 1), filters=(2, 3),
                               latent_dim=2)
    for v in vae.decoder.weights:  # a decoder that says 0.5 everywhere
        v.assign(keras.ops.zeros_like(v))
    images = np.random.default_rng(0).integers(0, 2, (50, 8, 8, 1)).astype("float32") * 255
    terms = negative_elbo(vae, images)
    assert terms["reconstruction"] == pytest.approx(64 * math.log(2), rel=1e-5)
    assert terms["negative_elbo"] == pytest.approx(terms["reconstruction"] + terms["kl"])
    assert terms["kl"] > 0


def test_autoencoder_penalties_and_denoising_noise():
    images = np.random.default_rng(1).uniform(0, 255, (16, 8, 8, 1)).astype("float32")
    kl = kerasdl.create_model("dense_autoencoder", input_shape=(8, 8, 1), hidden_units=6,
                              code_dim=4, sparsity="kl", rho=0.1, sparsity_weight=2.0)
    kl(images)
    codes = keras.ops.convert_to_numpy(kl.encoder(images))
    rho_hat = codes.mean(0)
    expected = 2.0 * np.sum(0.1 * np.log(0.1 / rho_hat)
                            + 0.9 * np.log(0.9 / (1 - rho_hat)))
    assert float(keras.ops.convert_to_numpy(kl.losses[0])) == pytest.approx(expected,
                                                                            rel=1e-4)
    noisy = kerasdl.create_model("conv_autoencoder", input_shape=(8, 8, 1), filters=(2, 3),
                                 code_dim=3, noise_stddev=0.5)
    clean = keras.ops.convert_to_numpy(noisy(images, training=False))
    assert np.array_equal(clean, keras.ops.convert_to_numpy(noisy(images, training=False)))
    assert not np.allclose(clean, keras.ops.convert_to_numpy(noisy(images, training=True)))
    with pytest.raises(KerasdlError, match="sparsity"):
        kerasdl.create_model("dense_autoencoder", sparsity="l2")
    with pytest.raises(KerasdlError, match="input_shape"):
        kerasdl.create_model("vae_conv", input_shape=(30, 30, 1))


def test_conditional_vae_generates_from_labels():
    cvae = kerasdl.create_model("cvae_conv", input_shape=(8, 8, 1), filters=(2, 3),
                                latent_dim=2, num_classes=3)
    images = cvae.generate(6, labels=[0, 1, 2, 0, 1, 2], seed=1)
    assert tuple(images.shape) == (6, 8, 8, 1)
    # Same codes, different labels: the label reaches the decoder.
    a = keras.ops.convert_to_numpy(cvae.generate(3, labels=[0, 0, 0], seed=5))
    b = keras.ops.convert_to_numpy(cvae.generate(3, labels=[1, 1, 1], seed=5))
    assert not np.allclose(a, b)
    with pytest.raises(KerasdlError, match="labels"):
        cvae.generate(2)
    pixels = np.random.default_rng(2).integers(0, 2, (5, 8, 8, 1)).astype("float32") * 255
    terms = negative_elbo(cvae, pixels, np.array([0, 1, 2, 1, 0]))
    assert terms["negative_elbo"] > 0 and np.isfinite(terms["negative_elbo"])


def test_kerasdl_train_vae_on_mnist_writes_samples_and_reloads(tmp_path):
    from kerasdl.callbacks import SampleScoreLogger
    from kerasdl.generative_metrics import GenerativeScorer
    from kerasdl.train import load_run, train

    inputs = keras.Input((28, 28, 1))  # an untrained feature classifier is enough here
    classifier = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    reference = np.random.default_rng(0).uniform(0, 255, (50, 28, 28, 1))
    logger = SampleScoreLogger(GenerativeScorer(classifier, reference), num_samples=16)
    record = train("vae_conv", "mnist", output_dir=tmp_path / "run", max_examples=256,
                   recipe=kerasdl.train.get_recipe("vae_conv").replace(epochs=2),
                   model_kwargs={"filters": (4, 8), "latent_dim": 4}, verbose=0,
                   epoch_metrics=[logger])
    assert record["binarized"] and record["test_negative_elbo"] > 0
    assert record["test_negative_elbo"] == pytest.approx(
        record["test_reconstruction"] + record["test_kl"])
    written = sorted(f for f in os.listdir(tmp_path / "run") if f.startswith("samples_"))
    assert written == ["samples_epoch_001.png", "samples_epoch_002.png"]
    model, saved = load_run(tmp_path / "run")
    from kerasdl.tasks import get_task

    images = get_task("generation").load_data(
        "mnist", input_shape=(28, 28, 1), batch_size=64, max_examples=256,
        recipe=kerasdl.train.get_recipe("vae_conv")).arrays("test")[0]
    assert set(np.unique(images)) <= {0.0, 255.0}
    again = negative_elbo(model, images)["negative_elbo"]
    assert again == pytest.approx(saved["test_negative_elbo"], rel=1e-5)
    from kerasdl.train import evaluate

    assert evaluate(tmp_path / "run", max_examples=256)["test_negative_elbo"] == pytest.approx(
        saved["test_negative_elbo"], rel=1e-5)  # kerasdl evaluate binarises as training did
    with open(tmp_path / "run" / "history.json") as f:
        history = json.load(f)
    assert len(history["loss"]) == 2
    # epoch_metrics' values reach the CSV log and history.json
    assert history["sample_frechet_distance"] == pytest.approx(
        [s["sample_frechet_distance"] for s in logger.scores])


def test_decoders_export_to_tflite_and_agree(tmp_path):
    from kerasdl.export import TFLiteRunner, convert_to_tflite

    keras.utils.set_random_seed(0)
    vae = kerasdl.create_model("vae_conv", input_shape=(8, 8, 1), filters=(2, 3),
                               latent_dim=3)
    cvae = kerasdl.create_model("cvae_conv", input_shape=(8, 8, 1), filters=(2, 3),
                                latent_dim=3, num_classes=4)
    z = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    labels = np.array([0, 1, 2, 3, 0], "int32")
    convert_to_tflite(vae.decoder, tmp_path / "decoder.tflite")
    np.testing.assert_allclose(TFLiteRunner(tmp_path / "decoder.tflite").predict(z),
                               keras.ops.convert_to_numpy(vae.decode(z)), atol=1e-5)
    convert_to_tflite(cvae.decoder, tmp_path / "cdecoder.tflite")
    runner = TFLiteRunner(tmp_path / "cdecoder.tflite",
                          input_names=[t.name for t in cvae.decoder.inputs])
    np.testing.assert_allclose(runner.predict([z, labels]),
                               keras.ops.convert_to_numpy(cvae.decode(z, labels)), atol=1e-5)
