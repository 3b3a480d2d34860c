"""Training runs: fit a registered model on a dataset with its recipe, into a run folder
that can be resumed after an interruption.

A run folder holds::

    model.keras          the trained model (written atomically at the end)
    run.json             model, dataset, recipe, preprocessing, metrics, wall times
    history.json         per-epoch metrics
    training_log.csv     the same, appended epoch by epoch while training
    backup/              BackupAndRestore checkpoint while a run is unfinished
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time

from kerasdl.registry import model_info

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
DEFAULT_ROOT = "saved_models"


def default_run_dir(model_name, dataset, root=DEFAULT_ROOT):
    slug = re.sub(r"[^a-z0-9]+", "_", dataset.split(":")[0].lower()).strip("_")
    return os.path.join(root, f"{model_name}_{slug}")


def _optimizer(recipe, steps_per_epoch):
    import keras

    from kerasdl.callbacks import WarmupCosine

    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "cosine":
        warmup = min(int(recipe.warmup_epochs * steps_per_epoch), total - 1)
        lr = WarmupCosine(recipe.learning_rate, total, warmup)
    else:
        lr = recipe.learning_rate
    ema = {"use_ema": True, "ema_momentum": recipe.ema_momentum} if recipe.ema_momentum else {}
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(lr, **ema)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay or 1e-4, **ema)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **ema)


def default_jit_compile():
    """XLA for the train step only where an accelerator is present. Measured on the
    2-core CPU (benchmarks/train_step_xla.py): XLA makes the train step 1.4x (lenet5) to
    1.9x (lenet5_modern) slower than TensorFlow's default kernels, so CPU runs skip it."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return "auto" if tf.config.list_physical_devices("GPU") else False
    return "auto"


def describe_preprocessing(data):
    h, w, c = data.image_shape
    from kerasdl.data import NORMALIZATIONS

    low, high = NORMALIZATIONS[data.normalization]
    return (
        f"uint8 pixels scaled linearly to [{low}, {high}] ({data.normalization}); "
        f"images padded with black around the centre (or resized if larger) to {h}x{w}x{c}"
    )


def save_model_atomically(model, path, overwrite=False):
    """``model.save`` into a temporary ``.keras`` file, then rename it onto ``path``."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    tmp = os.path.join(os.path.dirname(path), f".partial-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(path, obj):
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def train(
    model_name,
    dataset="mnist",
    *,
    output_dir=None,
    epochs=None,
    batch_size=None,
    learning_rate=None,
    data_dir=None,
    max_examples=None,
    overwrite=False,
    seed=0,
    verbose=None,
    recipe=None,
    callbacks=(),
    jit_compile=None,
):
    """Train ``model_name`` on ``dataset`` with its recipe; return the run record (dict).

    The same call resumes an interrupted run (``keras.callbacks.BackupAndRestore`` in
    ``output_dir/backup``). A finished run is not retrained unless ``overwrite=True``.
    ``callbacks`` are added after kerasdl's own (checkpointing and the CSV log).
    """
    import keras

    from kerasdl.augment import make_augmentation
    from kerasdl.data import NORMALIZATIONS, load_image_classification
    from kerasdl.registry import create_model
    from kerasdl.train.recipes import get_recipe

    info = model_info(model_name)
    if info.task != "image_classification":
        raise ValueError(
            f"kerasdl train handles image_classification models; {info.name!r} is a "
            f"{info.task} model"
        )
    recipe = (recipe or get_recipe(info.name)).replace(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    run_dir = os.path.abspath(output_dir or default_run_dir(info.name, dataset))
    model_path = os.path.join(run_dir, MODEL_FILE)
    backup_dir = os.path.join(run_dir, "backup")
    if os.path.exists(model_path) and not overwrite:
        raise FileExistsError(
            f"{model_path} already exists (a finished run); pass --overwrite to retrain, "
            "or choose another --output"
        )
    log_path = os.path.join(run_dir, "training_log.csv")
    if overwrite and os.path.exists(model_path):
        # A new run replaces a finished one: its checkpoint and epoch log must not leak in.
        shutil.rmtree(backup_dir, ignore_errors=True)
        if os.path.exists(log_path):
            os.remove(log_path)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    keras.utils.set_random_seed(seed)
    height, width = info.default_input_shape[:2]
    augment = make_augmentation(
        recipe.augmentation, (height, width), NORMALIZATIONS[recipe.normalization][0], seed
    )
    data = load_image_classification(
        dataset,
        image_size=(height, width),
        batch_size=recipe.batch_size,
        normalization=recipe.normalization,
        validation_fraction=recipe.validation_fraction,
        augment=augment,
        data_dir=data_dir,
        max_examples=max_examples,
        seed=seed,
    )
    model = create_model(info.name, input_shape=data.image_shape, num_classes=data.num_classes)
    steps = math.ceil(data.num_examples["train"] / recipe.batch_size)
    model.compile(
        optimizer=_optimizer(recipe, steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=default_jit_compile() if jit_compile is None else jit_compile,
    )
    os.makedirs(run_dir, exist_ok=True)
    resuming = os.path.isdir(backup_dir)
    print(
        f"{'Resuming' if resuming else 'Training'} {info.name} "
        f"({model.count_params():,} params) on {data.source}: "
        f"{data.num_examples['train']:,} train / {data.num_examples.get('validation', 0):,} "
        f"validation / {data.num_examples['test']:,} test, {recipe.epochs} epochs of "
        f"{steps} steps -> {run_dir}",
        flush=True,
    )
    all_callbacks = [
        keras.callbacks.BackupAndRestore(backup_dir),
        keras.callbacks.CSVLogger(log_path, append=True),
        *callbacks,
    ]
    start = time.perf_counter()
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=recipe.epochs,
        callbacks=all_callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(data.test, verbose=0)
    save_model_atomically(model, model_path, overwrite=True)
    record = {
        "model": info.name,
        "dataset": dataset,
        "data_source": data.source,
        "embedded_data": data.embedded,
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "normalization": data.normalization,
        "preprocessing": describe_preprocessing(data),
        "num_examples": data.num_examples,
        "recipe": recipe.to_dict(),
        "epochs_run_this_session": len(history.history.get("loss", [])),
        "resumed": resuming,
        "train_seconds_this_session": round(train_seconds, 1),
        "test_accuracy": float(test_accuracy),
        "test_error_percent": round(100.0 * (1.0 - float(test_accuracy)), 3),
        "test_loss": float(test_loss),
        "parameters": int(model.count_params()),
        "seed": seed,
    }
    _write_json(os.path.join(run_dir, "history.json"), _history(run_dir, history.history))
    _write_json(os.path.join(run_dir, RUN_FILE), record)
    print(
        f"Test accuracy {100 * test_accuracy:.2f}% (error {record['test_error_percent']:.2f}%), "
        f"training took {train_seconds:.0f} s. Saved {model_path}",
        flush=True,
    )
    return record


def _history(run_dir, history):
    """Per-epoch metrics from the CSV log (complete across resumed sessions), else fit's."""
    import csv

    path = os.path.join(run_dir, "training_log.csv")
    if os.path.exists(path):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if rows:
            return {k: [float(r[k]) for r in rows] for k in rows[0]}
    return {k: [float(x) for x in v] for k, v in history.items()}


