"""Batch-1 latency of deployed TFLite (LiteRT) artifacts, side by side with Keras.

:func:`benchmark` times every ``.tflite`` file of an export (at each requested LiteRT
thread count) and, when the Keras model is at hand, ``model.predict`` and a compiled
``tf.function`` call of the same model, all in one run: the machines are noisy, so the
ratios ("int8 is 3x faster than the compiled Keras call") only mean something when the
numbers are taken together. :func:`render_bench` turns the rows into a Markdown table.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from kerasdl.errors import KerasdlError, NotFoundError, check_positive_int
from kerasdl.export.tflite import VARIANTS

__all__ = ["benchmark", "render_bench", "find_artifacts"]

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
EXPORT_DIR = "export"
CARD_FILE = "model_card.json"
KERAS_PREDICT = "keras predict"
KERAS_COMPILED = "keras compiled call"

_VALID = (
    "a .tflite file, an export folder holding .tflite files (from `kerasdl export`), or "
    "a training run folder (model.keras and run.json) whose export/ subfolder holds them"
)


def _variant_of(file_name):
    """``"float32"`` for ``lenet5_float32.tflite``; None if the name has no variant."""
    stem = file_name[: -len(".tflite")]
    return next((v for v in VARIANTS if stem.endswith(f"_{v}")), None)


def _format_of(file_name, card_formats):
    if file_name in card_formats:
        return card_formats[file_name]
    variant = _variant_of(file_name)
    return f"tflite_{variant}" if variant else "tflite"


def _is_run_folder(folder):
    if not os.path.isfile(os.path.join(folder, MODEL_FILE)):
        return False
    has_own_tflite = any(f.endswith(".tflite") for f in os.listdir(folder))
    return not has_own_tflite and (
        os.path.isfile(os.path.join(folder, RUN_FILE))
        or os.path.isdir(os.path.join(folder, EXPORT_DIR))
    )


def _read_card(folder):
    path = os.path.join(folder, CARD_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise KerasdlError(f"{path} is not a readable model card: {e}", argument="target") from e


def find_artifacts(target, argument="target"):
    """``(tflite_files, keras_path, formats)`` for a ``.tflite`` file, an export folder or
    a run folder: the ``.tflite`` paths (in the model card's order when the folder has a
    ``model_card.json``, else float32, float16, dynamic_range, int8, then any others by
    name), the ``model.keras`` that produced them or None (never looked for beside a
    single file), and ``{file name: format}``."""
    target = os.path.abspath(os.fspath(target))
    if not os.path.exists(target):
        raise NotFoundError(f"{target} does not exist; {argument} must be {_VALID}",
                            argument=argument)
    if os.path.isfile(target):
        if not target.endswith(".tflite"):
            raise KerasdlError(f"{target} is not a .tflite file; {argument} must be {_VALID}",
                               argument=argument)
        name = os.path.basename(target)
        return [target], None, {name: _format_of(name, {})}
    if _is_run_folder(target):
        keras_path = os.path.join(target, MODEL_FILE)
        folder = os.path.join(target, EXPORT_DIR)
        if not os.path.isdir(folder) or not any(
            f.endswith(".tflite") for f in os.listdir(folder)
        ):
            raise NotFoundError(
                f"the run folder {target} has no .tflite files in {folder}; export it "
                f"first: kerasdl export {target}",
                argument=argument,
            )
    else:
        folder = target
        parent_model = os.path.join(os.path.dirname(folder), MODEL_FILE)
        keras_path = parent_model if os.path.isfile(parent_model) else None
    names = [f for f in os.listdir(folder)
             if f.endswith(".tflite") and os.path.isfile(os.path.join(folder, f))]
    if not names:
        raise NotFoundError(f"{folder} holds no .tflite file; {argument} must be {_VALID}",
                            argument=argument)
    card = _read_card(folder) or {}
    card_formats = {a["file"]: a.get("format") for a in card.get("artifacts", [])
                    if isinstance(a, dict) and str(a.get("file", "")).endswith(".tflite")}
    card_order = {f: i for i, f in enumerate(card_formats)}

    def key(name):
        variant = _variant_of(name)
        rank = VARIANTS.index(variant) if variant else len(VARIANTS)
        return (card_order.get(name, len(card_order)), rank, name)

    names.sort(key=key)
    formats = {n: _format_of(n, card_formats) for n in names}
    return [os.path.join(folder, n) for n in names], keras_path, formats


def _example_value(shape, dtype, quantised, seed):
    """One example: raw pixel values in [0, 255] (float32, which the runner converts to
    the input's dtype), or zeros for integer token inputs."""
    if any(d is None for d in shape):
        raise KerasdlError(
            f"the model's input has a dynamic shape {tuple(shape)} per example; bench needs "
            "a fixed input shape",
            argument="target",
        )
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and dtype != np.uint8 and not quantised:
        return np.zeros(shape, dtype=dtype)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, shape).astype("float32")


def _tflite_example(runner):
    details = runner.input_details
    values = {
        d["name"]: _example_value(d["shape"][1:], d["dtype"], d["quantization"] is not None, i)
        for i, d in enumerate(details)
    }
    return values[details[0]["name"]] if len(details) == 1 else values


def _keras_example(model):
    values = []
    for i, t in enumerate(model.inputs):
        v = _example_value(tuple(t.shape[1:]), t.dtype, False, i)
        values.append(v[None].astype(t.dtype))
    return values[0] if len(values) == 1 else values


