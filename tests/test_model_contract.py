"""The model contract: every registered model, at its ``test_kwargs``, builds, gives
outputs of its documented shape, survives a ``.keras`` round trip with ``safe_mode=True``,
round-trips the config of every custom layer, trains for one step through ``fit()`` with
every trainable weight updated and finite, and matches its reference parameter counts;
``mobile`` models also export to TFLite and match Keras.

Nothing here is specific to TensorFlow: ``scripts/test.sh`` runs this module again under
``KERAS_BACKEND=jax`` (the TFLite check, TensorFlow-only, is skipped there).

A model gets all of this by registering (see ``kerasdl.registry``); nothing here names a
model. The test-only models in ``tests/contract_models.py`` (registered by ``conftest.py``
before collection) cover token inputs, two inputs and a model with its own ``train_step``.

Models tagged ``heavy`` skip the reference-configuration build unless KERASDL_HEAVY=1.

Twins: variants of one family usually share the family's ``test_kwargs``, which pin the
scaled dimensions (ResNet-20/32/44/56/110, EfficientNet-B0 to B7, the MobileNet widths),
so they build the very same test model. Such a model still gets the build, shape and
reference-count checks, but the save, fit, custom-layer, feature-tap and TFLite checks
run once, on the first of its twins: a twin is skipped only after its test model and the
first one's are built and found equal layer by layer (type, output shapes, parameters).
Models whose builder takes ``features_only`` have their feature taps checked, unless
tagged ``no_feature_maps`` (then the builder must refuse ``features_only=True``).
"""

from __future__ import annotations

import inspect
import os

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.analysis import receptive_field
from kerasdl.errors import KerasdlError
from kerasdl.registry import ParamCount, resolve_template
from kerasdl.train import build_for_fit
from tests.contract_models import TEST_MODELS
from tests.shapes_only import build_shapes_only

BATCH = 2
# The fit check's batch: over two samples a batch norm at 1x1 resolution maps each channel
# to about +-1 whatever its input, so the weights before it get almost no gradient.
FIT_BATCH = 4
SEQ_LEN = 6  # fills every None dimension of an input besides the batch
SAVE_ATOL = 1e-6
TFLITE_ATOL = 1e-4  # times the output scale, max(1, max |output|)

ALL_MODELS = kerasdl.list_models()
MOBILE_MODELS = kerasdl.list_models(tags="mobile")
_TAKES_FEATURES = [n for n in ALL_MODELS
                   if "features_only" in kerasdl.model_info(n).default_kwargs()]
NO_FEATURE_MAPS = kerasdl.list_models(tags="no_feature_maps")
FEATURE_MODELS = [n for n in _TAKES_FEATURES if n not in NO_FEATURE_MAPS]
RUN_HEAVY = os.environ.get("KERASDL_HEAVY") == "1"
ON_TENSORFLOW = keras.config.backend() == "tensorflow"


def _heavy_marked(names):
    """``names`` as params, heavy models skipped unless KERASDL_HEAVY=1."""
    params = []
    for name in names:
        heavy = "heavy" in kerasdl.model_info(name).tags
        marks = (
            [pytest.mark.skip(reason=f"{name} is tagged heavy; set KERASDL_HEAVY=1")]
            if heavy and not RUN_HEAVY
            else []
        )
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _twin_leaders():
    """``{name: first registered model with the same builder and test_kwargs}``."""
    leaders, first = {}, {}
    for name in ALL_MODELS:
        info = kerasdl.model_info(name)
        key = (info.builder, repr(sorted(info.test_kwargs.items())))
        leaders[name] = first.setdefault(key, name)
    return leaders


TWIN_LEADERS = _twin_leaders()
_FINGERPRINTS = {}


