"""albumentations transforms by name, with the course's (albumentations 1.x) names.

albumentations 2.0 renamed or merged several transforms that the augmentation chapter
uses. :data:`ALIASES` records what each old name becomes; :func:`albumentation` and
:func:`compose` accept old and current names alike. albumentations is imported only
when a transform is built.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
from dataclasses import dataclass, field
from typing import Mapping

from kerasdl.errors import KerasdlError

__all__ = ["ALIASES", "COURSE_TRANSFORMS", "Alias", "albumentation", "compose",
           "albumentations_names", "import_albumentations"]

# The transforms of the augmentation chapter, in the course's spelling.
COURSE_TRANSFORMS = (
    "RGBShift", "HueSaturationValue", "ChannelShuffle", "CLAHE", "RandomContrast",
    "RandomGamma", "RandomBrightness", "Blur", "MedianBlur", "ToGray", "JpegCompression",
    "RandomCrop", "RandomResizedCrop", "HorizontalFlip", "VerticalFlip", "Rotate",
    "RandomRotate90", "InvertImg",
)


@dataclass(frozen=True)
class Alias:
    """An old or informal transform name: the albumentations 2.0 class it maps to, the
    parameters that give it the old meaning (``defaults``; explicit ones win) and old
    parameter names mapped to new ones (``renamed``)."""

    target: str
    defaults: Mapping = field(default_factory=dict)
    renamed: Mapping = field(default_factory=dict)
    note: str = ""


ALIASES = {
    "RandomContrast": Alias(
        "RandomBrightnessContrast", {"brightness_limit": 0.0}, {"limit": "contrast_limit"},
        "merged into RandomBrightnessContrast in 1.0; brightness held at 0"),
    "RandomBrightness": Alias(
        "RandomBrightnessContrast", {"contrast_limit": 0.0}, {"limit": "brightness_limit"},
        "merged into RandomBrightnessContrast in 1.0; contrast held at 0"),
    "JpegCompression": Alias(
        "ImageCompression", {"compression_type": "jpeg"}, {},
        "ImageCompression with JPEG; quality_lower/quality_upper become quality_range"),
    "Cutout": Alias(
        "CoarseDropout", {}, {},
        "CoarseDropout; num_holes/max_h_size/max_w_size become exact ranges"),
    "ColorInversion": Alias("InvertImg", note="colour inversion (255 - x)"),
    "Invert": Alias("InvertImg", note="colour inversion (255 - x)"),
    "InvertImage": Alias("InvertImg", note="colour inversion (255 - x)"),
    "Grayscale": Alias("ToGray", note="grey in all three channels"),
}

# albumentations 1.x parameter names that 2.0 renamed across many transforms.
_LEGACY_PARAMS = {"value": "fill", "mask_value": "fill_mask", "fill_value": "fill",
                  "cval": "fill", "cval_mask": "fill_mask"}


def import_albumentations():
    """Import albumentations without its network check for a newer version (on import,
    with a timeout, unless ``NO_ALBUMENTATIONS_UPDATE`` is set; an explicit setting wins)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def albumentations_names():
    """Names of albumentations' image transform classes (current names only)."""
    return list(_albumentations_names())


@functools.lru_cache(maxsize=1)
def _albumentations_names():
    A = import_albumentations()
    return tuple(sorted(
        name for name in dir(A)
        if not name.startswith("_")
        and isinstance(getattr(A, name), type)
        and issubclass(getattr(A, name), A.BasicTransform)
        and not inspect.isabstract(getattr(A, name))
        and name not in ("BasicTransform", "DualTransform", "ImageOnlyTransform",
                         "Transform3D")
    ))


