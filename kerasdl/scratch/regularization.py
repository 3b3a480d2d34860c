"""Regularisation and compression written out: dropout and weight penalties in numpy,
DropConnect as a Keras layer, magnitude pruning with its sparsity schedule, and the
gradient-clipping rules of Keras' optimizers in numpy.

Each piece is checked against the Keras one a learner uses afterwards (see
``tests/test_scratch_regularization.py``):

- :func:`dropout` / :func:`dropout_backward`: inverted dropout (Srivastava et al. 2014,
  "Dropout: A Simple Way to Prevent Neural Networks from Overfitting"), the rule of
  ``keras.layers.Dropout``;
- :func:`l1_penalty` / :func:`l2_penalty`: the values of ``keras.regularizers.L1`` and
  ``L2`` with their gradients;
- :class:`DropConnect`: Wan et al. 2013, "Regularization of Neural Networks using
  DropConnect" (ICML);
- :func:`magnitude_prune`, :func:`polynomial_sparsity`, :class:`MagnitudePruning` and
  :func:`compressed_size`: Han et al. 2015, "Learning both Weights and Connections for
  Efficient Neural Networks", pruned gradually as in Zhu & Gupta 2017, "To prune, or not
  to prune";
- :func:`clip_by_value`, :func:`clip_by_norm`, :func:`clip_by_global_norm`: what an
  optimizer built with ``clipvalue``, ``clipnorm`` or ``global_clipnorm`` does to the
  gradients (:func:`kerasdl.callbacks.gradient_clipping` gives those arguments).

Gaussian noise and early stopping are Keras' own: ``keras.layers.GaussianNoise`` and
:func:`kerasdl.callbacks.early_stopping` (``EarlyStopping(restore_best_weights=True)``).
"""

from __future__ import annotations

import math
import zlib

import keras
import numpy as np
from keras import ops

from kerasdl.errors import (
    KerasdlError,
    check_choice,
    check_fraction,
    check_positive_int,
)

__all__ = [
    "dropout",
    "dropout_backward",
    "l1_penalty",
    "l2_penalty",
    "DropConnect",
    "magnitude_prune",
    "zero_fraction",
    "polynomial_sparsity",
    "MagnitudePruning",
    "compressed_size",
    "clip_by_value",
    "clip_by_norm",
    "clip_by_global_norm",
]


def _non_negative(value, argument):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0):
        raise KerasdlError(f"{argument} must be a number >= 0, got {value!r}",
                           argument=argument)
    return float(value)


def _positive(value, argument):
    if _non_negative(value, argument) == 0:
        raise KerasdlError(f"{argument} must be a positive number, got {value!r}",
                           argument=argument)
    return float(value)


def _arrays(values, argument):
    """``(list of float arrays, whether a single array was given)``."""
    if isinstance(values, (list, tuple)):
        if not values:
            raise KerasdlError(f"{argument} must not be empty", argument=argument)
        return [np.asarray(v) for v in values], False
    if isinstance(values, (np.ndarray, np.generic, int, float)) and not isinstance(values, bool):
        return [np.asarray(values)], True
    raise KerasdlError(f"{argument} must be an array or a list of arrays, got "
                       f"{type(values).__name__}", argument=argument)


def _like_input(arrays, single):
    return arrays[0] if single else arrays


# ------------------------------------------------------------------- dropout and penalties


def dropout(x, rate, rng=None):
    """Inverted dropout (Srivastava et al. 2014, with the scaling moved from test to
    training time): each entry of ``x`` is kept with probability ``1 - rate`` and the
    kept ones are multiplied by ``1 / (1 - rate)``, so the expected output equals ``x``
    and inference uses the network unchanged.

    Args:
        x: an array.
        rate: the probability of dropping an entry, in ``[0, 1)``.
        rng: a ``numpy.random.Generator``, an int seed or None.

    Returns:
        ``(output, scale)``: ``output = x * scale`` where ``scale`` is ``0`` for dropped
        entries and ``1 / (1 - rate)`` for kept ones; pass ``scale`` to
        :func:`dropout_backward`.
    """
    rate = check_fraction(rate, "rate")
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(rng)
    keep = rng.random(x.shape) >= rate
    scale = keep / (1.0 - rate)
    return x * scale, scale


def dropout_backward(upstream, scale):
    """The gradient of :func:`dropout` with respect to its input: the mask is a constant
    of the forward pass, so the upstream gradient is masked and scaled the same way."""
    return np.asarray(upstream) * scale


