"""Training throughput of kerasdl's ResNet-50 against keras.applications' ResNet50,
side by side in one process: the same input size, batch, optimizer and loss, alternating
timed rounds so that the shared machine's drift hits both alike.

    .venv/bin/python benchmarks/resnet50_throughput.py [--size 224] [--batch 16] [--rounds 5]

Writes benchmarks/results/resnet50_throughput.json.
"""

import argparse
import json
import os
import platform
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import keras
    import numpy as np

    import kerasdl

    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, *shape)).astype("float32")
    y = rng.integers(0, 1000, args.batch)
    ours = kerasdl.create_model("resnet50", input_shape=shape)
    theirs = keras.applications.ResNet50(weights=None, input_shape=shape,
                                         classifier_activation=None)
    # Same work per step: theirs gets preprocessed images, ours scales inside the model.
    x_theirs = keras.applications.resnet.preprocess_input(x.copy())
    models = {"kerasdl": (ours, x), "keras.applications": (theirs, x_theirs)}
    for model, _ in models.values():
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=False)
    for model, data in models.values():  # warm-up: trace and compile the train step
        model.train_on_batch(data, y)
    seconds = {k: [] for k in models}
    for _ in range(args.rounds):
        for key, (model, data) in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(data, y)
            seconds[key].append((time.perf_counter() - start) / args.steps)
    best = {k: min(v) for k, v in seconds.items()}
    median = {k: float(np.median(v)) for k, v in seconds.items()}
    per_round = [t / o for o, t in zip(seconds["kerasdl"], seconds["keras.applications"])]
    result = {
        "command": f"benchmarks/resnet50_throughput.py --size {args.size} --batch {args.batch} "
                   f"--steps {args.steps} --rounds {args.rounds}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "backend": keras.config.backend(),
        "parameters": {k: int(m.count_params()) for k, (m, _) in models.items()},
        "seconds_per_step_each_round": seconds,
        "images_per_second_best_round": {k: round(args.batch / s, 2) for k, s in best.items()},
        "images_per_second_median_round": {k: round(args.batch / s, 2) for k, s in median.items()},
        # Throughput ratio (ours / theirs): > 1 means kerasdl is faster.
        "ratio_best_rounds": round(best["keras.applications"] / best["kerasdl"], 4),
        "ratio_median_rounds": round(median["keras.applications"] / median["kerasdl"], 4),
        "ratio_per_round": [round(r, 4) for r in per_round],
        "ratio_median_of_paired_rounds": round(float(np.median(per_round)), 4),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "resnet50_throughput.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
