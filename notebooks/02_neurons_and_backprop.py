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
# # Chapter 02 — Neurons, MLPs, activations, losses and backprop by hand
#
# A neuron computes a weighted sum of its inputs plus a bias, z = x·w + b, and passes it
# through a non-linear *activation* a = f(z). A layer is many neurons reading the same
# inputs, Z = X W + b, and a multilayer perceptron (MLP) is layers in a chain. Training
# one needs the gradient of a *loss* with respect to every weight, and backpropagation
# (Rumelhart, Hinton & Williams, 1986) is the chain rule applied from the loss back to
# the first layer.
#
# Everything in this chapter is written out in numpy in `kerasdl.scratch.neurons`, and
# every piece is checked three ways: against Keras (`keras.activations`,
# `keras.losses`, `keras.layers.Dense`), against central differences, and against
# TensorFlow's automatic differentiation.
#
# 1. Activations and their derivatives; softmax and its Jacobian.
# 2. Losses (MSE, binary and categorical cross-entropy) and their gradients.
# 3. The forward and backward pass of a small MLP, one line per equation.
# 4. XOR: what a single layer cannot learn and one hidden layer can.
# 5. The same kind of network in Keras (`kerasdl` model `mlp`) on Fashion-MNIST.

# %%
import json
import logging
import math
import os
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
from kerasdl.data import load_image_classification
from kerasdl.scratch import neurons as nn
from kerasdl.train import get_recipe, load_run, train
from kerasdl.train.runs import is_finished_run
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
RUN_DIR = os.path.join(OUTPUT_ROOT, "ch02_fashion_mnist", "mlp")
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (256 images, 1 epoch, fewer XOR seeds: numbers are meaningless)' if SMOKE else 'full'}; "
      f"runs under {OUTPUT_ROOT}")


