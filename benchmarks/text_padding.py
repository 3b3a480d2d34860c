"""Text training steps with per-batch padding (``padding="batch"``) against padding every
batch to the recipe's fixed length, side by side in one process: the Multi30k
translators (fixed 40 tokens, what kerasdl did before) and BERT-Mini's SST-2 classifier
and masked LM (fixed 64).

The same model (built for any length), the same shuffled batches; the fixed pipeline
only pads each batch further (ids with 0, which the models mask; masked-LM targets with
the ignored -1). The two take turns round by round (``--steps`` training steps each), so
drifting load on a shared machine hits both alike. Reported: milliseconds per training
step, median over the rounds, the ratio per round, and the mean width of the batches
timed.

    python benchmarks/text_padding.py [--models seq2seq_bahdanau transformer_small
        bert_mini bert_mini_mlm] [--rounds 3] [--steps 10]
"""

import argparse
import datetime
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


def pipelines(task, data):
    """The task's training pipeline as it is (per batch) and padded to the fixed length."""
    import tensorflow as tf

    length = data.codec.sequence_length

    def pad(ids, value=0):
        return tf.pad(ids, [[0, 0], [0, length - tf.shape(ids)[1]]], constant_values=value)

    if task == "seq2seq":
        def fixed(x, y):
            return (pad(x[0]), pad(x[1])), pad(y)
    elif task == "masked_language_modeling":
        def fixed(x, y):
            return pad(x), pad(y, -1)  # IGNORE: not predicted
    else:
        def fixed(x, y):
            return pad(x), y
    return {"per_batch": data.train, f"fixed_{length}": data.train.map(fixed)}


def load(name, recipe):
    from kerasdl.registry import model_info
    from kerasdl.tasks import get_task

    info = model_info(name)
    task = get_task(info.task)
    data = task.load_data(info.default_dataset if info.task == "seq2seq" else "glue/sst2",
                          batch_size=recipe.batch_size, recipe=recipe.replace(padding="batch"),
                          validation_fraction=recipe.validation_fraction)
    return info, task, data


def measure(name, rounds, steps):
    import keras
    import numpy as np

    from kerasdl.train import get_recipe

    recipe = get_recipe(name)
    info, task, data = load(name, recipe)
    keras.utils.set_random_seed(0)
    model = task.build_model(info, data, recipe)
    model.compile(optimizer=recipe.make_optimizer(1000, model=model),
                  **task.compile_kwargs(model, recipe))
    import tensorflow as tf

    from kerasdl.train import build_for_fit

    datasets = {}
    for mode, ds in pipelines(info.task, data).items():
        if isinstance(model.output, dict):
            ds = ds.map(lambda x, y: (x, {"logits": y}))
        datasets[mode] = ds.repeat()
    build_for_fit(model, datasets["per_batch"])
    # What Model.fit runs on TensorFlow: a function over the dataset's iterator, traced
    # once per element spec (here one per padding), never per batch shape.
    step = tf.function(lambda iterator: model.train_step(next(iterator)),
                       reduce_retracing=True)
    streams = {mode: iter(ds) for mode, ds in datasets.items()}
    widths = {mode: [int(keras.tree.flatten(x)[0].shape[1]) for x, _ in ds.take(100)]
              for mode, ds in datasets.items()}
    fixed_mode = next(m for m in streams if m != "per_batch")

    def run(mode, n):
        start = time.perf_counter()
        for _ in range(n):
            logs = step(streams[mode])
        keras.tree.map_structure(lambda v: v.numpy(), logs)
        return (time.perf_counter() - start) / n

    for mode in streams:  # trace once per padding, untimed
        run(mode, 2)
    times = {mode: [] for mode in streams}
    for r in range(rounds):
        for mode in streams:
            times[mode].append(run(mode, steps))
        print(f"[{name}] round {r + 1}: " + ", ".join(
            f"{m} {1000 * t[-1]:.0f} ms/step" for m, t in times.items()), flush=True)
    ratios = [f / b for f, b in zip(times[fixed_mode], times["per_batch"])]
    return {
        "task": info.task,
        "data": data.source,
        "batch_size": recipe.batch_size,
        "parameters": int(model.count_params()),
        "ms_per_step_median": {m: round(1000 * statistics.median(t), 1)
                               for m, t in times.items()},
        "ms_per_step_rounds": {m: [round(1000 * x, 1) for x in t] for m, t in times.items()},
        "fixed_over_per_batch_by_round": [round(x, 3) for x in ratios],
        "mean_width_of_100_batches": {m: round(float(np.mean(w)), 2)
                                      for m, w in widths.items()},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["seq2seq_bahdanau", "transformer_small",
                                                   "bert_mini", "bert_mini_mlm"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--output", default=os.path.join(HERE, "results",
                                                    "text_padding.json"))
    args = p.parse_args()

    from _common import load_average, machine, versions

    from kerasdl.atomic import write_json

    results = {"script": "benchmarks/text_padding.py",
               "command": "python " + " ".join(sys.argv),
               "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "machine": machine(), "versions": versions(),
               "load_average_before": load_average(), "models": {}}
    for name in args.models:
        results["models"][name] = measure(name, args.rounds, args.steps)
        r = results["models"][name]
        print(f"[{name}] median ms/step: {r['ms_per_step_median']}; fixed/per-batch by "
              f"round: {r['fixed_over_per_batch_by_round']}", flush=True)
    results["load_average_after"] = load_average()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    write_json(args.output, results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
