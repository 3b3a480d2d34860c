"""Run albumentations pipelines inside ``tf.data``.

albumentations works on one numpy image at a time, so the bridge calls it through
``tf.numpy_function`` and then restores what TensorFlow loses on the way: static shapes
and dtypes. Two entry points:

* :class:`AlbumentationsAugmentation`: a batch hook ``(images, labels) -> (images,
  labels)`` for :func:`kerasdl.data.load_image_classification` (and the recipes' presets).
* :func:`augment_dataset`: maps an *unbatched* dataset whose elements are an image, an
  ``(image, label, ...)`` tuple, or a dict ``{"image", "mask", "bboxes", "bbox_labels",
  ...}``; the mask and the boxes move with their image.

Formats. Images are ``[h, w, c]`` (batches ``[b, h, w, c]``) of any real dtype; raw
float pixels in [0, 255] are rounded to uint8 for albumentations (``as_uint8=True``, the
default: CLAHE and JPEG compression need uint8, and most transforms are tuned for it) and
come back in the input dtype. ``as_uint8=False`` passes float32 in [0, 1] instead.
Masks are ``[h, w]`` or ``[h, w, k]`` of any dtype (moved with nearest-neighbour
sampling, values kept). Boxes are float32 ``[n, 4]`` in ``bbox_format`` (default
``"pascal_voc"``: pixels ``[x_min, y_min, x_max, y_max]``, x along the width) with one
label each in ``"bbox_labels"`` ``[n]``; boxes that leave the image are clipped, and
dropped with their labels when less than ``min_visibility`` of them is left, so the
output has shape ``[None, 4]``. The key is ``bbox_labels``, not ``labels``, so that a
class label can travel alongside untouched.

Seeds: see :mod:`kerasdl.augment.seeding`. Element ``i`` of a batch with seed ``s`` runs
with ``numpy.random.default_rng([s, hook seed, i])`` (and a ``random.Random`` drawn from it) set as
the pipeline's random state, on a per-thread copy of the pipeline, so parallel calls
neither share nor race for random state. :func:`augment_dataset` seeds each element the
same way from a ``Dataset.random`` stream zipped in before the parallel map.
"""

from __future__ import annotations

import copy
import random
import threading

import numpy as np

from kerasdl.augment.albu import BOX_FORMATS, compose, import_albumentations
from kerasdl.augment.seeding import SeededAugmentation, _check_seed
from kerasdl.errors import KerasdlError

__all__ = ["AlbumentationsAugmentation", "augment_dataset"]

_UINT64 = (1 << 64) - 1


def _as_compose(transform, bbox_format=None, min_visibility=0.0):
    """Our own Compose around ``transform`` (names, specs, a transform or a Compose),
    so that the box parameters and label key are the bridge's."""
    A = import_albumentations()
    if isinstance(transform, A.Compose):
        if bbox_format is None and not transform.processors:
            return transform
        return compose(list(transform.transforms), p=transform.p, bbox_format=bbox_format,
                       min_visibility=min_visibility)
    return compose(transform, bbox_format=bbox_format, min_visibility=min_visibility)


def _flatten(transform):
    children = getattr(transform, "transforms", None)
    if children is None:
        return [transform]
    return [leaf for child in children for leaf in _flatten(child)]


def _infer_size(compose_, size):
    """The (height, width) a pipeline produces: the last crop/resize size it names."""
    for t in _flatten(compose_):
        named = getattr(t, "size", None)
        if (isinstance(named, (tuple, list)) and len(named) == 2
                and all(isinstance(d, int) for d in named)):
            size = tuple(named)
        elif isinstance(getattr(t, "height", None), int) and isinstance(
                getattr(t, "width", None), int):
            size = (t.height, t.width)
    return size


def _check_size(output_size):
    if output_size is None:
        return None
    if (not isinstance(output_size, (tuple, list)) or len(output_size) != 2
            or not all(isinstance(d, int) and d > 0 for d in output_size)):
        raise KerasdlError(f"output_size must be (height, width) positive ints, got "
                           f"{output_size!r}", argument="output_size")
    return tuple(output_size)


