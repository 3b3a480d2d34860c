"""InputScaling: input scaling inside the model, checked against keras.applications'
own ``preprocess_input`` modes."""

import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.layers import InputScaling
from kerasdl.layers.preprocessing import SCALING_PRESETS, input_scaling_of, make_input_scaling

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (4, 5, 6, 3)).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "spec, mode",
    [
        ("symmetric", "tf"),
        ("imagenet", "torch"),
        ({"scale": 1.0, "offset": [-103.939, -116.779, -123.68], "reverse_channels": True}, "caffe"),
    ],
)
def test_matches_keras_applications_preprocess_input(spec, mode):
    layer = make_input_scaling(spec)
    expected = imagenet_utils.preprocess_input(PIXELS.copy(), mode=mode)
    np.testing.assert_allclose(_np(layer(PIXELS)), expected, rtol=1e-5, atol=1e-4)


def test_range_maps_black_and_white():
    layer = make_input_scaling("lenet")
    out = _np(layer(np.array([[0.0], [255.0]], "float32")))
    np.testing.assert_allclose(out.ravel(), [-0.1, 1.175], atol=1e-6)
    assert layer.count_params() == 0


def test_config_round_trip_and_spec():
    layer = InputScaling.from_mean_std(*SCALING_PRESETS["cifar10"]["mean_std"], name="s")
    clone = InputScaling.from_config(layer.get_config())
    np.testing.assert_allclose(_np(clone(PIXELS)), _np(layer(PIXELS)))
    spec = layer.spec()
    assert spec["input_range"] == [0.0, 255.0] and len(spec["scale"]) == 3
    # The spec alone reproduces the layer: what a phone app would implement.
    manual = PIXELS * np.array(spec["scale"]) + np.array(spec["offset"])
    np.testing.assert_allclose(_np(layer(PIXELS)), manual, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("zscore", "input_scaling must be one of"),
        ({"mean": 0.5}, "input_scaling dict must hold"),
        (3.0, "input_scaling must be a preset name"),
        ({"scale": 0.0}, "scale must not contain 0"),
    ],
)
def test_bad_specs_are_user_errors(spec, match):
    with pytest.raises(KerasdlError, match=match):
        make_input_scaling(spec)


def test_per_channel_values_must_match_channels():
    with pytest.raises(KerasdlError, match="3 values but the input has 1 channels"):
        kerasdl.create_model("lenet5", input_scaling="imagenet")


def test_models_carry_their_scaling_and_none_removes_it():
    assert input_scaling_of(kerasdl.create_model("lenet5")).spec()["offset"] == [-0.1]
    assert input_scaling_of(kerasdl.create_model("lenet5_modern")).spec()["offset"] == [0.0]
    assert input_scaling_of(kerasdl.create_model("lenet5", input_scaling=None)) is None
