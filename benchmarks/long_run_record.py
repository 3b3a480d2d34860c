"""Record a finished long training run in ``benchmarks/results/``: the command, wall time
summed over every session that worked on it, epochs, hardware, learning-rate schedule,
final test accuracy against the paper's, and the per-epoch curves.

The per-epoch seconds come from the run's console log (``train.log`` beside the run,
appended by every session: ``kerasdl train ... >> RUN/train.log``), since each session's
``run.json`` only knows its own share.

    python benchmarks/long_run_record.py saved_models/resnet20_cifar10 --paper 91.25 \\
        --command "kerasdl train resnet20 --dataset cifar10"
"""

import argparse
import json
import os
import platform
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) - (\d+)s - ")


def console_epochs(log_path):
    """``(seconds of every finished epoch, number of sessions)`` from a console log."""
    seconds, sessions = [], 0
    with open(log_path) as f:
        for line in f:
            if line.startswith(("Training ", "Resuming ")):
                sessions += 1
            match = EPOCH_LINE.match(line)
            if match and match.group(1) == match.group(2):
                seconds.append(int(match.group(3)))
    return seconds, sessions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--paper", type=float, required=True,
                        help="the paper's test accuracy in percent")
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--name", help="record name (default: the run folder's name)")
    args = parser.parse_args()

    from kerasdl.train.runs import _history

    run_dir = os.path.abspath(args.run_dir)
    name = args.name or os.path.basename(run_dir)
    with open(os.path.join(run_dir, "run.json")) as f:
        record = json.load(f)
    history = _history(run_dir, {})
    seconds, sessions = console_epochs(os.path.join(run_dir, "train.log"))
    missing = [int(e) for e, loss in zip(history["epoch"], history["loss"]) if loss is None or loss != loss]
    recipe = record["recipe"]
    result = {
        "model": record["model"],
        "dataset": record["dataset"],
        "command": args.command,
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU (shared machine)",
        "epochs": recipe["epochs"],
        "sessions": sessions,
        "wall_seconds_of_training": sum(seconds),
        "epoch_seconds_min_median_max": [min(seconds), sorted(seconds)[len(seconds) // 2],
                                         max(seconds)] if seconds else None,
        "epochs_timed": len(seconds),
        "schedule": (f"{recipe['optimizer']} peak lr {recipe['learning_rate']}, "
                     f"{recipe['warmup_epochs']:g} warm-up epoch(s) then {recipe['schedule']}"
                     f" over {recipe['epochs']} epochs, batch {recipe['batch_size']}, "
                     f"weight decay {recipe['weight_decay']}, momentum {recipe['momentum']}"
                     f"{' (Nesterov)' if recipe.get('nesterov') else ''}, augmentation "
                     f"{recipe['augmentation']!r}"),
        "recipe": recipe,
        "test_accuracy_percent": round(100 * record["test_accuracy"], 2),
        "paper_test_accuracy_percent": args.paper,
        "test_examples": 10_000 if record["dataset"] == "cifar10" else None,
        "epochs_missing_from_the_log": missing,
        "curves": f"{name}_curves.png",
        "history": history,
    }
    out = os.path.join(HERE, "results", f"{name}.json")
    with open(out + ".partial", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out + ".partial", out)
    curves = os.path.join(run_dir, "curves.png")
    if os.path.isfile(curves):
        shutil.copyfile(curves, os.path.join(HERE, "results", f"{name}_curves.png"))
    summary = {k: v for k, v in result.items() if k not in ("history", "recipe")}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
