"""Export a trained model to SavedModel and TFLite, verify every artifact against the
Keras model on real test inputs, and write a model card (JSON and Markdown)."""

from __future__ import annotations

import datetime
import json
import os
import platform

import numpy as np

from kerasdl.atomic import atomic_directory, check_writable_target
from kerasdl.errors import KerasdlError, check_choice
from kerasdl.export.metadata import write_labels, write_tflite_metadata
from kerasdl.export.runtime import TFLiteRunner
from kerasdl.export.tflite import VARIANT_NOTES, VARIANTS, convert_to_tflite

FORMATS = ("saved_model",) + VARIANTS


def _dir_size(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def _write_saved_model(model, path, named_outputs):
    """SavedModel with one ``serving_default`` signature; for a classifier its outputs are
    named ``logits`` and ``probabilities`` (what a serving client asks for by name)."""
    import keras
    import tensorflow as tf

    if not named_outputs or len(model.inputs) != 1:
        model.export(path, format="tf_saved_model", verbose=False)
        return
    archive = keras.export.ExportArchive()
    archive.track(model)
    name = model.inputs[0].name
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), model.inputs[0].dtype, name=name)

    def serve(x):
        logits = model(x, training=False)
        return {"logits": logits, "probabilities": keras.ops.softmax(logits, axis=-1)}

    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(path, verbose=False)


