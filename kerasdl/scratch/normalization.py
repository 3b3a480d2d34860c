"""Batch, layer, instance and group normalisation in numpy, equal to the Keras layers.

All four compute ``y = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta`` and differ only
in which values share one ``mu, sigma^2`` (channels-last ``x`` of shape ``(N, ..., C)``):

==============  ===============================================  =====================
layer           statistics over                                  Keras
==============  ===============================================  =====================
BatchNorm       the batch and all positions, per channel         ``BatchNormalization``
LayerNorm       the features of one example (``axis``)           ``LayerNormalization``
InstanceNorm    the positions of one example, per channel        ``GroupNormalization(
                                                                 groups=C)``
GroupNorm       the positions and the ``C / G`` channels of one  ``GroupNormalization``
                group, per example
==============  ===============================================  =====================

References: Ioffe & Szegedy 2015 (batch), Ba et al. 2016 (layer), Ulyanov et al. 2016
(instance), Wu & He 2018 (group; ``G = 1`` is layer norm over ``(..., C)``, ``G = C``
is instance norm).

``gamma`` and ``beta`` are learned vectors with one entry per feature (per channel; for
LayerNorm the shape of the normalised axes), not scalars: in training mode feature ``j``
of the output has mean ``beta_j`` and variance ``gamma_j^2 sigma_j^2 / (sigma_j^2 +
eps)``, i.e. ``gamma_j^2`` up to epsilon, so the layer can undo the normalisation where
that helps.

Keras conventions followed (``keras/src/layers/normalization/*.py``, Keras 3.15):

* the variance is the biased one (divide by the count, ``tf.nn.moments``), both for
  normalising and for BatchNorm's moving variance (PyTorch stores the unbiased one);
* ``eps`` is added to the variance inside the square root; default ``1e-3`` in all four;
* BatchNorm's moving statistics start at mean 0, variance 1 and follow
  ``moving = moving * momentum + batch * (1 - momentum)``, momentum 0.99 by default
  (PyTorch's ``momentum`` is the weight of the batch, ``1 - `` this one);
* BatchNorm uses the batch statistics when called with ``training=True`` and the moving
  ones otherwise; the other three ignore ``training``.
"""

from __future__ import annotations

import numpy as np

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int

__all__ = ["BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"]


def _check_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise KerasdlError(f"epsilon must be a positive number, got {epsilon!r}",
                           argument="epsilon")
    return float(epsilon)


def _param(value, shape, default, name):
    if value is None:
        return np.full(shape, default, dtype=np.float64)
    arr = np.array(value, dtype=np.float64)
    if arr.shape != shape:
        raise KerasdlError(f"{name} must have shape {shape} (one value per feature), "
                           f"got shape {arr.shape}", argument=name)
    return arr


def _check_input(x, min_ndim=2):
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise KerasdlError("x must be an array of numbers", argument="x") from None
    if x.ndim < min_ndim:
        raise KerasdlError(f"x must have at least {min_ndim} dimensions (batch first), "
                           f"got shape {x.shape}", argument="x")
    return x


def _positive_axis(axis, ndim, argument="axis"):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise KerasdlError(f"{argument} must be an integer in [{-ndim}, {ndim - 1}] for an "
                           f"input of {ndim} dimensions, got {axis!r}", argument=argument)
    return int(axis) % ndim


