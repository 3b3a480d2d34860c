"""The adding problem: vanishing gradients over time, made visible.

Trains a SimpleRNN, an LSTM and a GRU (64 units, a Dense(1) head, Adam 1e-3, gradients
clipped to global norm 1.0, batch 64) on the adding problem (Hochreiter & Schmidhuber
1997; Le et al. 2015's form, ``kerasdl.data.synthetic.adding_problem``) at each sequence
length, and records per model and length: the test MSE after each epoch against the 1/6
of always predicting 1.0, the training wall time, and the norm of d loss / d input at
each time step (``kerasdl.analysis.gradient_norms_by_time``) at initialisation and after
training. Writes ``<output>.json`` (rewritten after every model, so a cut-off run keeps
what it finished) and ``<output>.png``.

    python benchmarks/adding_problem.py            # lengths 50 150, 20,000 examples, 10 epochs
    python benchmarks/adding_problem.py --smoke    # under a minute, into a temp folder
    python benchmarks/adding_problem.py --lengths 20 --examples 512 --epochs 1 --output /tmp/adding
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODELS = ("SimpleRNN", "LSTM", "GRU")
UNITS = 64
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
CLIP_NORM = 1.0
# Examples whose input gradients are measured (the first ones of the test set).
PROBE_EXAMPLES = 256
FULL = {"lengths": [50, 150], "examples": 20_000, "epochs": 10}
SMOKE = {"lengths": [20], "examples": 512, "epochs": 1}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+",
                        help=f"sequence lengths (default {FULL['lengths']}; "
                             f"smoke {SMOKE['lengths']})")
    parser.add_argument("--examples", type=int,
                        help=f"training examples (default {FULL['examples']}; "
                             f"smoke {SMOKE['examples']})")
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--epochs", type=int,
                        help=f"epochs (default {FULL['epochs']}; smoke {SMOKE['epochs']})")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--implementation", choices=("keras", "scratch"), default="keras",
                        help="keras.layers.SimpleRNN/LSTM/GRU, or kerasdl's Scratch* twins "
                             "written from the equations (the same maths)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="path prefix of the .json and .png (default "
                                         "benchmarks/results/adding_problem)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run written to a temp folder; the sizes not given "
                             "default to " + ", ".join(f"{k} {v}" for k, v in SMOKE.items()))
    args = parser.parse_args(argv)
    defaults = SMOKE if args.smoke else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.output is None:
        folder = (tempfile.mkdtemp(prefix="adding_problem_") if args.smoke
                  else os.path.join(HERE, "results"))
        args.output = os.path.join(folder, "adding_problem")
    return args


def build_model(kind, length, implementation):
    import keras

    from kerasdl.layers import ScratchGRU, ScratchLSTM, ScratchSimpleRNN

    layers = ({"SimpleRNN": keras.layers.SimpleRNN, "LSTM": keras.layers.LSTM,
               "GRU": keras.layers.GRU} if implementation == "keras" else
              {"SimpleRNN": ScratchSimpleRNN, "LSTM": ScratchLSTM, "GRU": ScratchGRU})
    model = keras.Sequential([keras.Input((length, 2)), layers[kind](UNITS),
                              keras.layers.Dense(1)], name=f"{kind.lower()}_{length}")
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE, global_clipnorm=CLIP_NORM),
                  loss="mse")
    return model


def run_one(kind, length, data, args):
    import keras

    from kerasdl.analysis import gradient_norms_by_time
    from kerasdl.data.synthetic import ADDING_BASELINE_MSE

    (x_train, y_train), (x_test, y_test) = data
    probe = x_test[:PROBE_EXAMPLES], y_test[:PROBE_EXAMPLES]
    keras.utils.set_random_seed(args.seed)
    model = build_model(kind, length, args.implementation)
    norms_initial = gradient_norms_by_time(model, *probe)
    mse_initial = float(model.evaluate(x_test, y_test, batch_size=256, verbose=0))
    print(f"[{kind}, length {length}] {model.count_params():,} parameters, initial test MSE "
          f"{mse_initial:.4f}; training {args.epochs} epoch(s) on {len(x_train):,} examples",
          flush=True)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=args.epochs,
                        validation_data=(x_test, y_test), shuffle=True, verbose=2).history
    seconds = time.perf_counter() - start
    norms_trained = gradient_norms_by_time(model, *probe)
    test_mse = [float(v) for v in history["val_loss"]]
    result = {
        "model": kind,
        "length": length,
        "parameters": model.count_params(),
        "test_mse": test_mse[-1],
        "test_mse_over_baseline": test_mse[-1] / ADDING_BASELINE_MSE,
        "test_mse_initial": mse_initial,
        "test_mse_per_epoch": test_mse,
        "train_mse_per_epoch": [float(v) for v in history["loss"]],
        "wall_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / args.epochs, 1),
        # How much weaker the loss reaches the first step than the last one.
        "first_to_last_step_gradient_ratio_initial": _ratio(norms_initial),
        "first_to_last_step_gradient_ratio_trained": _ratio(norms_trained),
        # Steps where the gradient underflowed to 0.0 (float32): its ratio is then 0.
        "underflowed_steps_initial": _underflowed(norms_initial),
        "underflowed_steps_trained": _underflowed(norms_trained),
        "gradient_norms_by_time_initial": [float(v) for v in norms_initial],
        "gradient_norms_by_time_trained": [float(v) for v in norms_trained],
    }
    print(f"[{kind}, length {length}] test MSE {test_mse[-1]:.4f} "
          f"({result['test_mse_over_baseline']:.2f} x the 1/6 baseline) in {seconds:.0f} s; "
          f"gradient first/last step {result['first_to_last_step_gradient_ratio_initial']:.2e} "
          f"at init, {result['first_to_last_step_gradient_ratio_trained']:.2e} trained",
          flush=True)
    return result


def _ratio(norms):
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else None


def _underflowed(norms):
    """Time steps whose gradient is exactly 0 in float32 (too small to represent)."""
    return int(sum(1 for v in norms if v == 0))


def plot(results, lengths, path):
    """Per length, one column: gradient norm by time step (log scale; solid at
    initialisation, dashed after training) above test MSE per epoch (epoch 0: untrained)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kerasdl.data.synthetic import ADDING_BASELINE_MSE

    colors = {"SimpleRNN": "tab:red", "LSTM": "tab:blue", "GRU": "tab:green"}
    figure = Figure(figsize=(5.5 * len(lengths), 8), layout="constrained")
    axes = figure.subplots(2, len(lengths), squeeze=False)
    for column, length in enumerate(lengths):
        top, bottom = axes[0, column], axes[1, column]
        for r in (r for r in results if r["length"] == length):
            color = colors[r["model"]]
            # An underflowed step (0.0) has no place on a log axis: leave a gap.
            for key, style, when in (("initial", "-", "initial"), ("trained", "--", "trained")):
                norms = [v if v > 0 else float("nan") for v in r[f"gradient_norms_by_time_{key}"]]
                gap = r.get(f"underflowed_steps_{key}", 0)
                top.plot(norms, color=color, linestyle=style,
                         label=f"{r['model']}, {when}" + (f" ({gap} steps at 0)" if gap else ""))
            curve = [r["test_mse_initial"]] + r["test_mse_per_epoch"]
            bottom.plot(range(len(curve)), curve, color=color, marker="o", label=r["model"])
        top.set_yscale("log")
        top.set_title(f"length {length}: |d loss / d x_t|, mean over {PROBE_EXAMPLES} examples")
        top.set_xlabel("time step t")
        top.legend(fontsize="small")
        bottom.axhline(ADDING_BASELINE_MSE, color="gray", linestyle=":",
                       label="predict 1.0 (1/6)")
        bottom.set_title(f"length {length}: test MSE")
        bottom.set_xlabel("epoch (0: at initialisation)")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_ylim(bottom=0)
        bottom.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def write_json(record, path):
    with open(path + ".partial", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".partial", path)


