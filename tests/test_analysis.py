"""MACs counted from the layers against hand-computed and published figures; receptive
fields against hand derivations."""

import keras
import pytest

import kerasdl
from kerasdl.analysis import (
    ReceptiveField,
    count_macs,
    receptive_field,
    summarize,
    weighted_depth,
)
from kerasdl.errors import KerasdlError


def test_lenet5_macs_from_the_papers_connection_counts():
    """LeCun et al. 1998 (Sec. II-B) give connections including bias terms: C1 122,304,
    C3 151,600, C5 48,120, F6 10,164; without the biases (one per output) those are
    117,600, 150,000, 48,000 and 10,080 multiply-adds. S2 and S4 multiply each window
    sum once (1,176 and 400), and the 84x10 output layer adds 840."""
    model = kerasdl.create_model("lenet5")
    per_layer = {name: macs for name, _, macs in summarize(model)["layers"] if macs}
    assert per_layer == {"c1": 122_304 - 28 * 28 * 6, "s2": 14 * 14 * 6,
                         "c3": 151_600 - 10 * 10 * 16, "s4": 5 * 5 * 16,
                         "c5": 48_120 - 120, "f6": 10_164 - 84, "output": 840}
    assert count_macs(model) == 328_096


def test_vgg16_matches_its_published_15_5_gmacs():
    macs = count_macs(kerasdl.create_model("vgg16"))
    assert macs == pytest.approx(15.5e9, rel=0.01)


def test_resnet50_macs_near_the_papers_3_8_gflops():
    """He et al. 2015, Table 1: 3.8 x 10^9 FLOPs (multiply-adds) for ResNet-50."""
    macs = count_macs(kerasdl.create_model("resnet50", input_shape=(224, 224, 3)))
    assert macs == pytest.approx(3.8e9, rel=0.05)


# ---------------------------------------------------------------------------- receptive field
# r_out = r_in + d (k - 1) j_in and j_out = j_in s for a kernel k, stride s, dilation d;
# the values below are worked out by hand from the papers' layer tables.


def test_vgg16_receptive_field_212_at_pool5():
    """Per stage: each 3x3 conv adds 2 j, the 2x2/2 pool adds j and doubles j.
    Stage 1 (j=1): 1 + 2 + 2 = 5, pool 6 (j=2); stage 2: 6 + 4 + 4 = 14, pool 16 (j=4);
    stage 3: 16 + 3 x 8 = 40, pool 44 (j=8); stage 4: 44 + 3 x 16 = 92, pool 100 (j=16);
    stage 5: 100 + 3 x 32 = 196 at conv5_3, pool5 196 + 16 = 212 (j=32)."""
    model = kerasdl.create_model("vgg16", input_shape=(32, 32, 3))
    assert receptive_field(model) == ReceptiveField((212, 212), (32, 32), "block5_pool")
    conv5_3 = receptive_field(model, model.get_layer("block5_conv3").output)
    assert (conv5_3.size, conv5_3.jump) == ((196, 196), (16, 16))
    assert summarize(model)["receptive_field"] == receptive_field(model)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_lenet5_c5_sees_the_whole_32x32_input(name):
    """C1 5x5: 5; S2 2x2/2: 6 (j=2); C3 5x5: 6 + 4 x 2 = 14; S4: 16 (j=4); C5 5x5:
    16 + 4 x 4 = 32, the whole input (the paper's point of making C5 a convolution).
    The trainable subsampling and the connection-table C3 count as pooling and a 5x5
    convolution, like the modern row's max pooling and full C3."""
    model = kerasdl.create_model(name)
    assert receptive_field(model) == ReceptiveField((32, 32), (4, 4), "c5_act")
    taps = kerasdl.create_model(name, features_only=True)
    fields = {key: receptive_field(taps, tensor) for key, tensor in taps.output.items()}
    assert {k: (f.size, f.jump) for k, f in fields.items()} == {
        "stride_2": ((14, 14), (2, 2)), "stride_4": ((32, 32), (4, 4))}


