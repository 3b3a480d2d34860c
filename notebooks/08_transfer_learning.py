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
# # Chapter 08 — Transfer learning
#
# A network trained on one task has learned features (edges, textures, object parts) that
# are useful for others. Transfer learning reuses them: start from the trained weights,
# replace the classifier, and train on the new task, either only the new head, or the
# last stages too, or everything, often with smaller learning rates near the input. It
# matters most when the new task has few labels.
#
# The experiment: CIFAR-10's ten classes split in two disjoint halves. A ResNet-20 learns
# the **source** task (airplane, automobile, bird, cat, deer) from all its 25,000 training
# images. The **target** task (dog, frog, horse, ship, truck) gets only a few labelled
# images per class. We compare four ways to learn it, at two label budgets, on the
# target classes' 5,000 test images:
#
# 1. from scratch (random initialisation);
# 2. head only (every pretrained layer frozen);
# 3. the last stage and the head (`freeze="conv3"`: stages 1-2 frozen);
# 4. everything, with layer-wise learning rates (0.1x in the first stage, 0.3x in the
#    second, 1x after: "layers near the input learn slower").
#
# The two halves are written as ordinary image folders, the way a user would bring their
# own images to `kerasdl train MODEL --dataset FOLDER`.

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
from kerasdl.data import load_image_classification
from kerasdl.train import get_recipe, load_run, train
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
WORK = os.path.join(OUTPUT_ROOT, "ch08_transfer")
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. Two disjoint tasks as image folders

# %%
SOURCE = ["airplane", "automobile", "bird", "cat", "deer"]
TARGET = ["dog", "frog", "horse", "ship", "truck"]
BUDGETS = [10] if SMOKE else [50, 250]  # labelled training images per target class
limit = 600 if SMOKE else None
cifar = load_image_classification("cifar10", validation_fraction=0.0, max_examples=limit)
names = list(cifar.class_names)


def write_folder(root, split, images, labels, classes, per_class=None):
    """``root/split/<class>/<n>.png`` for the images of ``classes`` (at most
    ``per_class`` each, the first ones in the split's order)."""
    counts = {}
    for image, label in zip(images, labels):
        cls = names[int(label)]
        if cls not in classes or counts.get(cls, 0) >= (per_class or len(labels)):
            continue
        folder = os.path.join(root, split, cls)
        os.makedirs(folder, exist_ok=True)
        keras.utils.save_img(os.path.join(folder, f"{counts.get(cls, 0):05d}.png"),
                             image.astype("uint8"), scale=False)
        counts[cls] = counts.get(cls, 0) + 1
    return counts


train_x, train_y = cifar.arrays("train")
test_x, test_y = cifar.arrays("test")
folders = {"source": os.path.join(WORK, "data", "source")}
if not os.path.isdir(folders["source"]):
    write_folder(folders["source"], "train", train_x, train_y, SOURCE)
    write_folder(folders["source"], "test", test_x, test_y, SOURCE)
for budget in BUDGETS:
    folders[budget] = os.path.join(WORK, "data", f"target_{budget}")
    if not os.path.isdir(folders[budget]):
        write_folder(folders[budget], "train", train_x, train_y, TARGET, per_class=budget)
        write_folder(folders[budget], "test", test_x, test_y, TARGET)
print({k: os.path.relpath(v) for k, v in folders.items()})

# %% [markdown]
# ## 2. Pretraining on the source task

# %%
SOURCE_EPOCHS = 1 if SMOKE else 30
source_run = os.path.join(WORK, "resnet20_source")
source_recipe = get_recipe("resnet20").replace(epochs=SOURCE_EPOCHS)
if os.path.isfile(os.path.join(source_run, "model.keras")) and not SMOKE:
    _, source_record = load_run(source_run)
else:
    source_record = train("resnet20", folders["source"], output_dir=source_run,
                          recipe=source_recipe, overwrite=True, verbose=0)
print(f"source task: {100 * source_record['test_accuracy']:.2f}% on "
      f"{source_record['num_examples']['test']:,} test images of {SOURCE}")

