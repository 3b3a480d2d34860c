"""Our builders against keras.applications' (randomly initialised here: no downloads):
exact parameter counts at 1000 classes, the same layer names, and weights that carry over
so that our model on raw pixels matches theirs on ``preprocess_input`` images."""

import re

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.models import KERAS_APPLICATIONS, load_keras_applications_weights
from kerasdl.models.keras_applications import keras_applications_model
from tests.shapes_only import build_shapes_only

# keras.applications leaves some weighted layers unnamed (Xception's shortcut convolutions,
# most of Inception-ResNet-v2's): ours are matched to those by position.
PARTLY_UNNAMED = {"xception", "inception_resnet_v2"}
# Smallest inputs keras.applications accepts (the others take any size used here).
MIN_SIZE = {"xception": 71, "inception_resnet_v2": 75}

PREPROCESS = {
    "xception": keras.applications.xception.preprocess_input,
    "inception_resnet_v2": keras.applications.inception_resnet_v2.preprocess_input,
    "densenet121": keras.applications.densenet.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "resnet50": keras.applications.resnet.preprocess_input,
    "resnet50_v2": keras.applications.resnet_v2.preprocess_input,
    "mobilenet": keras.applications.mobilenet.preprocess_input,
    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
    # MobileNetV3 scales its own input (a Rescaling layer); this is the identity.
    "mobilenet_v3_small": keras.applications.mobilenet_v3.preprocess_input,
    "mobilenet_v3_large": keras.applications.mobilenet_v3.preprocess_input,
}


@pytest.mark.parametrize("name", sorted(KERAS_APPLICATIONS))
def test_parameter_count_equals_keras_applications(name):
    # With global pooling the count does not depend on the image size, so a small input
    # gives the 224x224 count; VGG flattens its last feature map, so it needs 224.
    size = 224 if name.startswith("vgg") else MIN_SIZE.get(name, 32)
    shape = (size, size, 3)
    # Counts and shapes need no weight values (tests/shapes_only.py).
    theirs = build_shapes_only(keras_applications_model, name, input_shape=shape)
    ours = build_shapes_only(kerasdl.create_model, name, input_shape=shape)
    assert ours.count_params() == theirs.count_params()
    registered = kerasdl.model_info(name).reference_params
    assert theirs.count_params() in registered.values()
    weighted = lambda m: [(l.name, [tuple(w.shape) for w in l.weights])  # noqa: E731
                          for l in m.layers if l.weights]
    if name in PARTLY_UNNAMED:
        # The same shapes in the same order, and every layer keras.applications names
        # itself (not Keras' automatic "conv2d_7") has that name in ours, at its place.
        assert [w for _, w in weighted(ours)] == [w for _, w in weighted(theirs)]
        named = {n for n, _ in weighted(theirs)
                 if not re.fullmatch(r"(conv2d|batch_normalization)(_\d+)?", n)}
        places = lambda m: [(i, n) for i, (n, _) in enumerate(weighted(m))  # noqa: E731
                            if n in named]
        assert named and places(ours) == places(theirs)
    else:
        assert weighted(ours) == weighted(theirs)


@pytest.mark.parametrize("name", sorted(PREPROCESS))
def test_weights_transfer_and_outputs_match(name, tmp_path):
    keras.utils.set_random_seed(0)
    size = MIN_SIZE.get(name, 64)
    theirs = keras_applications_model(name, input_shape=(size, size, 3), classes=7,
                                      classifier_activation=None)
    # Non-trivial BatchNorm statistics, so that copying them is tested too.
    rng = np.random.default_rng(0)
    for layer in theirs.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
    ours = kerasdl.create_model(name, input_shape=(size, size, 3), num_classes=7)
    images = rng.uniform(0, 255, (3, size, size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(theirs(PREPROCESS[name](images.copy())))

    load_keras_applications_weights(ours, theirs)
    got = keras.ops.convert_to_numpy(ours(images))
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)

    # From a .weights.h5 file saved from keras.applications.
    path = tmp_path / "theirs.weights.h5"
    theirs.save_weights(path)
    fresh = kerasdl.create_model(name, input_shape=(size, size, 3), num_classes=7)
    load_keras_applications_weights(fresh, path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(images)), got, atol=1e-6)


def test_wrong_source_is_a_clear_error(tmp_path):
    ours = kerasdl.create_model("resnet50", input_shape=(32, 32, 3), num_classes=3)
    other = keras_applications_model("resnet50_v2", input_shape=(32, 32, 3), classes=3)
    with pytest.raises(kerasdl.KerasdlError, match="no layer|does not match"):
        load_keras_applications_weights(ours, other)
    with pytest.raises(kerasdl.KerasdlError, match="no weights file"):
        load_keras_applications_weights(ours, tmp_path / "missing.weights.h5")
    with pytest.raises(kerasdl.KerasdlError, match="no keras.applications counterpart"):
        keras_applications_model("resnet18")
