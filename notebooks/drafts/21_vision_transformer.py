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
# # Chapter 21 — The Vision Transformer
#
# DRAFT (issue 18): not yet executed on its real runs; it moves to `notebooks/` when it is.
#
# Dosovitskiy et al. (2021) took the Transformer encoder of BERT almost unchanged and fed
# it an image: cut into 16x16 patches, each patch flattened and projected to a vector, the
# sequence of vectors treated like the tokens of a sentence. Nothing in the model says
# that neighbouring pixels belong together or that a cat is still a cat one pixel to the
# left. A convolutional network has both assumptions built in: *locality* (each filter
# sees a small window) and *translation equivariance* (the same filter slides
# everywhere). The ViT has to learn them from data. On ImageNet alone it trails a ResNet
# of similar size; pre-trained on 300 million images it beats it. This is the
# *data-hunger* of the ViT.
#
# 1. An image as a sequence of patches; the patch embedding as a strided convolution.
# 2. Where ViT-B/16's 86.6 million parameters are, by formula and by the built model.
# 3. The data-hunger experiment: a small ViT against a small ResNet on CIFAR-10 with
#    5,000, 15,000 and 50,000 training images.
# 4. What the trained ViT learned: its position embeddings, and how far each attention
#    head looks.

# %%
import json
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
from kerasdl.data import load_image_classification
from kerasdl.models.transformer.vit import num_patches, vit_count
from kerasdl.registry import model_info
from kerasdl.train import evaluate, get_recipe, load_run, train
from kerasdl.train.runs import is_finished_run
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
RUNS_DIR = os.path.join(OUTPUT_ROOT, "ch21_vit")
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. An image is a sequence of patches
#
# kerasdl's `vit_cifar` is ViT-Lite-7/4 (Hassani et al. 2021): 7 encoder layers, width
# 256, 4 heads, and 4x4 patches, so a 32x32 CIFAR-10 image becomes a grid of 8x8 = 64
# patches of 4 x 4 x 3 = 48 numbers each. The model reads them in raster order, left to
# right and top to bottom, like words in a line of text.

# %%
data = load_image_classification("cifar10", validation_fraction=0.0, max_examples=256)
images, labels = data.arrays("test")
PATCH = model_info("vit_cifar").config.patch_size
GRID = images.shape[1] // PATCH

image = images[7]
fig = plt.figure(figsize=(12, 4.2))
ax = fig.add_axes([0.0, 0.05, 0.28, 0.85])
ax.imshow(image / 255.0)
for k in range(1, GRID):
    ax.axhline(k * PATCH - 0.5, color="white", lw=1)
    ax.axvline(k * PATCH - 0.5, color="white", lw=1)
ax.set_title(f"a CIFAR-10 {data.class_names[labels[7]]}, {GRID}x{GRID} patches of "
             f"{PATCH}x{PATCH}")
ax.axis("off")
# The same patches as a sequence: 4 rows of 16, with a 1-pixel gap between patches.
patches = image.reshape(GRID, PATCH, GRID, PATCH, 3).transpose(0, 2, 1, 3, 4)
patches = patches.reshape(GRID * GRID, PATCH, PATCH, 3)
rows, per_row = 4, GRID * GRID // 4
strip = np.ones((rows * (PATCH + 1), per_row * (PATCH + 1), 3))
for i, patch in enumerate(patches):
    r, c = divmod(i, per_row)
    strip[r * (PATCH + 1):r * (PATCH + 1) + PATCH, c * (PATCH + 1):c * (PATCH + 1) + PATCH] = \
        patch / 255.0
ax = fig.add_axes([0.38, 0.05, 0.61, 0.85])
ax.imshow(strip)
ax.set_yticks([r * (PATCH + 1) + PATCH / 2 - 0.5 for r in range(rows)])
ax.set_yticklabels([f"patches {r * per_row + 1}-{(r + 1) * per_row}" for r in range(rows)])
ax.tick_params(length=0)
ax.set_xticks([])
for spine in ax.spines.values():
    spine.set_visible(False)
ax.set_title("the same 64 patches in reading order: the sequence the Transformer sees")
plt.show()

