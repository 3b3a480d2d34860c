"""kerasdl.export.bench and kerasdl.export.predict, and the `bench` and `predict` commands,
on tiny classifiers whose right answers are known by construction."""

import json
import os
import shutil

import numpy as np
import pytest

from kerasdl.cli import main
from kerasdl.errors import KerasdlError, NotFoundError
from kerasdl.export.bench import benchmark, render_bench
from kerasdl.export.metadata import write_labels, write_tflite_metadata
from kerasdl.export.predict import load_images, predict_images
from kerasdl.export.tflite import convert_to_tflite

keras = pytest.importorskip("keras")

COLOURS = ["red", "green", "blue"]


def _colour_model(dtype="float32", channels=3, units=3):
    """Raw pixels -> Rescaling(1/255) -> 1x1 identity Conv2D -> mean per channel -> Dense.

    With channels=3, logit k = 10 * (mean of channel k in [0, 1]) - 5: a red image is
    "red" by construction. With channels=1 (two classes), logits [5 - 10m, 10m - 5]: dark
    and bright. uint8 input: Rescaling casts to float32 inside the model."""
    inputs = keras.Input((8, 8, channels), dtype=dtype, name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    conv = keras.layers.Conv2D(channels, 1, name="identity")
    x = keras.layers.GlobalAveragePooling2D()(conv(x))
    dense = keras.layers.Dense(units, name="logits")
    model = keras.Model(inputs, dense(x), name=f"colours_{dtype}_{channels}")
    conv.set_weights([np.eye(channels, dtype="float32")[None, None], np.zeros(channels)])
    if channels == 3:
        dense.set_weights([10 * np.eye(3, dtype="float32"), -5 * np.ones(3, "float32")])
    else:
        dense.set_weights([np.array([[-10.0, 10.0]], "float32"), np.array([5.0, -5.0], "float32")])
    return model


def _softmax(z):
    z = np.asarray(z, "float64")
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _png(path, rgb, size=(8, 8)):
    image = np.zeros(size + (3,), "float32")
    image[...] = rgb
    keras.utils.save_img(str(path), image, scale=False)
    return str(path)


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    """A run folder run/ with model.keras and run.json; run/export/ holding float32 and
    int8 files with labels in their metadata (and no model card); images."""
    root = tmp_path_factory.mktemp("bench_predict")
    model = _colour_model()
    run = root / "run"
    export = run / "export"
    export.mkdir(parents=True)
    model.save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"model": "colours"}))
    rng = np.random.default_rng(0)
    representative = rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    representative[:3] = 255 * np.eye(3)[:, None, None, :]
    f32, i8 = export / "colours_float32.tflite", export / "colours_int8.tflite"
    convert_to_tflite(model, f32, "float32")
    convert_to_tflite(model, i8, "int8", representative)
    bare = root / "bare"  # a float32 file without labels in its metadata
    bare.mkdir()
    shutil.copy(f32, bare / "colours.tflite")
    for path in (f32, i8):
        write_tflite_metadata(path, {"labels": COLOURS})
    images = root / "images"
    images.mkdir()
    img = {
        "red": _png(images / "red.png", (255, 0, 0)),
        "green": _png(images / "green.png", (0, 255, 0)),
        "blue": _png(images / "blue.png", (0, 0, 255)),
        "big_blue": _png(images / "big_blue.png", (10, 20, 230), size=(16, 12)),
    }
    noise = rng.integers(0, 256, (8, 8, 3)).astype("float32")
    keras.utils.save_img(str(images / "noise.png"), noise, scale=False)
    img["noise"] = str(images / "noise.png")
    return {"root": root, "model": model, "run": run, "export": export, "float32": f32,
            "int8": i8, "bare": bare / "colours.tflite", "img": img}


def test_float32_predictions_match_keras_softmax(art):
    img = art["img"]
    paths = [img["red"], img["green"], img["blue"], img["noise"]]
    pixels = load_images(paths, (8, 8, 3))
    assert pixels.shape == (4, 8, 8, 3) and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[0, 0, 0], [255, 0, 0])
    expected = _softmax(art["model"].predict(pixels, verbose=0))
    results = predict_images(art["float32"], paths, top=3)
    assert [r[0][0] for r in results[:3]] == COLOURS  # right by construction
    assert results[0][0][1] > 0.99
    for probs, pairs in zip(expected, results):
        order = np.argsort(-probs)
        assert [label for label, _ in pairs] == [COLOURS[i] for i in order]
        np.testing.assert_allclose([p for _, p in pairs], probs[order], atol=1e-5)
    # The noise image gives three comparable probabilities, so the check above has teeth.
    assert results[3][-1][1] > 0.05


