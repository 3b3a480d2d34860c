"""SqueezeNet (Iandola et al. 2016) and ShuffleNet V2 (Ma et al. 2018) against their
papers: parameter counts from the layer tables by arithmetic, the channel shuffle and
split on known tensors, the feature-map sizes of Table 5 and of the Caffe files, and the
argument checks. The model contract covers build, training, saving and TFLite."""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.layers.shuffle import ChannelShuffle, ChannelSplit
from kerasdl.models.cnn.shufflenet import apply_shufflenet_v2_unit
from kerasdl.models.cnn.squeezenet import _max_pool
from kerasdl.registry import ParamCount
from kerasdl.train import get_recipe

# ---------------------------------------------------------------------------- counts

FIRE = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]


def squeezenet_count(stem_filters, stem_kernel, fire=FIRE, classes=1000):
    """Weights and biases: conv1, each fire module (squeeze 1x1, expand 1x1 and 3x3),
    conv10 (1x1 to the classes). No other layer has parameters."""
    total = stem_kernel * stem_kernel * 3 * stem_filters + stem_filters
    channels = stem_filters
    for s, e in fire:
        total += (channels * s + s) + (s * e + e) + (9 * s * e + e)
        channels = 2 * e
    return total + channels * classes + classes


def shufflenet_counts(widths, final, repeats=(4, 8, 4), stem=24, classes=1000,
                      full_batchnorm=True):
    """(trainable, BatchNorm channels) of ShuffleNet V2 from Table 5 and Fig. 3: bias-free
    convolutions, each followed by a BatchNorm (2 trainable per channel), the classifier
    with biases. The downsampling unit's left branch is a depthwise 3x3 on the input and
    a 1x1 to half the width; every right branch is 1x1, depthwise 3x3, 1x1 at half width.
    Without ``full_batchnorm`` the BatchNorms after depthwise convolutions have no offset
    and those after a right branch's first 1x1 no scale."""
    weights = 27 * stem
    bn = stem
    redundant = 0
    channels = stem
    for width, n in zip(widths, repeats):
        half = width // 2
        weights += 9 * channels + channels * half  # left branch of the downsampling unit
        bn += channels + half
        weights += channels * half + 9 * half + half * half  # its right branch
        bn += 3 * half
        weights += (n - 1) * (2 * half * half + 9 * half)  # the basic units' right branches
        bn += (n - 1) * 3 * half
        redundant += channels + 2 * half + (n - 1) * 2 * half  # depthwise BN + first-1x1 BN
        channels = width
    weights += channels * final
    bn += final
    trainable = weights + 2 * bn + final * classes + classes
    return (trainable if full_batchnorm else trainable - redundant), bn


SHUFFLENET_TABLE_5 = {
    "shufflenet_v2_x0_5": ((48, 96, 192), 1024),
    "shufflenet_v2_x1_0": ((116, 232, 464), 1024),
    "shufflenet_v2_x1_5": ((176, 352, 704), 1024),
    "shufflenet_v2_x2_0": ((244, 488, 976), 2048),
}


def _reference(name):
    (ref,) = kerasdl.model_info(name).reference_params.values()
    return ref if isinstance(ref, ParamCount) else ParamCount(ref)


def test_squeezenet_counts_from_the_layer_tables_equal_the_references():
    # The contract checks the references against the built models.
    assert squeezenet_count(64, 3) == _reference("squeezenet1_1").count == 1_235_496
    assert squeezenet_count(96, 7) == _reference("squeezenet1_0").count == 1_248_424


@pytest.mark.parametrize("name", sorted(SHUFFLENET_TABLE_5))
def test_shufflenet_counts_from_table_5_equal_the_references(name):
    refs = kerasdl.model_info(name).reference_params.values()
    # torchvision's layers (full_batchnorm=True) and kerasdl's default; trainable only,
    # as torchvision counts no moving statistics.
    torchvision, = [r for r in refs if r.kwargs == {"full_batchnorm": True}]
    default, = [r for r in refs if not r.kwargs]
    assert torchvision.trainable_only and default.trainable_only
    table = SHUFFLENET_TABLE_5[name]
    assert shufflenet_counts(*table)[0] == torchvision.count
    assert shufflenet_counts(*table, full_batchnorm=False)[0] == default.count


def test_the_arithmetic_describes_the_built_models():
    """Same formulas, tiny configurations, actual models: ties the counts above to the
    layers the builders make, and Keras' extra count to BatchNorm's moving mean and
    variance."""
    info = kerasdl.model_info("shufflenet_v2_x1_0")
    kw = info.resolved_kwargs(**info.test_kwargs)
    for full in (True, False):
        model = kerasdl.create_model("shufflenet_v2_x1_0", **info.test_kwargs,
                                     full_batchnorm=full)
        trainable, bn = shufflenet_counts(kw["stage_widths"], kw["final_filters"],
                                          kw["stage_repeats"], kw["stem_filters"],
                                          kw["num_classes"], full_batchnorm=full)
        assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == trainable
        assert model.count_params() == trainable + 2 * bn

    info = kerasdl.model_info("squeezenet1_0")
    model = kerasdl.create_model("squeezenet1_0", **info.test_kwargs)
    kw = info.resolved_kwargs(**info.test_kwargs)
    fire = list(zip(kw["squeeze"], kw["expand"]))
    assert model.count_params() == squeezenet_count(kw["stem_filters"], kw["stem_kernel"],
                                                    fire, kw["num_classes"])