# %% [markdown]
# ### The patch embedding is a strided convolution
#
# The paper flattens each patch and multiplies it by a learned matrix `E` (48 x 256 here).
# A `Conv2D` with a 4x4 kernel and a stride of 4 computes exactly that: its windows do not
# overlap, and each output position is the dot product of one patch with each of the 256
# filters. kerasdl builds it so (`patch_embedding`). Below, the two computations agree on
# real images up to float32 rounding.
#
# The model then puts a learned **class token** in front of the 64 patch vectors (its
# output after the last layer is what the classifier reads, as BERT's `[CLS]`), and adds
# one learned **position embedding** per position, 65 in all. Without them the encoder
# would see a bag of patches: self-attention does not care about the order of its inputs.

# %%
keras.utils.set_random_seed(0)
fresh_vit = kerasdl.create_model("vit_cifar")
scaled = np.asarray(fresh_vit.get_layer("input_scaling")(images[:8]))
conv = fresh_vit.get_layer("patch_embedding")
kernel, bias = conv.get_weights()  # kernel: [4, 4, 3, 256]
width = kernel.shape[-1]
flat = scaled.reshape(8, GRID, PATCH, GRID, PATCH, 3).transpose(0, 1, 3, 2, 4, 5)
flat = flat.reshape(8, GRID * GRID, PATCH * PATCH * 3)          # [images, 64, 48]
by_matrix = flat @ kernel.reshape(-1, width) + bias              # patches x E
by_conv = np.asarray(conv(scaled)).reshape(8, GRID * GRID, width)
print(f"patches as a matrix: {flat.shape}; E: {kernel.reshape(-1, width).shape}; "
      f"largest difference, flatten-and-multiply vs Conv2D: {np.abs(by_matrix - by_conv).max():.1e}")

stages = ["patch_embedding", "patch_sequence", "class_token", "position_embeddings",
          "encoder1_ffn_residual", "class_token_output", "predictions"]
probe = keras.Model(fresh_vit.input, [fresh_vit.get_layer(n).output for n in stages])
rows = ["| layer | output shape | what it holds |", "|---|---|---|"]
meaning = ["one 256-vector per patch, still on the 8x8 grid", "the grid read as a sequence",
           "class token in front", "plus one learned vector per position",
           "after the first encoder block (same shape through all 7)",
           "the class token's output", "class scores (logits)"]
