"""End to end through the CLI on the real offline datasets: train, resume, evaluate,
export, quickstart, and one-line errors."""

import json
import os
import subprocess
import sys

import keras
import pytest

from kerasdl.cli import main
from kerasdl.train import train
from tests.markers import needs_tfds


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_registered_models(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "lenet5" in out and "60,850" in out and "simple_cnn" in out
    code, out, _ = run_cli(capsys, "list", "*lenet*")
    assert "lenet5_modern" in out and "simple_cnn" not in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (("train", "lenet", "--dataset", "mnist"), "lenet5"),
        (("train", "lenet5", "--dataset", "mnistt"), "Closest TFDS names: mnist"),
        (("info", "resnet9000"), "Unknown model name"),
        (("evaluate", "/nonexistent/run"), "no trained model"),
        (("export", "lenet5_modern", "--dataset", "kmnist"), "train it first"),
        (("export", "/no/such/path"), "no run folder or .keras file at /no/such/path"),
        (("export", "./no_such_run"), "no run folder or .keras file at"),
        (("train", "lenet5", "--dataset", "/some/folder"), "/some/folder"),
        (("list", "--family", "cnns"), "family must be one of"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasdl: error:") and needle in lines[0]
    assert "Traceback" not in err + out


def test_a_bug_keeps_its_traceback(tmp_path):
    """A TypeError planted inside a builder is a bug, not a user mistake: the CLI must not
    shrink it to one line."""
    script = (
        "import sys, kerasdl\n"
        "from kerasdl.cli import main\n"
        "@kerasdl.register_model('tmp_buggy', family='test', task='image_classification')\n"
        "def tmp_buggy(input_shape=(8, 8, 1), num_classes=2, name='tmp_buggy'):\n"
        "    return len(5)  # planted bug: TypeError\n"
        "sys.exit(main(['info', 'tmp_buggy']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "TypeError: object of type 'int' has no len()" in proc.stderr
    assert "kerasdl: error" not in proc.stderr


def test_user_error_names_the_cli_flag(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    code, _, err = run_cli(capsys, "train", "lenet5", "--dataset", "digits", "--output", str(run))
    assert code == 2
    assert "pass overwrite=True to replace it (option --overwrite)" in err

def test_missing_data_offline_is_one_clear_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    code, _, err = run_cli(capsys, "train", "lenet5", "--dataset", "fashion_mnist",
                           "--output", str(tmp_path / "run"))
    assert code == 2 and "not prepared" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "run").exists()


def test_bad_option_values_exit_nonzero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "lenet5", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@needs_tfds
def test_train_evaluate_export_fashion_mnist_by_name(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "lenet5_modern", "--dataset", "fashion_mnist",
                             "--epochs", "1", "--max-examples", "512", "--output", str(run))
    assert code == 0, err
    record = json.loads((run / "run.json").read_text())
    assert record["dataset"] == "fashion_mnist" and record["image_shape"] == [32, 32, 1]
    assert record["num_examples"]["train"] == 512
    assert 0.0 <= record["test_accuracy"] <= 1.0
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 1 and "val_accuracy" in history
    assert not (run / "backup").exists()  # a finished run keeps no checkpoint
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert model.count_params() == 61_706

    code, _, err = run_cli(capsys, "train", "lenet5_modern", "--dataset", "fashion_mnist",
                           "--output", str(run))
    assert code == 2 and "already exists" in err

    # In a fresh process (nothing of kerasdl imported yet), as a user would run it: the
    # saved model's custom layers and schedule must deserialise on their own.
    proc = subprocess.run(
        [sys.executable, "-m", "kerasdl", "evaluate", str(run), "--max-examples", "512"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "fashion_mnist: test accuracy" in proc.stdout
    # Evaluate agrees with what training measured on the same 512 test examples.
    assert f"{100 * record['test_accuracy']:.2f}%" in proc.stdout

    code, out, err = run_cli(capsys, "export", str(run), "--quantize", "int8",
                             "--max-test-examples", "128")
    assert code == 0, err
    files = sorted(os.listdir(run / "export"))
    assert files == sorted(["MODEL_CARD.md", "model_card.json", "labels.txt",
                            "lenet5_modern_float32.tflite", "lenet5_modern_int8.tflite"])
    # Fashion-MNIST's class names, not digits, travel with the files.
    assert (run / "export" / "labels.txt").read_text().split("\n")[0] == "T-shirt/top"
    assert "# Model card: lenet5_modern" in out
    code, _, err = run_cli(capsys, "export", str(run), "--max-test-examples", "128")
    assert code == 2 and "already exists" in err

    # A user evaluating on a dataset with other classes is stopped, not given a number.
    code, _, err = run_cli(capsys, "evaluate", str(run), "--dataset", "mnist",
                           "--max-examples", "64")
    assert code == 2 and "classes" in err and "T-shirt/top" in err


@needs_tfds
def test_exported_tflite_takes_raw_pixels_as_its_card_says(capsys, tmp_path):
    """The card states the input in machine-readable form; raw TFDS pixels prepared only
    from that spec (pad to the card's shape, float32) give the card's Keras accuracy."""
    import numpy as np
    import tensorflow_datasets as tfds

    from kerasdl.export import TFLiteRunner

    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lenet5", "--dataset", "mnist", "--epochs", "1",
                           "--max-examples", "1024", "--output", str(run))
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", str(run), "--formats", "float32",
                           "--max-test-examples", "256")
    assert code == 0, err
    card = json.loads((run / "export" / "model_card.json").read_text())
    spec = card["input"]
    assert spec["pixel_range"] == [0.0, 255.0] and spec["dtype"] == "float32"
    scaling = spec["scaling_inside_model"]
    assert scaling["formula"] == "y = x * scale + offset"
    np.testing.assert_allclose(scaling["offset"], [-0.1])
    np.testing.assert_allclose(scaling["scale"], [1.275 / 255])
    assert card["output"]["kind"] == "logits" and card["output"]["class_names"][:2] == ["0", "1"]

    ds = tfds.load("mnist", split="test[:256]", as_supervised=True,
                   data_dir=os.environ["TFDS_DATA_DIR"])
    images, labels = map(np.stack, zip(*tfds.as_numpy(ds)))
    height, width, _ = spec["shape"]
    pad_h, pad_w = (height - images.shape[1]) // 2, (width - images.shape[2]) // 2
    x = np.pad(images, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0))).astype(spec["dtype"])
    runner = TFLiteRunner(run / "export" / "lenet5_float32.tflite")
    accuracy = float((runner.predict(x).argmax(-1) == labels).mean())
    assert accuracy == pytest.approx(card["verification"]["keras_accuracy"], abs=1e-9)
    assert accuracy > 0.5  # a trained model, not chance


def test_runs_saved_before_input_scaling_still_load(tmp_path, capsys):
    """A run folder from before input scaling moved into the model (its run.json names a
    normalization; its model takes scaled pixels) loads as a raw-pixel model."""
    import numpy as np

    import kerasdl
    from kerasdl.train import load_run

    old = kerasdl.create_model("lenet5", num_classes=4, input_scaling=None)
    old.save(tmp_path / "model.keras")
    (tmp_path / "run.json").write_text(json.dumps({"model": "lenet5", "normalization": "lenet"}))
    model, _ = load_run(tmp_path)
    assert "predates input scaling" in capsys.readouterr().out
    raw = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(
        model.predict(raw, verbose=0), old.predict(raw * (1.275 / 255) - 0.1, verbose=0),
        atol=1e-5)

@needs_tfds
def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("lenet5", "mnist", output_dir=str(run), epochs=2, max_examples=256,
              callbacks=[StopAfterFirstEpoch()], verbose=0)
    assert (run / "backup").is_dir() and not (run / "model.keras").exists()
    record = train("lenet5", "mnist", output_dir=str(run), epochs=2, max_examples=256, verbose=0)
    assert record["resumed"] is True
    assert record["epochs_run_this_session"] == 1  # only the second epoch was left
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [0.0, 1.0]
    assert (run / "model.keras").exists() and not (run / "backup").exists()

    # Retraining over the finished run starts a fresh history.
    record = train("lenet5", "mnist", output_dir=str(run), epochs=1, max_examples=256,
                   verbose=0, overwrite=True)
    assert record["resumed"] is False
    assert json.loads((run / "history.json").read_text())["epoch"] == [0.0]


@needs_tfds
def test_a_run_killed_while_logging_an_epoch_redoes_it(tmp_path, monkeypatch):
    """With no validation split the epoch ends with the test-curve evaluation; a kill there
    must not leave a checkpoint past an epoch the log never got."""
    import kerasdl.callbacks
    from kerasdl.train import get_recipe

    original = kerasdl.callbacks.TestCurve.on_epoch_end
    calls = []

    def killed_in_second_epoch(self, epoch, logs=None):
        calls.append(epoch)
        if epoch == 1 and calls.count(1) == 1:
            raise KeyboardInterrupt
        return original(self, epoch, logs)

    monkeypatch.setattr(kerasdl.callbacks.TestCurve, "on_epoch_end", killed_in_second_epoch)
    recipe = get_recipe("lenet5").replace(validation_fraction=0.0)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("lenet5", "mnist", output_dir=str(run), recipe=recipe, epochs=3,
              max_examples=256, verbose=0)
    record = train("lenet5", "mnist", output_dir=str(run), recipe=recipe, epochs=3,
                   max_examples=256, verbose=0)
    assert record["epochs_run_this_session"] == 2  # the interrupted epoch was redone
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [0.0, 1.0, 2.0]
    assert all(v == v for v in history["loss"] + history["test_accuracy"])  # no NaN gap


def test_train_writes_tensorboard_logs_into_the_run_folder(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "lenet5", "--dataset", "digits", "--epochs", "1",
                             "--max-examples", "128", "--tensorboard", "--output", str(run))
    assert code == 0, err
    events = [f for _, _, files in os.walk(run / "tensorboard") for f in files
              if f.startswith("events.out.tfevents")]
    assert events, "no TensorBoard event file under the run folder"


def test_a_resumed_older_log_keeps_its_columns(tmp_path):
    from kerasdl.train.runs import _log_has_columns

    log = tmp_path / "training_log.csv"
    assert _log_has_columns(str(log), ("learning_rate",))  # a new log gets them
    log.write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
    assert not _log_has_columns(str(log), ("learning_rate",))
    log.write_text("epoch,accuracy,learning_rate,loss\n0,0.5,0.1,1.0\n")
    assert _log_has_columns(str(log), ("learning_rate",))


def test_history_has_one_entry_per_epoch(tmp_path):
    from kerasdl.train.runs import _history

    (tmp_path / "training_log.csv").write_text(
        "epoch,accuracy,loss,val_loss\n"
        "0,0.5,2.0,NA\n"
        "1,0.6,1.5,NA\n"
        "1,0.65,1.4,NA\n"  # redone after a kill between logging and checkpointing
        "3,0.8,0.9,NA\n"   # epoch 2 never logged (older kerasdl checkpointed first)
    )
    history = _history(str(tmp_path), {})
    assert history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    assert history["accuracy"][:2] == [0.5, 0.65] and history["accuracy"][3] == 0.8
    assert history["loss"][2] != history["loss"][2]  # NaN marks the missing epoch
    assert "val_loss" not in history


@needs_tfds
def test_quickstart_smoke(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quickstart", "--output", str(tmp_path), "--epochs", "1",
                             "--max-examples", "512")
    assert code == 0, err
    export = tmp_path / "lenet5_mnist" / "export"
    card = json.loads((export / "model_card.json").read_text())
    assert {a["format"] for a in card["artifacts"]} == {
        "saved_model", "tflite_float32", "tflite_float16", "tflite_dynamic_range", "tflite_int8"}
    assert "Quickstart targets" in out and "[PASS] float32 TFLite agrees" in out
    # Re-running reuses the run and the export instead of overwriting them.
    code, out, _ = run_cli(capsys, "quickstart", "--output", str(tmp_path))
    assert code == 0 and "reusing it" in out


def test_quickstart_falls_back_to_embedded_digits(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no_tfds"))
    code, out, err = run_cli(capsys, "quickstart", "--output", str(tmp_path / "models"),
                             "--epochs", "1")
    assert code == 0, err
    assert "FALLING BACK" in out and "NOT MNIST" in out
    assert (tmp_path / "models" / "lenet5_digits" / "export" / "lenet5_int8.tflite").exists()
    assert not (tmp_path / "models" / "lenet5_mnist" / "model.keras").exists()


def test_train_and_evaluate_on_a_folder_of_images(capsys, tmp_path):
    """A user's own images: one subfolder per class, through the same CLI."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    pictures = tmp_path / "pictures"
    for label, name in enumerate(["circle", "square"]):
        (pictures / name).mkdir(parents=True)
        for i in range(12):
            image = rng.integers(0, 60, (20, 24, 3)).astype("uint8")
            image[6:14, 8:16] = 250 if label else image[6:14, 8:16]  # squares are bright
            tf.io.write_file(str(pictures / name / f"{i:02d}.png"), tf.io.encode_png(image))
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "basic_cnn", "--dataset", str(pictures),
                             "--epochs", "1", "--output", str(run))
    assert code == 0, err
    record = json.loads((run / "run.json").read_text())
    assert record["class_names"] == ["circle", "square"]
    assert record["image_shape"] == [28, 28, 1]
    assert sum(record["num_examples"].values()) == 24
    assert "image folder" in record["data_source"]
    code, out, err = run_cli(capsys, "evaluate", str(run))
    assert code == 0, err
    assert f"{record['num_examples']['test']:,} examples" in out


@needs_tfds
def test_fine_tune_a_finished_run_on_other_classes(capsys, tmp_path):
    """--from a run trained on MNIST digits, --freeze its early layers, onto Fashion-MNIST:
    a new 10-way head, the frozen layers keep their trained weights."""
    import numpy as np

    source = tmp_path / "source"
    code, _, err = run_cli(capsys, "train", "lenet5_modern", "--dataset", "mnist", "--epochs",
                           "1", "--max-examples", "256", "--output", str(source))
    assert code == 0, err
    tuned = tmp_path / "tuned"
    code, _, err = run_cli(capsys, "train", "lenet5_modern", "--dataset", "fashion_mnist",
                           "--from", str(source), "--freeze", "c3", "--epochs", "1",
                           "--max-examples", "256", "--output", str(tuned))
    assert code == 0, err
    record = json.loads((tuned / "run.json").read_text())
    assert record["frozen_up_to"] == "c3" and record["fine_tuned_from"] == str(source)
    assert record["class_names"][0] == "T-shirt/top"
    before = keras.saving.load_model(source / "model.keras")
    after = keras.saving.load_model(tuned / "model.keras")
    np.testing.assert_array_equal(before.get_layer("c1").get_weights()[0],
                                  after.get_layer("c1").get_weights()[0])
    assert not np.array_equal(before.get_layer("f6").get_weights()[0],
                              after.get_layer("f6").get_weights()[0])
    code, _, err = run_cli(capsys, "train", "lenet5_modern", "--dataset", "digits",
                           "--freeze", "c3", "--output", str(tmp_path / "x"))
    assert code == 2 and "init_from" in err and "--freeze" in err


def test_info_prints_the_analysis(capsys):
    code, out, _ = run_cli(capsys, "info", "lenet5")
    assert code == 0
    assert "parameters at the defaults: 60,850" in out
    # C5's 5x5 units see the whole 32x32 input (LeCun et al. 1998, Sec. II-B).
    assert "receptive field 32x32 px" in out
    assert "weighted layers" in out and "GMACs" in out
