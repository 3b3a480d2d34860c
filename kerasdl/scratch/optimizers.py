"""Gradient-descent update rules in numpy, step for step equal to ``keras.optimizers``.

Every optimizer has the same small interface::

    opt = Adam(learning_rate=0.01)
    params = opt.update(params, grads)   # lists of arrays in, new list out

The state (step counter, one dict of slot arrays per parameter) lives in the object and
is created on the first call; ``reset()`` forgets it. ``update`` never changes the
arrays it is given.

Keras' conventions, which are not always the textbook's (each is repeated next to its
formula below):

* SGD momentum keeps the learning rate inside the velocity, ``v = mu*v - lr*g; w += v``
  (the textbook's ``v = mu*v + g; w -= lr*v`` is the same only while lr is constant).
* Nesterov is Bengio et al.'s (2013) rewriting of Sutskever et al.'s (2013) look-ahead:
  ``v = mu*v - lr*g; w += mu*v - lr*g``, so no gradient at a look-ahead point is needed.
* AdaGrad starts its accumulator at 0.1, not 0, and puts epsilon inside the root:
  ``w -= lr*g / sqrt(G + eps)``.
* RMSprop also puts epsilon inside the root and does no bias correction, so its first
  steps are about ``lr / sqrt(1 - rho)`` (3.2 lr for rho = 0.9); with momentum the
  learning rate is inside the momentum buffer.
* Adam folds the bias corrections into the learning rate,
  ``w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)``: the textbook form with an
  epsilon of ``eps / sqrt(1-b2^t)`` (31.6 eps at the first step); default eps is 1e-7,
  not the paper's 1e-8. AMSGrad takes the running maximum of the uncorrected ``v``.
* ``weight_decay`` belongs to every Keras optimizer and is always decoupled: before the
  step, ``w -= lr * weight_decay * w``. So ``keras.optimizers.Adam(weight_decay=x)`` is
  AdamW, and Keras' ``weight_decay`` is Loshchilov & Hutter's lambda divided by the
  learning rate. L2 regularisation (a penalty in the loss) is the separate ``l2`` below.
* Keras makes some Python-float hyper-parameters float32 constants before casting them
  to the variable's dtype (SGD's momentum, the betas inside Adam's ``b**t``, AdaGrad's
  initial accumulator, ``weight_decay``). For float64 variables the numpy rules here
  therefore agree with Keras to round-off only for values exact in float32 (0.875,
  0.125, 2**-7...); with 0.9 and 0.999 the paths drift apart slightly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int

__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
    "FreshMomentsAdam", "adam_with_fresh_moments", "FreshMomentsDemo", "fresh_moments_demo",
    "Function2D", "rosenbrock", "ill_conditioned_bowl", "beale", "trajectory",
    "schedule_values",
]


def _is_number(value):
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _check_positive(value, argument):
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise KerasdlError(f"{argument} must be a positive number, got {value!r}",
                           argument=argument)
    return float(value)


def _check_non_negative(value, argument):
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise KerasdlError(f"{argument} must be a number >= 0, got {value!r}",
                           argument=argument)
    return float(value)


def _check_bool(value, argument):
    if not isinstance(value, (bool, np.bool_)):
        raise KerasdlError(f"{argument} must be True or False, got {value!r}", argument=argument)
    return bool(value)


def _check_learning_rate(value):
    # A callable is a schedule (a Keras LearningRateSchedule or any step -> rate function).
    if callable(value):
        return value
    return _check_positive(value, "learning_rate")


def _as_float_array(value, argument):
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number):
        raise KerasdlError(f"{argument} must hold numbers, got dtype {array.dtype}",
                           argument=argument)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


class Optimizer:
    """Common machinery: step counter, per-parameter slots, a learning rate that may be a
    schedule (called with the 0-based step, as Keras does), Keras' decoupled
    ``weight_decay`` and an optional ``l2`` penalty.

    ``l2=lam`` adds ``lam * w`` to the gradient, i.e. a loss term ``lam/2 * ||w||^2``;
    ``weight_decay=wd`` shrinks ``w`` by ``lr * wd * w`` before the step, outside the
    adaptive scaling (Loshchilov & Hutter 2019). For plain SGD the two coincide when
    ``lam == wd``; for momentum and adaptive methods they do not.
    """

    #: slot name -> initial value of that slot for each parameter.
    slot_initial_values: dict = {}

    def __init__(self, learning_rate, *, weight_decay=None, l2=0.0):
        self.learning_rate = _check_learning_rate(learning_rate)
        self.weight_decay = (None if weight_decay is None
                             else _check_non_negative(weight_decay, "weight_decay"))
        self.l2 = _check_non_negative(l2, "l2")
        self.reset()

    def reset(self):
        """Forget the step counter and every slot."""
        self.iterations = 0
        self.slots = None

    def current_learning_rate(self):
        """The rate of the step about to be taken."""
        if callable(self.learning_rate):
            return float(np.asarray(self.learning_rate(self.iterations)))
        return self.learning_rate

    def update(self, params, grads):
        """One step. ``params`` and ``grads``: equal-length lists of arrays (or one array
        each, giving one array back). Returns the new parameters."""
        single = isinstance(params, np.ndarray)
        if single:
            params, grads = [params], [grads]
        params = [_as_float_array(p, "params") for p in params]
        grads = [_as_float_array(g, "grads") for g in grads]
        if len(params) != len(grads):
            raise KerasdlError(f"grads must have one array per parameter: {len(params)} params, "
                               f"{len(grads)} grads", argument="grads")
        for index, (p, g) in enumerate(zip(params, grads)):
            if p.shape != g.shape:
                raise KerasdlError(f"grads[{index}] has shape {g.shape}, its parameter {p.shape}",
                                   argument="grads")
        shapes = [p.shape for p in params]
        if self.slots is None:
            self.slots = [{name: np.full_like(p, value)
                           for name, value in self.slot_initial_values.items()}
                          for p in params]
            self._shapes = shapes
        elif shapes != self._shapes:
            raise KerasdlError("params must be the same list of shapes as on the first call "
                               "(call reset() to start over with other parameters)",
                               argument="params")
        lr = self.current_learning_rate()
        step = self.iterations + 1
        new = []
        for p, g, slots in zip(params, grads, self.slots):
            if self.l2:
                g = g + self.l2 * p
            if self.weight_decay:
                # Keras decays before the step, with the gradient taken at the old w.
                p = p - p * self.weight_decay * lr
            new.append(self._step(p, g, slots, lr, step))
        self.iterations = step
        return new[0] if single else new

    def _step(self, param, grad, slots, lr, step):
        raise NotImplementedError


class SGD(Optimizer):
    """Gradient descent, with heavy-ball momentum (Polyak 1964) or Nesterov momentum
    (Nesterov 1983; Sutskever et al. 2013), in Keras' form::

        plain:     w -= lr * g
        momentum:  v = mu * v - lr * g;   w += v
        nesterov:  v = mu * v - lr * g;   w += mu * v - lr * g

    Keras stores ``lr * v`` of the textbook form ``v = mu*v + g; w -= lr*v``, so after a
    learning-rate change the old velocity keeps the old rate. The Nesterov line is
    Sutskever's look-ahead rewritten for the look-ahead point (Bengio et al. 2013).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, *,
                 weight_decay=None, l2=0.0):
        self.momentum = check_fraction(momentum, "momentum")
        nesterov = _check_bool(nesterov, "nesterov")
        if nesterov and self.momentum == 0:
            raise KerasdlError("nesterov=True needs momentum > 0 (with momentum=0 it is "
                               "plain SGD)", argument="nesterov")
        self.nesterov = nesterov
        self.slot_initial_values = {"velocity": 0.0} if self.momentum else {}
        super().__init__(learning_rate, weight_decay=weight_decay, l2=l2)

    def _step(self, param, grad, slots, lr, step):
        if not self.momentum:
            return param - lr * grad
        velocity = self.momentum * slots["velocity"] - lr * grad
        slots["velocity"] = velocity
        if self.nesterov:
            return param + self.momentum * velocity - lr * grad
        return param + velocity


