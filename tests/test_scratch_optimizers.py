"""kerasdl.scratch.optimizers: the numpy update rules against keras.optimizers, step by
step, on a bumpy quadratic; L2 against decoupled weight decay; the course's Adam with
fresh moments; the 2-D test functions, trajectories and schedule values.

The float64 comparisons use hyper-parameters exact in float32 (0.875, 2**-7...) because
Keras turns some Python floats into float32 constants even for float64 variables; with
them the two implementations agree to round-off, so a 1e-10 tolerance catches any
convention slip (the textbook variants below miss by far more)."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl.callbacks import WarmupCosine
from kerasdl.errors import KerasdlError
from kerasdl.scratch import optimizers as so

STEPS = 100
_rng = np.random.default_rng(20)
_SHAPES = [(4, 5), ()]
_START = [_rng.normal(size=s) for s in _SHAPES]
_CURVATURE = [_rng.uniform(0.1, 5.0, size=s) for s in _SHAPES]
_TARGET = [_rng.normal(size=s) for s in _SHAPES]


def _grads(params, l2=0.0):
    """Gradient of sum(c/2 (w - t)^2 - 0.1 cos(3w)) (+ l2/2 ||w||^2): a quadratic with
    ripples, so gradients differ in size across coordinates and over time."""
    return [(c * (p - t) + 0.3 * np.sin(3 * p) + l2 * p).astype(p.dtype)
            for p, c, t in zip(params, _CURVATURE, _TARGET)]


@pytest.fixture
def floatx64():
    # The learning-rate variable takes floatx; float32 would round 1e-3-like rates.
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)


def _keras_path(optimizer, dtype="float64", l2=0.0):
    variables = [keras.Variable(p.astype(dtype), dtype=dtype) for p in _START]
    optimizer.build(variables)
    # One traced step instead of ~15 eager ops per variable per step keeps this fast.
    apply = tf.function(lambda grads: optimizer.apply_gradients(zip(grads, variables)))
    path = []
    for _ in range(STEPS):
        apply(_grads([v.numpy() for v in variables], l2))
        path.append([v.numpy() for v in variables])
    return path


def _numpy_path(optimizer, dtype="float64", l2=0.0):
    params = [p.astype(dtype) for p in _START]
    path = []
    for _ in range(STEPS):
        params = optimizer.update(params, _grads(params, l2))
        path.append(params)
    return path


def _gap(path_a, path_b):
    return max(float(np.abs(a - b).max())
               for step_a, step_b in zip(path_a, path_b) for a, b in zip(step_a, step_b))


def _moved(path):
    return max(float(np.abs(p - s).max()) for p, s in zip(path[-1], _START))


_ADAM = dict(learning_rate=2.0 ** -4, beta_1=0.875, beta_2=1 - 2.0 ** -10, epsilon=2.0 ** -7)


def _halving(base):
    """A step schedule (halve at steps 30 and 60): where the learning rate changes, the
    place of lr inside or outside a momentum buffer matters."""
    return lambda: keras.optimizers.schedules.PiecewiseConstantDecay(
        [30, 60], [base, base / 2, base / 4])


# (keras class, our class, hyper-parameters); a schedule is built fresh for each side.
# Plain SGD is covered by the float32 run below (Keras' defaults), Nesterov and AdamW by
# their weight-decay and schedule cases.
_CASES = {
    "momentum": ("SGD", "SGD", dict(learning_rate=2.0 ** -4, momentum=0.875)),
    "nesterov_decay": ("SGD", "SGD", dict(learning_rate=2.0 ** -4, momentum=0.875,
                                          nesterov=True, weight_decay=0.125)),
    "momentum_schedule": ("SGD", "SGD", dict(learning_rate=_halving(2.0 ** -4), momentum=0.875)),
    "adagrad": ("Adagrad", "Adagrad", dict(learning_rate=0.125, initial_accumulator_value=0.125,
                                           epsilon=2.0 ** -7)),
    "rmsprop": ("RMSprop", "RMSprop", dict(learning_rate=2.0 ** -6, rho=0.875,
                                           epsilon=2.0 ** -7)),
    "rmsprop_centered_momentum_schedule": ("RMSprop", "RMSprop", dict(
        learning_rate=_halving(2.0 ** -6), rho=0.875, momentum=0.5, centered=True,
        epsilon=2.0 ** -7)),
    "adam": ("Adam", "Adam", _ADAM),
    "amsgrad": ("Adam", "Adam", dict(_ADAM, amsgrad=True)),
    "adamw_schedule": ("AdamW", "AdamW", dict(_ADAM, learning_rate=_halving(2.0 ** -4),
                                              weight_decay=0.125)),
    # Keras' weight_decay is decoupled in every optimizer: its Adam(weight_decay) is AdamW.
    "keras_adam_decay": ("Adam", "AdamW", dict(_ADAM, weight_decay=0.125)),
}
_keras_paths = {}


def _kwargs(case):
    return {k: v() if k == "learning_rate" and callable(v) else v
            for k, v in _CASES[case][2].items()}


def _keras_case(case):
    if case not in _keras_paths:
        keras_class = getattr(keras.optimizers, _CASES[case][0])
        _keras_paths[case] = _keras_path(keras_class(**_kwargs(case)))
    return _keras_paths[case]


@pytest.mark.parametrize("case", sorted(_CASES))
def test_matches_keras_step_by_step(floatx64, case):
    ours = _numpy_path(getattr(so, _CASES[case][1])(**_kwargs(case)))
    theirs = _keras_case(case)
    assert _moved(theirs) > 0.1  # the comparison covers real motion, not a stuck start
    assert _gap(ours, theirs) < 1e-10


class _TextbookAdam(so.Adam):
    """Kingma & Ba's Algorithm 1 as usually printed: eps outside sqrt(v_hat)."""

    def _step(self, param, grad, slots, lr, step):
        b1, b2 = self.beta_1, self.beta_2
        slots["m"] = b1 * slots["m"] + (1 - b1) * grad
        slots["v"] = b2 * slots["v"] + (1 - b2) * grad * grad
        m_hat, v_hat = slots["m"] / (1 - b1 ** step), slots["v"] / (1 - b2 ** step)
        return param - lr * m_hat / (np.sqrt(v_hat) + self.epsilon)


