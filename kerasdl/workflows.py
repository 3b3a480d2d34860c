"""End-to-end workflows used by the CLI and the notebooks: exporting a trained run, and
the LeNet-5 quickstart (MNIST -> train -> evaluate -> SavedModel + 4 TFLite variants)."""

from __future__ import annotations

import json
import os

from kerasdl.atomic import check_writable_target
from kerasdl.errors import DataNotFoundError, KerasdlError
from kerasdl.export.bundle import FORMATS
from kerasdl.train.runs import (
    default_run_dir,
    is_finished_run,
    load_run,
    load_run_data,
    run_dir_of,
    train,
)

REPRESENTATIVE_EXAMPLES = 500

# The quickstart's targets (issue #2): measured, then printed as PASS/FAIL.
QUICKSTART_TARGETS = {
    "max_test_error_percent": 0.8,
    "max_train_seconds": 300.0,
    "min_float32_agreement": 1.0,
    "max_int8_accuracy_drop_points": 0.3,
    "max_int8_size_vs_float32": 0.30,
}


def export_run(
    run_path,
    output_dir=None,
    *,
    formats=FORMATS,
    overwrite=False,
    data_dir=None,
    max_test_examples=None,
    latency_runs=200,
    int8_per_channel=True,
    int8_io="int8",
    raw_uint8=False,
    select_tf_ops=False,
):
    """Export a trained run folder (or its ``model.keras``) with :func:`export_model`,
    verifying on the run's own test split. Default output: ``<run>/export``."""
    from kerasdl.export.bundle import export_model

    model, record = load_run(run_path)
    if record.get("sequence_length"):
        # Trained on per-batch padded text, the model takes any length; the files get
        # the length the run's data was cut to.
        from kerasdl.export.tflite import with_sequence_length

        model = with_sequence_length(model, record["sequence_length"])
    run_dir = run_dir_of(run_path)
    if not record.get("dataset"):
        raise KerasdlError(
            f"{run_dir} has no run.json naming its dataset; export needs the dataset's test "
            "split for verification (train with `kerasdl train` to get one)",
            argument="run_path",
        )
    output_dir = check_writable_target(output_dir or os.path.join(run_dir, "export"), overwrite)
    task, data = load_run_data(model, record, data_dir=data_dir, run_dir=run_dir)
    test_x, test_y = task.verification_data(data, limit=max_test_examples)
    representative = None
    if "int8" in formats:
        representative = task.calibration_data(data, REPRESENTATIVE_EXAMPLES)
    training = {
        k: record[k]
        for k in ("test_accuracy", "test_error_percent", "train_seconds_this_session",
                  "num_examples", "seed")
        if k in record
    }
    if "recipe" in record:
        r = record["recipe"]
        training["recipe"] = r
        training["epochs"] = r["epochs"]
        training["optimizer"] = (
            f"{r['optimizer']}, peak lr {r['learning_rate']}, {r['schedule']} schedule, "
            f"batch {r['batch_size']}, augmentation {r['augmentation']}"
        )
    return export_model(
        model,
        output_dir,
        test_images=test_x,
        test_labels=test_y,
        representative_images=representative,
        formats=formats,
        overwrite=overwrite,
        model_name=record.get("model"),
        task=task,
        record=record,
        dataset={
            "name": record["dataset"],
            "source": data.source,
            "preprocessing": record.get("preprocessing", ""),
            "representative_examples": REPRESENTATIVE_EXAMPLES if representative is not None else 0,
        },
        extra={"training": training},
        latency_runs=latency_runs,
        int8_per_channel=int8_per_channel,
        int8_io=int8_io,
        raw_uint8=raw_uint8,
        select_tf_ops=select_tf_ops,
    )


def check_quickstart_targets(card, record):
    """``[(target, measured, passed)]`` for the quickstart's targets."""
    t = QUICKSTART_TARGETS
    arts = {a["format"]: a for a in card["artifacts"]}
    rows = [
        ("test error <= 0.8%", f"{record['test_error_percent']:.2f}%",
         record["test_error_percent"] <= t["max_test_error_percent"]),
        ("training <= 5 min", f"{record['train_seconds_this_session']:.0f} s",
         record["train_seconds_this_session"] <= t["max_train_seconds"]),
    ]
    if "tflite_float32" in arts:
        agree = arts["tflite_float32"]["top1_agreement"]
        rows.append(("float32 TFLite agrees with Keras on 100%", f"{100 * agree:.2f}%",
                     agree >= t["min_float32_agreement"]))
    if "tflite_int8" in arts:
        a = arts["tflite_int8"]
        rows.append(("int8 accuracy drop <= 0.3 points", f"{a['accuracy_drop_points']:+.2f}",
                     a["accuracy_drop_points"] <= t["max_int8_accuracy_drop_points"]))
        if "size_vs_float32" in a:
            rows.append(("int8 size <= 30% of float32", f"{100 * a['size_vs_float32']:.1f}%",
                         a["size_vs_float32"] <= t["max_int8_size_vs_float32"]))
    return rows


