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
# # Chapter 07 — Why residual connections
#
# In 2015 He, Zhang, Ren and Sun made an observation that looks like a paradox. Take a
# plain convolutional network that trains well, make it deeper by stacking more 3x3
# layers, and train both the same way: the deeper network ends with a **higher training
# error** (their Figure 1, CIFAR-10, 20 against 56 layers). It is not overfitting, since
# the training error is what gets worse. And it should not happen in principle: the
# deeper network could copy the shallow one and make its extra layers identities. The
# solvers simply do not find that solution. They called it the *degradation problem*.
#
# Their fix was to make the identity the default: each block computes `F(x) + x`, so
# extra blocks only have to learn a correction near zero. This notebook reproduces the
# effect on CIFAR-10 with kerasdl's CIFAR networks (`resnet20_plain`, `resnet56_plain`,
# `resnet20`, `resnet56`: the same layers with and without the shortcuts) and looks at
# the gradients that explain it.

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
from kerasdl.analysis import gradient_norms
from kerasdl.data import load_image_classification
from kerasdl.train import get_recipe, load_run, train
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
RUNS_DIR = os.path.join(OUTPUT_ROOT, "ch07_cifar10")
NETS = ["resnet20_plain", "resnet56_plain", "resnet20", "resnet56"]
if SMOKE:  # the 56-layer networks run the same code, four times slower
    NETS = ["resnet20_plain", "resnet20"]
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. Gradients at initialisation
#
# Before any training, we feed one batch of real CIFAR-10 training images through each
# freshly initialised network and measure the norm of the loss gradient with respect to
# every convolution's kernel (`kerasdl.analysis.gradient_norms`), from the first layer
# (left) to the classifier (right).

# %%
data = load_image_classification("cifar10", batch_size=128, validation_fraction=0.0,
                                 max_examples=256 if SMOKE else 1024)
images, labels = data.arrays("train", limit=128)

fig, ax = plt.subplots(figsize=(9, 4))
for name in NETS:
    keras.utils.set_random_seed(0)
    norms = [n for _, n in gradient_norms(kerasdl.create_model(name), images, labels)]
    style = "-" if "plain" in name else "--"
    ax.plot(np.arange(1, len(norms) + 1), norms, style, label=name)
ax.set_yscale("log")
ax.set_xlabel("layer (input -> output)")
ax.set_ylabel("gradient norm of the kernel")
ax.set_title("Loss gradient per layer at initialisation, one batch of 128 CIFAR-10 images")
ax.legend()
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# With shortcuts, the gradient reaching each layer stays between about 0.5 and 3 from the
# first layer to the last, at 20 and at 56 layers alike: every block's identity path
# carries the loss signal straight through. Without them, the 56-layer network's
# gradients span three orders of magnitude, from about 400 at the first layers down to
# 0.4 near the classifier. (Batch normalisation keeps each layer's activations in range,
# but not the gradients' scale across depth.) A single learning rate cannot suit
# layers whose gradients differ a thousandfold: it is either too large for the first
# layers or too small for the last ones.

# %% [markdown]
# ## 2. The same training budget for all four
#
# Each network trains with the CIFAR ResNets' recipe (SGD 0.1, Nesterov momentum,
# cosine decay) cut to the same short budget, on the same images, with the test curve
# logged after every epoch.

# %%
EPOCHS = 1 if SMOKE else 10
MAX_EXAMPLES = 256 if SMOKE else 15_000
recipe = get_recipe("resnet20").replace(epochs=EPOCHS)
records = {}
for name in NETS:
    run_dir = os.path.join(RUNS_DIR, name)
    if os.path.isfile(os.path.join(run_dir, "model.keras")) and not SMOKE:
        _, records[name] = load_run(run_dir)
    else:
        records[name] = train(name, "cifar10", output_dir=run_dir, recipe=recipe,
                              max_examples=MAX_EXAMPLES, overwrite=True, verbose=0)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
rows = ["| network | depth | shortcuts | training error | test error |", "|---|---:|---|---:|---:|"]
for name in NETS:
    with open(os.path.join(RUNS_DIR, name, "history.json")) as f:
        history = json.load(f)
    epochs = np.arange(1, len(history["loss"]) + 1)
    style = "-" if "plain" in name else "--"
    axes[0].plot(epochs, 100 * (1 - np.array(history["accuracy"], dtype=float)), style, label=name)
    axes[1].plot(epochs, 100 * (1 - np.array(history["test_accuracy"], dtype=float)), style, label=name)
    depth = "56" if "56" in name else "20"
    rows.append(f"| `{name}` | {depth} | {'no' if 'plain' in name else 'yes'} | "
                f"{100 * (1 - history['accuracy'][-1]):.1f}% | "
                f"{100 * (1 - records[name]['test_accuracy']):.1f}% |")
for ax, title in zip(axes, ("training error", "test error")):
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error, %")
    ax.grid(alpha=0.3)
    ax.legend()
plt.tight_layout()
plt.show()
display(Markdown("\n".join(rows)))

# %% [markdown]
# The degradation problem, reproduced:
#
# - **Without shortcuts, depth hurts training itself.** The 56-layer plain network ends at
#   63.2% *training* error against 25.9% for the 20-layer one, on the same images with the
#   same recipe. Since the training error is what gets worse, this is not overfitting.
#   The gap is far wider than in He et al.'s Figure 1 because the budget is short (10
#   epochs on 15,000 images); in their full runs the plain-56 ends a few points behind.
# - **With shortcuts, the 56-layer network trains normally:** 22.3% training error,
#   against 63.2% for the same layers without shortcuts. Its test error, 26.6%, is 36
#   points better than the plain network's.
# - **In this budget ResNet-56 is still slightly behind ResNet-20** (26.6% against 23.0%
#   test error). A deeper network needs a longer schedule to pay off. On the paper's full
#   schedule ResNet-56 reaches 6.97% against ResNet-20's 8.75%. Our own full ResNet-20
#   run reaches 8.64% (`saved_models/resnet20_cifar10`, 60 epochs on all 50,000 images).
#
# The shortcut does not add capacity: `resnet56` and `resnet56_plain` have the same
# layers and parameter counts. It changes what is easy to learn. A block whose weights
# are near zero is the identity, so extra depth starts out harmless and the optimiser
# only has to learn corrections.