def l1_penalty(weights, l1=0.01):
    """``(l1 * sum(|w|), l1 * sign(w))``: the value ``keras.regularizers.L1(l1)`` adds to
    the loss and its gradient (the subgradient 0 at ``w = 0``). It pushes every weight
    towards zero by the same amount, so small weights reach exactly zero."""
    l1 = _non_negative(l1, "l1")
    w = np.asarray(weights, dtype=float)
    return l1 * float(np.sum(np.abs(w))), l1 * np.sign(w)


def l2_penalty(weights, l2=0.01):
    """``(l2 * sum(w^2), 2 * l2 * w)``: the value ``keras.regularizers.L2(l2)`` adds to
    the loss (Keras has no factor 1/2) and its gradient. With plain SGD at learning rate
    ``lr`` this is weight decay by ``2 * lr * l2`` per step."""
    l2 = _non_negative(l2, "l2")
    w = np.asarray(weights, dtype=float)
    return l2 * float(np.sum(np.square(w))), 2.0 * l2 * w


# ------------------------------------------------------------------------------ DropConnect


@keras.saving.register_keras_serializable(package="kerasdl")
class DropConnect(keras.layers.Dense):
    """A ``Dense`` layer whose kernel entries are dropped during training (Wan et al.
    2013, "Regularization of Neural Networks using DropConnect"): dropout on the
    connections rather than on the activations.

    Training: each kernel entry is zeroed with probability ``rate`` and the kept ones are
    scaled by ``1 / (1 - rate)`` (inverted, as :func:`dropout`), so the expected kernel is
    the stored one. One mask is drawn per call and shared by the examples of the batch;
    the paper draws one per example, which costs ``batch x inputs x units`` memory. The
    bias is not dropped.

    Inference (``inference``):

    - ``"mean"`` (default): the stored kernel, i.e. exactly ``Dense`` (the mean network,
      as for dropout). Exact for the pre-activation, approximate after a nonlinearity.
    - ``"gaussian"``: the paper's moment matching at inference: the pre-activation ``u`` of
      a unit is approximately Gaussian with mean ``x W + b`` and variance
      ``rate / (1 - rate) * x^2 W^2`` (the variance of the inverted Bernoulli mask times
      the squared terms); the output is the activation averaged over ``samples`` draws
      of ``u``, so predictions are random.

    Args:
        units: output units, as ``keras.layers.Dense``.
        rate: probability of dropping a kernel entry, in ``[0, 1)``.
        inference: ``"mean"`` or ``"gaussian"``.
        samples: draws of ``u`` averaged by ``"gaussian"`` inference.
        seed: seed of the layer's ``keras.random.SeedGenerator``.
        **kwargs: any other ``keras.layers.Dense`` argument.
    """

    def __init__(self, units, rate=0.5, inference="mean", samples=100, seed=None,
                 **kwargs):
        super().__init__(units, **kwargs)
        self.rate = check_fraction(rate, "rate")
        self.inference = check_choice(inference, ("mean", "gaussian"), "inference")
        self.samples = check_positive_int(samples, "samples")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def dropped_kernel(self):
        """The kernel with a fresh mask applied, as one training call uses it."""
        kernel = ops.convert_to_tensor(self.kernel)
        if self.rate == 0:
            return kernel
        keep = keras.random.uniform(ops.shape(kernel), seed=self.seed_generator) >= self.rate
        return ops.where(keep, kernel / (1.0 - self.rate), ops.zeros_like(kernel))

    def _linear(self, inputs, kernel):
        x = ops.matmul(inputs, kernel)
        return x if self.bias is None else ops.add(x, self.bias)

    def _activate(self, x):
        return x if self.activation is None else self.activation(x)

    def call(self, inputs, training=None):
        if training and self.rate > 0:
            return self._activate(self._linear(inputs, self.dropped_kernel()))
        if self.inference == "gaussian" and self.rate > 0:
            mean = self._linear(inputs, self.kernel)
            variance = (self.rate / (1.0 - self.rate)) * ops.matmul(
                ops.square(inputs), ops.square(self.kernel))
            noise = keras.random.normal((self.samples, *ops.shape(mean)),
                                        dtype=self.compute_dtype, seed=self.seed_generator)
            u = ops.expand_dims(mean, 0) + ops.expand_dims(ops.sqrt(variance), 0) * noise
            return ops.mean(self._activate(u), axis=0)
        return self._activate(self._linear(inputs, self.kernel))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "inference": self.inference,
                "samples": self.samples, "seed": self.seed}


# ------------------------------------------------------------------------- magnitude pruning