def _fingerprint(name):
    """The test model's layers as (type, output shapes, parameter count), in order."""
    if name not in _FINGERPRINTS:
        info = kerasdl.model_info(name)
        model = kerasdl.create_model(name, **info.test_kwargs)
        rows = []
        for layer in model._flatten_layers(include_self=False):
            try:
                shapes = keras.tree.map_structure(lambda t: tuple(t.shape), layer.output)
            except (AttributeError, ValueError):  # a layer called more than once
                shapes = None
            rows.append((type(layer).__name__, repr(shapes), layer.count_params()))
        _FINGERPRINTS[name] = rows
    return _FINGERPRINTS[name]


def skip_if_twin(name):
    """Skip ``name`` when it builds the same test model as its family's first variant."""
    leader = TWIN_LEADERS.get(name, name)
    if leader != name and _fingerprint(name) == _fingerprint(leader):
        pytest.skip(f"{name} builds the same test model as {leader} (layer types, shapes "
                    "and parameters), which is checked")


def test_twins_are_detected():
    """The twin rule must see the variants that share a test model, and only them: a
    family's first variant is never a twin, and models of different builders never are."""
    leaders = {n for n in ALL_MODELS if TWIN_LEADERS[n] == n}
    twins = [n for n in ALL_MODELS if TWIN_LEADERS[n] != n]
    for name in twins:
        assert kerasdl.model_info(name).builder is kerasdl.model_info(TWIN_LEADERS[name]).builder
        assert TWIN_LEADERS[name] in leaders
    if "resnet56" in ALL_MODELS:
        assert TWIN_LEADERS["resnet56"] == "resnet20"
        assert _fingerprint("resnet56") == _fingerprint("resnet20")
    if "lenet5" in ALL_MODELS and "resnet20" in ALL_MODELS:
        assert _fingerprint("lenet5") != _fingerprint("resnet20")


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)


# ---------------------------------------------------------------------------- helpers


def _setup(name):
    """(info, resolved kwargs, model) at the model's test configuration."""
    info = kerasdl.model_info(name)
    kwargs = info.resolved_kwargs(**info.test_kwargs)
    model = kerasdl.create_model(name, **info.test_kwargs)
    return info, kwargs, model


def _bound(value, kwargs, name):
    if isinstance(value, str):
        assert value in kwargs, (
            f"{name}: InputDecl bound {value!r} is not an argument of the builder "
            f"(arguments: {sorted(kwargs)})"
        )
        return kwargs[value]
    return value


def make_inputs(info, kwargs, model, seed=0, batch=BATCH):
    """Dummy inputs from ``model.inputs`` (shapes, dtypes) and ``info.inputs`` (values):
    one array per model input, in order; a single array when the model has one input."""
    tensors = getattr(model, "inputs", None)
    assert tensors, (
        f"{info.name}: the model has no `inputs`; a subclassed model must expose the "
        "input tensors of its first sub-network as an `inputs` property"
    )
    assert len(tensors) == len(info.inputs), (
        f"{info.name}: {len(tensors)} model inputs but {len(info.inputs)} InputDecl "
        "declarations in the registry"
    )
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor, decl in zip(tensors, info.inputs):
        shape = (batch,) + tuple(SEQ_LEN if d is None else int(d) for d in tensor.shape[1:])
        low = _bound(decl.low, kwargs, info.name)
        high = _bound(decl.high, kwargs, info.name)
        if decl.kind == "int":
            values = rng.integers(int(low), int(high), size=shape)
        else:
            values = rng.uniform(float(low), float(high), size=shape)
        arrays.append(values.astype(keras.backend.standardize_dtype(tensor.dtype)))
    return arrays[0] if len(arrays) == 1 else arrays


def _as_numpy_list(outputs):
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


def _expected_shapes(info, kwargs):
    try:
        expected = resolve_template(info.output_shape, kwargs)
    except KeyError as e:
        raise AssertionError(
            f"{info.name}: output_shape {info.output_shape!r} names {e}, which is not a "
            "builder argument"
        ) from None
    return expected if isinstance(expected, list) else [expected]


def _shape_matches(actual, template):
    return len(actual) == len(template) and all(
        t is None or a == t for a, t in zip(actual, template)
    )


# ---------------------------------------------------------------------------- tests


