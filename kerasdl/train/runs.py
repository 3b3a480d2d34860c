"""Training runs: fit a registered model on a dataset with its recipe, into a run folder
that can be resumed after an interruption.

A run folder holds::

    model.keras          the trained model (written atomically at the end)
    run.json             model, dataset, recipe, preprocessing, metrics, wall times
    history.json         per-epoch metrics
    curves.png           loss and accuracy per epoch (when matplotlib is installed)
    training_log.csv     the same, appended epoch by epoch while training
    backup/              BackupAndRestore checkpoint while a run is unfinished
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time

from kerasdl.atomic import check_writable_target, save_model, write_json
from kerasdl.errors import KerasdlError, NotFoundError
from kerasdl.registry import model_info

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
DEFAULT_ROOT = "saved_models"


def default_run_dir(model_name, dataset, root=DEFAULT_ROOT):
    name = os.path.basename(os.path.normpath(os.path.expanduser(dataset)))
    slug = re.sub(r"[^a-z0-9]+", "_", name.split(":")[0].lower()).strip("_")
    return os.path.join(root, f"{model_name}_{slug}")


def resolve_dataset(info, dataset):
    """``dataset``, else the model's registered default dataset."""
    if dataset:
        return dataset
    if info.default_dataset:
        return info.default_dataset
    raise KerasdlError(
        f"{info.name!r} has no default dataset; pass dataset=... (a TFDS name or a folder)",
        argument="dataset",
    )


