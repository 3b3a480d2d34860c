"""GANs (DCGAN, conditional GAN, WGAN-GP): the gradient penalty against its definition,
training through ``fit`` (every weight moves, the n_critic schedule, a toy distribution
learnt), compile's optimizers and betas, save and reload mid-training, sampling, bad
arguments, TFLite export of the generator, and (slow) the JAX train step against the
TensorFlow one from the same weights and noise."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import kerasdl
import kerasdl.models.generative.gan  # noqa: F401  (registers dcgan, cgan, wgan_gp)
from kerasdl.callbacks import current_learning_rate
from kerasdl.errors import KerasdlError
from kerasdl.models.generative.gan import (GAN, WGANGP, AdversarialOptimizer,
                                           ImageLayerNormalization, build_discriminator,
                                           build_generator, gradient_penalty)
from kerasdl.train.recipes import get_recipe
from tests.jax_env import jax_subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"input_shape": (8, 8, 1), "filters": (2, 3), "latent_dim": 4}


def _tiny(name, **kwargs):
    return kerasdl.create_model(name, **{**TINY, **kwargs})


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 8, 8, 1)).astype("float32")


def _numpy(x):
    return ops.convert_to_numpy(x)


def _iterations(model):
    pair = model.optimizer
    return [int(_numpy(o.iterations)) for o in (pair.discriminator_optimizer,
                                                 pair.generator_optimizer)]


# ---------------------------------------------------------------- gradient penalty


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm():
    """``D(x) = w . x + b`` has gradient ``w`` everywhere: the penalty is
    ``(|w| - 1)^2`` whatever the images and interpolation weights."""
    images = keras.Input((4, 4, 1))
    critic = keras.Model(images, keras.layers.Dense(1)(keras.layers.Flatten()(images)))
    w = np.random.default_rng(0).normal(size=(16, 1)).astype("float32")
    critic.set_weights([w, np.array([0.7], "float32")])
    rng = np.random.default_rng(1)
    real, fake = (rng.uniform(-1, 1, (3, 4, 4, 1)).astype("float32") for _ in range(2))
    epsilon = rng.uniform(size=(3, 1, 1, 1)).astype("float32")
    got = float(_numpy(gradient_penalty(critic, real, fake, epsilon)))
    assert got == pytest.approx((np.linalg.norm(w) - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_interpolates_per_example():
    """``D(x) = sum(x^2)`` has gradient ``2 x``: the penalty is
    ``mean_i (2 |x_hat_i| - 1)^2`` at ``x_hat_i = eps_i real_i + (1 - eps_i) fake_i``."""
    rng = np.random.default_rng(2)
    real, fake = (rng.uniform(-1, 1, (4, 3, 3, 2)).astype("float32") for _ in range(2))
    epsilon = np.array([0.0, 0.25, 0.5, 1.0], "float32").reshape(4, 1, 1, 1)
    x_hat = epsilon * real + (1 - epsilon) * fake
    expected = np.mean((2 * np.linalg.norm(x_hat.reshape(4, -1), axis=1) - 1) ** 2)

    def critic(x):
        return ops.sum(ops.square(x), axis=(1, 2, 3))

    got = float(_numpy(gradient_penalty(critic, real, fake, epsilon)))
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_wgan_gp_critic_loss_by_hand():
    """Through the model, with fixed noise and interpolation weights and the critic
    ``D(p) = c sum(p^2)`` of raw pixels ``p = 127.5 (x + 1)``: the penalty is taken in
    tanh space ``x``, where the gradient is ``2 c 127.5^2 (x_hat + 1)``, and the loss
    is ``E[D(fake)] - E[D(real)] + 10 * penalty``."""
    c = 4e-6
    pixels = keras.Input((8, 8, 1), name="images")
    squares = keras.layers.Multiply()([pixels, pixels])
    critic = keras.Model(pixels, keras.layers.Dense(1, use_bias=False)(
        keras.layers.Flatten()(squares)))
    critic.set_weights([np.full((64, 1), c, "float32")])
    model = _fixed_noise(WGANGP(_tiny("wgan_gp").generator, critic, gp_weight=10.0))
    real = _images(5)
    loss, logs = model.discriminator_objective(ops.convert_to_tensor(real), None)

    fake = _numpy(model.generator(model.sample_noise(5, None), training=True))
    epsilon = np.linspace(0.2, 0.8, 5).reshape(5, 1, 1, 1)
    x_hat = epsilon * (real / 127.5 - 1) + (1 - epsilon) * fake
    norms = 2 * c * 127.5 ** 2 * np.linalg.norm((x_hat + 1).reshape(5, -1), axis=1)
    penalty = np.mean((norms - 1) ** 2)
    wasserstein = c * (np.mean(np.sum(real ** 2, axis=(1, 2, 3)))
                       - np.mean(np.sum((127.5 * (fake + 1)) ** 2, axis=(1, 2, 3))))
    assert float(_numpy(logs["gradient_penalty"])) == pytest.approx(penalty, rel=1e-4)
    assert float(_numpy(logs["wasserstein"])) == pytest.approx(wasserstein, rel=1e-4)
    assert float(_numpy(loss)) == pytest.approx(-wasserstein + 10 * penalty, rel=1e-4)


def test_image_layer_norm_has_exact_second_derivatives():
    """The penalty's gradient through :class:`ImageLayerNormalization` matches central
    differences in float64 (``tf.nn.moments``, behind Keras' own normalisation layers on
    TensorFlow, stops the mean's gradient and is about 1% off here)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("float64 needs jax_enable_x64; the JAX subprocess compares with TF")
    import tensorflow as tf

    norm = ImageLayerNormalization(dtype="float64")
    rng = np.random.default_rng(4)
    norm.build((None, 3, 3, 2))
    norm.gamma.assign(rng.uniform(0.5, 1.5, 2))
    # A weight before the normalisation: its second derivative crosses the statistics.
    scale = keras.Variable(rng.uniform(0.5, 1.5, 2), dtype="float64")
    mix = ops.convert_to_tensor(rng.normal(size=(1, 3, 3, 2)), "float64")
    real, fake = (ops.convert_to_tensor(rng.normal(size=(2, 3, 3, 2)), "float64")
                  for _ in range(2))
    epsilon = ops.convert_to_tensor(np.array([0.3, 0.8]).reshape(2, 1, 1, 1), "float64")

    def penalty():
        def critic(x):
            return ops.sum(ops.tanh(norm(x * scale)) * mix, axis=(1, 2, 3))
        return gradient_penalty(critic, real, fake, epsilon)

    with tf.GradientTape() as tape:
        value = penalty()
    grads = tape.gradient(value, [norm.gamma, scale])
    for variable, grad in zip((norm.gamma, scale), grads):
        base = _numpy(variable).copy()
        numeric = []
        for i in range(2):
            sides = []
            for step in (1e-6, -1e-6):
                shifted = base.copy()
                shifted[i] += step
                variable.assign(shifted)
                sides.append(float(_numpy(penalty())))
            numeric.append((sides[0] - sides[1]) / 2e-6)
        variable.assign(base)
        np.testing.assert_allclose(_numpy(grad), numeric, rtol=1e-6)


# ---------------------------------------------------------------- training


def test_one_fit_step_moves_every_weight_and_critic_steps_follow_n_critic():
    keras.utils.set_random_seed(0)
    model = _tiny("wgan_gp", n_critic=3)
    x = _images(2)
    before = [_numpy(v).copy() for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=2, epochs=1, verbose=0)
    after = [_numpy(v) for v in model.trainable_variables]
    still = [v.path for v, b, a in zip(model.trainable_variables, before, after)
             if np.array_equal(a, b)]
    assert not still, f"not updated by the first step: {still}"
    assert set(history.history) == {"loss", "g_loss", "gradient_penalty", "wasserstein"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert _iterations(model) == [1, 1]
    # Critic steps 1..6 more: the generator steps when the count is 3 and 6.
    model.fit(_images(12), batch_size=2, epochs=1, verbose=0)
    assert _iterations(model) == [7, 3]


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_generator_moves_toward_a_toy_distribution(name):
    """Every training image is uniform grey at 230 / 255; 200 steps take the mean
    intensity of the samples (about 0.5 untrained) most of the way there."""
    keras.utils.set_random_seed(0)
    model = kerasdl.create_model(name, input_shape=(8, 8, 1), filters=(4, 8), latent_dim=4)
    target = 230 / 255
    start = float(_numpy(model.generate(64, seed=1)).mean())
    moving = [_numpy(v).copy() for v in model.generator.non_trainable_weights]
    noise_state = _numpy(model.seed_generator.state).copy()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    grey = np.full((3200, 8, 8, 1), 230.0, "float32")
    model.fit(grey, batch_size=16, epochs=1, verbose=0)
    end = float(_numpy(model.generate(64, seed=1)).mean())
    assert abs(end - target) < abs(start - target) / 3, (start, end)
    # The generator's batch statistics and the training noise stream advanced too.
    assert all(not np.array_equal(_numpy(v), m)
               for v, m in zip(model.generator.non_trainable_weights, moving))
    assert not np.array_equal(_numpy(model.seed_generator.state), noise_state)


def test_compile_derives_both_optimizers_with_the_papers_betas():
    dcgan = _tiny("dcgan")
    recipe = get_recipe("dcgan")
    dcgan.compile(optimizer=recipe.make_optimizer(10))
    pair = dcgan.optimizer
    assert isinstance(pair, AdversarialOptimizer)
    d_opt, g_opt = pair.discriminator_optimizer, pair.generator_optimizer
    assert d_opt is not g_opt
    for opt in (d_opt, g_opt):
        assert isinstance(opt, keras.optimizers.Adam)
        assert (opt.beta_1, opt.beta_2) == (0.5, 0.999)
        assert float(_numpy(opt.learning_rate)) == pytest.approx(recipe.learning_rate)
    assert current_learning_rate(pair) == pytest.approx(2e-4)
    pair.learning_rate = 1e-4  # what ReduceLROnPlateau does: both networks follow
    assert float(_numpy(g_opt.learning_rate)) == pytest.approx(1e-4)

    wgan = _tiny("wgan_gp")
    wgan.compile(optimizer=get_recipe("wgan_gp").make_optimizer(10))
    betas = {(o.beta_1, o.beta_2) for o in (wgan.optimizer.discriminator_optimizer,
                                            wgan.optimizer.generator_optimizer)}
    assert betas == {(0.0, 0.9)}
    wgan.compile(optimizer=keras.optimizers.Adam(1e-3), adam_betas=None,
                 generator_optimizer=keras.optimizers.SGD(0.1))
    assert wgan.optimizer.discriminator_optimizer.beta_1 == 0.9
    assert isinstance(wgan.optimizer.generator_optimizer, keras.optimizers.SGD)


def test_save_and_safe_load_mid_training_keeps_everything(tmp_path):
    keras.utils.set_random_seed(0)
    model = _tiny("cgan", num_classes=3)
    labels = np.array([0, 1, 2, 1], "int32")
    # Eager steps: a tiny model trains faster than a traced step compiles.
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    model.fit([_images(4), labels], batch_size=2, epochs=1, verbose=0)
    path = tmp_path / "cgan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is GAN and loaded.conditional
    x = [_images(4, seed=9), labels]
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(_numpy(loaded.generate(4, labels, seed=3)),
                               _numpy(model.generate(4, labels, seed=3)), rtol=0, atol=1e-6)
    assert _iterations(loaded) == [2, 2]
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(_numpy(a), _numpy(b), err_msg=a.path)
    loaded.fit(x, batch_size=2, epochs=1, verbose=0)  # training resumes where it stopped
    assert _iterations(loaded) == [4, 4]


# ---------------------------------------------------------------- sampling and export


@pytest.mark.parametrize("name", ["dcgan", "cgan", "wgan_gp"])
def test_generate_is_deterministic_per_seed_and_in_the_unit_range(name):
    model = _tiny(name, **({"num_classes": 3} if name == "cgan" else {}))
    labels = {"labels": np.array([0, 1, 2, 0, 1])} if name == "cgan" else {}
    first = _numpy(model.generate(5, seed=7, **labels))
    assert first.shape == (5, 8, 8, 1)
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, _numpy(model.generate(5, seed=7, **labels)))
    assert not np.array_equal(first, _numpy(model.generate(5, seed=8, **labels)))
    if name == "cgan":  # the label reaches the generator
        other = _numpy(model.generate(5, labels=np.array([2, 2, 2, 2, 2]), seed=7))
        assert not np.array_equal(first, other)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFLite needs TF")
def test_generator_exports_to_tflite(tmp_path):
    from kerasdl.export import TFLiteRunner, convert_to_tflite

    model = _tiny("dcgan")
    for v in model.generator.non_trainable_weights:  # non-trivial batch-norm statistics
        v.assign(np.random.default_rng(5).uniform(0.5, 1.5, v.shape).astype("float32"))
    z = np.random.default_rng(6).uniform(-1, 1, (3, 4)).astype("float32")
    path = tmp_path / "generator.tflite"
    convert_to_tflite(model.generator, path)
    got = np.asarray(TFLiteRunner(path).predict(z))
    np.testing.assert_allclose(got, _numpy(model.generator(z, training=False)), rtol=0,
                               atol=1e-4)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("build, argument", [
    (lambda: _tiny("dcgan", input_shape=(10, 10, 1)), "input_shape"),
    (lambda: _tiny("dcgan", filters=()), "filters"),
    (lambda: _tiny("dcgan", filters=(2, 0)), "filters"),
    (lambda: _tiny("dcgan", latent_dim=0), "latent_dim"),
    (lambda: _tiny("dcgan", kernel_size=0), "kernel_size"),
    (lambda: _tiny("cgan", num_classes=0), "num_classes"),
    (lambda: _tiny("wgan_gp", n_critic=0), "n_critic"),
    (lambda: _tiny("wgan_gp", gp_weight=-1.0), "gp_weight"),
    (lambda: _tiny("wgan_gp", critic_norm="batch"), "critic_norm"),
    (lambda: GAN(build_generator((8, 8, 1), 4, (2,)), build_discriminator((8, 8, 1), (2,)),
                 prior="cauchy"), "prior"),
    (lambda: WGANGP(build_generator((8, 8, 1), 4, (2, 3)),
                    build_discriminator((8, 8, 1), (2, 3), norm="batch")), "discriminator"),
    (lambda: AdversarialOptimizer(*[keras.optimizers.Adam()] * 2), "generator_optimizer"),
])
def test_bad_arguments_raise(build, argument):
    with pytest.raises(KerasdlError) as info:
        build()
    assert info.value.argument == argument


def test_bad_compile_and_generate_arguments_raise():
    model = _tiny("cgan", num_classes=3)
    for kwargs, argument in (({"loss": "mse"}, "loss"),
                             ({"adam_betas": (0.5,)}, "adam_betas"),
                             ({"adam_betas": (0.5, 1.5)}, "adam_betas")):
        with pytest.raises(KerasdlError) as info:
            model.compile(optimizer="adam", **kwargs)
        assert info.value.argument == argument
    for call in (lambda: model.generate(0, labels=[]), lambda: model.generate(2),
                 lambda: model.generate(2, labels=[0, 1, 2]),
                 lambda: _tiny("dcgan").generate(2, labels=[0, 1])):
        with pytest.raises(KerasdlError):
            call()


def test_training_on_another_backend_is_refused(monkeypatch):
    model = _tiny("dcgan")
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(KerasdlError, match="tensorflow and jax"):
        model.compile(optimizer="adam")


# ---------------------------------------------------------------- JAX


def _fixed_noise(model):
    """Replace the model's random draws by fixed values, so that two backends (whose
    random streams differ) can be compared step for step."""
    def noise(n, seed):
        base = ops.reshape(ops.arange(n * model.latent_dim, dtype="float32"),
                           (n, model.latent_dim))
        return ops.sin(base * 0.37)

    model.sample_noise = noise
    if isinstance(model, WGANGP):
        model.sample_interpolation_weights = lambda n: ops.reshape(
            ops.linspace(0.2, 0.8, n), (n, 1, 1, 1))
    return model


def _fixed_run(name, weights_path, load):
    """Four fit steps of a tiny model from saved weights with fixed noise; returns every
    weight, optimizer variable and logged value."""
    kwargs = {"cgan": {"num_classes": 3}, "wgan_gp": {"n_critic": 3}}.get(name, {})
    model = _fixed_noise(_tiny(name, **kwargs))
    if load:
        model.load_weights(weights_path)
    else:
        model.save_weights(weights_path)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = _images(8)
    data = [x, np.arange(8, dtype="int32") % 3] if name == "cgan" else x
    history = model.fit(data, batch_size=2, epochs=1, shuffle=False, verbose=0)
    out = {v.path: _numpy(v) for v in model.weights}
    out.update({f"optimizer {i}": _numpy(v)
                for i, v in enumerate(model.optimizer.variables)})
    out.update({f"log {k}": np.asarray(v) for k, v in history.history.items()})
    return out


def jax_checks(folder):
    """Run under KERAS_BACKEND=jax: the stateless train step reproduces TensorFlow's
    (saved by the parent test) for all three models, and the gradient penalty and the
    n_critic schedule hold."""
    assert keras.backend.backend() == "jax"
    for name in ("dcgan", "cgan", "wgan_gp"):
        got = _fixed_run(name, os.path.join(folder, f"{name}.weights.h5"), load=True)
        want = dict(np.load(os.path.join(folder, f"{name}.npz")))
        assert set(got) == set(want), set(got) ^ set(want)
        for key, value in want.items():
            scale = max(1.0, float(np.abs(value).max()))
            np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-4 * scale,
                                       err_msg=f"{name}: {key}")
    test_gradient_penalty_of_a_linear_critic_is_its_weight_norm()
    test_wgan_gp_critic_loss_by_hand()
    test_one_fit_step_moves_every_weight_and_critic_steps_follow_n_critic()


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares with TF")
def test_jax_train_step_matches_tensorflow(tmp_path):
    for name in ("dcgan", "cgan", "wgan_gp"):
        np.savez(tmp_path / f"{name}.npz",
                 **_fixed_run(name, str(tmp_path / f"{name}.weights.h5"), load=False))
    code = ("from tests.test_gan import jax_checks\n"
            f"jax_checks({str(tmp_path)!r}); print('JAX-OK')")
    env = jax_subprocess_env()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "JAX-OK" in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------- scoring during training


