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
# # Chapter 01 — LeNet-5 from the paper to the phone
#
# This chapter follows one network all the way: we read the architecture out of the
# paper, build it with `kerasdl`, check it against the paper parameter by parameter,
# train it on MNIST, look at what it learned and where it fails, and finally export it to
# TFLite files that a phone can run, measuring what each export costs in accuracy, size
# and speed.
#
# ## 1. The network and its input
#
# LeNet-5 is the convolutional network of Yann LeCun, Léon Bottou, Yoshua Bengio and
# Patrick Haffner, *Gradient-Based Learning Applied to Document Recognition*, Proceedings
# of the IEEE 86(11), 1998. It is not the first convolutional network (its ancestors go
# back to the late 1980s), but it is the one that set the pattern every CNN since has
# followed: alternating **convolutions**, which detect local features with shared
# weights, and **subsampling**, which lowers the resolution and makes the features a
# little insensitive to shifts and distortions, ending in a few fully connected layers.
# It was trained end to end by backpropagation, with no hand-designed feature extractor.
#
# **Why 32×32.** The network takes a 32×32 image. The MNIST digits are smaller: each one
# was size-normalised to fit a 20×20 box and centred (by its centre of mass) in a 28×28
# field. The paper deliberately feeds a larger field than the digits need, so that
# distinctive features such as stroke ends and corners can reach the *centre* of the
# receptive fields of the last convolutional detectors, rather than sitting on their
# border. `kerasdl.data` therefore pads every 28×28 MNIST image with two background
# pixels on each side.
#
# **Input scaling.** The paper does not feed pixels in [0, 1]. It maps them linearly so
# that the white background is −0.1 and black ink is 1.175, arguing that this puts the
# input mean near 0 and the variance near 1 and so speeds learning. kerasdl builds this
# scaling into the model as its first layer (`InputScaling`, `input_scaling="lenet"`), so
# the model takes raw pixel values 0..255, and so will every file exported from it. Below
# we look at one digit before and after, and measure the mean and spread on real MNIST
# training images.

# %%
import json
import logging
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no "Assets written to" chatter
# Keras warns that fit's default shuffle=True is ignored for a tf.data pipeline; kerasdl's
# training pipeline shuffles itself, so the warning says nothing here.
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import kerasdl
from kerasdl.augment import plot_augmentations
from kerasdl.data import load_image_classification
from kerasdl.export import TFLiteRunner
from kerasdl.layers.lenet import LENET5_C3_TABLE
from kerasdl.train import get_recipe, load_run, train
from kerasdl.workflows import check_quickstart_targets, export_run, notebook_settings

# KERASDL_SMOKE=1: a tiny, fast run (used by the tests) into a temporary folder;
# otherwise the real thing, in the repository's saved_models/ (or KERASDL_OUTPUT).
SMOKE, OUTPUT_ROOT = notebook_settings()
DATASET = "mnist"
RUN_DIR = os.path.join(OUTPUT_ROOT, "lenet5_mnist")
SMOKE_EXAMPLES = 512  # examples per split in smoke mode

print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")
print(f"run folder: {RUN_DIR}")

# %%
limit = SMOKE_EXAMPLES if SMOKE else None
raw = load_image_classification(DATASET, max_examples=limit)
padded = load_image_classification(DATASET, image_size=(32, 32), max_examples=limit)
# The model's own first layer: raw pixels in, the paper's scaling out.
scaling = kerasdl.create_model("lenet5").get_layer("input_scaling")
print(scaling.spec())
low, high = keras.ops.convert_to_numpy(scaling(np.array([[0.0], [255.0]], "float32"))).ravel()
raw_x, raw_y = raw.arrays("train", limit=1)
lenet_x = keras.ops.convert_to_numpy(scaling(padded.arrays("train", limit=1)[0]))

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, img, title in [
    (axes[0], raw_x[0, ..., 0], f"MNIST as stored: {raw_x.shape[1]}x{raw_x.shape[2]}, 0..255"),
    (axes[1], lenet_x[0, ..., 0],
     f"after padding and InputScaling: {lenet_x.shape[1]}x{lenet_x.shape[2]}, {low:.3g}..{high:.4g}"),
]:
    im = ax.imshow(img, cmap="gray_r")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.suptitle(f"One training digit (label {raw_y[0]}) before and after preprocessing")
plt.tight_layout()
plt.show()

