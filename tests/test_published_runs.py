"""The trained runs committed under ``saved_models/`` still do what their model cards say,
re-measured on the offline test set: the Keras model, and the TFLite files a user deploys."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from kerasdl.export import TFLiteRunner
from kerasdl.train import evaluate, load_run
from kerasdl.train.runs import load_run_data

ROOT = Path(__file__).resolve().parent.parent
RESNET20 = ROOT / "saved_models" / "resnet20_cifar10"

needs_cifar10 = pytest.mark.skipif(
    not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", "/nonexistent"), "cifar10")),
    reason="needs TFDS_DATA_DIR with the prepared cifar10 (CI points it at ../shared/data/tfds)",
)

# One test image of 10,000: CPU kernels may sum in another order than on the machine that
# wrote the card, which can flip a prediction sitting on a tie.
ONE_IMAGE = 1e-4


def test_committed_resnet20_run_is_complete():
    for name in ("model.keras", "run.json", "history.json", "curves.png",
                 "export/model_card.json", "export/MODEL_CARD.md", "export/labels.txt",
                 "export/resnet20_float32.tflite", "export/resnet20_int8.tflite",
                 "export_uint8/model_card.json", "export_uint8/resnet20_float32.tflite",
                 "export_uint8/resnet20_int8.tflite"):
        assert (RESNET20 / name).is_file(), name
    assert not (RESNET20 / "backup").exists(), "the checkpoint folder is not published"
    record = json.loads((RESNET20 / "run.json").read_text())
    assert record["model"] == "resnet20" and record["dataset"] == "cifar10"
    card = json.loads((RESNET20 / "export" / "model_card.json").read_text())
    assert card["verification"]["keras_accuracy"] == pytest.approx(record["test_accuracy"],
                                                                   abs=ONE_IMAGE)
    float32 = next(a for a in card["artifacts"] if a["format"] == "tflite_float32")
    assert float32["top1_agreement"] == 1.0  # the bar, as measured at export


@needs_cifar10
def test_committed_resnet20_reproduces_its_model_card():
    card = json.loads((RESNET20 / "export" / "model_card.json").read_text())
    verification = card["verification"]
    assert verification["test_examples"] == 10_000

    result = evaluate(RESNET20)
    assert result["test_examples"] == 10_000
    assert abs(result["test_accuracy"] - verification["keras_accuracy"]) <= ONE_IMAGE
    assert result["test_accuracy"] >= 0.90  # the floor; the paper reports 91.25%

    model, record = load_run(RESNET20)
    task, data = load_run_data(model, record)
    images, labels = task.verification_data(data)
    reference = model.predict(images, batch_size=500, verbose=0).argmax(-1)
    artifacts = {a["format"]: a for a in card["artifacts"]}
    for fmt in ("float32", "int8"):
        entry = artifacts[f"tflite_{fmt}"]
        runner = TFLiteRunner(str(RESNET20 / "export" / entry["file"]))
        predicted = runner.predict(images).argmax(-1)
        accuracy = float((predicted == labels).mean())
        assert abs(accuracy - entry["accuracy"]) <= ONE_IMAGE, fmt
        if fmt == "float32":
            assert float((predicted == reference).mean()) >= 1 - ONE_IMAGE
        else:
            assert 100 * (result["test_accuracy"] - accuracy) <= 1.0  # int8 loses <= 1 point
    np.testing.assert_array_equal(np.unique(labels), np.arange(10))  # the real test set


@needs_cifar10
def test_committed_uint8_files_classify_real_images_as_an_app_would(tmp_path):
    """The uint8 files take image bytes with the preparation baked in: on real test
    images written as PNG files, `kerasdl predict` gives Keras' predictions (float32:
    every one) and the labels stored in the file."""
    import keras

    from kerasdl.cli import main
    from kerasdl.export.metadata import read_labels
    from kerasdl.export.predict import predict_images

    card = json.loads((RESNET20 / "export_uint8" / "model_card.json").read_text())
    assert card["input"]["dtype"] == "uint8"
    assert all(a["top1_agreement"] == 1.0 for a in card["artifacts"]
               if a["format"] in ("saved_model", "tflite_float32"))
    model, record = load_run(RESNET20)
    task, data = load_run_data(model, record)
    images, labels = task.verification_data(data, limit=40)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i:02d}.png"))
        keras.utils.save_img(paths[-1], image.astype("uint8"), scale=False)
    names = record["class_names"]
    keras_top = model.predict(images, verbose=0).argmax(-1)
    for fmt, required in (("float32", 1.0), ("int8", 0.95)):
        artifact = RESNET20 / "export_uint8" / f"resnet20_{fmt}.tflite"
        assert TFLiteRunner(str(artifact)).input_details[0]["dtype"] == np.uint8
        assert read_labels(artifact) == names  # from the file's own metadata
        top = [pairs[0][0] for pairs in predict_images(artifact, paths, top=1)]
        agreement = np.mean([t == names[k] for t, k in zip(top, keras_top)])
        assert agreement >= required, (fmt, agreement)
        assert np.mean([t == names[y] for t, y in zip(top, labels)]) >= 0.8
    assert main(["predict", str(RESNET20 / "export_uint8" / "resnet20_int8.tflite"),
                 paths[0], "--top", "1"]) == 0
