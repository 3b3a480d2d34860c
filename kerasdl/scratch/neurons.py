"""Neurons, activations, losses and backpropagation in plain numpy.

Everything here is what ``keras.layers.Dense``, ``keras.activations`` and
``keras.losses`` do, written out so that each formula can be read next to its code;
``tests/test_scratch_neurons.py`` checks every value against Keras and every derivative
against central differences and TensorFlow's autodiff.

Conventions:

* Derivatives are taken with respect to the function's *input* (``sigmoid_grad(x)`` is
  ``d sigmoid(x) / dx``), not written in terms of its output as some notes do.
* Losses are reduced as Keras reduces them by default: mean squared error and binary
  cross-entropy average over every element, categorical cross-entropy sums over the
  classes (last axis) and averages over the rest. Each ``*_grad`` is the gradient of that
  scalar, so the ``1 / batch`` factor is already in it.
* Weights are ``W[fan_in, fan_out]`` and a layer computes ``x @ W + b``, the layout of a
  Keras ``Dense`` kernel, so weights carry over between the two unchanged.

References: Rumelhart, Hinton & Williams, "Learning representations by back-propagating
errors", Nature 1986 (backpropagation); Minsky & Papert, "Perceptrons", 1969 (a single
layer cannot compute XOR); Glorot & Bengio, AISTATS 2010 and He et al., ICCV 2015
(initialisation); Maas et al., ICML 2013 (leaky ReLU); Clevert et al., ICLR 2016 (ELU);
Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, 2016.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = [
    "ACTIVATIONS",
    "EPSILON",
    "LOSSES",
    "MLP",
    "XOR_X",
    "XOR_Y",
    "XorResult",
    "binary_crossentropy",
    "binary_crossentropy_grad",
    "categorical_crossentropy",
    "categorical_crossentropy_grad",
    "elu",
    "elu_grad",
    "gelu",
    "gelu_grad",
    "gradient_check",
    "leaky_relu",
    "leaky_relu_grad",
    "linear",
    "linear_grad",
    "mse",
    "mse_grad",
    "numerical_gradient",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_backward",
    "softmax_jacobian",
    "tanh",
    "tanh_grad",
    "train_xor",
]

# Keras' keras.config.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON]
# before their logarithm is taken.
EPSILON = 1e-7


def _array(x, argument):
    """``x`` as a float64 array (float64 so that gradient checks can reach 1e-8)."""
    try:
        arr = np.asarray(x)
    except Exception:  # ragged lists and the like
        arr = None
    if arr is None or arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise KerasdlError(f"{argument} must be an array of numbers, got {type(x).__name__}",
                           argument=argument)
    return arr.astype(np.float64)


def _positive(value, argument):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise KerasdlError(f"{argument} must be a positive finite number, got {value!r}",
                           argument=argument)
    return float(value)


def _non_negative(value, argument):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
            or not math.isfinite(value):
        raise KerasdlError(f"{argument} must be a finite number >= 0, got {value!r}",
                           argument=argument)
    return float(value)


# ------------------------------------------------------------------------ activations


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``."""
    x = _array(x, "x")
    # exp(-|x|) never overflows; the two branches are the same function rewritten.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x):
    """``sigmoid(x) * (1 - sigmoid(x))``."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(_array(x, "x"))


def tanh_grad(x):
    """``1 - tanh(x)**2``."""
    return 1.0 - np.tanh(_array(x, "x")) ** 2


def linear(x):
    """The identity (a layer without activation)."""
    return _array(x, "x")


def linear_grad(x):
    """Ones."""
    return np.ones_like(_array(x, "x"))


def relu(x):
    """``max(x, 0)`` (Nair & Hinton, ICML 2010)."""
    return np.maximum(_array(x, "x"), 0.0)


def relu_grad(x):
    """1 where ``x > 0``, else 0 (0 at the kink, as TensorFlow takes it)."""
    return (_array(x, "x") > 0).astype(np.float64)


def leaky_relu(x, alpha=0.01):
    """``x`` for ``x > 0``, else ``alpha * x`` (Maas et al. 2013 used ``alpha = 0.01``;
    ``keras.activations.leaky_relu`` defaults to ``negative_slope=0.2`` and
    ``keras.layers.LeakyReLU`` to 0.3, so pass the slope explicitly when comparing)."""
    alpha = _non_negative(alpha, "alpha")
    x = _array(x, "x")
    return np.where(x > 0, x, alpha * x)


def leaky_relu_grad(x, alpha=0.01):
    """1 for ``x > 0``, else ``alpha``."""
    alpha = _non_negative(alpha, "alpha")
    return np.where(_array(x, "x") > 0, 1.0, alpha)


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)`` (Clevert et al. 2016)."""
    alpha = _positive(alpha, "alpha")
    x = _array(x, "x")
    # expm1 keeps precision near 0; min() keeps exp from overflowing in the unused branch.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_grad(x, alpha=1.0):
    """1 for ``x > 0``, else ``alpha * exp(x)`` (= ``elu(x) + alpha`` there)."""
    alpha = _positive(alpha, "alpha")
    x = _array(x, "x")
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


