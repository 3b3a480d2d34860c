# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 09 — Mobile architectures and deployment
#
# DRAFT (issue 16): not yet executed on its real runs; it moves to `notebooks/` when it is.
#
# A phone gives a network a few milliseconds and a few megabytes. The mobile
# architectures buy that budget with one idea, the depthwise-separable convolution, and
# then refine it: inverted residuals with linear bottlenecks (MobileNetV2), squeeze-and-
# excitation and hard-swish found by architecture search (MobileNetV3), and a rule that
# scales depth, width and resolution together (EfficientNet). Deployment then shrinks
# the trained network again: TFLite files in float32, float16, dynamic-range and full
# int8, checked against Keras on the real test set.
#
# 1. What a depthwise-separable convolution saves, computed and measured.
# 2. MobileNet v1 to v3 and EfficientNet's compound scaling, from the code.
# 3. MobileNetV2 (alpha 0.35) and EfficientNet-B0 trained on CIFAR-10, exported in every
#    variant: accuracy, size and latency in a table and a plot.
# 4. The int8 file run on image files through LiteRT, as a phone app would.

# %%
import inspect
import json
import logging
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from IPython.display import Markdown, display

import kerasdl
from kerasdl.analysis import summarize
from kerasdl.blocks import mobile
from kerasdl.data import load_image_classification
from kerasdl.export import benchmark, predict_images, read_labels
from kerasdl.models.cnn.efficientnet import PUBLISHED, compound_coefficients, fit_phi
from kerasdl.train import MOBILE_CIFAR10_RECIPE, load_run, train
from kerasdl.workflows import export_run, notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
RUNS = os.path.join(OUTPUT_ROOT, "mobile_cifar10")
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. The depthwise-separable convolution
#
# A standard k x k convolution from C_in to C_out channels on an H x W map does
# k² · C_in · C_out multiply-adds per output position. The separable version splits it:
# a depthwise k x k convolution filters each input channel on its own (k² · C_in), then a
# 1 x 1 pointwise convolution mixes channels (C_in · C_out). The ratio of costs is
# 1/C_out + 1/k²: about 8-9 times fewer operations and weights for 3 x 3 kernels.
# `kerasdl.analysis.summarize` counts both from the built layers; the timing is a
# compiled call of each on the same input.

# %%
def conv_cost(separable, k=3, c_in=128, c_out=128, size=56):
    inputs = keras.Input((size, size, c_in))
    if separable:
        x = keras.layers.DepthwiseConv2D(k, padding="same", use_bias=False)(inputs)
        x = keras.layers.Conv2D(c_out, 1, use_bias=False)(x)
    else:
        x = keras.layers.Conv2D(c_out, k, padding="same", use_bias=False)(inputs)
    model = keras.Model(inputs, x)
    s = summarize(model)
    x = np.random.default_rng(0).normal(size=(8, size, size, c_in)).astype("float32")
    fn = tf.function(lambda t: model(t, training=False))
    fn(x)
    times = []
    for _ in range(3 if SMOKE else 20):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return s["parameters"], s["macs"], 1000 * float(np.median(times))


k, c = 3, 128
rows = ["| layer | parameters | multiply-adds per image | time, batch 8 |", "|---|---:|---:|---:|"]
costs = {}
for label, sep in (("3x3 convolution, 128 -> 128", False), ("depthwise 3x3 + pointwise 1x1", True)):
    params, macs, ms = conv_cost(sep)
    costs[sep] = (params, macs, ms)
    rows.append(f"| {label} | {params:,} | {macs / 1e6:.1f} M | {ms:.1f} ms |")
display(Markdown("\n".join(rows)))
print(f"formula 1/C_out + 1/k^2 = {1 / c + 1 / k ** 2:.4f}; counted ratio "
      f"{costs[True][1] / costs[False][1]:.4f}; measured time ratio "
      f"{costs[True][2] / costs[False][2]:.2f}")

# %% [markdown]
# The counted ratio equals the formula. The measured speed-up is smaller than the
# operation count promises: a depthwise convolution does little arithmetic per byte it
# reads, so on a CPU it is bound by memory traffic rather than by multiply-adds.

# %% [markdown]
# ## 2. From MobileNet v1 to EfficientNet, in the code
#
# The shared blocks live in `kerasdl.blocks.mobile`. MobileNetV2's inverted residual
# expands a narrow input 6x with a 1x1 convolution, filters it depthwise, and projects
# it back with a *linear* 1x1 convolution (no activation: ReLU on a narrow bottleneck
# destroys information); the residual joins the narrow ends. MobileNetV3 adds
# squeeze-and-excitation and hard-swish, EfficientNet's MBConv adds SE and swish, and
# stochastic depth.