def test_sample_score_logger_writes_each_epochs_scores_into_the_logs(tmp_path):
    from kerasdl.callbacks import SampleScoreLogger
    from kerasdl.generative_metrics import GenerativeScorer

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dense(5, activation="relu")(keras.layers.Flatten()(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(3)(hidden))  # untrained is enough
    scorer = GenerativeScorer(classifier, _images(40, seed=3))
    model = _tiny("cgan", num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    logger = SampleScoreLogger(scorer, num_samples=12, seed=5)
    log = tmp_path / "log.csv"
    labels = np.array([0, 1, 2, 1], "int32")
    model.fit([_images(4), labels], batch_size=2, epochs=2, verbose=0,
              callbacks=[logger, keras.callbacks.CSVLogger(str(log))])
    assert [s["epoch"] for s in logger.scores] == [0, 1]
    # The last epoch's values are the score of the trained model's samples (the classes
    # in turn, the same seed), and the CSV log placed after the logger has them.
    expected = scorer.score(_numpy(model.generate(12, seed=5, labels=np.arange(12) % 3)))
    assert logger.scores[-1]["sample_frechet_distance"] == pytest.approx(
        expected["frechet_distance"], rel=1e-6)
    assert logger.scores[-1]["sample_confidence"] == pytest.approx(expected["mean_confidence"])
    assert logger.scores[0]["sample_frechet_distance"] != logger.scores[1]["sample_frechet_distance"]
    probabilities = scorer.probabilities(_numpy(model.generate(12, seed=5, labels=np.arange(12) % 3)))
    assert probabilities.shape == (12, 3)
    assert probabilities.max(-1).mean() == pytest.approx(expected["mean_confidence"])
    rows = log.read_text().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(",")))
    assert float(last["sample_class_entropy"]) == pytest.approx(
        expected["class_histogram_entropy"], rel=1e-6)

    with pytest.raises(KerasdlError, match="GenerativeScorer") as e:
        SampleScoreLogger(classifier)
    assert e.value.argument == "scorer"
    with pytest.raises(KerasdlError, match="at least 2") as e:
        SampleScoreLogger(scorer, num_samples=1)
    assert e.value.argument == "num_samples"
