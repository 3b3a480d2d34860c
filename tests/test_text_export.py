"""Recurrent text models to TFLite: unrolled over a fixed length, builtin ops only, and
equal to Keras on padded (masked) inputs."""

import io
import contextlib

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.export.runtime import TFLiteRunner
from kerasdl.export.tflite import convert_to_tflite, unrolled_for_tflite
from tests.markers import needs_multi30k


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


def test_an_any_length_seq2seq_model_exports_at_a_fixed_length(tmp_path):
    """kerasdl trains translators on per-batch padded data, so their models take any
    length; the export fixes it, and the copy computes what the model does."""
    from kerasdl.export import with_sequence_length

    model = kerasdl.create_model("seq2seq_bahdanau", vocabulary_size=40,
                                 target_vocabulary_size=30, embedding_dim=8, units=6)
    assert model.inputs[0].shape[1] is None
    fixed = with_sequence_length(model, 9)
    assert [tuple(t.shape) for t in fixed.inputs] == [(None, 9), (None, 9)]
    assert with_sequence_length(fixed, 5) is fixed  # already fixed: left alone
    rng = np.random.default_rng(2)
    source = rng.integers(1, 40, (4, 9)).astype("int32")
    target = rng.integers(1, 30, (4, 9)).astype("int32")
    source[:, 6:] = 0
    path = tmp_path / "fixed.tflite"
    convert_to_tflite(fixed, path)
    runner = TFLiteRunner(path, input_names=[t.name for t in fixed.inputs])
    got = dict(zip(runner.output_names, runner.predict([source, target])))
    want = model.predict([source, target], verbose=0)
    np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-5)
    with pytest.raises(KerasdlError, match="sequence_length"):
        with_sequence_length(model, 0)
    # One input (not a list of them): BERT, which without a fixed length does not even
    # convert with builtin ops (a dynamic StridedSlice in its attention mask).
    bert = kerasdl.create_model("bert_mini", vocabulary_size=50, num_classes=2, layers=1,
                                hidden=16, heads=2, ff_dim=32, max_positions=16)
    with pytest.raises(KerasdlError, match="StridedSlice"):
        convert_to_tflite(bert, tmp_path / "any.tflite")
    tokens = np.random.default_rng(3).integers(1, 50, (3, 12)).astype("int32")
    tokens[:, 9:] = 0
    convert_to_tflite(with_sequence_length(bert, 12), tmp_path / "bert.tflite")
    np.testing.assert_allclose(TFLiteRunner(tmp_path / "bert.tflite").predict(tokens),
                               bert.predict(tokens, verbose=0), atol=1e-4)


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


@needs_multi30k
def test_a_trained_translator_exports_through_kerasdl_export(tmp_path):
    """Two inputs, two named outputs, trained on per-batch padded data (any length):
    the export fixes the length, feeds both inputs and verifies the logits."""
    from kerasdl.export.metadata import kerasdl_metadata
    from kerasdl.train import get_recipe, train
    from kerasdl.workflows import export_run

    run = tmp_path / "run"
    recipe = get_recipe("seq2seq_luong").replace(epochs=1, vocabulary_size=200,
                                                 sequence_length=12)
    train("seq2seq_luong", "multi30k", output_dir=run, recipe=recipe, max_examples=64,
          model_kwargs={"units": 8, "embedding_dim": 8}, verbose=0)
    card = export_run(run, tmp_path / "export", formats=("saved_model", "float32", "int8"),
                      max_test_examples=32, latency_runs=2)
    arts = {a["format"]: a for a in card["artifacts"]}
    assert arts["saved_model"]["top1_agreement"] == arts["tflite_float32"]["top1_agreement"] == 1.0
    assert arts["tflite_float32"]["max_abs_logit_diff"] < 1e-4
    assert 0.0 <= arts["tflite_int8"]["accuracy"] <= 1.0
    assert card["model"]["input_shape"] == [[12], [12]]
    assert [i["name"] for i in card["input"]] == ["source", "target_in"]
    meta = kerasdl_metadata(tmp_path / "export" / "seq2seq_luong_float32.tflite")
    assert [i["shape"] for i in meta["input"]] == [[12], [12]]
    card_text = (tmp_path / "export" / "MODEL_CARD.md").read_text()
    assert "Input `target_in`: int32 (12,)" in card_text
    assert 'input_names=["source", "target_in"]' in card_text  # the order a file lacks
    assert "kerasdl predict" not in card_text  # an image classifier's tool


