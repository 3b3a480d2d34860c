"""Multi30k translation training steps with per-batch padding against padding every batch
to the recipe's fixed 40 tokens (what kerasdl did before), side by side in one process.

The same model (built for any length), the same shuffled batches of 64 sentence pairs;
the fixed pipeline only pads each batch further with zeros, which the models mask. The
two take turns round by round (``--steps`` training steps each), so drifting load on a
shared machine hits both alike. Reported: milliseconds per training step, median over
the rounds, the ratio per round, and the mean padded lengths of the batches timed.

    python benchmarks/translation_padding.py [--models seq2seq_bahdanau transformer_small]
        [--rounds 3] [--steps 10]
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


def pipelines(data, length):
    import tensorflow as tf

    def pad(ids, width):
        return tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])

    def fixed(x, y):
        return (pad(x[0], length), pad(x[1], length)), pad(y, length)

    return {"per_batch": data.train, "fixed_40": data.train.map(fixed)}


def measure(name, data, recipe, rounds, steps):
    import keras
    import numpy as np

    import kerasdl
    from kerasdl.tasks import get_task

    task = get_task("seq2seq")
    keras.utils.set_random_seed(0)
    model = kerasdl.create_model(name, vocabulary_size=data.vocabulary_size,
                                 target_vocabulary_size=data.target_codec.vocabulary_size,
                                 sequence_length=None)
    model.compile(optimizer=recipe.make_optimizer(454, model=model),
                  **task.compile_kwargs(model, recipe))
    length = data.codec.sequence_length
    streams = {}
    for mode, ds in pipelines(data, length).items():
        if isinstance(model.output, dict):
            ds = ds.map(lambda x, y: (x, {"logits": y}))
        streams[mode] = iter(ds.repeat())
    widths = {mode: [] for mode in streams}

    def run(mode, n):
        batches = [next(streams[mode]) for _ in range(n)]
        widths[mode] += [int(b[0][0].shape[1]) for b in batches]
        start = time.perf_counter()
        for x, y in batches:
            model.train_on_batch(x, y)
        return (time.perf_counter() - start) / n

    for mode in streams:  # trace each input signature once, untimed
        run(mode, 2)
    times = {mode: [] for mode in streams}
    for r in range(rounds):
        for mode in streams:
            times[mode].append(run(mode, steps))
        print(f"[{name}] round {r + 1}: " + ", ".join(
            f"{m} {1000 * t[-1]:.0f} ms/step" for m, t in times.items()), flush=True)
    ratios = [f / b for f, b in zip(times["fixed_40"], times["per_batch"])]
    return {
        "parameters": int(model.count_params()),
        "ms_per_step_median": {m: round(1000 * statistics.median(t), 1)
                               for m, t in times.items()},
        "ms_per_step_rounds": {m: [round(1000 * x, 1) for x in t] for m, t in times.items()},
        "fixed_over_per_batch_by_round": [round(x, 3) for x in ratios],
        "mean_source_width": {m: round(float(np.mean(w)), 2) for m, w in widths.items()},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["seq2seq_bahdanau", "transformer_small"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--output", default=os.path.join(HERE, "results",
                                                    "translation_padding.json"))
    args = p.parse_args()

    from _common import load_average, machine, versions

    from kerasdl.atomic import write_json
    from kerasdl.data.text import load_translation
    from kerasdl.train import get_recipe

    results = {"script": "benchmarks/translation_padding.py",
               "command": "python " + " ".join(sys.argv),
               "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "machine": machine(), "versions": versions(),
               "load_average_before": load_average(), "models": {}}
    for name in args.models:
        recipe = get_recipe(name)
        data = load_translation("multi30k", vocabulary_size=recipe.vocabulary_size,
                                sequence_length=recipe.sequence_length,
                                batch_size=recipe.batch_size)
        results["models"][name] = measure(name, data, recipe, args.rounds, args.steps)
        r = results["models"][name]
        print(f"[{name}] median ms/step: {r['ms_per_step_median']}; fixed/per-batch by "
              f"round: {r['fixed_over_per_batch_by_round']}", flush=True)
    results["load_average_after"] = load_average()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    write_json(args.output, results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
