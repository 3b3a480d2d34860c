"""DDPM and DDIM: the schedules and the forward process against their formulas, the
sampling steps against the posterior on a dataset of one point (where a perfect noise
predictor is known in closed form), the U-Net's parameter formula, and the model's
save, training step, sampling and TFLite export."""

import math

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.layers.positions import sinusoidal_encoding
from kerasdl.models.generative import diffusion
from kerasdl.models.generative.diffusion import (DDPM, NoiseSchedule, build_unet,
                                                 cosine_beta_schedule, ddim_sample, ddim_step,
                                                 ddim_timesteps, ddpm_sample, ddpm_step,
                                                 denoising_loss, unet_count)

TINY = dict(input_shape=(8, 8, 1), channels=4, channel_mults=(1, 2), groups=2, num_heads=2,
            timesteps=10, sampling_steps=3)


def tiny(**changes):
    keras.utils.set_random_seed(0)
    return diffusion.ddpm_unet(**{**TINY, **changes})


def images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 8, 8, 1)).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def shared():
    """One tiny model for the tests that do not change it (building costs seconds)."""
    return tiny()


# ---------------------------------------------------------------------------- schedules


def test_linear_schedule_and_running_products():
    s = NoiseSchedule("linear", 1000)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    assert np.allclose(np.diff(s.betas), (0.02 - 1e-4) / 999)
    for t in (0, 1, 499, 999):
        product = 1.0
        for beta in s.betas[:t + 1]:
            product *= 1.0 - beta
        assert s.alpha_bar[t] == pytest.approx(product, rel=1e-12)
        assert s.alpha_bar_prev[t] == pytest.approx(product / (1.0 - s.betas[t]), rel=1e-12)
    assert s.alpha_bar_prev[0] == 1.0
    # The chain ends close to pure noise: alpha_bar_T ~ 4e-5 for this schedule.
    assert 1e-5 < s.alpha_bar[-1] < 1e-4


