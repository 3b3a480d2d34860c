"""Seed-to-seed spread of the LeNet-5 quickstart recipe on MNIST.

Trains `lenet5` with its recipe once per seed (into a temporary folder) and records the
test error and training time of each in benchmarks/results/lenet5_seeds.json.

    python benchmarks/lenet5_seeds.py --seeds 1 2 3
"""

import argparse
import json
import os
import platform
import statistics
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()

    from kerasdl.train import get_recipe, train

    runs = []
    with tempfile.TemporaryDirectory(prefix="kerasdl_seeds_") as root:
        for seed in args.seeds:
            record = train("lenet5", "mnist", output_dir=os.path.join(root, f"seed{seed}"),
                           seed=seed, verbose=0)
            runs.append({"seed": seed, "test_error_percent": record["test_error_percent"],
                         "train_seconds": record["train_seconds_this_session"]})
            print(runs[-1], flush=True)
    errors = [r["test_error_percent"] for r in runs]
    result = {
        "command": "python benchmarks/lenet5_seeds.py --seeds "
        + " ".join(str(s) for s in args.seeds),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "recipe": get_recipe("lenet5").to_dict(),
        "runs": runs,
        "test_error_percent": {"mean": round(statistics.mean(errors), 3),
                               "min": min(errors), "max": max(errors)},
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "lenet5_seeds.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result["test_error_percent"]))


if __name__ == "__main__":
    main()