# %% [markdown]
# ## 3. Four ways to learn the target task

# %%
TARGET_EPOCHS = 1 if SMOKE else 40
target_recipe = get_recipe("resnet20").replace(epochs=TARGET_EPOCHS, batch_size=32,
                                               learning_rate=0.01)
STRATEGIES = {
    "from scratch": {},
    "head only": {"init_from": source_run, "freeze": "conv4"},
    "last stage + head": {"init_from": source_run, "freeze": "conv3"},
    "all layers, layer-wise lr": {"init_from": source_run, "layerwise": True},
}
results, run_dirs = {}, {}
for budget in BUDGETS:
    for label, how in STRATEGIES.items():
        slug = "".join(c if c.isalnum() else "_" for c in label).strip("_")
        run_dir = os.path.join(WORK, f"target_{budget}_{slug}")
        recipe = target_recipe
        if how.get("layerwise"):
            # Layers near the input learn slower: conv1 (the stem) and stage 1 at 0.1x,
            # stage 2 at 0.3x, stage 3 and the new head at the full rate.
            recipe = target_recipe.replace(layerwise_lr={"conv1": 0.1, "conv2": 0.1,
                                                         "conv3": 0.3})
        if os.path.isfile(os.path.join(run_dir, "model.keras")) and not SMOKE:
            _, record = load_run(run_dir)
        else:
            record = train("resnet20", folders[budget], output_dir=run_dir, recipe=recipe,
                           init_from=how.get("init_from"), freeze=how.get("freeze"),
                           overwrite=True, verbose=0)
        results[(budget, label)] = record
        run_dirs[(budget, label)] = run_dir

rows = ["| labelled images per class | " + " | ".join(STRATEGIES) + " |",
        "|---:|" + "---:|" * len(STRATEGIES)]
for budget in BUDGETS:
    cells = [f"{100 * results[(budget, s)]['test_accuracy']:.1f}%" for s in STRATEGIES]
    rows.append(f"| {budget} ({5 * budget} in all) | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## 4. How each strategy learns
#
# The recipe holds out no validation images (the target task has too few labels to spare
# any), so `kerasdl train` reports the test accuracy after every epoch; nothing is chosen
# by it: every run trains its fixed number of epochs and the table shows the last one.

# %%
fig, axes = plt.subplots(1, len(BUDGETS), figsize=(11, 3.8), sharey=True, squeeze=False)
axes = axes[0]
for ax, budget in zip(axes, BUDGETS):
    for label in STRATEGIES:
        with open(os.path.join(run_dirs[(budget, label)], "history.json")) as f:
            history = json.load(f)
        key = "val_accuracy" if "val_accuracy" in history else "test_accuracy"
        curve = 100 * np.asarray(history[key], dtype=float)
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label)
    ax.set(title=f"{budget} labelled images per class", xlabel="epoch")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("target-task test accuracy (%)")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the runs show
#
# Numbers from the executed runs above (one seed each, 5,000 target test images, so about
# +-0.6 points of sampling error at these accuracies):
#
# - **Transfer wins most when labels are scarce.** With 50 labelled images per class,
#   fine-tuning the pretrained network reaches 83.8% (last stage + head) and 83.9%
#   (all layers, layer-wise rates), against 58.1% from scratch: about 26 points. With 250
#   per class the gap shrinks to about 10 points (89.8% and 90.4% against 79.6%).
# - **Fine-tuned with 50 labels per class, the pretrained network beats training from
#   scratch with 250** (83.8% against 79.6%): the source task's 25,000 labels stand in
#   for most of the missing target labels.
# - **Frozen features are not enough.** The head alone on frozen features (69.3% and
#   73.3%) beats from-scratch training only at the smallest budget, and gains little from
#   5x more labels: the last stage, trained on airplanes, cars, birds, cats and deer,
#   does not separate dogs from horses or ships from trucks linearly. Letting the last
#   stage adapt is what closes the gap.
# - **Layer-wise rates** (0.1x near the input) and freezing stages 1-2 end close together
#   here: the early features (edges, colours, textures) transfer as they are, and either
#   way they barely move.