# numpy has no erf; math.erf is exact to double precision.
_erf = np.vectorize(math.erf, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def gelu(x, approximate=False):
    """GELU, ``x * Phi(x)`` with ``Phi`` the standard normal CDF (Hendrycks & Gimpel 2016).

    The default is the exact form ``0.5 x (1 + erf(x / sqrt 2))``, as
    ``keras.activations.gelu`` and ``Activation("gelu")`` compute by default
    (``approximate=False``). ``approximate=True`` gives the paper's tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (BERT's and GPT-2's GELU), which is
    the default of the lower-level ``keras.ops.gelu``.
    """
    check_choice(approximate, (False, True), "approximate")
    x = _array(x, "x")
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_grad(x, approximate=False):
    """Exact: ``Phi(x) + x * phi(x)`` (``phi`` the normal density). Approximate: the
    derivative of the tanh form, by the chain rule."""
    check_choice(approximate, (False, True), "approximate")
    x = _array(x, "x")
    if approximate:
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * x ** 2)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x ** 2) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


def softmax(x, axis=-1):
    """``exp(x_i) / sum_j exp(x_j)`` along ``axis``.

    Subtracting the maximum first changes nothing mathematically (the factor
    ``exp(-max)`` cancels) but keeps every exponent <= 0, so nothing overflows.
    """
    x = _array(x, "x")
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_jacobian(x):
    """The Jacobian ``J[i, j] = d s_i / d x_j = s_i (delta_ij - s_j)`` of one vector's
    softmax ``s``: ``diag(s) - s s^T``."""
    x = _array(x, "x")
    if x.ndim != 1:
        raise KerasdlError(f"softmax_jacobian takes one vector, got shape {x.shape}",
                           argument="x")
    s = softmax(x)
    return np.diag(s) - np.outer(s, s)


def softmax_backward(x, grad_output, axis=-1):
    """The gradient reaching ``x`` when ``grad_output`` reaches ``softmax(x)``:
    ``J^T g = s * (g - sum(g * s))``.

    The Jacobian is symmetric, so this is also the Jacobian-vector product; it costs
    O(n) per vector instead of the O(n^2) of building ``J``.
    """
    x = _array(x, "x")
    g = _array(grad_output, "grad_output")
    if g.shape != x.shape:
        raise KerasdlError(f"grad_output must have the shape of x {x.shape}, got {g.shape}",
                           argument="grad_output")
    s = softmax(x, axis=axis)
    return s * (g - np.sum(g * s, axis=axis, keepdims=True))