def test_cosine_schedule_follows_f_of_t_and_clips_the_last_beta():
    T, s_ = 1000, 0.008

    def f(t):
        return math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2

    schedule = NoiseSchedule("cosine", T)
    # Index t is the paper's step t + 1; only the last beta (which would be 1) is clipped.
    for t in (0, 1, 100, 500, 997):
        assert schedule.alpha_bar[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert schedule.betas[-1] == 0.999 and schedule.betas[:-1].max() < 0.999
    assert schedule.betas[0] == pytest.approx(1 - f(1) / f(0), rel=1e-12)
    assert schedule.alpha_bar[0] > 0.9999 and schedule.alpha_bar[-1] < 1e-8
    assert np.all(np.diff(schedule.alpha_bar) < 0)
    assert np.array_equal(cosine_beta_schedule(T), schedule.betas)


def test_q_sample_has_the_forward_marginal():
    schedule = NoiseSchedule("linear", 1000)
    x0 = np.array([-1.0, 0.25, 0.8], "float32")
    draws = 40_000
    for t in (10, 300, 900):
        noise = np.random.default_rng(t).standard_normal((draws, 3)).astype("float32")
        x_t = numpy(schedule.q_sample(np.tile(x0, (draws, 1)), np.full(draws, t), noise))
        ab = schedule.alpha_bar[t]
        np.testing.assert_allclose(x_t.mean(0), math.sqrt(ab) * x0, atol=0.02)
        np.testing.assert_allclose(x_t.var(0), np.full(3, 1 - ab), rtol=0.05, atol=2e-4)


# ---------------------------------------------------------------------------- sampling


X0 = np.array([[0.3, -0.7], [0.9, -0.2]])  # the dataset's one point, in model units


def perfect_predictor(schedule, x0=X0):
    """The exact noise ``(x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)`` when the data
    are the single point ``x0``."""
    def predict(x_t, t):
        ab = schedule.alpha_bar[t]
        return (np.asarray(x_t, np.float64) - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    return predict


def test_ancestral_step_is_the_posterior_mean_plus_beta_noise():
    schedule = NoiseSchedule("linear", 1000)
    predict = perfect_predictor(schedule)
    x_t = np.array([[1.2, 0.1], [-0.4, 2.0]])
    for t in (1, 50, 999):
        eps = predict(x_t, t)
        mean = ddpm_step(schedule, x_t, t, eps, np.zeros_like(x_t))
        np.testing.assert_allclose(mean, schedule.posterior_mean(X0, x_t, t), rtol=1e-10)
        shifted = ddpm_step(schedule, x_t, t, eps, np.ones_like(x_t))
        np.testing.assert_allclose(shifted - mean, math.sqrt(schedule.betas[t]), rtol=1e-10)
    # DDIM with eta = 1 over consecutive steps has the posterior's variance instead.
    t = 50
    eps = predict(x_t, t)
    quiet = ddim_step(schedule, x_t, t, t - 1, eps, eta=1.0, noise=np.zeros_like(x_t))
    loud = ddim_step(schedule, x_t, t, t - 1, eps, eta=1.0, noise=np.ones_like(x_t))
    np.testing.assert_allclose(loud - quiet, math.sqrt(schedule.posterior_variance(t)),
                               rtol=1e-10)
    np.testing.assert_allclose(quiet, schedule.posterior_mean(X0, x_t, t), rtol=1e-10)


def test_samplers_recover_a_single_point_dataset():
    for name in ("linear", "cosine"):
        schedule = NoiseSchedule(name, 1000)
        predict = perfect_predictor(schedule)
        # eta = 0: every step's x0 estimate is exactly x0, and so is the last one.
        np.testing.assert_allclose(ddim_sample(predict, schedule, X0.shape, steps=20),
                                   X0, atol=1e-6)
        np.testing.assert_allclose(
            ddim_sample(predict, schedule, X0.shape, steps=7, eta=1.0, seed=3), X0, atol=1e-6)
        # Ancestral: noisy all the way, but the last step (no noise added) is the exact
        # posterior mean given x0, which at t = 0 is x0 itself.
        np.testing.assert_allclose(ddpm_sample(predict, schedule, X0.shape, seed=1), X0,
                                   atol=1e-5)
    # A wrong predictor does not land there: the test can fail.
    schedule = NoiseSchedule("linear", 1000)
    off = ddim_sample(perfect_predictor(schedule, X0 + 0.5), schedule, X0.shape, steps=20)
    assert np.abs(off - X0).max() > 0.4


def test_ddim_timesteps_subsequence():
    tau = ddim_timesteps(1000, 50)
    assert len(tau) == 50 and tau[0] == 0 and tau[-1] == 999
    assert np.all(np.diff(tau) > 0)
    assert np.array_equal(ddim_timesteps(10, 10), np.arange(10))
    assert np.array_equal(ddim_timesteps(10, 1), [9])
    with pytest.raises(KerasdlError, match="steps"):
        ddim_timesteps(10, 11)
    with pytest.raises(KerasdlError, match="steps"):
        ddim_timesteps(10, 0)


# ---------------------------------------------------------------------------- network


def test_timestep_embedding_is_the_sinusoid_table():
    layer = diffusion.TimestepEmbedding(10, 6)
    table = numpy(sinusoidal_encoding(10, 6))
    np.testing.assert_allclose(numpy(layer(np.array([0, 3, 9], "int32"))), table[[0, 3, 9]])


@pytest.mark.parametrize("shape, kwargs", [
    ((28, 28, 1), dict(channels=8, channel_mults=(1, 2, 2), num_res_blocks=1)),
    ((32, 32, 3), dict(channels=8, channel_mults=(1, 2, 2, 2), num_res_blocks=2)),
    ((8, 8, 1), dict(channels=4, channel_mults=(1, 2), num_res_blocks=1, groups=2,
                     num_heads=2)),
])
def test_unet_shapes_and_parameter_formula(shape, kwargs):
    unet = build_unet(shape, timesteps=10, **kwargs)
    assert unet.count_params() == unet_count(shape[-1], kwargs["channels"],
                                             kwargs["channel_mults"], kwargs["num_res_blocks"])
    assert tuple(unet.output.shape[1:]) == shape
    attention = unet.get_layer("middle_attention_mha")
    lowest = shape[0] // 2 ** (len(kwargs["channel_mults"]) - 1)
    assert tuple(attention.input[0].shape[1:]) == (lowest * lowest, kwargs["channels"]
                                                   * kwargs["channel_mults"][-1])


# ---------------------------------------------------------------------------- model


def test_call_is_the_noise_prediction_at_the_fixed_step(shared):
    model = shared
    x = images()
    assert model.call_timestep == 5
    expected = model.unet([x / 127.5 - 1.0, np.full(4, 5, "int32")])
    np.testing.assert_allclose(numpy(model(x)), numpy(expected), atol=1e-5)
    np.testing.assert_array_equal(numpy(model(x)), numpy(model(x)))
    other = numpy(model.unet([x / 127.5 - 1.0, np.full(4, 2, "int32")]))
    assert not np.allclose(numpy(model(x)), other)  # the step reaches the output


def test_loss_of_a_network_that_predicts_zero_is_the_noise_power():
    model = tiny()
    out = model.unet.get_layer("noise")
    out.kernel.assign(np.zeros(out.kernel.shape, "float32"))
    out.bias.assign(np.zeros(out.bias.shape, "float32"))
    x = images(200)
    loss = float(numpy(model.compute_loss(x=x)))
    assert loss == pytest.approx(1.0, abs=0.04)
    assert float(numpy(model.metrics[0].result())) == pytest.approx(loss, rel=1e-6)
    # One batch size, so the network is compiled once.
    assert denoising_loss(model, x, batch_size=100) == pytest.approx(1.0, abs=0.04)
    assert denoising_loss(model, x, batch_size=100, seed=1) == denoising_loss(
        model, x, batch_size=100, seed=1)


def test_one_fit_step_moves_every_weight():
    """Eagerly on TensorFlow, to keep this file fast (tracing the step costs ~10 s of
    CPU there); the model contract runs the compiled step on TensorFlow and JAX."""
    model = tiny()
    before = [numpy(v).copy() for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  run_eagerly=keras.config.backend() == "tensorflow")
    history = model.fit(images(), epochs=1, batch_size=4, verbose=0)
    assert list(history.history) == ["loss"] and np.isfinite(history.history["loss"]).all()
    unchanged = [v.path for v, b in zip(model.trainable_variables, before)
                 if np.array_equal(numpy(v), b)]
    assert not unchanged


def test_save_and_safe_load_round_trip(tmp_path):
    model = tiny(schedule="cosine", sampler="ddpm")
    x = images()
    path = tmp_path / "ddpm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, DDPM) and loaded.schedule.name == "cosine"
    assert (loaded.timesteps, loaded.call_timestep, loaded.sampler, loaded.sampling_steps) \
        == (10, 5, "ddpm", 3)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), atol=1e-6)


