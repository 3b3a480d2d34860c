"""Images per second of kerasdl's augmentation pipelines against the training step they
feed, in the same run: is augmentation ever the bottleneck?

Pipelines (real CIFAR-10 training images, cached in memory, batched, then augmented the
way ``kerasdl.data`` does it): no augmentation, the in-graph presets (``cifar``,
``light``, ``digits``), a Keras-layers pipeline (flip, rotation, contrast), and the
albumentations ``strong`` preset with 1 and 2 parallel calls; at 32x32 and at 224x224
(the same images upsampled). Training step: ``model.fit`` of ResNet-18 (11.2M parameters
with a 10-class head) on cached batches at the same sizes. The digit presets (``digits``,
``digits_mild``) are also run on one-channel 32x32 images (the CIFAR images averaged to
grey) against the step of the network they feed, LeNet-5, and LeNet-5 is also trained
end to end on the ``none`` and ``digits_mild`` pipelines (augmentation and training then
share the two cores, as in a real run). Cases take turns round by
round so that drifting load on the shared machine hits all of them alike; reported are
the median and best images per second and, per round, the ratio of each pipeline to that
round's training step.

    python benchmarks/augment_throughput.py [--rounds 3] [--batches 30]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {32: 128, 224: 32}  # image side -> batch size
PIPELINES = ("none", "cifar", "light", "digits", "keras_layers", "strong_1", "strong_2")
DEFAULT_PRESETS = ("cifar", "light", "digits")
GREY = "32x32x1"
GREY_PIPELINES = ("none", "digits", "digits_mild")
TRAINERS = {GREY: "lenet5"}
FED_BY = ("none", "digits_mild")  # LeNet-5 trained end to end on these pipelines
LENET_STEPS = 10  # times --train-steps: a LeNet-5 step takes milliseconds


def load_images(count):
    import numpy as np
    import tensorflow as tf

    from kerasdl.data import load_image_classification

    data = load_image_classification("cifar10", validation_fraction=0.0, download=False)
    x, y = data.arrays("train", limit=count)
    big = np.concatenate([tf.image.resize(x[i:i + 64], (224, 224)).numpy()
                          for i in range(0, len(x), 64)])
    return {32: x, 224: big}, y


def pipeline(name, images, labels, batch):
    import tensorflow as tf

    from kerasdl.augment import AlbumentationsAugmentation, keras_pipeline, make_augmentation

    size = images.shape[1:3]
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache().repeat().batch(batch)
    autotune = tf.data.AUTOTUNE
    if name == "none":
        return ds.prefetch(autotune)
    if name.startswith("strong"):
        calls = int(name.split("_")[1])
        hook = AlbumentationsAugmentation(make_augmentation("strong", size).compose, seed=0)
        return hook.apply_to_dataset(ds, num_parallel_calls=calls).prefetch(autotune)
    if name == "keras_layers":
        layers = keras_pipeline(["flip", "rotation", ("contrast", {"factor": 0.2})], seed=0)
        return ds.map(lambda x, y: (layers(x, training=True), y),
                      num_parallel_calls=autotune).prefetch(autotune)
    hook = make_augmentation(name, size)
    apply = getattr(hook, "apply_to_dataset", None)
    if apply is not None:
        return apply(ds, num_parallel_calls=autotune).prefetch(autotune)
    return ds.map(hook, num_parallel_calls=autotune).prefetch(autotune)


def time_pipeline(ds, batches, batch):
    iterator = iter(ds)
    for _ in range(3):  # trace, fill the prefetch buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def time_training(images, labels, batch, steps, model_name="resnet18", fed_by=None):
    """Images per second of ``model.fit`` on cached batches, or, with ``fed_by``, on
    that pipeline's batches (augmentation and training then share the CPU)."""
    import keras
    import tensorflow as tf

    import kerasdl

    model = kerasdl.create_model(model_name, input_shape=images.shape[1:], num_classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if fed_by is None:
        ds = tf.data.Dataset.from_tensor_slices((images[:4 * batch], labels[:4 * batch]))
        ds = ds.batch(batch).cache().repeat()
    else:
        ds = pipeline(fed_by, images, labels, batch)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=30, help="batches timed per pipeline")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--output", default="augment_throughput.json",
                        help="file name under benchmarks/results/")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    shared = os.path.join(HERE, "..", "..", "shared", "data", "tfds")
    if "TFDS_DATA_DIR" not in os.environ and os.path.isdir(shared):
        os.environ["TFDS_DATA_DIR"] = os.path.abspath(shared)

    images, labels = load_images(2048)
    # The digit presets feed LeNet-5 on one-channel 32x32 images (the quickstart's run):
    # a far cheaper step than ResNet-18's, so they are also judged against it.
    images[GREY] = images[32].mean(axis=-1, keepdims=True)
    sizes = {**SIZES, GREY: SIZES[32]}
    cases = [(size, name) for size in SIZES for name in PIPELINES
             if not (size == 224 and name == "digits")]  # digits: a preset for 28-32 px
    cases += [(GREY, name) for name in GREY_PIPELINES]
    results = {case: [] for case in cases}
    training = {size: [] for size in sizes}
    fed = {name: [] for name in FED_BY}
    for r in range(args.rounds):
        for size, batch in sizes.items():
            steps = args.train_steps if size != 224 else max(2, args.train_steps // 3)
            if size == GREY:
                steps *= LENET_STEPS
            training[size].append(time_training(images[size], labels, batch, steps,
                                                TRAINERS.get(size, "resnet18")))
            print(f"round {r + 1}: {size}px training step: {training[size][-1]:.1f} img/s",
                  flush=True)
        for name in FED_BY:
            fed[name].append(time_training(images[GREY], labels, SIZES[32],
                                           args.train_steps * LENET_STEPS, "lenet5",
                                           fed_by=name))
            print(f"round {r + 1}: LeNet-5 fit fed by {name}: {fed[name][-1]:.1f} img/s",
                  flush=True)
        order = cases if r % 2 == 0 else cases[::-1]
        for size, name in order:
            batches = args.batches if size != 224 else max(5, args.batches // 3)
            value = time_pipeline(pipeline(name, images[size], labels, sizes[size]),
                                  batches, sizes[size])
            results[(size, name)].append(value)
            print(f"round {r + 1}: {size}px {name}: {value:.1f} img/s", flush=True)

    rows = []
    for size in sizes:
        rows.append({"size": size, "case": f"training_step_{TRAINERS.get(size, 'resnet18')}",
                     "batch": sizes[size],
                     "images_per_second": [round(v, 1) for v in training[size]],
                     "median": round(statistics.median(training[size]), 1)})
        for name in dict.fromkeys(PIPELINES + GREY_PIPELINES):
            if (size, name) not in results:
                continue
            values = results[(size, name)]
            ratios = [v / t for v, t in zip(values, training[size])]
            rows.append({"size": size, "case": name, "batch": sizes[size],
                         "images_per_second": [round(v, 1) for v in values],
                         "median": round(statistics.median(values), 1),
                         "best": round(max(values), 1),
                         "ratio_to_training_median": round(statistics.median(ratios), 2)})
    for name in FED_BY:
        rows.append({"size": GREY, "case": f"lenet5_fit_fed_by_{name}", "batch": SIZES[32],
                     "images_per_second": [round(v, 1) for v in fed[name]],
                     "median": round(statistics.median(fed[name]), 1),
                     "ratio_to_training_median": round(statistics.median(
                         [v / t for v, t in zip(fed[name], training[GREY])]), 2)})
    verdict = {name: next(r["ratio_to_training_median"] for r in rows
                          if r["size"] == 32 and r["case"] == name) for name in DEFAULT_PRESETS}
    verdict.update({f"{name} ({GREY}, against LeNet-5)": next(
        r["ratio_to_training_median"] for r in rows if r["size"] == GREY and r["case"] == name)
        for name in GREY_PIPELINES if name != "none"})
    result = {
        "command": "python benchmarks/augment_throughput.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rounds": args.rounds,
        "target": "default presets at 32x32 >= 2x the training step's images per second "
                  "(ResNet-18 on CIFAR-10; the digit presets also against LeNet-5 on "
                  "one-channel digits)",
        "default_presets_ratio_at_32px": verdict,
        "target_met": all(v >= 2.0 for v in verdict.values()),
        "results": rows,
    }
    path = os.path.join(HERE, "results", args.output)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".partial", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".partial", path)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
