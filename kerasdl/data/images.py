"""Image-classification datasets as batched, prefetched ``tf.data`` pipelines.

Images come out as raw pixel values (float32 in [0, 255]), padded or resized to the
model's size: every kerasdl image model scales its own input
(:class:`kerasdl.layers.InputScaling`), so the data pipeline does not normalise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kerasdl.data import digits
from kerasdl.data.sources import (
    PROBE_HOST,
    network_available,
    offline_forced,
    resolve_data_dir,
    tfds_builder,
)
from kerasdl.errors import (
    DataNotFoundError,
    InvalidArgumentError,
    KerasdlError,
    check_choice,
    check_fraction,
    check_positive_int,
)

__all__ = ["ImageData", "load_image_classification"]

# Share of a folder dataset without a test/ subfolder that is held out for testing.
FOLDER_TEST_FRACTION = 0.1


@dataclass
class ImageData:
    """What :func:`load_image_classification` returns.

    ``train``, ``validation`` and ``test`` yield ``(images float32 [b, h, w, c] with
    pixel values in [0, 255], labels int64 [b])``; ``validation`` is None when
    ``validation_fraction=0`` and the dataset has no validation split. ``preprocess`` maps
    the dataset's uint8 images to the model's size and channels.
    """

    name: str
    source: str
    train: object
    validation: object
    test: object
    num_classes: int
    class_names: list
    image_shape: tuple
    source_shape: tuple
    num_examples: dict = field(default_factory=dict)
    embedded: bool = False
    preprocess: Callable = None
    training_stream: Callable = None
    _raw: dict = field(default_factory=dict, repr=False)

    def arrays(self, split="test", limit=None, shuffle_seed=None):
        """``(images, labels)`` of a split as preprocessed numpy arrays, in dataset order
        (or drawn from a 10,000-example shuffle buffer when ``shuffle_seed`` is given)."""
        if split not in self._raw:
            check_choice(split, sorted(self._raw), "split")
        ds = self._raw[split]
        if shuffle_seed is not None:
            ds = ds.shuffle(10_000, seed=shuffle_seed)
        if limit is not None:
            ds = ds.take(int(limit))
        images, labels = [], []
        for x, y in ds.batch(1024).map(lambda x, y: (self.preprocess(x), y)):
            images.append(x.numpy())
            labels.append(y.numpy())
        if not images:
            raise KerasdlError(f"split {split!r} of {self.name} is empty", argument="split")
        return np.concatenate(images), np.concatenate(labels)

    def describe(self):
        """How the dataset's images become model input, in words."""
        (sh, sw, sc), (h, w, c) = self.source_shape, self.image_shape
        steps = []
        if sc != c:
            steps.append(f"converted to {'grey' if c == 1 else 'RGB'}")
        if (sh, sw) != (h, w):
            if sh <= h and sw <= w:
                steps.append(f"padded with black around the centre from {sh}x{sw} to {h}x{w}")
            else:
                steps.append(f"resized (bilinear) from {sh}x{sw} to {h}x{w}")
        how = "; ".join(steps) if steps else "used as they are"
        return f"{sh}x{sw}x{sc} uint8 images {how}; pixel values 0-255 as float32"


def _preprocessor(image_shape):
    import tensorflow as tf

    height, width, channels = image_shape

    def preprocess(images):
        x = tf.cast(images, tf.float32)
        if x.shape.rank == 3:
            x = x[None]
            squeeze = True
        else:
            squeeze = False
        src_c = x.shape[-1]
        if src_c == 1 and channels == 3:
            x = tf.image.grayscale_to_rgb(x)
        elif src_c == 3 and channels == 1:
            x = tf.image.rgb_to_grayscale(x)
        h, w = x.shape[1], x.shape[2]
        if (h, w) != (height, width):
            if h <= height and w <= width:
                # Pad with black, centred: MNIST 28x28 -> LeNet's 32x32.
                x = tf.image.resize_with_crop_or_pad(x, height, width)
            else:
                x = tf.image.resize(x, (height, width), method="bilinear")
        return x[0] if squeeze else x

    return preprocess


