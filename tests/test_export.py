"""kerasdl.export: TFLite conversion, LiteRT verification, atomic bundles, model cards."""

import json
import os

import numpy as np
import pytest

import kerasdl
from kerasdl.export import FORMATS, TFLiteRunner, convert_to_tflite, export_model
from kerasdl.atomic import atomic_directory
from kerasdl.errors import OutputExistsError


@pytest.fixture(scope="module")
def small_model_and_data():
    import keras

    keras.utils.set_random_seed(1)
    model = kerasdl.create_model("lenet5", num_classes=4)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.1, 1.175, (96, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 4, 96)
    # A few steps so the logits are not all near zero.
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


def test_float32_tflite_matches_keras(small_model_and_data, tmp_path):
    model, x, _ = small_model_and_data
    path = tmp_path / "m.tflite"
    size = convert_to_tflite(model, path, "float32")
    assert size == os.path.getsize(path) > 60_000 * 4 * 0.9
    out = TFLiteRunner(path).predict(x)
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-4)


def test_int8_needs_representative_data(small_model_and_data, tmp_path):
    model, _, _ = small_model_and_data
    with pytest.raises(ValueError, match="representative"):
        convert_to_tflite(model, tmp_path / "m.tflite", "int8")
    with pytest.raises(ValueError, match="variant"):
        convert_to_tflite(model, tmp_path / "m.tflite", "int4")
    with pytest.raises(ValueError, match=".tflite"):
        convert_to_tflite(model, tmp_path / "m.bin", "float32")
    assert list(tmp_path.iterdir()) == []


