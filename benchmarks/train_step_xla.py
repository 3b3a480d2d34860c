"""Side-by-side train-step time of LeNet-5 with and without XLA (jit_compile), in one
process, on the same cached synthetic batches; this decides `default_jit_compile()`.

    python benchmarks/train_step_xla.py
"""

import json
import os
import platform
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def time_steps(name, jit, batches, rounds=3):
    import keras

    import kerasdl

    model = kerasdl.create_model(name)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
    model.fit(batches, epochs=1, verbose=0)  # trace/compile outside the timing
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(batches, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    steps, batch = 100, 128
    x = rng.uniform(-0.1, 1.175, (steps * batch, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 10, steps * batch)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    rows = []
    for name in ("lenet5", "lenet5_modern"):
        # Alternate the two settings so drifting machine load hits both alike.
        no_xla = time_steps(name, False, batches)
        xla = time_steps(name, True, batches)
        rows.append({"model": name, "ms_per_step_no_xla": round(1000 * no_xla / steps, 2),
                     "ms_per_step_xla": round(1000 * xla / steps, 2),
                     "xla_slowdown": round(xla / no_xla, 2)})
        print(rows[-1], flush=True)
    result = {"command": "python benchmarks/train_step_xla.py",
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "batch_size": batch, "steps": steps, "results": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "train_step_xla.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
