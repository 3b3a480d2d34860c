"""kerasdl.export.runtime.TFLiteRunner on models with several inputs and outputs."""

import numpy as np
import pytest

from kerasdl.errors import KerasdlError, NotFoundError
from kerasdl.export.runtime import TFLiteRunner

keras = pytest.importorskip("keras")


def _export(model, path, **kwargs):
    model.export(str(path), format="litert", verbose=False, **kwargs)
    return path


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tflite_runner")


@pytest.fixture(scope="module")
def two_token_inputs(tmp_dir):
    """Two int32 token inputs given to keras.Model in non-alphabetical order."""
    keras.utils.set_random_seed(0)
    enc = keras.Input((6,), dtype="int32", name="encoder_tokens")
    dec = keras.Input((4,), dtype="int32", name="decoder_tokens")
    e = keras.layers.Embedding(20, 8)(enc)
    d = keras.layers.Embedding(20, 8)(dec)
    att = keras.layers.Attention()([d, e])
    h = keras.layers.Concatenate()([keras.layers.Flatten()(att), keras.layers.Flatten()(e)])
    model = keras.Model([enc, dec], keras.layers.Dense(3)(h))
    return model, _export(model, tmp_dir / "tokens.tflite")


@pytest.fixture(scope="module")
def many_outputs(tmp_dir):
    """One input, 12 outputs of distinct widths (3, 2, 4, ...), so order errors show."""
    keras.utils.set_random_seed(1)
    x = keras.Input((5,), name="features")
    h = keras.layers.Dense(8, activation="relu")(x)
    units = [3, 2] + list(range(4, 14))
    model = keras.Model(x, [keras.layers.Dense(u)(h) for u in units])
    return model, _export(model, tmp_dir / "heads.tflite")


@pytest.fixture(scope="module")
def cnn(tmp_dir):
    """A small CNN as float32 and full-integer int8 files, plus a random batch."""
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1), name="image"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (64, 12, 12, 1)).astype("float32")

    def representative_dataset():
        for i in range(32):
            yield [images[i : i + 1]]

    int8 = dict(
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_dataset,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        inference_input_type=tf.int8,
        inference_output_type=tf.int8,
    )
    return (
        model,
        images,
        _export(model, tmp_dir / "cnn_float32.tflite"),
        _export(model, tmp_dir / "cnn_int8.tflite", **int8),
    )


def _tokens(seed, n=5):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 20, (n, 6)).astype("int32"), rng.integers(0, 20, (n, 4)).astype("int32")


def test_two_token_inputs_list_and_dict_match_keras(two_token_inputs):
    model, path = two_token_inputs
    enc, dec = _tokens(0)
    expected = model.predict([enc, dec], verbose=0)
    # The file lists inputs alphabetically; the model's order comes from input_names.
    runner = TFLiteRunner(path, input_names=[t.name for t in model.inputs])
    assert runner.input_names == ["encoder_tokens", "decoder_tokens"]
    assert [d["dtype"] for d in runner.input_details] == [np.int32, np.int32]
    assert [d["shape"] for d in runner.input_details] == [(None, 6), (None, 4)]
    assert all(d["quantization"] is None for d in runner.input_details)
    assert str(runner.input_dtype) == "int32"
    via_list = runner.predict([enc, dec], batch_size=2)
    via_tuple = runner.predict((enc, dec), batch_size=2)
    via_dict = runner.predict({"decoder_tokens": dec, "encoder_tokens": enc}, batch_size=2)
    for got in (via_list, via_tuple, via_dict):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (5, 3)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # Token ids are cast, not scaled: float ids give the same answer.
    np.testing.assert_allclose(runner.predict([enc.astype("float32"), dec]), expected, atol=1e-5)
    assert runner.latency_ms([enc[0], dec[0]], runs=3, warmup=1) > 0
    assert runner.latency_ms({"encoder_tokens": enc[0], "decoder_tokens": dec[0]}, runs=3) > 0


