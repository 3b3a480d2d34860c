"""kerasdl.data.folders on small folders of generated images (no conftest needed)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasdl.data.folders import IMAGE_EXTENSIONS, folder_splits, looks_like_path  # noqa: E402
from kerasdl.errors import KerasdlError, NotFoundError  # noqa: E402

# Each file is one flat grey level 4 + 8 * id, so an image identifies its file after
# resizing, grey<->RGB conversion and JPEG compression (all within +-3 of the level).
CLASSES = ["zebra", "ant", "moth"]  # created unsorted on purpose
SORTED = sorted(CLASSES)


def _write(path, ident, size, channels=3, ext=".png"):
    image = tf.fill((*size, channels), tf.constant(4 + 8 * ident, tf.uint8))
    data = tf.io.encode_jpeg(image, quality=100) if ext == ".jpg" else tf.io.encode_png(image)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, data)


def _make_classes(folder, per_class, first_id=0):
    """``per_class`` images in each of CLASSES; returns ``{id: class name}``."""
    ids = {}
    ident = first_id
    for name in CLASSES:
        for i in range(per_class):
            ext = ".jpg" if name == "moth" else ".png"  # one class of JPEGs
            channels = 1 if name == "zebra" else 3  # one class of greyscale PNGs
            size = (20, 24) if i % 2 else (30, 30)
            _write(os.path.join(folder, name, f"{i:03d}{ext}"), ident, size, channels, ext)
            ids[ident] = name
            ident += 1
    return ids


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pictures"))
    ids = _make_classes(root, 10)
    # Ignored like image_dataset_from_directory does: other files and hidden folders.
    with open(os.path.join(root, "ant", "notes.txt"), "w") as f:
        f.write("not an image")
    _write(os.path.join(root, ".thumbnails", "x.png"), 0, (4, 4))
    return root, ids


def _read(ds, shape):
    """``[(file id, label)]`` in dataset order, checking dtypes, shape and flatness."""
    assert ds.element_spec[0].dtype == tf.uint8 and ds.element_spec[1].dtype == tf.int64
    out = []
    for image, label in ds:
        image = image.numpy()
        assert image.shape == shape and image.dtype == np.uint8
        assert int(image.max()) - int(image.min()) <= 3
        out.append((int(round((image.mean() - 4) / 8)), int(label)))
    return out


def test_one_folder_per_class_gives_disjoint_mixed_splits(folder):
    root, ids = folder
    raw, counts, meta = folder_splits(root, image_size=(12, 16), channels=3)
    assert meta["class_names"] == SORTED and meta["num_classes"] == 3
    assert meta["image_shape"] == (12, 16, 3)
    assert meta["source"] == f"image folder {root} (30 images, 3 classes)"
    assert counts == {"train": 24, "validation": 3, "test": 3}
    seen = {}
    for split, ds in raw.items():
        items = _read(ds, (12, 16, 3))
        assert len(items) == counts[split]
        for ident, label in items:
            assert SORTED[label] == ids[ident]
        seen[split] = [i for i, _ in items]
        assert len({label for _, label in items}) > 1, split
        # Equal classes are spread evenly: any 3 consecutive examples from the start
        # of a split hold all 3 classes, and the 3-image splits one image per class.
        assert len({label for _, label in items[:3]}) == 3, split
    everything = seen["train"] + seen["validation"] + seen["test"]
    assert sorted(everything) == sorted(ids)  # disjoint and complete


def test_greyscale_and_rgb_conversion(folder):
    root, ids = folder
    raw, _, meta = folder_splits(root, image_size=(7, 9), channels=1)
    assert meta["image_shape"] == (7, 9, 1)
    items = _read(raw["train"], (7, 9, 1))
    assert all(SORTED[label] == ids[ident] for ident, label in items)
    # The zebra PNGs are greyscale files: as RGB all three channels agree.
    raw, _, _ = folder_splits(root, image_size=(5, 5), channels=3)
    zebra = SORTED.index("zebra")
    for image, label in raw["train"]:
        if int(label) == zebra:
            image = image.numpy()
            assert np.array_equal(image[..., 0], image[..., 2])


def test_splits_are_fixed_by_the_seed(folder):
    root, _ = folder

    def ids(seed, **kwargs):
        raw, _, _ = folder_splits(root, image_size=(4, 4), channels=1, seed=seed, **kwargs)
        return {s: [i for i, _ in _read(ds, (4, 4, 1))] for s, ds in raw.items()}

    first = ids(0)
    assert ids(0) == first  # same files, same order
    other = ids(1)
    assert set(other["test"]) != set(first["test"]) or set(other["train"]) != set(first["train"])
    # The test split does not move when the validation share changes.
    assert ids(0, validation_fraction=0.3)["test"] == first["test"]


def test_datasets_repeat_the_same_order(folder):
    root, _ = folder
    raw, _, _ = folder_splits(root, image_size=(4, 4), channels=3, seed=5)
    for ds in raw.values():
        assert _read(ds, (4, 4, 3)) == _read(ds, (4, 4, 3))


def test_no_validation_and_max_examples(folder):
    root, _ = folder
    raw, counts, _ = folder_splits(root, image_size=(4, 4), channels=1, validation_fraction=0)
    assert "validation" not in raw and counts == {"train": 27, "test": 3}
    raw, counts, _ = folder_splits(root, image_size=(4, 4), channels=1, max_examples=5)
    assert counts == {"train": 5, "validation": 3, "test": 3}
    for split, ds in raw.items():
        items = _read(ds, (4, 4, 1))
        assert len(items) == counts[split]
    assert len({label for _, label in _read(raw["train"], (4, 4, 1))}) == 3


def test_train_test_layout(tmp_path):
    root = str(tmp_path)
    train_ids = _make_classes(os.path.join(root, "train"), 6)
    test_ids = _make_classes(os.path.join(root, "test"), 2, first_id=18)
    raw, counts, meta = folder_splits(root, image_size=(6, 6), channels=3,
                                      validation_fraction=0.2)
    assert counts == {"train": 14, "validation": 4, "test": 6}
    assert meta["source"] == f"image folder {root} (24 images, 3 classes)"
    got = {s: [i for i, _ in _read(ds, (6, 6, 3))] for s, ds in raw.items()}
    assert sorted(got["test"]) == sorted(test_ids)
    assert sorted(got["train"] + got["validation"]) == sorted(train_ids)

    raw, counts, _ = folder_splits(root, image_size=(6, 6), channels=3, validation_fraction=0)
    assert "validation" not in raw and counts == {"train": 18, "test": 6}

    val_ids = _make_classes(os.path.join(root, "validation"), 1, first_id=24)
    raw, counts, _ = folder_splits(root, image_size=(6, 6), channels=3, validation_fraction=0)
    assert counts == {"train": 18, "validation": 3, "test": 6}
    assert sorted(i for i, _ in _read(raw["validation"], (6, 6, 3))) == sorted(val_ids)


def _error(path, cls=KerasdlError, **kwargs):
    with pytest.raises(cls) as info:
        folder_splits(path, image_size=(8, 8), channels=3, **kwargs)
    assert info.value.argument == "dataset"
    message = str(info.value)
    assert "expected" in message and os.path.join("cat", "001.jpg") in message  # the layout
    return message


def test_errors_name_the_folder(tmp_path):
    missing = str(tmp_path / "nowhere")
    message = _error(missing, NotFoundError)
    assert missing in message and "does not exist" in message

    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    assert str(a_file) in _error(str(a_file)) and "not a folder" in _error(str(a_file))

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no class subfolders" in _error(str(empty))

    loose = tmp_path / "loose"
    _write(str(loose / "001.png"), 1, (4, 4))
    message = _error(str(loose))
    assert str(loose) in message and "no class subfolders" in message

    no_images = tmp_path / "no_images"
    _write(str(no_images / "cat" / "001.png"), 1, (4, 4))
    (no_images / "dog").mkdir()
    (no_images / "dog" / "readme.txt").write_text("x")
    message = _error(str(no_images))
    assert str(no_images / "dog") in message
    assert all(ext in message for ext in IMAGE_EXTENSIONS)

    single = tmp_path / "single"
    _write(str(single / "cat" / "001.png"), 1, (4, 4))
    message = _error(str(single))
    assert str(single) in message and "at least 2 classes" in message

    few = tmp_path / "few"
    _write(str(few / "cat" / "001.png"), 1, (4, 4))
    _write(str(few / "dog" / "001.png"), 2, (4, 4))
    message = _error(str(few))
    assert str(few) in message and "too few" in message


def test_errors_for_the_train_test_layout(tmp_path):
    mismatch = tmp_path / "mismatch"
    for split, name in [("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "emu")]:
        _write(str(mismatch / split / name / "001.png"), 1, (4, 4))
    message = _error(str(mismatch))
    assert str(mismatch / "train" / "cat" / "001.jpg") in message  # split layout example
    assert str(mismatch / "test") in message and str(mismatch / "train") in message
    assert "emu" in message and "dog" in message

    no_test = tmp_path / "no_test"
    _write(str(no_test / "train" / "cat" / "001.png"), 1, (4, 4))
    message = _error(str(no_test))
    assert str(no_test) in message and "no test/" in message

    mixed = tmp_path / "mixed"
    for split in ("train", "test", "extra"):
        _write(str(mixed / split / "cat" / "001.png"), 1, (4, 4))
    message = _error(str(mixed))
    assert str(mixed) in message and "extra" in message

    few = tmp_path / "few"
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            _write(str(few / split / name / "001.png"), 1, (4, 4))
    message = _error(str(few), validation_fraction=0.9)
    assert str(few / "train") in message and "too few" in message


def test_bad_arguments_name_the_argument(folder):
    root, _ = folder
    for kwargs, argument in [
        ({"image_size": (8, 8), "channels": 2}, "channels"),
        ({"image_size": (0, 8), "channels": 3}, "image_size"),
        ({"image_size": (8, 8), "channels": 3, "test_fraction": 0}, "test_fraction"),
        ({"image_size": (8, 8), "channels": 3, "validation_fraction": 1.5},
         "validation_fraction"),
        ({"image_size": (8, 8), "channels": 3, "max_examples": 0}, "max_examples"),
    ]:
        with pytest.raises(KerasdlError) as info:
            folder_splits(root, **kwargs)
        assert info.value.argument == argument


def test_image_extensions_match_keras():
    from keras.src.utils.image_dataset_utils import ALLOWLIST_FORMATS

    assert tuple(IMAGE_EXTENSIONS) == tuple(ALLOWLIST_FORMATS)


def test_looks_like_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("mnist", "glue/sst2", "fashion_mnist:3.0.1", ""):
        assert not looks_like_path(name), name
    for name in ("/x/y", "./data", "../data", "~/pics", str(tmp_path)):
        assert looks_like_path(name), name
    (tmp_path / "pics").mkdir()
    assert looks_like_path("pics")  # exists on disk
    (tmp_path / "glue").mkdir()
    assert looks_like_path("glue/sst2")  # its first component exists on disk