def test_the_batchnorm_parameters_left_out_are_redundant_in_training_mode():
    """With torchvision's BatchNorms (full_batchnorm=True), in training mode: the offsets
    after depthwise convolutions change nothing, and a first-1x1 BatchNorm's scale and
    offset scaled together change nothing up to BatchNorm's epsilon, while its offsets
    alone do matter. So the default model drops those offsets and scales."""
    info = kerasdl.model_info("shufflenet_v2_x0_5")
    # Seeded: the epsilon term depends on the batch variances, so an unlucky draw of
    # weights (whatever earlier tests left in the global generator) could push the
    # scale-and-offset check past its tolerance.
    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("shufflenet_v2_x0_5", **info.test_kwargs, full_batchnorm=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")

    def run():
        return keras.ops.convert_to_numpy(model(x, training=True))

    def bns(suffix):
        return [layer for layer in model.layers if layer.name.endswith(suffix)]

    # 4 units (3 downsampling): 7 depthwise BatchNorms, 4 after a right branch's first 1x1.
    assert (len(bns("_dw_bn")), len(bns("_pw1_bn"))) == (7, 4)
    start = run()
    for layer in bns("_pw1_bn"):
        layer.beta.assign(rng.normal(size=layer.beta.shape).astype("float32"))
    offsets = run()
    assert not np.allclose(offsets, start, atol=1e-2)
    for layer in bns("_dw_bn"):
        layer.beta.assign(rng.normal(size=layer.beta.shape).astype("float32"))
    np.testing.assert_allclose(run(), offsets, rtol=0, atol=1e-5 * np.abs(offsets).max())
    for layer in bns("_pw1_bn"):
        c = rng.uniform(0.5, 2.0, size=layer.gamma.shape).astype("float32")
        layer.gamma.assign(keras.ops.convert_to_numpy(layer.gamma) * c)
        layer.beta.assign(keras.ops.convert_to_numpy(layer.beta) * c)
    np.testing.assert_allclose(run(), offsets, rtol=0, atol=1e-2 * np.abs(offsets).max())
    default = kerasdl.create_model("shufflenet_v2_x0_5", **info.test_kwargs)
    assert default.get_layer("stage2_unit1_branch2_dw_bn").center is False
    assert default.get_layer("stage2_unit1_branch2_pw1_bn").scale is False


# ---------------------------------------------------------------------------- layers


def test_channel_shuffle_matches_the_hand_computed_permutation():
    # Channels as a groups x (C / groups) matrix, transposed: for C = 6,
    # 2 groups [[0 1 2] [3 4 5]] -> 0 3 1 4 2 5; 3 groups [[0 1] [2 3] [4 5]] -> 0 2 4 1 3 5.
    position = 100.0 * np.arange(2 * 2 * 3).reshape(2, 2, 3, 1)  # tells positions apart
    x = (position + np.arange(6)).astype("float32")
    for groups, order in ((2, [0, 3, 1, 4, 2, 5]), (3, [0, 2, 4, 1, 3, 5]), (1, range(6))):
        got = keras.ops.convert_to_numpy(ChannelShuffle(groups)(x))
        np.testing.assert_array_equal(got, position + np.asarray(order, "float32"))


def test_channel_split_halves_and_bad_channel_counts():
    x = np.arange(2 * 3 * 3 * 4, dtype="float32").reshape(2, 3, 3, 4)
    left, right = (keras.ops.convert_to_numpy(t) for t in ChannelSplit()(x))
    np.testing.assert_array_equal(left, x[..., :2])
    np.testing.assert_array_equal(right, x[..., 2:])
    with pytest.raises(KerasdlError, match="divisible by 4") as info:
        ChannelShuffle(4)(np.zeros((1, 2, 2, 6), "float32"))
    assert info.value.argument == "groups"
    with pytest.raises(KerasdlError, match="groups"):
        ChannelShuffle(0)
    with pytest.raises(KerasdlError, match="divisible by 2"):
        ChannelSplit()(np.zeros((1, 2, 2, 5), "float32"))


def test_basic_unit_passes_the_left_half_through_to_the_even_channels():
    """Fig. 3c: the first half of the input is untouched; after concatenation and a
    2-group shuffle it lands on output channels 0, 2, 4, ..."""
    inputs = keras.Input((5, 5, 8))
    unit = keras.Model(inputs, apply_shufflenet_v2_unit(inputs, 8, 1, name="u"))
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 8)).astype("float32")
    y = unit.predict(x, verbose=0)
    np.testing.assert_array_equal(y[..., 0::2], x[..., :4])
    assert not np.allclose(y[..., 1::2], x[..., 4:])
    # No ReLU after the depthwise convolutions (G4), one after every 1x1.
    kinds = [type(layer).__name__ for layer in unit.layers]
    assert kinds.count("Activation") == 2 and kinds.count("DepthwiseConv2D") == 1
    with pytest.raises(KerasdlError, match="filters"):
        apply_shufflenet_v2_unit(inputs, 16, 1, name="v")


