"""kerasdl.data on the real offline TFDS copies (TFDS_DATA_DIR) and the embedded digits."""

import time

import numpy as np
import pytest

from kerasdl.data import DataNotFoundError, load_image_classification, network_available
from kerasdl.errors import KerasdlError, NotFoundError
from kerasdl.data.images import _plan_splits
from tests.markers import needs_tfds


@needs_tfds
def test_mnist_is_padded_to_32_as_raw_pixels():
    data = load_image_classification("mnist", image_size=(32, 32), max_examples=64, batch_size=32)
    images, labels = next(iter(data.test))
    images = images.numpy()
    assert images.shape == (32, 32, 32, 1) and images.dtype == np.float32
    # Padding adds exactly two black rows/columns on every side.
    border = np.concatenate([images[:, :2].ravel(), images[:, -2:].ravel(),
                             images[:, :, :2].ravel(), images[:, :, -2:].ravel()])
    assert (border == 0).all()
    # Raw pixel values: the model scales them itself.
    assert images.min() == 0 and images.max() == 255
    np.testing.assert_array_equal(images, np.round(images))
    assert data.num_classes == 10 and labels.dtype.name == "int64"
    assert "mnist" in data.source
    assert data.describe() == ("28x28x1 uint8 images padded with black around the centre "
                               "from 28x28 to 32x32; pixel values 0-255 as float32")


@needs_tfds
def test_mnist_split_sizes_carve_validation_from_train():
    data = load_image_classification("mnist", validation_fraction=0.1)
    assert data.num_examples == {"test": 10_000, "validation": 6_000, "train": 54_000}
    assert data.image_shape == (28, 28, 1)


def test_plan_splits_are_disjoint_and_cover_train():
    plan = _plan_splits({"train": 1000, "test": 100}, 0.1)
    assert plan["train"] == ("train", 0, 900)
    assert plan["validation"] == ("train", 900, 1000)
    assert plan["test"] == ("test", 0, 100)
    only_train = _plan_splits({"train": 1000}, 0.1)
    assert only_train["test"] == ("train", 900, 1000)
    assert only_train["validation"] == ("train", 800, 900)
    assert only_train["train"] == ("train", 0, 800)
    own_val = _plan_splits({"train": 10, "validation": 3, "test": 4}, 0.5)
    assert own_val["validation"] == ("validation", 0, 3) and own_val["train"] == ("train", 0, 10)
    assert "validation" not in _plan_splits({"train": 10, "test": 2}, 0.0)


@needs_tfds
def test_cifar10_to_grey_and_resized_down():
    data = load_image_classification(
        "cifar10", image_size=(16, 16), channels=1, max_examples=8, batch_size=8
    )
    images, _ = next(iter(data.train))
    assert images.shape == (8, 16, 16, 1)
    assert data.image_shape == (16, 16, 1)


@needs_tfds
def test_augment_hook_touches_only_training_batches():
    def shift_up(images, labels):
        return images + 100.0, labels

    data = load_image_classification("fashion_mnist", max_examples=16, augment=shift_up)
    train_images, _ = next(iter(data.train))
    test_images, _ = next(iter(data.test))
    assert float(train_images.numpy().min()) >= 100.0
    assert float(test_images.numpy().min()) == 0.0


@needs_tfds
def test_non_image_dataset_is_rejected():
    with pytest.raises(KerasdlError, match="not an image-classification dataset"):
        load_image_classification("tiny_shakespeare")


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(KerasdlError, match="mnist"):
        load_image_classification("mnistt")


@pytest.mark.parametrize("name", ["/some/folder", "./no_such_folder"])
def test_missing_folder_is_one_clear_error(name):
    """A path is not handed to TFDS (whose name parser answers with a page of help)."""
    with pytest.raises(NotFoundError) as err:
        load_image_classification(name, image_size=(32, 32))
    assert "some/folder" in str(err.value) or "no_such_folder" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_missing_data_offline_fails_fast_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASDL_OFFLINE", "1")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(DataNotFoundError) as err:
        load_image_classification("mnist")
    assert time.perf_counter() - start < 30
    message = str(err.value)
    assert str(tmp_path) in message and "TFDS_DATA_DIR" in message
    assert "mnist/3.0.1" in message
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing half-written


def test_offline_switch_skips_the_probe(monkeypatch):
    monkeypatch.setenv("KERASDL_OFFLINE", "1")
    assert network_available() is False


def test_embedded_digits():
    data = load_image_classification("digits", image_size=(32, 32), batch_size=2000)
    assert data.embedded and "scikit-learn" in data.source
    assert sum(data.num_examples.values()) == 1797
    x, y = data.arrays("train")
    assert x.shape == (data.num_examples["train"], 32, 32, 1)
    assert set(np.unique(y)) == set(range(10))
    assert 0.0 <= x.min() and x.max() <= 255.0 and x.max() > 200


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": (32,)}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"max_examples": 0}, "max_examples"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(KerasdlError, match=match):
        load_image_classification("digits", **kwargs)
