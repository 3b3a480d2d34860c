"""Training recipes and the warm-up + cosine schedule."""

import json
import math
import warnings

import keras
import numpy as np
import pytest

from kerasdl.callbacks import WarmupCosine
from kerasdl.errors import KerasdlError
from kerasdl.train import DEFAULT_RECIPE, Recipe, get_recipe, recipes, register_recipe
from tests.markers import needs_tfds


def test_lenet5_recipe_and_default():
    recipe = get_recipe("lenet5")
    # Issue 15: the paper's 20 passes over all 60,000 digits, distorted.
    assert (recipe.augmentation, recipe.epochs, recipe.validation_fraction) == (
        "digits_mild", 20, 0.0)
    assert "paper scaling" in recipe.notes
    assert get_recipe("lenet5_modern").augmentation == "shift"
    assert get_recipe("LeNet5") == recipe
    assert get_recipe("test_token_classifier") is DEFAULT_RECIPE
    with pytest.raises(ValueError, match="lenet5"):
        get_recipe("lenet")


def test_lenet5_distorts_like_handwriting_on_mnist_only(tmp_path):
    """The digit presets are made for handwriting: LeNet-5's MNIST recipe has them, every
    other dataset gets the same schedule with +-2 px shifts."""
    on_mnist = get_recipe("lenet5")
    assert get_recipe("lenet5", "mnist") is on_mnist
    assert get_recipe("lenet5", "MNIST:3.0.1") is on_mnist
    elsewhere = get_recipe("lenet5", "fashion_mnist")
    assert elsewhere.augmentation == "shift" and "shifts" in elsewhere.notes
    assert elsewhere.replace(augmentation="digits_mild", notes="") == on_mnist.replace(notes="")
    # A folder of images is not MNIST, even one named so.
    folder = tmp_path / "mnist"
    folder.mkdir()
    assert get_recipe("lenet5", str(folder)) is elsewhere
    assert recipes.recipes_by_dataset("lenet5") == {None: elsewhere, "mnist": on_mnist}
    assert recipes.recipes_by_dataset("lenet5_modern") == {
        None: get_recipe("lenet5_modern", "fashion_mnist")}


@needs_tfds
def test_train_uses_the_recipe_for_its_dataset(tmp_path):
    from kerasdl.train import train

    record = train("lenet5", "fashion_mnist", output_dir=str(tmp_path / "run"), epochs=1,
                   max_examples=64, verbose=0)
    assert record["recipe"]["augmentation"] == "shift"


def test_recipe_for_an_unknown_model_is_an_error():
    """A typo must not silently fall back to the default recipe."""
    with pytest.raises(KerasdlError, match="Unknown model name 'lenet_5'"):
        register_recipe("lenet_5", Recipe(epochs=3))


def test_registered_recipe_replaces_the_models_own(monkeypatch):
    monkeypatch.setattr(recipes, "_OVERRIDES", {})
    mine = Recipe(epochs=2, notes="mine")
    register_recipe("LENET5", mine)
    assert get_recipe("lenet5") is mine
    assert get_recipe("lenet5", "fashion_mnist") is mine  # on every dataset
    assert get_recipe("lenet5_modern") is not mine


