"""Recurrent text models to TFLite: unrolled over a fixed length, builtin ops only, and
equal to Keras on padded (masked) inputs."""

import io
import contextlib

import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.export.runtime import TFLiteRunner
from kerasdl.export.tflite import convert_to_tflite, unrolled_for_tflite


def _ops(path):
    import tensorflow as tf

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path))
    return {line.split("Op#")[1].split("(")[0].split()[1]
            for line in out.getvalue().splitlines() if "Op#" in line}


@pytest.mark.parametrize("name", ["lstm_classifier", "bilstm_classifier", "gru_classifier",
                                  "stacked_bilstm_classifier"])
def test_rnn_classifier_exports_with_builtin_ops_and_agrees(name, tmp_path):
    model = kerasdl.create_model(name, vocabulary_size=50, embedding_dim=8, units=6,
                                 sequence_length=10)
    tokens = np.random.default_rng(0).integers(1, 50, (6, 10)).astype("int32")
    tokens[:, 6:] = 0  # padded sentences: the mask must behave as in Keras
    tokens[0, 3:] = 0
    path = tmp_path / f"{name}.tflite"
    convert_to_tflite(model, path)
    ops = _ops(path)
    assert not any(op.startswith(("Flex", "WHILE", "TensorList", "CUSTOM")) for op in ops), ops
    assert {"FULLY_CONNECTED", "LOGISTIC", "TANH"} <= ops
    got = TFLiteRunner(path).predict(tokens)
    np.testing.assert_allclose(got, model.predict(tokens, verbose=0), atol=1e-5)


def test_unrolling_needs_a_fixed_length_and_keeps_the_weights():
    free = kerasdl.create_model("lstm_classifier", vocabulary_size=50, embedding_dim=8,
                                units=6)
    with pytest.raises(KerasdlError, match="sequence_length"):
        unrolled_for_tflite(free)
    fixed = kerasdl.create_model("lstm_classifier", vocabulary_size=50, embedding_dim=8,
                                 units=6, sequence_length=10)
    copy = unrolled_for_tflite(fixed)
    assert copy is not fixed and copy.get_layer("rnn1_lstm").unroll
    assert not fixed.get_layer("rnn1_lstm").unroll
    for a, b in zip(copy.get_weights(), fixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    cnn = kerasdl.create_model("textcnn", vocabulary_size=50, embedding_dim=8, filters=4,
                               sequence_length=12)
    assert unrolled_for_tflite(cnn) is cnn  # nothing recurrent: the model itself


@pytest.mark.parametrize("name", ["seq2seq_bahdanau", "seq2seq_luong"])
def test_seq2seq_exports_two_inputs_two_outputs_and_agrees(name, tmp_path):
    """Two inputs, a dict of two outputs, a bidirectional encoder over padded sources:
    the runner feeds the inputs by name and returns the outputs by name."""
    model = kerasdl.create_model(name, vocabulary_size=40, target_vocabulary_size=30,
                                 embedding_dim=8, units=6, sequence_length=9)
    rng = np.random.default_rng(1)
    source = rng.integers(1, 40, (5, 9)).astype("int32")
    target = rng.integers(1, 30, (5, 9)).astype("int32")
    source[:, 5:] = 0
    target[:, 6:] = 0
    path = tmp_path / f"{name}.tflite"
    convert_to_tflite(model, path)
    assert not any(op.startswith(("Flex", "WHILE", "TensorList")) for op in _ops(path))
    runner = TFLiteRunner(path, input_names=[t.name for t in model.inputs])
    assert sorted(runner.output_names) == ["attention", "logits"]
    got = dict(zip(runner.output_names, runner.predict([source, target])))
    want = model.predict([source, target], verbose=0)
    for key in ("logits", "attention"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)


def test_a_trained_text_classifier_exports_through_kerasdl_export(tmp_path):
    import os

    from kerasdl.export.metadata import kerasdl_metadata
    from kerasdl.train import get_recipe, train
    from kerasdl.workflows import export_run

    if not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "glue")):
        pytest.skip("needs the offline TFDS text data")
    run = tmp_path / "run"
    recipe = get_recipe("gru_classifier").replace(epochs=1, sequence_length=12,
                                                  vocabulary_size=300, batch_size=32)
    train("gru_classifier", "glue/sst2", output_dir=run, recipe=recipe, max_examples=96,
          model_kwargs={"units": 8, "embedding_dim": 8}, verbose=0)
    card = export_run(run, tmp_path / "export", formats=("float32", "int8"),
                      max_test_examples=64, latency_runs=3)
    arts = {a["format"]: a for a in card["artifacts"]}
    assert arts["tflite_float32"]["top1_agreement"] == 1.0
    assert arts["tflite_float32"]["input_dtype"] == "int32"
    assert card["output"]["class_names"] == ["negative", "positive"]
    meta = kerasdl_metadata(tmp_path / "export" / "gru_classifier_float32.tflite")
    assert meta["labels"] == ["negative", "positive"] and "pixel_range" not in meta["input"]