def test_input_order_unknown_without_input_names(two_token_inputs):
    model, path = two_token_inputs
    enc, dec = _tokens(1)
    runner = TFLiteRunner(path)
    assert runner.input_names == ["decoder_tokens", "encoder_tokens"]  # signature order
    got = runner.predict({"encoder_tokens": enc, "decoder_tokens": dec})
    np.testing.assert_allclose(got, model.predict([enc, dec], verbose=0), atol=1e-5)
    with pytest.raises(KerasdlError, match="input order.*input_names"):
        runner.predict([enc, dec])
    with pytest.raises(KerasdlError, match="input_names"):
        TFLiteRunner(path, input_names=["encoder_tokens", "tokens"])


def test_outputs_come_back_in_model_order(many_outputs):
    model, path = many_outputs
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    runner = TFLiteRunner(path)
    assert runner.output_names == [f"output_{i}" for i in range(12)]  # output_10 after _9
    assert [d["shape"] for d in runner.output_details][:3] == [(None, 3), (None, 2), (None, 4)]
    got = runner.predict(x, batch_size=3)
    expected = model.predict(x, verbose=0)
    assert isinstance(got, list) and len(got) == 12
    for g, e in zip(got, expected):
        assert g.dtype == np.float32 and g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=1e-5)
    assert runner.input_names == ["features"] and str(runner.input_dtype) == "float32"
    np.testing.assert_allclose(runner.predict({"features": x})[1], expected[1], atol=1e-5)
    np.testing.assert_allclose(runner.predict([x])[0], expected[0], atol=1e-5)


def test_single_input_cnn_float_and_int8(cnn):
    model, images, float_path, int8_path = cnn
    expected = model.predict(images, verbose=0)
    runner = TFLiteRunner(float_path, num_threads=1)
    got = runner.predict(images[:5], batch_size=2)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[:5], atol=1e-5)
    assert str(runner.input_dtype) == "float32"
    assert runner.latency_ms(images[0], runs=5, warmup=1) > 0

    runner8 = TFLiteRunner(int8_path)
    assert str(runner8.input_dtype) == "int8"
    assert runner8.input_details[0]["quantization"] is not None
    assert runner8.output_details[0]["dtype"] == np.int8
    assert len(runner8.interpreter.get_tensor_details()) > 0
    got8 = runner8.predict(images, batch_size=16)
    assert got8.dtype == np.float32 and got8.shape == expected.shape
    assert (got8.argmax(-1) == expected.argmax(-1)).mean() >= 0.75
    spread = expected.max() - expected.min()
    assert np.abs(got8 - expected).max() < 0.2 * spread
    assert runner8.latency_ms(images[0], runs=5, warmup=1) > 0


def test_errors(cnn, two_token_inputs, tmp_path):
    _, images, float_path, _ = cnn
    runner = TFLiteRunner(float_path)
    with pytest.raises(KerasdlError, match=r"input shape.*'image'.*\(10, 10, 1\).*\(12, 12, 1\)"):
        runner.predict(np.zeros((2, 10, 10, 1), "float32"))
    with pytest.raises(ValueError, match="input shape"):
        runner.latency_ms(np.zeros((10, 10, 1), "float32"), runs=1)
    with pytest.raises(KerasdlError, match="takes 1 input"):
        runner.predict([images[:2], images[:2]])
    with pytest.raises(NotFoundError):
        TFLiteRunner(tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError):
        TFLiteRunner(tmp_path / "missing.tflite")

    model, path = two_token_inputs
    tokens = TFLiteRunner(path, input_names=[t.name for t in model.inputs])
    enc, dec = _tokens(2)
    with pytest.raises(KerasdlError, match="takes 2 inputs"):
        tokens.predict([enc])
    with pytest.raises(KerasdlError, match="takes 2 inputs"):
        tokens.predict(enc)
    with pytest.raises(KerasdlError, match=r"unknown input names \['tokens'\]"):
        tokens.predict({"encoder_tokens": enc, "tokens": dec})
    with pytest.raises(KerasdlError, match="missing inputs"):
        tokens.predict({"encoder_tokens": enc})
    with pytest.raises(KerasdlError, match=r"'decoder_tokens' has shape \(6,\).*expects \(4,\)"):
        tokens.predict([enc, enc])
    with pytest.raises(KerasdlError, match="batch sizes"):
        tokens.predict([enc, dec[:3]])