def test_test_only_models_are_registered():
    """conftest.py must register the test-only models before collection; otherwise the
    contract silently stops covering token, two-input and self-training models."""
    assert set(TEST_MODELS) <= set(ALL_MODELS)
    assert set(TEST_MODELS) == set(kerasdl.list_models(family="test"))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_builds_and_outputs_have_documented_shape(name):
    info, kwargs, model = _setup(name)
    assert isinstance(model, keras.Model), f"{name}: builder returned {type(model)}"
    if "name" in kwargs:
        assert model.name == kwargs["name"], f"{name}: model named {model.name!r}"
    x = make_inputs(info, kwargs, model)
    outputs = _as_numpy_list(model(x, training=False))
    expected = _expected_shapes(info, kwargs)
    assert len(outputs) == len(expected), (
        f"{name}: {len(outputs)} outputs, documented {len(expected)}: {info.output_shape}"
    )
    for i, (out, template) in enumerate(zip(outputs, expected)):
        assert out.shape[0] == BATCH, f"{name} output {i}: batch {out.shape[0]} != {BATCH}"
        assert _shape_matches(out.shape[1:], template), (
            f"{name} output {i}: shape {out.shape[1:]} does not match documented "
            f"{template} (template {info.output_shape!r})"
        )
        assert np.isfinite(out).all(), f"{name} output {i} has non-finite values"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_keras_save_and_safe_load_round_trip(name, tmp_path):
    skip_if_twin(name)
    info, kwargs, model = _setup(name)
    x = make_inputs(info, kwargs, model)
    before = _as_numpy_list(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded).__name__ == type(model).__name__
    assert loaded.count_params() == model.count_params()
    after = _as_numpy_list(loaded(x, training=False))
    assert len(after) == len(before)
    for i, (a, b) in enumerate(zip(after, before)):
        np.testing.assert_allclose(
            a, b, rtol=0, atol=SAVE_ATOL, err_msg=f"{name} output {i} after reload"
        )


def _targets_and_losses(info, outputs, rng):
    """Random targets shaped like ``outputs`` (one forward pass) and a loss for each."""
    targets, losses = [], []
    for out in outputs:
        if info.target == "classes":
            targets.append(rng.integers(0, out.shape[-1], size=out.shape[:-1]))
            losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        else:
            targets.append(rng.standard_normal(size=out.shape).astype("float32"))
            losses.append(keras.losses.MeanSquaredError())
    if len(outputs) == 1:
        return targets[0], losses[0]
    return targets, losses


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_training_step_through_fit(name):
    """One ``fit()`` step, the way users train: the loss is finite and every trainable
    weight moves (Adam moves a weight only where its gradient is non-zero) and stays
    finite.

    On TensorFlow a model trained by Keras' own ``train_step`` through Keras' own
    trainable layers takes the step eagerly, about 10x faster than tracing a graph for
    one step (Inception-ResNet-v2: 0.8 s against 9.7 s): building the functional model
    already traced its layers in a TensorFlow graph with a free batch size, and the JAX
    pass compiles the whole training step. A model with its own ``train_step`` or with a
    custom layer that branches on ``training`` takes it in graph mode."""
    skip_if_twin(name)
    info, kwargs, model = _setup(name)
    eager = ON_TENSORFLOW and info.target != "self" and not _custom_training_layers(model)
    x = make_inputs(info, kwargs, model, batch=FIT_BATCH)
    variables = list(model.trainable_variables)
    assert variables, f"{name} has no trainable variables"
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]

    if info.target == "self":
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        data = (x,)
    else:
        outputs = _as_numpy_list(model(x, training=False))
        y, loss = _targets_and_losses(info, outputs, np.random.default_rng(1))
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, run_eagerly=eager)
        data = (x, y)
    if not eager:
        build_for_fit(model, data)  # as kerasdl.train does: one trace instead of two
    history = model.fit(*data, epochs=1, batch_size=FIT_BATCH, verbose=0)

    assert history.history.get("loss"), f"{name}: fit() reported no loss"
    for key, values in history.history.items():
        assert np.isfinite(values).all(), f"{name}: {key} = {values} is not finite"
    after = [keras.ops.convert_to_numpy(v) for v in variables]
    exempt = _biases_before_batchnorm(model)
    unchanged = [v.path for v, b, a in zip(variables, before, after)
                 if np.array_equal(a, b) and v.path not in exempt]
    assert not unchanged, f"{name}: no gradient reached these weights: {unchanged}"
    bad = [v.path for v, a in zip(variables, after) if not np.isfinite(a).all()]
    assert not bad, f"{name}: non-finite weights after one step: {bad}"