def test_tflite_file_is_replaced_only_when_asked(small_model_and_data, tmp_path):
    model, x, _ = small_model_and_data
    path = tmp_path / "m.tflite"
    path.write_bytes(b"earlier export")
    with pytest.raises(OutputExistsError, match="overwrite=True") as caught:
        convert_to_tflite(model, path)
    assert caught.value.argument == "overwrite"
    assert path.read_bytes() == b"earlier export"
    assert convert_to_tflite(model, path, overwrite=True) == os.path.getsize(path)
    np.testing.assert_allclose(TFLiteRunner(path).predict(x[:4]),
                               model.predict(x[:4], verbose=0), atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


def test_runner_rejects_wrong_shape(small_model_and_data, tmp_path):
    model, _, _ = small_model_and_data
    convert_to_tflite(model, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="input shape"):
        TFLiteRunner(tmp_path / "m.tflite").predict(np.zeros((2, 28, 28, 1)))


def test_export_bundle_verifies_every_artifact(small_model_and_data, tmp_path):
    model, x, y = small_model_and_data
    out = tmp_path / "export"
    card = export_model(model, out, test_images=x, test_labels=y, representative_images=x,
                        model_name="lenet5", latency_runs=5, verbose=False)
    names = sorted(os.listdir(out))
    assert names == sorted(
        ["MODEL_CARD.md", "model_card.json", "saved_model", "lenet5_float32.tflite",
         "lenet5_float16.tflite", "lenet5_dynamic_range.tflite", "lenet5_int8.tflite"]
    )
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    arts = {a["format"]: a for a in card["artifacts"]}
    assert set(arts) == {"saved_model", "tflite_float32", "tflite_float16",
                         "tflite_dynamic_range", "tflite_int8"}
    keras_acc = float((model.predict(x, verbose=0).argmax(-1) == y).mean())
    assert card["verification"]["keras_accuracy"] == pytest.approx(keras_acc)
    assert arts["tflite_float32"]["top1_agreement"] == 1.0
    assert arts["saved_model"]["max_abs_logit_diff"] < 1e-4
    assert arts["tflite_int8"]["input_dtype"] == "int8"
    assert arts["tflite_int8"]["size_bytes"] < 0.5 * arts["tflite_float32"]["size_bytes"]
    assert all(a["latency_ms_batch1"] > 0 for f, a in arts.items() if f != "saved_model")
    on_disk = json.loads((out / "model_card.json").read_text())
    assert on_disk["model"]["parameters"] == model.count_params()
    assert on_disk["model"]["paper"].startswith("LeCun")
    md = (out / "MODEL_CARD.md").read_text()
    assert "tflite_int8" in md and f"{model.count_params():,}" in md


def test_export_refuses_to_overwrite_and_fails_cleanly(small_model_and_data, tmp_path):
    model, x, y = small_model_and_data
    out = tmp_path / "export"
    export_model(model, out, test_images=x, test_labels=y, formats=("float32",),
                 latency_runs=2, verbose=False)
    before = sorted(os.listdir(out))
    with pytest.raises(FileExistsError, match="overwrite"):
        export_model(model, out, test_images=x, test_labels=y, formats=("float32",),
                     verbose=False)
    assert sorted(os.listdir(out)) == before
    # A failure half-way (bad representative data for int8) leaves the old export intact
    # and no staging folder behind.
    with pytest.raises(Exception):
        export_model(model, out, test_images=x, test_labels=y, formats=("float32", "int8"),
                     representative_images=np.zeros((4, 7, 7, 1), "float32"),
                     overwrite=True, latency_runs=2, verbose=False)
    assert sorted(os.listdir(out)) == before
    assert sorted(os.listdir(tmp_path)) == ["export"]
    export_model(model, out, test_images=x, test_labels=y, formats=("float16",),
                 overwrite=True, latency_runs=2, verbose=False)
    assert "lenet5_float16.tflite" in os.listdir(out) and "lenet5_float32.tflite" not in os.listdir(out)


def test_export_rejects_bad_input(small_model_and_data, tmp_path):
    model, x, y = small_model_and_data
    with pytest.raises(ValueError, match="formats"):
        export_model(model, tmp_path / "e", test_images=x, test_labels=y, formats=("onnx",))
    with pytest.raises(ValueError, match="expects"):
        export_model(model, tmp_path / "e", test_images=x[:, :28, :28], test_labels=y,
                     representative_images=x)
    with pytest.raises(ValueError, match="equal length"):
        export_model(model, tmp_path / "e", test_images=x, test_labels=y[:3],
                     representative_images=x)
    with pytest.raises(ValueError, match="representative"):
        export_model(model, tmp_path / "e", test_images=x, test_labels=y)
    assert not (tmp_path / "e").exists()
    assert set(FORMATS) >= {"saved_model", "int8"}


def test_atomic_directory_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "artifact"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as staging:
            (open(os.path.join(staging, "half.bin"), "wb")).write(b"x")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_int8_per_tensor_scales_shrink_the_file(small_model_and_data, tmp_path):
    model, x, _ = small_model_and_data
    sizes, scales = {}, {}
    for per_channel in (True, False):
        path = tmp_path / f"{per_channel}.tflite"
        sizes[per_channel] = convert_to_tflite(model, path, "int8", x, per_channel=per_channel)
        details = TFLiteRunner(path).interpreter.get_tensor_details()
        c5 = [d for d in details if d["shape"].tolist() == [120, 5, 5, 16]]
        assert len(c5) == 1
        scales[per_channel] = len(c5[0]["quantization_parameters"]["scales"])
    assert scales == {True: 120, False: 1}
    assert sizes[False] < sizes[True]


def test_write_json_writes_strict_json_with_null_for_nan(tmp_path):
    from kerasdl.atomic import write_json

    path = tmp_path / "history.json"
    write_json(path, {"loss": [0.5, float("nan"), float("inf")], "epochs": (1, 2),
                      "nested": {"x": np.float64("nan")}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    # A strict reader (no NaN tokens allowed) parses it.
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON token {c}"))
    assert data == {"loss": [0.5, None, None], "epochs": [1, 2], "nested": {"x": None}}