stats_x = keras.ops.convert_to_numpy(scaling(padded.arrays("train", limit=5000)[0]))
input_mean, input_std = float(stats_x.mean()), float(stats_x.std())
print(f"background = {stats_x.min():+.3f}, full ink = {stats_x.max():+.3f}")
print(
    f"over {len(stats_x):,} padded training digits: mean {input_mean:+.3f}, "
    f"std {input_std:.3f} (variance {input_std ** 2:.3f})"
)

# %% [markdown]
# The mean does land close to 0. The variance does not land near 1 on MNIST: most of
# a 32×32 field is background, so almost every pixel sits at −0.1 and the spread is far
# smaller than the paper suggests. The scaling still does its main job, centring the
# inputs, which keeps the scaled-tanh units of C1 in their steep, fast-learning range at
# the start of training.
#
# ## 2. The architecture, layer by layer
#
# `kerasdl.create_model("lenet5")` builds the network as published: C1 (six 5×5
# convolutions), S2 (trainable 2×2 subsampling), C3 (sixteen 5×5 convolutions, each fed
# by only *some* of S2's maps), S4, C5 (120 5×5 convolutions, which on a 5×5 input are a
# fully connected layer), F6 (84 units) and a 10-way output. Every convolutional and
# subsampling layer is followed by the paper's squashing function
# f(a) = 1.7159 · tanh(2a/3).
#
# In the paper, each subsampling unit adds its four inputs, multiplies the sum by a
# trainable coefficient and adds a trainable bias: two parameters per feature map. The
# table below lists every Keras layer with the paper's parameter count next to it.

# %%
model = kerasdl.create_model("lenet5")

# The paper's trainable parameters per layer (Section II-B), by kerasdl layer name.
PAPER_PARAMS = {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164}


