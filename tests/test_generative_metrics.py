"""Fréchet distance against closed forms and an eigen-decomposition, the penultimate
feature model, and the generative scorer on real MNIST digits against noise."""

import json
import math

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl import generative_metrics as gm
from kerasdl.errors import KerasdlError
from kerasdl.train import get_recipe
from tests.markers import needs_tfds


def _random_spd(rng, dim):
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


# ------------------------------------------------------------------- Fréchet distance


def test_diagonal_gaussians_match_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 4.0, 5), rng.uniform(0.1, 4.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    d = gm.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert d == pytest.approx(expected, rel=1e-10)
    assert gm.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-12)


def test_matches_an_eigendecomposition_and_is_symmetric():
    rng = np.random.default_rng(1)
    for dim in (1, 3, 8):
        mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
        s1, s2 = _random_spd(rng, dim), _random_spd(rng, dim)
        # Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), the latter symmetric PSD.
        root = _sqrt_psd(s1)
        inner = np.linalg.eigvalsh(root @ s2 @ root)
        expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                    - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))
        d12 = gm.frechet_distance(mu1, s1, mu2, s2)
        assert d12 == pytest.approx(expected, rel=1e-8)
        assert gm.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(d12, rel=1e-8)
        assert d12 > 0


def test_sample_sets_identity_order_symmetry_and_large_sample_limit():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(loc=0.5, size=(200, 4))
    assert abs(gm.frechet_distance_of(a, a)) < 1e-9
    d = gm.frechet_distance_of(a, b)
    assert gm.frechet_distance_of(a[rng.permutation(300)], b[rng.permutation(200)]) == \
        pytest.approx(d, rel=1e-9)
    assert gm.frechet_distance_of(b, a) == pytest.approx(d, rel=1e-8)
    assert d == pytest.approx(gm.frechet_distance(a.mean(0), np.cov(a.T), b.mean(0),
                                                  np.cov(b.T)), rel=1e-12)
    # N(0, diag(1, 4)) vs N((1, 1), diag(4, 9)): 2 from the means, 1 + 1 from the scales.
    x = rng.normal(size=(40_000, 2)) * [1, 2]
    y = rng.normal(size=(40_000, 2)) * [2, 3] + 1
    assert gm.frechet_distance_of(x, y) == pytest.approx(4.0, abs=0.1)


def test_singular_product_is_retried_with_an_offset(monkeypatch):
    from scipy import linalg

    calls = []
    real = linalg.sqrtm

    def flaky(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real(matrix)

    monkeypatch.setattr(linalg, "sqrtm", flaky)
    s1, s2 = np.diag([1.0, 0.0]), np.diag([0.0, 4.0])
    d = gm.frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-3)
    offset = 1e-3 * np.eye(2)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + offset) @ (s2 + offset))
    # Tr(S1 + S2) = 5 less twice the root of the offset product, diag(1.001, 4.001) eps.
    assert d == pytest.approx(5.0 - 2 * (math.sqrt(1.001e-3) + math.sqrt(4.001e-3)),
                              rel=1e-9)
    # Fewer samples than features: singular covariances still give a finite distance.
    monkeypatch.undo()
    rng = np.random.default_rng(3)
    assert np.isfinite(gm.frechet_distance_of(rng.normal(size=(5, 20)),
                                              rng.normal(size=(5, 20))))


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(4)
    with pytest.raises(KerasdlError, match="same number of features") as e:
        gm.frechet_distance_of(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    assert e.value.argument == "features_b"
    with pytest.raises(KerasdlError, match="at least 2 samples") as e:
        gm.frechet_distance_of(rng.normal(size=(1, 3)), rng.normal(size=(10, 3)))
    assert e.value.argument == "features_a"
    with pytest.raises(KerasdlError, match=r"\(3, 3\)") as e:
        gm.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    assert e.value.argument == "sigma1"
    with pytest.raises(KerasdlError, match="mu1"):
        gm.frechet_distance(np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3))
    with pytest.raises(KerasdlError, match="positive semi-definite"):
        gm.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))
    with pytest.raises(KerasdlError, match=r"\[0, 1\]") as e:
        gm.to_pixels(np.full((2, 4, 4, 1), 255.0))
    assert e.value.argument == "images01"
    with pytest.raises(KerasdlError, match=r"\(x \+ 1\) / 2"):
        gm.to_pixels(np.full((2, 4, 4, 1), -1.0))
    np.testing.assert_allclose(gm.to_pixels([[0.0, 0.5, 1.0 + 1e-6]]), [[0, 127.5, 255]])


def test_histogram_entropy_and_confidence():
    one_class = np.tile([0.1, 0.7, 0.2], (50, 1))
    assert gm.class_histogram_entropy(one_class) == 0.0
    assert gm.mean_confidence(one_class) == pytest.approx(0.7)
    uniform = np.eye(4)[np.arange(40) % 4]
    assert gm.class_histogram_entropy(uniform) == pytest.approx(math.log(4))
    assert gm.class_histogram_entropy(np.eye(4)[[0, 0, 0, 1]]) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


# ------------------------------------------------------------------------ features