class _TextbookAdagrad(so.Adagrad):
    """Duchi et al.'s form: G from 0, eps outside the root."""

    def _step(self, param, grad, slots, lr, step):
        slots["accumulator"] = slots["accumulator"] + grad * grad
        return param - lr * grad / (np.sqrt(slots["accumulator"]) + self.epsilon)


class _TextbookMomentum(so.SGD):
    """v = mu v + g; w -= lr v: the learning rate outside the velocity."""

    def _step(self, param, grad, slots, lr, step):
        slots["velocity"] = self.momentum * slots["velocity"] + grad
        return param - lr * slots["velocity"]


@pytest.mark.parametrize("case, variant, extra", [
    ("adam", _TextbookAdam, {}),
    ("adagrad", _TextbookAdagrad, {"initial_accumulator_value": 0.0}),
    ("momentum_schedule", _TextbookMomentum, {}),
])
def test_textbook_forms_differ_from_keras(floatx64, case, variant, extra):
    """The harness above can fail: each textbook convention misses Keras by far more
    than its tolerance."""
    ours = _numpy_path(variant(**dict(_kwargs(case), **extra)))
    assert _gap(ours, _keras_case(case)) > 1e-4


def test_textbook_momentum_equals_keras_while_the_rate_is_constant(floatx64):
    ours = _numpy_path(_TextbookMomentum(**_kwargs("momentum")))
    assert _gap(ours, _keras_case("momentum")) < 1e-10


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(momentum=0.9, nesterov=True)), ("Adagrad", {}), ("RMSprop", {}), ("Adam", {}),
])
def test_default_hyper_parameters_match_keras_in_float32(name, kwargs):
    assert keras.config.floatx() == "float32"
    theirs = _keras_path(getattr(keras.optimizers, name)(**kwargs), dtype="float32")
    ours = _numpy_path(getattr(so, name)(**kwargs), dtype="float32")
    assert ours[-1][0].dtype == np.float32
    # float32 round-off of two orderings of the same arithmetic (Adam: ~2e-6 seen).
    assert _gap(ours, theirs) < 1e-5


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_signature_defaults_are_keras_defaults(name):
    ours = inspect.signature(getattr(so, name)).parameters
    theirs = inspect.signature(getattr(keras.optimizers, name)).parameters
    for argument, parameter in ours.items():
        if argument == "l2":
            continue
        assert parameter.default == theirs[argument].default, argument


# --- L2 penalty against decoupled weight decay ----------------------------------------