def test_generate_is_seeded_in_range_and_shaped(shared):
    model = shared
    a = model.generate(3, seed=7)
    assert a.shape == (3, 8, 8, 1) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, model.generate(3, seed=7))
    assert not np.allclose(a, model.generate(3, seed=8))
    noisy = model.generate(3, seed=7, eta=1.0)
    assert not np.allclose(a, noisy)
    ddpm = model.generate(3, seed=7, method="ddpm")
    assert ddpm.shape == (3, 8, 8, 1) and 0.0 <= ddpm.min() and ddpm.max() <= 1.0
    np.testing.assert_array_equal(ddpm, model.generate(3, seed=7, method="ddpm"))
    # Full-length DDIM, eta = 0, differs from ancestral sampling from the same x_T.
    assert not np.allclose(ddpm, model.generate(3, seed=7, method="ddim", steps=10))


@pytest.mark.parametrize("kwargs, argument", [
    (dict(n=0), "n"),
    (dict(n=2, labels=[0, 1]), "labels"),
    (dict(n=2, method="euler"), "method"),
    (dict(n=2, method="ddpm", steps=5), "steps"),
    (dict(n=2, method="ddpm", eta=0.5), "eta"),
    (dict(n=2, steps=11), "steps"),
    (dict(n=2, eta=-1.0), "eta"),
    (dict(n=2, seed=-1), "seed"),
])
def test_generate_rejects_bad_arguments(shared, kwargs, argument):
    with pytest.raises(KerasdlError, match=argument) as error:
        shared.generate(**kwargs)
    assert error.value.argument == argument


@pytest.mark.parametrize("changes, argument", [
    (dict(input_shape=(30, 30, 1), channel_mults=(1, 2, 2)), "input_shape"),
    (dict(groups=3), "groups"),
    (dict(num_heads=3), "num_heads"),
    (dict(channel_mults=()), "channel_mults"),
    (dict(schedule="quadratic"), "schedule"),
    (dict(timesteps=1, sampling_steps=1), "timesteps"),
    (dict(sampler="euler"), "sampler"),
    (dict(sampling_steps=11), "sampling_steps"),
])
def test_builder_rejects_bad_arguments(changes, argument):
    with pytest.raises(KerasdlError, match=argument) as error:
        tiny(**changes)
    assert error.value.argument == argument


def test_model_checks_its_unet():
    unet = build_unet((8, 8, 1), 4, (1, 2), 1, 2, 2, timesteps=10)
    with pytest.raises(KerasdlError, match="timesteps") as error:
        DDPM(unet, timesteps=20)
    assert error.value.argument == "timesteps"
    with pytest.raises(KerasdlError, match="call_timestep"):
        DDPM(unet, timesteps=10, call_timestep=10, sampling_steps=3)


@pytest.mark.skipif(keras.config.backend() != "tensorflow",
                    reason="TFLite export needs the TensorFlow backend")
def test_unet_exports_to_tflite_with_builtin_ops(tmp_path):
    from kerasdl.export import TFLiteRunner, convert_to_tflite

    unet = tiny().unet
    x = np.random.default_rng(0).standard_normal((3, 8, 8, 1)).astype("float32")
    t = np.array([0, 4, 9], "int32")
    expected = numpy(unet([x, t]))
    path = tmp_path / "unet.tflite"
    convert_to_tflite(unet, path)  # builtin ops only: raises if one is missing
    got = np.asarray(TFLiteRunner(path, input_names=[v.name for v in unet.inputs])
                     .predict([x, t]))
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)
