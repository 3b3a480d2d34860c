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
# # Chapter 06 — CNN architectures from LeNet to DenseNet
#
# Between 1998 and 2017 image classifiers went from 60 thousand parameters to tens of
# millions, from 5 weighted layers to more than 200, and from 1.2% error on handwritten
# digits to around 20% top-1 error on the 1000 ImageNet classes. This chapter puts the
# classic architectures side by side as kerasdl builds them, and asks three questions:
#
# 1. **What does each network cost?** Parameters, multiply-accumulates (MACs) per image,
#    depth in weighted layers and receptive field, all measured on the built Keras models.
# 2. **What did the extra cost buy?** The ImageNet accuracy each paper published, against
#    the computation we measured.
# 3. **Which ideas made the difference?** The building blocks, one at a time, with their
#    parameter counts, and a short real training run on CIFAR-10 that compares a plain
#    deep network with its residual twin.
#
# Every model here comes from `kerasdl.create_model(name)`; the registry holds the paper
# each one follows and the reference parameter counts the test suite checks.

# %%
import gc
import logging
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import kerasdl
from kerasdl.analysis import summarize
from kerasdl.train import get_recipe, load_run, train

from kerasdl.workflows import notebook_settings

# KERASDL_SMOKE=1: a tiny, fast run (used by the tests) into a temporary folder;
# otherwise the real thing, in the repository's saved_models/ (or KERASDL_OUTPUT).
SMOKE, OUTPUT_ROOT = notebook_settings()
RUNS_DIR = os.path.join(OUTPUT_ROOT, "ch06_cifar10")

print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")
print(f"runs folder: {RUNS_DIR}")

# %% [markdown]
# ## 1. The zoo at a glance
#
# For each network we build the model at its paper's input size and count:
#
# * **parameters**: every weight, including BatchNorm's moving statistics;
# * **GMACs**: billions of multiply-accumulates for one image in a forward pass, counted
#   from the layers (convolutions and dense layers; additions, activations, pooling and
#   BatchNorm are left out, as the papers count them);
# * **depth**: convolution and dense layers (for ResNets this also counts the 1x1
#   projection shortcuts, which the papers leave out of "50 layers");
# * **receptive field**: how many input pixels one unit of the last feature map can see,
#   following the largest path through the graph. Once it passes the image size every
#   unit can, in principle, see the whole image.

# %%
ZOO = [
    "lenet5", "alexnet", "zfnet", "vgg11", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_v2",
    "resnext50_32x4d", "se_resnet50", "densenet121", "densenet169", "densenet201",
    "xception", "inception_resnet_v2",
]
if SMOKE:
    ZOO = ["lenet5", "googlenet", "resnet18"]
ZOO = [name for name in ZOO if kerasdl.is_model(name)]

rows = {}
for name in ZOO:
    model = kerasdl.create_model(name)
    s = summarize(model)
    field = s["receptive_field"]
    rows[name] = {
        "input": "x".join(str(d) for d in model.input_shape[1:3]),
        "params": s["parameters"],
        "gmacs": s["macs"] / 1e9,
        "depth": s["depth"],
        "field": field.size[0] if field is not None else None,
    }
    del model
    keras.backend.clear_session()
    gc.collect()

table = ["| model | paper | input | parameters | GMACs | depth | receptive field |",
         "|---|---|---|---:|---:|---:|---:|"]
for name, r in rows.items():
    paper = kerasdl.model_info(name).paper
    table.append(f"| `{name}` | {paper} | {r['input']} | {r['params']:,} | {r['gmacs']:.3g} | "
                 f"{r['depth']} | {r['field'] if r['field'] is not None else '-'} |")
display(Markdown("\n".join(table)))

# %% [markdown]
# A few things stand out:
#
# * **Parameters are not computation.** AlexNet and VGG keep most of their parameters in
#   the fully connected layers at the end (VGG-16: about 124 of its 138 million), which
#   cost little computation; their convolutions, with few parameters, do almost all the
#   multiply-accumulates. GoogLeNet dropped the big FC layers for global average pooling
#   and has 20 times fewer parameters than VGG-16 for a tenth of its computation.
# * **Depth grew cheaply once blocks got narrow.** ResNet-50 has more than three times the
#   depth of VGG-16 with a quarter of its MACs, because its bottleneck blocks do their
#   3x3 convolutions on 4 times fewer channels than they output.
# * **Receptive fields outgrow the image.** After a few stages every unit of the last map
#   can see far more than 224 pixels; what the network actually *uses* (the effective
#   receptive field) is much smaller and concentrated in the centre, but depth gives it
#   the possibility.

