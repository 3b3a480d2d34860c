"""GoogLeNet against Table 1 and Sec. 5 of Szegedy et al. 2015: module widths, the
auxiliary classifiers as training outputs, and the single-output inference model."""

import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.models.cnn.googlenet import AUX_LOSS_WEIGHT, inference_model
from kerasdl.train import get_recipe, train

# Output depth of each module (Table 1's "depth" column is layers; "output size" gives
# these channel counts).
TABLE_1_OUTPUTS = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528,
                   "4e": 832, "5a": 832, "5b": 1024}


def test_table_1_output_sizes_at_224():
    model = kerasdl.create_model("googlenet")
    for name, channels in TABLE_1_OUTPUTS.items():
        shape = model.get_layer(f"inception_{name}_output").output.shape
        side = {"3": 28, "4": 14, "5": 7}[name[0]]
        assert tuple(shape[1:]) == (side, side, channels), name
    assert model.get_layer("pool1").output.shape[1:3] == (56, 56)
    assert tuple(model.output.shape) == (None, 1000)


def test_auxiliary_heads_follow_section_5():
    model = kerasdl.create_model("googlenet", aux_classifiers=True, num_classes=10)
    assert sorted(model.output) == ["aux1", "aux2", "predictions"]
    # 5x5/3 average pooling of the 14x14 maps of 4a and 4d gives 4x4x128 = 2048 inputs.
    assert tuple(model.get_layer("aux1_pool").output.shape[1:]) == (4, 4, 512)
    assert tuple(model.get_layer("aux2_pool").output.shape[1:]) == (4, 4, 528)
    assert model.get_layer("aux1_fc").kernel.shape == (2048, 1024)
    assert model.get_layer("aux2_dropout").rate == 0.7
    assert model.get_layer("predictions_dropout").rate == 0.4
    assert get_recipe("googlenet").aux_loss_weight == AUX_LOSS_WEIGHT == 0.3


def test_inference_model_shares_the_training_weights():
    tiny = kerasdl.model_info("googlenet").test_kwargs
    train_model = kerasdl.create_model(
        "googlenet", **{**tiny, "input_shape": (65, 65, 3)}, aux_classifiers=True)
    single = inference_model(train_model)
    plain = kerasdl.create_model("googlenet", **{**tiny, "input_shape": (65, 65, 3)})
    assert single.count_params() == plain.count_params()
    assert single.count_params() < train_model.count_params()
    x = np.random.default_rng(0).uniform(0, 255, (2, 65, 65, 3)).astype("float32")
    np.testing.assert_allclose(single.predict(x, verbose=0),
                               train_model.predict(x, verbose=0)["predictions"], rtol=1e-6)
    assert inference_model(plain) is plain


def test_bad_auxiliary_settings_are_clear_errors():
    with pytest.raises(KerasdlError, match="at least 65"):
        kerasdl.create_model("googlenet", input_shape=(32, 32, 3), aux_classifiers=True)
    with pytest.raises(KerasdlError, match="include_top"):
        kerasdl.create_model("googlenet", include_top=False, aux_classifiers=True)
    with pytest.raises(KerasdlError, match="aux_after"):
        kerasdl.create_model("googlenet", aux_after=("9z",))


def test_training_uses_the_auxiliary_losses_and_saves_the_single_output_model(tmp_path):
    tiny = kerasdl.model_info("googlenet").test_kwargs
    recipe = get_recipe("googlenet").replace(epochs=1, batch_size=16, augmentation="none")
    # Digits (8x8) are resized to the model's input; 65x65 is the smallest with aux heads.
    record = train("googlenet", "digits", output_dir=str(tmp_path / "run"), recipe=recipe,
                   max_examples=64, verbose=0,
                   model_kwargs={**{k: v for k, v in tiny.items() if k != "num_classes"},
                                 "input_shape": (65, 65, 3)})
    log = (tmp_path / "run" / "training_log.csv").read_text().splitlines()[0].split(",")
    assert {"aux1_loss", "aux2_loss", "predictions_loss"} <= set(log)
    model, saved = kerasdl.train.load_run(tmp_path / "run")
    assert not isinstance(model.output, dict) and tuple(model.output.shape) == (None, 10)
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert saved["model_kwargs"]["input_shape"] == repr((65, 65, 3))


def test_aux_loss_weight_needs_a_model_with_auxiliary_heads(tmp_path):
    recipe = get_recipe("lenet5").replace(aux_loss_weight=0.3, epochs=1)
    with pytest.raises(KerasdlError, match="no auxiliary classifiers"):
        train("lenet5", "digits", output_dir=str(tmp_path / "run"), recipe=recipe,
              max_examples=32, verbose=0)