def test_int8_and_folders_and_top(art):
    img = [art["img"]["red"], art["img"]["green"], art["img"]["blue"]]
    results = predict_images(art["int8"], img, top=1)
    assert [r[0][0] for r in results] == COLOURS and all(len(r) == 1 for r in results)
    assert results[0][0][1] > 0.95
    # A run folder and an export folder use the float32 file.
    for where in (art["run"], art["export"]):
        assert predict_images(where, img, top=9) == predict_images(art["float32"], img, top=9)
    assert len(predict_images(art["export"], img[:1], top=9)[0]) == 3  # clamped
    with pytest.raises(KerasdlError, match="top must be a positive integer"):
        predict_images(art["float32"], img, top=0)


def test_resized_image(art):
    pixels = load_images([art["img"]["big_blue"]], (8, 8, 3))
    assert pixels.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(pixels[0], np.broadcast_to([10, 20, 230], (8, 8, 3)))
    # A half red, half blue image keeps its halves after shrinking 16x16 -> 8x8.
    half = np.zeros((16, 16, 3), "float32")
    half[:, :8, 0], half[:, 8:, 2] = 255, 255
    path = art["root"] / "images" / "half.png"
    keras.utils.save_img(str(path), half, scale=False)
    x = load_images([path], (8, 8, 3))[0]
    np.testing.assert_array_equal(x[:, :3], np.broadcast_to([255, 0, 0], (8, 3, 3)))
    np.testing.assert_array_equal(x[:, 5:], np.broadcast_to([0, 0, 255], (8, 3, 3)))
    [[(label, _), *_]] = predict_images(art["float32"], [art["img"]["big_blue"]])
    assert label == "blue"


def test_smaller_image_is_padded_as_in_training(art):
    """Training pads images smaller than the input with black, centred (MNIST 28x28 for
    LeNet-5's 32x32); predicting must see them the same way, not stretched."""
    import tensorflow as tf

    small = np.full((4, 6, 3), 200.0, "float32")
    path = art["root"] / "images" / "small.png"
    keras.utils.save_img(str(path), small, scale=False)
    x = load_images([path], (8, 8, 3))[0]
    expected = tf.image.resize_with_crop_or_pad(small[None], 8, 8).numpy()[0]
    np.testing.assert_array_equal(x, expected)
    assert x[0].max() == 0 and x[2:6, 1:7].min() == 200


def test_labels_txt_fallback_and_no_labels(art, tmp_path):
    img = [art["img"]["green"]]
    assert predict_images(art["bare"], img)[0][0][0] == "class 1"
    folder = tmp_path / "with_txt"
    folder.mkdir()
    shutil.copy(art["bare"], folder / "m.tflite")
    write_labels(folder, ["rouge", "vert", "bleu"])
    assert [label for label, _ in predict_images(folder / "m.tflite", img)[0]][0] == "vert"
    write_labels(folder, ["just", "two"])
    with pytest.raises(KerasdlError, match="3 classes but its labels list 2"):
        predict_images(folder / "m.tflite", img)


def test_grayscale_and_uint8_models(art, tmp_path):
    grey = _colour_model(channels=1, units=2)
    gpath = tmp_path / "grey.tflite"
    convert_to_tflite(grey, gpath)
    write_tflite_metadata(gpath, {"labels": ["dark", "bright"]})
    white = _png(tmp_path / "white.png", (255, 255, 255))
    navy = _png(tmp_path / "navy.png", (0, 0, 90), size=(5, 7))
    pixels = load_images([white, navy], (8, 8, 1))
    assert pixels.shape == (2, 8, 8, 1)
    results = predict_images(gpath, [white, navy], top=1)
    assert [r[0][0] for r in results] == ["bright", "dark"]
    np.testing.assert_allclose([r[0][1] for r in results],
                               _softmax(grey.predict(pixels, verbose=0)).max(-1), atol=1e-5)

    # A 16-bit grey PNG is scaled to [0, 255], for a grey or an RGB model alike.
    from PIL import Image

    levels = np.full((8, 8), 1000, np.uint16)
    levels[:, 4:] = 40_000
    Image.fromarray(levels).save(tmp_path / "deep.png")
    for channels in (1, 3):
        x = load_images([tmp_path / "deep.png"], (8, 8, channels))[0]
        np.testing.assert_array_equal(x[:, :4], 4.0)
        np.testing.assert_array_equal(x[:, 4:], 156.0)

    u8 = _colour_model(dtype="uint8")
    upath = tmp_path / "u8.tflite"
    convert_to_tflite(u8, upath)
    from kerasdl.export.runtime import TFLiteRunner

    assert TFLiteRunner(upath).input_dtype == np.uint8
    img = [art["img"]["blue"], art["img"]["red"], art["img"]["noise"]]
    results = predict_images(upath, img, top=3)
    assert [r[0][0] for r in results[:2]] == ["class 2", "class 0"]
    expected = _softmax(u8.predict(load_images(img, (8, 8, 3)).astype("uint8"), verbose=0))
    np.testing.assert_allclose([p for _, p in results[2]], np.sort(expected[2])[::-1],
                               atol=1e-5)


