"""Weight initialisation from the variance formulas, and what it does to a deep network.

Every initialiser here is one rule: draw weights with mean 0 and variance ``scale / n``,
where ``n`` is the fan-in, the fan-out or their average.

============  =====  ========  ==========================================================
name          scale  n         source
============  =====  ========  ==========================================================
LeCun         1      fan_in    LeCun et al. 1998, "Efficient BackProp"
Glorot        1      fan_avg   Glorot & Bengio 2010 (``2 / (fan_in + fan_out)``)
He            2      fan_in    He et al. 2015, "Delving deep into rectifiers"
============  =====  ========  ==========================================================

Glorot & Bengio keep the variance of activations (forward, needs ``n_in Var[w] = 1``)
and of gradients (backward, needs ``n_out Var[w] = 1``) constant for a linear or tanh
layer near zero, and compromise between the two with the average. He et al. redo the
forward argument for ReLU, which zeroes half of its input: ``Var[z_l] = n_in Var[w]
E[h_{l-1}^2]`` and ``E[h^2] = Var[z] / 2``, so ``n_in Var[w] / 2 = 1``, i.e.
``Var[w] = 2 / n_in`` (standard deviation ``sqrt(2 / n_in)``).

How Keras draws them (``keras/src/initializers/random_initializers.py``,
``VarianceScaling``; checked against Keras 3.15):

* Fans (``compute_fans``): a dense kernel ``(n_in, n_out)`` has ``fan_in = n_in``,
  ``fan_out = n_out``; a convolution kernel ``(*window, c_in, c_out)`` has
  ``fan_in = prod(window) * c_in`` and ``fan_out = prod(window) * c_out``, the units one
  output (one input) is connected to. A 1-D shape uses its length for both.
* ``*Uniform``: ``U(-limit, limit)`` with ``limit = sqrt(3 * scale / n)``; the variance
  of ``U(-a, a)`` is ``a^2 / 3``, so it is exactly ``scale / n``.
* ``*Normal`` (``GlorotNormal``, ``HeNormal``, ``LecunNormal``): a TRUNCATED normal,
  values beyond two standard deviations redrawn, with the ``stddev`` argument set to
  ``sqrt(scale / n) / 0.87962566103423978``. Truncation at +-2 shrinks the standard
  deviation of a normal by that factor (:func:`truncated_normal_std`), so the samples
  still have variance ``scale / n``, and no weight exceeds ``2 * sqrt(scale / n) /
  0.8796 ~= 2.27 sqrt(scale / n)``. ``distribution="untruncated_normal"`` gives a plain
  normal with standard deviation ``sqrt(scale / n)``.

The course notes write He initialisation as ``w ~ N(0, 2/sqrt(n))`` and call the second
argument the variance. Read that way the variance is ``2 / sqrt(n)`` (standard deviation
``(2 / sqrt(n)) ** 0.5``), ``sqrt(n)`` times the ``2 / n`` of He et al.; read as a
standard deviation it is variance ``4 / n``, twice He's. Both make a deep ReLU network
explode; :func:`course_he_reading` gives the per-layer factors and :func:`propagate`
shows it over depth. The formula is ``N(0, 2/n)`` with ``2/n`` the variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = [
    "KERAS_TRUNCATION_FACTOR",
    "truncated_normal_std",
    "compute_fans",
    "target_variance",
    "variance_scaling",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "course_he_normal",
    "course_he_reading",
    "ACTIVATIONS",
    "INITIALIZERS",
    "Propagation",
    "propagate",
    "propagate_grid",
]

#: Standard deviation of a standard normal truncated to [-2, 2], the constant Keras
#: divides by in ``VarianceScaling`` (``truncated_normal_std(2.0)`` computes it).
KERAS_TRUNCATION_FACTOR = 0.87962566103423978

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


def truncated_normal_std(bound=2.0):
    """Standard deviation of ``N(0, 1)`` conditioned on ``|x| <= bound``.

    For the symmetric truncation ``Var = 1 - 2 b phi(b) / (2 Phi(b) - 1)`` (``phi``,
    ``Phi``: the standard normal density and distribution function). ``bound=2`` gives
    Keras' 0.87962566103423978.
    """
    if not isinstance(bound, (int, float)) or isinstance(bound, bool) or not bound > 0:
        raise KerasdlError(f"bound must be a positive number, got {bound!r}",
                           argument="bound")
    b = float(bound)
    density = math.exp(-b * b / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(b / math.sqrt(2))  # = 2 Phi(b) - 1
    return math.sqrt(1 - 2 * b * density / mass)


def _check_shape(shape):
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if (not shape or any(not isinstance(d, (int, np.integer)) or isinstance(d, bool)
                         or d < 1 for d in shape)):
        raise KerasdlError("shape must be a non-empty tuple of positive integers, e.g. "
                           "(fan_in, units) or (kh, kw, c_in, c_out)", argument="shape")
    return tuple(int(d) for d in shape)


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight shape, with Keras' conventions.

    Dense ``(n_in, n_out)``; convolution ``(*window, c_in, c_out)`` multiplies both by the
    window size, since each output is a weighted sum over ``window * c_in`` inputs.
    """
    shape = _check_shape(shape)
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def target_variance(shape, scale=1.0, mode="fan_in"):
    """``scale / n`` with ``n`` the fan chosen by ``mode``: the variance every
    initialiser here aims at."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise KerasdlError(f"scale must be a positive number, got {scale!r}",
                           argument="scale")
    check_choice(mode, MODES, "mode")
    fan_in, fan_out = compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return scale / n


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise KerasdlError(f"seed must be an integer, a numpy Generator or None, got {seed!r}",
                           argument="seed")
    return np.random.default_rng(seed)


def _truncated_normal(rng, shape, std, bound=2.0):
    # Rejection, as in Keras: redraw the values outside +-bound*std until none are left.
    # About 4.6 % fall outside at bound 2, so a handful of rounds suffice.
    values = rng.normal(0.0, std, size=shape)
    outside = np.abs(values) > bound * std
    while outside.any():
        values[outside] = rng.normal(0.0, std, size=int(outside.sum()))
        outside = np.abs(values) > bound * std
    return values


def variance_scaling(shape, scale=1.0, mode="fan_in", distribution="truncated_normal",
                     seed=None):
    """Weights of variance ``scale / n`` drawn like ``keras.initializers.VarianceScaling``.

    ``distribution``: ``"truncated_normal"`` (Keras' default and what ``*Normal`` use:
    truncated at 2 standard deviations, widened by 1 / 0.8796 to keep the variance),
    ``"untruncated_normal"`` or ``"uniform"`` (``+-sqrt(3 scale / n)``).
    Returns a float64 array; ``seed`` is an int, a ``numpy.random.Generator`` or None.
    """
    shape = _check_shape(shape)
    variance = target_variance(shape, scale, mode)
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    rng = _rng(seed)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(variance), size=shape)
    return _truncated_normal(rng, shape, math.sqrt(variance) / KERAS_TRUNCATION_FACTOR)


def glorot_normal(shape, seed=None):
    """Glorot & Bengio 2010: variance ``2 / (fan_in + fan_out)``, truncated normal
    (``keras.initializers.GlorotNormal``)."""
    return variance_scaling(shape, 1.0, "fan_avg", "truncated_normal", seed)


def glorot_uniform(shape, seed=None):
    """Glorot & Bengio 2010: ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``
    (``keras.initializers.GlorotUniform``, Keras' default kernel initialiser)."""
    return variance_scaling(shape, 1.0, "fan_avg", "uniform", seed)


def he_normal(shape, seed=None):
    """He et al. 2015: variance ``2 / fan_in``, truncated normal
    (``keras.initializers.HeNormal``)."""
    return variance_scaling(shape, 2.0, "fan_in", "truncated_normal", seed)


def he_uniform(shape, seed=None):
    """He et al. 2015: ``U(-a, a)``, ``a = sqrt(6 / fan_in)``
    (``keras.initializers.HeUniform``)."""
    return variance_scaling(shape, 2.0, "fan_in", "uniform", seed)


def lecun_normal(shape, seed=None):
    """LeCun et al. 1998: variance ``1 / fan_in``, truncated normal
    (``keras.initializers.LecunNormal``; the initialiser SELU networks assume)."""
    return variance_scaling(shape, 1.0, "fan_in", "truncated_normal", seed)


def lecun_uniform(shape, seed=None):
    """LeCun et al. 1998: ``U(-a, a)``, ``a = sqrt(3 / fan_in)``
    (``keras.initializers.LecunUniform``)."""
    return variance_scaling(shape, 1.0, "fan_in", "uniform", seed)


def course_he_normal(shape, seed=None):
    """The course's ``N(0, 2/sqrt(n))`` taken as written, variance ``2 / sqrt(fan_in)``
    (plain normal). Kept to show the mistake; see :func:`course_he_reading`."""
    fan_in, _ = compute_fans(shape)
    return _rng(seed).normal(0.0, math.sqrt(2.0 / math.sqrt(fan_in)), size=_check_shape(shape))


def course_he_reading(fan_in, depth=50):
    """What the course's ``N(0, 2/sqrt(n))`` does next to He's ``N(0, 2/n)``.

    For each reading of the formula: the weight variance, and the factor by which a
    ReLU layer of that fan-in multiplies ``E[h^2]`` (``fan_in * Var[w] / 2``; 1 keeps
    the signal steady) and that factor after ``depth`` layers. The gradient of a square
    ReLU layer scales by the same factor on the way back.

    Returns ``{"he": {...}, "course_variance": {...}, "course_std": {...}}``, each with
    ``variance``, ``relu_gain`` and ``gain_over_depth``; ``course_variance`` is the
    formula as written (variance ``2 / sqrt(n)``: gain ``sqrt(n)``, i.e. 16 for
    ``n = 256``), ``course_std`` the reading with ``2 / sqrt(n)`` as the standard
    deviation (variance ``4 / n``: gain 2 whatever ``n``).
    """
    check_positive_int(fan_in, "fan_in")
    check_positive_int(depth, "depth")
    variances = {"he": 2.0 / fan_in,
                 "course_variance": 2.0 / math.sqrt(fan_in),
                 "course_std": 4.0 / fan_in}
    out = {}
    for name, variance in variances.items():
        gain = fan_in * variance / 2.0
        out[name] = {"variance": variance, "relu_gain": gain,
                     "gain_over_depth": gain ** depth}
    return out


# --- signal propagation through a deep plain network ------------------------------------

def _tanh_grad(z):
    return 1.0 - np.tanh(z) ** 2


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow in exp for large |z|


def _sigmoid_grad(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


#: name -> (f, f'); f' evaluated at the pre-activation.
ACTIVATIONS = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, _tanh_grad),
    "sigmoid": (_sigmoid, _sigmoid_grad),
}