def test_l2_equals_weight_decay_for_plain_sgd():
    # Keras scales the decay by lr, so l2 = lam and weight_decay = lam give the same step.
    lam = 0.3
    l2 = _numpy_path(so.SGD(0.05, l2=lam))
    decay = _numpy_path(so.SGD(0.05, weight_decay=lam))
    assert _gap(l2, decay) < 1e-12
    assert _gap(l2, _numpy_path(so.SGD(0.05))) > 1e-2


def test_l2_differs_from_weight_decay_with_momentum_and_adam():
    lam = 0.3
    momentum = _gap(_numpy_path(so.SGD(0.05, momentum=0.9, l2=lam)),
                    _numpy_path(so.SGD(0.05, momentum=0.9, weight_decay=lam)))
    adam = _gap(_numpy_path(so.Adam(0.05, l2=lam)), _numpy_path(so.AdamW(0.05, weight_decay=lam)))
    assert momentum > 1e-3
    assert adam > 1e-2


def test_adam_l2_is_keras_adam_on_the_penalised_loss(floatx64):
    lam = 0.25
    theirs = _keras_path(keras.optimizers.Adam(**_ADAM), l2=lam)
    assert _gap(_numpy_path(so.Adam(**_ADAM, l2=lam)), theirs) < 1e-10
    assert _gap(_numpy_path(so.AdamW(**_ADAM, weight_decay=lam)), theirs) > 1e-3


# --- the course's Adam with fresh moments ---------------------------------------------

def test_fresh_moments_step_is_lr_times_sign_of_gradient():
    rng = np.random.default_rng(1)
    params = [rng.normal(size=(3, 4)), rng.normal(size=7)]
    grads = [rng.choice([-1, 1], size=p.shape) * 10 ** rng.uniform(-2, 1, size=p.shape)
             for p in params]
    lr = 0.01
    new = so.adam_with_fresh_moments(params, grads, learning_rate=lr)
    for p, g, n in zip(params, grads, new):
        np.testing.assert_allclose(n - p, -lr * np.sign(g), rtol=1e-3)


def test_fresh_moments_never_average():
    # Alternating gradients: Adam's momentum cancels them; the fresh one jumps by lr each time.
    g = np.array([0.5, -2.0])
    lr = 0.01
    adam, fresh = so.Adam(lr), so.FreshMomentsAdam(lr)
    p_adam = p_fresh = np.zeros(2)
    for sign in (1, -1):
        p_adam = adam.update(p_adam, sign * g)
        p_fresh = fresh.update(p_fresh, sign * g)
    np.testing.assert_allclose(p_fresh, 0.0, atol=1e-9)
    assert np.all(np.abs(p_adam) > 0.5 * lr)  # the second step undid little of the first


def test_fresh_moments_demo_hops_while_adam_settles():
    lr = 0.05
    demo = so.fresh_moments_demo(steps=300, learning_rate=lr)
    assert demo.correct.shape == demo.fresh.shape == (301, 2)
    np.testing.assert_allclose(np.abs(np.diff(demo.fresh, axis=0)), lr, rtol=1e-3)
    fresh_distance = np.linalg.norm(demo.fresh[-1])
    assert fresh_distance > lr / 2
    assert np.linalg.norm(demo.correct[-1]) < fresh_distance / 10


# --- test functions, trajectories, schedules ------------------------------------------

_FUNCTIONS = [so.rosenbrock(), so.rosenbrock(a=0.5, b=10.0), so.ill_conditioned_bowl(25.0, 0.7),
              so.beale()]


@pytest.mark.parametrize("function", _FUNCTIONS, ids=lambda f: f.name)
def test_gradients_match_finite_differences(function):
    points = np.random.default_rng(2).uniform(-1.5, 1.5, size=(5, 2))
    h = 1e-6
    numeric = np.stack([(function(points + h * e) - function(points - h * e)) / (2 * h)
                        for e in np.eye(2)], axis=-1)
    np.testing.assert_allclose(function.gradient(points), numeric, rtol=1e-5, atol=1e-6)
    assert function(function.minimum) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(function.gradient(function.minimum), 0.0, atol=1e-12)


def test_bowl_curvatures_are_one_and_the_condition_number():
    bowl = so.ill_conditioned_bowl(condition=40.0, angle=1.1)
    hessian = np.stack([bowl.gradient(e) for e in np.eye(2)], axis=-1)  # linear gradient
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), [1.0, 40.0])
    assert abs(hessian[0, 1]) > 1.0  # rotated: the axes are not the eigenvectors


