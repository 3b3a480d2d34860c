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
# # Chapter 04 — Initialisation, normalisation and regularisation
#
# A deep network trains well only if the signal that flows forward and the gradient that
# flows back keep a sensible size through every layer, and it generalises only if it
# cannot simply memorise its training set. This chapter takes the three families of
# tools for that, writes each from its formula in numpy (`kerasdl.scratch`), checks it
# against the Keras piece that is used in practice, and then measures what it does on a
# real dataset.
#
# 1. Initialisation: the variance formulas of LeCun, Glorot and He, and how Keras draws
#    them (a truncated normal, widened to keep the variance).
# 2. Activation and gradient variance through 50 layers for each pairing of activation
#    and initialiser.
# 3. The He variance: the course's `N(0, 2/sqrt(n))` against the correct `N(0, 2/n)`.
# 4. Batch, layer, group and instance normalisation from their formulas against Keras,
#    in training and inference mode, with batch norm's moving averages and backward pass.
# 5. What γ and β are: one pair per feature, and the output variance is γ².
# 6. Training a deep MLP on Fashion-MNIST with and without batch normalisation.
# 7. Regularisation of an over-fitting MLP: L2, dropout, DropConnect, Gaussian noise and
#    early stopping.
# 8. Magnitude pruning with the polynomial schedule: accuracy and compressed size at
#    several sparsities.

# %%
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
from threadpoolctl import threadpool_limits

import kerasdl
from kerasdl.callbacks import early_stopping
from kerasdl.data import load_image_classification
from kerasdl.models.mlp import build_mlp
from kerasdl.scratch import initializers as init
from kerasdl.scratch.normalization import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from kerasdl.scratch.regularization import (DropConnect, MagnitudePruning, compressed_size,
                                            magnitude_prune, polynomial_sparsity,
                                            zero_fraction)
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
WORK = os.path.join(OUTPUT_ROOT, "ch04_init_norm_reg")
os.makedirs(WORK, exist_ok=True)
RESULTS = {}  # every number of the chapter, saved to WORK/results.json at the end
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (tiny data, 1 epoch, shallow propagation: numbers are meaningless)' if SMOKE else 'full'}; "
      f"outputs under {WORK}")


def table(header, rows):
    """A Markdown table from a header list and rows of already formatted cells (a "|"
    inside a cell, as in |w|, is escaped)."""
    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    lines = [cells(header), "|" + "---|" * len(header)] + [cells(row) for row in rows]
    display(Markdown("\n".join(lines)))


def savefig(fig, name):
    fig.savefig(os.path.join(WORK, name), dpi=100, bbox_inches="tight")
    plt.show()

# %% [markdown]
# ## 1. Initialisation: one variance formula, three choices of n
#
# A dense layer computes $z_j = \sum_{i=1}^{n_{in}} w_{ij} h_i$. With independent,
# zero-mean weights, $\mathrm{Var}[z] = n_{in}\,\mathrm{Var}[w]\,E[h^2]$: each layer
# multiplies the size of the signal by $n_{in}\mathrm{Var}[w]$ (times whatever the
# activation keeps). On the way back the gradient is multiplied by
# $n_{out}\mathrm{Var}[w]$ (times $E[f'(z)^2]$). A factor away from 1 compounds
# geometrically with depth, so the initialisers choose $\mathrm{Var}[w] = \text{scale}/n$:
#
# | initialiser | Var[w] | argument |
# |---|---|---|
# | LeCun (1998) | 1 / fan_in | keeps Var[z] for a linear (or tanh near 0, or SELU) layer |
# | Glorot & Bengio (2010) | 2 / (fan_in + fan_out) | a compromise between the forward (fan_in) and backward (fan_out) conditions |
# | He et al. (2015) | 2 / fan_in | ReLU zeroes half of its input, $E[h^2] = \mathrm{Var}[z]/2$, so twice LeCun's variance |
#
# For a convolution kernel of shape (kh, kw, c_in, c_out), Keras counts
# fan_in = kh·kw·c_in and fan_out = kh·kw·c_out: the inputs one output sums over.
#
# Keras draws the `*Uniform` versions from $U(-a, a)$ with $a = \sqrt{3\,\mathrm{Var}}$
# (the variance of $U(-a, a)$ is $a^2/3$). The `*Normal` versions are **truncated**
# normals: values beyond two standard deviations are redrawn. A standard normal cut at
# ±2 has standard deviation 0.8796, not 1, so Keras divides the target standard
# deviation by that constant before drawing; the samples then have the intended variance
# and none exceeds $2\sqrt{\mathrm{Var}}/0.8796 \approx 2.27\sqrt{\mathrm{Var}}$. The
# cell below draws each initialiser from `kerasdl.scratch.initializers` and from Keras on
# a dense kernel (400, 600) and a convolution kernel (3, 3, 64, 96).

# %%
print(f"std of N(0,1) truncated to [-2, 2]: {init.truncated_normal_std(2.0):.17f} "
      f"(Keras' constant {init.KERAS_TRUNCATION_FACTOR})")
CASES = [  # name, ours, Keras, scale, mode, truncated
    ("LecunNormal", init.lecun_normal, keras.initializers.LecunNormal, 1.0, "fan_in", True),
    ("LecunUniform", init.lecun_uniform, keras.initializers.LecunUniform, 1.0, "fan_in", False),
    ("GlorotNormal", init.glorot_normal, keras.initializers.GlorotNormal, 1.0, "fan_avg", True),
    ("GlorotUniform", init.glorot_uniform, keras.initializers.GlorotUniform, 1.0, "fan_avg", False),
    ("HeNormal", init.he_normal, keras.initializers.HeNormal, 2.0, "fan_in", True),
    ("HeUniform", init.he_uniform, keras.initializers.HeUniform, 2.0, "fan_in", False),
]
rows, init_check = [], []
for shape in [(400, 600), (3, 3, 64, 96)]:
    fan_in, fan_out = init.compute_fans(shape)
    for name, ours_fn, keras_cls, scale, mode, truncated in CASES:
        target = init.target_variance(shape, scale, mode)
        bound = (2 * np.sqrt(target) / init.KERAS_TRUNCATION_FACTOR if truncated
                 else np.sqrt(3 * target))
        ours = ours_fn(shape, seed=1)
        theirs = np.asarray(keras_cls(seed=1)(shape), dtype=np.float64)
        init_check.append({"shape": shape, "name": name, "target": target,
                           "ours": ours.var(), "keras": theirs.var()})
        rows.append([str(shape), f"{fan_in} / {fan_out}", name, f"{scale:g} / {mode}",
                     f"{target:.3e}", f"{ours.var():.3e}", f"{theirs.var():.3e}",
                     f"{theirs.var() / target:.3f}", f"{bound:.4f}",
                     f"{np.abs(ours).max():.4f}", f"{np.abs(theirs).max():.4f}"])