def _custom_training_layers(model):
    """Names of the layers defined outside Keras whose ``call`` takes ``training``."""
    return sorted({type(layer).__name__
                   for layer in model._flatten_layers(include_self=False, recursive=True)
                   if type(layer).__module__.split(".")[0] != "keras"
                   and "training" in inspect.signature(layer.call).parameters})


def test_custom_training_layers_are_found():
    """The graph-mode rule above must see a custom layer nested in a sub-model."""
    class Noisy(keras.layers.Layer):
        def call(self, x, training=None):
            return x

    inner = keras.Sequential([keras.Input((3,)), Noisy(name="noisy")])
    outer = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.1), inner])
    assert _custom_training_layers(outer) == ["Noisy"]
    assert _custom_training_layers(kerasdl.create_model("t5_tiny")) == ["T5Attention"]
    assert _custom_training_layers(kerasdl.create_model("lenet5")) == []


def _biases_before_batchnorm(model):
    """Paths of biases and batch-norm offsets (beta) whose every effect on the output is
    removed by a training-mode batch normalisation, so that their gradient is zero in
    exact arithmetic (in float32 exactly 0.0 or a rounding residue, by the random batch).

    Such a weight adds the same value to every sample and position of its channel. That
    constant shift passes unchanged in kind through Adds and through 1x1 convolutions and
    dense layers (linear maps of a constant are constant), and a batch norm subtracts it
    with the batch mean. It is exempt only if every path from it meets a batch norm
    before anything else: ResNet v2's shortcut biases reach one through an Add and a 1x1
    convolution, MobileNetV2's project-BN betas through an Add."""
    found = set()
    for layer in model.layers if hasattr(model, "layers") else []:
        if isinstance(layer, keras.Model):
            found |= _biases_before_batchnorm(layer)
        if isinstance(layer, keras.layers.BatchNormalization):
            shift = layer.beta if layer.center else None
        else:
            shift = getattr(layer, "bias", None)
        if shift is not None and _shift_absorbed_by_batchnorm(layer):
            found.add(shift.path)
    return found


def _passes_constant_shift(layer):
    if isinstance(layer, keras.layers.Add):
        return True
    if isinstance(layer, keras.layers.Dense):
        return True
    kernel_size = getattr(layer, "kernel_size", None)
    return (isinstance(layer, keras.layers.Conv2D)
            and not isinstance(layer, keras.layers.DepthwiseConv2D)
            and tuple(kernel_size) == (1, 1))


def _shift_absorbed_by_batchnorm(layer, seen=None):
    seen = set() if seen is None else seen
    nodes = getattr(layer, "_outbound_nodes", [])
    if not nodes:
        return False  # a model output (or unused): its shift reaches the loss
    for node in nodes:
        nxt = node.operation
        if isinstance(nxt, keras.layers.BatchNormalization):
            continue
        if not _passes_constant_shift(nxt):
            return False
        if id(nxt) not in seen:
            seen.add(id(nxt))
            if not _shift_absorbed_by_batchnorm(nxt, seen):
                return False
    return True


def _own_layers(model):
    """Every layer of ``model`` (nested models included) whose class kerasdl or its
    tests define, i.e. every custom layer."""
    found = []
    for layer in model.layers if hasattr(model, "layers") else []:
        if type(layer).__module__.split(".")[0] in ("kerasdl", "tests"):
            found.append(layer)
        if isinstance(layer, keras.Model):
            found += _own_layers(layer)
    return found