def quickstart(output_root="saved_models", *, overwrite=False, data_dir=None, epochs=None,
               max_examples=None, latency_runs=200):
    """Train LeNet-5 on MNIST with its recipe, export and verify every variant, print the
    model card. Falls back to the embedded scikit-learn digits when MNIST cannot be had.

    An existing finished run or export is reused (and said so) unless ``overwrite``.
    Returns ``(run_record, card, target_rows)``.
    """
    from kerasdl.export.bundle import render_model_card

    model_name = "lenet5"

    def train_or_reuse(dataset, **kwargs):
        run_dir = default_run_dir(model_name, dataset, output_root)
        if is_finished_run(run_dir) and not overwrite:
            print(f"Found a trained model in {run_dir}; reusing it (pass --overwrite to retrain).")
            return run_dir, load_run(run_dir)[1]
        return run_dir, train(model_name, dataset, output_dir=run_dir, epochs=epochs,
                              max_examples=max_examples, overwrite=overwrite, **kwargs)

    try:
        run_dir, record = train_or_reuse("mnist", data_dir=data_dir)
    except DataNotFoundError as err:
        print(f"MNIST is not available: {err}")
        print(
            "FALLING BACK to the embedded scikit-learn 8x8 digits (1,797 images upscaled "
            "to 28x28). These are NOT MNIST: the quickstart's MNIST targets do not apply."
        )
        run_dir, record = train_or_reuse("digits")
    export_dir = os.path.join(run_dir, "export")
    card_path = os.path.join(export_dir, "model_card.json")
    if os.path.exists(card_path) and not overwrite:
        print(f"Found an export in {export_dir}; reusing it (pass --overwrite to redo it).")
        with open(card_path) as f:
            card = json.load(f)
    else:
        print(f"Exporting and verifying SavedModel and TFLite variants -> {export_dir}")
        # Per-tensor int8 scales: measured on LeNet-5 they shrink the int8 file from 30.4%
        # to 28.2% of float32 at the same test accuracy (benchmarks/results/).
        card = export_run(run_dir, export_dir, overwrite=overwrite, data_dir=data_dir,
                          latency_runs=latency_runs, int8_per_channel=False)
    print()
    print(render_model_card(card))
    rows = check_quickstart_targets(card, record)
    if record.get("embedded_data"):
        print("Targets: not applicable (trained on the embedded digits, not MNIST).")
    else:
        print("Quickstart targets (issue #2), as measured in this run:")
        for target, measured, ok in rows:
            print(f"  [{'PASS' if ok else 'FAIL'}] {target}: {measured}")
    return record, card, rows


def notebook_settings(start=None):
    """``(smoke, output_root)`` for a chapter notebook.

    ``smoke`` is true when ``KERASDL_SMOKE`` is 1/true/yes (tiny data, one epoch: what the
    tests run). ``output_root`` is ``KERASDL_OUTPUT`` when set; else, in smoke mode, a
    new temporary folder (a smoke run never touches real runs), and otherwise
    ``saved_models/`` of the repository that holds ``start`` (default: the working
    directory), or ``saved_models/`` beside it outside a checkout.
    """
    import tempfile

    import logging

    # TensorFlow resets its logger to INFO when it is first imported inside a Jupyter
    # kernel, so "Assets written to ..." lines would land in the outputs; notebooks call
    # this after their imports.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    smoke = os.environ.get("KERASDL_SMOKE", "").strip().lower() in ("1", "true", "yes")
    if os.environ.get("KERASDL_OUTPUT"):
        return smoke, os.environ["KERASDL_OUTPUT"]
    if smoke:
        return smoke, tempfile.mkdtemp(prefix="kerasdl_smoke_")
    here = root = os.path.abspath(start or os.getcwd())
    while not (os.path.isfile(os.path.join(root, "setup.cfg"))
               and os.path.isdir(os.path.join(root, "kerasdl"))):
        parent = os.path.dirname(root)
        if parent == root:  # not inside the repository: write beside the notebook
            root = here
            break
        root = parent
    return smoke, os.path.join(root, "saved_models")


def show_images(images, title, columns=10, scale=0.9, value_range=(0.0, 1.0)):
    """Draw grey ``images`` ``[n, h, w, 1]`` as one grid (``kerasdl.callbacks.image_grid``)
    with matplotlib, ``columns`` per row, ``scale`` inches per image: the notebooks' way
    of looking at samples. ``value_range`` is what maps to black and white."""
    import matplotlib.pyplot as plt
    import numpy as np

    from kerasdl.callbacks import image_grid

    images = np.asarray(images)
    grid = image_grid(images, columns=columns, value_range=value_range)
    plt.figure(figsize=(scale * columns, scale * len(images) / columns + 0.4))
    plt.imshow(grid[..., 0], cmap="gray")
    plt.title(title)
    plt.axis("off")
    plt.show()