class BatchNorm:
    """Batch normalisation (Ioffe & Szegedy 2015), equal to
    ``keras.layers.BatchNormalization(axis, momentum, epsilon)``.

    ``num_features``: the size of ``axis`` (channels); ``gamma``/``beta``: vectors of that
    length (default ones/zeros). ``moving_mean``/``moving_variance`` are updated by every
    ``training=True`` call. :meth:`backward` returns the gradients for the last call.
    """

    def __init__(self, num_features, axis=-1, momentum=0.99, epsilon=1e-3,
                 gamma=None, beta=None):
        self.num_features = check_positive_int(num_features, "num_features")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise KerasdlError(f"axis must be an integer (the feature axis), got {axis!r}",
                               argument="axis")
        self.axis = int(axis)
        self.momentum = check_fraction(momentum, "momentum", high=1.0, high_inclusive=True)
        self.epsilon = _check_epsilon(epsilon)
        shape = (self.num_features,)
        self.gamma = _param(gamma, shape, 1.0, "gamma")
        self.beta = _param(beta, shape, 0.0, "beta")
        self.moving_mean = np.zeros(shape)
        self.moving_variance = np.ones(shape)
        self._cache = None

    def _axes(self, x):
        axis = _positive_axis(self.axis, x.ndim)
        if axis == 0:
            raise KerasdlError("axis must not be the batch axis 0: batch normalisation "
                               "averages over the batch", argument="axis")
        if x.shape[axis] != self.num_features:
            raise KerasdlError(f"x has {x.shape[axis]} features on axis {self.axis}, "
                               f"this layer was made for num_features={self.num_features}",
                               argument="x")
        reduce = tuple(a for a in range(x.ndim) if a != axis)
        bshape = [1] * x.ndim
        bshape[axis] = self.num_features
        return reduce, tuple(bshape)

    def __call__(self, x, training=False):
        x = _check_input(x)
        reduce, bshape = self._axes(x)
        if training:
            mean = x.mean(axis=reduce)
            var = x.var(axis=reduce)  # biased (ddof=0), as tf.nn.moments
            # The moving statistics are for inference and see the biased batch variance
            # too; with the default momentum they need ~1/(1-0.99) = 100 batches to
            # forget their initial 0 / 1.
            m = self.momentum
            self.moving_mean = self.moving_mean * m + mean * (1.0 - m)
            self.moving_variance = self.moving_variance * m + var * (1.0 - m)
        else:
            mean, var = self.moving_mean, self.moving_variance
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        x_hat = (x - mean.reshape(bshape)) * inv_std.reshape(bshape)
        self._cache = (x_hat, inv_std, reduce, bshape, bool(training))
        return self.gamma.reshape(bshape) * x_hat + self.beta.reshape(bshape)

    def backward(self, dy):
        """Gradients ``(dx, dgamma, dbeta)`` of a loss given ``dy = dL/dy`` for the last call.

        ``dgamma = sum(dy * x_hat)`` and ``dbeta = sum(dy)`` over the batch (and
        positions). In training mode ``mu`` and ``sigma`` depend on every example, which
        adds two terms to ``dx`` (Ioffe & Szegedy 2015, section 3)::

            g = dy * gamma
            dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(sigma^2 + eps)

        (means over the ``m`` values sharing a statistic): the gradient is projected off
        the directions that shift or rescale a feature, which the normalisation undoes
        anyway. In inference mode the statistics are constants and ``dx = g /
        sqrt(moving_variance + eps)``.
        """
        if self._cache is None:
            raise KerasdlError("backward needs a forward call first", argument="dy")
        x_hat, inv_std, reduce, bshape, training = self._cache
        dy = np.asarray(dy, dtype=np.float64)
        if dy.shape != x_hat.shape:
            raise KerasdlError(f"dy must have the output's shape {x_hat.shape}, got {dy.shape}",
                               argument="dy")
        dgamma = (dy * x_hat).sum(axis=reduce)
        dbeta = dy.sum(axis=reduce)
        g = dy * self.gamma.reshape(bshape)
        if training:
            g = (g - g.mean(axis=reduce, keepdims=True)
                 - x_hat * (g * x_hat).mean(axis=reduce, keepdims=True))
        return g * inv_std.reshape(bshape), dgamma, dbeta


class LayerNorm:
    """Layer normalisation (Ba et al. 2016), equal to
    ``keras.layers.LayerNormalization(axis, epsilon)``.

    Each example is normalised over ``axis`` (an int or a tuple of ints, never the batch
    axis 0); ``normalized_shape`` is the size of those axes and the shape of ``gamma`` and
    ``beta``, as in Keras (``axis=-1``: one value per feature). The result does not
    depend on the other examples, so training and inference agree.
    """

    def __init__(self, normalized_shape, axis=-1, epsilon=1e-3, gamma=None, beta=None):
        if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
            normalized_shape = (normalized_shape,)
        try:
            shape = tuple(normalized_shape)
        except TypeError:
            shape = ()
        if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                            for d in shape):
            raise KerasdlError("normalized_shape must be a positive integer or a tuple of them "
                               f"(the sizes of the normalised axes), got {normalized_shape!r}",
                               argument="normalized_shape")
        axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) \
            else tuple(axis) if isinstance(axis, (tuple, list)) else None
        if not axes or len(axes) != len(shape):
            raise KerasdlError(f"axis must be an int or a tuple of {len(shape)} ints, one per "
                               f"entry of normalized_shape, got {axis!r}", argument="axis")
        self.normalized_shape = tuple(int(d) for d in shape)
        self.axis = axes
        self.epsilon = _check_epsilon(epsilon)
        self.gamma = _param(gamma, self.normalized_shape, 1.0, "gamma")
        self.beta = _param(beta, self.normalized_shape, 0.0, "beta")

    def __call__(self, x, training=False):
        x = _check_input(x)
        axes = [_positive_axis(a, x.ndim) for a in self.axis]
        if 0 in axes or len(set(axes)) != len(axes):
            raise KerasdlError(f"axis must name distinct non-batch axes, got {self.axis!r}",
                               argument="axis")
        # Keras sorts the axes and gives gamma their sizes in that order.
        order = np.argsort(axes)
        axes = [axes[i] for i in order]
        expected = tuple(self.normalized_shape[i] for i in order)
        if tuple(x.shape[a] for a in axes) != expected:
            raise KerasdlError(f"x has sizes {tuple(x.shape[a] for a in axes)} on axis "
                               f"{self.axis}, this layer was made for normalized_shape="
                               f"{self.normalized_shape}", argument="x")
        bshape = [1] * x.ndim
        for a in axes:
            bshape[a] = x.shape[a]
        gamma = np.transpose(self.gamma, order).reshape(bshape)
        beta = np.transpose(self.beta, order).reshape(bshape)
        mean = x.mean(axis=tuple(axes), keepdims=True)
        var = x.var(axis=tuple(axes), keepdims=True)
        return gamma * (x - mean) / np.sqrt(var + self.epsilon) + beta