def test_optimizer_fields_mean_what_they_say():
    adamw = Recipe(optimizer="adamw", weight_decay=0.0, schedule="constant").make_optimizer(10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.0
    adamw = Recipe(optimizer="adamw", weight_decay=5e-4).make_optimizer(10)
    assert adamw.weight_decay == pytest.approx(5e-4)
    sgd = Recipe(optimizer="sgd", momentum=0.8, nesterov=False).make_optimizer(10)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == pytest.approx(0.8) and sgd.nesterov is False
    sgd = Recipe(optimizer="sgd", momentum=0.0).make_optimizer(10)
    assert sgd.momentum == 0.0


def test_replace_ignores_none_and_validates():
    recipe = get_recipe("lenet5")
    assert recipe.replace(epochs=None, batch_size=64).batch_size == 64
    assert recipe.replace(epochs=None).epochs == recipe.epochs
    with pytest.raises(ValueError, match="epochs"):
        recipe.replace(epochs=0)


@pytest.mark.parametrize(
    "field, value",
    [("optimizer", "adagrad"), ("schedule", "plateau"), ("batch_size", 0),
     ("learning_rate", 0.0), ("augmentation", "mixup"), ("weight_decay", -1e-4),
     ("momentum", 1.5), ("ema_momentum", 1.0), ("validation_fraction", 1.0),
     ("gradient_clipping", "l1"), ("padding", "dynamic")],
)
def test_bad_recipe_fields_name_the_field(field, value):
    with pytest.raises(KerasdlError, match=field):
        Recipe(**{field: value})


def test_step_and_onecycle_schedules_and_clipping_from_the_recipe():
    def lr(optimizer, step):
        optimizer.iterations.assign(step)
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    step = Recipe(optimizer="sgd", learning_rate=0.1, schedule="step", epochs=8)
    opt = step.make_optimizer(steps_per_epoch=100)  # 800 steps: /10 at 400 and at 600
    assert [lr(opt, s) for s in (0, 399, 400, 599, 600, 799)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    one = Recipe(learning_rate=0.1, schedule="onecycle", epochs=10).make_optimizer(10)
    values = [lr(one, s) for s in range(100)]
    assert max(values) == pytest.approx(0.1) and 20 < int(np.argmax(values)) < 40
    assert values[0] < 0.01 and values[-1] < 1e-4

    assert Recipe(gradient_clipping="norm", clip_threshold=1.0).make_optimizer(10).clipnorm == 1.0
    from kerasdl.callbacks import AdaptiveGradientClipping

    agc = Recipe(gradient_clipping="adaptive", clip_threshold=0.01).make_optimizer(10)
    assert isinstance(agc, AdaptiveGradientClipping)
    with pytest.raises(KerasdlError, match="clip_threshold"):
        Recipe(gradient_clipping="value")


def test_warmup_cosine_shape():
    schedule = WarmupCosine(peak=2e-3, total_steps=1000, warmup_steps=100, final_scale=0.05)
    lr = np.array([float(schedule(step)) for step in range(0, 1001, 10)])
    np.testing.assert_allclose(lr[0], 2e-4, rtol=1e-5)  # initial_scale 0.1 of the peak
    np.testing.assert_allclose(float(schedule(100)), 2e-3, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(550)), 1e-4 + (2e-3 - 1e-4) * 0.5, rtol=1e-4)
    np.testing.assert_allclose(lr[-1], 1e-4, rtol=1e-5)
    assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:]) < 0)
    restored = WarmupCosine.from_config(schedule.get_config())
    assert math.isclose(float(restored(300)), float(schedule(300)), rel_tol=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(1e-3, total_steps=10, warmup_steps=10)


def test_schedule_deserializes_by_its_registered_name():
    config = keras.saving.serialize_keras_object(WarmupCosine(1e-3, 50, 5))
    assert config["registered_name"] == "kerasdl>WarmupCosine"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, WarmupCosine) and restored.total_steps == 50


def test_cifar_shifts_are_whole_pixels_and_flips():
    """The "cifar" preset equals zero padding plus a random crop: every output pixel is
    an input pixel or black padding, never a blend of two."""
    from kerasdl.augment import make_augmentation

    augment = make_augmentation("cifar", (32, 32), seed=3)
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (16, 32, 32, 3)).astype("float32")
    out, _ = augment(images, np.zeros(16))
    out = keras.ops.convert_to_numpy(out)
    assert not np.allclose(out, images)
    allowed = set(np.unique(images)) | {0.0}
    assert set(np.unique(out)) <= allowed


def test_a_run_without_validation_logs_the_test_curve(tmp_path):
    from kerasdl.train import train

    recipe = get_recipe("lenet5").replace(epochs=2, validation_fraction=0.0)
    record = train("lenet5", "mnist", output_dir=str(tmp_path / "run"), recipe=recipe,
                   max_examples=128, verbose=0)
    assert record["test_curve"] is True
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["test_accuracy"]) == 2
    assert not any(key.startswith("val_") for key in history)
    # The last epoch's logged test accuracy is the final model's.
    assert history["test_accuracy"][-1] == pytest.approx(record["test_accuracy"], abs=1e-6)
    assert (tmp_path / "run" / "curves.png").is_file()
    # Every run logs its learning rate at each epoch's last step (one step per epoch
    # here: the warm-up's start at 10% of the peak, then the cosine's start at the peak)
    # and its training throughput.
    peak = recipe.learning_rate
    assert history["learning_rate"] == pytest.approx([0.1 * peak, peak], rel=1e-5)
    assert all(v > 0 for v in history["examples_per_second"])