table(["kernel shape", "fan_in / fan_out", "Keras initialiser", "scale / n", "target Var[w]",
       "Var (ours)", "Var (Keras)", "Keras / target", "bound", "max |w| ours",
       "max |w| Keras"], rows)
worst = max(abs(r["keras"] / r["target"] - 1) for r in init_check)
RESULTS["initialisers_worst_keras_relative_variance_error"] = worst
print(f"largest relative gap between Keras' sample variance and the formula: {worst:.2%}")

# %% [markdown]
# The sample variances agree with the formula to within sampling error (a variance
# estimated from N values has a relative standard error of about √(2/N), 0.3% for the
# 240,000 weights of the dense kernel, 0.6% for the 55,296 of the convolution kernel).
# The bound column is the largest value each distribution can produce, and with this
# many draws both implementations reach it: Keras' truncated normals stop at
# 2/0.8796 ≈ 2.27 standard deviations. The histogram shows the two shapes with the same
# variance: the plain normal has tails beyond the dotted lines; the truncated one is cut
# there and, being drawn from a wider normal, is a little lower in the middle and higher
# on the shoulders, which keeps its variance.

# %%
shape = (400, 600)
he_keras = np.asarray(keras.initializers.HeNormal(seed=0)(shape)).ravel()
he_plain = init.variance_scaling(shape, 2.0, "fan_in", "untruncated_normal", seed=0).ravel()
std = np.sqrt(2.0 / 400)
fig, ax = plt.subplots(figsize=(7, 3))
bins = np.linspace(-4.5 * std, 4.5 * std, 91)
ax.hist(he_plain, bins=bins, histtype="step", label=f"N(0, 2/n), var {he_plain.var():.2e}")
ax.hist(he_keras, bins=bins, histtype="step", label=f"Keras HeNormal, var {he_keras.var():.2e}")
for s in (-1, 1):
    ax.axvline(s * 2 * std / init.KERAS_TRUNCATION_FACTOR, color="grey", lw=0.8, ls=":")
ax.set_xlabel("weight value (n = fan_in = 400)")
ax.set_ylabel("count")
ax.legend(fontsize=8)
ax.set_title("He normal: Keras' truncated draw against a plain normal of the same variance")
savefig(fig, "he_normal_truncation.png")

# %% [markdown]
# ## 2. Signal and gradient through 50 layers
#
# `init.propagate` pushes a batch of unit-variance inputs through 50 bias-free square
# layers (256 units each, weights drawn with the given standard deviation) and a
# unit-variance gradient back from the top, recording at each layer the variance of the
# activations $h_l$ and of the gradient $\partial L/\partial h_l$ arriving at it. The
# initialisers are Glorot (for square layers it equals LeCun's 1/n), He (2/n), a fixed
# "small" N(0, 0.01²), and the course's He formula as written (variance 2/√n, section 3).
#
# What theory predicts for the per-layer factor of the forward pass, with n = 256:
#
# * **linear**: n·Var[w], i.e. 1 for Glorot, 2 for He, 0.0256 for "small", √n·2 = 32 for
#   the course's formula;
# * **ReLU** keeps half: 0.5 (Glorot), 1 (He), 16 (course);
# * **tanh** is linear near 0 and saturates above 1, so small signals shrink as in the
#   linear case and large ones are clipped near 1; its gradient is multiplied by
#   tanh'(z)² ≤ 1, which stays near 1 only while the pre-activations are small;
# * **sigmoid** has slope at most 1/4, so its gradient is multiplied by at most
#   n·Var[w]/16 per layer: 1/16 with Glorot, 1/8 with He.

# %%
PROP = dict(depth=10, width=32, batch=32) if SMOKE else dict(depth=50, width=256, batch=128)
ACTS = ("linear", "relu", "tanh", "sigmoid")
INITS = ("glorot", "he", "small", "course_he")
started = time.perf_counter()
# Small numpy matrix products run faster on one BLAS thread than on several threads
# that compete with TensorFlow and other jobs for a few cores.
with threadpool_limits(limits=1, user_api="blas"):
    grid = init.propagate_grid(ACTS, INITS, seed=0, **PROP)
print(f"propagate_grid {PROP}: {time.perf_counter() - started:.1f} s")

layers = np.arange(1, PROP["depth"] + 1)
fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), sharex=True)
for col, act in enumerate(ACTS):
    for name in INITS:
        p = grid[(act, name)]
        with np.errstate(divide="ignore"):
            axes[0, col].semilogy(layers, p.activation, label=name)
            axes[1, col].semilogy(layers, p.gradient, label=name)
    axes[0, col].set_title(f"{act}: Var[h_l] (forward)")
    axes[1, col].set_title(f"{act}: Var[dL/dh_l] (backward)")
    axes[1, col].set_xlabel("layer l")
    axes[1, col].invert_xaxis()  # the gradient travels from the top layer down
for ax in axes.ravel():
    ax.axhline(1.0, color="grey", lw=0.6)
axes[0, 0].legend(fontsize=8)
fig.suptitle(f"Variance through {PROP['depth']} layers of width {PROP['width']} "
             "(the backward row runs from the top layer, on the left, down to layer 1)")
fig.tight_layout()
savefig(fig, "propagation_grid.png")


def per_layer(values):
    """Geometric mean of the layer-to-layer ratio (1: steady)."""
    values = np.asarray(values)
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        return float("nan")
    return float(np.exp(np.diff(np.log(values)).mean()))


rows, prop = [], {}
for act in ACTS:
    for name in INITS:
        p = grid[(act, name)]
        prop[f"{act}/{name}"] = {
            "activation_first": p.activation[0], "activation_last": p.activation[-1],
            "gradient_top": p.gradient[-1], "gradient_bottom": p.gradient[0],
            "forward_factor": per_layer(p.activation),
            "backward_factor": per_layer(p.gradient[::-1])}
        r = prop[f"{act}/{name}"]
        rows.append([act, name, f"{r['activation_first']:.3g}", f"{r['activation_last']:.3g}",
                     f"{r['forward_factor']:.3g}", f"{r['gradient_bottom']:.3g}",
                     f"{r['backward_factor']:.3g}"])
RESULTS["propagation"] = {"settings": PROP, "pairs": prop}
table(["activation", "initialiser", "Var[h] layer 1", f"Var[h] layer {PROP['depth']}",
       "forward factor per layer", "Var[grad] at layer 1", "backward factor per layer"], rows)