def run_dir_of(path):
    """The run folder of a run folder or of the ``.keras`` file inside one."""
    path = os.path.abspath(os.fspath(path))
    return os.path.dirname(path) if path.endswith(".keras") else path


def load_run(path):
    """``(model, run_record)`` from a run folder or a ``.keras`` file inside one."""
    import keras

    path = os.path.abspath(os.fspath(path))
    run_dir = run_dir_of(path)
    model_path = path if path.endswith(".keras") else os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f"no trained model at {model_path}; train one first with `kerasdl train`"
        )
    record_path = os.path.join(run_dir, RUN_FILE)
    record = {}
    if os.path.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
    # Register kerasdl's serializable layers and schedules before deserialising.
    import kerasdl.callbacks  # noqa: F401
    import kerasdl.layers  # noqa: F401
    import kerasdl.models  # noqa: F401

    model = keras.saving.load_model(model_path, safe_mode=True)
    return model, record


def evaluate(path, dataset=None, *, data_dir=None, max_examples=None, batch_size=256):
    """Test accuracy and loss of a trained run on ``dataset`` (default: the run's own)."""
    from kerasdl.data import load_image_classification

    model, record = load_run(path)
    dataset = dataset or record.get("dataset")
    if not dataset:
        raise ValueError("no dataset given and the run has no run.json naming one; pass --dataset")
    data = load_image_classification(
        dataset,
        image_size=tuple(model.input_shape[1:3]),
        channels=model.input_shape[-1],
        normalization=record.get("normalization", "unit"),
        batch_size=batch_size,
        data_dir=data_dir,
        max_examples=max_examples,
    )
    if data.num_classes != model.output_shape[-1]:
        raise ValueError(
            f"dataset {dataset!r} has {data.num_classes} classes but the model outputs "
            f"{model.output_shape[-1]}"
        )
    x, y = data.arrays("test")
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    accuracy = float((logits.argmax(-1) == y).mean())
    return {"dataset": dataset, "source": data.source, "test_examples": int(len(y)),
            "test_accuracy": accuracy, "test_error_percent": round(100 * (1 - accuracy), 3)}