for name, out, what in zip(stages, probe(images[:2]), meaning):
    rows.append(f"| `{name}` | `{tuple(out.shape)}` | {what} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## 2. Where ViT-B/16's parameters are
#
# With width `D`, MLP size `M`, `L` layers, patch side `P`, `C` input channels, `N`
# patches and `K` classes, the parameters add up as below (every dense layer has a
# bias; a LayerNorm has a scale and an offset per feature). The formula is evaluated
# for the registered `vit_b16` (ViT-B/16 at 224x224, 1,000 classes) and `vit_cifar`, and
# each group is checked against the layers of the built models.

# %%
def vit_groups(config, input_shape, classes):
    """ViT parameters by component, by formula."""
    d, m, p, c = config.hidden, config.mlp_dim, config.patch_size, input_shape[2]
    n = num_patches(input_shape, p)
    return {
        "patch embedding": p * p * c * d + d,
        "class token": d,
        "position embeddings": (n + 1) * d,
        "one block: 2 LayerNorms": 2 * 2 * d,
        "one block: attention Q, K, V, output": 4 * (d * d + d),
        "one block: MLP": d * m + m + m * d + d,
        "all blocks": config.layers * (4 * d + 4 * (d * d + d) + 2 * d * m + m + d),
        "final LayerNorm": 2 * d,
        "head": d * classes + classes,
    }


def measured_groups(model):
    """The same groups, summed from the built model's layers."""
    counts = {layer.name: layer.count_params() for layer in model.layers}
    block1 = {k: v for k, v in counts.items() if k.startswith("encoder1_")}
    return {
        "patch embedding": counts["patch_embedding"],
        "class token": counts["class_token"],
        "position embeddings": counts["position_embeddings"],
        "one block: 2 LayerNorms": sum(v for k, v in block1.items() if k.endswith("_norm")),
        "one block: attention Q, K, V, output": block1["encoder1_self_attention"],
        "one block: MLP": block1["encoder1_ffn_inner"] + block1["encoder1_ffn_outer"],
        "all blocks": sum(v for k, v in counts.items() if k.startswith("encoder")),
        "final LayerNorm": counts["final_norm"],
        "head": counts["predictions"],
    }


FORMULAS = {"patch embedding": "P²·C·D + D", "class token": "D",
            "position embeddings": "(N + 1)·D", "one block: 2 LayerNorms": "2·2D",
            "one block: attention Q, K, V, output": "4·(D² + D)",
            "one block: MLP": "D·M + M + M·D + D", "all blocks": "L x one block",
            "final LayerNorm": "2D", "head": "D·K + K"}
columns = {}
for name in ("vit_b16", "vit_cifar"):
    info = model_info(name)
    model = kerasdl.create_model(name)
    shape, classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    by_formula = vit_groups(info.config, shape, classes)
    assert by_formula == measured_groups(model), name
    top_level = ("patch embedding", "class token", "position embeddings", "all blocks",
                 "final LayerNorm", "head")
    total = sum(by_formula[k] for k in top_level)
    assert total == model.count_params() == vit_count(info.config, shape, classes)
    columns[name] = (by_formula, total, model.count_params())
    del model


def share(part, total):
    percent = 100 * part / total
    return f"{percent:.1f}%" if percent >= 1 else f"{percent:.2g}%"


rows = ["| component | formula | `vit_b16` | share | `vit_cifar` | share |",
        "|---|---|---:|---:|---:|---:|"]
for key, formula in FORMULAS.items():
    cells = [f"{columns[n][0][key]:,} | {share(columns[n][0][key], columns[n][1])}"
             for n in columns]
    rows.append(f"| {key} | {formula} | " + " | ".join(cells) + " |")
rows.append("| **total** (formula) | | " + " | ".join(f"**{columns[n][1]:,}** | 100%"
                                                     for n in columns) + " |")
rows.append("| `count_params()` of the built model | | " +
            " | ".join(f"{columns[n][2]:,} | " for n in columns) + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Every group matches the built models (the `assert`s above), and `vit_b16`'s total is the
# 86,567,656 of the released ViT-B/16 with a 1,000-class head. Nearly all of it sits in
# the encoder blocks. In ViT-B/16 two thirds of each block is the MLP (4D wide) and one
# third the attention projections; ViT-Lite's MLP is only 2D wide, so there the two are
# about equal. The parts that make the model *see* — the patch embedding and the
# positions — are well under 1%, and nothing in them is specific to images except the
# patch size.

# %% [markdown]
# ## 3. The data-hunger experiment
#
# **Question.** A CNN knows in advance that nearby pixels go together and that a pattern
# means the same thing anywhere in the image. A ViT must learn both from examples. So
# with few images the CNN should win clearly, and the gap should shrink as the training
# set grows.
#
# **Set-up.** `vit_cifar` (ViT-Lite-7/4) against `resnet20` (He et al.'s CIFAR ResNet-20),
# a CNN with over ten times fewer parameters, each trained on the first 5,000, 15,000
# and 50,000 CIFAR-10 training images. Each network keeps its own registered recipe
# (ResNet-20: SGD 0.1 with Nesterov momentum; ViT: AdamW 5e-4, weight decay 0.03; both
# batch 128, cosine decay, 4-pixel shifts and flips) with the **same short budget of
# epochs** at every size. Every model is tested on all 10,000 CIFAR-10 test images.
#
# **Budget.** The registered recipes run 60 (ResNet-20) and 100 (ViT) epochs; on this
# 2-core CPU that is out of reach for six runs. One epoch over 50,000 images costs
# ResNet-20 about 3 minutes, and the ViT about six times as long (its 0.25 GMACs per
# image against ResNet-20's 0.04, as the table below shows). The three sizes add up to
# 1.4 passes over the full set per epoch, so 6 epochs cost about 1.4 x 6 x (3 + 19)
# minutes, some 3 hours in all. The ViT's warm-up is cut from 5 epochs to 1, as
# ResNet-20's. Finished runs are reused, so the notebook can be run across sessions.
#
# A fixed number of epochs is also a fixed number of *passes over the data*: the
# 5,000-image runs take a tenth of the optimiser steps of the 50,000-image ones. Both
# networks get the same treatment, but a short budget favours whichever model learns
# faster per step, so the per-epoch test curves are shown too: a run still climbing at
# its last epoch was stopped by the budget, not by its data.

# %%
NETS = ("resnet20", "vit_cifar")
SIZES = (128,) if SMOKE else (5_000, 15_000, 50_000)
EPOCHS = 1 if SMOKE else 6
TEST_IMAGES = 256 if SMOKE else 10_000


def recipe_for(name):
    return get_recipe(name).replace(epochs=EPOCHS, warmup_epochs=1.0)


def vit_macs(config, input_shape, classes):
    """ViT multiply-accumulates per image, counted by hand: ``(dense, attention)``.
    ``dense`` is the patch projection, the MLPs and the head; ``attention`` the Q, K, V
    and output projections and the two products with the T x T attention matrix."""
    d, m, p, c = config.hidden, config.mlp_dim, config.patch_size, input_shape[2]
    n = num_patches(input_shape, p)
    t = n + 1
    dense = n * p * p * c * d + config.layers * 2 * t * d * m + d * classes
    attention = config.layers * (4 * t * d * d + 2 * t * t * d)
    return dense, attention


macs = {}
for name in NETS:
    model = kerasdl.create_model(name)
    macs[name] = summarize(model)["macs"]
    if name.startswith("vit"):
        info = model_info(name)
        dense, attention = vit_macs(info.config, tuple(model.input_shape[1:]),
                                    model.output_shape[-1])
        assert dense + attention == macs[name], (dense, attention, macs[name])
        print(f"{name}: {macs[name] / 1e9:.3f} GMACs by kerasdl.analysis.summarize, as "
              f"counted by hand: {dense / 1e9:.3f} in the patch projection, MLPs and head, "
              f"{attention / 1e9:.3f} in attention.")
    del model

# %%
def run_dir(name, n):
    return os.path.join(RUNS_DIR, f"{name}_{n}")


def training_seconds(history, n):
    """Seconds spent in training steps, summed over all epochs (all sessions)."""
    return float(sum(n / s for s in history["examples_per_second"]))


results = {}
for n in SIZES:
    for name in NETS:
        folder = run_dir(name, n)
        if SMOKE or not is_finished_run(folder):
            train(name, "cifar10", output_dir=folder, recipe=recipe_for(name),
                  max_examples=n, overwrite=SMOKE, verbose=0)
        _, record = load_run(folder)
        # max_examples caps every split, the test split too: a run on fewer than 10,000
        # images was tested on that many. Test it again on the whole test split.
        if record["num_examples"]["test"] >= TEST_IMAGES:
            accuracy = record["test_accuracy"]
        else:
            accuracy = evaluate(folder, max_examples=256 if SMOKE else None)["test_accuracy"]
        with open(os.path.join(folder, "history.json")) as f:
            history = json.load(f)
        results[name, n] = {"record": record, "history": history, "test_accuracy": accuracy,
                            "seconds": training_seconds(history, n)}

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for name, marker in zip(NETS, ("o", "s")):
    axes[0].plot(SIZES, [100 * results[name, n]["test_accuracy"] for n in SIZES],
                 marker=marker, label=name)
axes[0].set_xscale("log")
axes[0].set_xticks(SIZES)
axes[0].set_xticklabels([f"{n:,}" for n in SIZES])
axes[0].set_xlabel("CIFAR-10 training images")
axes[0].set_ylabel(f"test accuracy, % ({TEST_IMAGES:,} images)")
axes[0].set_title(f"Test accuracy after {EPOCHS} epoch{'s' if EPOCHS > 1 else ''}")
for name, style in zip(NETS, ("-", "--")):
    for n, color in zip(SIZES, plt.cm.viridis(np.linspace(0, 0.8, len(SIZES)))):
        curve = 100 * np.asarray(results[name, n]["history"]["test_accuracy"])
        axes[1].plot(np.arange(1, len(curve) + 1), curve, style, marker=".", color=color,
                     label=f"{name}, {n:,}")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("test accuracy, %")
axes[1].set_title("Per-epoch test curves (runs on n < 10,000 images: first n test images)")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

rows = ["| network | parameters | GMACs per image | training images | epochs | "
        "training seconds | test accuracy |", "|---|---:|---:|---:|---:|---:|---:|"]
for n in SIZES:
    for name in NETS:
        r = results[name, n]
        rows.append(f"| `{name}` | {r['record']['parameters']:,} | {macs[name] / 1e9:.3f} | "
                    f"{n:,} | {len(r['history']['loss'])} | {r['seconds']:,.0f} | "
                    f"{100 * r['test_accuracy']:.2f}% |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## 4. What the ViT learned
#
# The rest of the chapter looks inside the ViT trained on the largest set.
#
# ### Position embeddings
#
# Nothing tells the model that position 10 is next to position 11 and above position 19:
# the 64 patch positions start as independent random vectors. After training, the
# cosine similarity between one position's embedding and all the others shows what it
# has worked out. Each small map below is one patch position (the red square), and its
# pixels are that position's similarity to each of the 64 positions, laid out on the
# image grid (Dosovitskiy et al., Fig. 7 centre). The class token's embedding is left out.

# %%
vit, _ = load_run(run_dir("vit_cifar", SIZES[-1]))
table = np.asarray(vit.get_layer("position_embeddings").embeddings)[1:]   # [64, 256]
unit = table / np.linalg.norm(table, axis=1, keepdims=True)
similarity = unit @ unit.T

fig, axes = plt.subplots(GRID, GRID, figsize=(8, 7.4), gridspec_kw={"wspace": 0.08,
                                                                     "hspace": 0.08})
for i, ax in enumerate(axes.ravel()):
    picture = ax.imshow(similarity[i].reshape(GRID, GRID), cmap="viridis", vmin=-1, vmax=1)
    r, c = divmod(i, GRID)
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="red", lw=1))
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Cosine similarity of the position embeddings (vit_cifar, {SIZES[-1]:,} images)")
fig.colorbar(picture, ax=axes, shrink=0.6, label="cosine similarity")
plt.show()

# %% [markdown]
# If the model has learned the image's geometry, each map is bright around its own
# square and fades with distance, and positions in the same row or column look alike.
#
# ### How far each head looks: mean attention distance
#
# For each head of each layer, we take its attention weights on a batch of test images
# and average, over queries, the distance in pixels between the query patch and the
# patches it attends to, weighted by the attention (Dosovitskiy et al., Fig. 7 right).
# The class token is left out on both sides and each query's weights over the 64 patches
# are renormalised to sum to one. A small distance means a local, convolution-like head;
# a head that attends evenly to the whole image sits at the dashed line (the mean
# distance between two patch centres). The untrained model is shown for reference.
#
# The weights come from the model's own `MultiHeadAttention` layers: a probe model
# returns each block's normalised input, and each layer is then called eagerly on it
# with `return_attention_scores=True`. (Asking for the scores inside a new functional
# model does not work in Keras 3.15: a second symbolic call of an attention layer that
# was already called gives a scores tensor the new model cannot connect to its input.)

# %%
def attention_maps(model, x):
    """``[layers, images, heads, tokens, tokens]`` attention weights of a ViT on ``x``."""
    depth = sum(1 for layer in model.layers if layer.name.endswith("_self_attention")
                and isinstance(layer, keras.layers.MultiHeadAttention))
    names = [f"encoder{i}_self_attention" for i in range(1, depth + 1)]
    inputs = keras.Model(model.input, [model.get_layer(f"{n}_norm").output for n in names])
    maps = []
    for name, h in zip(names, inputs(x, training=False)):
        _, scores = model.get_layer(name)(h, h, return_attention_scores=True, training=False)
        maps.append(np.asarray(scores))
    return np.stack(maps)


centres = PATCH * np.stack(np.divmod(np.arange(GRID * GRID), GRID), axis=1) + PATCH / 2
distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)   # pixels, [64, 64]