# %% [markdown]
# Only two pairings keep both quantities near 1 over all 50 layers, the two the formulas
# were derived for: Glorot with linear layers (factors 0.999 forward and 1 backward) and
# He with ReLU (1.02 and 1.01). Elsewhere the variance drifts geometrically, and over 50
# layers a factor of 0.5 or 2 per layer is already a factor of about 10¹⁵ (ReLU with
# Glorot ends at 1.4e-15; linear layers with He at 1.1e15). tanh is in between: with
# Glorot its signal and gradient shrink slowly (about 0.93 per layer), and with He or the
# course's formula its forward variance stays bounded because tanh saturates, while the
# gradient grows on the way down (90 and 8e24 at layer 1). No initialiser rescues
# sigmoid: the forward variance stays below 0.2 at every layer, and the gradient
# reaching layer 1 is between 4e-13 and 9e-138 of the one at the top. (The gradient entering the
# top layer has variance 1 in every panel; "Var[grad] at layer 1" is what reaches the
# bottom.)
#
# ## 3. The He variance: 2/n, not 2/√n
#
# He et al. (2015, eq. 10) require $\tfrac12 n\,\mathrm{Var}[w] = 1$ for a ReLU layer with
# fan-in n, so $w \sim \mathcal N(0, 2/n)$: **variance 2/n**, standard deviation
# $\sqrt{2/n}$. The course notes write $\mathcal N(0, 2/\sqrt n)$ with the second argument
# as the variance. That variance is $\sqrt n$ times too large, so each ReLU layer
# multiplies $E[h^2]$ by $\tfrac12 n \cdot 2/\sqrt n = \sqrt n$ instead of 1 (16 at
# n = 256). Reading $2/\sqrt n$ as a standard deviation instead gives variance $4/n$,
# twice He's, a factor 2 per layer: also wrong, only less so.

# %%
rows, he_rows = [], {}
for n in (64, 256, 784, 4096):
    r = init.course_he_reading(n, depth=50)
    he_rows[n] = r
    rows.append([n, f"{r['he']['variance']:.3g}", f"{r['course_variance']['variance']:.3g}",
                 f"{r['course_variance']['variance'] / r['he']['variance']:.3g}",
                 f"{r['he']['relu_gain']:.3g}", f"{r['course_variance']['relu_gain']:.3g}",
                 f"{r['course_std']['relu_gain']:.3g}",
                 f"{r['course_variance']['gain_over_depth']:.3g}",
                 f"{r['course_std']['gain_over_depth']:.3g}"])
table(["fan-in n", "He: Var = 2/n", "course: Var = 2/√n", "ratio (= √n)",
       "ReLU gain per layer, He", "... course as variance", "... course as std (4/n)",
       "gain over 50 layers, course as variance", "... course as std"], rows)
RESULTS["he_reading"] = {str(n): r for n, r in he_rows.items()}

w_course = init.course_he_normal((256, 256), seed=0)
w_he = init.he_normal((256, 256), seed=0)
he_p, course_p = grid[("relu", "he")], grid[("relu", "course_he")]
print(f"sampled weight variance at n=256: He {w_he.var():.5f} (2/n = {2 / 256:.5f}), "
      f"course {w_course.var():.4f} (2/sqrt(n) = {2 / 16:.4f})")
print(f"ReLU, width {PROP['width']}: measured forward factor per layer "
      f"He {per_layer(he_p.activation):.3f}, course {per_layer(course_p.activation):.2f} "
      f"(theory 1 and sqrt({PROP['width']}) = {np.sqrt(PROP['width']):.0f}); "
      f"Var[h] at layer {PROP['depth']}: He {he_p.activation[-1]:.3g}, "
      f"course {course_p.activation[-1]:.3g}")
RESULTS["he_vs_course_measured"] = {
    "he_forward_factor": per_layer(he_p.activation),
    "course_forward_factor": per_layer(course_p.activation),
    "he_last": he_p.activation[-1], "course_last": course_p.activation[-1]}

# %% [markdown]
# The correct statement: **He initialisation draws $w \sim \mathcal N(0, 2/n_{in})$,
# i.e. standard deviation $\sqrt{2/n_{in}}$** (Keras' `HeNormal` draws that variance
# from a truncated normal; `HeUniform` uses $U(\pm\sqrt{6/n_{in}})$).
#
# ## 4. Four normalisations from their formulas
#
# All four compute
#
# $$y = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta$$
#
# and differ only in the set of values that share one $\mu, \sigma^2$, for a
# channels-last batch $x$ of shape (N, H, W, C):
#
# | layer | μ, σ² computed over | Keras layer |
# |---|---|---|
# | batch norm (Ioffe & Szegedy 2015) | N, H, W — per channel | `BatchNormalization` |
# | layer norm (Ba et al. 2016) | the features of one example (here: C, per position) | `LayerNormalization` |
# | group norm (Wu & He 2018) | H, W and the C/G channels of a group — per example | `GroupNormalization(groups=G)` |
# | instance norm (Ulyanov et al. 2016) | H, W — per example and channel | `GroupNormalization(groups=C)` |
#
# Keras' conventions, which `kerasdl.scratch.normalization` follows: the biased variance
# (divide by the count), ε = 1e-3 inside the square root, and for batch norm moving
# statistics that start at mean 0 and variance 1 and follow
# `moving = momentum · moving + (1 − momentum) · batch` (momentum 0.99 by default).
# Batch norm normalises with the batch's statistics when `training=True` and with the
# moving ones at inference; the other three compute the same thing in both modes.
#
# The cell feeds the same batches, with a different offset and scale per channel, to each
# numpy class and to its Keras layer (same γ and β) and reports the largest absolute
# difference in each mode. Batch norm sees six training batches first (momentum 0.9, so
# the moving averages move visibly), then an inference call on a new batch.

# %%
def batch_of(seed, shape=(16, 6, 6, 8)):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    return (rng.normal(size=shape) * rng.uniform(0.5, 3.0, c) + rng.normal(0, 2, c)).astype("float32")


C = 8
rng = np.random.default_rng(100)
gamma, beta = rng.uniform(0.5, 2.0, C), rng.normal(0.0, 1.0, C)


def keras_with(layer, shape, g, b):
    layer.build(shape)
    layer.gamma.assign(g)
    layer.beta.assign(b)
    return layer


