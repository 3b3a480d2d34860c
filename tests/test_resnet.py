"""ResNet family details against the papers (counts live in the contract)."""

import keras
import pytest

import kerasdl
from kerasdl.errors import KerasdlError


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_bottleneck_strides_on_the_first_1x1_as_the_paper_and_keras_applications():
    model = kerasdl.create_model("resnet50", input_shape=(64, 64, 3))
    assert model.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_2_conv").strides == (1, 1)


def test_v2_strides_in_the_last_block_of_stages_2_to_4():
    model = kerasdl.create_model("resnet50_v2", input_shape=(64, 64, 3))
    assert model.get_layer("conv2_block3_2_conv").strides == (2, 2)
    assert model.get_layer("conv5_block3_2_conv").strides == (1, 1)


def test_cifar_option_a_has_no_shortcut_weights_and_plain_has_no_shortcuts():
    resnet = kerasdl.create_model("resnet20")
    plain = kerasdl.create_model("resnet20_plain")
    assert _layer_types(resnet).count("Add") == 9 and _layer_types(plain).count("Add") == 0
    assert _layer_types(resnet).count("ZeroPadShortcut") == 2
    assert resnet.count_params() == plain.count_params()
    assert kerasdl.create_model("resnet20_b").count_params() > resnet.count_params()
    assert resnet.output_shape == (None, 10) and resnet.input_shape == (None, 32, 32, 3)


def test_depth_is_6n_plus_2():
    for depth in (20, 32, 44, 56, 110):
        model = kerasdl.create_model(f"resnet{depth}")
        weighted = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
        assert len(weighted) == depth


def test_resnext_groups_and_bad_grouping_is_a_user_error():
    model = kerasdl.create_model("resnext50_32x4d", input_shape=(64, 64, 3))
    conv = model.get_layer("conv2_block1_2_conv")
    assert conv.groups == 32 and conv.filters == 128
    with pytest.raises(KerasdlError, match="whole channels per group"):
        kerasdl.create_model("resnext50_32x4d", stage_filters=(8, 8, 8, 8))
