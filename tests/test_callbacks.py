"""kerasdl.callbacks: schedules against their papers' formulas, gradient clipping against
what reaches the weights (TensorFlow here, JAX in a subprocess), and the callbacks'
logs and files. Every model is a Dense layer or two on a few dozen random rows."""

import csv
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasdl.callbacks import (
    AdaptiveGradientClipping,
    ConfusionMatrixWriter,
    DivideOnPlateau,
    ImageSampleWriter,
    LearningRateLogger,
    Noam,
    OneCycle,
    StepDecay,
    Throughput,
    confusion_matrix,
    early_stopping,
    gradient_clipping,
    image_grid,
    with_adaptive_gradient_clipping,
)
from kerasdl.errors import KerasdlError
from tests.jax_env import jax_subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in steps])


def _dense_model(inputs=4, units=1, name="d"):
    return keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units, name=name)])


def _regression_data(rows=24, inputs=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, inputs)).astype("float32")
    return x, (x.sum(axis=1, keepdims=True) + 0.1 * rng.normal(size=(rows, 1))).astype("float32")


# --- schedules -------------------------------------------------------------------------

def test_step_decay_divides_at_each_boundary():
    schedule = StepDecay(0.1, [3, 7], factor=0.1)
    steps = range(12)
    expected = [0.1 * 0.1 ** ((s >= 3) + (s >= 7)) for s in steps]
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=1e-6)
    by_epoch = StepDecay.at_epochs(0.5, [2, 3], steps_per_epoch=10, factor=0.5)
    assert by_epoch.boundaries == [20, 30]
    np.testing.assert_allclose(_values(by_epoch, [19, 20, 29, 30]),
                               [0.5, 0.25, 0.25, 0.125], rtol=1e-6)


@pytest.mark.parametrize("kwargs, argument", [
    ({"initial": 0.0, "boundaries": [5]}, "initial"),
    ({"initial": 0.1, "boundaries": []}, "boundaries"),
    ({"initial": 0.1, "boundaries": [5, 5]}, "boundaries"),
    ({"initial": 0.1, "boundaries": [2.5]}, "boundaries"),
    ({"initial": 0.1, "boundaries": [5], "factor": -1}, "factor"),
])
def test_step_decay_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(KerasdlError) as error:
        StepDecay(**kwargs)
    assert error.value.argument == argument


def test_one_cycle_follows_smith_and_topin():
    max_lr, total, pct, div, final_div = 0.4, 21, 0.25, 20.0, 100.0
    schedule = OneCycle(max_lr, total, pct_start=pct, div_factor=div, final_div_factor=final_div)
    peak = round(pct * (total - 1))  # 5
    low, end = max_lr / div, max_lr / div / final_div

    def expected(s):
        if s <= peak:
            return low + (max_lr - low) * s / peak
        t = min((s - peak) / (total - 1 - peak), 1.0)
        return end + (max_lr - end) * (1 + math.cos(math.pi * t)) / 2

    steps = list(range(total + 3))
    values = _values(schedule, steps)
    np.testing.assert_allclose(values, [expected(s) for s in steps], rtol=1e-5, atol=1e-9)
    assert values[0] == pytest.approx(0.02) and values[peak] == pytest.approx(0.4)
    assert values[total - 1] == pytest.approx(2e-4) and values[-1] == pytest.approx(2e-4)
    assert np.all(np.diff(values[:peak + 1]) > 0) and np.all(np.diff(values[peak:total]) < 0)
    with pytest.raises(KerasdlError) as error:
        OneCycle(0.1, total_steps=2)
    assert error.value.argument == "total_steps"
    with pytest.raises(KerasdlError, match="pct_start"):
        OneCycle(0.1, 100, pct_start=1.0)


def test_noam_is_vaswani_eq3_counting_steps_from_one():
    d_model, warmup, scale = 64, 10, 2.0
    schedule = Noam(d_model, warmup_steps=warmup, scale=scale)
    steps = list(range(40))
    expected = [scale * d_model ** -0.5 * min((s + 1) ** -0.5, (s + 1) * warmup ** -1.5)
                for s in steps]
    values = _values(schedule, steps)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert np.all(np.isfinite(values)) and values[0] > 0
    # Peak at the paper's step n = warmup_steps, i.e. Keras step warmup - 1.
    assert int(np.argmax(values)) == warmup - 1
    assert values.max() == pytest.approx(scale * (d_model * warmup) ** -0.5, rel=1e-5)
    with pytest.raises(KerasdlError, match="d_model"):
        Noam(0)