x_test_batch = batch_of(99)
pairs = {
    "batch norm": (BatchNorm(C, momentum=0.9, gamma=gamma, beta=beta),
                   keras_with(keras.layers.BatchNormalization(momentum=0.9), x_test_batch.shape, gamma, beta)),
    "layer norm (axis -1)": (LayerNorm(C, gamma=gamma, beta=beta),
                             keras_with(keras.layers.LayerNormalization(), x_test_batch.shape, gamma, beta)),
    "group norm (G = 4)": (GroupNorm(C, 4, gamma=gamma, beta=beta),
                           keras_with(keras.layers.GroupNormalization(groups=4), x_test_batch.shape, gamma, beta)),
    "instance norm": (InstanceNorm(C, gamma=gamma, beta=beta),
                      keras_with(keras.layers.GroupNormalization(groups=C), x_test_batch.shape, gamma, beta)),
}
rows, norm_diffs = [], {}
for name, (ours, theirs) in pairs.items():
    train_diff = 0.0
    for step in range(6):
        xb = batch_of(step)
        train_diff = max(train_diff, float(np.abs(ours(xb, training=True)
                                                  - np.asarray(theirs(xb, training=True))).max()))
    infer_diff = float(np.abs(ours(x_test_batch, training=False)
                              - np.asarray(theirs(x_test_batch, training=False))).max())
    extra = "—"
    if name == "batch norm":
        mm = float(np.abs(ours.moving_mean - np.asarray(theirs.moving_mean)).max())
        mv = float(np.abs(ours.moving_variance - np.asarray(theirs.moving_variance)).max())
        extra = f"moving mean {mm:.1e}, moving variance {mv:.1e}"
        norm_diffs["moving_mean"], norm_diffs["moving_variance"] = mm, mv
    norm_diffs[name] = {"training": train_diff, "inference": infer_diff}
    rows.append([name, f"{train_diff:.1e}", f"{infer_diff:.1e}", extra])
table(["layer", "max |ours − Keras|, training (6 batches)", "max |ours − Keras|, inference",
       "moving statistics after 6 steps"], rows)

bn_ours, bn_keras = pairs["batch norm"]
y_train_mode = bn_ours(x_test_batch, training=True)
y_infer_mode = bn_ours(x_test_batch, training=False)
print("batch norm on one batch, training vs inference mode: max difference "
      f"{np.abs(y_train_mode - y_infer_mode).max():.3f} (moving statistics after 7 steps "
      "are not yet the data's)")
RESULTS["normalisation_max_differences"] = norm_diffs

# %% [markdown]
# Every difference is at the level of float32 rounding: the formulas are what Keras
# computes. Batch norm's two modes, on the other hand, give visibly different outputs
# for the same batch early in training, because its moving averages still remember their
# starting values 0 and 1.
#
# **Moving averages.** After t steps on data with a constant channel mean m, the moving
# mean is $m(1 - \text{momentum}^t)$: with Keras' default momentum 0.99 it takes about
# 1/(1 − 0.99) = 100 steps to cover 63% of the way and about 460 to come within 1%. Until
# then, inference (and validation during training) runs with statistics that do not
# match the data. The cell below follows both implementations over 600 steps on batches
# of mean 3 and variance 4.

# %%
steps = 20 if SMOKE else 600
rng = np.random.default_rng(1)
ours = BatchNorm(1)
theirs = keras.layers.BatchNormalization()
theirs.build((None, 1))
track = np.zeros((steps, 4))
for t in range(steps):
    xb = (3.0 + 2.0 * rng.normal(size=(64, 1))).astype("float32")
    ours(xb, training=True)
    theirs(xb, training=True)
    track[t] = [ours.moving_mean[0], float(np.asarray(theirs.moving_mean)[0]),
                ours.moving_variance[0], float(np.asarray(theirs.moving_variance)[0])]
t_axis = np.arange(1, steps + 1)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].plot(t_axis, track[:, 0], label="numpy BatchNorm")
axes[0].plot(t_axis, track[:, 1], "--", label="Keras BatchNormalization")
axes[0].plot(t_axis, 3.0 * (1 - 0.99 ** t_axis), ":", label="3 (1 − 0.99^t)")
axes[0].set_title("moving mean (data mean 3)")
axes[1].plot(t_axis, track[:, 2], label="numpy BatchNorm")
axes[1].plot(t_axis, track[:, 3], "--", label="Keras BatchNormalization")
axes[1].plot(t_axis, 4.0 + (1 - 4.0) * 0.99 ** t_axis, ":", label="4 + (1 − 4) 0.99^t")
axes[1].set_title("moving variance (data variance 4)")
for ax in axes:
    ax.set_xlabel("training step")
    ax.legend(fontsize=8)
savefig(fig, "moving_averages.png")
RESULTS["moving_average_max_difference"] = float(np.abs(track[:, 0] - track[:, 1]).max())
print(f"after {steps} steps: moving mean {track[-1, 0]:.3f} (ours) / {track[-1, 1]:.3f} (Keras), "
      f"moving variance {track[-1, 2]:.3f} / {track[-1, 3]:.3f}; largest gap between the two "
      f"over all steps {RESULTS['moving_average_max_difference']:.1e}")

# %% [markdown]
# **The backward pass.** In training mode μ and σ depend on every example of the batch,
# so the gradient with respect to $x$ has two extra terms (Ioffe & Szegedy 2015, §3):
# with $g = \gamma \odot \partial L/\partial y$ and means over the m values that share a
# statistic,
#
# $$\frac{\partial L}{\partial x} = \frac{g - \overline{g} - \hat x\,\overline{g\,\hat x}}{\sqrt{\sigma^2+\epsilon}},\qquad
# \frac{\partial L}{\partial \gamma} = \sum \frac{\partial L}{\partial y}\hat x,\qquad
# \frac{\partial L}{\partial \beta} = \sum \frac{\partial L}{\partial y}.$$
#
# The check is against TensorFlow's automatic differentiation of the Keras layer in
# float64.

# %%
xb = batch_of(5).astype(np.float64)
upstream = np.random.default_rng(6).normal(size=xb.shape)
rows, bwd = [], {}
for training in (True, False):
    layer = keras_with(keras.layers.BatchNormalization(dtype="float64"), xb.shape, gamma, beta)
    ours = BatchNorm(C, gamma=gamma, beta=beta)
    xt = tf.constant(xb)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt, training=training) * upstream)
    dx_tf, dg_tf, db_tf = tape.gradient(loss, [xt, layer.gamma, layer.beta])
    ours(xb, training=training)
    dx, dg, db = ours.backward(upstream)
    diffs = [float(np.abs(a - np.asarray(b)).max()) for a, b in
             ((dx, dx_tf), (dg, dg_tf), (db, db_tf))]
    bwd["training" if training else "inference"] = diffs
    rows.append(["training" if training else "inference"] + [f"{d:.1e}" for d in diffs]
                + [f"{np.abs(dx.reshape(-1, C).sum(axis=0)).max():.1e}"])
table(["mode", "max |Δ dL/dx|", "max |Δ dL/dγ|", "max |Δ dL/dβ|", "max |Σ dL/dx| per channel"], rows)
RESULTS["batch_norm_backward_max_differences"] = bwd

