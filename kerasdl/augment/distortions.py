"""Elastic and affine distortions of digit images, in-graph and seeded.

Simard, Steinkraus & Platt (2003), "Best practices for convolutional neural networks
applied to visual document analysis", Sec. 2: draw a displacement field with every
component uniform in [-1, 1], smooth it with a Gaussian of standard deviation ``sigma``,
scale it by ``alpha`` and resample the image at the displaced positions with bilinear
interpolation. For MNIST they used sigma = 4 and alpha = 34. Both are in *pixels* of the
image being distorted, so they fit digits about 20 px tall (MNIST's 28x28 images, or
LeNet's 32x32 canvas with the same digits padded); scale both with the size of the
strokes for other resolutions.

LeCun et al. (1998), "Gradient-based learning applied to document recognition", Sec. III-C,
trained on MNIST distorted by random planar affine maps: translations, scaling, squeezing
(one axis compressed while the other stretches) and horizontal shearing. Simard et al.
write such maps as displacement fields too; here the affine map and the elastic field are
summed into one field so that each image is interpolated once.

Everything here is TensorFlow ops on batches, so it runs inside ``tf.data`` under any Keras
backend; :class:`RandomDistortion` is the Keras layer form (TensorFlow backend).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerasdl.errors import KerasdlError

__all__ = ["distort", "gaussian_kernel", "smoothing_matrix", "RandomDistortion", "SIMARD_ELASTIC", "DIGIT_DISTORTION",
           "DIGIT_DISTORTION_MILD", "PRESET_DISTORTIONS"]

# Simard et al. (2003), MNIST.
SIMARD_ELASTIC = {"alpha": 34.0, "sigma": 4.0}
# The "digits" preset: Simard's elastic field plus LeCun-style affine maps kept small
# enough that a 1 still reads as a 1 and a 6 is not turned into a 9.
DIGIT_DISTORTION = {
    "alpha": 34.0,
    "sigma": 4.0,
    "rotation": 8.0,      # degrees, either way
    "scale": 0.08,        # each axis independently, so it also squeezes
    "shear": 0.15,        # horizontal shear x += shear * y
    "translation": 2.0,   # pixels, either way
}
# The "digits_mild" preset, the LeNet-5 recipe's: the same with a weaker elastic field.
# LeNet-5 trained 20 epochs on all 60,000 digits reached 0.58% mean test error over seeds
# 0-4 with alpha 20, against 0.74% and 0.70% on seeds 0-1 with Simard's 34: the small
# network underfits the full field (benchmarks/results/README.md).
DIGIT_DISTORTION_MILD = {**DIGIT_DISTORTION, "alpha": 20.0}
# The parameters each distortion preset reads when its data pipeline is built.
PRESET_DISTORTIONS = {"digits": DIGIT_DISTORTION, "digits_mild": DIGIT_DISTORTION_MILD,
                      "elastic": SIMARD_ELASTIC}


def gaussian_kernel(sigma):
    """Normalised 1-D Gaussian taps out to three standard deviations."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def _check_params(alpha, sigma, rotation, scale, shear, translation):
    for name, value in (("alpha", alpha), ("rotation", rotation), ("scale", scale),
                        ("shear", shear), ("translation", translation)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise KerasdlError(f"{name} must be a number >= 0, got {value!r}", argument=name)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or sigma <= 0:
        raise KerasdlError(f"sigma must be a number > 0, got {sigma!r}", argument="sigma")
    if scale >= 1:
        raise KerasdlError(f"scale must be below 1 (a relative change), got {scale!r}",
                           argument="scale")


def smoothing_matrix(size, sigma):
    """``[size, size]`` float32 tensor ``G`` with ``G @ v`` equal to convolving ``v`` with
    :func:`gaussian_kernel` under zero padding ("same" size): one matmul per axis is
    several times cheaper on a CPU than a 25-tap depthwise convolution. ``size`` may be a
    scalar tensor (an image size known only when the graph runs)."""
    import tensorflow as tf

    taps = tf.constant(gaussian_kernel(sigma))
    radius = int(taps.shape[0]) // 2
    index = tf.range(size)
    offset = index[None, :] - index[:, None]
    band = tf.gather(taps, tf.clip_by_value(offset + radius, 0, 2 * radius))
    return tf.where(tf.abs(offset) <= radius, band, 0.0)


def _bilinear(images, src_y, src_x, fill_value):
    """Sample ``images`` [b, h, w, c] at float positions [b, h, w]; outside is ``fill``."""
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    channels = images.shape[-1]
    # A border of fill pixels (one before, two after) makes every neighbour index valid
    # once positions are clipped to [-1, size]: a neighbour beyond it gets weight 0.
    fill = tf.cast(fill_value, images.dtype)
    padded = tf.pad(images, [[0, 0], [1, 2], [1, 2], [0, 0]], constant_values=fill)
    flat = tf.reshape(padded, [-1, channels])
    row = w + 3
    src_y = tf.clip_by_value(src_y, -1.0, tf.cast(h, src_y.dtype))
    src_x = tf.clip_by_value(src_x, -1.0, tf.cast(w, src_x.dtype))
    y0f, x0f = tf.floor(src_y), tf.floor(src_x)
    wy, wx = (src_y - y0f)[..., None], (src_x - x0f)[..., None]
    top = (tf.reshape(tf.range(b) * (h + 3) * row, [-1, 1, 1])
           + (tf.cast(y0f, tf.int32) + 1) * row + tf.cast(x0f, tf.int32) + 1)
    top_left, bottom_left = tf.gather(flat, top), tf.gather(flat, top + row)
    upper = top_left + wx * (tf.gather(flat, top + 1) - top_left)
    lower = bottom_left + wx * (tf.gather(flat, top + row + 1) - bottom_left)
    return upper + wy * (lower - upper)


def distort(images, seed, *, alpha=0.0, sigma=4.0, rotation=0.0, scale=0.0, shear=0.0,
            translation=0.0, fill_value=0.0):
    """Distort a batch ``[b, h, w, c]`` (or one image ``[h, w, c]``) with random affine
    maps and an elastic field, a different draw per image.

    Args:
        seed: a stateless seed, shape ``[2]`` integers; the same seed gives the same output.
        alpha, sigma: elastic field scale and smoothing in pixels (0 alpha: none);
            Simard et al. used 34 and 4 on MNIST.
        rotation: largest rotation in degrees; scale: largest relative change of each
            axis; shear: largest horizontal shear; translation: largest shift in pixels.
            Each is drawn uniformly from ``[-limit, limit]``, about the image centre.
        fill_value: value sampled from outside the image (0: black for raw pixels).

    Returns the images with the input's dtype and static shape.
    """
    import tensorflow as tf

    _check_params(alpha, sigma, rotation, scale, shear, translation)
    x = tf.convert_to_tensor(images)
    static_shape = x.shape
    if x.shape.rank == 3:
        x = x[None]
    elif x.shape.rank != 4:
        raise KerasdlError(f"images must be [batch, height, width, channels] or one image, "
                           f"got shape {x.shape}", argument="images")
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    affine_seed, elastic_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))

    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
    # Positions relative to the centre, as a column [1, h, 1] and a row [1, 1, w]:
    # broadcasting builds the [b, h, w] maps in one pass each.
    v = tf.reshape(tf.range(hf) - cy, [1, -1, 1])
    u = tf.reshape(tf.range(wf) - cx, [1, 1, -1])
    if rotation or scale or shear or translation:
        draws = tf.random.stateless_uniform([6, b, 1, 1], affine_seed, -1.0, 1.0)
        angle = draws[0] * (rotation * math.pi / 180.0)
        sx, sy = 1.0 + scale * draws[1], 1.0 + scale * draws[2]
        k = shear * draws[3]
        tx, ty = translation * draws[4], translation * draws[5]
        # Content moves by M = R(angle) . Shear(k) . diag(sx, sy) about the centre, then by
        # (tx, ty); each output pixel samples the input at the inverse map of its position.
        cos, sin = tf.cos(angle), tf.sin(angle)
        m00, m01 = cos * sx, (cos * k - sin) * sy
        m10, m11 = sin * sx, (sin * k + cos) * sy
        det = m00 * m11 - m01 * m10
        u, v = u - tx, v - ty
        src_x = (m11 / det) * u - (m01 / det) * v + cx
        src_y = (m00 / det) * v - (m10 / det) * u + cy
    else:
        src_x = tf.broadcast_to(u + cx, [b, h, w])
        src_y = tf.broadcast_to(v + cy, [b, h, w])

    if alpha:
        field = tf.random.stateless_uniform([b, h, w, 2], elastic_seed, -1.0, 1.0)
        # Separable smoothing of both components; zero padding lets the field fade out
        # at the borders instead of echoing the noise back in.
        g_y = float(alpha) * smoothing_matrix(h, float(sigma))
        field = tf.einsum("yk,bkxc,zx->byzc", g_y, field, smoothing_matrix(w, float(sigma)))
        src_y = src_y + field[..., 0]
        src_x = src_x + field[..., 1]

    out = _bilinear(x, src_y, src_x, fill_value)
    if dtype.is_integer:
        out = tf.clip_by_value(tf.round(out), dtype.min, dtype.max)
    out = tf.cast(out, dtype)
    if static_shape.rank == 3:
        out = out[0]
    out.set_shape(static_shape)
    return out


@keras.saving.register_keras_serializable(package="kerasdl")
class RandomDistortion(keras.layers.Layer):
    """Random affine (LeCun et al. 1998) plus elastic (Simard et al. 2003) distortion of
    each image in a batch, during training only. See :func:`distort` for the arguments.

    Uses TensorFlow ops, so it runs in ``tf.data`` and in models on the TensorFlow backend.
    """

    def __init__(self, alpha=0.0, sigma=4.0, rotation=0.0, scale=0.0, shear=0.0,
                 translation=0.0, fill_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_params(alpha, sigma, rotation, scale, shear, translation)
        self.params = {"alpha": float(alpha), "sigma": float(sigma),
                       "rotation": float(rotation), "scale": float(scale),
                       "shear": float(shear), "translation": float(translation),
                       "fill_value": float(fill_value)}
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, inputs, training=True):
        if not training:
            return inputs
        seed = keras.random.randint((2,), 0, 2**31 - 1, dtype="int32",
                                    seed=self.seed_generator)
        return distort(inputs, seed, **self.params)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.params, "seed": self.seed}