class _Runner:
    """Applies one pipeline to numpy arrays with explicit seeds, thread-safely."""

    def __init__(self, compose_, as_uint8, expected_size):
        self.compose = compose_
        self.as_uint8 = as_uint8
        self.expected_size = expected_size
        self.has_boxes = bool(compose_.processors.get("bboxes"))
        self._local = threading.local()

    def _pipeline(self):
        mine = getattr(self._local, "pipeline", None)
        if mine is None:
            mine = self._local.pipeline = copy.deepcopy(self.compose)
        return mine

    def __call__(self, entropy, image, mask=None, bboxes=None, bbox_labels=None):
        pipeline = self._pipeline()
        rng = np.random.default_rng(entropy)
        pipeline.set_random_state(rng, random.Random(int(rng.integers(1 << 62))))
        dtype = image.dtype
        if dtype == np.uint8:
            x = image
        elif self.as_uint8:
            x = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        else:
            x = (image.astype(np.float32) / 255.0).clip(0.0, 1.0)
        data = {"image": np.ascontiguousarray(x)}
        if mask is not None:
            data["mask"] = mask if mask.dtype in (np.uint8, np.float32) else mask.astype(
                np.float32)
        if self.has_boxes:
            data["bboxes"] = (np.zeros((0, 4), np.float32) if bboxes is None
                              else bboxes.reshape(-1, 4).astype(np.float32))
            data["bbox_labels"] = (np.zeros((0,), np.int64) if bbox_labels is None
                                   else bbox_labels)
        out = pipeline(**data)
        y = out["image"]
        if y.ndim == 2:
            y = y[..., None]
        if self.expected_size is not None and tuple(y.shape[:2]) != self.expected_size:
            raise ValueError(
                f"the albumentations pipeline made a {y.shape[0]}x{y.shape[1]} image where "
                f"{self.expected_size[0]}x{self.expected_size[1]} was expected; pass "
                "output_size=(height, width)")
        if dtype != np.uint8 and not self.as_uint8 and y.dtype != np.uint8:
            y = y.astype(np.float32) * 255.0
        results = [_restore(y, dtype)]
        if mask is not None:
            results.append(_restore(np.asarray(out["mask"]), mask.dtype))
        if bboxes is not None:
            results.append(np.asarray(out["bboxes"]).astype(bboxes.dtype).reshape(-1, 4))
            results.append(np.asarray(out["bbox_labels"]).astype(bbox_labels.dtype).reshape(-1))
        return results


def _restore(array, dtype):
    if np.dtype(dtype).kind in "iub" and array.dtype.kind == "f":
        array = np.rint(array)
    return array.astype(dtype)


def _entropy(seed, index, base=0):
    return [int(seed) & _UINT64, int(base) & _UINT64, int(index)]


class AlbumentationsAugmentation(SeededAugmentation):
    """Batch hook ``(images, labels) -> (images, labels)`` running an albumentations
    pipeline on every image of a batch, each with its own seed.

    Args:
        transform: names, ``(name, params)`` pairs, a transform or a Compose
            (see :func:`kerasdl.augment.compose`).
        seed: base seed (see :mod:`kerasdl.augment.seeding`).
        output_size: ``(height, width)`` the pipeline produces; default: the size its
            last crop or resize names, else the input's.
        as_uint8: round float pixels to uint8 for albumentations (see the module notes).
    """

    def __init__(self, transform, seed=0, output_size=None, as_uint8=True, name=None):
        super().__init__(_check_seed(seed), name or "albumentations")
        self.compose = _as_compose(transform)
        self.output_size = _check_size(output_size)
        self.as_uint8 = bool(as_uint8)

    def augment_batch(self, images, labels, seed):
        import tensorflow as tf

        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise KerasdlError(f"images must be a batch [b, h, w, c], got shape {images.shape}",
                               argument="images")
        size = self.output_size or _infer_size(self.compose, tuple(images.shape[1:3]))
        known = None if None in size else tuple(size)
        runner = _Runner(self.compose, self.as_uint8, known)

        def run(batch, batch_seed):
            out = [runner(_entropy(batch_seed, i, self.seed), image)[0]
                   for i, image in enumerate(batch)]
            if not out:
                return np.zeros((0, *(known or batch.shape[1:3]), batch.shape[3]), batch.dtype)
            return np.stack(out)

        out = tf.numpy_function(run, [images, tf.cast(seed, tf.int64)], images.dtype,
                                stateful=False)
        out.set_shape([images.shape[0], *size, images.shape[3]])
        return out, labels


