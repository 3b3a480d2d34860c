"""Test-time augmentation: average a classifier's predictions over fixed views.

Krizhevsky et al. (2012) averaged the softmax over ten crops and their mirror images;
here the views are deterministic transforms of the whole image.
"""

from __future__ import annotations

import re

import numpy as np

from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = ["tta_predict", "apply_view", "VIEWS", "REDUCTIONS"]

VIEWS = ("identity", "hflip", "vflip", "rot180", "shift(dy,dx)")
REDUCTIONS = ("mean", "max", "gmean")
_SHIFT = re.compile(r"^shift\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)$")


def _shift(images, dy, dx, fill_value):
    out = np.full_like(images, fill_value)
    h, w = images.shape[1:3]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[:, dst_y, dst_x] = images[:, src_y, src_x]
    return out


def apply_view(images, view, fill_value=0.0):
    """One deterministic view of a batch ``[n, h, w, c]``: ``"identity"``, ``"hflip"``
    (mirror left-right), ``"vflip"``, ``"rot180"``, ``"shift(dy,dx)"`` (content moves
    ``dy`` pixels down and ``dx`` right, uncovered pixels ``fill_value``) or a callable
    ``images -> images`` of the same shape."""
    if callable(view):
        out = np.asarray(view(images))
        if out.shape != images.shape:
            raise KerasdlError(f"a view callable must keep the shape {images.shape}, got "
                               f"{out.shape}", argument="transforms")
        return out
    if view == "identity":
        return images
    if view == "hflip":
        return images[:, :, ::-1]
    if view == "vflip":
        return images[:, ::-1]
    if view == "rot180":
        return images[:, ::-1, ::-1]
    match = _SHIFT.match(view) if isinstance(view, str) else None
    if match:
        return _shift(images, int(match.group(1)), int(match.group(2)), fill_value)
    raise KerasdlError(f"each view must be one of {', '.join(VIEWS)} (e.g. 'shift(2,0)') or a "
                       f"callable, got {view!r}", argument="transforms")


def _softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _predict(model, x, batch_size):
    if hasattr(model, "predict"):
        out = model.predict(x, batch_size=batch_size, verbose=0)
    else:
        out = model(x)
    if isinstance(out, dict):
        if "predictions" not in out:
            raise KerasdlError(f"the model has several outputs ({sorted(out)}) and none is "
                               "named 'predictions'", argument="model")
        out = out["predictions"]
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2:
        raise KerasdlError(f"the model must output [n, classes], got shape {out.shape}",
                           argument="model")
    return out


def tta_predict(model, images, transforms=("identity", "hflip"), reduce="mean", *,
                from_logits=True, batch_size=256, fill_value=0.0):
    """Class probabilities ``[n, classes]`` averaged over views of ``images``.

    Args:
        model: a Keras model (or any callable) mapping ``[n, h, w, c]`` to ``[n, classes]``.
        images: raw pixels ``[n, h, w, c]`` as the model takes them.
        transforms: views, see :func:`apply_view`.
        reduce: ``"mean"`` of the probabilities; ``"max"`` per class, renormalised;
            ``"gmean"``: geometric mean (the mean of log-probabilities), renormalised.
        from_logits: kerasdl classifiers output logits (True, the default: a softmax
            turns each view's output into probabilities); False for models that end in a
            softmax, whose rows must then already sum to 1.
        fill_value: what shifts uncover (0: black for raw pixels).
    """
    check_choice(reduce, REDUCTIONS, "reduce")
    check_positive_int(batch_size, "batch_size")
    if not isinstance(from_logits, bool):
        raise KerasdlError(f"from_logits must be True or False, got {from_logits!r}",
                           argument="from_logits")
    if isinstance(transforms, str) or callable(transforms):
        transforms = [transforms]
    if not isinstance(transforms, (list, tuple)) or not transforms:
        raise KerasdlError(f"transforms must be a non-empty list of views ({', '.join(VIEWS)} "
                           f"or callables), got {transforms!r}", argument="transforms")
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise KerasdlError(f"images must be a non-empty batch [n, height, width, channels], "
                           f"got shape {images.shape}", argument="images")
    views = []
    for view in transforms:
        out = _predict(model, apply_view(images, view, fill_value), batch_size)
        if from_logits:
            probs = _softmax(out)
        else:
            if (out < -1e-6).any() or not np.allclose(out.sum(-1), 1.0, atol=1e-3):
                raise KerasdlError("the model's outputs are not probabilities (rows must be "
                                   ">= 0 and sum to 1); pass from_logits=True for logits",
                                   argument="from_logits")
            probs = np.clip(out, 0.0, 1.0)
        views.append(probs)
    stacked = np.stack(views)
    if reduce == "mean":
        result = stacked.mean(0)
    elif reduce == "max":
        result = stacked.max(0)
        result = result / result.sum(-1, keepdims=True)
    else:
        result = np.exp(np.log(np.maximum(stacked, 1e-12)).mean(0))
        result = result / result.sum(-1, keepdims=True)
    return result.astype(np.float32)
