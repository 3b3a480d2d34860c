"""The deployment path: raw uint8 artifacts with the preparation baked in, labels in the
files' metadata, named SavedModel signatures, int8 I/O options, latency per thread
count, a float32 file that disagrees failing the export, and conversion errors that name
the layer and op."""

import json
import os

import numpy as np
import pytest

from kerasdl.errors import KerasdlError
from kerasdl.export import TFLiteRunner, convert_to_tflite, export_model
from kerasdl.export.metadata import kerasdl_metadata, read_labels, read_tflite_metadata

LABELS = ["cat", "dog", "ship"]


@pytest.fixture(scope="module")
def pixel_model_and_data():
    """A small classifier on raw 0-255 pixels (scaled inside, as every kerasdl image
    model), trained a little on whole-number pixel images."""
    import keras

    from kerasdl.layers import InputScaling

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3), name="image")
    x = InputScaling(scale=1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (160, 12, 12, 3)).astype("float32")
    labels = (images[..., 0].mean((1, 2)) > images[..., 2].mean((1, 2))).astype("int64")
    labels[::5] = 2
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=3, verbose=0)
    return model, images, labels


def test_raw_uint8_bundle_matches_keras(pixel_model_and_data, tmp_path):
    model, x, y = pixel_model_and_data
    out = tmp_path / "export"
    card = export_model(model, out, test_images=x[:64], test_labels=y[:64],
                        representative_images=x[64:], raw_uint8=True, labels=LABELS,
                        latency_runs=3, latency_threads=(1, 2), verbose=False)
    arts = {a["format"]: a for a in card["artifacts"]}
    assert card["input"]["dtype"] == "uint8" and card["input"]["raw_uint8"]
    # Every artifact takes uint8 bytes; the float ones cast inside, the int8 one
    # quantises them with scale 1 and zero point 0, so camera bytes go in unchanged.
    for fmt in ("tflite_float32", "tflite_float16", "tflite_dynamic_range", "tflite_int8"):
        runner = TFLiteRunner(out / arts[fmt]["file"])
        (detail,) = runner.input_details
        assert detail["dtype"] == np.uint8, fmt
        assert set(arts[fmt]["latency_threads"]) == {"1", "2"}
    assert TFLiteRunner(out / arts["tflite_int8"]["file"]).input_details[0]["quantization"] \
        == (1.0, 0)
    reference = model.predict(x[:64], verbose=0)
    runner = TFLiteRunner(out / arts["tflite_float32"]["file"])
    # Fed uint8 directly (no conversion by the runner): the same predictions as Keras.
    direct = runner._signature_runner()(**{runner.input_names[0]: x[:64].astype("uint8")})
    np.testing.assert_allclose(next(iter(direct.values())), reference, atol=1e-4)
    assert arts["tflite_float32"]["top1_agreement"] == 1.0
    assert arts["saved_model"]["top1_agreement"] == 1.0
    assert arts["tflite_int8"]["accuracy_drop_points"] <= 5.0


def test_labels_live_in_the_files_and_beside_them(pixel_model_and_data, tmp_path):
    model, x, y = pixel_model_and_data
    out = tmp_path / "export"
    card = export_model(model, out, test_images=x[:32], test_labels=y[:32],
                        formats=("float32",), labels=LABELS, model_name="tiny",
                        latency_runs=2, latency_threads=(1,), verbose=False)
    path = out / "tiny_float32.tflite"
    assert (out / "labels.txt").read_text().split() == LABELS
    meta = kerasdl_metadata(path)
    assert meta["labels"] == LABELS and meta["variant"] == "float32"
    assert "CONVERSION_METADATA" in read_tflite_metadata(path)  # the converter's kept
    # The file alone (copied away from labels.txt) still knows its labels.
    alone = tmp_path / "alone.tflite"
    alone.write_bytes(path.read_bytes())
    assert read_labels(alone) == LABELS
    # The metadata did not change what the file computes.
    np.testing.assert_allclose(TFLiteRunner(alone).predict(x[:8]),
                               model.predict(x[:8], verbose=0), atol=1e-4)
    assert card["artifacts"][0]["top1_agreement"] == 1.0