def test_resnet_receptive_fields():
    """Stem 7x7/2 then 3x3/2 pool: 7, 7 + 2 x 2 = 11 (j=4); then each 3x3 conv adds
    2 j_in (1x1 convs add nothing), the larger of each block's two paths.

    ResNet-50 here strides its first 1x1 conv (the paper's and keras.applications'), so
    every 3x3 of a stage sees the stage's new jump: 11 + 3 x 8 = 35; + 4 x 16 = 99;
    + 6 x 32 = 291; + 3 x 64 = 483. (The often quoted 427 is torchvision's "v1.5",
    whose stride sits on the 3x3: the first 3x3 of stages 3-5 adds 8, 16, 32 instead
    of 16, 32, 64, 56 less.) ResNet-18 strides its first 3x3: 11 + 4 x 8 = 43; + 8 +
    3 x 16 = 99; + 16 + 3 x 32 = 211; + 32 + 3 x 64 = 435."""
    resnet50 = kerasdl.create_model("resnet50", input_shape=(32, 32, 3))
    assert receptive_field(resnet50) == ReceptiveField((483, 483), (32, 32), "conv5_block3_out")
    resnet18 = kerasdl.create_model("resnet18", input_shape=(32, 32, 3))
    assert receptive_field(resnet18).size == (435, 435)


@pytest.mark.parametrize("name, kwargs, size, layer", [
    # conv1 11x11/4: 11 (j=4); pool1 3x3/2: 19 (j=8); conv2 5x5: 19 + 4 x 8 = 51;
    # pool2: 67 (j=16); conv3-5 3x3: 67 + 3 x 32 = 163; pool5: 163 + 32 = 195 (j=32).
    ("alexnet", {}, 195, "pool5"),
    # stem 7x7/2 + pool 3x3/2: 11 (j=4); each dense layer's 3x3 adds 2 j, each
    # transition's 2x2/2 pool adds j: 11 + 6 x 8 = 59, 63; + 12 x 16 = 255, 263;
    # + 24 x 32 = 1031, 1047; + 16 x 64 = 2071 (the longest path runs through every layer).
    ("densenet121", {"input_shape": (32, 32, 3)}, 2071, "relu"),
    # stem 3x3/2, 3x3: 3, 7 (j=2); each entry block (two 3x3 separable convs, a 3x3/2
    # pool) adds 3 x 2 j: 7 + 12 = 19 (j=4), 19 + 24 = 43 (j=8), 43 + 48 = 91 (j=16);
    # middle flow, 8 blocks of three: 91 + 24 x 32 = 859; exit block: 859 + 3 x 32 = 955
    # (j=32); two separable convs: 955 + 2 x 64 = 1083 (the 1x1 shortcuts are shorter).
    ("xception", {"input_shape": (71, 71, 3)}, 1083, "block14_sepconv2_act"),
])
def test_receptive_fields_of_classic_cnns(name, kwargs, size, layer):
    model = kerasdl.create_model(name, **kwargs)
    assert receptive_field(model) == ReceptiveField((size, size), (32, 32), layer)


def test_branches_take_the_larger_path():
    """Two 3x3 convs (5) beside one 3x3 conv dilated by 3 (k_eff = 7: 7) meet in an Add:
    7, not 5; the 2x2/2 pool adds 1 (j=2); a strided 1x1 shortcut (1, j=2) joins by
    concatenation: still 8. The global pooling and Dense after it end the spatial part."""
    image = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same")(image)
    a = keras.layers.Conv2D(4, 3, padding="same")(a)
    b = keras.layers.Conv2D(4, 3, dilation_rate=3, padding="same")(image)
    x = keras.layers.MaxPooling2D(2)(keras.layers.Add()([a, b]))
    shortcut = keras.layers.Conv2D(4, 1, strides=2)(image)
    x = keras.layers.Concatenate(name="join")([x, shortcut])
    x = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(image, x)
    assert receptive_field(model) == ReceptiveField((8, 8), (2, 2), "join")


def test_per_axis_upsampling_and_nested_models():
    """A nested Sequential of two 3x3/2 convs (3 at j=2, 7 at j=4); a (1, 3) kernel then
    grows only the width (7, 7 + 2 x 4 = 15); 2x upsampling halves the jump (j=2); a 4x4
    transposed conv of stride 2 gathers ceil(4 / 2) = 2 input units: + 1 x 2 (j=1)."""
    backbone = keras.Sequential([keras.Input((16, 16, 1)),
                                 keras.layers.Conv2D(2, 3, strides=2, padding="same"),
                                 keras.layers.Conv2D(2, 3, strides=2, padding="same")])
    image = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, (1, 3), padding="same")(backbone(image))
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same", name="up")(x)
    model = keras.Model(image, x)
    assert receptive_field(model) == ReceptiveField((9, 17), (1, 1), "up")


def test_models_without_spatial_maps():
    mlp = kerasdl.create_model("highway_mlp")
    with pytest.raises(KerasdlError, match="no spatial feature map"):
        receptive_field(mlp)
    assert summarize(mlp)["receptive_field"] is None