def _tfds_splits(name, data_dir, download, validation_fraction, max_examples):
    """Raw (uint8 image, int label) datasets per split and the dataset's metadata."""
    import tensorflow_datasets as tfds

    directory, origin = resolve_data_dir(data_dir)
    builder = tfds_builder(name, directory)
    if not builder.is_prepared():
        why = None
        if download is False:
            why = "downloads are turned off"
        elif offline_forced():
            why = "KERASDL_OFFLINE is set"
        elif not network_available():
            why = (
                f"the network is unreachable (no connection to {PROBE_HOST[0]} within "
                "a few seconds)"
            )
        if why:
            raise DataNotFoundError(
                f"Dataset {name!r} is not prepared in {builder.data_dir} (data directory "
                f"from {origin}) and {why}. Point TFDS_DATA_DIR or --data-dir at a folder "
                f"holding a TFDS-prepared copy ({builder.name}/{builder.version}/), or run "
                "once with network access so that TFDS can download it."
            )
        print(f"Downloading and preparing {name!r} with TFDS into {directory} ...", flush=True)
        builder.download_and_prepare()

    features = builder.info.features
    keys = builder.info.supervised_keys
    ok = (
        keys is not None
        and len(keys) == 2
        and isinstance(features[keys[0]], tfds.features.Image)
        and isinstance(features[keys[1]], tfds.features.ClassLabel)
    )
    if not ok:
        raise KerasdlError(
            f"Dataset {name!r} is not an image-classification dataset: it needs an image "
            f"feature and a class label as its supervised keys (it has {keys}).",
            argument="dataset",
        )
    image_shape = tuple(features[keys[0]].shape)
    if None in image_shape:
        raise KerasdlError(
            f"Dataset {name!r} has images of varying size {image_shape}; kerasdl's image "
            "pipeline needs a fixed image shape.",
            argument="dataset",
        )
    splits = {s: info.num_examples for s, info in builder.info.splits.items()}
    plan = _plan_splits(splits, validation_fraction)
    raw, counts = {}, {}
    for split, (base, lo, hi) in plan.items():
        if max_examples is not None:
            hi = min(hi, lo + int(max_examples))
        raw[split] = builder.as_dataset(split=f"{base}[{lo}:{hi}]", as_supervised=True)
        counts[split] = hi - lo
    label = features[keys[1]]
    meta = {
        "num_classes": label.num_classes,
        "class_names": list(label.names),
        "image_shape": image_shape,
        "source": f"TFDS {builder.name}:{builder.version} from {builder.data_dir}",
    }
    return raw, counts, meta


def _plan_splits(splits, validation_fraction):
    """``{train|validation|test: (tfds split, start, stop)}`` from the dataset's splits,
    carving validation (and test if missing) off the end of the training split."""
    if "train" not in splits:
        raise KerasdlError(f"the dataset has no 'train' split (it has {sorted(splits)})",
                           argument="dataset")
    n = splits["train"]
    plan = {}
    end = n
    if "test" in splits:
        plan["test"] = ("test", 0, splits["test"])
    elif "validation" in splits:
        plan["test"] = ("validation", 0, splits["validation"])
    else:
        cut = n - max(1, round(0.1 * n))
        plan["test"] = ("train", cut, n)
        end = cut
    if "validation" in splits and "test" in splits:
        plan["validation"] = ("validation", 0, splits["validation"])
    elif validation_fraction:
        cut = end - max(1, round(validation_fraction * n))
        plan["validation"] = ("train", cut, end)
        end = cut
    plan["train"] = ("train", 0, end)
    return plan


def _digits_splits(max_examples):
    import tensorflow as tf

    arrays = digits.load_digits_arrays()
    raw, counts = {}, {}
    for split, (x, y) in arrays.items():
        if max_examples is not None:
            x, y = x[:max_examples], y[:max_examples]
        raw[split] = tf.data.Dataset.from_tensor_slices((x, y))
        counts[split] = len(y)
    meta = {
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "image_shape": (28, 28, 1),
        "source": digits.DESCRIPTION,
    }
    return raw, counts, meta


