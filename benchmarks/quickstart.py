"""Measure the quickstart against its targets and record the result.

Runs `kerasdl quickstart` from scratch into a fresh output folder (default
saved_models/, with --overwrite), then writes benchmarks/results/lenet5_quickstart.json
and .md with the measured numbers, the targets and the machine.

    python benchmarks/quickstart.py [--output saved_models]
"""

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="saved_models")
    args = parser.parse_args()

    from kerasdl.workflows import QUICKSTART_TARGETS, quickstart

    start = time.perf_counter()
    record, card, rows = quickstart(args.output, overwrite=True)
    total = time.perf_counter() - start
    result = {
        "command": "python benchmarks/quickstart.py --output " + args.output,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "dataset": record["dataset"],
        "data_source": record["data_source"],
        "recipe": record["recipe"],
        "train_seconds": record["train_seconds_this_session"],
        "total_seconds_including_export": round(total, 1),
        "test_accuracy": record["test_accuracy"],
        "test_error_percent": record["test_error_percent"],
        "artifacts": card["artifacts"],
        "targets": QUICKSTART_TARGETS,
        "checks": [{"target": t, "measured": m, "passed": ok} for t, m, ok in rows],
        "versions": card["versions"],
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "lenet5_quickstart.json"), "w") as f:
        json.dump(result, f, indent=2)
    lines = [
        "# LeNet-5 quickstart, measured",
        "",
        f"Command: `{result['command']}` on {result['machine']}.",
        f"Data: {record['data_source']}.",
        f"Recipe: {record['recipe']['notes']}; {record['recipe']['epochs']} epochs, "
        f"batch {record['recipe']['batch_size']}.",
        f"Training wall time: {record['train_seconds_this_session']:.0f} s; quickstart "
        f"total including export and verification: {total:.0f} s.",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {'PASS' if ok else 'FAIL'} |" for t, m, ok in rows]
    lines += ["", "| artifact | size (bytes) | accuracy | top-1 agreement | max abs logit diff "
              "| latency batch-1 (ms) |", "|---|---:|---:|---:|---:|---:|"]
    for a in card["artifacts"]:
        lines.append(
            f"| {a['format']} | {a['size_bytes']:,} | {100 * a['accuracy']:.2f}% | "
            f"{100 * a['top1_agreement']:.2f}% | {a['max_abs_logit_diff']:.3g} | "
            f"{a.get('latency_ms_batch1', '-')} |"
        )
    with open(os.path.join(HERE, "results", "lenet5_quickstart.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