# %%
print(inspect.getsource(mobile.apply_inverted_residual))

# %%
names = ["mobilenet", "mobilenet_050", "mobilenet_v2", "mobilenet_v2_035",
         "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"]
rows = ["| model | parameters | multiply-adds at 224x224 | depth |", "|---|---:|---:|---:|"]
for name in names[:3] if SMOKE else names:
    s = summarize(kerasdl.create_model(name))
    rows.append(f"| {name} | {s['parameters']:,} | {s['macs'] / 1e6:,.0f} M | {s['depth']} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# **Compound scaling.** Tan & Le scale depth by alpha^phi, width by beta^phi and
# resolution by gamma^phi, with alpha = 1.2, beta = 1.1, gamma = 1.15 found by a small grid
# search so that alpha · beta² · gamma² ≈ 2 (each step of phi about doubles the
# operations). The released B1-B7 round these numbers; `fit_phi` finds the phi each
# released model is closest to.

# %%
rows = ["| model | phi (rule) | depth x | width x | resolution | published depth, width, "
        "resolution | closest phi |", "|---|---:|---:|---:|---:|---|---:|"]
for b, (width, depth, resolution, _) in PUBLISHED.items():
    d, w, r = compound_coefficients(b)
    rows.append(f"| B{b} | {b} | {d:.2f} | {w:.2f} | {224 * r:.0f} | {depth}, {width}, "
                f"{resolution} | {fit_phi(depth, width, resolution / 224):.2f} |")
display(Markdown("\n".join(rows)))
print(f"alpha * beta^2 * gamma^2 = {1.2 * 1.1 ** 2 * 1.15 ** 2:.3f}")

# %% [markdown]
# The released models do not follow phi = 0..7 step by step: B1 is close to phi = 0.5
# and B7 to phi ≈ 4.5 in this fit. The paper fixed alpha, beta, gamma on B0 and then
# chose the larger models' multipliers by hand around the rule.

# %% [markdown]
# ## 3. Train on CIFAR-10, export, quantise, compare
#
# Both networks train on CIFAR-10 at its own 32x32 (the architectures unchanged; their
# five stride-2 stages leave a 1x1 final map, which costs accuracy against the 224x224
# the papers use, but 224x224 inputs would cost ~49x more per step on this CPU), with
# `kerasdl.train.MOBILE_CIFAR10_RECIPE`. `benchmarks/mobile.py` runs the same training
# and exports into the same folders, and this notebook reuses them when they are there.
# The exports are verified on the 10,000 test images; one more export takes raw `uint8`
# pixels, with the input preparation baked in.

# %%
MODELS = ["mobilenet_v2_035", "efficientnet_b0"]
if SMOKE:  # EfficientNet-B0 takes the same path, at twice the smoke run's time
    MODELS = MODELS[:1]
EPOCHS = 1 if SMOKE else MOBILE_CIFAR10_RECIPE.epochs
MAX_EXAMPLES = 512 if SMOKE else None
MAX_TEST = 256 if SMOKE else None
RUNS_PER_LATENCY = 5 if SMOKE else 200
cards, records = {}, {}
for name in MODELS:
    run_dir = os.path.join(RUNS, name)
    if os.path.isfile(os.path.join(run_dir, "model.keras")) and not SMOKE:
        _, records[name] = load_run(run_dir)
    else:
        records[name] = train(name, "cifar10", output_dir=run_dir,
                              recipe=MOBILE_CIFAR10_RECIPE.replace(epochs=EPOCHS),
                              model_kwargs={"input_shape": (32, 32, 3)},
                              max_examples=MAX_EXAMPLES, overwrite=True, verbose=0)
    for label, raw in (("export", False), ("export_uint8", True)):
        folder = os.path.join(run_dir, label)
        card_path = os.path.join(folder, "model_card.json")
        if os.path.isfile(card_path) and not SMOKE:
            with open(card_path) as f:
                cards[(name, label)] = json.load(f)
        else:
            cards[(name, label)] = export_run(
                run_dir, folder, overwrite=True, raw_uint8=raw, max_test_examples=MAX_TEST,
                latency_runs=RUNS_PER_LATENCY,
                formats=("float32", "int8") if SMOKE else ("saved_model", "float32", "int8")
                if raw else ("saved_model", "float32", "float16", "dynamic_range", "int8"))
    print(f"{name}: {100 * records[name]['test_accuracy']:.2f}% test accuracy after "
          f"{records[name]['recipe']['epochs']} epochs")

# %%
rows = ["| model | variant | input | size | vs float32 | accuracy | drop | agreement "
        "| 1 thread | 2 threads |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
points = []
for name in MODELS:
    for label in ("export", "export_uint8"):
        for a in cards[(name, label)]["artifacts"]:
            if a["format"] == "saved_model":
                continue
            lt = a["latency_threads"]
            variant = a["format"].replace("tflite_", "") + (" (uint8 in)" if label != "export" else "")
            rows.append(
                f"| {name} | {variant} | {a['input_dtype']} | {a['size_bytes'] / 1024:,.0f} KiB | "
                f"{100 * a['size_vs_float32']:.0f}% | {100 * a['accuracy']:.2f}% | "
                f"{a['accuracy_drop_points']:+.2f} | {100 * a['top1_agreement']:.2f}% | "
                f"{lt['1']:.3f} ms | {lt['2']:.3f} ms |")
            if label == "export":
                points.append((name, variant, a["size_bytes"] / 1024, 100 * a["accuracy"],
                               lt["1"]))
display(Markdown("\n".join(rows)))
for name in MODELS:
    for note in cards[(name, "export")].get("notes", []):
        print(f"{name}: {note}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
markers = {"mobilenet_v2_035": "o", "efficientnet_b0": "s"}
for name, variant, size, accuracy, latency in points:
    axes[0].scatter(size, accuracy, marker=markers[name], s=60)
    axes[0].annotate(f"{name.split('_')[0]} {variant}", (size, accuracy), fontsize=8,
                     xytext=(4, 3), textcoords="offset points")
axes[0].set_xscale("log")
axes[0].set_xlabel("file size (KiB, log scale)")
axes[0].set_ylabel("test accuracy (%)")
axes[0].set_title("Size against accuracy, CIFAR-10 test set")
labels = [f"{n.split('_')[0]}\n{v}" for n, v, *_ in points]
axes[1].bar(range(len(points)), [p[4] for p in points],
            color=["C0" if p[0] == MODELS[0] else "C1" for p in points])
axes[1].set_xticks(range(len(points)), labels, fontsize=7)
axes[1].set_ylabel("ms per image, batch 1, 1 thread")
axes[1].set_title("LiteRT latency")
plt.tight_layout()
plt.show()

# %% [markdown]
# Keras beside LiteRT, timed in one run (`kerasdl bench RUN_DIR` prints the same table):
# Keras `predict` pays its per-call overhead, a compiled Keras call less of it, and the
# LiteRT interpreter almost none at batch 1.

# %%
bench = benchmark(os.path.join(RUNS, MODELS[0]), threads=(1, 2), runs=RUNS_PER_LATENCY,
                  verbose=False)
rows = ["| artifact | threads | latency | vs compiled Keras call |", "|---|---|---:|---:|"]
for row in bench:
    ratio = row.get("vs_keras_compiled")
    rows.append(f"| {row['artifact']} | {row.get('threads') or 'all'} | "
                f"{row['latency_ms']:.3f} ms | {'-' if ratio is None else f'{ratio:.3g}x'} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## 4. As a phone runs it
#
# A phone app decodes a camera frame or an image file into bytes and hands them to the
# interpreter. The `uint8` int8 file takes exactly that; its labels travel inside the
# file. Here eight CIFAR-10 test images are written as PNG files and classified by
# `kerasdl.export.predict_images` (what `kerasdl predict FILE IMAGE...` prints).

# %%
cifar = load_image_classification("cifar10", validation_fraction=0.0,
                                  max_examples=600 if SMOKE else None)
test_x, test_y = cifar.arrays("test")
phone_dir = os.path.join(OUTPUT_ROOT, "ch09_phone_images")
os.makedirs(phone_dir, exist_ok=True)
picks = np.random.default_rng(9).choice(len(test_x), 8, replace=False)
paths = []
for i in picks:
    path = os.path.join(phone_dir, f"test_{i:05d}.png")
    keras.utils.save_img(path, test_x[i].astype("uint8"), scale=False)
    paths.append(path)
artifact = os.path.join(RUNS, MODELS[0], "export_uint8", f"{MODELS[0]}_int8.tflite")
print(f"labels stored in the file: {read_labels(artifact)}")
predictions = predict_images(artifact, paths, top=2)
fig, axes = plt.subplots(1, 8, figsize=(16, 2.6))
for ax, i, pairs in zip(axes, picks, predictions):
    ax.imshow(test_x[i].astype("uint8"))
    truth = cifar.class_names[int(test_y[i])]
    (label, p), _ = pairs
    ax.set_title(f"{label} {100 * p:.0f}%\n(true: {truth})", fontsize=9,
                 color="green" if label == truth else "red")
    ax.axis("off")
plt.tight_layout()
plt.show()