def test_functions_are_vectorised_for_contour_plots():
    x, y = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(0, 2, 3))
    grid = np.stack([x, y], axis=-1)
    rosen = so.rosenbrock()
    assert rosen(grid).shape == (3, 4)
    assert rosen.gradient(grid).shape == (3, 4, 2)
    assert rosen(grid)[1, 2] == pytest.approx(rosen([x[1, 2], y[1, 2]]))


def test_trajectory_shape_start_reset_and_convergence():
    bowl = so.ill_conditioned_bowl(10.0)
    sgd = so.SGD(0.05)
    path = so.trajectory(sgd, bowl, steps=300)
    assert path.shape == (301, 2)
    np.testing.assert_array_equal(path[0], bowl.start)
    assert np.linalg.norm(path[-1]) < 1e-3
    np.testing.assert_array_equal(so.trajectory(sgd, bowl, steps=300), path)
    np.testing.assert_array_equal(so.trajectory(sgd, bowl, start=(1.0, 1.0), steps=1)[0],
                                  [1.0, 1.0])


def test_update_leaves_its_inputs_alone_and_keeps_per_parameter_state():
    params = [np.ones(3), np.full((2, 2), 2.0)]
    grads = [np.full(3, 0.5), np.ones((2, 2))]
    opt = so.Adam(0.1)
    new = opt.update(params, grads)
    np.testing.assert_array_equal(params[0], np.ones(3))
    assert not np.allclose(new[0], params[0])
    assert [s["m"].shape for s in opt.slots] == [(3,), (2, 2)]
    assert opt.iterations == 1


def test_schedule_values():
    schedule = WarmupCosine(peak=0.1, total_steps=20, warmup_steps=5)
    values = so.schedule_values(schedule, 20)
    assert values.shape == (20,)
    assert values[0] == pytest.approx(0.01)
    assert values.max() == pytest.approx(0.1)
    assert values[5] == pytest.approx(0.1)
    np.testing.assert_allclose(so.schedule_values(lambda s: 0.5 ** s, [0, 3]), [1.0, 0.125])


@pytest.mark.parametrize("build, argument", [
    (lambda: so.SGD(learning_rate=0), "learning_rate"),
    (lambda: so.SGD(learning_rate=float("nan")), "learning_rate"),
    (lambda: so.SGD(momentum=1.0), "momentum"),
    (lambda: so.SGD(nesterov=True), "nesterov"),
    (lambda: so.SGD(momentum=0.9, nesterov="yes"), "nesterov"),
    (lambda: so.SGD(weight_decay=-0.1), "weight_decay"),
    (lambda: so.SGD(l2=-1), "l2"),
    (lambda: so.Adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: so.Adagrad(epsilon=0), "epsilon"),
    (lambda: so.RMSprop(rho=1.0), "rho"),
    (lambda: so.RMSprop(centered=1), "centered"),
    (lambda: so.Adam(beta_1=-0.1), "beta_1"),
    (lambda: so.Adam(beta_2=1.0), "beta_2"),
    (lambda: so.Adam(amsgrad=None), "amsgrad"),
    (lambda: so.AdamW(weight_decay=None), "weight_decay"),
    (lambda: so.ill_conditioned_bowl(condition=0), "condition"),
    (lambda: so.rosenbrock(b=-1), "b"),
    (lambda: so.trajectory("adam", so.beale()), "optimizer"),
    (lambda: so.trajectory(so.SGD(), so.beale(), steps=0), "steps"),
    (lambda: so.trajectory(so.SGD(), so.beale(), start=(1.0, 2.0, 3.0)), "start"),
    (lambda: so.schedule_values(0.1, 10), "schedule"),
    (lambda: so.schedule_values(lambda s: 0.1, 0), "steps"),
    (lambda: so.schedule_values(lambda s: 0.1, [-1]), "steps"),
    (lambda: so.SGD().update([np.ones(2)], [np.ones(2), np.ones(2)]), "grads"),
    (lambda: so.SGD().update([np.ones(2)], [np.ones(3)]), "grads"),
])
def test_bad_arguments_raise(build, argument):
    with pytest.raises(KerasdlError) as caught:
        build()
    assert caught.value.argument == argument
    assert argument in str(caught.value)


def test_changing_parameter_shapes_needs_reset():
    opt = so.Adam()
    opt.update([np.ones(2)], [np.ones(2)])
    with pytest.raises(KerasdlError, match="reset"):
        opt.update([np.ones(3)], [np.ones(3)])
    opt.reset()
    assert opt.update([np.ones(3)], [np.ones(3)])[0].shape == (3,)