# %% [markdown]
# ## 2. Accuracy against computation
#
# The papers report ImageNet (ILSVRC-2012 validation) top-1 error. The numbers below are
# the ones they published, copied with the table they come from; they were measured
# with different protocols (one centre crop, or the average over 10 crops, which is worth
# roughly one point), so the comparison is rough. GoogLeNet's paper reports only top-5
# error and ZFNet's mixes settings, so they are left out of the chart.

# %%
PUBLISHED_TOP1_ERROR = {
    # model: (top-1 error %, protocol, where)
    "alexnet": (40.7, "1 model, 10 crops", "Krizhevsky et al. 2012, Table 2 (1 CNN)"),
    "vgg11": (29.6, "1 scale", "Simonyan & Zisserman 2015, Table 3 (A)"),
    "vgg16": (25.6, "1 scale", "Simonyan & Zisserman 2015, Table 3 (D, jittered training)"),
    "vgg19": (25.5, "1 scale", "Simonyan & Zisserman 2015, Table 3 (E, jittered training)"),
    "resnet34": (24.52, "10 crops", "He et al. 2016, Table 3 (ResNet-34 B)"),
    "resnet50": (22.85, "10 crops", "He et al. 2016, Table 3"),
    "resnet101": (21.75, "10 crops", "He et al. 2016, Table 3"),
    "resnet152": (21.43, "10 crops", "He et al. 2016, Table 3"),
    "resnext50_32x4d": (22.2, "1 crop", "Xie et al. 2017, Table 3"),
    "se_resnet50": (23.29, "1 crop", "Hu et al. 2018, Table 2"),
    "densenet121": (25.02, "1 crop", "Huang et al. 2017, Table 3"),
    "densenet169": (23.80, "1 crop", "Huang et al. 2017, Table 3"),
    "densenet201": (22.58, "1 crop", "Huang et al. 2017, Table 3"),
    "xception": (21.0, "1 crop", "Chollet 2017, Table 1 (top-1 accuracy 0.790)"),
    "inception_resnet_v2": (19.9, "1 crop", "Szegedy et al. 2017, Table 2"),
}

fig, ax = plt.subplots(figsize=(9, 5.5))
markers = {"1 crop": "o", "10 crops": "s", "1 scale": "^", "1 model, 10 crops": "s"}
for name, (error, protocol, _) in PUBLISHED_TOP1_ERROR.items():
    if name not in rows:
        continue
    x, y = rows[name]["gmacs"], 100 - error
    size = 20 + rows[name]["params"] / 1e6 * 3
    ax.scatter(x, y, s=size, marker=markers[protocol], alpha=0.6)
    ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 3), fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("GMACs per 224x224 image (299x299 for xception, inception_resnet_v2; log scale)")
ax.set_ylabel("ImageNet top-1 accuracy, % (as published)")
ax.set_title("Published accuracy vs computation we measured (marker area ~ parameters)")
for protocol, marker in {"1 crop": "o", "10 crops": "s", "1 scale": "^"}.items():
    ax.scatter([], [], marker=marker, color="grey", label=protocol)
ax.legend(title="evaluation", loc="lower right")
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

display(Markdown("\n".join(
    ["| model | top-1 error (published) | evaluation | source |", "|---|---:|---|---|"]
    + [f"| `{n}` | {e}% | {p} | {src} |" for n, (e, p, src) in PUBLISHED_TOP1_ERROR.items()])))

# %% [markdown]
# The chart tells the chapter's story in one picture. VGG-16 bought its 15 points over
# AlexNet with about 14 times the computation. Everything after VGG is both more accurate
# *and* cheaper: ResNet-50 and DenseNet-121 reach 75-77% with a quarter of VGG-16's MACs
# or less, and Xception and Inception-ResNet-v2 approach 80% at a larger input. The ideas that made
# that possible are few, and the next section builds each of them.

# %% [markdown]
# ## 3. The building blocks
#
# We count the parameters of each block on a 28x28 map with C = 256 channels in and out
# (biases off where the networks use BatchNorm after the convolution).
#
# * **Stacked 3x3 convolutions (VGG).** Two 3x3 layers see a 5x5 window, three see 7x7,
#   with fewer weights than one large kernel and a ReLU between each pair.
# * **1x1 reductions (Network in Network, GoogLeNet).** A 1x1 convolution mixes channels
#   at each position; placed before a 3x3 or 5x5 it shrinks the channels the expensive
#   kernel has to read. An Inception module runs 1x1, 3x3, 5x5 and pooling branches side
#   by side and concatenates them.
# * **Residual connections (ResNet).** A block learns F(x) and outputs F(x) + x: the
#   identity path lets a deep stack start as a shallow one and lets gradients through.
#   The *bottleneck* block (1x1 down by 4, 3x3, 1x1 up) makes depth cheap.
# * **Grouped convolutions (AlexNet's two GPUs, ResNeXt).** 32 groups of 4 channels in the
#   3x3 of a bottleneck: more paths ("cardinality") at the same cost.
# * **Squeeze-and-excitation (SENet).** Global pooling, a small two-layer MLP and a
#   sigmoid re-weight each channel from the whole image's context, for about 1/16 of a
#   block's parameters.
# * **Dense connectivity (DenseNet).** Each layer gets the concatenation of all previous
#   ones and adds only k = 32 new channels, so features are reused instead of relearned.
# * **Depthwise separable convolutions (Xception, MobileNet).** A 3x3 per channel, then a
#   1x1 across channels: nearly 9 times fewer weights than a full 3x3.