def test_feature_model_gives_the_penultimate_activations():
    keras.utils.set_random_seed(0)
    lenet = kerasdl.create_model("lenet5")  # 32x32 grey, logits from Dense "output"
    features = gm.feature_model(lenet)
    manual = keras.Model(lenet.input, lenet.get_layer("f6_act").output)
    x = np.random.default_rng(5).uniform(0, 255, (6, 32, 32, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(manual(x))
    assert features.output.shape[-1] == 84
    np.testing.assert_allclose(gm.classifier_features(lenet, x), expected, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(gm.classifier_features(features, x, batch_size=4), expected,
                               rtol=1e-5, atol=1e-5)
    # MNIST-sized images are padded to 32x32 with black, as kerasdl.data pads them.
    small = x[:, 2:30, 2:30]
    padded = np.pad(small, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_allclose(gm.classifier_features(lenet, small),
                               keras.ops.convert_to_numpy(manual(padded)), rtol=1e-5,
                               atol=1e-5)
    # A named layer; a spatial map (C5's 1x1x120) is averaged over its positions.
    c5 = gm.classifier_features(gm.feature_model(lenet, "c5_act"), x)
    c5_manual = keras.Model(lenet.input, lenet.get_layer("c5_act").output)(x)
    np.testing.assert_allclose(c5, keras.ops.convert_to_numpy(c5_manual).mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(KerasdlError, match="no layer named") as e:
        gm.feature_model(lenet, "nope")
    assert e.value.argument == "layer"
    inputs = keras.Input((8, 8, 1))
    no_dense = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(KerasdlError, match="no Dense layer"):
        gm.feature_model(no_dense)


# -------------------------------------------------------------------------- scorer


def _tiny_classifier(images, labels):
    """A small convolutional classifier (raw pixels in, logits out) fitted in-test."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def mnist():
    from kerasdl.data import load_image_classification

    data = load_image_classification("mnist", validation_fraction=0, max_examples=2000)
    train, test = data.arrays("train"), data.arrays("test", limit=1000)
    return train, test


@needs_tfds
def test_scorer_separates_real_digits_from_noise_and_black(mnist):
    (x_train, y_train), (x_test, _) = mnist
    classifier = _tiny_classifier(x_train, y_train)
    scorer = gm.GenerativeScorer(classifier, x_test[:500])
    assert scorer.mu.shape == (32,) and scorer.sigma.shape == (32, 32)
    rng = np.random.default_rng(6)
    real = scorer.score(x_test[500:] / 255.0)
    noise = scorer.score(rng.uniform(0, 1, (500, 28, 28, 1)))
    black = scorer.score(np.zeros((500, 28, 28)))  # [n, h, w] takes a channel axis
    assert set(real) == {"frechet_distance", "mean_confidence", "class_histogram_entropy",
                         "num_samples"}
    assert real["num_samples"] == 500 and scorer.reference["num_samples"] == 500
    assert 0 < real["frechet_distance"] < min(noise["frechet_distance"],
                                              black["frechet_distance"]) / 10
    assert real["mean_confidence"] > noise["mean_confidence"] + 0.1
    assert real["mean_confidence"] == pytest.approx(scorer.reference["mean_confidence"],
                                                    abs=0.05)
    # Real digits spread over the ten classes; identical black images are one class.
    assert real["class_histogram_entropy"] > math.log(10) - 0.2
    assert black["class_histogram_entropy"] == 0.0
    # Units: generated samples in [0, 1], references in pixels.
    with pytest.raises(KerasdlError, match=r"\[0, 1\]"):
        scorer.score(x_test[:10])
    with pytest.raises(KerasdlError, match="raw pixel values") as e:
        gm.GenerativeScorer(classifier, x_test[:10] / 255.0)
    assert e.value.argument == "reference_images"
    with pytest.raises(KerasdlError, match="at least 2") as e:
        scorer.score(x_test[:1] / 255.0)
    assert e.value.argument == "samples01"
    with pytest.raises(KerasdlError, match="samples01 must be") as e:
        scorer.score(np.zeros((4, 28)))
    assert e.value.argument == "samples01"


def test_reference_classifier_trains_once_then_loads(tmp_path, monkeypatch):
    from kerasdl.train import runs

    calls = []

    def fake_train(model_name, dataset, *, output_dir, **kwargs):
        calls.append((model_name, dataset, kwargs))
        model = kerasdl.create_model("lenet5", num_classes=3)
        runs.os.makedirs(output_dir, exist_ok=True)
        model.save(f"{output_dir}/model.keras")
        with open(f"{output_dir}/run.json", "w") as f:
            json.dump({"model": model_name, "task": "image_classification",
                       "dataset": dataset}, f)

    monkeypatch.setattr(runs, "train", fake_train)
    run_dir = str(tmp_path / "lenet5_fashion_mnist")
    recipe = get_recipe("lenet5").replace(epochs=3)
    model, record = gm.reference_classifier("fashion_mnist", run_dir, epochs=2, recipe=recipe)
    assert model.output.shape[-1] == 3 and record["dataset"] == "fashion_mnist"
    assert calls == [("lenet5", "fashion_mnist",
                      {"epochs": 2, "max_examples": None, "data_dir": None, "seed": 0,
                       "verbose": None, "recipe": recipe, "model_kwargs": None})]
    again, _ = gm.reference_classifier("fashion_mnist:3.0.1", run_dir)
    assert len(calls) == 1 and again.count_params() == model.count_params()
    with pytest.raises(KerasdlError, match="trained on 'fashion_mnist'") as e:
        gm.reference_classifier("mnist", run_dir)
    assert e.value.argument == "run_dir"