# %% [markdown]
# In training mode the gradient with respect to x sums to zero over each channel (last
# column): adding a constant to a whole channel changes nothing after the normalisation,
# so the loss cannot depend on that direction.
#
# ## 5. γ and β: one pair per feature, and the output variance is γ²
#
# The course notes get two things wrong here. Their layer-norm formula calls γ and β
# scalars, and their batch-norm summary says each feature's mean and variance are
# brought to β_j and γ_j. The corrections:
#
# 1. **They are vectors, one entry per feature** (per channel for batch and group norm,
#    per normalised feature for layer norm), learned like any other weight; the layer
#    weights below show their shapes.
# 2. **γ scales the standard deviation, so the output variance is γ², not γ.** In
#    training mode feature j of the output has mean $\beta_j$ and variance
#    $\gamma_j^2\,\sigma_j^2/(\sigma_j^2+\epsilon)$, which is $\gamma_j^2$ up to ε.
#    With γ = 1 and β = 0 (the initial values) the layer outputs standardised features;
#    with $\gamma_j = \sqrt{\sigma_j^2 + \epsilon}$ and $\beta_j = \mu_j$ it gives back
#    its input, which is why it can never hurt the network's expressive power.

# %%
for layer, shape in [(keras.layers.BatchNormalization(), (None, 6, 6, 8)),
                     (keras.layers.LayerNormalization(), (None, 10)),
                     (keras.layers.GroupNormalization(groups=4), (None, 6, 6, 8))]:
    layer.build(shape)
    print(f"{type(layer).__name__} on input {shape}: "
          + ", ".join(f"{w.path.split('/')[-1]} {tuple(w.shape)}" for w in layer.weights))

gamma4 = np.array([0.5, 1.0, 2.0, 3.0])
beta4 = np.array([-1.0, 0.0, 1.0, 2.0])
rng = np.random.default_rng(7)
x4 = rng.normal(loc=[5.0, -2.0, 0.0, 10.0], scale=[0.2, 1.0, 4.0, 30.0], size=(4096, 4))
y4 = BatchNorm(4, gamma=gamma4, beta=beta4)(x4, training=True)
layer = keras_with(keras.layers.BatchNormalization(dtype="float64"), x4.shape, gamma4, beta4)
y4k = np.asarray(layer(x4, training=True))
var_in = x4.var(axis=0)
rows = [[j, f"{x4[:, j].mean():.3f}", f"{var_in[j]:.4g}", f"{gamma4[j]:g}", f"{beta4[j]:g}",
         f"{y4[:, j].mean():.4f}", f"{y4[:, j].var():.4f}", f"{y4k[:, j].var():.4f}",
         f"{gamma4[j] ** 2:.4f}", f"{gamma4[j] ** 2 * var_in[j] / (var_in[j] + 1e-3):.4f}"]
        for j in range(4)]
table(["feature j", "input mean", "input variance", "γ_j", "β_j", "output mean (ours)",
       "output variance (ours)", "output variance (Keras)", "γ_j²",
       "γ_j² σ_j²/(σ_j²+ε)"], rows)
RESULTS["gamma_beta"] = {"gamma": gamma4.tolist(), "beta": beta4.tolist(),
                         "output_mean": y4.mean(axis=0).tolist(),
                         "output_variance": y4.var(axis=0).tolist()}

# %% [markdown]
# The output variance equals γ² (exactly γ²σ²/(σ²+ε); the first feature, with input
# variance 0.04, shows the ε correction most), and the output mean equals β.
#
# ## 6. Training with and without batch normalisation
#
# A 10-layer MLP (10 hidden layers of 256 units) on 20,000 Fashion-MNIST training images,
# trained with SGD (learning rate 0.01, momentum 0.9, batches of 128) for the same number
# of epochs with and without a `BatchNormalization` between each dense layer and its
# activation (the dense layers then drop their bias, which β replaces). Two activations:
# sigmoid, which the depth starves of gradient (section 2), and ReLU. Kernels use Keras'
# default Glorot-uniform initialiser. Test accuracy is on the 10,000 test images after
# each epoch, which for the batch-norm networks uses the moving statistics; for those
# networks a callback also measures it with every layer normalising by the statistics
# of the test batch itself, which shows how much of a poor score is due to moving
# averages that lag behind the weights.

# %%
N_TRAIN_BN = 512 if SMOKE else 20_000
N_TEST = 256 if SMOKE else None
EPOCHS_BN = 1 if SMOKE else 10
DEPTH_BN, WIDTH_BN = (3, 32) if SMOKE else (10, 256)
started = time.perf_counter()
fmnist = load_image_classification("fashion_mnist", validation_fraction=0,
                                   max_examples=2048 if SMOKE else None)
x_all, y_all = fmnist.arrays("train")
x_test, y_test = fmnist.arrays("test", limit=N_TEST)
print(fmnist.source, "|", fmnist.describe())
print(f"train images available {len(x_all):,}, test images {len(x_test):,}; "
      f"loaded in {time.perf_counter() - started:.0f} s")
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def deep_mlp(activation, batch_norm, depth=10, width=256):
    layers = [keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten()]
    for _ in range(depth):
        layers.append(keras.layers.Dense(width, use_bias=not batch_norm))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(activation))
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers, name=f"mlp{depth}_{activation}_{'bn' if batch_norm else 'plain'}")