def default_jit_compile():
    """XLA for the train step only where an accelerator is present. Measured on the
    2-core CPU (benchmarks/train_step_xla.py): XLA makes the train step 1.4x (lenet5) to
    1.9x (lenet5_modern) slower than TensorFlow's default kernels, so CPU runs skip it."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return "auto" if tf.config.list_physical_devices("GPU") else False
    return "auto"


def build_for_fit(model, data):
    """Create the optimizer's and the compiled metrics' variables before ``fit``, from
    the shapes and dtypes of ``data``: a ``tf.data.Dataset`` (its ``element_spec``;
    nothing is read) or what ``fit`` would take as ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``.

    Keras' JAX trainer, and its TensorFlow trainer under a distribution strategy, do this
    themselves; without a strategy the TensorFlow trainer leaves it to the first trace of
    the training step, and ``tf.function`` traces a function that creates variables twice.
    Building first saves the second trace (measured, one epoch on 256 images: ddpm_unet
    44 s -> 24 s, resnet20 11 s -> 9 s) and changes no number: optimizer slots start at
    zero either way. Ragged or sparse batches are left to ``fit``, as before."""
    import keras

    if keras.config.backend() != "tensorflow" or not hasattr(model, "_symbolic_build"):
        return
    import tensorflow as tf

    spec = getattr(data, "element_spec", data)
    for s in tf.nest.flatten(spec):
        if isinstance(s, tf.TypeSpec) and not isinstance(s, tf.TensorSpec):
            return  # ragged or sparse: Keras' symbolic tensors are dense
        if not (hasattr(s, "shape") and hasattr(s, "dtype")):
            return
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=spec)


def train(
    model_name,
    dataset=None,
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
    epoch_metrics=(),
    jit_compile=None,
    init_from=None,
    freeze=None,
    model_kwargs=None,
    deterministic=False,
    strategy=None,
    tensorboard=False,
):
    """Train ``model_name`` on ``dataset`` (default: the model's registered dataset) with
    its recipe; return the run record (dict).

    The registered task (:mod:`kerasdl.tasks`) decides the data loader, loss, metrics and
    what the record keeps. The same call resumes an interrupted run
    (``keras.callbacks.BackupAndRestore`` in ``output_dir/backup``). A finished run is not
    retrained unless ``overwrite=True``. ``callbacks`` are added after kerasdl's own
    (checkpointing and the CSV log); ``epoch_metrics`` are callbacks that add values to
    the epoch's logs (e.g. :class:`kerasdl.generative_metrics.SampleScoreLogger`), placed
    before the CSV log so that their columns reach ``training_log.csv`` and
    ``history.json`` and survive a resumed run.

    Fine-tuning: ``init_from`` is a finished run folder whose trained model starts this
    run (its classifier is replaced when the classes differ); ``freeze`` names the stage
    (a layer-name prefix such as ``"conv3"``) up to which layers stay frozen. The run may
    also be of another variant of the same family with the same settings, such as its
    pretraining form (``bert_mini_mlm`` for ``bert_mini``): the model is then built anew,
    with the source run's architecture arguments, and takes the weights of every layer
    the two share by name (:func:`kerasdl.train.transfer.transfer_weights`). Either way a
    text run's vocabularies (``vocabulary.json``) encode this run's data.

    ``model_kwargs`` overrides builder arguments or settings-row fields for this run (e.g.
    ``{"dropout_rate": 0.3}``); the run record keeps them.

    Randomness: every epoch's shuffle order and random draws (augmentation, dropout) are
    drawn from ``(seed, epoch)``, so a resumed run sees what an uninterrupted one would.
    ``deterministic=True`` also makes TensorFlow's kernels deterministic (for the rest
    of the process) and runs the augmentation in order: two runs with one seed then end
    with identical weights, at some cost in speed.

    ``strategy``: ``"mirrored"`` (every local GPU, or the devices TensorFlow sees),
    ``"multiworker"`` (machines described by ``TF_CONFIG``), or a ``tf.distribute``
    strategy object; the model is built and compiled in its scope and the recipe's batch
    size is the global batch, split over the replicas.

    ``tensorboard=True`` writes TensorBoard logs into ``output_dir/tensorboard``.
    """
    import keras

    import kerasdl.callbacks
    from kerasdl.tasks import get_task
    from kerasdl.train.reproducibility import EpochSeeds, resume_epoch
    from kerasdl.train.recipes import get_recipe

    info = model_info(model_name)
    task = get_task(info.task)
    dataset = resolve_dataset(info, dataset)
    recipe = (recipe or get_recipe(info.name, dataset)).replace(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    run_dir = os.path.abspath(output_dir or default_run_dir(info.name, dataset))
    model_path = os.path.join(run_dir, MODEL_FILE)
    backup_dir = os.path.join(run_dir, "backup")
    check_writable_target(model_path, overwrite, what="a finished run; or choose another output_dir")
    check_run_folder(run_dir)
    distribution = resolve_strategy(strategy)
    if tensorboard:
        try:
            import tensorboard as _  # noqa: F401  (Keras' callback needs its writer)
        except ImportError:
            raise KerasdlError("tensorboard=True needs the tensorboard package: pip install "
                               "tensorboard (or kerasdl[tensorboard])",
                               argument="tensorboard") from None
    if deterministic:
        from kerasdl.train.reproducibility import enable_determinism

        enable_determinism()
    log_path = os.path.join(run_dir, "training_log.csv")
    if overwrite and os.path.exists(model_path):
        # A new run replaces a finished one: its checkpoint and epoch log must not leak in.
        shutil.rmtree(backup_dir, ignore_errors=True)
        if os.path.exists(log_path):
            os.remove(log_path)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    keras.utils.set_random_seed(seed)
    source, codecs, cross = None, None, False
    if init_from is not None:
        source, source_record = load_run(init_from)
        cross = source_record.get("model") not in (None, info.name)
        if cross and not _same_body(source_record["model"], info):
            raise KerasdlError(
                f"{init_from} holds a {source_record['model']!r} run, not {info.name!r} nor "
                "another variant of its family with the same settings",
                argument="init_from")
        input_shape = tuple(source.input_shape[1:])
        if model_kwargs:
            raise KerasdlError("model_kwargs cannot change a model that init_from loads",
                               argument="model_kwargs")
        if cross:  # the source's architecture arguments build this model
            fields = info.config_fields()
            model_kwargs = {k: v for k, v in (source_record.get("model_kwargs") or {}).items()
                            if k in fields} or None
        from kerasdl.data.text import load_codecs

        codecs = load_codecs(run_dir_of(init_from)) or None
    elif freeze is not None:
        raise KerasdlError("freeze needs init_from (a trained run to fine-tune)",
                           argument="freeze")
    else:
        shape = (model_kwargs or {}).get("input_shape") or info.default_input_shape
        input_shape = tuple(shape) if shape else None  # None: a text model (the recipe sizes it)
    if "num_classes" in (model_kwargs or {}):
        raise KerasdlError("num_classes comes from the dataset; leave it out of model_kwargs",
                           argument="model_kwargs")
    augment = task.make_augment(recipe.augmentation, input_shape, seed)
    data = task.load_data(
        dataset,
        input_shape=input_shape,
        batch_size=recipe.batch_size,
        validation_fraction=recipe.validation_fraction,
        augment=augment,
        data_dir=data_dir,
        max_examples=max_examples,
        seed=seed,
        deterministic=deterministic,
        recipe=recipe,
        codecs=codecs,
    )
    steps = math.ceil(data.num_examples["train"] / recipe.batch_size)
    with _scope(distribution):
        if source is None or cross:
            model = task.build_model(info, data, recipe=recipe, **(model_kwargs or {}))
        if source is not None:
            from kerasdl.train.transfer import freeze_up_to, replace_head, transfer_weights

            if cross:
                copied, kept = transfer_weights(source, model)
                print(f"Starting from {source_record['model']} ({init_from}): "
                      f"{len(copied)} layers copied; new: {', '.join(kept) or 'none'}",
                      flush=True)
            else:
                same_classes = data.class_names is None or \
                    source_record.get("class_names") == list(data.class_names)
                if distribution is not None:
                    source, _ = load_run(init_from)  # its variables must live in the scope
                model = source if same_classes else replace_head(source, data.num_classes)
            if freeze:
                freeze_up_to(model, freeze)
        model.compile(
            optimizer=recipe.make_optimizer(steps, model=model),
            jit_compile=default_jit_compile() if jit_compile is None else jit_compile,
            **task.compile_kwargs(model, recipe),
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
    stream = getattr(data, "training_stream", None)
    if stream is not None:
        # The endless, resumable stream of epochs, started where the checkpoint stopped.
        data = dataclasses.replace(
            data, train=stream(resume_epoch(backup_dir) if resuming else 0))
    train_data, validation_data, test_data = task.fit_data(model, data)
    # Without a validation split (a recipe that trains on the whole training set, as the
    # papers' final runs do) the epoch log gets the test curve instead, for plotting only:
    # nothing is chosen on it, the recipe fixes the epochs in advance.
    test_curve = validation_data is None and test_data is not None
    # The checkpoint is written only after the epoch is logged: a run killed while the
    # test curve is evaluated must redo that epoch, not resume past a row never written.
    # The throughput and learning-rate columns, unless an older log without them is
    # being resumed (CSVLogger keeps the header it started with).
    monitors = [
        # Before TestCurve: without a validation split the clock stops at epoch end.
        kerasdl.callbacks.Throughput(recipe.batch_size, num_examples=data.num_examples["train"]),
        kerasdl.callbacks.LearningRateLogger(),
    ] if _log_has_columns(log_path, ("examples_per_second", "learning_rate")) else []
    all_callbacks = [
        EpochSeeds(seed),
        *monitors,
        *([kerasdl.callbacks.TestCurve(test_data)] if test_curve else []),
        *epoch_metrics,
        keras.callbacks.CSVLogger(log_path, append=True),
        keras.callbacks.BackupAndRestore(backup_dir),
        *([keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"))]
          if tensorboard else []),
        *task.callbacks(model, data, run_dir),
        *callbacks,
    ]
    build_for_fit(model, train_data)
    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=recipe.epochs,
        steps_per_epoch=steps if stream is not None else None,
        callbacks=all_callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    train_seconds = time.perf_counter() - start
    model = task.inference_model(model)
    metrics = task.evaluate(model, data)
    codecs = task.codecs(data)
    if codecs:
        from kerasdl.data.text import save_codecs

        save_codecs(run_dir, **codecs)
    save_model(model, model_path, overwrite=True)
    record = {
        "model": info.name,
        "task": info.task,
        "dataset": dataset,
        "data_source": data.source,
        "embedded_data": data.embedded,
        **task.record(data),
        "num_examples": data.num_examples,
        "recipe": recipe.to_dict(),
        "epochs_run_this_session": len(history.history.get("loss", [])),
        "resumed": resuming,
        "test_curve": test_curve,
        "train_seconds_this_session": round(train_seconds, 1),
        **{k: v for k, v in metrics.items() if k != "test_examples"},
        "parameters": int(model.count_params()),
        "seed": seed,
        "deterministic": bool(deterministic),
    }
    if distribution is not None:
        record["strategy"] = type(distribution).__name__
        record["replicas"] = int(distribution.num_replicas_in_sync)
    if model_kwargs:
        record["model_kwargs"] = {k: v if isinstance(v, (int, float, str, bool, type(None)))
                                  else repr(v) for k, v in model_kwargs.items()}
    if init_from is not None:
        record["fine_tuned_from"] = os.path.abspath(os.fspath(init_from))
        record["frozen_up_to"] = freeze
        if cross:
            record["initialized_from_model"] = source_record["model"]
            record["layers_initialized"] = copied
    curves = _history(run_dir, history.history)
    write_json(os.path.join(run_dir, "history.json"), curves)
    write_json(os.path.join(run_dir, RUN_FILE), record)
    plotted = plot_curves(curves, os.path.join(run_dir, CURVES_FILE),
                          title=f"{info.name} on {dataset}")
    print(f"{task.summary({'dataset': dataset, **metrics})}; training took "
          f"{train_seconds:.0f} s. Saved {model_path}"
          f"{' and ' + CURVES_FILE if plotted else ''}", flush=True)
    return record


def _same_body(source_name, info):
    """True when the registered model ``source_name`` is another variant of ``info``'s
    family builder with the same settings (its pretraining form, say)."""
    from kerasdl.registry import is_model

    if not is_model(source_name):
        return False
    source = model_info(source_name)
    return source.builder is info.builder and source.config == info.config


CURVES_FILE = "curves.png"
STRATEGIES = ("mirrored", "multiworker")
# What a run folder may hold: anything else in a folder given as output_dir is the
# user's, and a run is not written among it.
RUN_CONTENTS = {MODEL_FILE, RUN_FILE, "history.json", "training_log.csv", "backup",
                "vocabulary.json",
                "export", CURVES_FILE, "tensorboard", "train.log"}
# ... and the per-epoch files of kerasdl.callbacks' writers (a generative run's sample
# grids), which an interrupted run leaves behind for its resumption.
RUN_EPOCH_FILES = re.compile(r"^(samples_epoch_\d{3}\.png|"
                             r"confusion_matrix_epoch_\d{3}\.(csv|json|png))$")


def _log_has_columns(log_path, columns):
    """True when the epoch log is new or already has ``columns``."""
    if not os.path.isfile(log_path):
        return True
    with open(log_path) as f:
        header = f.readline().strip().split(",")
    return header == [""] or all(c in header for c in columns)


def check_run_folder(run_dir):
    """Refuse a non-empty ``run_dir`` that holds files a run would not have written."""
    if not os.path.isdir(run_dir):
        if os.path.exists(run_dir):
            raise KerasdlError(f"{run_dir} is a file, not a run folder", argument="output_dir")
        return
    foreign = sorted(n for n in os.listdir(run_dir) if n not in RUN_CONTENTS
                     and not RUN_EPOCH_FILES.match(n) and not n.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise KerasdlError(
            f"{run_dir} is not a kerasdl run folder (it holds {shown}); give an empty or "
            f"new folder, e.g. {os.path.join(run_dir, 'run')}", argument="output_dir")


def resolve_strategy(strategy):
    """A ``tf.distribute`` strategy from a name in ``STRATEGIES``, a strategy object, or
    None (the default single-device training)."""
    if strategy is None:
        return None
    if isinstance(strategy, str):
        import keras

        from kerasdl.errors import check_choice

        check_choice(strategy, STRATEGIES, "strategy")
        if keras.config.backend() != "tensorflow":
            raise KerasdlError(
                f"strategy={strategy!r} is a TensorFlow strategy; under the "
                f"{keras.config.backend()} backend use keras.distribution instead",
                argument="strategy")
        import tensorflow as tf

        if strategy == "mirrored":
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not hasattr(strategy, "scope") or not hasattr(strategy, "num_replicas_in_sync"):
        raise KerasdlError(f"strategy must be one of {STRATEGIES}, a tf.distribute strategy "
                           f"or None, got {strategy!r}", argument="strategy")
    return strategy


def _scope(distribution):
    import contextlib

    return distribution.scope() if distribution is not None else contextlib.nullcontext()


def plot_curves(history, path, title=""):
    """Draw a run's per-epoch loss and accuracy (training, and validation or test where
    logged) into ``path`` (PNG, written atomically). Returns False, drawing nothing,
    when matplotlib is not installed (it comes with kerasdl's ``notebooks`` extra)."""
    try:
        # The object API draws off-screen without touching pyplot's state, so a
        # notebook's own backend and figures are left alone.
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from kerasdl.atomic import atomic_file

    metrics = [m for m in ("loss", "accuracy") if m in history]
    if not metrics:
        return False
    fig = Figure(figsize=(5.5 * len(metrics), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for prefix, label in (("", "training"), ("val_", "validation"), ("test_", "test")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True


def _history(run_dir, history):
    """Per-epoch metrics from the CSV log (complete across resumed sessions), else fit's.

    One entry per epoch, in order: an epoch logged twice (a run killed after logging it
    but before its checkpoint redoes it) keeps its last row, and an epoch with no row
    (logs of older kerasdl versions, which checkpointed before logging) is NaN.
    """
    path = os.path.join(run_dir, "training_log.csv")
    if os.path.exists(path):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if rows and "epoch" in rows[0]:
            by_epoch = {int(float(r["epoch"])): r for r in rows}
            epochs = range(max(by_epoch) + 1)
            # CSVLogger writes "NA" columns for validation metrics a run without a
            # validation split never has.
            keys = [k for k in rows[0] if k != "epoch" and any(r[k] != "NA" for r in rows)]
            curves = {"epoch": [float(e) for e in epochs]}
            for k in keys:
                curves[k] = [float(by_epoch[e][k]) if e in by_epoch and by_epoch[e][k] != "NA"
                             else float("nan") for e in epochs]
            return curves
    return {k: [float(x) for x in v] for k, v in history.items()}


def run_dir_of(path):
    """The run folder of a run folder or of the ``.keras`` file inside one."""
    path = os.path.abspath(os.fspath(path))
    return os.path.dirname(path) if path.endswith(".keras") else path


def is_finished_run(path):
    """True when ``path`` is a run folder (or its ``.keras`` file) holding a trained model."""
    path = os.path.abspath(os.fspath(path))
    model_path = path if path.endswith(".keras") else os.path.join(path, MODEL_FILE)
    return os.path.isfile(model_path)


def load_run(path):
    """``(model, run_record)`` from a run folder or a ``.keras`` file inside one."""
    import keras

    path = os.path.abspath(os.fspath(path))
    run_dir = run_dir_of(path)
    model_path = path if path.endswith(".keras") else os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(model_path):
        raise NotFoundError(
            f"no trained model at {model_path}; train one first with `kerasdl train`",
            argument="path",
        )
    record = {}
    record_path = os.path.join(run_dir, RUN_FILE)
    if os.path.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
    # Register kerasdl's serializable layers and schedules before deserialising.
    import kerasdl.callbacks  # noqa: F401
    import kerasdl.layers  # noqa: F401
    import kerasdl.metrics  # noqa: F401  (compiled metrics, e.g. TokenAccuracy)
    import kerasdl.losses  # noqa: F401  (compiled losses, e.g. SmoothedSparseCrossentropy)
    import kerasdl.models  # noqa: F401
    import kerasdl.train.transfer  # noqa: F401  (Recipe.layerwise_lr's optimizers)

    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except TypeError as err:
        # An optimizer from with_layerwise_lr given a function (or saved before those
        # optimizers were registered) is a class made for its run, which no registry
        # can rebuild: the trained model loads uncompiled, as for inference or fine-tuning.
        if "Could not locate class 'Layerwise" not in str(err):
            raise
        model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    return _upgrade_legacy(model, record, model_path), record


# Before kerasdl 0.2 the data pipeline scaled pixels and run.json named the scaling.
_LEGACY_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0), "lenet": (-0.1, 1.175)}


def _upgrade_legacy(model, record, model_path):
    """A run saved before input scaling moved into the model takes scaled pixels: put its
    scaling layer in front, so that it takes raw pixels like every kerasdl model now."""
    import keras

    from kerasdl.layers.preprocessing import InputScaling, input_scaling_of

    legacy = record.get("normalization")
    if legacy is None or input_scaling_of(model) is not None:
        return model
    if legacy not in _LEGACY_RANGES:
        raise KerasdlError(
            f"{model_path} is from an older kerasdl with an unknown input normalization "
            f"{legacy!r}; retrain it with overwrite=True",
            argument="path",
        )
    print(f"Note: {model_path} predates input scaling inside the model; adding its "
          f"{legacy!r} scaling in front of it (retrain to store it in the file).")
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x = InputScaling.from_range(*_LEGACY_RANGES[legacy], name="input_scaling")(inputs)
    return keras.Model(inputs, model(x), name=model.name)


def load_run_data(model, record, dataset=None, *, data_dir=None, max_examples=None,
                  batch_size=256, run_dir=None):
    """``(task, data)`` for a trained run: its task's data for ``dataset`` (default: the
    run's own), fitted to the model's input and checked against what it was trained on."""
    from kerasdl.tasks import get_task

    dataset = dataset or record.get("dataset")
    if not dataset:
        raise KerasdlError("no dataset given and the run has no run.json naming one; "
                           "pass dataset=...", argument="dataset")
    task_name = record.get("task") or (
        model_info(record["model"]).task if record.get("model") else "image_classification")
    task = get_task(task_name)
    codecs = {}
    if run_dir is not None:
        from kerasdl.data.text import load_codecs

        codecs = load_codecs(run_dir)
    recipe = None
    if task.evaluation_uses_recipe and record.get("recipe"):
        from kerasdl.train.recipes import Recipe

        recipe = Recipe(**{k: v for k, v in record["recipe"].items()
                           if k in {f.name for f in dataclasses.fields(Recipe)}})
    data = task.load_data(dataset, input_shape=task.input_shape_of(model),
                          batch_size=batch_size, data_dir=data_dir,
                          max_examples=max_examples, codecs=codecs, recipe=recipe)
    task.check_compatible(record, data)
    return task, data


def evaluate(path, dataset=None, *, data_dir=None, max_examples=None, batch_size=256):
    """Test metrics of a trained run on ``dataset`` (default: the run's own). A dataset
    whose classes differ from the run's is refused."""
    model, record = load_run(path)
    task, data = load_run_data(model, record, dataset, data_dir=data_dir,
                               max_examples=max_examples, batch_size=batch_size,
                               run_dir=run_dir_of(path))
    result = task.evaluate(model, data, batch_size=batch_size)
    return {"dataset": dataset or record["dataset"], "source": data.source, **result,
            "summary": task.summary({"dataset": dataset or record["dataset"], **result})}
