"""Record a finished long training run in ``benchmarks/results/``: the command, wall time
summed over every session that worked on it, epochs, hardware, learning-rate schedule,
the run's final metrics against a target (a paper's accuracy or an issue's figure), and
the per-epoch curves. ``--bleu`` also decodes a translation run's test set greedily and
with beam search and records both sacreBLEU scores.

The per-epoch seconds come from the run's console log (``train.log`` beside the run,
appended by every session: ``kerasdl train ... >> RUN/train.log``), since each session's
``run.json`` only knows its own share.

    python benchmarks/long_run_record.py saved_models/resnet20_cifar10 --paper 91.25 \\
        --command "kerasdl train resnet20 --dataset cifar10"
    python benchmarks/long_run_record.py saved_models/lstm_lm_tiny_shakespeare \
        --metric validation_nats_per_token --target 1.6 --lower-is-better \
        --command "kerasdl train lstm_lm --dataset tiny_shakespeare"
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


def _momentum(recipe):
    """The recipe's momentum words, only for the optimizers that use them."""
    if recipe["optimizer"] in ("sgd", "rmsprop"):
        nesterov = " (Nesterov)" if recipe["optimizer"] == "sgd" and recipe.get("nesterov") \
            else ""
        return f"momentum {recipe['momentum']}{nesterov}, "
    if recipe["optimizer"] in ("adam", "adamw"):
        return f"betas {recipe.get('beta_1', 0.9)}, {recipe.get('beta_2', 0.999)}, "
    return ""


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
    parser.add_argument("--paper", type=float,
                        help="the paper's test accuracy in percent (the target of test_accuracy)")
    parser.add_argument("--metric", default="test_accuracy",
                        help="the run.json metric judged against --target (or bleu_beam, "
                             "bleu_greedy with --bleu)")
    parser.add_argument("--target", type=float,
                        help="the target value, in the metric's own units (accuracy: 0-1)")
    parser.add_argument("--lower-is-better", action="store_true")
    parser.add_argument("--bleu", action="store_true",
                        help="decode the test set (greedy, beam 5) and record sacreBLEU")
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--name", help="record name (default: the run folder's name)")
    args = parser.parse_args()
    if args.paper is None and args.target is None:
        parser.error("give --paper (test accuracy in percent) or --target")

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
                     f"weight decay {recipe['weight_decay']}, {_momentum(recipe)}"
                     f"augmentation {recipe['augmentation']!r}"),
        "recipe": recipe,
        "metrics": {k: v for k, v in record.items()
                    if k.startswith(("test_", "validation_")) and not isinstance(v, bool)
                    and isinstance(v, (int, float))},
        "examples": record.get("num_examples"),
        "epochs_missing_from_the_log": missing,
        "curves": f"{name}_curves.png",
        "history": history,
    }
    if args.paper is not None:
        result["test_accuracy_percent"] = round(100 * record["test_accuracy"], 2)
        result["paper_test_accuracy_percent"] = args.paper
    if args.bleu:
        from kerasdl.translation import evaluate_bleu

        scores = evaluate_bleu(run_dir, beam_widths=(1, 5))
        result["bleu"] = {f"beam_{k}" if k > 1 else "greedy": {
            key: v[key] for key in ("bleu", "signature", "sentences", "seconds")}
            for k, v in scores.items()}
        result["metrics"]["bleu_greedy"] = scores[1]["bleu"]
        result["metrics"]["bleu_beam"] = scores[5]["bleu"]
        result["bleu_examples"] = [
            {"source": s, "reference": r, "greedy": g, "beam": b}
            for s, r, g, b in list(zip(scores[5]["sources"], scores[5]["references"],
                                       scores[1]["translations"],
                                       scores[5]["translations"]))[:10]]
    if args.target is not None:
        value = result["metrics"][args.metric]
        met = value <= args.target if args.lower_is_better else value >= args.target
        result["target"] = {"metric": args.metric, "value": args.target,
                            "direction": "at most" if args.lower_is_better else "at least",
                            "measured": value, "met": met}
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