def _saved_model_predict(path, x, input_names, batch_size=512):
    """The serving signature's logits (or its first output) for ``x``: one array, or a
    list in the order of ``input_names`` (the signature takes them by name)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # keep a reference: it owns the variables
    signature = loaded.signatures["serving_default"]
    names = list(signature.structured_input_signature[1])
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(names) == 1:
        keyed = dict(zip(names, arrays))
    else:
        keyed = {name: arrays[input_names.index(name)] for name in names}
    outputs = []
    for i in range(0, len(arrays[0]), batch_size):
        result = signature(**{k: tf.constant(v[i : i + batch_size]) for k, v in keyed.items()})
        key = "logits" if "logits" in result else sorted(result)[0]
        outputs.append(result[key].numpy())
    return np.concatenate(outputs)


def _primary(outputs, names=None):
    """The output that verification compares: the only one, or the one named logits
    (seq2seq models also return their attention weights)."""
    if isinstance(outputs, dict):
        return outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[names.index("logits")] if names and "logits" in names else outputs[0]
    return outputs


def _output_shape(model):
    """Per example; by name for a model with named outputs."""
    shape = model.output_shape
    if isinstance(shape, dict):
        return {k: list(v[1:]) for k, v in shape.items()}
    if isinstance(shape, list):
        return [list(v[1:]) for v in shape]
    return list(shape[1:])


def _raw_pixels(images):
    """``images`` as uint8 if they are whole pixel values 0-255, else None."""
    if images.size and (images.min() < 0 or images.max() > 255
                        or not np.array_equal(images, np.round(images))):
        return None
    return images.astype("uint8")


def _calibration_spanning_pixels(images):
    """Calibration images whose input range is exactly 0-255 (two pixels of the first image
    set to 0 and 255), so that a uint8-input int8 model gets input scale 1 and zero point
    0: then an app feeds camera bytes unchanged."""
    images = np.array(images, dtype="float32", copy=True)
    images[0].reshape(-1)[0] = 0.0
    images[0].reshape(-1)[-1] = 255.0
    return images


def _versions():
    import keras
    import tensorflow as tf

    import kerasdl

    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # pragma: no cover - only when the package metadata is missing
        litert = "unknown"
    return {
        "kerasdl": kerasdl.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "ai_edge_litert": litert,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def export_model(
    model,
    output_dir,
    *,
    test_images,
    test_labels,
    representative_images=None,
    formats=FORMATS,
    overwrite=False,
    model_name=None,
    task=None,
    record=None,
    dataset=None,
    extra=None,
    latency_runs=200,
    latency_threads=(1, 2),
    int8_per_channel=True,
    int8_io="int8",
    raw_uint8=False,
    labels=None,
    select_tf_ops=False,
    float32_tolerance=1e-3,
    verbose=True,
):
    """Export ``model`` into ``output_dir`` and return the model card as a dict.

    Args:
        model: a trained model; for image classification one image input (raw pixels,
            scaled inside the model) and logits out.
        output_dir: folder to create; it must not exist unless ``overwrite=True``.
            Everything is built in a staging folder and renamed into place at the end.
        test_images, test_labels: preprocessed real test inputs and their labels; every
            artifact's predictions on them are compared with the Keras model's. For a
            model with several inputs, a list of arrays in the model's input order.
        representative_images: preprocessed *training* inputs for int8 calibration (a
            list likewise for several inputs).
        formats: any of ``FORMATS``.
        model_name: registry name, for the card (default ``model.name``).
        task: the :class:`kerasdl.tasks.Task` that says how outputs are compared and what
            the card reports about input and output (default: image classification).
        record: the training run's record (class names, data preparation), if any.
        dataset: dict describing the data for the card (name, source, preprocessing).
        extra: dict merged into the card (e.g. the training run's recipe and history).
        latency_runs: batch-1 invocations timed per TFLite artifact and thread count.
        latency_threads: LiteRT thread counts to time (XNNPACK); the card keeps each.
        int8_per_channel: False quantises int8 weights with one scale per tensor.
        int8_io: the full-int8 file's input and output type: ``"int8"``, or
            ``"float32"`` (float in and out around an int8 body).
        raw_uint8: bake the input preparation in: every artifact takes raw ``uint8``
            pixels of the model's input size (the int8 file: uint8 in with scale 1 and
            zero point 0, int8 out). ``test_images`` must then be whole pixel values.
        labels: class names in output order (default: the record's ``class_names``);
            written as ``labels.txt`` and into each ``.tflite`` file's metadata.
        select_tf_ops: allow TensorFlow ops without a TFLite builtin (Flex delegate).
        float32_tolerance: the float32 file's largest logit difference from Keras may be
            at most this times ``max(1, largest |logit|)``; beyond it the export fails and
            nothing is written.
    """
    from kerasdl.tasks import get_task

    task = task or get_task("image_classification")
    record = dict(record or {})
    formats = tuple(formats)
    if not formats:
        raise KerasdlError(f"formats must be a non-empty subset of {FORMATS}", argument="formats")
    for fmt in formats:
        check_choice(fmt, FORMATS, "formats")
    if "int8" in formats and representative_images is None:
        raise KerasdlError("the int8 format needs representative_images from the training split",
                           argument="representative_images")
    import keras

    # Several inputs (a translator's source and target prefix) come as a list in the
    # model's input order. Token-id inputs are integers; everything else float32.
    multi = len(model.inputs) > 1
    given = list(test_images) if multi and isinstance(test_images, (list, tuple)) \
        else [test_images]
    if len(given) != len(model.inputs):
        raise KerasdlError(
            f"the model has {len(model.inputs)} inputs "
            f"({', '.join(t.name for t in model.inputs)}); pass test_images as a list of "
            f"that many arrays, in that order", argument="test_images")
    arrays = []
    for tensor, x in zip(model.inputs, given):
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        x = np.asarray(x, dtype=dtype if "int" in dtype else "float32")
        expected = tuple(tensor.shape[1:])
        if tuple(x.shape[1:]) != expected:
            raise KerasdlError(
                f"test_images have shape {tuple(x.shape[1:])} per example for input "
                f"{tensor.name!r}; the model expects {expected}", argument="test_images")
        arrays.append(x)
    test_images = arrays if multi else arrays[0]
    expected = [tuple(t.shape[1:]) for t in model.inputs] if multi \
        else tuple(model.input_shape[1:])
    test_labels = np.asarray(test_labels)
    if any(len(x) != len(test_labels) for x in arrays) or len(test_labels) == 0:
        raise KerasdlError("test_images and test_labels must be non-empty and of equal length",
                           argument="test_labels")
    if multi and raw_uint8:
        raise KerasdlError("raw_uint8 is for models with one image input",
                           argument="raw_uint8")
    labels = list(labels if labels is not None else record.get("class_names") or [])
    n_out = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if labels and n_out is not None and len(labels) != n_out:
        raise KerasdlError(f"labels has {len(labels)} names; the model has {n_out} outputs",
                           argument="labels")
    net, feed = model, test_images
    if raw_uint8:
        from kerasdl.layers.preprocessing import with_uint8_input

        feed = _raw_pixels(test_images)
        if feed is None:
            raise KerasdlError(
                "raw_uint8 needs test_images of whole pixel values 0-255 at the model's "
                "input size (images resized to it are not whole numbers)",
                argument="raw_uint8")
        net = with_uint8_input(model)
        if representative_images is not None:
            representative_images = _calibration_spanning_pixels(representative_images)
    check_writable_target(output_dir, overwrite)
    name = model_name or model.name
    say = print if verbose else (lambda *a, **k: None)

    input_names = [t.name for t in model.inputs]
    reference = _primary(model.predict(test_images, batch_size=512, verbose=0))
    keras_metrics = task.compare(reference, reference, test_labels)
    artifacts = []
    with atomic_directory(output_dir, overwrite=overwrite) as staging:
        for fmt in formats:
            if fmt == "saved_model":
                rel = "saved_model"
                path = os.path.join(staging, rel)
                say(f"  exporting SavedModel -> {rel}/", flush=True)
                _write_saved_model(net, path, named_outputs=task.name == "image_classification")
                outputs = _saved_model_predict(path, feed, input_names)
                entry = {"format": "saved_model", "file": rel, "size_bytes": _dir_size(path)}
            else:
                rel = f"{name}_{fmt}.tflite"
                path = os.path.join(staging, rel)
                say(f"  converting TFLite {fmt} -> {rel}", flush=True)
                # The uint8 int8 file quantises the float model's input (scale 1, zero
                # point 0) instead of casting, which full-integer conversion cannot.
                source = model if raw_uint8 and fmt == "int8" else net
                io = "uint8" if raw_uint8 else int8_io
                convert_to_tflite(source, path, fmt, representative_images, int8_per_channel,
                                  int8_io=io, select_tf_ops=select_tf_ops)
                # A .tflite file does not record the model's input order; pass it on.
                runner = TFLiteRunner(path, input_names=[t.name for t in source.inputs])
                write_tflite_metadata(path, _file_metadata(name, fmt, runner, labels, task))
                outputs = _primary(runner.predict(feed), runner.output_names)
                example = [x[0] for x in feed] if multi else feed[0]
                latencies = {
                    str(t): round(TFLiteRunner(path, num_threads=t,
                                               input_names=runner.input_names).latency_ms(
                        example, latency_runs), 4)
                    for t in latency_threads
                }
                entry = {
                    "format": f"tflite_{fmt}",
                    "file": rel,
                    "size_bytes": os.path.getsize(path),
                    "notes": VARIANT_NOTES[fmt]
                    + (", per-tensor weight scales" if fmt == "int8" and not int8_per_channel
                       else ""),
                    "input_dtype": str(runner.input_dtype),
                    "output_dtype": str(runner.output_details[0]["dtype"]),
                    "latency_ms_batch1": latencies[str(latency_threads[0])],
                    "latency_threads": latencies,
                }
                if fmt == "int8":
                    entry["notes"] += f", {entry['input_dtype']} input and {entry['output_dtype']} output"
            entry.update(task.compare(reference, outputs, test_labels))
            if fmt == "float32":
                _check_float32(entry, reference, float32_tolerance)
            entry["accuracy_drop_points"] = round(
                100.0 * (keras_metrics["accuracy"] - entry["accuracy"]), 4
            )
            artifacts.append(entry)
        float_size = next(
            (a["size_bytes"] for a in artifacts if a["format"] == "tflite_float32"), None
        )
        if float_size:
            for a in artifacts:
                if a["format"].startswith("tflite_"):
                    a["size_vs_float32"] = round(a["size_bytes"] / float_size, 4)
        io = task.describe_io(model, record)
        if raw_uint8:
            io["input"].update({"name": net.inputs[0].name, "dtype": "uint8",
                                "raw_uint8": True})
        if labels:
            write_labels(staging, labels)
        card = {
            "model": {
                "name": name,
                "keras_name": model.name,
                "task": task.name,
                "parameters": int(model.count_params()),
                "input_shape": [list(e) for e in expected] if multi else list(expected),
                "output_shape": _output_shape(model),
            },
            "input": io["input"],
            "output": io["output"],
            "dataset": dict(dataset or {}),
            "verification": {
                "test_examples": int(len(test_labels)),
                "keras_accuracy": keras_metrics["accuracy"],
            },
            "artifacts": artifacts,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
        }
        _add_registry_info(card, name)
        notes = _latency_notes(artifacts)
        if notes:
            card["notes"] = notes
        if extra:
            card.update(extra)
        with open(os.path.join(staging, "model_card.json"), "w") as f:
            json.dump(card, f, indent=2)
        with open(os.path.join(staging, "MODEL_CARD.md"), "w") as f:
            f.write(render_model_card(card))
    say(f"  wrote {os.path.abspath(output_dir)}", flush=True)
    return card


def _file_metadata(name, fmt, runner, labels, task):
    """What a ``.tflite`` file says about itself (read back by :func:`read_labels`)."""
    import kerasdl

    inputs = [{"name": d["name"], "dtype": str(d["dtype"]),
               "shape": [s for s in d["shape"][1:]],
               **({"pixel_range": [0, 255]} if task.name == "image_classification"
                  else {"kind": "token ids (vocabulary.json of the run)"})}
              for d in runner.input_details]
    return {
        "model": name,
        "variant": fmt,
        "task": task.name,
        "labels": labels,
        # One input as before; a list of them, in the model's order, for several.
        "input": inputs[0] if len(inputs) == 1 else inputs,
        "output": "logits" if task.name == "image_classification" else "model outputs",
        "kerasdl": kerasdl.__version__,
    }


def _check_float32(entry, reference, tolerance):
    """The float32 file must compute what Keras computes: anything else is a converter
    bug or an unsupported layer, and must not ship."""
    limit = tolerance * max(1.0, float(np.abs(reference).max()))
    if entry["max_abs_logit_diff"] > limit:
        raise KerasdlError(
            f"the float32 TFLite file disagrees with Keras: largest output difference "
            f"{entry['max_abs_logit_diff']:.3g} > {limit:.3g} (float32_tolerance "
            f"{tolerance:g} x largest |output|), top-1 agreement "
            f"{100 * entry['top1_agreement']:.2f}%; nothing was written",
            argument="float32_tolerance")


def _latency_notes(artifacts):
    """Say so where full int8 runs slower than float32 on this machine."""
    by = {a["format"]: a for a in artifacts}
    f32, q8 = by.get("tflite_float32"), by.get("tflite_int8")
    if not (f32 and q8):
        return []
    slower = [t for t, ms in q8["latency_threads"].items()
              if ms > f32["latency_threads"].get(t, float("inf"))]
    if not slower:
        return []
    return [
        f"int8 is slower than float32 here ({', '.join(slower)} thread(s)): on this x86 "
        "CPU, LiteRT's XNNPACK float32 kernels use wide float SIMD, while the int8 path "
        "adds quantize/requantize steps and ops (e.g. hard-swish, SE gating, depthwise "
        "convolutions) with less optimised integer kernels. int8 still saves ~4x size; "
        "measure latency on the target phone, where int8 kernels (ARM dot-product "
        "instructions) are usually the faster ones."
    ]


def _add_registry_info(card, name):
    from kerasdl.registry import is_model, model_info

    if is_model(name):
        info = model_info(name)
        card["model"].update(
            {"family": info.family, "task": info.task, "paper": info.paper,
             "description": info.description}
        )


def _fmt_size(n):
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"


def _render_io(card):
    """The card's input and output specs in words (the JSON card holds them as data)."""
    i, o = card.get("input") or {}, card.get("output") or {}
    lines = ["## Input and output", ""]
    if isinstance(i, list) or i.get("kind"):  # token ids: one input or several
        for spec in i if isinstance(i, list) else [i]:
            lines.append(f"- Input `{spec.get('name', 'input')}`: {spec.get('dtype')} "
                         f"{tuple(spec.get('shape', ()))} per example: {spec['kind']}; "
                         f"{spec.get('vocabulary', '')}")
        preparation = (i[0] if isinstance(i, list) else i).get("preparation")
        if preparation:
            lines.append(f"- Preparing text: {preparation}")
        i = {}
    if i:
        lines.append(f"- Input `{i.get('name', 'input')}`: {i.get('dtype', 'float32')} "
                     f"{tuple(i.get('shape', ()))} per example ({i.get('layout', '')}, "
                     f"{i.get('color', '')})")
        scaling = i.get("scaling_inside_model")
        if scaling:
            lines.append(
                f"- Feed raw pixel values in [{scaling['input_range'][0]:g}, "
                f"{scaling['input_range'][1]:g}]: the model scales them itself, "
                f"{scaling['formula']} with scale {_short(scaling['scale'])} and offset "
                f"{_short(scaling['offset'])}"
            )
        else:
            lines.append("- The model has no input scaling layer: feed inputs as it was trained on")
        if i.get("raw_uint8"):
            lines.append("- uint8 input: feed decoded image bytes (0-255) unchanged, at the "
                         "input size above; the conversion to float is inside the artifact")
        if i.get("preparation"):
            lines.append(f"- Preparing images: {i['preparation']}")
    if o:
        shape = f" {tuple(o['shape'])}" if "shape" in o else ""
        lines.append(f"- Output: {o.get('kind', '')}{shape}; {o.get('decode', '')}")
        if o.get("class_names"):
            names = list(o["class_names"])
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            lines.append(f"- Classes ({len(names)}): {shown}")
    return lines + [""]


def _short(values):
    return ", ".join(f"{v:.6g}" for v in values)


def render_model_card(card) -> str:
    """The Markdown model card for a card dict from :func:`export_model`."""
    m, d, v = card["model"], card["dataset"], card["verification"]
    lines = [f"# Model card: {m['name']}", ""]
    if m.get("description"):
        lines += [m["description"] + ".", ""]
    lines += ["## Architecture", ""]
    if m.get("paper"):
        lines.append(f"- Paper: {m['paper']}")
    lines += [f"- Parameters: {m['parameters']:,}", ""]
    lines += _render_io(card)
    lines += ["## Data", ""]
    for key in ("name", "source", "preprocessing"):
        if d.get(key):
            lines.append(f"- {key.capitalize()}: {d[key]}")
    lines.append(f"- Verified on {v['test_examples']:,} real test examples")
    if card.get("training"):
        t = card["training"]
        lines += ["", "## Training", ""]
        for key, value in t.items():
            if isinstance(value, float):
                value = f"{value:.4g}"
            if not isinstance(value, (dict, list)):
                lines.append(f"- {key.replace('_', ' ').capitalize()}: {value}")
    lines += [
        "",
        "## Artifacts and verification",
        "",
        f"Keras test accuracy: **{100 * v['keras_accuracy']:.2f}%**. Each artifact's "
        "predictions on the same inputs, compared with Keras:",
        "",
        "| artifact | file | size | vs float32 | accuracy | drop (points) | top-1 agreement "
        "| max abs logit diff | latency batch-1 (threads) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in card["artifacts"]:
        ratio = f"{100 * a['size_vs_float32']:.1f}%" if "size_vs_float32" in a else "-"
        if "latency_threads" in a:
            latency = ", ".join(f"{ms:.3f} ms ({t})" for t, ms in a["latency_threads"].items())
        elif "latency_ms_batch1" in a:
            latency = f"{a['latency_ms_batch1']:.3f} ms"
        else:
            latency = "-"
        lines.append(
            f"| {a['format']} | `{a['file']}` | {_fmt_size(a['size_bytes'])} | {ratio} | "
            f"{100 * a['accuracy']:.2f}% | {a['accuracy_drop_points']:+.2f} | "
            f"{100 * a['top1_agreement']:.2f}% | {a['max_abs_logit_diff']:.3g} | {latency} |"
        )
    notes = [a for a in card["artifacts"] if a.get("notes")]
    if notes:
        lines += ["", "Variants: " + "; ".join(f"{a['format']}: {a['notes']}" for a in notes) + "."]
    lines += [
        "",
        "Latency: median of single-example LiteRT (XNNPACK) invocations on the machine "
        "below, with the given number of threads.",
        "",
    ]
    lines += [f"**Note.** {note}" for note in card.get("notes", [])]
    if card.get("notes"):
        lines.append("")
    inputs = card.get("input")
    if isinstance(inputs, list):
        # A .tflite file does not record the order of several inputs: name it.
        names = ", ".join(f'"{i["name"]}"' for i in inputs)
        runner = f"runner = TFLiteRunner(\"{m['name']}_float32.tflite\", input_names=[{names}])"
        call = "outputs = runner.predict([" + ", ".join(i["name"] for i in inputs) + \
            "])  # prepared as in 'Input' above"
    else:
        runner = f"runner = TFLiteRunner(\"{m['name']}_float32.tflite\")"
        call = "outputs = runner.predict(inputs)  # prepared as in 'Input' above"
    lines += ["## Using the TFLite file", "", "```python",
              "from kerasdl.export import TFLiteRunner", runner, call, "```", ""]
    if m.get("task", "image_classification") == "image_classification":
        lines += ["Class names are in `labels.txt` and in each `.tflite` file's metadata "
                  "(`kerasdl.export.metadata.read_labels`); `kerasdl predict FILE IMAGE...` "
                  "runs a file on image files as an app would.", ""]
    lines += ["## Versions", ""]
    lines += [f"- {k}: {val}" for k, val in card["versions"].items()]
    lines.append(f"- created (UTC): {card['created_utc']}")
    return "\n".join(lines) + "\n"
