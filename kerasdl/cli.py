"""``kerasdl`` command line: list, info, train, evaluate, export, bench, predict, quickstart.

Errors in what the user asked for (unknown model or dataset, bad shapes, missing data,
existing output) are ``KerasdlError``s: they print one line and exit with status 2. Any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

# The flag that sets each library argument a KerasdlError may name.
FLAGS = {
    "overwrite": "--overwrite",
    "dataset": "--dataset",
    "data_dir": "--data-dir",
    "max_examples": "--max-examples",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "output_dir": "--output",
    "formats": "--formats",
    "family": "--family",
    "init_from": "--from",
    "freeze": "--freeze",
    "task": "--task",
    "strategy": "--strategy",
    "deterministic": "--deterministic",
    "tensorboard": "--tensorboard",
}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _formats(text):
    from kerasdl.export import FORMATS

    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in FORMATS]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(bad) or text!r}; choose from {', '.join(FORMATS)}"
        )
    return tuple(items)


def cmd_list(args):
    from kerasdl.registry import list_models, model_info

    names = list_models(args.pattern, family=args.family, task=args.task, tags=args.tag)
    if not names:
        print("no registered model matches")
        return 0
    rows = []
    for name in names:
        info = model_info(name)
        params = next(iter(info.reference_params.values()), None)
        params = getattr(params, "count", params)
        paper = info.paper if len(info.paper) <= 60 else info.paper[:57] + "..."
        rows.append((name, info.family, info.task, f"{params:,}" if params else "-", paper))
    header = ("model", "family", "task", "params", "paper")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(cell.ljust(w) if i != 3 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    return 0


def cmd_info(args):
    from kerasdl.registry import model_info

    info = model_info(args.model)
    print(f"{info.name}: {info.description}")
    print(f"  family: {info.family}   task: {info.task}   tags: {', '.join(info.tags) or '-'}")
    print(f"  paper: {info.paper}")
    print(f"  default input shape: {info.default_input_shape}   default dataset: "
          f"{info.default_dataset or '-'}")
    for key, value in info.config_fields().items():
        print(f"  setting {key} = {value!r}")
    from kerasdl.analysis import summarize

    from kerasdl.analysis import counting_model

    model, per = counting_model(info)
    s = summarize(model)
    field = s["receptive_field"]
    print(f"  parameters at the defaults: {s['parameters']:,}; "
          f"{s['macs'] / 1e9:.3g} GMACs {per}; "
          f"{s['depth']} weighted layers; receptive field "
          f"{'x'.join(str(d) for d in field.size) + ' px' if field else '-'}")
    for source, ref in info.reference_params.items():
        how = " trainable" if getattr(ref, "trainable_only", False) else ""
        extra = f" with {dict(ref.kwargs)}" if getattr(ref, "kwargs", None) else ""
        print(f"  reference parameters: {getattr(ref, 'count', ref):,}{how}{extra} ({source})")
    from kerasdl.train.recipes import recipes_by_dataset

    recipes = recipes_by_dataset(info.name)
    for dataset, recipe in sorted(recipes.items(), key=lambda item: item[0] is None):
        where = (f" on {dataset}" if dataset else " on other datasets") if len(recipes) > 1 else ""
        print(f"  recipe{where}: {json.dumps(recipe.to_dict())}")
    return 0


def cmd_train(args):
    from kerasdl.train import train

    train(
        args.model,
        args.dataset,
        output_dir=args.output,
        epochs=args.epochs,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        max_examples=args.max_examples,
        overwrite=args.overwrite,
        seed=args.seed,
        init_from=args.init_from,
        freeze=args.freeze,
        deterministic=args.deterministic,
        strategy=args.strategy,
        tensorboard=args.tensorboard,
    )
    return 0


def cmd_evaluate(args):
    from kerasdl.train import evaluate

    result = evaluate(args.run, args.dataset, data_dir=args.data_dir, max_examples=args.max_examples)
    print(result["summary"])
    return 0


def _resolve_run(target, dataset):
    """A run folder, a .keras file, or a registry name (-> its default run folder)."""
    from kerasdl.data.folders import looks_like_path
    from kerasdl.errors import NotFoundError
    from kerasdl.registry import model_info
    from kerasdl.train import default_run_dir
    from kerasdl.train.runs import resolve_dataset

    if os.path.exists(target):
        return target
    if looks_like_path(target) or target.endswith(".keras"):
        raise NotFoundError(f"no run folder or .keras file at {os.path.abspath(target)}",
                            argument="target")
    info = model_info(target)
    dataset = resolve_dataset(info, dataset)
    run_dir = default_run_dir(info.name, dataset)
    if not os.path.exists(run_dir):
        raise NotFoundError(
            f"{target!r} is a model name but {run_dir} holds no trained run; train it "
            f"first: kerasdl train {info.name} --dataset {dataset}",
            argument="target",
        )
    return run_dir


def cmd_export(args):
    from kerasdl.export import render_model_card
    from kerasdl.workflows import export_run

    from kerasdl.export import FORMATS

    formats = args.formats or FORMATS
    if args.quantize:
        formats = tuple(dict.fromkeys(("float32", args.quantize)))
    card = export_run(
        _resolve_run(args.target, args.dataset),
        args.output,
        formats=formats,
        overwrite=args.overwrite,
        data_dir=args.data_dir,
        max_test_examples=args.max_test_examples,
        int8_per_channel=not args.int8_per_tensor,
        int8_io=args.int8_io,
        raw_uint8=args.raw_uint8,
        select_tf_ops=args.select_tf_ops,
    )
    print(render_model_card(card))
    return 0


def cmd_bench(args):
    from kerasdl.atomic import check_writable_target, write_json
    from kerasdl.export.bench import benchmark, render_bench

    if args.json:
        # Refuse before timing, not after.
        check_writable_target(args.json, args.overwrite, what="bench results")
    rows = benchmark(args.target, threads=tuple(args.threads), runs=args.runs)
    print(render_bench(rows))
    if args.json:
        write_json(args.json, rows, overwrite=args.overwrite)
        print(f"wrote {os.path.abspath(args.json)}")
    return 0


def cmd_predict(args):
    from kerasdl.export.predict import format_prediction, predict_images

    results = predict_images(args.artifact, args.images, top=args.top,
                             num_threads=args.threads)
    for image, pairs in zip(args.images, results):
        print(format_prediction(image, pairs))
    return 0


def cmd_quickstart(args):
    from kerasdl.workflows import quickstart

    quickstart(args.output, overwrite=args.overwrite, data_dir=args.data_dir,
               epochs=args.epochs, max_examples=args.max_examples)
    return 0


def build_parser():
    from kerasdl import __version__

    p = argparse.ArgumentParser(prog="kerasdl", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"kerasdl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="table of registered models")
    s.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*lenet*'")
    s.add_argument("--family")
    s.add_argument("--task")
    s.add_argument("--tag", action="append", help="require this tag (repeatable)")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="one model's registry record and recipe")
    s.add_argument("model")
    s.set_defaults(func=cmd_info)

    def data_args(s):
        s.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, "
                       "else TFDS's default)")
        s.add_argument("--max-examples", type=_positive_int,
                       help="use at most N examples per split (smoke runs)")

    s = sub.add_parser("train", help="train a model on a dataset with its recipe")
    s.add_argument("model")
    s.add_argument("--dataset", help="TFDS name, a folder with one subfolder of images per "
                   "class, or 'digits' (embedded); default: the model's registered dataset")
    s.add_argument("--epochs", type=_positive_int)
    s.add_argument("--batch-size", type=_positive_int)
    s.add_argument("--output", help="run folder (default: saved_models/MODEL_DATASET)")
    s.add_argument("--overwrite", action="store_true", help="retrain over a finished run")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--from", dest="init_from", metavar="RUN_DIR",
                   help="fine-tune this finished run (new classifier if the classes differ)")
    s.add_argument("--freeze", metavar="STAGE",
                   help="with --from: keep layers up to this name prefix frozen, e.g. conv3")
    s.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels and in-order augmentation: one seed, one result")
    s.add_argument("--strategy", choices=("mirrored", "multiworker"),
                   help="tf.distribute strategy: all local GPUs, or the workers in TF_CONFIG")
    s.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs into the run folder's tensorboard/")
    data_args(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="test metrics of a trained run")
    s.add_argument("run", help="run folder or its model.keras")
    s.add_argument("--dataset", help="default: the dataset the run was trained on")
    data_args(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("export", help="SavedModel + TFLite variants, verified, with a model card")
    s.add_argument("target", help="run folder, its model.keras, or a model name "
                   "(uses saved_models/MODEL_DATASET)")
    s.add_argument("--dataset", help="with a model name: which run (default: the model's "
                   "registered dataset)")
    s.add_argument("--output", help="export folder (default: RUN/export)")
    s.add_argument("--formats", type=_formats, default=None,
                   help="comma-separated subset of saved_model,float32,float16,"
                   "dynamic_range,int8 (default: all)")
    s.add_argument("--quantize", choices=("float16", "dynamic_range", "int8"),
                   help="export float32 plus this one variant")
    s.add_argument("--int8-per-tensor", action="store_true",
                   help="one int8 weight scale per tensor (smaller file for tiny models; "
                   "per-channel is the default)")
    s.add_argument("--int8-io", choices=("int8", "float32"), default="int8",
                   help="input and output type of the int8 file (default int8)")
    s.add_argument("--raw-uint8", action="store_true",
                   help="bake the input preparation in: every artifact takes raw uint8 "
                   "pixels (what a phone camera gives)")
    s.add_argument("--select-tf-ops", action="store_true",
                   help="allow TensorFlow ops without a TFLite builtin (needs the Flex "
                   "delegate on the device)")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--data-dir")
    s.add_argument("--max-test-examples", type=_positive_int,
                   help="verify on the first N test examples only")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("bench", help="batch-1 latency of TFLite artifacts beside Keras, "
                       "as a Markdown table")
    s.add_argument("target", help="a .tflite file, an export folder, or a run folder "
                   "(uses RUN/export; its model.keras adds Keras rows)")
    s.add_argument("--threads", type=_positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="LiteRT thread counts to time (default: 1 2)")
    s.add_argument("--runs", type=_positive_int, default=200,
                   help="timed calls per row; the median is reported (default 200)")
    s.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("predict", help="top classes of image files with a .tflite model")
    s.add_argument("artifact", help="a .tflite classifier, or an export or run folder "
                   "(uses its *_float32.tflite)")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    s.add_argument("--top", type=_positive_int, default=3, help="classes per image (default 3)")
    s.add_argument("--threads", type=_positive_int, help="LiteRT threads (default: LiteRT's)")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("quickstart", help="LeNet-5 on MNIST: train, evaluate, export, verify")
    s.add_argument("--output", default="saved_models", help="root folder (default saved_models)")
    s.add_argument("--epochs", type=_positive_int, help="override the recipe's epochs")
    s.add_argument("--overwrite", action="store_true", help="retrain and re-export")
    data_args(s)
    s.set_defaults(func=cmd_quickstart)
    return p


def _import_tensorflow_quietly():
    """Import TensorFlow and TFDS with file descriptor 2 muted: their C++ start-up notes
    (oneDNN, CUDA stubs) ignore TF_CPP_MIN_LOG_LEVEL and would bury the CLI's output."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
        import tensorflow_datasets  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _with_flag(err):
    """The error's message, with the CLI flag of the argument it names, if there is one."""
    message = " ".join(str(err).split())
    flag = FLAGS.get(getattr(err, "argument", None))
    return f"{message} (option {flag})" if flag else message


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    _import_tensorflow_quietly()  # every command builds or loads Keras models
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    from kerasdl.errors import KerasdlError

    try:
        return args.func(args)
    except KerasdlError as err:
        print(f"kerasdl: error: {_with_flag(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kerasdl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