def markdown_table(header, rows):
    """A Markdown table from a header list and rows of cells (display only)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


rows = []
for layer in model.layers:
    shape = "×".join(str(d) for d in layer.output.shape[1:])
    params = layer.count_params()
    paper = PAPER_PARAMS.get(layer.name)
    rows.append([
        f"`{layer.name}`",
        type(layer).__name__,
        shape,
        f"{params:,}",
        layer.name.upper() if paper is not None else "",
        f"{paper:,}" if paper is not None else "",
        ("✓" if params == paper else "✗ MISMATCH") if paper is not None else "",
    ])
display(Markdown(markdown_table(
    ["layer", "type", "output shape", "parameters", "paper layer", "paper parameters", "match"],
    rows,
)))

ours_c1_f6 = sum(model.get_layer(name).count_params() for name in PAPER_PARAMS)
paper_c1_f6 = sum(PAPER_PARAMS.values())
output_params = model.get_layer("output").count_params()
mismatches = [n for n, p in PAPER_PARAMS.items() if model.get_layer(n).count_params() != p]
assert not mismatches, f"layers that differ from the paper: {mismatches}"
assert ours_c1_f6 == paper_c1_f6 == 60_000
print(f"C1..F6: kerasdl {ours_c1_f6:,} parameters, paper {paper_c1_f6:,}: every layer matches.")
print(f"Output layer (Dense 84 -> 10, not in the paper's count): {output_params:,}")
print(f"Total: {model.count_params():,}; registry reference: "
      f"{list(kerasdl.model_info('lenet5').reference_params.values())[0]:,}")

# %% [markdown]
# ### C3's partial connections (the paper's Table I)
#
# C3 does not connect every S2 map to every C3 map. The first six C3 maps each see three
# neighbouring S2 maps (counting cyclically, so map 5 neighbours map 0), the next six see
# four neighbouring maps, three more see four maps that are not all neighbours, and the
# last one sees all six. The paper gives two reasons:
# it keeps the number of connections within bounds, and, more importantly, it breaks the
# symmetry of the network, forcing different C3 maps to extract different combinations of
# features. kerasdl implements it with `ConnectionTableConv2D`, which stores only the
# connected 5×5 kernels, so its parameter count is exactly the paper's.

# %%
c3_grid = np.zeros((6, len(LENET5_C3_TABLE)), dtype=int)
for c3_map, s2_maps in enumerate(LENET5_C3_TABLE):
    c3_grid[list(s2_maps), c3_map] = 1
connections = int(c3_grid.sum())

fig, ax = plt.subplots(figsize=(9, 3.6))
ax.imshow(c3_grid, cmap="Blues", vmin=0, vmax=1.6)
for i, j in zip(*np.nonzero(c3_grid)):
    ax.text(j, i, "X", ha="center", va="center", fontsize=11, fontweight="bold")
ax.set_xticks(range(c3_grid.shape[1]))
ax.set_yticks(range(c3_grid.shape[0]))
ax.set_xticks(np.arange(-0.5, c3_grid.shape[1]), minor=True)
ax.set_yticks(np.arange(-0.5, c3_grid.shape[0]), minor=True)
ax.grid(which="minor", color="0.6", linewidth=0.8)
ax.tick_params(which="minor", length=0)
ax.set_xlabel("C3 feature map")
ax.set_ylabel("S2 feature map")
ax.set_title(f"C3 connection table: {connections} of {c3_grid.size} possible connections")
plt.tight_layout()
plt.show()

c3_expected = connections * 5 * 5 + len(LENET5_C3_TABLE)
assert model.get_layer("c3").count_params() == c3_expected
print(f"{connections} connected 5x5 kernels x 25 weights + {len(LENET5_C3_TABLE)} biases "
      f"= {c3_expected:,} parameters (a fully connected C3 would have {6 * 16 * 25 + 16:,})")

# %% [markdown]
# ### What kerasdl changes, and why
#
# * **Output layer.** The paper's output is ten Euclidean radial basis function (RBF)
#   units. Each computes the squared distance between F6's 84 activations and a fixed
#   84-dimensional target, a ±1 code drawn by hand as a 7×12 bitmap of the character; the
#   class with the smallest distance wins, and training minimises a MAP-style criterion
#   built on those distances. The bitmaps are not available in usable form, and every
#   kerasdl classifier returns logits, so kerasdl replaces the RBF layer with a trainable
#   `Dense(10)` producing logits (the 850 parameters above), trained with softmax
#   cross-entropy. This is why the total is 60,850 rather than the paper's 60,000.
# * **Initialisation.** The paper draws weights uniformly from ±2.4/F, F being a unit's
#   fan-in. kerasdl's hidden layers use LeCun uniform, ±√(3/F), which gives the weights a
#   variance of 1/F: the rule of LeCun et al.'s *Efficient BackProp* (also 1998), under
#   which a unit's summed input keeps roughly unit variance. Both depend only on the
#   fan-in, but the paper's limit shrinks faster (as 1/F rather than 1/√F), so its
#   starting weights are smaller. C3 applies the rule per output map, with each map's
#   own fan-in; the new output layer keeps Keras' default (Glorot uniform).
# * **Everything else is kept:** the 32×32 input, the scaled tanh, trainable subsampling
#   with two parameters per map, Table I for C3, and the paper's input scaling.
#   (`lenet5_modern` in the registry is the 2020s variant with ReLU, max pooling and a full
#   C3.)
#
# ## 3. Training with the recipe
#
# The paper trained for 20 passes over the training set with a stochastic diagonal
# Levenberg–Marquardt method and a hand-scheduled, decreasing step size, and reports a
# test error of 0.95% (0.8% with artificially distorted training images). kerasdl keeps
# the model and the input scaling, but trains with a modern recipe:

# %%
recipe = get_recipe("lenet5")
display(Markdown(markdown_table(
    ["setting", "value"], [[k, f"`{v!r}`"] for k, v in recipe.to_dict().items()]
)))

# %% [markdown]
# What the network sees: four training digits (left) and four distortions of each, drawn
# as the training pipeline draws them. Every epoch sees new ones.

# %%
sample = load_image_classification(DATASET, image_size=(32, 32), max_examples=64)
sample_x, sample_y = sample.arrays("train", limit=4)
fig = plot_augmentations(sample_x, recipe.augmentation, n_views=4, seed=1,
                         titles=[str(int(y)) for y in sample_y])
display(fig)

# %% [markdown]
# `kerasdl.train.train` loads MNIST padded to 32×32 and trains on all 60,000 training
# digits, as the paper did, each batch distorted afresh (the `digits_mild` preset:
# LeCun et al.'s small rotations, scalings, shears and shifts plus a mild version of
# Simard et al.'s 2003 elastic field). It evaluates on the 10,000 test digits and writes a
# run folder
# (`model.keras`, `run.json`, `history.json`, `training_log.csv`). An interrupted run
# resumes where it stopped when the same cell is run again. If the folder already holds a
# finished run (for example one made by `kerasdl quickstart`), this notebook reuses it.

# %%
model_path = os.path.join(RUN_DIR, "model.keras")
if os.path.isfile(model_path) and not SMOKE:
    print(f"Found a finished run in {RUN_DIR}; reusing it instead of retraining "
          "(delete that folder to train again).")
    trained, record = load_run(RUN_DIR)
else:
    smoke_args = {"max_examples": SMOKE_EXAMPLES, "epochs": 1, "overwrite": True} if SMOKE else {}
    record = train("lenet5", DATASET, output_dir=RUN_DIR, **smoke_args)
    trained, record = load_run(RUN_DIR)

print()
print(f"data:          {record['data_source']}")
print(f"examples:      {record['num_examples']}")
print(f"preprocessing: {record['preprocessing']}")
print(f"epochs:        {record['recipe']['epochs']}, "
      f"trained in {record['train_seconds_this_session']:.0f} s (this session)")
print(f"test accuracy: {100 * record['test_accuracy']:.2f}% "
      f"(error {record['test_error_percent']:.2f}%)")

# %% [markdown]
# ## 4. Training curves
#
# `history.json` holds one value per epoch for the training split and, since this recipe
# holds no validation split out, for the test split (recorded for plotting only: nothing
# was chosen by it). Training metrics are measured on distorted images while the weights
# are still moving, so they sit below the test metrics.

# %%
with open(os.path.join(RUN_DIR, "history.json")) as f:
    history = json.load(f)
epochs = np.arange(1, len(history["loss"]) + 1)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, metric, label in [(axes[0], "loss", "cross-entropy loss"), (axes[1], "accuracy", "accuracy")]:
    ax.plot(epochs, history[metric], "o-", label="training")
    for prefix, name in (("val_", "validation"), ("test_", "test")):
        if f"{prefix}{metric}" in history:
            ax.plot(epochs, history[f"{prefix}{metric}"], "s-", label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
if len(history["loss"]) > 1:
    axes[0].set_yscale("log")
axes[0].set_title("Loss")
axes[1].set_title("Accuracy")
plt.tight_layout()
plt.show()

last = {k: v[-1] for k, v in history.items()}
held_out = "val" if "val_accuracy" in history else "test"
print(f"last epoch: training accuracy {100 * last['accuracy']:.2f}%, "
      f"{held_out} accuracy {100 * last.get(held_out + '_accuracy', float('nan')):.2f}%")

# %% [markdown]
# ## 5. Test results
#
# We load the test split, padded to 32×32 as in training (the model scales the pixels
# itself), and look at the mistakes.

# %%
test_data = load_image_classification(
    DATASET, image_size=(32, 32), max_examples=SMOKE_EXAMPLES if SMOKE else None
)
test_x, test_y = test_data.arrays("test")
test_logits = trained.predict(test_x, batch_size=512, verbose=0)
test_pred = test_logits.argmax(-1)
test_accuracy = float((test_pred == test_y).mean())
wrong = np.nonzero(test_pred != test_y)[0]
print(f"{len(test_y):,} test digits: accuracy {100 * test_accuracy:.2f}%, "
      f"{len(wrong)} misclassified (error {100 * (1 - test_accuracy):.2f}%)")

# %%
shown = wrong[:32]
if len(shown):
    cols = 8
    rows_n = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(cols * 1.35, rows_n * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        ax.imshow(test_x[i, ..., 0], cmap="gray_r")
        ax.set_title(f"true {test_y[i]}, pred {test_pred[i]}", fontsize=8, color="firebrick")
    fig.suptitle(f"{len(shown)} of the {len(wrong)} misclassified test digits")
    plt.tight_layout()
    plt.show()
else:
    print("No misclassified digits to show.")

# %%
num_classes = trained.output_shape[-1]
confusion = np.zeros((num_classes, num_classes), dtype=int)
np.add.at(confusion, (test_y, test_pred), 1)

fig, ax = plt.subplots(figsize=(6.2, 5.4))
# A log colour scale keeps the few off-diagonal errors visible next to the large diagonal.
im = ax.imshow(np.log1p(confusion), cmap="Blues")
for i in range(num_classes):
    for j in range(num_classes):
        if confusion[i, j]:
            ax.text(j, i, confusion[i, j], ha="center", va="center", fontsize=8,
                    color="white" if i == j else "black")
ax.set_xticks(range(num_classes))
ax.set_yticks(range(num_classes))
ax.set_xlabel("predicted digit")
ax.set_ylabel("true digit")
ax.set_title("Confusion matrix on the test split")
plt.tight_layout()
plt.show()

off_diagonal = confusion - np.diag(np.diag(confusion))
pairs = sorted(
    ((int(off_diagonal[i, j]), i, j) for i in range(num_classes) for j in range(num_classes)),
    reverse=True,
)
print("most frequent confusions:",
      ", ".join(f"{i} read as {j} ({n}x)" for n, i, j in pairs[:5] if n) or "none")

# %% [markdown]
# ## 6. What C1 learned
#
# C1 has six 5×5 kernels, one per feature map. After training they are small oriented
# edge and stroke detectors. Below: the kernels (blue negative, red positive), then the
# six C1 feature maps (after the squashing function) for one test digit.

# %%
c1_kernels = trained.get_layer("c1").get_weights()[0]  # (5, 5, 1, 6)
limit = float(np.abs(c1_kernels).max())
fig, axes = plt.subplots(1, 6, figsize=(10, 2.1))
for k, ax in enumerate(axes):
    ax.imshow(c1_kernels[:, :, 0, k], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"C1 kernel {k}", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %%
c1_model = keras.Model(trained.inputs, trained.get_layer("c1_act").output)
right = np.nonzero(test_pred == test_y)[0]
example = int(right[0]) if len(right) else 0
maps = c1_model.predict(test_x[example : example + 1], verbose=0)[0]  # (28, 28, 6)

fig, axes = plt.subplots(1, 7, figsize=(12, 2.2))
axes[0].imshow(test_x[example, ..., 0], cmap="gray_r")
axes[0].set_title(f"input (digit {test_y[example]})", fontsize=9)
for k in range(6):
    axes[k + 1].imshow(maps[..., k], cmap="RdBu_r", vmin=-1.7159, vmax=1.7159)
    axes[k + 1].set_title(f"C1 map {k}", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. To the phone: SavedModel and four TFLite variants
#
# `kerasdl.workflows.export_run` exports the trained run to a TensorFlow SavedModel and
# four TFLite (LiteRT) files, then runs **every** artifact on the real test digits and
# compares it with the Keras model:
#
# * `float32`: a plain conversion, which should agree with Keras on every digit;
# * `float16`: weights stored in half precision (half the size), computed in float32;
# * `dynamic_range`: weights stored as int8, activations quantised on the fly;
# * `int8`: everything integer, input and output included, which is what
#   microcontrollers and many phone NPUs want. Its activation ranges are calibrated on
#   500 training images.
#
# It writes the files and a model card (`model_card.json`, `MODEL_CARD.md`) into
# `RUN_DIR/export`. An existing export of this run is reused.

# %%
EXPORT_DIR = os.path.join(RUN_DIR, "export")
card_path = os.path.join(EXPORT_DIR, "model_card.json")
stale = os.path.isfile(card_path) and os.path.getmtime(card_path) < os.path.getmtime(model_path)
if os.path.isfile(card_path) and not SMOKE and not stale:
    print(f"Found an export of this run in {EXPORT_DIR}; reusing its model card.")
    with open(card_path) as f:
        card = json.load(f)
else:
    if stale:
        print("The existing export is older than the trained model; exporting again.")
    start = time.perf_counter()
    card = export_run(
        RUN_DIR,
        EXPORT_DIR,
        overwrite=SMOKE or stale,
        max_test_examples=(256 if SMOKE else None),
        latency_runs=(20 if SMOKE else 200),
    )
    print(f"export and verification took {time.perf_counter() - start:.0f} s")

artifacts = {a["format"]: a for a in card["artifacts"]}
keras_accuracy = card["verification"]["keras_accuracy"]
print(f"verified on {card['verification']['test_examples']:,} test digits; "
      f"Keras accuracy on them {100 * keras_accuracy:.2f}%")

# %%
def cell(a, key, fmt):
    return fmt.format(a[key]) if key in a else "—"


display(Markdown(markdown_table(
    ["format", "size", "vs float32", "accuracy", "drop (points)", "top-1 agreement",
     "max abs logit diff", "latency, batch 1"],
    [
        [
            f"`{a['format']}`",
            f"{a['size_bytes'] / 1024:,.1f} KiB",
            cell(a, "size_vs_float32", "{:.1%}"),
            f"{100 * a['accuracy']:.2f}%",
            f"{a['accuracy_drop_points']:+.2f}",
            f"{100 * a['top1_agreement']:.2f}%",
            f"{a['max_abs_logit_diff']:.3g}",
            cell(a, "latency_ms_batch1", "{:.3f} ms"),
        ]
        for a in card["artifacts"]
    ],
)))
print(card["versions"]["machine"], "| latency: median of single-image LiteRT invocations")

# %%
names = [a["format"].replace("tflite_", "") for a in card["artifacts"]]
sizes_kib = [a["size_bytes"] / 1024 for a in card["artifacts"]]
accuracies = [100 * a["accuracy"] for a in card["artifacts"]]
colours = plt.cm.tab10(np.arange(len(names)))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].bar(names, sizes_kib, color=colours)
axes[0].set_ylabel("size (KiB)")
axes[0].set_title("Size on disk")
for x, s in enumerate(sizes_kib):
    axes[0].text(x, s, f"{s:,.0f}", ha="center", va="bottom", fontsize=8)
axes[1].bar(names, accuracies, color=colours)
spread = max(accuracies) - min(accuracies)
axes[1].set_ylim(min(accuracies) - max(0.5, spread), min(100, max(accuracies) + max(0.3, spread / 2)))
axes[1].axhline(100 * keras_accuracy, color="k", linestyle="--", linewidth=1, label="Keras")
axes[1].set_ylabel("test accuracy (%)")
axes[1].set_title("Accuracy on the same test digits")
axes[1].legend(loc="upper right")
for ax in axes:
    ax.tick_params(axis="x", labelrotation=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Running the int8 model
#
# The int8 file takes int8 input and gives int8 output. `kerasdl.export.TFLiteRunner`
# hides that: it quantises the float input with the file's own scale and zero point and
# dequantises the output, so the same raw-pixel digits go in and logits come out. With
# pixels 0..255 as input, the int8 input quantisation is (close to) the identity shifted
# by 128, so a phone can feed camera bytes almost directly.
# This is the code path a phone app would mirror with the LiteRT runtime.

# %%
int8_path = os.path.join(EXPORT_DIR, artifacts["tflite_int8"]["file"])
runner = TFLiteRunner(int8_path)
few = slice(0, 12)
int8_logits = runner.predict(test_x[few])
int8_pred = int8_logits.argmax(-1)
keras_pred = test_pred[few]
print(f"{os.path.basename(int8_path)}: {os.path.getsize(int8_path) / 1024:.1f} KiB, "
      f"input dtype {runner.input_dtype}")

fig, axes = plt.subplots(1, len(int8_pred), figsize=(1.25 * len(int8_pred), 1.9))
for ax, img, t, p8, pk in zip(axes, test_x[few, ..., 0], test_y[few], int8_pred, keras_pred):
    ax.imshow(img, cmap="gray_r")
    ax.set_title(f"int8 {p8}\nkeras {pk}", fontsize=8, color="black" if p8 == t else "firebrick")
    ax.axis("off")
fig.suptitle("int8 TFLite vs Keras predictions (red: wrong)", y=1.05)
plt.show()
print(f"int8 and Keras agree on {int((int8_pred == keras_pred).sum())} of {len(int8_pred)}; "
      f"largest logit difference {np.abs(int8_logits - test_logits[few]).max():.3f}")

# %% [markdown]
# ## 8. What we measured

# %%
int8 = artifacts["tflite_int8"]
f32 = artifacts["tflite_float32"]
if SMOKE:
    print("SMOKE RUN: tiny data and 1 epoch, so these numbers mean nothing.")
print(f"LeNet-5: {trained.count_params():,} parameters; C1-F6 match the paper's "
      f"{paper_c1_f6:,} layer by layer.")
print(f"Training: {record['recipe']['epochs']} epoch(s) on {record['num_examples']['train']:,} "
      f"images, {record['train_seconds_this_session']:.0f} s in the session that trained it.")
print(f"Test error: {record['test_error_percent']:.2f}% on {record['num_examples']['test']:,} "
      f"digits (paper: 0.95%, or 0.8% with distorted training data).")
print(f"float32 TFLite: {f32['size_bytes'] / 1024:.1f} KiB, agrees with Keras on "
      f"{100 * f32['top1_agreement']:.2f}% of digits.")
print(f"int8 TFLite: {int8['size_bytes'] / 1024:.1f} KiB ({100 * int8['size_vs_float32']:.1f}% "
      f"of float32), accuracy {100 * int8['accuracy']:.2f}% "
      f"({int8['accuracy_drop_points']:+.2f} points vs Keras), "
      f"{int8['latency_ms_batch1']:.3f} ms per digit.")
print()
print("Quickstart targets:")
for target, measured, ok in check_quickstart_targets(card, record):
    print(f"  [{'PASS' if ok else 'FAIL'}] {target}: {measured}")