def test_squeezenet_pooling_rounds_up_like_caffe():
    # A 6-wide map: windows start at 0, 2 and (rounding up) 4, the last over columns 4-5.
    row = np.array([1, 5, 2, 0, 3, 7], "float32")
    x = np.tile(row[None, :, None], (6, 1, 1))[None]  # (1, 6, 6, 1), constant down columns
    inputs = keras.Input((6, 6, 1))
    pooled = keras.Model(inputs, _max_pool(inputs, "p")).predict(x, verbose=0)
    assert pooled.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(pooled[0, 0, :, 0], [5, 3, 7])


# ---------------------------------------------------------------------------- architecture


def _side_and_channels(model, layer):
    shape = model.get_layer(layer).output.shape
    return shape[1], shape[3]


def test_squeezenet_feature_sizes_at_224_follow_the_caffe_files():
    # Caffe (and torchvision) sizes, ceil-mode pooling: v1.1 conv1 111, pools 55/27/13;
    # v1.0 conv1 109, pools 54/27/13; both end with 13x13x512 and 13x13 x classes.
    v11 = kerasdl.create_model("squeezenet1_1", num_classes=10)
    assert [_side_and_channels(v11, n) for n in ("conv1_relu", "pool1", "pool3", "pool5",
                                                "fire9_concat", "conv10_relu")] == [
        (111, 64), (55, 64), (27, 128), (13, 256), (13, 512), (13, 10)]
    assert v11.get_layer("drop9").rate == 0.5
    v10 = kerasdl.create_model("squeezenet1_0", num_classes=10)
    assert [_side_and_channels(v10, n) for n in ("conv1_relu", "pool1", "pool4", "pool8",
                                                "fire9_concat")] == [
        (109, 96), (54, 96), (27, 256), (13, 512), (13, 512)]


def test_shufflenet_output_sizes_follow_table_5():
    model = kerasdl.create_model("shufflenet_v2_x1_0")
    assert [_side_and_channels(model, n) for n in ("conv1_relu", "pool1", "stage2_unit4_shuffle",
                                                  "stage3_unit8_shuffle", "stage4_unit4_shuffle",
                                                  "conv5_relu")] == [
        (112, 24), (56, 24), (28, 116), (14, 232), (7, 464), (7, 1024)]
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    big = kerasdl.model_info("shufflenet_v2_x2_0").resolved_kwargs()
    assert big["dropout_rate"] == 0.2 and big["final_filters"] == 2048


def test_recipes_scale_the_papers_settings_to_batch_128():
    squeeze, shuffle = get_recipe("squeezenet1_1"), get_recipe("shufflenet_v2_x1_0")
    # SqueezeNet: lr 0.08 at batch 1024, L2 2e-4, 68 epochs; ShuffleNet: 0.5, 4e-5, 240.
    assert (squeeze.learning_rate, squeeze.weight_decay, squeeze.epochs) == (0.01, 0.002, 68)
    assert (shuffle.learning_rate, shuffle.weight_decay, shuffle.epochs) == (0.0625, 0.0004, 240)
    assert squeeze.batch_size == shuffle.batch_size == 128


def test_registry_metadata():
    names = kerasdl.list_models(tags="mobile")
    assert {"squeezenet1_0", "squeezenet1_1", *SHUFFLENET_TABLE_5} <= set(names)
    for name in ("squeezenet1_1", "shufflenet_v2_x0_5"):
        info = kerasdl.model_info(name)
        assert (info.family, info.task, info.default_input_shape) == (
            "cnn", "image_classification", (224, 224, 3))


@pytest.mark.parametrize("name, kwargs, argument", [
    ("squeezenet1_1", {"squeeze": (16, 16), "expand": (64,)}, "squeeze"),
    ("squeezenet1_1", {"pool_after": (1, 10)}, "pool_after"),
    ("squeezenet1_1", {"input_shape": (24, 24, 3)}, "input_shape"),
    ("squeezenet1_1", {"dropout_rate": 1.5}, "dropout_rate"),
    ("shufflenet_v2_x1_0", {"stage_widths": (116, 231, 464)}, "stage_widths"),
    ("shufflenet_v2_x1_0", {"stage_repeats": (4, 8)}, "stage_widths"),
    ("shufflenet_v2_x1_0", {"input_shape": (16, 16, 3)}, "input_shape"),
    ("shufflenet_v2_x1_0", {"pooling": "sum", "include_top": False}, "pooling"),
])
def test_bad_arguments_name_the_argument(name, kwargs, argument):
    with pytest.raises(KerasdlError) as info:
        kerasdl.create_model(name, **kwargs)
    assert info.value.argument == argument