def _median_ms(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def _keras_rows(model, keras_size, runs, warmup):
    import tensorflow as tf

    x = _keras_example(model)
    rows = [{
        "artifact": KERAS_PREDICT,
        "format": "keras",
        "threads": None,
        "size_bytes": keras_size,
        "latency_ms": _median_ms(lambda: model.predict(x, verbose=0), runs, warmup),
    }]
    call = tf.function(lambda inputs: model(inputs, training=False))
    tx = tf.nest.map_structure(tf.constant, x)

    def compiled():
        # .numpy() waits for the result (a no-op wait on CPU, a sync on GPU).
        tf.nest.map_structure(lambda y: y.numpy(), call(tx))

    compiled()  # trace outside the warm-up count
    rows.append({
        "artifact": KERAS_COMPILED,
        "format": "keras",
        "threads": None,
        "size_bytes": keras_size,
        "latency_ms": _median_ms(compiled, runs, warmup),
    })
    return rows


def _thread_counts(threads):
    if isinstance(threads, int) and not isinstance(threads, bool):
        threads = (threads,)
    try:
        threads = tuple(threads)
    except TypeError:
        threads = ()
    if not threads:
        raise KerasdlError(f"threads must be positive integers, got {threads!r}",
                           argument="threads")
    for t in threads:
        check_positive_int(t, "threads")
    return threads


def benchmark(target, *, threads=(1, 2), runs=200, warmup=20, keras_model=None,
              verbose=True):
    """Median batch-1 latency of each TFLite artifact of ``target``, and of Keras.

    Args:
        target: a ``.tflite`` file; an export folder (every ``*.tflite`` in it, in the
            model card's order when it has a ``model_card.json``); or a training run
            folder (``model.keras`` and ``run.json``), whose ``export/`` holds the files.
        threads: LiteRT interpreter thread counts; each file is timed at each.
        runs, warmup: timed and untimed invocations per row.
        keras_model: a Keras model (or a path to a ``.keras`` file) to time as well.
            Default: the run folder's ``model.keras``, or the one in the parent folder of
            an export folder (a run's ``export/``); none for a single ``.tflite`` file.
        verbose: print one progress line per artifact.

    Every row times one example: deterministic random raw pixel values of the input's
    shape (zeros for integer token inputs). LiteRT rows time ``interpreter.invoke`` alone
    (:meth:`TFLiteRunner.latency_ms`) with the stated thread count. Keras rows are
    ``model.predict(x, verbose=0)`` at batch 1 (with its per-call overhead) and a compiled
    call, ``tf.function(lambda x: model(x, training=False))`` traced and warmed up first;
    they run with TensorFlow's own thread pools as configured (by default all cores),
    not the LiteRT thread count, so a LiteRT row at 1 thread competes against Keras on
    every core.

    Returns one dict per row: ``artifact`` (file name, ``"keras predict"`` or ``"keras
    compiled call"``), ``format``, ``threads`` (None for Keras), ``size_bytes`` (for Keras
    the ``.keras`` file's size when known, else None), ``latency_ms`` (median) and
    ``vs_keras_compiled`` (latency / the compiled Keras call's latency; None without a
    Keras model). Keras rows come first.
    """
    from kerasdl.export.runtime import TFLiteRunner

    threads = _thread_counts(threads)
    runs = check_positive_int(runs, "runs")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise KerasdlError(f"warmup must be a non-negative integer, got {warmup!r}",
                           argument="warmup")
    files, keras_path, formats = find_artifacts(target)
    say = (lambda *a: print(*a, flush=True)) if verbose else (lambda *a: None)

    rows = []
    keras_size = None
    if isinstance(keras_model, (str, os.PathLike)):
        keras_path, keras_model = os.fspath(keras_model), None
    if keras_model is None and keras_path is not None:
        from kerasdl.train.runs import load_run

        keras_model, _ = load_run(keras_path)
        keras_size = os.path.getsize(keras_path)  # a model object passed in has no file
    if keras_model is not None:
        say(f"  timing Keras {keras_model.name}: predict and compiled call, {runs} runs each")
        rows += _keras_rows(keras_model, keras_size, runs, warmup)

    for path in files:
        name = os.path.basename(path)
        say(f"  timing {name} at {', '.join(map(str, threads))} thread(s), {runs} runs each")
        for t in threads:
            runner = TFLiteRunner(path, num_threads=t)
            rows.append({
                "artifact": name,
                "format": formats[name],
                "threads": t,
                "size_bytes": os.path.getsize(path),
                "latency_ms": runner.latency_ms(_tflite_example(runner), runs, warmup),
            })
            del runner

    reference = next((r["latency_ms"] for r in rows if r["artifact"] == KERAS_COMPILED), None)
    for r in rows:
        r["vs_keras_compiled"] = r["latency_ms"] / reference if reference else None
    return rows


def _fmt_size(n):
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"


def _sig(value):
    """Three decimals, or three significant digits below 1 (tiny models run in µs)."""
    return f"{value:.3f}" if value >= 1 else f"{value:.3g}"


def render_bench(rows) -> str:
    """A Markdown table of :func:`benchmark`'s rows, with a note on how they were timed."""
    lines = [
        "| artifact | format | threads | size | latency batch-1 | vs Keras compiled |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        threads = "all (TF)" if r["threads"] is None else str(r["threads"])
        ratio = r.get("vs_keras_compiled")
        if ratio is None:
            ratio = "-"
        else:
            ratio = f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"
        lines.append(
            f"| {r['artifact']} | {r['format']} | {threads} | {_fmt_size(r['size_bytes'])} | "
            f"{_sig(r['latency_ms'])} ms | {ratio} |"
        )
    lines += [
        "",
        "Median of single-example calls in one run on this machine. LiteRT rows time "
        "`invoke` with the stated thread count; Keras rows use TensorFlow's thread pools "
        "(all cores).",
    ]
    return "\n".join(lines) + "\n"