def table(header, rows):
    """A Markdown table from a header list and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


def tf_derivative(fn, x, **kwargs):
    """Element-wise derivative of a Keras activation at float64 points, by autodiff."""
    xt = tf.constant(x, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt, **kwargs)
    return y.numpy(), tape.gradient(y, xt).numpy()


# %% [markdown]
# ## 1. Activations
#
# Without a non-linearity, stacked layers collapse into one: X W₁ W₂ is X (W₁W₂). The
# activation is what makes depth add anything. The common ones, with the derivative that
# backpropagation multiplies by (written here as a function of the input z):
#
# | activation | f(z) | f′(z) |
# |---|---|---|
# | sigmoid σ | 1 / (1 + e^(−z)) | σ(z)(1 − σ(z)), at most 1/4 |
# | tanh | (e^z − e^(−z)) / (e^z + e^(−z)) | 1 − tanh²(z) |
# | ReLU | max(z, 0) | 1 for z > 0, else 0 |
# | leaky ReLU | z for z > 0, else αz | 1 for z > 0, else α |
# | ELU | z for z > 0, else α(e^z − 1) | 1 for z > 0, else αe^z |
# | GELU | z Φ(z), Φ the normal CDF | Φ(z) + z φ(z) |
#
# Two conventions to know before comparing with Keras: `keras.activations.leaky_relu`
# defaults to a slope of 0.2 (`keras.layers.LeakyReLU` to 0.3, Maas et al. used 0.01),
# so the slope is passed explicitly below (0.2 on both sides); and Keras' GELU is the
# exact erf form by default, not the tanh approximation of BERT and GPT-2.

# %%
z = np.linspace(-4, 4, 800)  # an even count: no point falls on the kink at 0
NAMES = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"]
OURS_KW = {"leaky_relu": {"alpha": 0.2}}
KERAS_KW = {"leaky_relu": {"negative_slope": 0.2}}

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
rows = []
h = 1e-5
for name in NAMES:
    f, df = nn.ACTIVATIONS[name]
    kw = OURS_KW.get(name, {})
    value, derivative = f(z, **kw), df(z, **kw)
    keras_value, tf_grad = tf_derivative(getattr(keras.activations, name), z,
                                         **KERAS_KW.get(name, {}))
    # Element-wise functions: the central difference of each point on its own.
    central = (f(z + h, **kw) - f(z - h, **kw)) / (2 * h)
    rows.append([f"`{name}`", f"{np.abs(value - keras_value).max():.1e}",
                 f"{np.abs(derivative - central).max():.1e}",
                 f"{np.abs(derivative - tf_grad).max():.1e}"])
    axes[0].plot(z, value, label=name)
    axes[1].plot(z, derivative, label=name)
axes[0].set_title("activation f(z)")
axes[1].set_title("derivative f′(z)")
for ax in axes:
    ax.set_xlabel("z")
    ax.grid(alpha=0.3)
    ax.legend()
axes[0].set_ylim(-1.5, 4)
plt.tight_layout()
plt.show()
table(["activation", "max abs diff, value vs keras.activations",
       "max abs diff, f′ vs central differences", "max abs diff, f′ vs TF autodiff"], rows)
gelu_gap = np.abs(nn.gelu(z) - nn.gelu(z, approximate=True)).max()
print(f"GELU, exact erf form vs tanh approximation: largest difference {gelu_gap:.1e} on [-4, 4]")

# %% [markdown]
# The values and derivatives agree with Keras and TensorFlow to float64 rounding (at most
# 6.7e-16) for sigmoid, tanh, ReLU and ELU. Leaky ReLU and GELU differ by up to 1.2e-8
# and 5.7e-9: TensorFlow builds their float64 constants (the slope, GELU's 1/√2) from
# float32 numbers, so the gap is float32 rounding of a constant, not a different formula.
# The central differences, with a step of 1e-5, agree with the derivatives to 1.4e-11 –
# 4.0e-11, their own truncation and rounding error. The tanh approximation of GELU would
# be off by up to 4.7e-4.
#
# The derivative plot shows what each choice means for backpropagation. The sigmoid's
# derivative is never above 0.25, so each sigmoid layer scales the gradient passing
# through it by at most a quarter; tanh reaches 1 at the origin but both saturate, with
# derivatives near 0 once |z| is a few units. ReLU passes the gradient unchanged where a
# unit is active and blocks it where it is not; leaky ReLU and ELU leave a little
# gradient for negative inputs, and GELU is a smooth ReLU that dips slightly below zero.

# %% [markdown]
# **Softmax** turns a vector of scores (logits) into probabilities,
# sᵢ = e^(zᵢ) / Σⱼ e^(zⱼ). Unlike the activations above it couples its inputs, so its
# derivative is a Jacobian, ∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ − sⱼ), i.e. J = diag(s) − s sᵀ.
# Backpropagation never needs J itself: the gradient that reaches z is
# Jᵀg = s ⊙ (g − (g·s)), O(n) work instead of O(n²). Subtracting max(z) before the
# exponential changes nothing mathematically but keeps it from overflowing.

# %%
rng = np.random.default_rng(0)
logits = rng.normal(scale=2.0, size=6)
s = nn.softmax(logits)
jac = nn.softmax_jacobian(logits)
numeric_jac = np.stack([nn.numerical_gradient(lambda v, i=i: nn.softmax(v)[i], logits.copy())
                        for i in range(len(logits))])
g = rng.normal(size=6)
keras_s = keras.activations.softmax(tf.constant(logits[None], tf.float64)).numpy()[0]
print(f"softmax of {np.round(logits, 2)}:\n  {np.round(s, 4)} (sum {s.sum():.15f})")
print(f"max |ours - keras.activations.softmax|:        {np.abs(s - keras_s).max():.1e}")
print(f"max |J - central differences|:                 {np.abs(jac - numeric_jac).max():.1e}")
print(f"max |s*(g - g.s) - J^T g| (the O(n) backward): "
      f"{np.abs(nn.softmax_backward(logits, g) - jac.T @ g).max():.1e}")
big = np.array([1000.0, 1001.0, 1002.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(big) / np.exp(big).sum()
print(f"logits {big}: naive exp/sum gives {naive}, the shifted form {np.round(nn.softmax(big), 4)}")

# %% [markdown]
# ## 2. Losses and their gradients
#
# The three losses of this chapter, reduced as Keras reduces them by default (a mean over
# the batch; for MSE and binary cross-entropy over every element):
#
# | loss | L | ∂L/∂ŷ (per element, before the 1/n of the mean) |
# |---|---|---|
# | mean squared error | mean (ŷ − y)² | 2(ŷ − y) |
# | binary cross-entropy | −mean [y ln p + (1 − y) ln(1 − p)] | (p − y) / (p(1 − p)) |
# | categorical cross-entropy | −mean over samples of Σₖ yₖ ln pₖ | −yₖ / pₖ |
#
# When the probabilities come from a sigmoid or a softmax, the chain rule through the
# output activation cancels the denominators and the gradient with respect to the
# *logits* is simply **p − y** (divided by the batch size). That is why Keras classifiers
# output logits and compute the loss `from_logits=True`: the combined expression is
# cheaper, and it never takes the logarithm of a probability that has rounded to 0.
# From probabilities Keras clips p to [1e-7, 1 − 1e-7] first.
#
# The table compares each loss with `keras.losses` on a random batch, and its gradient
# with central differences and with TensorFlow's autodiff of the Keras loss.

# %%
rng = np.random.default_rng(1)
batch, classes = 8, 4
y_reg, out_reg = rng.normal(size=(batch, classes)), rng.normal(size=(batch, classes))
y_bin = rng.integers(0, 2, size=(batch, classes)).astype(float)
y_cat = np.eye(classes)[rng.integers(0, classes, size=batch)]
z_out = rng.normal(scale=2.0, size=(batch, classes))

CASES = [  # (label, ours, our gradient, Keras loss, y, prediction, kwargs)
    ("MSE", nn.mse, nn.mse_grad, keras.losses.mean_squared_error, y_reg, out_reg, {}),
    ("binary CE, from probabilities", nn.binary_crossentropy, nn.binary_crossentropy_grad,
     keras.losses.binary_crossentropy, y_bin, nn.sigmoid(z_out), {"from_logits": False}),
    ("binary CE, from logits", nn.binary_crossentropy, nn.binary_crossentropy_grad,
     keras.losses.binary_crossentropy, y_bin, z_out, {"from_logits": True}),
    ("categorical CE, from probabilities", nn.categorical_crossentropy,
     nn.categorical_crossentropy_grad, keras.losses.categorical_crossentropy, y_cat,
     nn.softmax(z_out), {"from_logits": False}),
    ("categorical CE, from logits", nn.categorical_crossentropy,
     nn.categorical_crossentropy_grad, keras.losses.categorical_crossentropy, y_cat, z_out,
     {"from_logits": True}),
]
rows = []
for label, loss, grad, keras_loss, y, out, kw in CASES:
    ours = loss(y, out, **kw)
    analytic = grad(y, out, **kw)
    yt, ot = tf.constant(y, tf.float64), tf.constant(out, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(ot)
        theirs = tf.reduce_mean(keras_loss(yt, ot, **kw))
    tf_grad = tape.gradient(theirs, ot).numpy()
    error = nn.gradient_check(lambda v: loss(y, v, **kw), out.copy(), analytic)
    rows.append([label, f"{ours:.6f}", f"{float(theirs):.6f}", f"{abs(ours - float(theirs)):.1e}",
                 f"{error:.1e}", f"{np.abs(analytic - tf_grad).max():.1e}"])
table(["loss", "ours", "keras.losses", "abs diff", "gradient: max rel. error vs central "
       "differences", "gradient: max abs diff vs TF autodiff"], rows)
fused = nn.categorical_crossentropy_grad(y_cat, z_out, from_logits=True)
print(f"max |dL/dz - (softmax(z) - y)/batch| = "
      f"{np.abs(fused - (nn.softmax(z_out) - y_cat) / batch).max():.1e}")

# %% [markdown]
# The loss values equal Keras' to every printed digit (the float64 differences are 0),
# and the gradients equal TensorFlow's autodiff to 2.8e-17: the cross-entropies compute
# what Keras computes, clipping included. The relative errors of 4.9e-9 to 3.9e-8
# against central differences are the differences' own error: a gradient entry smaller
# than 1e-4 is judged by its absolute error divided by 1e-4, and a central difference
# carries an absolute error of around 1e-11.
#
# **Why classification does not use MSE on a sigmoid.** Take one example with target 1
# and logit z, p = σ(z). With MSE, ∂L/∂z = 2(p − 1)·σ′(z): the sigmoid's derivative
# multiplies the error, and when the network is confidently *wrong* (z very negative)
# σ′(z) is tiny, so the gradient vanishes exactly when it is needed most. With binary
# cross-entropy, ∂L/∂z = p − 1 → −1: the more wrong, the stronger the push.

# %%
zs = np.linspace(-8, 8, 401)
p = nn.sigmoid(zs)
mse_dz = 2 * (p - 1) * nn.sigmoid_grad(zs)
bce_dz = p - 1
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(zs, (p - 1) ** 2, label="MSE (σ(z) − 1)²")
axes[0].plot(zs, -np.log(p), label="binary CE −ln σ(z)")
axes[0].set_ylim(0, 5)
axes[0].set_title("loss for target 1")
axes[1].plot(zs, mse_dz, label="MSE")
axes[1].plot(zs, bce_dz, label="binary CE")
axes[1].set_title("gradient with respect to the logit z")
for ax in axes:
    ax.set_xlabel("logit z")
    ax.grid(alpha=0.3)
    ax.legend()
plt.tight_layout()
plt.show()
for z0 in (-6.0, 0.0, 2.0):
    p0 = nn.sigmoid(np.array(z0))
    print(f"z = {z0:+.0f} (p = {float(p0):.4f}): dL/dz  MSE {float(2 * (p0 - 1) * nn.sigmoid_grad(np.array(z0))):+.4f}"
          f"   binary CE {float(p0 - 1):+.4f}")

# %% [markdown]
# ## 3. Forward and backward pass of a small MLP, written out
#
# A network with 3 inputs, one hidden layer of 4 tanh units and a softmax over 3
# classes, on a batch of n = 5 examples. Weights are laid out `W[fan_in, fan_out]`, the
# layout of a Keras `Dense` kernel, so a row of X times W is one example's layer.
#
# Forward:
#
# Z₁ = X W₁ + b₁,  A₁ = tanh(Z₁),  Z₂ = A₁ W₂ + b₂,  P = softmax(Z₂),
# L = −(1/n) Σ Y ⊙ ln P.
#
# Backward, with δ the gradient of L with respect to a layer's pre-activation Z:
#
# δ₂ = (P − Y)/n,  ∂L/∂W₂ = A₁ᵀ δ₂,  ∂L/∂b₂ = Σ_batch δ₂,
# δ₁ = (δ₂ W₂ᵀ) ⊙ (1 − A₁²),  ∂L/∂W₁ = Xᵀ δ₁,  ∂L/∂b₁ = Σ_batch δ₁.
#
# Every backward line reuses a quantity of the forward pass (A₁, X), which is why
# frameworks keep the activations in memory until the backward pass.

# %%
rng = np.random.default_rng(2)
n = 5
X = rng.normal(size=(n, 3))
Y = np.eye(3)[rng.integers(0, 3, size=n)]
net = nn.MLP([3, 4, 3], activations="tanh", output_activation="softmax",
             loss="categorical_crossentropy", seed=0)
for b in net.biases:  # non-zero biases, so that their gradients are exercised too
    b += rng.normal(scale=0.3, size=b.shape)
W1, b1, W2, b2 = [p.copy() for p in net.parameters()]

# Forward
Z1 = X @ W1 + b1
A1 = np.tanh(Z1)
Z2 = A1 @ W2 + b2
P = nn.softmax(Z2)
L = -np.sum(Y * np.log(P)) / n
# Backward
d2 = (P - Y) / n
dW2, db2 = A1.T @ d2, d2.sum(axis=0)
d1 = (d2 @ W2.T) * (1 - A1 ** 2)
dW1, db1 = X.T @ d1, d1.sum(axis=0)

table(["quantity", "shape"], [[k, v.shape] for k, v in
      dict(X=X, Z1=Z1, A1=A1, Z2=Z2, P=P, d2=d2, d1=d1, dW1=dW1, dW2=dW2).items()])
print(f"loss L = {L:.6f}   (ln 3 = {math.log(3):.6f}, the loss of a uniform guess)")

# %% [markdown]
# Three independent checks of these eight lines:
#
# * **`kerasdl.scratch.neurons.MLP`**, the same equations in a loop over layers;
# * **central differences**: perturb each weight by ±1e-5, recompute the loss, divide;
#   reported as the largest relative error `|a − n| / max(|a|, |n|, 1e-4)`;
# * **TensorFlow's autodiff**: a float64 Keras `Sequential` with the same weights
#   (`Dense(4, "tanh")`, `Dense(3)` giving logits), its loss
#   `categorical_crossentropy(from_logits=True)` differentiated by `tf.GradientTape`.

# %%
net.forward(X)
mlp_grads = [g for pair in zip(*net.backward(Y)) for g in pair]
hand = [dW1, db1, dW2, db2]
params = net.parameters()

twin = keras.Sequential([keras.Input((3,), dtype="float64"),
                         keras.layers.Dense(4, activation="tanh", dtype="float64"),
                         keras.layers.Dense(3, dtype="float64")])
twin.set_weights([W1, b1, W2, b2])
with tf.GradientTape() as tape:
    tf_loss = tf.reduce_mean(keras.losses.categorical_crossentropy(
        tf.constant(Y), twin(X), from_logits=True))
tf_grads = [t.numpy() for t in tape.gradient(tf_loss, twin.trainable_variables)]

rows = []
for label, p, ours, mlp_g, tf_g in zip(["W1", "b1", "W2", "b2"], params, hand, mlp_grads,
                                       tf_grads):
    error = nn.gradient_check(lambda _: net.loss(X, Y), p, ours)
    rows.append([label, p.shape, f"{np.abs(ours - mlp_g).max():.1e}", f"{error:.1e}",
                 f"{np.abs(ours - tf_g).max():.1e}"])
table(["parameter", "shape", "max abs diff vs MLP.backward", "max rel. error vs central "
       "differences", "max abs diff vs TF autodiff"], rows)
print(f"loss: by hand {L:.12f}, MLP {net.loss(X, Y):.12f}, Keras/TF {float(tf_loss):.12f}")

# %% [markdown]
# The hand-written gradients match the `MLP` class exactly (difference 0), central
# differences to 7.3e-10 or better, and TensorFlow to 5.6e-17. A gradient check is worth
# having because a wrong backward pass often still trains, just worse. For instance,
# forgetting the tanh's derivative in δ₁ (a common slip) gives a gradient that still
# points downhill:

# %%
wrong_dW1 = X.T @ (d2 @ W2.T)  # the (1 - A1**2) factor is missing
print(f"gradient check of W1 without the tanh derivative: max rel. error "
      f"{nn.gradient_check(lambda _: net.loss(X, Y), net.weights[0], wrong_dW1):.2f}")
cosine = np.sum(wrong_dW1 * dW1) / (np.linalg.norm(wrong_dW1) * np.linalg.norm(dW1))
print(f"cosine between the wrong and the right gradient of W1: {cosine:.3f}")

# %% [markdown]
# A relative error above 1 is what a wrong gradient looks like; yet the wrong gradient's
# cosine with the right one is positive, so training with it would still lower the loss.
#
# The same checks on deeper networks with other activations and losses (the `MLP` class
# handles any stack; with MSE on a softmax output the backward pass goes through the
# softmax's Jacobian-vector product instead of the fused p − y):

# %%
CONFIGS = [
    ([4, 8, 6, 3], dict(activations=["relu", "elu"], output_activation="softmax",
                        loss="categorical_crossentropy")),
    ([4, 8, 6, 2], dict(activations=["gelu", "sigmoid"], output_activation="linear",
                        loss="mse")),
    ([4, 8, 8, 3], dict(activations="leaky_relu", output_activation="softmax", loss="mse",
                        alpha=0.1)),
    ([4, 8, 1], dict(activations="tanh", output_activation="sigmoid",
                     loss="binary_crossentropy")),
]
rows = []
for sizes, config in CONFIGS:
    rng = np.random.default_rng(3)
    deep = nn.MLP(sizes, seed=1, **config)
    for b in deep.biases:
        b += rng.normal(scale=0.3, size=b.shape)
    x = rng.normal(size=(6, sizes[0]))
    if config["loss"] == "categorical_crossentropy" or config["output_activation"] == "softmax":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=6)]
    elif config["loss"] == "binary_crossentropy":
        y = rng.integers(0, 2, size=(6, sizes[-1])).astype(float)
    else:
        y = rng.normal(size=(6, sizes[-1]))
    deep.forward(x)
    grads = [g for pair in zip(*deep.backward(y)) for g in pair]
    worst = max(nn.gradient_check(lambda _: deep.loss(x, y), p, g)
                for p, g in zip(deep.parameters(), grads))
    hidden = config["activations"]
    hidden = hidden if isinstance(hidden, str) else ", ".join(hidden)
    rows.append(["-".join(map(str, sizes)), hidden, config["output_activation"],
                 config["loss"], f"{worst:.1e}"])
table(["layers", "hidden activations", "output", "loss", "worst rel. error over all "
       "parameters vs central differences"], rows)

# %% [markdown]
# ## 4. XOR: one layer cannot, one hidden layer can
#
# XOR outputs 1 when exactly one of its two inputs is 1. A single layer with a sigmoid,
# p = σ(x·w + b), predicts class 1 where x·w + b > 0: on one side of a straight line. No
# line separates {(0, 1), (1, 0)} from {(0, 0), (1, 1)}: the positives need w₁ + b > 0
# and w₂ + b > 0, whose sum gives w₁ + w₂ + 2b > 0; the negatives need b < 0 and
# w₁ + w₂ + b < 0, whose sum gives w₁ + w₂ + 2b < 0 (Minsky & Papert, 1969). XOR is not
# linearly separable.
#
# Gradient descent does something definite all the same. The cross-entropy of a single
# layer is convex, and on these four points its minimum is at w = 0, b = 0: by symmetry
# the gradient there is exactly zero. So training drives every prediction to 0.5 and the
# loss to ln 2 ≈ 0.6931, the loss of a coin flip. The course's single-layer numpy
# network has no bias; the same argument holds with b fixed at 0 (at w = 0 the
# gradients of (0, 1) and (1, 0), pulling up, cancel those of (1, 1), pulling down, and
# (0, 0) gives σ(0) = 0.5 whatever w is), so it ends the same way.
#
# `nn.train_xor` trains with full-batch gradient descent (2,000 steps, learning rate 1,
# binary cross-entropy on a sigmoid output), first without a hidden layer, then with one
# hidden layer of 4 tanh units.

# %%
single = nn.train_xor(None, epochs=2000, lr=1.0, seed=0)
hidden = nn.train_xor(4, epochs=2000, lr=1.0, seed=0)
rows = []
for x_in, y_true, p1, p2 in zip(nn.XOR_X, nn.XOR_Y, single.predictions, hidden.predictions):
    rows.append([f"({x_in[0]:.0f}, {x_in[1]:.0f})", f"{y_true[0]:.0f}", f"{p1[0]:.4f}",
                 f"{p2[0]:.4f}"])
table(["input", "XOR", "single layer: p", "one hidden layer (4 tanh): p"], rows)
print(f"single layer: loss {single.history[0]:.4f} after the first step -> "
      f"{single.history[-1]:.6f} after 2000 (ln 2 = {math.log(2):.6f}); "
      f"w = {single.net.weights[0].ravel()}, b = {single.net.biases[0]}")
print(f"one hidden layer: loss {hidden.history[0]:.4f} -> {hidden.history[-1]:.6f}")

# %%
grid = np.linspace(-0.5, 1.5, 201)
gx, gy = np.meshgrid(grid, grid)
points = np.stack([gx.ravel(), gy.ravel()], axis=1)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, result, title in ((axes[0], single, "single layer"),
                          (axes[1], hidden, "one hidden layer of 4 tanh units")):
    surface = result.net.predict(points).reshape(gx.shape)
    # 11 bands, so that p = 0.5 lies inside one instead of on a band edge.
    cs = ax.contourf(gx, gy, surface, levels=np.linspace(0, 1, 12), cmap="RdBu_r")
    spread = np.abs(surface - 0.5).max()
    if spread > 1e-3:  # a flat 0.5 has no boundary to draw
        ax.contour(gx, gy, surface, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(nn.XOR_X[:, 0], nn.XOR_X[:, 1], c=nn.XOR_Y.ravel(), cmap="RdBu_r",
               edgecolors="k", s=120, vmin=0, vmax=1)
    ax.set_title(f"{title}: p(class 1)\nmax |p − 0.5| on the square: {spread:.1e}")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
fig.colorbar(cs, ax=axes[1])
axes[2].plot(single.history, lw=3, label="single layer")
axes[2].plot(hidden.history, label="one hidden layer")
axes[2].axhline(math.log(2), color="k", ls=":", lw=1, label="ln 2")
axes[2].set_yscale("log")
axes[2].set_xlabel("gradient-descent step")
axes[2].set_ylabel("binary cross-entropy")
axes[2].set_title("training loss")
axes[2].legend()
axes[2].grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# On the left the single layer's output is 0.5 everywhere to within 1.1e-16 (its weights
# went to about 1e-16), so there is no boundary at all; in the middle the hidden layer
# bends the 0.5 contour (black) into two curves that cut the square into a band holding
# the two positives. The hidden units map the four points into a space where the output
# layer *can* separate them with a line.
#
# Learning XOR does depend on the start. With few hidden units gradient descent can settle
# in a local minimum; the count below repeats the training from several seeds (a run
# counts as solved when every output is within 0.1 of its target).

# %%
SEEDS = range(2 if SMOKE else 20)
rows = []
for units in (2, 3, 4, 8):
    results = [nn.train_xor(units, epochs=2000, lr=1.0, seed=s) for s in SEEDS]
    solved = [bool(np.all(np.abs(r.predictions - nn.XOR_Y) < 0.1)) for r in results]
    stuck = sorted({round(r.history[-1], 3) for r, ok in zip(results, solved) if not ok})
    rows.append([units, f"{sum(solved)} / {len(results)}",
                 ", ".join(f"{v:.3f}" for v in stuck) or "—"])
    if units == 2 and not all(solved):
        seed = solved.index(False)
        example = results[seed]
table(["hidden units", "seeds that solve XOR", "final loss of the others"], rows)
if "example" in globals():
    print(f"2 hidden units, seed {seed}: outputs {np.round(example.predictions.ravel(), 4)} "
          f"for inputs (0,0), (0,1), (1,0), (1,1); loss {example.history[-1]:.4f}, "
          f"(ln 2)/2 = {math.log(2) / 2:.4f}")

# %% [markdown]
# ## 5. The same network in Keras, on Fashion-MNIST
#
# kerasdl's registered `mlp` is this chapter's network at full size: `Flatten`, then
# `Dense(256, relu)`, `Dense(128, relu)` and `Dense(10)` giving logits, trained with
# `SparseCategoricalCrossentropy(from_logits=True)` (the fused p − y gradient of section
# 2). Pixels are divided by 255 inside the model. Each dense layer from n to m units
# holds n·m weights and m biases:

# %%
model = kerasdl.create_model("mlp", input_shape=(28, 28, 1), num_classes=10)
by_hand = sum((fan_in + 1) * fan_out for fan_in, fan_out in ((784, 256), (256, 128), (128, 10)))
print(f"785 x 256 + 257 x 128 + 129 x 10 = {by_hand:,};  Keras counts {model.count_params():,}")

# %% [markdown]
# It trains on Fashion-MNIST (Xiao et al., 2017): 28x28 grey images of ten kinds of
# clothing, a harder drop-in replacement for MNIST digits. The recipe is the model's
# own: Adam at 1e-3 with a half-epoch warm-up and cosine decay, batch 128, 10 epochs, on
# 54,000 training images (6,000 held out for validation); the test set (10,000 images)
# is scored once at the end. A finished run is reused.

# %%
recipe = get_recipe("mlp")
if SMOKE:
    recipe = recipe.replace(epochs=1)
print(recipe.notes)
if not SMOKE and is_finished_run(RUN_DIR):
    print(f"reusing the finished run in {RUN_DIR}")
    trained, record = load_run(RUN_DIR)
else:
    record = train("mlp", "fashion_mnist", output_dir=RUN_DIR, recipe=recipe,
                   max_examples=256 if SMOKE else None, overwrite=SMOKE, verbose=0)
    trained, record = load_run(RUN_DIR)
with open(os.path.join(RUN_DIR, "history.json")) as f:
    history = json.load(f)
print(f"{record['parameters']:,} parameters, {record['recipe']['epochs']} epochs, "
      f"{record['num_examples']['train']:,} training images, trained in "
      f"{record['train_seconds_this_session']:.0f} s")
print(f"test accuracy {100 * record['test_accuracy']:.2f}% on "
      f"{record['num_examples']['test']:,} images (test loss {record['test_loss']:.4f})")

# %%
epochs = np.arange(1, len(history["loss"]) + 1)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, metric in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, history[metric], "o--", label="training (running mean over the epoch)")
    ax.plot(epochs, history["val_" + metric], "o-", label="validation (6,000 held out)")
    ax.set_xlabel("epoch")
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend()
axes[0].set_ylabel("cross-entropy")
plt.tight_layout()
plt.show()
table(["epoch", "training loss", "validation loss", "validation accuracy"],
      [[e, f"{history['loss'][e - 1]:.4f}", f"{history['val_loss'][e - 1]:.4f}",
        f"{100 * history['val_accuracy'][e - 1]:.2f}%"] for e in epochs])

# %% [markdown]
# **The Keras model is the numpy MLP.** Its three dense layers' weights go unchanged into
# `nn.MLP([784, 256, 128, 10], activations="relu", output_activation="softmax")` (same
# `W[fan_in, fan_out]` layout). On the same test images, scaled by 1/255 and flattened,
# the numpy forward pass must give the softmax of Keras' logits up to float32 rounding
# (Keras computes in float32, numpy in float64).

# %%
data = load_image_classification("fashion_mnist", validation_fraction=0.0,
                                 max_examples=256 if SMOKE else 2000)
images, labels = data.arrays("test", limit=256 if SMOKE else 2000)
keras_probs = nn.softmax(trained.predict(images, verbose=0).astype(np.float64))
twin = nn.MLP([784, 256, 128, 10], activations="relu", output_activation="softmax",
              loss="categorical_crossentropy")
dense = [layer for layer in trained.layers if isinstance(layer, keras.layers.Dense)]
twin.weights = [layer.get_weights()[0].astype(np.float64) for layer in dense]
twin.biases = [layer.get_weights()[1].astype(np.float64) for layer in dense]
numpy_probs = twin.predict(images.reshape(len(images), -1) / 255.0)
print(f"{len(images):,} test images: max |numpy - Keras| probability "
      f"{np.abs(numpy_probs - keras_probs).max():.1e}; same predicted class for "
      f"{np.mean(numpy_probs.argmax(1) == keras_probs.argmax(1)) * 100:.2f}%; "
      f"numpy MLP accuracy {np.mean(numpy_probs.argmax(1) == labels) * 100:.2f}%")

# %% [markdown]
# ## Conclusions
#
# - **The numpy pieces are what Keras computes.** Activation values and derivatives
#   agree with `keras.activations` and TensorFlow's autodiff to float64 rounding
#   (≤ 6.7e-16), except leaky ReLU and GELU (≤ 1.2e-8), where TensorFlow rounds a constant
#   through float32. MSE and both cross-entropies equal `keras.losses` exactly in float64,
#   and their gradients equal TensorFlow's to 2.8e-17.
# - **Backpropagation is eight lines for a one-hidden-layer network.** Written out by
#   hand, the gradients of a 3-4-3 tanh/softmax network equal the `MLP` class exactly,
#   TensorFlow's autodiff to 5.6e-17 and central differences to 7.3e-10 (relative), and
#   deeper networks with ReLU, ELU, GELU, sigmoid and leaky-ReLU layers pass the same check
#   (≤ 2.7e-8). Dropping the tanh's derivative gives a relative error of 1.29: the check
#   catches it, although that wrong gradient still has a cosine of 0.70 with the right
#   one and would still train.
# - **Cross-entropy, not MSE, on a sigmoid.** For a target of 1 and a confidently wrong
#   logit z = −6, the gradient on the logit is −0.9975 with binary cross-entropy and only
#   −0.0049 with MSE, about 200 times weaker.
# - **XOR.** Without a hidden layer, gradient descent drives the weights to about 1e-16,
#   every output to 0.5000 and the loss to 0.693147 = ln 2: the best a linear boundary
#   can do on points that are not linearly separable. One hidden layer of 4 tanh units
#   reaches a loss of 0.0010 with outputs 0.0002, 0.9990, 0.9986 and 0.0014. Over 20
#   seeds, 4 and 8 hidden units always solve it; 2 units solve it 12 times and 3 units
#   19 times, and the failures stop at a loss of 0.347 ≈ (ln 2)/2, with two points right
#   and two stuck at 0.5.
# - **The Keras `mlp` on Fashion-MNIST** (235,146 parameters, as counted by hand; Adam
#   1e-3 with warm-up and cosine decay, 10 epochs, 33 s of training on this CPU) reaches
#   **89.03% test accuracy** (test loss 0.3071) and 90.15% on the 6,000 validation
#   images. At the end its training loss (0.2086) is below the validation loss (0.2710):
#   it is starting to overfit, with no dropout. Loaded into the numpy `MLP`, its weights
#   give the same probabilities to 8.8e-7 and the same class on all 2,000 test images
#   checked.