class BatchStatisticsAccuracy(keras.callbacks.Callback):
    """After each epoch, the test accuracy of a batch-norm network when every layer
    normalises with the statistics of the test batch (1,000 images) instead of its
    moving averages; the moving averages are put back afterwards, so training is not
    affected. It separates "the weights are bad" from "the moving statistics are off"."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.accuracy = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        norms = [l for l in self.model.layers if isinstance(l, keras.layers.BatchNormalization)]
        saved = [(l.moving_mean.numpy(), l.moving_variance.numpy()) for l in norms]
        predicted = np.concatenate([
            np.argmax(np.asarray(self.model(self.x[i:i + 1000], training=True)), axis=-1)
            for i in range(0, len(self.x), 1000)])
        for layer, (mean, variance) in zip(norms, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        self.accuracy.append(float(np.mean(predicted == self.y)))


steps_bn = -(-N_TRAIN_BN // 128)
print(f"{steps_bn} steps per epoch: after the first epoch the moving averages (momentum "
      f"0.99) still hold 0.99^{steps_bn} = {0.99 ** steps_bn:.2f} of their initial values")
bn_runs = {}
for activation in ("sigmoid",) if SMOKE else ("sigmoid", "relu"):
    for batch_norm in (False, True):
        keras.utils.set_random_seed(0)
        model = deep_mlp(activation, batch_norm, DEPTH_BN, WIDTH_BN)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), LOSS, metrics=["accuracy"])
        probe = [BatchStatisticsAccuracy(x_test, y_test)] if batch_norm else []
        started = time.perf_counter()
        history = model.fit(x_all[:N_TRAIN_BN], y_all[:N_TRAIN_BN], batch_size=128,
                            epochs=EPOCHS_BN, validation_data=(x_test, y_test), verbose=0,
                            callbacks=probe)
        seconds = time.perf_counter() - started
        bn_runs[(activation, batch_norm)] = dict(
            history.history, seconds=seconds, params=model.count_params(),
            batch_statistics_accuracy=probe[0].accuracy if probe else None)
        print(f"{model.name}: {model.count_params():,} parameters, {seconds:.0f} s, "
              f"final train loss {history.history['loss'][-1]:.3f}, "
              f"test accuracy {history.history['val_accuracy'][-1]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
epochs_axis = np.arange(1, EPOCHS_BN + 1)
for (activation, batch_norm), h in bn_runs.items():
    style = "-" if batch_norm else "--"
    color = "C0" if activation == "sigmoid" else "C1"
    label = f"{activation}, {'batch norm' if batch_norm else 'no normalisation'}"
    axes[0].plot(epochs_axis, h["loss"], style, color=color, marker="o", ms=3, label=label)
    axes[1].plot(epochs_axis, h["val_accuracy"], style, color=color, marker="o", ms=3, label=label)
    if batch_norm:
        axes[1].plot(epochs_axis, h["batch_statistics_accuracy"], ":", color=color, marker="x",
                     ms=4, label=f"{activation}, batch norm with test-batch statistics")
axes[0].set_title("training loss (running mean over each epoch)")
axes[1].set_title("test accuracy after each epoch")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
savefig(fig, "batch_norm_curves.png")
def batch_stats(h, epoch):
    return "—" if h["batch_statistics_accuracy"] is None else f"{h['batch_statistics_accuracy'][epoch]:.4f}"


rows = [[a, "yes" if bn else "no", f"{h['params']:,}", f"{h['loss'][0]:.3f}", f"{h['loss'][-1]:.3f}",
         f"{h['val_accuracy'][0]:.4f}", batch_stats(h, 0), f"{h['val_accuracy'][-1]:.4f}",
         batch_stats(h, -1), f"{max(h['val_accuracy']):.4f}", f"{h['seconds']:.0f}"]
        for (a, bn), h in bn_runs.items()]
table(["activation", "batch norm", "parameters", "train loss, epoch 1", f"train loss, epoch {EPOCHS_BN}",
       "test acc., epoch 1", "... with test-batch statistics", f"test acc., epoch {EPOCHS_BN}",
       "... with test-batch statistics", "best test acc., any epoch", "seconds"], rows)
RESULTS["batch_norm_training"] = {f"{a}/{'bn' if bn else 'plain'}": {
    "loss": h["loss"], "test_accuracy": h["val_accuracy"], "seconds": h["seconds"],
    "batch_statistics_accuracy": h["batch_statistics_accuracy"]}
    for (a, bn), h in bn_runs.items()}

# %% [markdown]
# ## 7. Regularisation: an MLP that over-fits 5,000 images
#
# A 784-512-512-10 ReLU MLP has about 670,000 weights; trained on 5,000 Fashion-MNIST
# images it fits them much better than it fits new images, and the gap between training
# and test accuracy measures how much of what it learnt is memorisation. Each variant below changes one
# thing and trains for the same number of epochs (Adam, learning rate 1e-3, batches of
# 128, seed 0):
#
# | variant | what it adds |
# |---|---|
# | none | — |
# | L2 | `kernel_regularizer=L2(1e-4)` on the hidden layers: the loss gains 1e-4 Σw² (Keras has no factor ½), i.e. weight decay |
# | dropout | `Dropout(0.5)` after each hidden layer: each activation is zeroed with probability 0.5 in training, the others doubled (inverted dropout) |
# | DropConnect | the hidden layers are `DropConnect(512, rate=0.5)`: each *weight* is zeroed with probability 0.5 in training (Wan et al. 2013); inference uses the mean weights |
# | Gaussian noise | `GaussianNoise(0.3)` on the input pixels (scaled to [0, 1]) in training |
# | early stopping | `kerasdl.callbacks.early_stopping(patience=5)`: stop when the validation loss has not improved for 5 epochs and keep the best epoch's weights |
#
# A further 1,000 training images serve as the validation set (early stopping watches
# its loss; the other variants only report it); test accuracy is on the test images.

# %%
N_REG = 400 if SMOKE else 5_000
N_VAL = 100 if SMOKE else 1_000
EPOCHS_REG = 1 if SMOKE else 40
WIDTH_REG = 32 if SMOKE else 512
x_reg, y_reg = x_all[:N_REG], y_all[:N_REG]
x_val, y_val = x_all[N_REG:N_REG + N_VAL], y_all[N_REG:N_REG + N_VAL]


def regularised_mlp(kind):
    layers = [keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten()]
    if kind == "Gaussian noise":
        layers.append(keras.layers.GaussianNoise(0.3, seed=1))
    for i in range(2):
        if kind == "DropConnect":
            layers.append(DropConnect(WIDTH_REG, rate=0.5, activation="relu", seed=i + 1))
        else:
            reg = keras.regularizers.L2(1e-4) if kind == "L2" else None
            layers.append(keras.layers.Dense(WIDTH_REG, activation="relu", kernel_regularizer=reg))
        if kind == "dropout":
            layers.append(keras.layers.Dropout(0.5, seed=i + 1))
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


REG_KINDS = ["none", "L2", "dropout", "DropConnect", "Gaussian noise", "early stopping"]
if SMOKE:  # the custom layer and the callback; the other variants are one Keras layer each
    REG_KINDS = ["none", "DropConnect", "early stopping"]
reg_runs = {}
for kind in REG_KINDS:
    keras.utils.set_random_seed(0)
    model = regularised_mlp(kind)
    model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
    callbacks = [early_stopping(patience=5)] if kind == "early stopping" else []
    started = time.perf_counter()
    history = model.fit(x_reg, y_reg, batch_size=128, epochs=EPOCHS_REG,
                        validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - started
    train_acc = model.evaluate(x_reg, y_reg, verbose=0)[1]  # inference mode, no noise
    test_acc = model.evaluate(x_test, y_test, verbose=0)[1]
    best = int(np.argmin(history.history["val_loss"])) + 1
    reg_runs[kind] = {"train_accuracy": train_acc, "test_accuracy": test_acc,
                      "gap": train_acc - test_acc, "epochs": len(history.history["loss"]),
                      "best_epoch": best, "seconds": seconds,
                      "val_loss": history.history["val_loss"],
                      "val_accuracy": history.history["val_accuracy"]}
    print(f"{kind:15s} epochs {len(history.history['loss']):2d}, train {train_acc:.4f}, "
          f"test {test_acc:.4f}, {seconds:.0f} s")

rows = [[k, r["epochs"], r["best_epoch"], f"{min(r['val_loss']):.3f}", f"{r['val_loss'][-1]:.3f}",
         f"{r['train_accuracy']:.4f}", f"{r['test_accuracy']:.4f}", f"{100 * r['gap']:.2f}"]
        for k, r in reg_runs.items()]
table(["variant", "epochs run", "epoch of lowest val. loss", "lowest val. loss",
       "last val. loss", "train accuracy", "test accuracy", "gap (points)"], rows)
RESULTS["regularisation"] = reg_runs

fig, ax = plt.subplots(figsize=(8, 3.5))
for kind, r in reg_runs.items():
    ax.plot(np.arange(1, r["epochs"] + 1), r["val_loss"], label=kind)
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss")
ax.set_title(f"Validation loss of the MLP on {N_REG:,} images")
ax.legend(fontsize=8)
savefig(fig, "regularisation_val_loss.png")

# %% [markdown]
# ## 8. Magnitude pruning with the polynomial schedule
#
# Han et al. (2015) remove the weights of smallest magnitude and retrain the rest; Zhu &
# Gupta (2017) raise the sparsity gradually during training,
#
# $$s(t) = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{t_1 - t_0}\right)^3,$$
#
# fast at first while many weights are redundant, slowly at the end.
# `kerasdl.scratch.regularization.MagnitudePruning` prunes every kernel to $s(t)$ every
# 50 steps and re-applies the mask after every step, so that pruned weights stay at zero
# (biases are kept). The model is LeNet-300-100 (`build_mlp(hidden_units=(300, 100))`,
# 266,610 parameters), first trained on all 60,000 Fashion-MNIST training images. Each
# pruned model starts from those weights and trains for a few more epochs while the
# schedule raises its sparsity from 0 to the target over the first two thirds of the
# steps. Two comparisons: the same dense model trained for the same extra epochs
# without pruning (sparsity 0: so that the extra training is not credited to pruning),
# and "one-shot" pruning of the trained model to the same sparsity without any
# retraining. The size column is the weights as float32 compressed by zlib
# (`compressed_size`), a proxy for storage: a general-purpose compressor finds the runs
# of zeros (Han et al. go further with sparse indices, quantisation and Huffman coding).
# Each pruned model is also written with `np.savez_compressed` to show the file size.

# %%
EPOCHS_BASE = 1 if SMOKE else 8
EPOCHS_PRUNE = 1 if SMOKE else 4
SPARSITIES = [0.9] if SMOKE else [0.5, 0.8, 0.9, 0.95, 0.98]
x_prune, y_prune = x_all, y_all
steps_per_epoch = -(-len(x_prune) // 128)


def lenet_300_100():
    return build_mlp(hidden_units=(300, 100), name="lenet_300_100")


keras.utils.set_random_seed(0)
base = lenet_300_100()
base.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
started = time.perf_counter()
base.fit(x_prune, y_prune, batch_size=128, epochs=EPOCHS_BASE, verbose=0)
base_weights = base.get_weights()
base_acc = base.evaluate(x_test, y_test, verbose=0)[1]
print(f"dense LeNet-300-100: {base.count_params():,} parameters, test accuracy {base_acc:.4f}, "
      f"{time.perf_counter() - started:.0f} s")


def npz_size(model, name):
    path = os.path.join(WORK, f"{name}.npz")
    np.savez_compressed(path, *model.get_weights())
    return os.path.getsize(path)


kernels = [i for i, w in enumerate(base_weights) if w.ndim == 2]
raw_bytes = sum(w.nbytes for w in base_weights)
dense_size, dense_npz = compressed_size(base), npz_size(base, "lenet_300_100_dense")
base_row = {"one_shot": base_acc, "pruned": base_acc, "kernel_zeros": 0.0,
            "all_zeros": zero_fraction(base_weights), "zlib": dense_size, "npz": dense_npz,
            "seconds": 0.0}
prune_rows, schedules = {}, {}
total_steps = EPOCHS_PRUNE * steps_per_epoch
for sparsity in [0.0] + SPARSITIES:
    # one shot: prune the trained kernels, no retraining
    probe = lenet_300_100()
    pruned_kernels, _ = magnitude_prune([base_weights[i] for i in kernels], sparsity)
    weights = list(base_weights)
    for i, w in zip(kernels, pruned_kernels):
        weights[i] = w
    probe.set_weights(weights)
    probe.compile(loss=LOSS, metrics=["accuracy"])
    one_shot = probe.evaluate(x_test, y_test, verbose=0)[1]
    # gradual: the schedule during a few more epochs of training (sparsity 0: the same
    # extra epochs without pruning, the control every pruned model is compared with)
    keras.utils.set_random_seed(0)
    model = lenet_300_100()
    model.set_weights(base_weights)
    model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
    callbacks = []
    if sparsity:
        pruning = MagnitudePruning(sparsity, end_step=max(2, 2 * total_steps // 3),
                                   begin_step=0, frequency=50)
        callbacks.append(pruning)
    started = time.perf_counter()
    model.fit(x_prune, y_prune, batch_size=128, epochs=EPOCHS_PRUNE, callbacks=callbacks,
              verbose=0)
    seconds = time.perf_counter() - started
    if sparsity:
        schedules[sparsity] = pruning.history
    kernel_values = [w for w in model.get_weights() if w.ndim == 2]
    prune_rows[sparsity] = {
        "one_shot": one_shot, "pruned": model.evaluate(x_test, y_test, verbose=0)[1],
        "kernel_zeros": zero_fraction(kernel_values), "all_zeros": zero_fraction(model.get_weights()),
        "zlib": compressed_size(model), "npz": npz_size(model, f"lenet_300_100_sparsity_{sparsity:g}"),
        "seconds": seconds}
    print(f"sparsity {sparsity:.2f}: one-shot {one_shot:.4f}, pruned while training "
          f"{prune_rows[sparsity]['pruned']:.4f}, {seconds:.0f} s")

rows = [[f"{s:.0%}" if s else f"0 (dense, {EPOCHS_PRUNE} more epochs)", f"{r['kernel_zeros']:.4f}",
         f"{r['one_shot']:.4f}", f"{r['pruned']:.4f}", f"{r['zlib']:,}", f"{r['zlib'] / raw_bytes:.3f}",
         f"{r['npz']:,}", f"{dense_size / r['zlib']:.1f}×"]
        for s, r in [(None, base_row)] + list(prune_rows.items())]
rows[0][0] = f"start: dense after {EPOCHS_BASE} epochs"
table(["target sparsity", "kernel zeros", "test acc., one-shot", f"test acc. after {EPOCHS_PRUNE} more epochs",
       "zlib bytes", "÷ raw float32", ".npz file bytes", "smaller than dense (zlib)"], rows)
print(f"raw float32 size of all {base.count_params():,} weights: {raw_bytes:,} bytes")
RESULTS["pruning"] = {"base_accuracy": base_acc, "raw_bytes": raw_bytes, "base": base_row,
                      "rows": {str(k): v for k, v in prune_rows.items()},
                      "schedules": {str(k): v for k, v in schedules.items()}}

fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
for sparsity, hist in schedules.items():
    steps_done, values = zip(*hist)
    axes[0].step(steps_done, values, where="post", label=f"target {sparsity:.0%}")
grid_t = np.arange(0, total_steps + 1)
axes[0].plot(grid_t, [polynomial_sparsity(int(t), 0, max(2, 2 * total_steps // 3), 0.0, SPARSITIES[-1])
                      for t in grid_t], "k:", lw=1, label="s(t), cubic")
axes[0].set_xlabel("optimizer step")
axes[0].set_ylabel("sparsity of each kernel")
axes[0].set_title("pruning schedule (each pruning event)")
axes[0].legend(fontsize=8)
xs = [0.0] + SPARSITIES
axes[1].plot(xs, [prune_rows[s]["pruned"] for s in xs], "o-",
             label=f"pruned while training ({EPOCHS_PRUNE} epochs)")
axes[1].axhline(base_acc, color="k", lw=0.8, ls=":", label=f"dense after {EPOCHS_BASE} epochs")
axes[1].plot(xs, [prune_rows[s]["one_shot"] for s in xs], "s--", label="one-shot, no retraining")
axes[1].set_xlabel("sparsity")
axes[1].set_ylabel("test accuracy")
ax2 = axes[1].twinx()
ax2.plot(xs, [prune_rows[s]["zlib"] / 1000 for s in xs], "^:", color="grey", label="zlib size (kB)")
ax2.set_ylabel("compressed size (kB)")
axes[1].legend(fontsize=8, loc="lower left")
ax2.legend(fontsize=8, loc="center left")
axes[1].set_title("accuracy and size against sparsity")
savefig(fig, "pruning.png")

with open(os.path.join(WORK, "results.json"), "w") as f:
    json.dump(RESULTS, f, indent=1, default=float)
print("wrote", os.path.join(WORK, "results.json"))

# %% [markdown]
# ## Conclusions
#
# - **Initialisers.** Keras' six variance-scaling initialisers draw the variance of the
#   formulas: on a dense and a convolution kernel every sample variance is within 0.34%
#   of scale/n. Its `*Normal` versions are truncated at two standard deviations and
#   widened by 1/0.87962566103423978, the standard deviation of a unit normal cut at ±2,
#   which `truncated_normal_std(2)` reproduces to every digit.
# - **Depth.** Through 50 layers of width 256 only linear layers with Glorot (factor
#   0.999 per layer forward, 1 backward) and ReLU with He (1.02 and 1.01) keep both
#   variances steady. ReLU with Glorot halves them at every layer (1.4e-15 at layer 50);
#   N(0, 0.01²) wipes out the signal of linear, ReLU and tanh layers (2.5e-80 or less at
#   layer 50); with sigmoid the gradient vanishes whatever the initialiser (at most
#   3.9e-13 of its top value at layer 1).
# - **He's variance.** The course's N(0, 2/√n) has variance 0.125 at n = 256, 16 = √n
#   times He's 2/n = 0.00781. Through 50 ReLU layers the activation variance then grows
#   by 16.27 per layer to 2.49e60, where He's stays at 1.55 (1.017 per layer). The
#   correct formula: variance 2/n, standard deviation √(2/n).
# - **Normalisation.** The numpy batch, layer, group and instance norms equal Keras' to
#   4.7e-6 in training and 1.4e-6 in inference mode (float32 rounding); batch norm's
#   moving statistics agree to 2.5e-7 after 6 steps and 3.7e-6 over 600, and its
#   hand-written backward pass matches TensorFlow's autodiff to 1.5e-13 in float64.
#   Early in training the two modes of batch norm disagree (by up to 5.955 on one batch
#   after 7 steps): the moving averages start at 0 and 1 and move at rate 1 − momentum.
# - **γ and β.** The course calls them scalars, but they are per-feature vectors
#   (shape (8,) for 8 channels, (10,) for 10 features), and γ sets the standard
#   deviation: with γ = (0.5, 1, 2, 3) the output variances were 0.2440, 0.9990, 3.9997
#   and 9.0000, i.e. γ² up to the ε correction, and the output means equalled β.
# - **Batch norm in training** (10-layer MLP, 20,000 images, 10 epochs, one seed).
#   Without normalisation the sigmoid network did not learn at all (loss 2.311, test
#   accuracy 0.1000, chance); with batch norm it reached 0.8415. With ReLU both learn:
#   batch norm lowered the training loss faster (0.145 against 0.319 after 10 epochs)
#   and gave a better first epoch (0.7936 against 0.6975) but no better test accuracy
#   (best epoch 0.8416 against 0.8485; 0.8032 at the last). The test-batch probe shows
#   where the batch-norm networks' poor scores come from: the sigmoid network's 0.1000
#   after the first epoch, when its moving averages still held 0.21 of their initial
#   values, becomes 0.8279 with the test batch's own statistics, and the ReLU network's
#   last-epoch 0.8032 becomes 0.8429.
# - **Regularisation** (784-512-512-10 MLP, 5,000 images, 40 epochs, one seed). Without
#   regularisation: train 0.9628, test 0.8389, a gap of 12.39 points, and a validation
#   loss lowest at epoch 16 (0.435) and 0.637 at epoch 40. Dropout narrowed the gap to
#   8.77 points (test 0.8437), DropConnect to 7.25 (test 0.8327, mostly by lowering the
#   training accuracy to 0.9052), Gaussian input noise to 10.09 (test 0.8361); with
#   each of the three the final validation loss stayed within 0.08 of its minimum. L2
#   at 1e-4 changed almost nothing (gap 12.20, test 0.8332; note that Keras adds the
#   penalty to the validation loss too, so that row's losses are not comparable with
#   the others). Early stopping stopped after 21 epochs with the weights of epoch 16
#   and had the best test accuracy, 0.8488. The test accuracies span only 0.8327 to
#   0.8488 in single runs, so the gaps and the validation curves are the firmer result.
# - **Pruning** (LeNet-300-100 on all 60,000 images: 8 epochs dense, then 4 epochs with
#   the cubic schedule). Pruned while training, the model kept its accuracy up to 90%
#   sparsity: 0.8884 at 50%, 0.8899 at 80% and 0.8809 at 90%, against 0.8737 for the
#   dense model trained the same 4 extra epochs (0.7 to 1.6 points better, in one run
#   each); 0.8641 at 95% and 0.7779 at 98%. Pruned in one shot without retraining it
#   fell to 0.7039 at 80%, 0.3972 at 90% and 0.1126 at 98%. zlib shrank the weights
#   from 988,677 bytes (0.927 of the 1,066,440 raw float32 bytes) to 183,150 at 90%
#   (5.4 times smaller) and 83,069 at 98% (11.9 times); the `.npz` files follow
#   (990,001, 205,006 and 106,028 bytes). At 90% sparsity the compressed weights are
#   0.172 of the raw size, not 0.1: the positions of the kept weights cost bytes too.