def main(argv=None):
    args = parse_args(argv)

    import keras

    from kerasdl.data.synthetic import ADDING_BASELINE_MSE, adding_problem

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    json_path, png_path = args.output + ".json", args.output + ".png"
    record = {
        "command": "python benchmarks/adding_problem.py " + " ".join(sys.argv[1:] if argv is None
                                                                     else argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
        "config": {"lengths": args.lengths, "train_examples": args.examples,
                   "test_examples": args.test_examples, "epochs": args.epochs,
                   "batch_size": BATCH_SIZE, "units": UNITS, "implementation": args.implementation,
                   "optimizer": f"Adam lr {LEARNING_RATE}, global_clipnorm {CLIP_NORM}",
                   "loss": "mse", "seed": args.seed, "gradient_probe_examples": PROBE_EXAMPLES,
                   "wall_seconds": "model.fit's wall time: compilation and the test-set "
                                   "evaluation after each epoch included"},
        "baseline_mse": ADDING_BASELINE_MSE,
        "complete": False,
        "results": [],
    }
    print(f"Writing {json_path} and {png_path}", flush=True)
    for length in args.lengths:
        # Another seed for the test set: with the same one it would repeat the first
        # training sequences (the generator fills the arrays row by row).
        data = (adding_problem(args.examples, length, seed=args.seed),
                adding_problem(args.test_examples, length, seed=args.seed + 1_000_003))
        for kind in args.models:
            record["results"].append(run_one(kind, length, data, args))
            write_json(record, json_path)
            plot(record["results"], args.lengths, png_path)  # a cut-off run keeps its figure
    record["complete"] = True
    write_json(record, json_path)
    plot(record["results"], args.lengths, png_path)
    print("\n| model | length | test MSE | / baseline | seconds |\n|---|---:|---:|---:|---:|")
    for r in record["results"]:
        print(f"| {r['model']} | {r['length']} | {r['test_mse']:.4f} | "
              f"{r['test_mse_over_baseline']:.2f} | {r['wall_seconds']:.0f} |")
    print(f"\nWrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