@pytest.mark.parametrize("name", ALL_MODELS)
def test_custom_layers_round_trip_their_config(name):
    """``from_config(get_config())`` rebuilds each custom layer with the same config, and
    with the same weights it computes the same outputs."""
    skip_if_twin(name)
    info, kwargs, model = _setup(name)
    for layer in _own_layers(model):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config, f"{name}/{layer.name}: config changed"
        if isinstance(layer, keras.Model):
            continue
        rng = np.random.default_rng(0)
        # A layer of several inputs (an attention's query and keys) gets a list of them.
        several = isinstance(layer.input, (list, tuple))
        tensors = list(layer.input) if several else [layer.input]
        shapes = [(BATCH,) + tuple(SEQ_LEN if d is None else int(d) for d in t.shape[1:])
                  for t in tensors]
        samples = [rng.uniform(-1, 1, size=shape).astype("float32") for shape in shapes]
        shapes, sample = (shapes, samples) if several else (shapes[0], samples[0])
        clone.build(shapes)
        clone.set_weights(layer.get_weights())
        for got, want in zip(_as_numpy_list(clone(sample)), _as_numpy_list(layer(sample))):
            np.testing.assert_allclose(
                got, want, rtol=0, atol=1e-6,
                err_msg=f"{name}/{layer.name}: clone computes differently")


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_feature_taps(name):
    """``features_only=True`` returns ``{"stride_S": map}``, the last map at each stride
    (timm's convention), and none of the classifier's layers.

    The labels are checked against the layers, not trusted: the cumulative stride
    (``jump``) of the layers up to each map, computed from their strides by
    :func:`kerasdl.analysis.receptive_field`, must be ``S`` on both axes, and the strides
    must be powers of 2, from 2 up, strictly increasing.

    Sizes, for an ``n``-pixel side: "same" padding gives ``ceil(n / S)`` positions;
    "valid" convolutions and pooling give fewer, but no fewer than the positions whose
    whole receptive field ``r`` lies inside the image, ``floor((n - r) / S) + 1`` (exact
    for a chain of valid layers; padding only adds positions). So each side must lie in
    ``[max(1, floor((n - r) / S) + 1), ceil(n / S)]``: "same" nets meet the upper end,
    valid ones (LeNet's C5: 1x1, r = 32 = n) the lower, and a map at a wrong stride or
    taken after a wrong layer falls outside."""
    skip_if_twin(name)
    info = kerasdl.model_info(name)
    model = kerasdl.create_model(name, **{**info.test_kwargs, "features_only": True})
    kwargs = info.resolved_kwargs(**info.test_kwargs)
    x = make_inputs(info, kwargs, model)
    outputs = model(x, training=False)
    assert isinstance(outputs, dict) and outputs, f"{name}: no feature maps"
    assert all(key.startswith("stride_") for key in outputs), f"{name}: keys {list(outputs)}"
    strides = [int(key.split("_")[1]) for key in outputs]
    assert strides == sorted(set(strides)) and strides[0] >= 2, f"{name}: strides {strides}"
    assert all(s & (s - 1) == 0 for s in strides), f"{name}: strides {strides} not powers of 2"

    # The head: the full model's layers after its last spatial map.
    full = kerasdl.create_model(name, **info.test_kwargs)
    trunk = keras.Model(full.inputs, full.get_layer(receptive_field(full).layer).output)
    head = {layer.name for layer in full.layers} - {layer.name for layer in trunk.layers}
    assert head, f"{name}: found no classifier head in the full model"
    inside = head & {layer.name for layer in model.layers}
    assert not inside, f"{name}: the feature model holds classifier layers {sorted(inside)}"

    size = x.shape[1:3]
    for stride, (key, tensor) in zip(strides, outputs.items()):
        field = receptive_field(model, model.output[key])
        assert field.jump == (stride, stride), (
            f"{name}: {key} is at stride {field.jump} of the input, by its layers "
            f"(taken after {field.layer!r})")
        shape = tuple(keras.ops.shape(tensor))
        for axis, (n, r) in enumerate(zip(size, field.size)):
            low, high = max(1, (n - r) // stride + 1), -(-n // stride)
            assert low <= shape[1 + axis] <= high, (
                f"{name}: {key} has shape {shape} for a {tuple(size)} input; side {axis} "
                f"should be in [{low}, {high}] (receptive field {r})")
        assert np.isfinite(keras.ops.convert_to_numpy(tensor)).all()


@pytest.mark.parametrize("name", NO_FEATURE_MAPS)
def test_models_without_feature_maps_refuse_features_only(name):
    """A variant tagged ``no_feature_maps`` (its family builder takes ``features_only``)
    raises a :class:`KerasdlError` for ``features_only=True`` instead of returning
    something that is not a feature map."""
    assert name in _TAKES_FEATURES, f"{name} is tagged no_feature_maps but takes no features_only"
    info = kerasdl.model_info(name)
    with pytest.raises(KerasdlError, match="features_only"):
        kerasdl.create_model(name, **{**info.test_kwargs, "features_only": True})


def _count(model, trainable_only):
    if trainable_only:
        return int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return model.count_params()


@pytest.mark.skipif(not ON_TENSORFLOW, reason="counts do not depend on the backend; the "
                    "TensorFlow run checks them, so the giant models are built once")
@pytest.mark.parametrize("name", _heavy_marked(ALL_MODELS))
def test_reference_parameter_counts(name):
    """Each reference count equals the model's count at the reference configuration
    (one build per distinct configuration: a ``ParamCount`` may change it), built
    without initialising its weights (``tests/shapes_only.py``)."""
    info = kerasdl.model_info(name)
    if not info.reference_params:
        pytest.skip(f"{name} declares no reference parameter count")
    by_config = {}
    for source, ref in info.reference_params.items():
        ref = ref if isinstance(ref, ParamCount) else ParamCount(ref)
        kwargs = {**info.reference_kwargs, **ref.kwargs}
        by_config.setdefault(tuple(sorted(kwargs.items())), (kwargs, []))[1].append((source, ref))
    wrong = []
    for kwargs, refs in by_config.values():
        model = build_shapes_only(kerasdl.create_model, name, **kwargs)
        for source, ref in refs:
            count = _count(model, ref.trainable_only)
            if count != ref.count:
                where = kwargs or "its defaults"
                kind = " trainable" if ref.trainable_only else ""
                wrong.append(f"{source!r}: {ref.count:,} but the model at {where} has "
                             f"{count:,}{kind}")
        del model
    assert not wrong, f"{name}: " + "; ".join(wrong)


@pytest.mark.skipif(not ON_TENSORFLOW, reason="TFLite export needs the TensorFlow backend")
@pytest.mark.parametrize("name", MOBILE_MODELS)
def test_tflite_float32_matches_keras(name, tmp_path):
    skip_if_twin(name)
    from kerasdl.export.runtime import TFLiteRunner
    from kerasdl.export.tflite import convert_to_tflite

    info, kwargs, model = _setup(name)
    x = make_inputs(info, kwargs, model)
    expected = _as_numpy_list(model(x, training=False))
    assert len(expected) == 1, f"{name}: TFLite check handles one output"
    expected = expected[0]
    path = tmp_path / f"{name}.tflite"
    convert_to_tflite(model, path, variant="float32")
    assert path.is_file() and path.stat().st_size > 0, f"{name}: no .tflite written"
    got = np.asarray(TFLiteRunner(path, input_names=[t.name for t in model.inputs]).predict(x))
    assert got.shape == expected.shape, f"{name}: TFLite shape {got.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(
        got, expected, rtol=0, atol=TFLITE_ATOL * scale, err_msg=f"{name}: TFLite vs Keras"
    )


def test_runs_on_the_requested_backend():
    """The JAX run of this module must really be on JAX (KERAS_BACKEND is read once, at
    the first ``import keras``)."""
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted:
        assert keras.config.backend() == wanted
    else:
        assert keras.config.backend() == "tensorflow"
