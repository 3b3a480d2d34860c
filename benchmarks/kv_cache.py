"""Greedy generation with and without the key/value cache (kerasdl.generation), side by
side in one process: gpt_char_small at its default sizes (random weights: the time does
not depend on training), batch 1, an 8-token prompt and several numbers of new tokens.

Each repeat times, for every length, one cached and one uncached generation back to back
(their order alternating from repeat to repeat, so that drifting machine load hits both
alike); the table reports medians of wall-clock time, the ratio of the fastest repeats,
and medians of process CPU time (steadier on a shared machine). Both step functions are
traced before timing (one generation of the longest length each), so the numbers are
steady-state decoding.

    python benchmarks/kv_cache.py            # writes benchmarks/results/kv_cache.json
    python benchmarks/kv_cache.py --smoke    # a few seconds of decoding, to a temp folder
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from _common import machine, timed, versions

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="short lengths, two repeats, output to a temp folder")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="numbers of new tokens (default 32 64 120; 8 + 120 = the "
                             "model's 128 positions)")
    parser.add_argument("--repeats", type=int, default=None, help="default 7 (smoke: 2)")
    parser.add_argument("--prompt", type=int, default=8, help="prompt tokens (default 8)")
    parser.add_argument("--output", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    lengths = args.lengths or ([8, 16] if args.smoke else [32, 64, 120])
    repeats = args.repeats or (2 if args.smoke else 7)
    output = args.output or (
        os.path.join(tempfile.mkdtemp(prefix="kv_cache_smoke_"), "kv_cache.json")
        if args.smoke else os.path.join(HERE, "results", "kv_cache.json"))

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import kerasdl
    from kerasdl.decoding import greedy_decode, lm_step_fn
    from kerasdl.generation import gpt_cached_step_fn

    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("gpt_char_small")
    vocab = model.get_layer("token_embeddings").input_dim
    positions = model.get_layer("position_embeddings").max_length
    if args.prompt + max(lengths) > positions:
        parser.error(f"prompt + new tokens must fit the model's {positions} positions")
    prompt = np.random.default_rng(0).integers(1, vocab, (1, args.prompt)).astype("int32")

    def run(cached, new_tokens):
        # A fresh step function per generation, as generate() makes one (the traced
        # computation is shared per model, so this does not trace again).
        step = gpt_cached_step_fn(model) if cached else lm_step_fn(model)
        return greedy_decode(step, prompt, args.prompt + new_tokens)

    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    warm_start = time.perf_counter()
    for cached in (True, False):  # trace both paths at every buffer size they will use
        run(cached, max(lengths))
    warm_up_s = time.perf_counter() - warm_start

    times = {n: {"cached": [], "uncached": []} for n in lengths}
    cpu_times = {n: {"cached": [], "uncached": []} for n in lengths}
    identical = {n: True for n in lengths}
    for r in range(repeats):
        for n in lengths:
            order = (True, False) if r % 2 == 0 else (False, True)
            tokens = {}
            for cached in order:
                seconds, cpu, tokens[cached] = timed(lambda: run(cached, n))
                times[n]["cached" if cached else "uncached"].append(seconds)
                cpu_times[n]["cached" if cached else "uncached"].append(cpu)
            identical[n] &= bool(np.array_equal(tokens[True], tokens[False]))
            print(f"repeat {r + 1}/{repeats}, {n} tokens: cached "
                  f"{times[n]['cached'][-1]:.3f} s, uncached {times[n]['uncached'][-1]:.3f} s",
                  flush=True)

    rows = []
    for n in lengths:
        wall, cpu = times[n], cpu_times[n]
        cached = float(np.median(wall["cached"]))
        uncached = float(np.median(wall["uncached"]))
        cpu_cached = float(np.median(cpu["cached"]))
        cpu_uncached = float(np.median(cpu["uncached"]))
        rows.append({"new_tokens": n, "seconds_cached": round(cached, 4),
                     "seconds_uncached": round(uncached, 4),
                     "ms_per_token_cached": round(1000 * cached / n, 3),
                     "ms_per_token_uncached": round(1000 * uncached / n, 3),
                     "speedup": round(uncached / cached, 2),
                     "speedup_min_wall": round(min(wall["uncached"]) / min(wall["cached"]), 2),
                     "cpu_seconds_cached": round(cpu_cached, 4),
                     "cpu_seconds_uncached": round(cpu_uncached, 4),
                     "speedup_cpu": round(cpu_uncached / cpu_cached, 2),
                     "identical_tokens": identical[n],
                     "all_seconds_cached": [round(s, 4) for s in wall["cached"]],
                     "all_seconds_uncached": [round(s, 4) for s in wall["uncached"]],
                     "all_cpu_seconds_cached": [round(s, 4) for s in cpu["cached"]],
                     "all_cpu_seconds_uncached": [round(s, 4) for s in cpu["uncached"]]})
    command = "python benchmarks/kv_cache.py" + (" " + " ".join(argv if argv is not None
                                                                  else sys.argv[1:])).rstrip()
    result = {"command": command.strip(), "machine": machine(), "versions": versions(),
              "model": "gpt_char_small (4 layers, 128 wide, 4 heads, 128 positions, "
                       f"vocabulary {vocab}), random weights, free input length",
              "decoding": "greedy_decode, batch 1, no end token",
              "cached": "kerasdl.generation.gpt_cached_step_fn (traced by the backend)",
              "uncached": "kerasdl.decoding.lm_step_fn (model.predict_on_batch on the "
                          "whole prefix each step)",
              "prompt_tokens": args.prompt, "repeats": repeats,
              "statistic": "median of the repeats (wall clock; also process CPU time), "
                           "cached and uncached interleaved; speedup_min_wall: ratio of "
                           "the fastest repeats",
              "niceness": os.nice(0) if hasattr(os, "nice") else None,
              "load_average_before": load_before,
              "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg")
              else None,
              "warm_up_seconds": round(warm_up_s, 2), "smoke": args.smoke, "results": rows}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print()
    print("| new tokens | cached (s) | uncached (s) | ms/token cached | ms/token uncached "
          "| speed-up (wall) | speed-up (fastest) | speed-up (CPU) | identical tokens |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['new_tokens']} | {row['seconds_cached']:.3f} | "
              f"{row['seconds_uncached']:.3f} | {row['ms_per_token_cached']:.2f} | "
              f"{row['ms_per_token_uncached']:.2f} | {row['speedup']:.2f}x | "
              f"{row['speedup_min_wall']:.2f}x | {row['speedup_cpu']:.2f}x | "
              f"{'yes' if row['identical_tokens'] else 'NO'} |")
    print(f"\nwrote {output}")
    if not all(identical.values()):
        sys.exit("the cached and uncached generations differ")


if __name__ == "__main__":
    main()