def load_image_classification(
    name,
    *,
    image_size=None,
    channels=None,
    batch_size=128,
    validation_fraction=0.1,
    augment=None,
    data_dir=None,
    download=None,
    max_examples=None,
    shuffle_buffer=60_000,
    seed=0,
    deterministic=False,
):
    """Load a TFDS image-classification dataset, a folder of images, or the embedded
    ``"digits"``, as raw pixel values (float32 in [0, 255]).

    Args:
        name: TFDS name such as ``"mnist"``, ``"fashion_mnist:3.0.1"``, ``"cifar10"``;
            ``"digits"`` for the embedded scikit-learn digits; or the path of a folder
            with one subfolder of images per class (or with ``train/`` and ``test/``
            subfolders laid out so), read with ``keras.utils.image_dataset_from_directory``.
        image_size: ``(height, width)`` the model expects. Smaller images are padded
            with black around the centre (MNIST 28x28 -> 32x32); larger ones are resized.
            None keeps the dataset's size (required for a folder: its images vary).
        channels: 1 or 3 to convert grey <-> RGB; None keeps the dataset's channels.
        batch_size: examples per batch.
        validation_fraction: share of the training split held out for validation when
            the dataset has no validation split of its own (0 for none).
        augment: optional callable ``(images, labels) -> (images, labels)`` applied to
            each *training* batch (the augmentation hook).
        data_dir: TFDS data directory; default ``TFDS_DATA_DIR``, else TFDS's default.
        download: False forbids downloading; None downloads when the dataset is not
            prepared and the network answers.
        max_examples: keep at most this many examples per split (smoke runs).
        shuffle_buffer: training shuffle buffer.
        seed: seed of the shuffle and the augmentation.
        deterministic: augment batches in order (with parallel calls, a hook drawing from
            a shared random stream would draw in thread order).

    ``ImageData.training_stream(first_epoch=0)`` is the training split as one endless,
    resumable stream of epochs (``kerasdl.train`` fits on it with ``steps_per_epoch``):
    every batch's order and augmentation is a function of the seed and the batch's
    position, so a run resumed at ``first_epoch`` sees what an uninterrupted run would.
    """
    import tensorflow as tf

    from kerasdl.data.folders import folder_splits, looks_like_path
    from kerasdl.seeds import mix_seed, seed_generators

    if not isinstance(name, str) or not name:
        raise KerasdlError(f"dataset must be a dataset name or folder path, got {name!r}",
                           argument="dataset")
    check_positive_int(batch_size, "batch_size")
    check_fraction(validation_fraction, "validation_fraction")
    check_positive_int(max_examples, "max_examples", allow_none=True)
    if channels is not None:
        check_choice(channels, (1, 3), "channels")
    if image_size is not None and (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(d, int) and d > 0 for d in image_size)
    ):
        raise KerasdlError(f"image_size must be (height, width) positive ints, got {image_size!r}",
                           argument="image_size")
    if augment is not None and not callable(augment):
        raise InvalidArgumentError(
            "augment must be a callable (images, labels) -> (images, labels)", argument="augment")

    embedded = name.lower() == digits.NAME
    if embedded:
        raw, counts, meta = _digits_splits(max_examples)
    elif looks_like_path(name):
        if image_size is None:
            raise KerasdlError("image_size is required for a folder of images",
                               argument="image_size")
        raw, counts, meta = folder_splits(
            name, image_size=tuple(image_size), channels=channels or 3,
            validation_fraction=validation_fraction, test_fraction=FOLDER_TEST_FRACTION,
            max_examples=max_examples, seed=seed,
        )
    else:
        raw, counts, meta = _tfds_splits(
            name, data_dir, download, validation_fraction, max_examples
        )
    src_h, src_w, src_c = meta["image_shape"]
    height, width = image_size or (src_h, src_w)
    if src_c not in (1, 3):
        raise KerasdlError(f"Dataset {name!r} has {src_c}-channel images; kerasdl handles 1 or 3",
                           argument="dataset")
    target_shape = (height, width, channels or src_c)
    preprocess = _preprocessor(target_shape)

    autotune = tf.data.AUTOTUNE

    streams = seed_generators(augment) if augment is not None else []
    # In-order augmentation when asked: a random stream shared by parallel calls is
    # drawn in whatever order the threads run.
    augment_calls = None if deterministic else autotune

    def batches(ds, training, count):
        # Filtered sources (image folders) lose their length; Keras needs it for progress
        # bars and warns at each epoch's end without it.
        ds = ds.apply(tf.data.experimental.assert_cardinality(count)).cache()
        if training:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(
            lambda x, y: (preprocess(x), y), num_parallel_calls=autotune
        )

    def pipeline(ds, training, count):
        ds = batches(ds, training, count)
        if training and augment is not None:
            # A hook with apply_to_dataset attaches a seed to each batch before the
            # parallel map, so its augmentation does not depend on thread scheduling.
            apply = getattr(augment, "apply_to_dataset", None)
            if apply is not None:
                ds = apply(ds, num_parallel_calls=augment_calls)
            else:
                ds = ds.map(augment, num_parallel_calls=augment_calls)
        return ds.prefetch(autotune)

    def training_stream(first_epoch=0):
        # One endless stream over the epochs, each reshuffled: with fixed seeds its
        # order is the same in every process, and each batch's augmentation is drawn
        # from (seed, its index in the stream). Skipping the batches of the epochs
        # already trained (shuffled but not augmented) resumes it exactly.
        steps = -(-counts["train"] // batch_size)
        ds = batches(raw["train"], True, counts["train"]).repeat().enumerate()
        if first_epoch:
            ds = ds.skip(int(first_epoch) * steps)
        if augment is None:
            return ds.map(lambda i, b: b).prefetch(autotune)
        if hasattr(augment, "augment_batch"):  # takes each batch's seed explicitly
            return ds.map(
                lambda i, b: augment.augment_batch(b[0], b[1], mix_seed(seed, i)),
                num_parallel_calls=augment_calls).prefetch(autotune)
        if deterministic and streams:
            def reseeded(i, batch):
                for k, stream in enumerate(streams):
                    stream.state.assign(tf.stack([
                        tf.cast(mix_seed(seed, i, k), stream.state.dtype),
                        tf.constant(0, stream.state.dtype)]))
                return augment(*batch)

            return ds.map(reseeded).prefetch(autotune)
        return ds.map(lambda i, b: augment(*b), num_parallel_calls=augment_calls).prefetch(
            autotune)

    return ImageData(
        name=name,
        source=meta["source"],
        train=pipeline(raw["train"], True, counts["train"]),
        validation=(pipeline(raw["validation"], False, counts["validation"])
                    if "validation" in raw else None),
        test=pipeline(raw["test"], False, counts["test"]),
        num_classes=meta["num_classes"],
        class_names=meta["class_names"],
        image_shape=target_shape,
        source_shape=tuple(meta["image_shape"]),
        num_examples=counts,
        embedded=embedded,
        preprocess=preprocess,
        training_stream=training_stream,
        _raw=raw,
    )