def _unknown(name):
    valid = sorted(set(albumentations_names()) | set(ALIASES))
    close = difflib.get_close_matches(str(name), valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise KerasdlError(
        f"name must be an albumentations transform or one of the course's names{hint}; got "
        f"{name!r}. Course names: {', '.join(COURSE_TRANSFORMS)}. Aliases: "
        + ", ".join(f"{k} -> {v.target}" for k, v in ALIASES.items())
        + f". All valid names: {', '.join(valid)}",
        argument="name",
    )


def _convert_legacy(target, params, signature):
    params = dict(params)
    for old, new in _LEGACY_PARAMS.items():
        if old in params and old not in signature and new in signature:
            params[new] = params.pop(old)
    if target == "ImageCompression" and ("quality_lower" in params or "quality_upper" in params):
        params["quality_range"] = (params.pop("quality_lower", 99),
                                   params.pop("quality_upper", 100))
    if target == "CoarseDropout":
        if "num_holes" in params:
            n = params.pop("num_holes")
            params["num_holes_range"] = (n, n)
        if "max_h_size" in params:
            h = params.pop("max_h_size")
            params["hole_height_range"] = (h, h)
        if "max_w_size" in params:
            w = params.pop("max_w_size")
            params["hole_width_range"] = (w, w)
    return params


def albumentation(name, **params):
    """An albumentations transform from its current or course name, e.g.
    ``albumentation("RandomContrast", limit=0.3, p=1)`` gives
    ``RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.3, p=1)``.

    Bad names raise :class:`KerasdlError` listing the valid ones; bad parameters raise it
    with albumentations' reason.
    """
    A = import_albumentations()
    if not isinstance(name, str):
        raise KerasdlError(f"name must be a transform name (str), got {name!r}", argument="name")
    alias = ALIASES.get(name)
    target = alias.target if alias else name
    if target not in _albumentations_names():
        _unknown(name)
    cls = getattr(A, target)
    signature = set(inspect.signature(cls).parameters)
    if alias:
        renamed = {alias.renamed.get(k, k): v for k, v in params.items()}
        params = {**alias.defaults, **renamed}
    params = _convert_legacy(target, params, signature)
    unknown = sorted(set(params) - signature)
    if unknown:
        raise KerasdlError(
            f"{name} ({target}) takes no parameter {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(signature))}", argument="params")
    try:
        return cls(**params)
    except Exception as error:  # pydantic validation errors and the like
        raise KerasdlError(f"bad parameters for {name} ({target}): {error}",
                           argument="params") from error


def _transform_from_spec(spec, argument):
    A = import_albumentations()
    if isinstance(spec, (A.BasicTransform, A.BaseCompose)):
        return spec
    if isinstance(spec, str):
        return albumentation(spec)
    if (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], Mapping)):
        return albumentation(spec[0], **spec[1])
    raise KerasdlError(
        f"each transform must be a name, a (name, params) pair or an albumentations "
        f"transform, got {spec!r}", argument=argument)


BOX_FORMATS = ("pascal_voc", "albumentations", "coco", "yolo")


def compose(transforms, *, p=1.0, bbox_format=None, min_visibility=0.0):
    """``albumentations.Compose`` from names, ``(name, params)`` pairs or transforms.

    With ``bbox_format`` (one of :data:`BOX_FORMATS`; kerasdl's bridge uses
    ``"pascal_voc"``: pixel ``[x_min, y_min, x_max, y_max]``) the Compose also moves
    boxes, with their labels under the key ``"bbox_labels"``; boxes left with less than
    ``min_visibility`` of their area are dropped.
    """
    A = import_albumentations()
    if isinstance(transforms, (str, A.BasicTransform)) or not isinstance(
            transforms, (list, tuple)):
        transforms = [transforms]
    items = [_transform_from_spec(spec, "transforms") for spec in transforms]
    bbox_params = None
    if bbox_format is not None:
        if bbox_format not in BOX_FORMATS:
            raise KerasdlError(f"bbox_format must be one of {', '.join(BOX_FORMATS)}; got "
                               f"{bbox_format!r}", argument="bbox_format")
        bbox_params = A.BboxParams(format=bbox_format, label_fields=["bbox_labels"],
                                   min_visibility=float(min_visibility), clip=True,
                                   filter_invalid_bboxes=True)
    return A.Compose(items, p=p, bbox_params=bbox_params)