def mean_attention_distance(maps):
    """``[layers, heads]`` mean distance in pixels, class token left out."""
    weights = maps[..., 1:, 1:]
    weights = weights / weights.sum(-1, keepdims=True)
    return (weights * distance).sum(-1).mean(axis=(1, 3))


probe_images = images[:64 if SMOKE else 256]
fig, ax = plt.subplots(figsize=(7, 4.2))
for model, label, color in ((fresh_vit, "untrained", "grey"),
                            (vit, f"trained on {SIZES[-1]:,} images", "tab:blue")):
    mad = mean_attention_distance(attention_maps(model, probe_images))
    layers = np.repeat(np.arange(1, mad.shape[0] + 1), mad.shape[1])
    offsets = np.tile(np.linspace(-0.12, 0.12, mad.shape[1]), mad.shape[0])
    ax.scatter(layers + offsets, mad.ravel(), color=color, s=22, label=label)
ax.axhline(distance.mean(), ls="--", color="black", lw=1,
           label="attending evenly to the whole image")
ax.set_xlabel("layer (one dot per head)")
ax.set_ylabel("mean attention distance, pixels")
ax.set_ylim(0, None)
ax.set_title(f"How far each head looks, {len(probe_images)} CIFAR-10 test images")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# In the paper's large models trained on large data, some heads of the lowest layers
# attend locally, as a convolution would, while others already look across the whole
# image; the distances grow with depth. Here the image is only 8 patches wide, so a
# "local" head is one whose distance stays well below the dashed line.

# %% [markdown]
# Conclusions: written after the real runs.