class GroupNorm:
    """Group normalisation (Wu & He 2018), equal to
    ``keras.layers.GroupNormalization(groups, axis, epsilon)``.

    The ``channels`` of ``axis`` are split into ``groups`` consecutive groups of
    ``channels / groups``; each example is normalised per group over its channels and
    all positions. ``gamma``/``beta`` have one value per channel. ``training`` is ignored.
    """

    def __init__(self, channels, groups, axis=-1, epsilon=1e-3, gamma=None, beta=None):
        self.channels = check_positive_int(channels, "channels")
        check_positive_int(groups, "groups")
        if groups > channels or channels % groups:
            raise KerasdlError(f"groups must divide channels={channels} (1 is layer norm, "
                               f"{channels} instance norm), got groups={groups}",
                               argument="groups")
        self.groups = groups
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise KerasdlError(f"axis must be an integer (the channel axis), got {axis!r}",
                               argument="axis")
        self.axis = int(axis)
        self.epsilon = _check_epsilon(epsilon)
        self.gamma = _param(gamma, (self.channels,), 1.0, "gamma")
        self.beta = _param(beta, (self.channels,), 0.0, "beta")

    def _check(self, x):
        x = _check_input(x)
        axis = _positive_axis(self.axis, x.ndim)
        if axis == 0:
            raise KerasdlError("axis must not be the batch axis 0", argument="axis")
        if x.shape[axis] != self.channels:
            raise KerasdlError(f"x has {x.shape[axis]} channels on axis {self.axis}, this "
                               f"layer was made for channels={self.channels}", argument="x")
        return x, axis

    def __call__(self, x, training=False):
        x, axis = self._check(x)
        # Split the channel axis into (groups, channels per group), then reduce over
        # everything but the batch and the group index.
        grouped_shape = x.shape[:axis] + (self.groups, self.channels // self.groups) \
            + x.shape[axis + 1:]
        xg = x.reshape(grouped_shape)
        reduce = tuple(a for a in range(1, xg.ndim) if a != axis)
        mean = xg.mean(axis=reduce, keepdims=True)
        var = xg.var(axis=reduce, keepdims=True)
        x_hat = ((xg - mean) / np.sqrt(var + self.epsilon)).reshape(x.shape)
        bshape = [1] * x.ndim
        bshape[axis] = self.channels
        return self.gamma.reshape(bshape) * x_hat + self.beta.reshape(bshape)


class InstanceNorm(GroupNorm):
    """Instance normalisation (Ulyanov et al. 2016): each channel of each example
    normalised over its positions, i.e. ``GroupNorm(groups=channels)``, equal to
    ``keras.layers.GroupNormalization(groups=channels)`` (or ``groups=-1``).

    Needs at least one position axis besides batch and channels: on ``(N, C)`` every
    statistic would cover a single value and the output would be ``beta``.
    """

    def __init__(self, channels, axis=-1, epsilon=1e-3, gamma=None, beta=None):
        super().__init__(channels, check_positive_int(channels, "channels"), axis=axis,
                         epsilon=epsilon, gamma=gamma, beta=beta)

    def __call__(self, x, training=False):
        x = _check_input(x)
        if x.ndim < 3:
            raise KerasdlError("x must have a position axis, e.g. (batch, length, channels) "
                               f"or (batch, height, width, channels), got shape {x.shape}",
                               argument="x")
        return super().__call__(x, training)