# %% [markdown]
# Here is the code kerasdl's builders use for four of these ideas, straight from the
# package: the residual bottleneck (with ResNeXt's groups and SENet's gate as options),
# the squeeze-and-excitation gate, DenseNet's composite layer and GoogLeNet's Inception
# module.

# %%
import inspect

from kerasdl.blocks import (
    apply_basic_block,
    apply_bottleneck_block,
    apply_dense_layer,
    apply_squeeze_excite,
)
from kerasdl.blocks.mobile import apply_squeeze_excite_gate
from kerasdl.models.cnn.googlenet import inception_module

for fn in (apply_bottleneck_block, apply_squeeze_excite, apply_squeeze_excite_gate,
           apply_dense_layer, inception_module):
    print(inspect.getsource(fn))

# %% [markdown]
# Now their cost. Each block below is built with those functions (or plain Keras layers
# for the single convolutions) on a 28x28 map with C = 256 channels in and out, and
# measured with `kerasdl.analysis.summarize` (BatchNorm's four numbers per channel are
# included in the parameters).

# %%
C, SIDE = 256, 28


def conv(filters, k):
    return keras.layers.Conv2D(filters, k, padding="same", use_bias=False)


BLOCKS = [
    ("one 5x5 convolution", lambda x: conv(C, 5)(x)),
    ("two 3x3 convolutions (VGG)", lambda x: conv(C, 3)(keras.layers.ReLU()(conv(C, 3)(x)))),
    # GoogLeNet's 3b row has 256 inputs; here its widths with and without 1x1 reductions.
    ("Inception branches without the 1x1 reductions",
     lambda x: keras.layers.Concatenate()([conv(128, 1)(x), conv(192, 3)(x), conv(96, 5)(x),
                                           conv(64, 1)(keras.layers.MaxPooling2D(3, 1, "same")(x))])),
    ("Inception module 3b (GoogLeNet)", lambda x: inception_module(x, ("3b", 128, 128, 192, 32, 96, 64))),
    ("basic residual block (ResNet-18/34)", lambda x: apply_basic_block(x, C, name="basic")),
    ("bottleneck residual block (ResNet-50)", lambda x: apply_bottleneck_block(x, C // 4, name="bottleneck")),
    ("ResNeXt bottleneck, 32 groups x 4 channels (conv2 of ResNeXt-50 32x4d)",
     lambda x: apply_bottleneck_block(x, C // 4, groups=32, width_per_group=4, name="resnext")),
    ("SE bottleneck (SENet, r = 16)",
     lambda x: apply_bottleneck_block(x, C // 4, se_ratio=16, name="se")),
    ("DenseNet composite layer (k = 32)", lambda x: apply_dense_layer(x, 32, name="dense")),
    ("full 3x3 convolution", lambda x: conv(C, 3)(x)),
    ("depthwise separable 3x3 (Xception)",
     lambda x: keras.layers.SeparableConv2D(C, 3, padding="same", use_bias=False)(x)),
]
lines = ["| block | output channels | parameters | MMACs on 28x28x256 |", "|---|---:|---:|---:|"]
for label, build in BLOCKS:
    inputs = keras.Input((SIDE, SIDE, C))
    outputs = build(inputs)
    s = summarize(keras.Model(inputs, outputs))
    lines.append(f"| {label} | {outputs.shape[-1]} | {s['parameters']:,} | {s['macs'] / 1e6:,.0f} |")
    keras.backend.clear_session()
display(Markdown("\n".join(lines)))

# %% [markdown]
# Read the table in pairs. Two 3x3 layers cost 28% less than one 5x5 for the same window
# (18 C^2 against 25 C^2 weights). The 1x1 reductions cut the Inception module's cost
# almost three times, which is what let GoogLeNet be 22 layers deep on a budget. The
# bottleneck block keeps 256 channels in and out for a sixteenth of the basic block's
# weights; ResNeXt's grouped 3x3 is twice as wide at the same cost, and the SE gate adds
# about 12%. A separable 3x3 is almost nine times cheaper than a full one.

# %% [markdown]
# ## 4. Does depth help? A short run on CIFAR-10
#
# He et al. noticed that a *plain* deep network (no shortcuts) trains to a **higher
# training error** than a shallower one: depth made optimisation harder, not
# generalisation worse ("degradation"). Residual connections removed the problem. Here we
# train four CIFAR-sized networks from this chapter for the same short budget: LeNet-5 on
# colour images, the highway CNN, the 20-layer plain network and ResNet-20. The last three
# use the CIFAR ResNets' recipe (SGD at 0.1 with momentum, cosine decay) cut to a few
# epochs. LeNet-5 keeps its own Adam recipe: with its tanh units and no batch
# normalisation it diverged at SGD's 0.1 in our first try (training accuracy fell to
# chance, 10%, after one epoch), a small lesson of its own about what batch normalisation
# made possible. All four train on the same whole-pixel shifts and flips. The full-length
# ResNet-20 run, and the 56-layer comparison where the plain network really falls behind,
# are the next chapters' long trainings.

# %%
CIFAR_MODELS = {
    "lenet5": {"input_shape": (32, 32, 3)},
    "highway_cnn": {},
    "resnet20_plain": {},
    "resnet20": {},
}
EPOCHS = 1 if SMOKE else 6
MAX_EXAMPLES = 256 if SMOKE else 20_000  # training images per run (test: all 10,000)
if SMOKE:  # the other two take the same code path
    CIFAR_MODELS = {name: CIFAR_MODELS[name] for name in ("lenet5", "resnet20")}


def short_recipe(name):
    base = get_recipe("lenet5" if name == "lenet5" else "resnet20")
    # No validation split: the runs log the test curve instead (for plotting only).
    return base.replace(epochs=EPOCHS, augmentation="cifar", validation_fraction=0.0)


results = {}
for name, model_kwargs in CIFAR_MODELS.items():
    run_dir = os.path.join(RUNS_DIR, name)
    recipe = short_recipe(name)
    print(f"{name}: {recipe.optimizer} lr {recipe.learning_rate}, {recipe.schedule}, "
          f"{EPOCHS} epochs, batch {recipe.batch_size}, augmentation {recipe.augmentation!r}")
    if os.path.isfile(os.path.join(run_dir, "model.keras")) and not SMOKE:
        _, record = load_run(run_dir)
    else:
        record = train(name, "cifar10", output_dir=run_dir, recipe=recipe,
                       max_examples=MAX_EXAMPLES, model_kwargs=model_kwargs or None,
                       overwrite=True, verbose=0)
    results[name] = record

# %%
import json

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
lines = ["| model | parameters | train accuracy (last epoch) | test accuracy | training time |",
         "|---|---:|---:|---:|---:|"]
for name, record in results.items():
    with open(os.path.join(RUNS_DIR, name, "history.json")) as f:
        history = json.load(f)
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes[0].plot(epochs, 100 * (1 - np.array(history["accuracy"])), label=name)
    axes[1].plot(epochs, 100 * (1 - np.array(history["test_accuracy"])), label=name)
    lines.append(f"| `{name}` | {record['parameters']:,} | {100 * history['accuracy'][-1]:.1f}% | "
                 f"{100 * record['test_accuracy']:.2f}% | {record['train_seconds_this_session']:.0f} s |")
for ax, title in zip(axes, ("training error (augmented batches)", "test error")):
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error, %")
    ax.grid(alpha=0.3)
    ax.legend()
plt.tight_layout()
plt.show()
display(Markdown("\n".join(lines)))

# %% [markdown]
# What to look for: with the same 20 layers and the same parameter count, ResNet-20's
# training error falls faster than the plain network's; the difference is the shortcuts
# alone. LeNet-5, with a quarter of ResNet-20's parameters and a third of its depth,
# underfits colour images. The highway CNN's gates cost it three times ResNet-20's
# parameters for no gain here. (Times are wall-clock on a 2-core CPU shared with other
# work, so compare them only roughly.)
#
# ## Summary
#
# * Cost has three faces that move independently: parameters (memory, FC layers),
#   MACs (time, convolutions on large maps) and depth (optimisation difficulty).
# * Accuracy per MAC improved through a handful of ideas: small stacked kernels, 1x1
#   reductions, residual shortcuts, bottlenecks, grouped and separable convolutions,
#   channel attention, feature reuse.
# * Each is a few lines in `kerasdl.blocks` and each builder in `kerasdl.models.cnn` is
#   readable as its paper's table: open the source next to the paper.
