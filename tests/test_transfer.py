"""Transfer-learning helpers: frozen stages, a new head, layer-wise learning rates."""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.train.transfer import freeze_up_to, replace_head, with_layerwise_lr


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(5, name="early")(inputs)
    x = keras.layers.Dense(5, name="late")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x))


def _one_step(optimizer):
    model = _model()
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 6)), rng.integers(0, 3, 8), batch_size=8, verbose=0)
    return {v.path: np.abs(keras.ops.convert_to_numpy(v) - before[v.path]).sum()
            for v in model.trainable_variables}


@pytest.mark.parametrize("make", [lambda: keras.optimizers.SGD(0.1),
                                  lambda: keras.optimizers.Adam(1e-3)])
def test_update_sizes_follow_the_multipliers(make):
    plain = _one_step(make())
    scaled = _one_step(with_layerwise_lr(make(), {"early": 0.1, "late": 0.5}))
    for path, delta in plain.items():
        factor = 0.1 if path.startswith("early") else 0.5 if path.startswith("late") else 1.0
        assert scaled[path] == pytest.approx(factor * delta, rel=1e-4), path


def test_a_recipe_with_layerwise_lr_scales_the_updates_of_its_optimizer():
    from kerasdl.train import Recipe

    recipe = Recipe(optimizer="sgd", learning_rate=0.1, schedule="constant", momentum=0.0)
    plain = _one_step(recipe.make_optimizer(1))
    scaled = _one_step(recipe.replace(layerwise_lr={"early": 0.1}).make_optimizer(1))
    for path, delta in plain.items():
        factor = 0.1 if path.startswith("early") else 1.0
        assert scaled[path] == pytest.approx(factor * delta, rel=1e-4), path
    with pytest.raises(KerasdlError, match="layerwise_lr"):
        Recipe(layerwise_lr={"early": 0.0})


def test_freeze_up_to_a_resnet_stage_and_replace_the_head():
    model = kerasdl.create_model("resnet20", num_classes=10)
    frozen = freeze_up_to(model, "conv3")
    assert frozen[-1].startswith("conv3_block3")
    assert not model.get_layer("conv3_block3_2_conv").trainable
    assert model.get_layer("conv4_block1_1_conv").trainable
    new = replace_head(model, 4)
    assert new.output_shape == (None, 4)
    assert new.get_layer("conv2_block1_1_conv") is model.get_layer("conv2_block1_1_conv")
    with pytest.raises(KerasdlError, match="layer name prefixes"):
        freeze_up_to(model, "stage9")


def _fitted_layerwise_model(optimizer):
    model = _model()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    model.fit(x, rng.integers(0, 3, 8), batch_size=8, verbose=0)
    return model, x


def test_a_model_compiled_with_layerwise_rates_reloads_with_them(tmp_path):
    """A dict of multipliers goes into the optimizer's config: the saved model reloads
    compiled (safe mode), and its optimizer scales the same layers by the same factors."""
    model, x = _fitted_layerwise_model(
        with_layerwise_lr(keras.optimizers.SGD(0.1), {"early": 0.1}, default=0.5))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(loaded.optimizer).__name__ == "LayerwiseSGD"
    assert loaded.optimizer.lr_multipliers == {"early": 0.1}
    assert loaded.optimizer.lr_default == 0.5
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=0, atol=1e-6)
    before = [v.numpy() for v in loaded.trainable_variables]
    loaded.fit(x, np.zeros(8, "int32"), batch_size=8, verbose=0)
    factors = {v.path: f for v, f in zip(loaded.trainable_variables, loaded.optimizer._lr_factors)}
    assert factors and all((f == 0.1) == ("early" in path) for path, f in factors.items())
    assert {f for f in factors.values()} == {0.1, 0.5}
    assert not all(np.array_equal(b, v.numpy()) for b, v in zip(before, loaded.trainable_variables))


def test_load_run_reads_a_model_trained_with_layerwise_rates_given_as_a_function(tmp_path):
    """A function of the variable cannot be saved: load_run gives the trained model
    uncompiled, with its weights."""
    from kerasdl.train import load_run

    model, x = _fitted_layerwise_model(
        with_layerwise_lr(keras.optimizers.SGD(0.1), lambda v: 0.1))
    model.save(tmp_path / "model.keras")
    with pytest.raises(TypeError, match="Layerwise"):
        keras.saving.load_model(tmp_path / "model.keras")
    loaded, _ = load_run(tmp_path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=0, atol=1e-6)
