"""ResNet-20 (CIFAR-10) training speed under the settings one might change on a CPU:
XLA, batch size, channels order, mixed precision, TensorFlow's thread pools, and the real
input pipeline (CIFAR-10 from TFDS with the recipe's augmentation) against cached
synthetic batches.

Each setting runs in its own fresh process (thread pools, the data format and the dtype
policy are process-wide), and the settings take turns round by round, so that drifting
load on the shared machine hits all of them alike. Reported: training images per second
of ``model.fit`` after a warm-up epoch, best and median over the rounds.

    python benchmarks/resnet20_train_step.py [--rounds 3] [--steps 30]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SETTINGS = {
    "baseline": {},
    "xla": {"jit": True},
    "batch_256": {"batch": 256},
    "batch_64": {"batch": 64},
    # kerasdl's builders are channels_last only (the Keras default; BatchNorm, shortcuts
    # and input scaling use the last axis), so channels order is measured on a plain
    # Keras stack of ResNet-20's 19 convolutions (3x3, BN, ReLU; 16/32/64 filters,
    # strides 1/2/2) built both ways.
    "conv_stack_channels_last": {"conv_stack": True},
    "conv_stack_channels_first": {"conv_stack": True, "data_format": "channels_first"},
    "mixed_bfloat16": {"policy": "mixed_bfloat16"},
    "threads_intra2_inter1": {"intra": 2, "inter": 1},
    "threads_intra1_inter2": {"intra": 1, "inter": 2},
    "real_pipeline": {"real_data": True},
}


def conv_stack(shape, data_format):
    import keras

    axis = 1 if data_format == "channels_first" else -1
    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for i, (filters, strides) in enumerate([(16, 1)] * 7 + [(32, 2)] + [(32, 1)] * 5
                                           + [(64, 2)] + [(64, 1)] * 5):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(axis=axis)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def worker(spec, steps):
    """Time ``steps`` training steps of one setting; print images per second as JSON."""
    import keras
    import numpy as np
    import tensorflow as tf

    if "intra" in spec:
        tf.config.threading.set_intra_op_parallelism_threads(spec["intra"])
        tf.config.threading.set_inter_op_parallelism_threads(spec["inter"])
    data_format = spec.get("data_format", "channels_last")
    keras.config.set_image_data_format(data_format)
    if "policy" in spec:
        keras.mixed_precision.set_global_policy(spec["policy"])

    import kerasdl
    from kerasdl.train.recipes import get_recipe

    batch = spec.get("batch", 128)
    recipe = get_recipe("resnet20").replace(batch_size=batch)
    if spec.get("real_data"):
        from kerasdl.augment import make_augmentation
        from kerasdl.data import load_image_classification

        data = load_image_classification(
            "cifar10", batch_size=batch, validation_fraction=0.1,
            augment=make_augmentation(recipe.augmentation, (32, 32)), download=False)
        train = data.train.repeat()
    else:
        rng = np.random.default_rng(0)
        shape = (3, 32, 32) if data_format == "channels_first" else (32, 32, 3)
        x = rng.uniform(0, 255, (8 * batch, *shape)).astype("float32")
        y = rng.integers(0, 10, 8 * batch)
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache().repeat()
    shape = (3, 32, 32) if data_format == "channels_first" else (32, 32, 3)
    if spec.get("conv_stack"):
        model = conv_stack(shape, data_format)
    else:
        model = kerasdl.create_model("resnet20", input_shape=shape)
    model.compile(optimizer=recipe.make_optimizer(steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=spec.get("jit", False))
    model.fit(train, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": steps * batch / seconds}))


def run_setting(name, steps):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    shared = os.path.join(HERE, "..", "..", "shared", "data", "tfds")
    if "TFDS_DATA_DIR" not in env and os.path.isdir(shared):
        env["TFDS_DATA_DIR"] = os.path.abspath(shared)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(SETTINGS[name]),
         "--steps", str(steps)],
        capture_output=True, text=True, env=env)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["images_per_second"]
    return "failed: " + (out.stderr.strip().splitlines() or ["no output"])[-1][:300]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--only", nargs="*", choices=list(SETTINGS))
    parser.add_argument("--output", default="resnet20_train_step.json",
                        help="file name under benchmarks/results/")
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker), args.steps)

    names = args.only or list(SETTINGS)
    results = {name: [] for name in names}
    for r in range(args.rounds):
        # Alternate the order so that no setting always runs first after a pause.
        for name in names if r % 2 == 0 else names[::-1]:
            value = run_setting(name, args.steps)
            results[name].append(value)
            print(f"round {r + 1}: {name}: {value if isinstance(value, str) else f'{value:.1f} img/s'}",
                  flush=True)
    rows = []
    base = [v for v in results.get("baseline", []) if not isinstance(v, str)]
    for name in names:
        values = [v for v in results[name] if not isinstance(v, str)]
        row = {"setting": name, **SETTINGS[name], "images_per_second": [round(v, 1) for v in values]}
        if values:
            row["best"] = round(max(values), 1)
            row["median"] = round(statistics.median(values), 1)
            if base:
                # Per-round ratio to the baseline measured in the same round.
                ratios = [v / b for v, b in zip(results[name], results["baseline"])
                          if not isinstance(v, str) and not isinstance(b, str)]
                row["ratio_to_baseline_median"] = round(statistics.median(ratios), 3)
        else:
            row["error"] = results[name][0]
        rows.append(row)
    result = {
        "command": "python benchmarks/resnet20_train_step.py " + " ".join(
            a for a in sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or 'x86_64'}",
        "steps_timed": args.steps,
        "rounds": args.rounds,
        "results": rows,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", args.output)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