# Element-wise activations, name -> (function, derivative); softmax couples its inputs and
# is handled on its own.
ACTIVATIONS = {
    "linear": (linear, linear_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "elu": (elu, elu_grad),
    "gelu": (gelu, gelu_grad),
}


# ------------------------------------------------------------------------------ losses


def _pair(y_true, y_pred):
    y_true = _array(y_true, "y_true")
    y_pred = _array(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise KerasdlError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the "
                           "same shape (one-hot targets for categorical losses)",
                           argument="y_true")
    if y_true.ndim == 0:
        raise KerasdlError("y_true and y_pred must have at least one axis", argument="y_true")
    return y_true, y_pred


def mse(y_true, y_pred):
    """Mean squared error ``mean((y_pred - y_true)^2)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean((y_pred - y_true) ** 2))


def mse_grad(y_true, y_pred):
    """``2 (y_pred - y_true) / n`` with ``n`` the number of elements."""
    y_true, y_pred = _pair(y_true, y_pred)
    return 2.0 * (y_pred - y_true) / y_pred.size


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """``-mean(y log p + (1 - y) log(1 - p))``.

    From probabilities, ``p`` is first clipped to ``[EPSILON, 1 - EPSILON]`` as Keras
    does, so that a confident mistake costs about 16 rather than infinity. From logits
    ``z`` the same quantity is ``max(z, 0) - z y + log(1 + exp(-|z|))``, which needs no
    clipping and never overflows.
    """
    check_choice(from_logits, (False, True), "from_logits")
    y, out = _pair(y_true, y_pred)
    if from_logits:
        return float(np.mean(np.maximum(out, 0.0) - out * y + np.log1p(np.exp(-np.abs(out)))))
    p = np.clip(out, EPSILON, 1.0 - EPSILON)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def binary_crossentropy_grad(y_true, y_pred, from_logits=False):
    """Gradient of :func:`binary_crossentropy` with respect to ``y_pred``.

    From logits it is ``(sigmoid(z) - y) / n``: the sigmoid's derivative cancels the
    ``1 / (p (1 - p))`` of the logarithms, which is why a sigmoid output is trained from
    its logits. From probabilities it is ``(p - y) / (p (1 - p)) / n`` inside the clipping
    range and 0 outside it (the clipped loss is flat there).
    """
    check_choice(from_logits, (False, True), "from_logits")
    y, out = _pair(y_true, y_pred)
    if from_logits:
        return (sigmoid(out) - y) / out.size
    inside = (out > EPSILON) & (out < 1.0 - EPSILON)
    p = np.clip(out, EPSILON, 1.0 - EPSILON)
    return np.where(inside, (p - y) / (p * (1.0 - p)), 0.0) / out.size


def _batch_size(arr):
    # Categorical losses sum over the last (class) axis and average over the others.
    return arr.size // arr.shape[-1]


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """``-mean over samples of sum_k y_k log p_k`` for one-hot (or soft) targets.

    From probabilities, each row is first divided by its sum and clipped to
    ``[EPSILON, 1 - EPSILON]``, as Keras does (so the two agree even on rows that do not
    sum to 1). From logits, ``log p_k = z_k - logsumexp(z)`` with the maximum taken out.
    """
    check_choice(from_logits, (False, True), "from_logits")
    y, out = _pair(y_true, y_pred)
    if from_logits:
        z = out - np.max(out, axis=-1, keepdims=True)
        log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
        return float(-np.sum(y * log_p) / _batch_size(out))
    q = out / np.sum(out, axis=-1, keepdims=True)
    q = np.clip(q, EPSILON, 1.0 - EPSILON)
    return float(-np.sum(y * np.log(q)) / _batch_size(out))


def categorical_crossentropy_grad(y_true, y_pred, from_logits=False):
    """Gradient of :func:`categorical_crossentropy` with respect to ``y_pred``.

    From logits (softmax and cross-entropy together) it is ``(softmax(z) - y) / batch``
    for targets that sum to 1 per row. From probabilities, with ``q = p / S`` (``S`` the
    row sum) and ``g = -y / q`` inside the clipping range, the division by ``S`` adds a
    projection: ``dL/dp = (g - sum(g q)) / S / batch``.
    """
    check_choice(from_logits, (False, True), "from_logits")
    y, out = _pair(y_true, y_pred)
    n = _batch_size(out)
    if from_logits:
        # Written without assuming sum(y) == 1, so that soft targets get their gradient too.
        return (softmax(out) * np.sum(y, axis=-1, keepdims=True) - y) / n
    total = np.sum(out, axis=-1, keepdims=True)
    q = out / total
    inside = (q > EPSILON) & (q < 1.0 - EPSILON)
    g = np.where(inside, -y / np.clip(q, EPSILON, 1.0 - EPSILON), 0.0)
    return (g - np.sum(g * q, axis=-1, keepdims=True)) / total / n


# name -> (loss, gradient); each takes (y_true, y_pred, from_logits=...) except mse.
LOSSES = {
    "mse": (mse, mse_grad),
    "binary_crossentropy": (binary_crossentropy, binary_crossentropy_grad),
    "categorical_crossentropy": (categorical_crossentropy, categorical_crossentropy_grad),
}


# ---------------------------------------------------------------- gradient checking


def numerical_gradient(f, x, eps=1e-5):
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every
    element ``i`` of ``x``.

    ``f`` maps ``x`` to a number. A float64 ndarray ``x`` is perturbed in place, one
    element at a time, and restored, so ``f`` may also read it through a closure (an
    :class:`MLP` reads its own weights); anything else is copied to float64 first. The
    error is about ``eps^2 |f'''| / 6`` from truncation plus ``1e-16 |f| / eps`` from
    rounding; ``eps = 1e-5`` keeps both near 1e-11 in float64 (at 1e-6 or 1e-7 rounding
    dominates).
    """
    if not callable(f):
        raise KerasdlError(f"f must be callable, got {type(f).__name__}", argument="f")
    eps = _positive(eps, "eps")
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64):
        x = _array(x, "x").copy()
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise KerasdlError("x must be a contiguous array to be perturbed in place",
                           argument="x")
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        f_plus = float(f(x))
        flat[i] = saved - eps
        f_minus = float(f(x))
        flat[i] = saved
        out[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def gradient_check(f, x, analytic_grad, eps=1e-5, floor=1e-4):
    """The largest element-wise relative error between ``analytic_grad`` and
    :func:`numerical_gradient` ``(f, x, eps)``:
    ``max |a - n| / max(|a|, |n|, floor)``.

    ``floor`` judges elements whose gradient is smaller than it by their absolute error
    instead: central differences carry ~1e-11 of error in float64, which would make any
    tiny, correct gradient look wrong. Backpropagation bugs give errors near 1;
    a correct float64 gradient gives well under 1e-6.
    """
    floor = _positive(floor, "floor")
    analytic = _array(analytic_grad, "analytic_grad")
    numeric = numerical_gradient(f, x, eps)
    if analytic.shape != numeric.shape:
        raise KerasdlError(f"analytic_grad has shape {analytic.shape} but x has "
                           f"{numeric.shape}", argument="analytic_grad")
    if analytic.size == 0:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / scale))


