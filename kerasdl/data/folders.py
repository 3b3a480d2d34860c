"""Image-classification data from the user's own folders of images.

Two layouts are understood::

    PATH/cat/001.jpg, PATH/dog/002.png, ...           one subfolder per class
    PATH/train/cat/..., PATH/test/cat/...             train/ and test/ (and optionally
    PATH/validation/cat/...)                          validation/), same classes in each

:func:`folder_splits` returns the same ``(raw, counts, meta)`` triple as the TFDS loader
in :mod:`kerasdl.data.images`, so folders enter the same pipeline as TFDS datasets.
"""

from __future__ import annotations

import os

import numpy as np

from kerasdl.errors import (
    KerasdlError,
    NotFoundError,
    check_choice,
    check_fraction,
    check_positive_int,
)

__all__ = ["IMAGE_EXTENSIONS", "folder_splits", "looks_like_path"]

# The files keras.utils.image_dataset_from_directory reads (its ALLOWLIST_FORMATS,
# compared case-insensitively); it silently skips every other file.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SPLIT_FOLDERS = ("train", "validation", "test")


def looks_like_path(name) -> bool:
    """True when a ``--dataset`` value names a folder on disk rather than a TFDS dataset.

    The rule: a path object; a string that starts with ``/``, ``.`` (``./``, ``../``) or
    ``~``, or is absolute; a string that exists on disk (file or folder, relative to the
    working directory); or a string holding a path separator whose first component
    exists on disk. Anything else is a TFDS name: ``mnist``, ``fashion_mnist:3.0.1`` and
    ``glue/sst2`` (TFDS writes configs as ``dataset/config``, so a ``/`` alone does not
    make a path). Hence a folder in the working directory named like a TFDS dataset wins.
    """
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str) or not name:
        return False
    if name.startswith(("/", ".", "~")) or os.path.isabs(name):
        return True
    if os.path.exists(name):
        return True
    for sep in {os.sep, os.altsep or os.sep}:
        if sep in name:
            first = name.split(sep, 1)[0]
            if first and os.path.exists(first):
                return True
    return False


def _layout(root, splits=False):
    """The expected-layout sentence every error about a folder ends with."""
    if splits:
        return (
            "expected train/ and test/ (and optionally validation/) subfolders that each "
            f"hold the same class subfolders, e.g. {os.path.join(root, 'train', 'cat', '001.jpg')} "
            f"and {os.path.join(root, 'test', 'cat', '002.jpg')}"
        )
    return (
        f"expected one subfolder per class, e.g. {os.path.join(root, 'cat', '001.jpg')}, "
        "or train/ and test/ subfolders (optionally validation/) that each hold the same "
        "class subfolders"
    )


def _error(message, root, cls=KerasdlError, splits=False):
    return cls(f"{message}; {_layout(root, splits)}", argument="dataset")