def magnitude_prune(weights, sparsity, scope="layer"):
    """Zero the weights of smallest magnitude (Han et al. 2015).

    ``round(sparsity * n)`` weights are zeroed, exactly (ties broken by position), where
    ``n`` counts each array (``scope="layer"``: every layer reaches the same sparsity,
    as Zhu & Gupta 2017 prune) or all of them together (``scope="global"``: one
    threshold for all, so layers whose weights are smaller lose more). Weights already at
    zero are the first to go, so pruning again at a higher sparsity keeps the old mask.

    Args:
        weights: an array or a list of arrays.
        sparsity: the fraction to zero, in ``[0, 1]``.
        scope: ``"layer"`` or ``"global"``.

    Returns:
        ``(pruned, masks)``, each shaped like ``weights``; a mask is True where the
        weight is kept.
    """
    arrays, single = _arrays(weights, "weights")
    sparsity = check_fraction(sparsity, "sparsity", high_inclusive=True)
    check_choice(scope, ("layer", "global"), "scope")
    groups = [[a] for a in arrays] if scope == "layer" else [arrays]
    masks = []
    for group in groups:
        magnitudes = np.concatenate([np.abs(a).ravel() for a in group])
        count = int(round(sparsity * magnitudes.size))
        keep = np.ones(magnitudes.size, dtype=bool)
        keep[np.argsort(magnitudes, kind="stable")[:count]] = False
        offsets = np.cumsum([0] + [a.size for a in group])
        masks += [keep[lo:hi].reshape(a.shape)
                  for a, lo, hi in zip(group, offsets[:-1], offsets[1:])]
    pruned = [np.where(m, a, np.zeros_like(a)) for a, m in zip(arrays, masks)]
    return _like_input(pruned, single), _like_input(masks, single)


def zero_fraction(weights):
    """The fraction of entries that are exactly zero, over an array or a list of them."""
    arrays, _ = _arrays(weights, "weights")
    return sum(int(np.count_nonzero(a == 0)) for a in arrays) / sum(a.size for a in arrays)


def _check_schedule(begin, end, initial, final, power,
                    names=("begin", "end", "initial", "final")):
    """The schedule's arguments, checked; ``names`` are the caller's spellings."""
    b, e, i, f = names
    if not (isinstance(begin, int) and not isinstance(begin, bool) and begin >= 0):
        raise KerasdlError(f"{b} must be an integer step >= 0, got {begin!r}", argument=b)
    if not (isinstance(end, int) and not isinstance(end, bool) and end > begin):
        raise KerasdlError(f"{e} must be an integer step after {b}={begin}, got {end!r}",
                           argument=e)
    final = check_fraction(final, f)
    initial = check_fraction(initial, i)
    if initial > final:
        raise KerasdlError(f"{i} must not exceed {f}={final}, got {initial!r}", argument=i)
    return initial, final, _positive(power, "power")