@pytest.mark.parametrize("schedule", [
    StepDecay(0.1, [4, 9], 0.5), OneCycle(0.3, 30), Noam(32, warmup_steps=5)])
def test_schedules_survive_optimizer_serialization(schedule):
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    config = keras.saving.serialize_keras_object(optimizer)
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert type(restored._learning_rate) is type(schedule)
    steps = [0, 3, 4, 9, 17, 40]
    np.testing.assert_allclose(_values(restored._learning_rate, steps),
                               _values(schedule, steps), rtol=1e-7)


# --- gradient clipping -----------------------------------------------------------------

def test_gradient_clipping_kwargs_reach_keras():
    assert gradient_clipping("global_norm", 1) == {"global_clipnorm": 1.0}
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.SGD(1.0, **gradient_clipping("value", 0.5))
    optimizer.apply([np.array([10.0, -0.2, -7.0], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.5, 0.2, 0.5])
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer = keras.optimizers.SGD(1.0, **gradient_clipping("norm", 1.0))
    optimizer.apply([np.array([3.0, 4.0], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.6, -0.8], rtol=1e-6)
    with pytest.raises(KerasdlError) as error:
        gradient_clipping("elementwise", 1.0)
    assert error.value.argument == "by"
    with pytest.raises(KerasdlError, match="threshold"):
        gradient_clipping("norm", 0)


def _agc_fit_check():
    """One full-batch SGD step (lr 1) through ``model.fit`` with AGC, compared with the
    step computed here in numpy from the MSE gradient and Brock et al.'s eq. 3. Runs
    under whichever backend Keras was imported with (the JAX test runs it in a
    subprocess)."""
    rng = np.random.default_rng(1)
    rows, inputs, units, clipping, eps = 16, 5, 4, 0.01, 1e-3
    x = rng.normal(size=(rows, inputs)).astype("float32")
    kernel = (rng.normal(size=(inputs, units)) * [1.0, 0.1, 1.0, 2.0]).astype("float32")
    # Targets offset from the model's outputs by one constant per unit: unit 0 so little
    # that its gradient stays under the threshold, the others far beyond it.
    offset = np.array([1e-3, 50.0, -80.0, 200.0], "float32")
    y = x @ kernel + offset
    # Keras' "mse": mean over units and rows, so dL/d(output) = 2 (out - y) / (rows * units).
    d_out = np.broadcast_to(-2 * offset / (rows * units), (rows, units))
    grads = {"kernel": x.T @ d_out, "bias": d_out.sum(axis=0)}
    weights = {"kernel": kernel, "bias": np.zeros(units, "float32")}

    def clipped(name):
        g, w = grads[name].astype("float64"), weights[name].astype("float64")
        if g.ndim == 1:  # a vector is one unit
            g_norm, w_norm = np.linalg.norm(g), np.linalg.norm(w)
        else:  # one unit per output column
            g_norm, w_norm = np.linalg.norm(g, axis=0), np.linalg.norm(w, axis=0)
        return g * np.minimum(1.0, clipping * np.maximum(w_norm, eps) / g_norm)

    assert np.linalg.norm(clipped("kernel")[:, 0] - grads["kernel"][:, 0]) == 0
    assert np.all(np.linalg.norm(clipped("kernel")[:, 1:] - grads["kernel"][:, 1:], axis=0) > 0)
    for exclude in ((), ("d/bias",)):
        model = _dense_model(inputs, units)
        model.set_weights([kernel, weights["bias"]])
        optimizer = with_adaptive_gradient_clipping(keras.optimizers.SGD(1.0), clipping, eps,
                                                    exclude=exclude)
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=rows, epochs=1, shuffle=False, verbose=0)
        new_kernel, new_bias = model.get_weights()
        np.testing.assert_allclose(new_kernel, kernel - clipped("kernel"), rtol=1e-4, atol=1e-6)
        bias_step = grads["bias"] if exclude else clipped("bias")
        np.testing.assert_allclose(new_bias, -bias_step, rtol=1e-4, atol=1e-7)
        if not exclude:  # zero bias: its whole-vector step is clipping * eps
            assert np.linalg.norm(new_bias) == pytest.approx(clipping * eps, rel=1e-4)
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1


def test_adaptive_gradient_clipping_tensorflow():
    _agc_fit_check()


def _run_with_jax(code):
    env = jax_subprocess_env()
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_adaptive_gradient_clipping_and_throughput_under_jax():
    code = ("import keras; assert keras.backend.backend() == 'jax'\n"
            "from tests.test_callbacks import _agc_fit_check, _throughput_check\n"
            "_agc_fit_check(); _throughput_check(); print('JAX-OK')")
    result = _run_with_jax(code)
    assert result.returncode == 0 and "JAX-OK" in result.stdout, result.stderr[-3000:]


def test_adaptive_gradient_clipping_wrapper_forwards_and_reloads(tmp_path):
    x, y = _regression_data()
    schedule = StepDecay(0.05, [2], 0.5)
    optimizer = AdaptiveGradientClipping(keras.optimizers.SGD(schedule, momentum=0.9),
                                         clipping=0.02, exclude=["bias"])
    assert optimizer.learning_rate is not None
    model = _dense_model()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # 3 steps
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 3
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.025)
    path = str(tmp_path / "agc.keras")
    model.save(path)
    restored = keras.saving.load_model(path).optimizer
    assert isinstance(restored, AdaptiveGradientClipping)
    assert isinstance(restored.inner_optimizer._learning_rate, StepDecay)
    assert (restored.clipping, restored.eps, list(restored.exclude)) == (0.02, 1e-3, ["bias"])
    assert int(keras.ops.convert_to_numpy(restored.iterations)) == 3
    momentum = [v for v in restored.inner_optimizer.variables if "momentum" in v.path]
    original = [v for v in optimizer.inner_optimizer.variables if "momentum" in v.path]
    assert momentum and all(np.allclose(a.numpy(), b.numpy()) for a, b in zip(momentum, original))
    plain = AdaptiveGradientClipping(keras.optimizers.SGD(0.1))
    plain.learning_rate = 0.01  # what ReduceLROnPlateau does
    assert float(plain.inner_optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    with pytest.raises(KerasdlError) as error:
        with_adaptive_gradient_clipping("sgd", clipping=0)
    assert error.value.argument == "clipping"
    with pytest.raises(KerasdlError, match="exclude"):
        with_adaptive_gradient_clipping("sgd", exclude="bias")
    with pytest.raises(KerasdlError) as error:
        with_adaptive_gradient_clipping(keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD()))
    assert error.value.argument == "inner_optimizer"


