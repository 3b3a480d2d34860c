"""A grid of original images next to augmented views of them."""

from __future__ import annotations

import numpy as np

from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["plot_augmentations", "augmented_views"]


def _as_hook(augment, image_shape, seed):
    """``(view_index) -> fn(images) -> images`` for the kinds of augmentation we accept."""
    import keras

    from kerasdl.augment.presets import _is_albumentations, make_augmentation
    from kerasdl.augment.seeding import SeededAugmentation

    if isinstance(augment, (str, list, tuple)) or _is_albumentations(augment):
        augment = make_augmentation(augment, image_shape, seed=seed)
        if augment is None:
            return lambda v: (lambda x: x)
    if isinstance(augment, SeededAugmentation):
        # Explicit seeds: view v is the same for the same seed, whatever came before.
        return lambda v: (lambda x: augment.augment_batch(x, None, seed + v)[0])
    if isinstance(augment, keras.layers.Layer):
        return lambda v: (lambda x: augment(x, training=True))
    if callable(augment):
        return lambda v: (lambda x: augment(x, np.zeros(len(x), "int64"))[0])
    raise KerasdlError("augment must be a preset name, a list of transforms, an "
                       "albumentations transform, a Keras layer or a hook "
                       f"(images, labels) -> (images, labels); got {augment!r}",
                       argument="augment")


def augmented_views(images, augment, n_views=4, seed=0):
    """``[n_views, n, h, w, c]`` float32 augmented copies of ``images`` (raw pixels)."""
    import keras

    check_positive_int(n_views, "n_views")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise KerasdlError(f"images must be [n, height, width(, channels)], got shape "
                           f"{images.shape}", argument="images")
    hook = _as_hook(augment, images.shape[1:3], seed)
    return np.stack([
        np.asarray(keras.ops.convert_to_numpy(hook(v)(images)), np.float32)
        for v in range(n_views)
    ])


def plot_augmentations(images, augment, n_views=4, seed=0, *, titles=None, size=1.6):
    """A matplotlib ``Figure``: one row per image, the original first, then ``n_views``
    augmented views. ``augment`` is a preset name, a list of Keras-layer transforms, an
    albumentations transform, a Keras layer or an ``(images, labels)`` hook; ``images``
    are raw pixels in [0, 255]. ``titles`` labels the rows (e.g. class names)."""
    from matplotlib.figure import Figure

    views = augmented_views(images, augment, n_views, seed)
    originals = np.asarray(images, dtype=np.float32)
    if originals.ndim == 3:
        originals = originals[..., None]
    if titles is not None and len(titles) != len(originals):
        raise KerasdlError(f"titles must have one entry per image ({len(originals)}), got "
                           f"{len(titles)}", argument="titles")
    rows, cols = len(originals), n_views + 1
    fig = Figure(figsize=(size * cols, size * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            image = originals[r] if c == 0 else views[c - 1, r]
            ax = axes[r, c]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(np.clip(image, 0, 255).astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("original" if c == 0 else f"view {c}", fontsize=8)
        if titles is not None:
            axes[r, 0].set_ylabel(str(titles[r]), fontsize=8)
    fig.tight_layout()
    return fig