# --------------------------------------------------------------------------- the MLP

INITS = ("auto", "he", "glorot")
OUTPUT_ACTIVATIONS = (*ACTIVATIONS, "softmax")
# ReLU zeroes half of a symmetric input and so halves its second moment, which He et al.'s
# 2 / fan_in restores; its smooth and leaky relatives are close enough to use the same
# scale. Glorot's suits activations that are near-linear around 0 (tanh, sigmoid).
_RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu")
# Output activation and loss that meet in a gradient computed from the logits.
_FUSED = {("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy")}


class MLP:
    """A fully connected network in numpy: ``a_0 = x``, ``z_l = a_{l-1} W_l + b_l``,
    ``a_l = f_l(z_l)``, trained by backpropagation and plain SGD.

    Args:
        layer_sizes: ``[inputs, hidden..., outputs]``, at least two positive ints.
        activations: the hidden layers' activation, one name (all layers) or one per
            hidden layer, from ``ACTIVATIONS``.
        output_activation: a name from ``ACTIVATIONS`` or ``"softmax"``.
        loss: ``"binary_crossentropy"``, ``"categorical_crossentropy"`` or ``"mse"``.
            Sigmoid with binary and softmax with categorical cross-entropy are computed
            from the logits, loss and gradient both (``dL/dz = (p - y) / n``).
        init: ``"he"`` (normal, std ``sqrt(2 / fan_in)``, He et al. 2015), ``"glorot"``
            (uniform in ``+-sqrt(6 / (fan_in + fan_out))``, Glorot & Bengio 2010), or
            ``"auto"``: He for layers followed by a ReLU-like activation, else Glorot.
            Biases start at 0.
        seed: seed of the ``numpy.random.Generator`` that draws the weights and shuffles
            mini-batches.
        alpha: the slope of ``leaky_relu`` or the scale of ``elu``, where used (None:
            their defaults, 0.01 and 1.0).
    """

    def __init__(self, layer_sizes, activations="tanh", output_activation="sigmoid",
                 loss="binary_crossentropy", init="auto", seed=0, alpha=None):
        if not isinstance(layer_sizes, (list, tuple)) or len(layer_sizes) < 2:
            raise KerasdlError("layer_sizes must be a list of at least two sizes "
                               f"(inputs, outputs), got {layer_sizes!r}",
                               argument="layer_sizes")
        for size in layer_sizes:
            check_positive_int(size, "layer_sizes")
        n_hidden = len(layer_sizes) - 2
        if isinstance(activations, str):
            activations = [activations] * n_hidden
        if not isinstance(activations, (list, tuple)) or len(activations) != n_hidden:
            raise KerasdlError(f"activations must be one name or {n_hidden} names (one per "
                               f"hidden layer), got {activations!r}", argument="activations")
        for name in activations:
            check_choice(name, tuple(ACTIVATIONS), "activations")
        check_choice(output_activation, OUTPUT_ACTIVATIONS, "output_activation")
        check_choice(loss, tuple(LOSSES), "loss")
        check_choice(init, INITS, "init")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise KerasdlError(f"seed must be an integer >= 0, got {seed!r}", argument="seed")
        if output_activation == "softmax" and loss == "binary_crossentropy":
            raise KerasdlError("loss='binary_crossentropy' does not fit a softmax output; "
                               "use loss='categorical_crossentropy'", argument="loss")
        self.alpha = None if alpha is None else _positive(alpha, "alpha")
        self.layer_sizes = tuple(layer_sizes)
        self.activations = (*activations, output_activation)
        self.loss_name = loss
        self.fused = (output_activation, loss) in _FUSED
        self.rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out, act in zip(layer_sizes[:-1], layer_sizes[1:], self.activations):
            kind = init if init != "auto" else ("he" if act in _RELU_LIKE else "glorot")
            if kind == "he":
                w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
            else:
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                w = self.rng.uniform(-limit, limit, size=(fan_in, fan_out))
            self.weights.append(w)
            self.biases.append(np.zeros(fan_out))
        self._cache = None
        self.grads = None

    # -- one activation, by name

    def _act(self, name, z):
        if name == "softmax":
            return softmax(z)
        fn = ACTIVATIONS[name][0]
        return fn(z, self.alpha) if name in ("leaky_relu", "elu") and self.alpha else fn(z)

    def _act_grad(self, name, z):
        fn = ACTIVATIONS[name][1]
        return fn(z, self.alpha) if name in ("leaky_relu", "elu") and self.alpha else fn(z)

    def _inputs(self, x):
        x = _array(x, "x")
        if x.ndim != 2 or x.shape[1] != self.layer_sizes[0]:
            raise KerasdlError(f"x must have shape (batch, {self.layer_sizes[0]}), got "
                               f"{x.shape}", argument="x")
        return x

    def _targets(self, y, batch):
        y = _array(y, "y")
        if y.shape != (batch, self.layer_sizes[-1]):
            raise KerasdlError(f"y must have shape ({batch}, {self.layer_sizes[-1]}), got "
                               f"{y.shape}", argument="y")
        return y

    # -- the passes

    def forward(self, x):
        """The network's output for ``x [batch, inputs]``; caches every layer's input
        and pre-activation for :meth:`backward`."""
        a = self._inputs(x)
        inputs, pre = [], []
        for w, b, name in zip(self.weights, self.biases, self.activations):
            inputs.append(a)
            z = a @ w + b
            pre.append(z)
            a = self._act(name, z)
        self._cache = (inputs, pre, a)
        return a

    def loss(self, x, y):
        """The loss on ``(x, y)`` (a fresh forward pass)."""
        out = self.forward(x)
        y = self._targets(y, out.shape[0])
        fn = LOSSES[self.loss_name][0]
        if self.loss_name == "mse":
            return fn(y, out)
        if self.fused:
            return fn(y, self._cache[1][-1], from_logits=True)
        return fn(y, out)

    def backward(self, y):
        """Gradients of the loss of the last :meth:`forward` with respect to every
        weight and bias: ``(dW, db)``, two lists in layer order (also kept as
        ``self.grads`` for :meth:`step`).

        With ``delta_l = dL/dz_l``: ``dW_l = a_{l-1}^T delta_l``,
        ``db_l = sum over the batch of delta_l`` and
        ``delta_{l-1} = (delta_l W_l^T) * f'_{l-1}(z_{l-1})``.
        """
        if self._cache is None:
            raise KerasdlError("call forward(x) before backward(y)", argument="y")
        inputs, pre, out = self._cache
        y = self._targets(y, out.shape[0])
        loss_grad = LOSSES[self.loss_name][1]
        last = self.activations[-1]
        # The output layer's delta.
        if self.fused:
            delta = loss_grad(y, pre[-1], from_logits=True)
        else:
            g = loss_grad(y, out)  # dL/da_L
            if last == "softmax":
                delta = softmax_backward(pre[-1], g)
            else:
                delta = g * self._act_grad(last, pre[-1])
        n_layers = len(self.weights)
        dW, db = [None] * n_layers, [None] * n_layers
        for l in range(n_layers - 1, -1, -1):
            dW[l] = inputs[l].T @ delta
            db[l] = delta.sum(axis=0)
            if l > 0:
                # Through W_l to a_{l-1}, then through the activation to z_{l-1}.
                delta = (delta @ self.weights[l].T) * self._act_grad(self.activations[l - 1],
                                                                      pre[l - 1])
        self.grads = (dW, db)
        return dW, db

    def step(self, lr):
        """One plain SGD update ``p -= lr * dL/dp`` with the last :meth:`backward`'s
        gradients."""
        lr = _positive(lr, "lr")
        if self.grads is None:
            raise KerasdlError("call backward(y) before step(lr)", argument="lr")
        dW, db = self.grads
        for w, b, gw, gb in zip(self.weights, self.biases, dW, db):
            w -= lr * gw  # in place: the arrays are the parameters
            b -= lr * gb
        self.grads = None

    def fit(self, x, y, epochs=100, lr=0.1, batch_size=None):
        """Mini-batch SGD for ``epochs`` passes over ``(x, y)``, reshuffled each epoch
        (``batch_size=None``: full batch, no shuffling needed). Returns the loss on the
        whole of ``(x, y)`` after each epoch."""
        x = self._inputs(x)
        y = self._targets(y, x.shape[0])
        check_positive_int(epochs, "epochs")
        lr = _positive(lr, "lr")
        check_positive_int(batch_size, "batch_size", allow_none=True)
        n = x.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        history = []
        for _ in range(epochs):
            order = np.arange(n) if size == n else self.rng.permutation(n)
            for start in range(0, n, size):
                idx = order[start:start + size]
                self.forward(x[idx])
                self.backward(y[idx])
                self.step(lr)
            history.append(self.loss(x, y))
        return history

    def predict(self, x):
        """The output for ``x`` (same as :meth:`forward`)."""
        return self.forward(x)

    def parameters(self):
        """``[W_1, b_1, W_2, b_2, ...]``: the arrays themselves (and Keras'
        ``Dense`` weight order, for ``model.set_weights``)."""
        out = []
        for w, b in zip(self.weights, self.biases):
            out += [w, b]
        return out