def augment_dataset(dataset, transform, *, seed=0, num_parallel_calls=None,
                    bbox_format="pascal_voc", min_visibility=0.0, output_size=None,
                    as_uint8=True):
    """Apply an albumentations pipeline to each element of an unbatched dataset.

    Elements may be an image ``[h, w, c]``, a tuple ``(image, *others)`` (the others pass
    through), or a dict with ``"image"`` and optionally ``"mask"``, ``"bboxes"`` (with
    ``"bbox_labels"``) and any other keys (passed through). Formats and seeding are in
    the module notes; each epoch draws new augmentations, the same ones for the same
    ``seed``, whatever ``num_parallel_calls``.
    """
    import tensorflow as tf

    _check_seed(seed)
    if bbox_format not in BOX_FORMATS:
        raise KerasdlError(f"bbox_format must be one of {', '.join(BOX_FORMATS)}; got "
                           f"{bbox_format!r}", argument="bbox_format")
    spec = dataset.element_spec
    if isinstance(spec, dict):
        if "image" not in spec:
            raise KerasdlError(f"dict elements need an 'image' key; they have {sorted(spec)}",
                               argument="dataset")
        if ("bboxes" in spec) != ("bbox_labels" in spec):
            raise KerasdlError("dict elements need 'bboxes' and 'bbox_labels' together",
                               argument="dataset")
        keys = [k for k in ("image", "mask", "bboxes", "bbox_labels") if k in spec]
    else:
        keys = ["image"]
    image_spec = spec["image"] if isinstance(spec, dict) else (
        spec[0] if isinstance(spec, tuple) else spec)
    if image_spec.shape.rank != 3:
        raise KerasdlError(f"images must be [height, width, channels] (an unbatched dataset), "
                           f"got shape {image_spec.shape}", argument="dataset")
    with_boxes = "bboxes" in keys
    pipeline = _as_compose(transform, bbox_format if with_boxes else None, min_visibility)
    size = _check_size(output_size) or _infer_size(pipeline, tuple(image_spec.shape[:2]))
    known = None if None in size else tuple(size)
    runner = _Runner(pipeline, bool(as_uint8), known)

    def run(element_seed, *arrays):
        named = dict(zip(keys, arrays))
        return runner(_entropy(element_seed, 0), **named)

    def apply(element, element_seed):
        if isinstance(spec, dict):
            values = element
        elif isinstance(spec, tuple):
            values = {"image": element[0]}
        else:
            values = {"image": element}
        inputs = [values[k] for k in keys]
        outputs = tf.numpy_function(run, [element_seed, *inputs],
                                    [t.dtype for t in inputs], stateful=False)
        results = {}
        for key, tensor, original in zip(keys, outputs, inputs):
            if key in ("image", "mask"):
                tensor.set_shape([*size, *original.shape[2:]])
            elif key == "bboxes":
                tensor.set_shape([None, 4])
            else:
                tensor.set_shape([None])
            results[key] = tensor
        if isinstance(spec, dict):
            return {**element, **results}
        if isinstance(spec, tuple):
            return (results["image"], *element[1:])
        return results["image"]

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        apply, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE)