# --- learning-rate callbacks -------------------------------------------------------------

def test_learning_rate_logger_writes_the_rate_into_the_csv(tmp_path):
    x, y = _regression_data(rows=8)
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(StepDecay(0.1, [2, 4], 0.5)), loss="mse")
    log = tmp_path / "log.csv"
    model.fit(x, y, batch_size=4, epochs=3, verbose=0,  # 2 steps an epoch: 0-1, 2-3, 4-5
              callbacks=[LearningRateLogger(), keras.callbacks.CSVLogger(str(log))])
    with open(log) as f:
        rows = list(csv.DictReader(f))
    # The rate of each epoch's last step (1, 3, 5): one more boundary passed each epoch.
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.1, 0.05, 0.025])


class _Constant(keras.callbacks.Callback):
    """Logs a metric that never improves after its first epoch."""

    def on_epoch_end(self, epoch, logs=None):
        logs["flat"] = 1.0


def test_divide_on_plateau_divides_by_ten_and_refuses_schedules(tmp_path):
    x, y = _regression_data(rows=8)
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    log = tmp_path / "log.csv"
    # Patience 1 on a flat metric: epoch 0 sets the best, epochs 1 and 2 each divide once.
    model.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[_Constant(), LearningRateLogger(),
                         DivideOnPlateau(monitor="flat", patience=1, mode="min"),
                         keras.callbacks.CSVLogger(str(log))])
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    with open(log) as f:
        assert [float(r["learning_rate"]) for r in csv.DictReader(f)] == pytest.approx(
            [0.1, 0.1, 0.01])
    scheduled = _dense_model()
    scheduled.compile(optimizer=with_adaptive_gradient_clipping(
        keras.optimizers.SGD(Noam(8, 4))), loss="mse")
    with pytest.raises(KerasdlError) as error:
        scheduled.fit(x, y, epochs=1, verbose=0, callbacks=[DivideOnPlateau()])
    assert error.value.argument == "learning_rate"
    with pytest.raises(KerasdlError) as error:
        DivideOnPlateau(factor=10)
    assert error.value.argument == "factor"