# ------------------------------------------------------------------------------ XOR

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


class XorResult(NamedTuple):
    net: MLP
    predictions: np.ndarray  # sigmoid outputs for XOR_X, [4, 1]
    history: list  # loss after each epoch


def train_xor(hidden_units=None, *, activation="tanh", epochs=2000, lr=1.0, seed=0):
    """Train a sigmoid-output network with binary cross-entropy on the four XOR points.

    ``hidden_units=None`` is a single layer, ``sigmoid(x W + b)``: it fails. Its decision
    boundary ``x W + b = 0`` is a straight line, and no line puts (0, 1) and (1, 0) on one
    side and (0, 0) and (1, 1) on the other: the positives need ``w1 + b > 0`` and
    ``w2 + b > 0``, so ``w1 + w2 + 2b > 0``; the negatives need ``b < 0`` and
    ``w1 + w2 + b < 0``, so ``w1 + w2 + 2b < 0`` (Minsky & Papert 1969). Worse, at
    ``W = 0, b = 0`` the gradient of the convex loss is exactly zero on these four points,
    so gradient descent goes there: every prediction tends to 0.5 and the loss to
    ``ln 2 ~ 0.693`` (the course's bias-free numpy example ends with weights near 0 too).

    ``hidden_units=k`` adds one hidden layer of ``k`` units: it maps the points to a
    space where they are linearly separable, and all four come out right (Rumelhart,
    Hinton & Williams 1986 solved XOR with two hidden units; a few more make plain
    gradient descent reach it from almost any start).

    Returns an :class:`XorResult` ``(net, predictions, history)``.
    """
    check_positive_int(hidden_units, "hidden_units", allow_none=True)
    sizes = [2, 1] if hidden_units is None else [2, hidden_units, 1]
    net = MLP(sizes, activations=activation, output_activation="sigmoid",
              loss="binary_crossentropy", seed=seed)
    history = net.fit(XOR_X, XOR_Y, epochs=epochs, lr=lr)
    return XorResult(net, net.predict(XOR_X), history)