def test_image_errors(art, tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(NotFoundError, match="nope.png"):
        predict_images(art["float32"], [art["img"]["red"], missing])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(KerasdlError, match="broken.png is not a readable image"):
        load_images([broken], (8, 8, 3))
    with pytest.raises(NotFoundError, match="no_such.tflite"):
        predict_images(tmp_path / "no_such.tflite", [art["img"]["red"]])
    os.makedirs(tmp_path / "only_int8")
    shutil.copy(art["int8"], tmp_path / "only_int8" / "m_int8.tflite")
    with pytest.raises(NotFoundError, match="no \\*_float32.tflite"):
        predict_images(tmp_path / "only_int8", [art["img"]["red"]])


def test_benchmark_rows_side_by_side(art, tmp_path):
    rows = benchmark(art["float32"], threads=(1, 2), runs=3, warmup=1, verbose=False)
    assert [(r["artifact"], r["threads"]) for r in rows] == [
        ("colours_float32.tflite", 1), ("colours_float32.tflite", 2)]
    assert all(r["latency_ms"] > 0 and r["vs_keras_compiled"] is None for r in rows)
    assert rows[0]["size_bytes"] == os.path.getsize(art["float32"])
    assert rows[0]["format"] == "tflite_float32"

    rows = benchmark(art["export"], threads=(1,), runs=3, warmup=1, verbose=False)
    assert [r["artifact"] for r in rows] == [
        "keras predict", "keras compiled call", "colours_float32.tflite", "colours_int8.tflite"]
    keras_size = os.path.getsize(art["run"] / "model.keras")
    assert rows[0]["size_bytes"] == rows[1]["size_bytes"] == keras_size
    assert rows[1]["vs_keras_compiled"] == 1.0
    for r in rows:
        assert r["vs_keras_compiled"] == pytest.approx(r["latency_ms"] / rows[1]["latency_ms"])
    assert [r["threads"] for r in rows] == [None, None, 1, 1]
    table = render_bench(rows)
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + 4
    assert "| colours_int8.tflite | tflite_int8 | 1 |" in table

    # A model card decides the order; a keras_model argument replaces model.keras.
    folder = tmp_path / "export"
    shutil.copytree(art["export"], folder)
    card = {"artifacts": [{"format": "tflite_int8", "file": "colours_int8.tflite"},
                          {"format": "tflite_float32", "file": "colours_float32.tflite"}]}
    (folder / "model_card.json").write_text(json.dumps(card))
    rows = benchmark(folder, threads=1, runs=2, warmup=0, verbose=False,
                     keras_model=art["model"])
    assert [r["artifact"] for r in rows] == [
        "keras predict", "keras compiled call", "colours_int8.tflite", "colours_float32.tflite"]
    assert rows[0]["size_bytes"] is None


def test_benchmark_errors(tmp_path):
    with pytest.raises(NotFoundError) as info:
        benchmark(tmp_path / "missing", runs=1)
    assert info.value.argument == "target" and ".tflite file" in str(info.value)
    with pytest.raises(NotFoundError, match="holds no .tflite file"):
        benchmark(tmp_path, runs=1)
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(NotFoundError, match="export it first"):
        benchmark(tmp_path, runs=1)
    with pytest.raises(KerasdlError, match="threads"):
        benchmark(tmp_path, threads=(0,))


def test_cli_predict(art, capsys):
    img = art["img"]
    code = main(["predict", str(art["float32"]), img["red"], img["blue"], "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    # p(red) = e^10 / (e^10 + 2) = 99.991%: not rounded up to a certain 100.0%.
    assert lines[0] == f"{img['red']}: red >99.9%, green <0.1%"
    assert lines[1].startswith(f"{img['blue']}: blue ")
    code = main(["predict", str(art["run"]), str(art["root"] / "absent.png")])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "absent.png" in err


def test_cli_bench(art, capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    code = main(["bench", str(art["export"]), "--runs", "3", "--threads", "1",
                 "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 4  # header, two Keras rows, two files at one thread count
    assert any(r.startswith("| keras compiled call |") for r in rows)
    assert any(r.startswith("| colours_float32.tflite | tflite_float32 | 1 |") for r in rows)
    saved = json.loads(out_json.read_text())
    assert len(saved) == 4 and saved[1]["vs_keras_compiled"] == 1.0
    code = main(["bench", str(art["export"]), "--runs", "1", "--json", str(out_json)])
    _, err = capsys.readouterr()
    assert code == 2 and "--overwrite" in err

    code = main(["bench", str(tmp_path / "no_such_export")])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("kerasdl: error:")
    assert "no_such_export does not exist" in lines[0] and "Traceback" not in out + err