# --- monitors -----------------------------------------------------------------------------

class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class _Advance(keras.callbacks.Callback):
    """Moves the fake clock: 5 s per training batch, 100 s per validation batch."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.clock.now += 5.0

    def on_test_batch_end(self, batch, logs=None):
        self.clock.now += 100.0


def test_throughput_times_training_batches_only(monkeypatch):
    import kerasdl.callbacks.monitors as monitors

    clock = _FakeClock()
    monkeypatch.setattr(monitors, "time", clock)
    x, y = _regression_data(rows=20)
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse")
    exact, full = Throughput(8, num_examples=20), Throughput(8)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
                        callbacks=[_Advance(clock), exact])
    # 3 batches (8, 8, 4) of 5 s each; the 300 s of validation must not count.
    assert history.history["examples_per_second"] == pytest.approx([20 / 15, 20 / 15])
    # Without num_examples the short last batch counts as a full one; no validation:
    # the clock stops at the end of the epoch.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[_Advance(clock), full])
    assert model.history.history["examples_per_second"] == pytest.approx([24 / 15])
    assert full.steps_run() == 3
    with pytest.raises(KerasdlError, match="batch_size"):
        Throughput(0)


def _throughput_check():
    """Real clock, any backend: a positive finite rate per epoch."""
    x, y = _regression_data(rows=20)
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
                        callbacks=[Throughput(8, num_examples=20)])
    rates = history.history["examples_per_second"]
    assert len(rates) == 2 and all(math.isfinite(r) and r > 0 for r in rates), rates


def test_throughput_real_clock():
    _throughput_check()


class _Scripted(keras.callbacks.Callback):
    """Logs a scripted metric and keeps each epoch's weights."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.weights.append([w.copy() for w in self.model.get_weights()])


def test_early_stopping_restores_the_best_epoch():
    x, y = _regression_data(rows=8)
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    scripted = _Scripted([3.0, 1.0, 2.0, 4.0, 0.0, 0.0])
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0,
                        callbacks=[scripted, early_stopping("score", patience=2, mode="min")])
    assert len(history.history["loss"]) == 4  # no improvement in epochs 2 and 3
    for now, best in zip(model.get_weights(), scripted.weights[1]):
        np.testing.assert_array_equal(now, best)
    assert not np.allclose(scripted.weights[1][0], scripted.weights[3][0])
    with pytest.raises(KerasdlError) as error:
        early_stopping(patience=0)
    assert error.value.argument == "patience"
    with pytest.raises(KerasdlError, match="mode"):
        early_stopping(mode="lowest")


# --- writers ------------------------------------------------------------------------------

def test_image_grid_layout_and_ranges():
    images = np.stack([np.full((2, 3, 1), i / 4) for i in range(5)])  # [0, 1] floats
    grid = image_grid(images, columns=3, padding=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1) and grid.dtype == np.uint8
    for i in range(5):
        top, left = (i // 3) * 3, (i % 3) * 4
        assert np.all(grid[top:top + 2, left:left + 3] == round(i / 4 * 255))
    assert np.all(grid[2] == 0) and np.all(grid[:, 3] == 0)  # padding
    assert np.all(grid[3:, 8:] == 0)  # the missing sixth tile
    tanh = image_grid(np.array([[[[-1.0, 0.0, 1.0]]]]), padding=0)
    assert tanh.tolist() == [[[0, 128, 255]]]
    assert image_grid(np.full((1, 1, 1), 200, "uint8")).item() == 200
    assert image_grid(np.full((1, 1, 1), 0.7), value_range=(0, 255)).item() == 1
    with pytest.raises(KerasdlError) as error:
        image_grid(np.zeros((2, 4, 4, 2)))
    assert error.value.argument == "images"


def test_image_sample_writer_writes_every_n_epochs(tmp_path):
    x, y = _regression_data(rows=8)
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse")

    def sample_fn(model_, epoch):
        assert model_ is model
        return np.full((4, 5, 6, 3), (epoch + 1) / 4, "float32")

    out = tmp_path / "samples"
    writer = ImageSampleWriter(sample_fn, out, every_n_epochs=2, padding=1)
    model.fit(x, y, epochs=4, verbose=0, callbacks=[writer])
    assert sorted(os.listdir(out)) == ["samples_epoch_002.png", "samples_epoch_004.png"]
    image = np.asarray(keras.utils.load_img(str(out / "samples_epoch_002.png")))
    assert image.shape == (2 * 5 + 1, 2 * 6 + 1, 3)
    assert image[0, 0, 0] == round(2 / 4 * 255) and image[5, 0, 0] == 0
    with pytest.raises(KerasdlError) as error:
        ImageSampleWriter(sample_fn, out, every_n_epochs=0)
    assert error.value.argument == "every_n_epochs"


def test_confusion_matrix_counts():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    expected = np.zeros((4, 4), int)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 4), expected)
    with pytest.raises(KerasdlError, match="outside"):
        confusion_matrix([0, 4], [0, 1], 4)