def test_saved_model_has_a_named_signature(pixel_model_and_data, tmp_path):
    import tensorflow as tf

    model, x, y = pixel_model_and_data
    out = tmp_path / "export"
    export_model(model, out, test_images=x[:16], test_labels=y[:16], formats=("saved_model",),
                 verbose=False)
    loaded = tf.saved_model.load(str(out / "saved_model"))
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_outputs) == {"logits", "probabilities"}
    result = signature(image=tf.constant(x[:4]))
    np.testing.assert_allclose(result["logits"].numpy(), model.predict(x[:4], verbose=0),
                               atol=1e-4)
    np.testing.assert_allclose(result["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_int8_with_float_input_and_output(pixel_model_and_data, tmp_path):
    model, x, _ = pixel_model_and_data
    path = tmp_path / "m.tflite"
    convert_to_tflite(model, path, "int8", x[64:], int8_io="float32")
    runner = TFLiteRunner(path)
    assert runner.input_details[0]["dtype"] == np.float32
    assert runner.output_details[0]["dtype"] == np.float32
    agree = (runner.predict(x[:64]).argmax(-1) == model.predict(x[:64], verbose=0).argmax(-1))
    assert agree.mean() >= 0.9
    with pytest.raises(KerasdlError, match="int8_io"):
        convert_to_tflite(model, tmp_path / "n.tflite", "int8", x[64:], int8_io="int4")


def test_a_disagreeing_float32_file_fails_the_export(pixel_model_and_data, tmp_path,
                                                      monkeypatch):
    """A converter that computes something else (here: a perturbed copy of the weights)
    must stop the export, with nothing left on disk."""
    import keras

    import kerasdl.export.bundle as bundle

    model, x, y = pixel_model_and_data
    real = bundle.convert_to_tflite

    def wrong_converter(m, path, *args, **kwargs):
        other = keras.models.clone_model(m)
        other.set_weights([w + 0.05 for w in m.get_weights()])
        return real(other, path, *args, **kwargs)

    monkeypatch.setattr(bundle, "convert_to_tflite", wrong_converter)
    out = tmp_path / "export"
    with pytest.raises(KerasdlError, match="disagrees with Keras"):
        export_model(model, out, test_images=x[:32], test_labels=y[:32], formats=("float32",),
                     latency_runs=2, verbose=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unsupported_op_names_layer_op_and_option(tmp_path):
    import keras

    class InverseErf(keras.layers.Layer):
        def call(self, x):
            return keras.ops.erfinv(keras.ops.tanh(x))

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    model = keras.Model(inputs, InverseErf(name="inverse_erf")(hidden))
    path = tmp_path / "m.tflite"
    with pytest.raises(KerasdlError, match="Erfinv in layer 'inverse_erf'.*select_tf_ops"):
        convert_to_tflite(model, path)
    assert not path.exists()
    # Erfinv is not even a Select TF op: with the option on, the message says so.
    with pytest.raises(KerasdlError, match="neither a TFLite builtin nor a Select TF op"):
        convert_to_tflite(model, path, select_tf_ops=True)
    # A failed conversion over an existing file leaves that file as it was.
    path.write_bytes(b"earlier export")
    with pytest.raises(KerasdlError, match="Erfinv"):
        convert_to_tflite(model, path, overwrite=True)
    assert path.read_bytes() == b"earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


def test_select_tf_ops_converts_a_flex_op(tmp_path):
    import keras

    class CumProd(keras.layers.Layer):
        def call(self, x):
            return keras.ops.cumprod(x, axis=-1)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, CumProd(name="cumulative")(inputs))
    with pytest.raises(KerasdlError, match="Cumprod in layer 'cumulative'"):
        convert_to_tflite(model, tmp_path / "a.tflite")
    assert convert_to_tflite(model, tmp_path / "b.tflite", select_tf_ops=True) > 0


def test_raw_uint8_refuses_resized_pixels(pixel_model_and_data, tmp_path):
    model, x, y = pixel_model_and_data
    with pytest.raises(KerasdlError, match="raw_uint8"):
        export_model(model, tmp_path / "e", test_images=x[:8] + 0.5, test_labels=y[:8],
                     formats=("float32",), raw_uint8=True, verbose=False)
    with pytest.raises(KerasdlError, match="labels"):
        export_model(model, tmp_path / "e", test_images=x[:8], test_labels=y[:8],
                     formats=("float32",), labels=["a", "b"], verbose=False)
    assert not (tmp_path / "e").exists()


def test_card_json_records_threads_and_io(pixel_model_and_data, tmp_path):
    model, x, y = pixel_model_and_data
    out = tmp_path / "export"
    export_model(model, out, test_images=x[:16], test_labels=y[:16],
                 representative_images=x[64:], formats=("float32", "int8"),
                 latency_runs=2, latency_threads=(1, 2), verbose=False)
    card = json.loads((out / "model_card.json").read_text())
    int8 = next(a for a in card["artifacts"] if a["format"] == "tflite_int8")
    assert int8["input_dtype"] == "int8" and int8["output_dtype"] == "int8"
    assert "int8 input and int8 output" in int8["notes"]
    md = (out / "MODEL_CARD.md").read_text()
    assert "(1)" in md and "(2)" in md
    assert os.path.isfile(out / "model_card.json")


def test_card_says_when_int8_is_slower():
    from kerasdl.export.bundle import _latency_notes

    f32 = {"format": "tflite_float32", "latency_threads": {"1": 1.0, "2": 0.6}}
    slow = {"format": "tflite_int8", "latency_threads": {"1": 1.2, "2": 0.5}}
    fast = {"format": "tflite_int8", "latency_threads": {"1": 0.4, "2": 0.3}}
    (note,) = _latency_notes([f32, slow])
    assert note.startswith("int8 is slower than float32 here (1 thread(s))")
    assert _latency_notes([f32, fast]) == [] and _latency_notes([f32]) == []