def polynomial_sparsity(step, begin, end, initial=0.0, final=0.9, power=3):
    """The gradual pruning schedule of Zhu & Gupta 2017 (eq. 1):

    ``s(t) = final + (initial - final) * (1 - (t - begin) / (end - begin)) ** power``

    for ``begin <= t <= end``; ``initial`` before ``begin`` and ``final`` after ``end``.
    With ``power=3`` the sparsity rises fast while the network has many redundant
    weights, then slowly as fewer remain.
    """
    initial, final, power = _check_schedule(begin, end, initial, final, power)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise KerasdlError(f"step must be an integer, got {step!r}", argument="step")
    progress = min(max((int(step) - begin) / (end - begin), 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** power


class MagnitudePruning(keras.callbacks.Callback):
    """Prunes a model's kernels while it trains (Han et al. 2015; schedule of Zhu & Gupta
    2017, :func:`polynomial_sparsity`).

    Every ``frequency`` optimizer steps from ``begin_step`` until ``end_step`` (and at
    ``end_step`` itself) the kernels are pruned by :func:`magnitude_prune` to the
    scheduled sparsity. After every batch the latest mask is applied again, because the
    optimizer moves pruned weights off zero; so a pruned weight is zero in every forward
    pass and the model ends training at exactly ``final_sparsity``. (With
    ``steps_per_execution > 1`` Keras calls back once per execution.)

    Kernels are the trainable variables whose name ends in ``kernel`` (``kernel``,
    ``depthwise_kernel``, ``pointwise_kernel``, ``recurrent_kernel``); biases and
    normalisation parameters, a small share of the weights, are left whole, as in the
    papers.

    Attributes:
        history: ``(step, sparsity)`` of each pruning.
    """

    def __init__(self, final_sparsity, end_step, begin_step=0, initial_sparsity=0.0,
                 power=3, frequency=100, scope="layer"):
        super().__init__()
        self.initial_sparsity, self.final_sparsity, self.power = _check_schedule(
            begin_step, end_step, initial_sparsity, final_sparsity, power,
            names=("begin_step", "end_step", "initial_sparsity", "final_sparsity"))
        self.begin_step, self.end_step = begin_step, end_step
        self.frequency = check_positive_int(frequency, "frequency")
        self.scope = check_choice(scope, ("layer", "global"), "scope")
        self.history = []
        self._kernels = None
        self._masks = None

    def sparsity_at(self, step):
        return polynomial_sparsity(step, self.begin_step, self.end_step,
                                   self.initial_sparsity, self.final_sparsity, self.power)

    def _due(self, step):
        if step < self.begin_step:
            return False
        if not self.history:
            return True
        last = self.history[-1][0]
        return last < self.end_step and (step - last >= self.frequency
                                         or step >= self.end_step)

    def on_train_begin(self, logs=None):
        self._kernels = [v for v in self.model.trainable_variables
                         if v.name.endswith("kernel")]
        if not self._kernels:
            raise KerasdlError(f"model {self.model.name!r} has no kernel to prune",
                               argument="model")

    def on_train_batch_end(self, batch, logs=None):
        # Under JAX, reading ``self.model`` syncs the trainer's state into the variables
        # (Keras' ``Callback.model``), and the next step reads them back, masked.
        model = self.model
        step = int(ops.convert_to_numpy(model.optimizer.iterations))
        if self._due(step):
            sparsity = self.sparsity_at(step)
            values = [ops.convert_to_numpy(v) for v in self._kernels]
            _, masks = magnitude_prune(values, sparsity, scope=self.scope)
            self._masks = [ops.convert_to_tensor(m, dtype=v.dtype)
                           for m, v in zip(masks, self._kernels)]
            self.history.append((step, sparsity))
        if self._masks is not None:
            for variable, mask in zip(self._kernels, self._masks):
                variable.assign(ops.multiply(variable.value, mask))


def compressed_size(model_or_weights, level=9):
    """Bytes of the weights, as stored (e.g. float32), after zlib (DEFLATE, gzip's
    algorithm) compression: a proxy for the storage a pruned model saves. Han et al.
    store pruned layers sparsely (relative indices, then quantised and Huffman-coded);
    a general-purpose compressor already finds the runs of zeros.

    Args:
        model_or_weights: a Keras model or layer, an array or a list of arrays.
        level: zlib compression level, 0 (none) to 9 (best).
    """
    if isinstance(model_or_weights, keras.layers.Layer):  # a Model is a Layer too
        arrays = model_or_weights.get_weights()
        if not arrays:
            raise KerasdlError(f"{model_or_weights.name!r} has no weights (is it built?)",
                               argument="model_or_weights")
    else:
        arrays, _ = _arrays(model_or_weights, "model_or_weights")
    if isinstance(level, bool) or level not in range(10):
        raise KerasdlError(f"level must be an integer from 0 to 9, got {level!r}",
                           argument="level")
    raw = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    return len(zlib.compress(raw, level))


# ------------------------------------------------------------------------ gradient clipping


def clip_by_value(grads, threshold):
    """Each gradient entry into ``[-threshold, threshold]`` (``clipvalue``). Changes the
    direction of the gradient, unlike clipping by norm."""
    arrays, single = _arrays(grads, "grads")
    threshold = _positive(threshold, "threshold")
    return _like_input([np.clip(g, -threshold, threshold) for g in arrays], single)


def clip_by_norm(grads, threshold):
    """Each gradient ``g`` (one per variable) rescaled to ``g * threshold / max(|g|,
    threshold)`` (``clipnorm``): its L2 norm is at most ``threshold``, its direction
    kept."""
    arrays, single = _arrays(grads, "grads")
    threshold = _positive(threshold, "threshold")
    return _like_input([g * (threshold / max(float(np.linalg.norm(g)), threshold))
                        for g in arrays], single)


def clip_by_global_norm(grads, threshold):
    """All gradients rescaled by one factor ``threshold / max(N, threshold)``, ``N`` the
    L2 norm of all of them together (``global_clipnorm``; Pascanu et al. 2013): the
    update keeps its direction across variables, not only within each."""
    arrays, single = _arrays(grads, "grads")
    threshold = _positive(threshold, "threshold")
    total = math.sqrt(sum(float(np.sum(np.square(g))) for g in arrays))
    return _like_input([g * (threshold / max(total, threshold)) for g in arrays], single)