class Adagrad(Optimizer):
    """Per-coordinate rates from the sum of squared gradients (Duchi et al. 2011)::

        G += g**2;   w -= lr * g / sqrt(G + eps)

    Keras starts ``G`` at ``initial_accumulator_value`` (0.1), which caps the first
    steps at ``lr * |g| / sqrt(0.1)``, and puts eps inside the root (the paper's form is
    ``sqrt(G) + eps`` with ``G`` from 0).
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, *,
                 weight_decay=None, l2=0.0):
        self.initial_accumulator_value = _check_non_negative(
            initial_accumulator_value, "initial_accumulator_value")
        self.epsilon = _check_positive(epsilon, "epsilon")
        self.slot_initial_values = {"accumulator": self.initial_accumulator_value}
        super().__init__(learning_rate, weight_decay=weight_decay, l2=l2)

    def _step(self, param, grad, slots, lr, step):
        slots["accumulator"] = slots["accumulator"] + grad * grad
        return param - lr * grad / np.sqrt(slots["accumulator"] + self.epsilon)


class RMSprop(Optimizer):
    """AdaGrad with a leaky average of squared gradients (Tieleman & Hinton 2012)::

        v = rho * v + (1 - rho) * g**2
        centered:  a = rho * a + (1 - rho) * g;   d = v - a**2 + eps    (Graves 2013)
        else:      d = v + eps
        step = lr * g / sqrt(d)
        momentum:  mom = mu * mom + step;   w -= mom
        else:      w -= step

    As in Keras: eps inside the root, ``v`` from 0 with no bias correction (so early
    steps are large, about ``lr / sqrt(1 - rho)``), and the learning rate inside the
    momentum buffer.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, *, weight_decay=None, l2=0.0):
        self.rho = check_fraction(rho, "rho")
        self.momentum = check_fraction(momentum, "momentum")
        self.epsilon = _check_positive(epsilon, "epsilon")
        self.centered = _check_bool(centered, "centered")
        self.slot_initial_values = {"velocity": 0.0}
        if self.momentum:
            self.slot_initial_values["momentum"] = 0.0
        if self.centered:
            self.slot_initial_values["average_gradient"] = 0.0
        super().__init__(learning_rate, weight_decay=weight_decay, l2=l2)

    def _step(self, param, grad, slots, lr, step):
        rho = self.rho
        slots["velocity"] = rho * slots["velocity"] + (1 - rho) * grad * grad
        if self.centered:
            slots["average_gradient"] = rho * slots["average_gradient"] + (1 - rho) * grad
            # E[g^2] - E[g]^2 = Var[g]: the centred form divides by the gradient's spread.
            denominator = slots["velocity"] - slots["average_gradient"] ** 2 + self.epsilon
        else:
            denominator = slots["velocity"] + self.epsilon
        increment = lr * grad / np.sqrt(denominator)
        if not self.momentum:
            return param - increment
        slots["momentum"] = self.momentum * slots["momentum"] + increment
        return param - slots["momentum"]