@pytest.mark.parametrize("name, paper_depth", [
    ("lenet5", 7),         # LeCun et al. 1998: "7 layers, not counting the input"
    ("lenet5_modern", 5),  # max pooling instead of trainable subsampling
    ("vgg16", 16),
    ("googlenet", 22),     # Szegedy et al. 2015: "22 layers deep when counting only layers with parameters"
    ("resnet50", 50),      # the projection shortcuts run beside the longer path
    ("densenet121", 121),
])
def test_weighted_depth_is_the_longest_path_the_papers_count(name, paper_depth):
    # Depth does not depend on the input size: small inputs keep the models light.
    size = 32 if name != "googlenet" else 64
    channels = 1 if name.startswith("lenet") else 3
    model = kerasdl.create_model(name, input_shape=(size, size, channels))
    assert weighted_depth(model) == paper_depth


def test_gradient_norms_match_a_hand_gradient_and_cover_every_kernel():
    import numpy as np

    from kerasdl.analysis import gradient_norms

    # One dense layer, MSE: d/dW mean((xW - y)^2) = 2 x^T (xW - y) / n.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, name="d")(inputs))
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "float32")
    y = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    w = keras.ops.convert_to_numpy(model.get_layer("d").kernel)
    expected = 2 * x.T @ (x @ w - y) / y.size
    [(name, norm)] = gradient_norms(model, x, y, loss=keras.losses.MeanSquaredError())
    assert name == "d" and norm == pytest.approx(np.linalg.norm(expected), rel=1e-5)

    # One norm per kernel, in layer order, all finite, for a real CNN.
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    labels = rng.integers(0, 10, 8)
    norms = gradient_norms(kerasdl.create_model("resnet20", input_shape=(16, 16, 3)),
                           images, labels)
    assert len(norms) == 20 and all(np.isfinite(n) and n > 0 for _, n in norms)


def test_recurrent_and_conv1d_macs_are_counted_per_step():
    import keras

    from kerasdl.analysis import count_macs

    tokens = keras.Input((5, 3))
    x = keras.layers.LSTM(8, return_sequences=True)(tokens)  # 5 x 4 x 8 x (3 + 8)
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(x)
    x = keras.layers.Conv1D(6, 2)(x)  # 4 positions x 6 x 2 x 8
    model = keras.Model(tokens, x)
    lstm = 5 * 4 * 8 * (3 + 8)
    gru = 2 * 5 * 3 * 4 * (8 + 4)
    conv = 4 * 6 * 2 * 8
    assert count_macs(model) == lstm + gru + conv


def test_attention_and_tied_output_macs_by_hand():
    import kerasdl
    from kerasdl.analysis import layer_macs

    model = kerasdl.create_model("gpt_char_small", vocabulary_size=30, layers=1, hidden=16,
                                 heads=2, ff_dim=32, max_positions=24, sequence_length=10)
    attention = model.get_layer("block1_self_attention")
    # Q, K, V and output projections at 10 positions, then scores and weighted sums of
    # 2 heads of 8 over 10 x 10 pairs.
    assert layer_macs(attention) == 4 * 10 * 16 * 16 + 2 * 10 * 10 * (8 + 8)
    # The tied output layer: 10 positions x 16 x 30 (the input lookup is free).
    assert layer_macs(model.get_layer("token_embeddings")) == 10 * 16 * 30

    cross = kerasdl.create_model("transformer_small", vocabulary_size=20,
                                 target_vocabulary_size=17, layers=1, d_model=16, heads=2,
                                 ff_dim=32, sequence_length=6)
    assert layer_macs(cross.get_layer("decoder1_cross_attention")) == \
        4 * 6 * 16 * 16 + 2 * 6 * 6 * (8 + 8)


def test_transposed_convolution_macs_and_subclassed_summary():
    from kerasdl.analysis import layer_macs

    x = keras.Input((5, 6, 3))
    layer = keras.layers.Conv2DTranspose(4, (3, 2), strides=2, padding="same")
    keras.Model(x, layer(x))
    # each of the 5 x 6 input positions scatters 3 channels through 3 x 2 x 4 weights
    assert layer_macs(layer) == 5 * 6 * 3 * 2 * 3 * 4
    summary = summarize(kerasdl.create_model("conv_autoencoder"))
    # encoder: two convolutions and the code; decoder: dense, two transposed, one conv
    assert summary["depth"] == 7 and summary["receptive_field"] is None