def test_paper_recipes_write_down_their_scaling():
    # VGG (Sec. 3.1): lr 0.01 at batch 256, L2 5e-4 with momentum 0.9.
    vgg = get_recipe("vgg16")
    assert vgg.learning_rate == pytest.approx(0.005) and vgg.batch_size == 128
    assert vgg.weight_decay == pytest.approx(5e-3) and vgg.epochs == 74
    assert "lr 0.01 at batch 256" in vgg.notes and "decoupled decay 0.005" in vgg.notes
    assert get_recipe("densenet121").nesterov is True
    assert get_recipe("googlenet").aux_loss_weight == 0.3


def test_every_cnn_has_a_recipe():
    import kerasdl

    missing = [n for n in kerasdl.list_models(family="cnn")
               if kerasdl.model_info(n).recipe is None]
    assert not missing, f"no recipe registered for {missing}"


def test_rmsprop_uses_the_inception_settings():
    optimizer = get_recipe("inception_resnet_v2").make_optimizer(10)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert optimizer.rho == 0.9 and optimizer.epsilon == 1.0


def test_plot_curves_draws_a_png_or_nothing_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    from kerasdl.train.runs import plot_curves

    history = {"loss": [2.0, 1.0], "accuracy": [0.3, 0.6], "test_accuracy": [0.25, 0.5]}
    path = tmp_path / "curves.png"
    assert plot_curves(history, str(path), title="t") is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no partial file left

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert plot_curves(history, str(tmp_path / "other.png")) is False
    assert not (tmp_path / "other.png").exists()


def test_adam_betas_come_from_the_recipe():
    from kerasdl.train import Recipe

    adam = Recipe(optimizer="adam", beta_1=0.5, beta_2=0.99).make_optimizer(10)
    assert (adam.beta_1, adam.beta_2) == (0.5, 0.99)
    adamw = Recipe(optimizer="adamw", weight_decay=0.1, beta_1=0.8).make_optimizer(10)
    assert (adamw.beta_1, adamw.beta_2) == (0.8, 0.999)
    with pytest.raises(KerasdlError, match="beta_2"):
        Recipe(beta_2=1.0)


def test_decay_matrices_only_spares_biases_and_norm_scales():
    import keras

    from kerasdl.train import Recipe

    x = keras.Input((3,))
    y = keras.layers.LayerNormalization()(keras.layers.Dense(4)(x))
    model = keras.Model(x, y)
    recipe = Recipe(optimizer="adamw", weight_decay=0.1, learning_rate=0.5,
                    decay_matrices_only=True)
    optimizer = recipe.make_optimizer(10, model=model)
    optimizer.build(model.trainable_variables)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    zeros = [keras.ops.zeros_like(v) for v in model.trainable_variables]
    optimizer.apply(zeros, model.trainable_variables)  # a step moved by the decay alone
    moved = {v.path: not np.allclose(keras.ops.convert_to_numpy(v), b)
             for v, b in zip(model.trainable_variables, before)}
    kernel = [p for p in moved if p.endswith("kernel")]
    assert kernel and all(moved[p] for p in kernel)
    assert not any(moved[p] for p in moved if p not in kernel)  # bias, gamma, beta
    from kerasdl.registry import model_info

    assert model_info("bert_mini").recipe.decay_matrices_only


def test_short_run_with_a_long_weight_average_warns():
    # Keras' average has no warm-up: 0.9999 over 200 steps ends on ~98% initial weights.
    long_average = Recipe(epochs=2, ema_momentum=0.9999)
    with pytest.warns(UserWarning, match=r"ema_momentum=0.9999 .* 98% .* <= 0.985"):
        long_average.make_optimizer(steps_per_epoch=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Recipe(epochs=2, ema_momentum=0.9).make_optimizer(steps_per_epoch=100)
        Recipe(epochs=2).make_optimizer(steps_per_epoch=100)