class Adam(Optimizer):
    """Momentum on the gradient and RMSprop's scaling, bias-corrected (Kingma & Ba 2015)::

        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        amsgrad:  v_max = max(v_max, v); use v_max for v       (Reddi et al. 2018)
        w -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)

    This is the paper's "more efficient" ordering (end of its Section 2): equal to
    ``lr * m_hat / (sqrt(v_hat) + eps')`` with ``eps' = eps / sqrt(1 - b2**t)``.
    ``t`` counts from 1. ``weight_decay`` makes it AdamW, as in Keras; ``l2`` adds the
    penalty's gradient, which then gets divided by ``sqrt(v)`` like the loss gradient.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, *, weight_decay=None, l2=0.0):
        self.beta_1 = check_fraction(beta_1, "beta_1")
        self.beta_2 = check_fraction(beta_2, "beta_2")
        self.epsilon = _check_positive(epsilon, "epsilon")
        self.amsgrad = _check_bool(amsgrad, "amsgrad")
        self.slot_initial_values = {"m": 0.0, "v": 0.0}
        if self.amsgrad:
            self.slot_initial_values["v_max"] = 0.0
        super().__init__(learning_rate, weight_decay=weight_decay, l2=l2)

    def _step(self, param, grad, slots, lr, step):
        b1, b2 = self.beta_1, self.beta_2
        slots["m"] = b1 * slots["m"] + (1 - b1) * grad
        slots["v"] = b2 * slots["v"] + (1 - b2) * grad * grad
        v = slots["v"]
        if self.amsgrad:
            slots["v_max"] = np.maximum(slots["v_max"], v)
            v = slots["v_max"]
        alpha = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
        return param - alpha * slots["m"] / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), Keras' convention::

        w -= lr * weight_decay * w      # before the Adam step, not divided by sqrt(v)
        (Adam step with the loss gradient alone)

    The paper writes the decay as ``eta_t * lambda * w`` with ``eta_t`` the schedule
    multiplier, so its lambda is Keras' ``weight_decay * lr``. Keras' default is 0.004.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, *, l2=0.0):
        _check_positive(weight_decay, "weight_decay")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, l2=l2)


# --- the course's bug: Adam whose moments are re-created on every call ----------------

class FreshMomentsAdam(Adam):
    """The bug in the course notes' numpy Adam: ``m``, ``v`` and ``t`` are created
    inside the update function, so every call is Adam's first step.

    With ``m = (1-b1) g`` and ``v = (1-b2) g**2`` at ``t = 1`` the bias corrections give
    ``m_hat = g`` and ``v_hat = g**2``, so each step is ``lr * g / (|g| + eps')``, about
    ``lr * sign(g)``: sign descent with a fixed step. The gradient's size no longer
    matters, no averaging happens, and near a minimum the iterate keeps jumping by
    ``lr`` in every coordinate instead of settling.
    """

    def update(self, params, grads):
        self.reset()
        return super().update(params, grads)


def adam_with_fresh_moments(params, grads, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                            epsilon=1e-7):
    """One step of the buggy Adam (see :class:`FreshMomentsAdam`): a new optimizer, and
    so new zero moments, on every call."""
    return FreshMomentsAdam(learning_rate, beta_1, beta_2, epsilon).update(params, grads)


# --- 2-D test functions and trajectories --------------------------------------------

class Function2D:
    """A function of a point ``(x, y)`` with its gradient, both vectorised over leading
    axes (``points[..., 0]`` is x), for optimizer trajectories and contour plots.
    ``minimum``: the global minimiser; ``start``: a customary starting point;
    ``bounds``: ``((xmin, xmax), (ymin, ymax))`` that show the interesting part."""

    def __init__(self, name, value, gradient, minimum, start, bounds):
        self.name = name
        self._value = value
        self._gradient = gradient
        self.minimum = np.asarray(minimum, dtype=np.float64)
        self.start = np.asarray(start, dtype=np.float64)
        self.bounds = bounds

    def __call__(self, points):
        points = np.asarray(points, dtype=np.float64)
        return self._value(points[..., 0], points[..., 1])

    def gradient(self, points):
        points = np.asarray(points, dtype=np.float64)
        dx, dy = self._gradient(points[..., 0], points[..., 1])
        return np.stack(np.broadcast_arrays(dx, dy), axis=-1)

    def __repr__(self):
        return f"Function2D({self.name!r}, minimum={self.minimum.tolist()})"


def rosenbrock(a=1.0, b=100.0):
    """``(a - x)^2 + b (y - x^2)^2`` (Rosenbrock 1960): a curved, flat-bottomed valley
    with the minimum at ``(a, a^2)``."""
    a = _check_positive(a, "a")
    b = _check_positive(b, "b")
    return Function2D(
        "rosenbrock",
        lambda x, y: (a - x) ** 2 + b * (y - x * x) ** 2,
        lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)),
        minimum=(a, a * a), start=(-1.5, 2.0), bounds=((-2.0, 2.0), (-1.0, 3.0)))


def ill_conditioned_bowl(condition=10.0, angle=0.0):
    """``0.5 * p^T A p`` with ``A = R diag(1, condition) R^T``, ``R`` a rotation by
    ``angle`` radians: a quadratic whose curvatures differ by ``condition``, the case
    where plain gradient descent zig-zags and momentum or per-coordinate rates help (a
    rotation makes the axes no longer the right per-coordinate directions)."""
    condition = _check_positive(condition, "condition")
    if not (_is_number(angle) and math.isfinite(angle)):
        raise KerasdlError(f"angle must be a finite number of radians, got {angle!r}",
                           argument="angle")
    c, s = math.cos(angle), math.sin(angle)
    # A = R diag(1, k) R^T written out, so the lambdas stay elementwise.
    a11 = c * c + condition * s * s
    a22 = s * s + condition * c * c
    a12 = (1 - condition) * c * s
    return Function2D(
        f"bowl(condition={condition:g})",
        lambda x, y: 0.5 * (a11 * x * x + 2 * a12 * x * y + a22 * y * y),
        lambda x, y: (a11 * x + a12 * y, a12 * x + a22 * y),
        minimum=(0.0, 0.0), start=(-2.0, 1.0), bounds=((-2.5, 2.5), (-1.5, 1.5)))


def beale():
    """Beale's function, ``sum_i (c_i - x + x y^i)^2`` for ``c = (1.5, 2.25, 2.625)``:
    flat plateaus and sharp ridges, minimum at ``(3, 0.5)``."""
    coefficients = (1.5, 2.25, 2.625)

    def value(x, y):
        return sum((c - x + x * y ** (i + 1)) ** 2 for i, c in enumerate(coefficients))

    def gradient(x, y):
        dx = dy = 0.0
        for i, c in enumerate(coefficients):
            power = i + 1
            residual = c - x + x * y ** power
            dx = dx + 2 * residual * (y ** power - 1)
            dy = dy + 2 * residual * power * x * y ** (power - 1)
        return dx, dy

    return Function2D("beale", value, gradient, minimum=(3.0, 0.5), start=(1.0, 1.5),
                      bounds=((-4.5, 4.5), (-4.5, 4.5)))


def trajectory(optimizer, function, start=None, steps=100):
    """The points visited by ``optimizer`` on ``function`` (a :class:`Function2D`):
    an array of shape ``(steps + 1, 2)`` starting at ``start`` (default
    ``function.start``). The optimizer is reset first, so one object can draw several
    paths."""
    if not isinstance(optimizer, Optimizer):
        raise KerasdlError(f"optimizer must be a kerasdl.scratch.optimizers.Optimizer, got "
                           f"{type(optimizer).__name__}", argument="optimizer")
    if not isinstance(function, Function2D):
        raise KerasdlError(f"function must be a Function2D (e.g. rosenbrock()), got "
                           f"{type(function).__name__}", argument="function")
    steps = check_positive_int(steps, "steps")
    point = function.start if start is None else _as_float_array(start, "start").astype(np.float64)
    if point.shape != (2,):
        raise KerasdlError(f"start must be a point (x, y), got shape {point.shape}",
                           argument="start")
    optimizer.reset()
    points = [point]
    for _ in range(steps):
        point = optimizer.update(point, function.gradient(point))
        points.append(point)
    return np.stack(points)


class FreshMomentsDemo(NamedTuple):
    """Two trajectories (shape ``(steps + 1, 2)``) from the same start and rate."""
    correct: np.ndarray
    fresh: np.ndarray


def fresh_moments_demo(function=None, start=None, steps=300, learning_rate=0.05):
    """Adam and :class:`FreshMomentsAdam` from the same start with the same rate, on
    ``function`` (default: a bowl of condition number 10 rotated by 0.5 rad, rotated so
    that sign descent cannot land exactly on an axis).

    The buggy path moves by ``learning_rate`` in every coordinate at every step,
    whatever the gradient's size (see ``np.abs(np.diff(demo.fresh, axis=0))``), so it
    ends hopping around the minimum at a distance of order ``learning_rate``, while
    Adam's steps shrink with its averaged gradient. On :func:`rosenbrock` the fixed
    diagonal steps cannot follow the curved valley at all."""
    function = ill_conditioned_bowl(10.0, angle=0.5) if function is None else function
    return FreshMomentsDemo(
        correct=trajectory(Adam(learning_rate), function, start, steps),
        fresh=trajectory(FreshMomentsAdam(learning_rate), function, start, steps))


# --- learning-rate schedules ----------------------------------------------------------

def schedule_values(schedule, steps):
    """The rates ``schedule`` gives at ``steps`` (an int n for steps 0..n-1, or a list
    of step indices), as a float array for plotting. ``schedule`` is anything Keras
    accepts as a learning rate that depends on the step: a
    ``keras.optimizers.schedules.LearningRateSchedule`` (such as
    :class:`kerasdl.callbacks.WarmupCosine`) or a function of the 0-based step."""
    if not callable(schedule):
        raise KerasdlError(f"schedule must be a learning-rate schedule or a function of the "
                           f"step, got {schedule!r}", argument="schedule")
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
        steps = range(check_positive_int(int(steps), "steps"))
    else:
        steps = list(steps) if isinstance(steps, (list, tuple, range, np.ndarray)) else []
        if not steps or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                and s >= 0 for s in steps):
            raise KerasdlError("steps must be a positive int or a non-empty list of step "
                               "indices >= 0", argument="steps")
    return np.array([float(np.asarray(schedule(int(s)))) for s in steps], dtype=np.float64)