def test_small_bert_classifier_exports_with_builtin_ops_and_agrees(tmp_path):
    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("bert_mini", vocabulary_size=60, num_classes=3, layers=2,
                                 hidden=16, heads=2, ff_dim=32, max_positions=16,
                                 sequence_length=12)
    for variable in model.weights:  # BERT's 0.02 init gives near-constant logits
        if "norm" not in variable.path:
            variable.assign(variable * 10.0)
    tokens = np.random.default_rng(1).integers(1, 60, (5, 12)).astype("int32")
    tokens[:, 8:] = 0  # padding: the attention mask must act as in Keras
    tokens[0, 2:] = 0
    path = tmp_path / "bert.tflite"
    convert_to_tflite(model, path)
    ops = _ops(path)
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops
    expected = model.predict(tokens, verbose=0)
    np.testing.assert_allclose(TFLiteRunner(path).predict(tokens), expected, atol=1e-4,
                               rtol=1e-4)
    # The padding matters to the model, so agreement on padded rows means something.
    unmasked = tokens.copy()
    unmasked[0, 2:] = 7
    assert np.abs(model.predict(unmasked, verbose=0)[0] - expected[0]).max() > 1e-2


def _distinct_gpt(**kwargs):
    keras.utils.set_random_seed(3)
    model = kerasdl.create_model("gpt_char_small", vocabulary_size=30, layers=2, hidden=16,
                                 heads=2, ff_dim=32, max_positions=24, **kwargs)
    for variable in model.weights:  # larger weights: logits that differ position by position
        if "norm" not in variable.path:
            variable.assign(variable * 10.0)
    return model


def test_gpt_single_step_decoder_exports_and_decodes_as_keras(tmp_path):
    from kerasdl.export.gpt_step import GPTStepRunner, export_gpt_step
    from kerasdl.generation import generate

    model = _distinct_gpt(sequence_length=20)
    path = tmp_path / "step.tflite"
    report = export_gpt_step(model, path)
    assert report["capacity"] == 20 and report["steps_checked"] == 20
    assert report["max_abs_logit_diff"] < 1e-4 and report["top1_agreement"] == 1.0
    ops = _ops(path)
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops
    runner = GPTStepRunner(path)
    assert runner.cache_shape == (2, 1, 2, 20, 8)
    for prompt in ([3, 4, 5], [9], [1, 2, 3, 4, 5, 6, 7]):
        ours = runner.generate(np.array(prompt), 20 - len(prompt) + 1)
        np.testing.assert_array_equal(
            ours, generate(model, np.array(prompt), 20 - len(prompt) + 1, cache=False))
    with pytest.raises(KerasdlError, match="max_new_tokens"):
        runner.generate(np.array([3, 4]), 20)
    with pytest.raises(KerasdlError, match="exists"):
        export_gpt_step(model, path)  # never overwrites without being asked
    with pytest.raises(KerasdlError, match="capacity"):
        export_gpt_step(model, tmp_path / "big.tflite", capacity=21)
    assert not (tmp_path / "big.tflite").exists()


def test_step_decoder_verification_catches_a_wrong_step(tmp_path, monkeypatch):
    from kerasdl.export import gpt_step

    model = _distinct_gpt()
    real = gpt_step.GPTStepRunner.step

    def always_first(self, token):  # a decoder that feeds every token at position 0
        length, self.length = self.length, 0
        logits = real(self, token)
        self.length = length + 1
        return logits

    monkeypatch.setattr(gpt_step.GPTStepRunner, "step", always_first)
    path = tmp_path / "bad.tflite"
    with pytest.raises(KerasdlError, match="differ from Keras"):
        gpt_step.export_gpt_step(model, path, capacity=10)
    assert not path.exists() and not list(tmp_path.iterdir())