#: name -> weight standard deviation for a square ``width x width`` layer. Plain
#: (untruncated) normals: only the variance matters for propagation.
INITIALIZERS = {
    "glorot": lambda n_in, n_out: math.sqrt(2.0 / (n_in + n_out)),
    "he": lambda n_in, n_out: math.sqrt(2.0 / n_in),
    "lecun": lambda n_in, n_out: math.sqrt(1.0 / n_in),
    "small": lambda n_in, n_out: 0.01,
    "course_he": lambda n_in, n_out: math.sqrt(2.0 / math.sqrt(n_in)),
}


@dataclass
class Propagation:
    """Per-layer statistics of one run of :func:`propagate`, index 0 = first layer.

    ``preactivation``: ``Var[z_l]``; ``activation``: ``Var[h_l]``, ``h_l = f(z_l)``;
    ``gradient``: ``Var[dL/dh_l]``, the gradient arriving at layer ``l``'s output, with
    unit-variance noise injected at the top; ``weight_gradient``: ``Var[dL/dW_l]``
    (batch mean of the per-example gradients). Variances are over batch and units.
    """

    activation: np.ndarray
    preactivation: np.ndarray
    gradient: np.ndarray
    weight_gradient: np.ndarray
    activation_name: str
    initializer_name: str


def propagate(depth=50, width=256, activation="relu", initializer="he", batch=512, seed=0):
    """Push unit-variance inputs through ``depth`` bias-free ``width x width`` layers and
    a random unit-variance gradient back, recording the variances layer by layer.

    The forward recursion is ``Var[z_l] = n Var[w] E[h_{l-1}^2]`` and the backward one
    ``Var[dL/dh_{l-1}] = n Var[w] E[f'(z_l)^2] Var[dL/dh_l]`` (Glorot & Bengio 2010;
    He et al. 2015), so a per-layer factor away from 1 compounds geometrically.

    ``activation``: one of :data:`ACTIVATIONS`; ``initializer``: one of
    :data:`INITIALIZERS` (``"small"`` is ``N(0, 0.01^2)``, ``"course_he"`` the course's
    variance ``2/sqrt(n)``) or a callable ``(shape, rng) -> array``. Float64 throughout,
    so the exploding cases reach ~1e60 rather than overflow.
    """
    check_positive_int(depth, "depth")
    check_positive_int(width, "width")
    check_positive_int(batch, "batch")
    check_choice(activation, tuple(ACTIVATIONS), "activation")
    rng = _rng(seed)
    if callable(initializer):
        init_name = getattr(initializer, "__name__", "custom")
        draw = initializer
    else:
        check_choice(initializer, tuple(INITIALIZERS), "initializer")
        init_name = initializer
        std = INITIALIZERS[initializer](width, width)

        def draw(shape, rng):
            return rng.normal(0.0, std, size=shape)

    f, f_grad = ACTIVATIONS[activation]
    weights = []
    for _ in range(depth):
        w = np.asarray(draw((width, width), rng), dtype=np.float64)
        if w.shape != (width, width):
            raise KerasdlError(f"initializer must return an array of the shape it is given "
                               f"({(width, width)}), got {w.shape}", argument="initializer")
        weights.append(w)

    h = rng.standard_normal((batch, width))
    inputs, pre = [], []
    act_var, pre_var = np.empty(depth), np.empty(depth)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer, w in enumerate(weights):
            inputs.append(h)
            z = h @ w
            h = f(z)
            pre.append(z)
            pre_var[layer], act_var[layer] = z.var(), h.var()

        grad_var, wgrad_var = np.empty(depth), np.empty(depth)
        grad = rng.standard_normal((batch, width))  # dL/dh at the top
        for layer in range(depth - 1, -1, -1):
            grad_var[layer] = grad.var()
            dz = grad * f_grad(pre[layer])
            wgrad_var[layer] = (inputs[layer].T @ dz / batch).var()
            grad = dz @ weights[layer].T
    return Propagation(act_var, pre_var, grad_var, wgrad_var, activation, init_name)


def propagate_grid(activations=("tanh", "relu", "sigmoid", "linear"),
                   initializers=("glorot", "he", "small", "course_he"), **kwargs):
    """:func:`propagate` for every activation x initializer pair, keyed by the pair,
    for a grid of plots; ``kwargs`` go to :func:`propagate`."""
    return {(a, i): propagate(activation=a, initializer=i, **kwargs)
            for a in activations for i in initializers}