def _subfolders(folder):
    # The same rule as image_dataset_from_directory: sorted, hidden folders skipped.
    return sorted(
        d for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def _has_images(folder):
    # image_dataset_from_directory also walks nested folders of a class folder.
    for _, _, files in os.walk(folder):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False


def _class_folders(folder, root, splits):
    """Sorted class names of ``folder`` (``root`` or one of its split folders), checked."""
    classes = _subfolders(folder)
    if not classes:
        loose = sum(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(folder))
        hint = (f" (the {loose} image{'s' if loose > 1 else ''} directly in it must move into "
                "class subfolders)") if loose else ""
        raise _error(f"dataset folder {folder} has no class subfolders{hint}", root,
                     splits=splits)
    for name in classes:
        if not _has_images(os.path.join(folder, name)):
            raise _error(
                f"class folder {os.path.join(folder, name)} holds no images (supported "
                f"extensions: {', '.join(IMAGE_EXTENSIONS)})",
                root,
                splits=splits,
            )
    if len(classes) < 2:
        raise _error(
            f"dataset folder {folder} has a single class subfolder ({classes[0]}/); a "
            "classifier needs at least 2 classes",
            root,
            splits=splits,
        )
    return classes


def _interleaved(sizes, rng):
    """All ``(class, index in class)`` pairs in a seeded order in which every class is
    spread evenly, so that any prefix holds the classes in proportion to their size.

    Splits cut from this order are near-stratified, and a split read in this order has
    mixed classes from its first element (a class-sorted order would give an evaluation
    on the first N test examples a single class).
    """
    classes, members, keys = [], [], []
    for c, n in enumerate(sizes):
        classes.append(np.full(n, c))
        members.append(rng.permutation(n))
        # Rank r of a class of n lands in [r/n, (r+1)/n): evenly spaced, jittered.
        keys.append((np.arange(n) + rng.random_sample(n)) / n)
    order = np.argsort(np.concatenate(keys), kind="stable")
    return list(zip(np.concatenate(classes)[order].tolist(),
                    np.concatenate(members)[order].tolist()))


def _share(fraction, n):
    # As images._plan_splits: a non-zero fraction always holds out at least one example.
    return max(1, round(fraction * n)) if fraction > 0 else 0


def _too_few(folder, n, parts, root, splits=False):
    held = " and ".join(f"a {what} split of {k}" for what, k in parts if k)
    return _error(
        f"dataset folder {folder} has {n} images, too few for {held} plus at least one "
        "training image (add images or lower the fractions)",
        root,
        splits=splits,
    )


def _split_dataset(streams, plan):
    """A dataset of ``plan``, a list of ``(class, index in class)``: the classes come in
    plan order, each class's files in file order (a per-class stream can give no other).

    Every class stream is read up to its last planned file; the files skipped on the way
    are read too and dropped by one filter, which keeps the traced tf.data functions to
    two per split however many classes there are.
    """
    import tensorflow as tf

    by_class = {}
    for c, j in plan:
        by_class.setdefault(c, []).append(j)
    for files in by_class.values():
        files.sort()
    present = sorted(by_class)
    slot = {c: i for i, c in enumerate(present)}
    taken = {c: 0 for c in present}  # files read so far from each class stream
    nth = {c: 0 for c in present}
    choice, keep, labels = [], [], []
    for c, _ in plan:
        j = by_class[c][nth[c]]
        nth[c] += 1
        skipped = j - taken[c]
        choice += [slot[c]] * (skipped + 1)
        keep += [False] * skipped + [True]
        labels += [c] * (skipped + 1)
        taken[c] = j + 1
    chosen = [streams[c].take(taken[c]) for c in present]
    keep = tf.constant(np.array(keep, dtype=bool))
    labels = tf.constant(np.array(labels, dtype=np.int64))

    def planned(position, image):
        return keep[position]

    def to_example(position, image):
        # image_dataset_from_directory resizes in float32; round back to the uint8
        # pixels the TFDS datasets deliver.
        pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return pixels, labels[position]

    ds = tf.data.Dataset.choose_from_datasets(
        chosen, tf.data.Dataset.from_tensor_slices(np.array(choice, dtype=np.int64))
    )
    return ds.enumerate().filter(planned).map(to_example)


def folder_splits(path, *, image_size, channels, validation_fraction=0.1, test_fraction=0.1,
                  max_examples=None, seed=0):
    """Train/validation/test datasets from a folder of images, one subfolder per class.

    Returns ``(raw, counts, meta)`` as ``images._tfds_splits`` does: ``raw`` maps
    ``train``, ``validation`` (absent when there is none) and ``test`` to unbatched
    ``tf.data`` datasets of ``(uint8 [h, w, channels], int64 label)``, each yielding the
    same examples in the same (class-mixed) order on every pass; ``counts`` the exact
    sizes; ``meta`` ``num_classes``, ``class_names`` (sorted folder names),
    ``image_shape`` and ``source``.

    Args:
        path: a folder with one subfolder per class (``PATH/cat/001.jpg``), or with
            ``train/`` and ``test/`` (and optionally ``validation/``) subfolders that
            each hold the same class subfolders. Images may be .bmp, .gif (first frame),
            .jpeg, .jpg or .png, nested at any depth in a class folder; other files and
            hidden folders are ignored.
        image_size: ``(height, width)``; images are resized to it (bilinear, aspect ratio
            not kept).
        channels: 1 (greyscale) or 3 (RGB); images are converted as they are decoded.
        validation_fraction: share of the images (of ``train/`` in the split layout)
            held out for validation; 0 for none. Unused when ``validation/`` exists.
        test_fraction: share of the images held out for testing (one subfolder per class
            layout only; ``test/`` is the test split otherwise).
        max_examples: keep at most this many examples per split (classes still mixed).
        seed: fixes which images go to which split and the order they are read in.

    Splits are cut from a seeded order that spreads every class evenly, so each split
    draws from all classes roughly in proportion, and a carved test split does not depend
    on ``validation_fraction``.
    """
    root = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                       for d in image_size)):
        raise KerasdlError(f"image_size must be (height, width) positive ints, got {image_size!r}",
                           argument="image_size")
    check_choice(channels, (1, 3), "channels")
    validation_fraction = check_fraction(validation_fraction, "validation_fraction")
    test_fraction = check_fraction(test_fraction, "test_fraction")
    check_positive_int(max_examples, "max_examples", allow_none=True)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise KerasdlError(f"seed must be an integer, got {seed!r}", argument="seed")

    if not os.path.exists(root):
        raise _error(f"dataset folder {root} does not exist", root, NotFoundError)
    if not os.path.isdir(root):
        raise _error(f"dataset {root} is a file, not a folder", "FOLDER")
    names = set(_subfolders(root))
    if {"train", "test"} <= names:
        extra = sorted(names - set(SPLIT_FOLDERS))
        if extra:
            raise _error(
                f"dataset folder {root} mixes train/ and test/ with other subfolders "
                f"({', '.join(extra)}); with train/ and test/ it may hold only those and "
                "validation/",
                root,
                splits=True,
            )
        folders = {s: os.path.join(root, s) for s in SPLIT_FOLDERS if s in names}
    elif names and names <= set(SPLIT_FOLDERS):
        missing = "test/" if "test" not in names else "train/"
        raise _error(
            f"dataset folder {root} has {', '.join(sorted(n + '/' for n in names))} but no "
            f"{missing}",
            root,
            splits=True,
        )
    else:
        folders = {"all": root}
        if test_fraction == 0:
            raise KerasdlError(
                f"test_fraction must be > 0 for dataset folder {root}: without train/ and "
                "test/ subfolders the test split is carved from the images",
                argument="test_fraction",
            )
        if validation_fraction + test_fraction >= 1:
            raise KerasdlError(
                f"validation_fraction + test_fraction must be below 1, got "
                f"{validation_fraction} + {test_fraction}",
                argument="validation_fraction",
            )

    class_names = None
    for split, folder in folders.items():
        classes = _class_folders(folder, root, splits="all" not in folders)
        if class_names is None:
            class_names, first = classes, folder
        elif classes != class_names:
            only_here = sorted(set(classes) - set(class_names))
            only_there = sorted(set(class_names) - set(classes))
            raise _error(
                f"the class subfolders of {folder} ({', '.join(classes)}) differ from those "
                f"of {first} ({', '.join(class_names)}): only in {split}/: "
                f"{', '.join(only_here) or 'none'}; missing from {split}/: "
                f"{', '.join(only_there) or 'none'}",
                root,
                splits=True,
            )

    import keras

    streams, sizes = {}, {}
    for split, folder in folders.items():
        streams[split], sizes[split] = [], []
        for name in class_names:
            # One unshuffled dataset per class folder, to be mixed by _split_dataset:
            # with shuffle=True the order changes on every pass, and one dataset for the
            # whole folder comes class by class, which cannot be mixed without holding
            # the decoded images in a buffer.
            ds = keras.utils.image_dataset_from_directory(
                os.path.join(folder, name),
                labels=None,
                label_mode=None,
                color_mode="grayscale" if channels == 1 else "rgb",
                batch_size=None,
                image_size=tuple(image_size),
                shuffle=False,
                interpolation="bilinear",
                data_format="channels_last",
                verbose=False,
            )
            sizes[split].append(len(ds.file_paths))
            streams[split].append(ds)

    rng = np.random.RandomState(seed)
    plans = {}
    if "all" in folders:
        total = sum(sizes["all"])
        order = _interleaved(sizes["all"], rng)
        n_test = _share(test_fraction, total)
        n_val = _share(validation_fraction, total)
        if n_test + n_val >= total:
            raise _too_few(root, total, [("test", n_test), ("validation", n_val)], root)
        plans["test"] = order[:n_test]
        plans["validation"] = order[n_test:n_test + n_val]
        plans["train"] = order[n_test + n_val:]
        source_of = {s: "all" for s in ("train", "validation", "test")}
    else:
        total = sum(sum(n) for n in sizes.values())
        plans["test"] = _interleaved(sizes["test"], rng)
        order = _interleaved(sizes["train"], rng)
        if "validation" in folders:
            plans["validation"], plans["train"] = _interleaved(sizes["validation"], rng), order
        else:
            n_train = sum(sizes["train"])
            n_val = _share(validation_fraction, n_train)
            if n_val >= n_train:
                raise _too_few(folders["train"], n_train, [("validation", n_val)], root,
                               splits=True)
            plans["validation"], plans["train"] = order[:n_val], order[n_val:]
        source_of = {s: s for s in folders}
        source_of.setdefault("validation", "train")

    raw, counts = {}, {}
    for split in ("train", "validation", "test"):
        plan = plans[split][:max_examples] if max_examples else plans[split]
        if not plan:
            continue  # no validation split: validation_fraction == 0
        raw[split] = _split_dataset(streams[source_of[split]], plan)
        counts[split] = len(plan)
    meta = {
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "image_shape": (image_size[0], image_size[1], channels),
        "source": f"image folder {root} ({total} images, {len(class_names)} classes)",
    }
    return raw, counts, meta