def _identity_model(width):
    return keras.Sequential([keras.Input((width,)), keras.layers.Activation("linear")])


def test_confusion_matrix_writer_files(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(4)
    scores = rng.random((30, 3)).astype("float32")  # the identity model predicts these
    labels = rng.integers(0, 3, 30)
    expected = np.zeros((3, 3), int)
    for t, p in zip(labels, scores.argmax(axis=1)):
        expected[t, p] += 1
    one_hot = np.eye(3, dtype="float32")[labels]
    dataset = tf.data.Dataset.from_tensor_slices((scores, one_hot)).shuffle(30).batch(7)
    for data in ((scores, labels), dataset):
        out = tmp_path / ("arrays" if isinstance(data, tuple) else "dataset")
        writer = ConfusionMatrixWriter(data, out, class_names=["cat", "dog", "eel"],
                                       every_n_epochs=1)
        writer.set_model(_identity_model(3))
        writer.on_epoch_end(0)
        writer.on_train_end()
        with open(out / "confusion_matrix.json") as f:
            record = json.load(f)
        assert record["matrix"] == expected.tolist() and record["num_examples"] == 30
        assert record["accuracy"] == pytest.approx(np.trace(expected) / 30)
        with open(out / "confusion_matrix_epoch_001.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0][1:] == ["cat", "dog", "eel"] and rows[2][0] == "dog"
        assert [[int(v) for v in r[1:]] for r in rows[1:]] == expected.tolist()
        names = sorted(os.listdir(out))
        assert not [n for n in names if n.startswith(".")]  # no staging files left
        pytest.importorskip("matplotlib")
        assert "confusion_matrix.png" in names and "confusion_matrix_epoch_001.png" in names


def test_confusion_matrix_writer_binary_and_in_fit(tmp_path):
    x = np.array([[-2.0], [-0.5], [0.5], [3.0]], "float32")
    writer = ConfusionMatrixWriter((x, np.array([0, 1, 0, 1])), tmp_path / "bin",
                                   threshold=0.0)
    writer.set_model(_identity_model(1))  # outputs are the logits x
    assert writer.compute()[0].tolist() == [[1, 1], [1, 1]]
    x, _ = _regression_data(rows=12)
    y = np.arange(12) % 3
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[ConfusionMatrixWriter((x, y), tmp_path / "fit", every_n_epochs=2)])
    with open(tmp_path / "fit" / "confusion_matrix_epoch_002.json") as f:
        assert np.sum(json.load(f)["matrix"]) == 12
    assert os.path.exists(tmp_path / "fit" / "confusion_matrix.csv")
    with pytest.raises(KerasdlError) as error:
        ConfusionMatrixWriter((x, y), tmp_path, class_names=["only"])
    assert error.value.argument == "class_names"


@pytest.mark.parametrize("kwargs, argument", [
    ({"peak": "a", "total_steps": 10}, "peak"),
    ({"peak": 0.1, "total_steps": 10.5}, "total_steps"),
    ({"peak": 0.1, "total_steps": 10, "warmup_steps": 10}, "warmup_steps"),
    ({"peak": 0.1, "total_steps": 10, "warmup_steps": 2.5}, "warmup_steps"),
])
def test_warmup_cosine_rejects_bad_arguments_by_name(kwargs, argument):
    from kerasdl.callbacks import WarmupCosine

    with pytest.raises(KerasdlError) as error:
        WarmupCosine(**kwargs)
    assert error.value.argument == argument
