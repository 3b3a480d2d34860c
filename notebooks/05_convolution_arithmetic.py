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
# # Chapter 05 — Convolution arithmetic and special convolutions
#
# Before a convolutional network is trained, its shapes, its receptive fields, its
# parameter count and its cost are fixed by a few integers per layer: kernel size,
# stride, padding, dilation, groups. This chapter writes the formulas out
# (`kerasdl.scratch.conv_arithmetic`, after Dumoulin & Visin 2016, "A guide to
# convolution arithmetic for deep learning") and checks every one against real Keras
# layers and against `kerasdl.analysis`.
#
# 1. Output sizes: padding, stride, dilation, transposed convolutions and pooling,
#    checked against Keras layers.
# 2. How the receptive field grows through a stack, for plain, pooled, strided and
#    dilated stacks.
# 3. Parameters and multiply-accumulates (MACs) of standard, grouped, dilated,
#    depthwise, separable and transposed convolutions and of pooling, in one table.
# 4. Two pictures: a dilated kernel's footprint and the checkerboard of a transposed
#    convolution.
# 5. What depthwise-separable convolutions save: the ratio 1/N + 1/k² against the
#    counts of the Keras layers, and against the clock.

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
from IPython.display import Markdown, display

import kerasdl
from kerasdl.analysis import layer_macs, receptive_field, summarize
from kerasdl.scratch.conv_arithmetic import (conv_macs, conv_output_size, conv_params,
                                             depthwise_conv_macs, depthwise_conv_params,
                                             effective_kernel_size, global_pool_output_shape,
                                             pool_output_size, same_padding,
                                             separable_conv_macs, separable_conv_params,
                                             stack_receptive_field, transposed_conv_macs,
                                             transposed_conv_output_size,
                                             transposed_conv_params)
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
WORK = os.path.join(OUTPUT_ROOT, "ch05_conv_arithmetic")
os.makedirs(WORK, exist_ok=True)
RESULTS = {}
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (fewer timing repeats; every count is exact in both modes)' if SMOKE else 'full'}; "
      f"outputs under {WORK}")


def table(header, rows):
    """A Markdown table from a header list and rows of cells ("|" in a cell escaped)."""
    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    display(Markdown("\n".join([cells(header), "|" + "---|" * len(header)]
                               + [cells(r) for r in rows])))


def savefig(fig, name):
    fig.savefig(os.path.join(WORK, name), dpi=100, bbox_inches="tight")
    plt.show()


def keras_shape(layers, input_shape):
    """Output shape (batch dropped) of a real call of ``layers`` on zeros."""
    x = np.zeros((1, *input_shape), dtype="float32")
    for layer in layers:
        x = layer(x)
    return tuple(int(d) for d in x.shape[1:])

# %% [markdown]
# ## 1. Output sizes
#
# Along one spatial axis, with input size $i$, kernel $k$, stride $s$, padding $p$ on each
# side and dilation $d$ (taps $d$ apart):
#
# * the dilated kernel spans $k_{\text{eff}} = k + (k-1)(d-1)$ input positions;
# * a convolution outputs $o = \left\lfloor \dfrac{i + 2p - k_{\text{eff}}}{s} \right\rfloor + 1$
#   positions: the number of places the span fits, every $s$-th one kept;
# * Keras' `padding="valid"` is $p = 0$; `padding="same"` pads just enough for
#   $o = \lceil i/s \rceil$, i.e. $\max((o-1)s + k_{\text{eff}} - i, 0)$ zeros in total, the
#   odd one **after** (TensorFlow's rule; a hand-written "p = (k−1)/2" is only right for
#   odd spans and stride 1); `padding="causal"` (Conv1D) puts all $k_{\text{eff}}-1$ zeros
#   before, so no output sees the future;
# * an explicit padding is a `ZeroPadding2D` layer before a "valid" convolution;
# * a transposed convolution maps $i$ back to $o = s(i-1) + a + k_{\text{eff}} - 2p$, where
#   $a$ (`output_padding`, less than $s$) picks one of the $s$ sizes that the forward
#   convolution maps to $i$; for "same" Keras' default gives $o = s\,i$;
# * pooling is a convolution without weights; Keras' default stride is the pool size.
#
# Each row below computes $o$ from the formula and from a real call of the Keras layer.

# %%
L = keras.layers
cases = [
    # description, input (H, W, C), formula output (H, W), Keras layers
    ("Conv2D k3, valid", (28, 28, 1), conv_output_size((28, 28), 3), [L.Conv2D(4, 3)]),
    ("Conv2D k5, valid (LeNet C1 on 32×32)", (32, 32, 1), conv_output_size((32, 32), 5), [L.Conv2D(4, 5)]),
    ("Conv2D k3, same", (28, 28, 1), conv_output_size((28, 28), 3, padding="same"),
     [L.Conv2D(4, 3, padding="same")]),
    ("Conv2D k3, stride 2, valid", (7, 7, 1), conv_output_size((7, 7), 3, 2), [L.Conv2D(4, 3, 2)]),
    ("Conv2D k3, stride 2, same", (7, 7, 1), conv_output_size((7, 7), 3, 2, "same"),
     [L.Conv2D(4, 3, 2, padding="same")]),
    ("Conv2D k4, stride 2, same", (7, 7, 1), conv_output_size((7, 7), 4, 2, "same"),
     [L.Conv2D(4, 4, 2, padding="same")]),
    ("Conv2D k11, stride 4, valid (AlexNet conv1)", (227, 227, 3), conv_output_size((227, 227), 11, 4),
     [L.Conv2D(4, 11, 4)]),
    ("ZeroPadding2D(2) + Conv2D k5 (LeNet on 28×28)", (28, 28, 1), conv_output_size((28, 28), 5, padding=2),
     [L.ZeroPadding2D(2), L.Conv2D(4, 5)]),
    ("ZeroPadding2D(1) + Conv2D k3, stride 2", (6, 6, 1), conv_output_size((6, 6), 3, 2, padding=1),
     [L.ZeroPadding2D(1), L.Conv2D(4, 3, 2)]),
    ("ZeroPadding2D(((0, 2), (1, 1))) + Conv2D k3", (7, 9, 1),
     conv_output_size((7, 9), 3, padding=((0, 2), 1)), [L.ZeroPadding2D(((0, 2), (1, 1))), L.Conv2D(4, 3)]),
    ("Conv2D k3, (1, 2) strides, valid", (7, 9, 1), conv_output_size((7, 9), 3, (1, 2)),
     [L.Conv2D(4, 3, (1, 2))]),
    ("Conv2D k3, dilation 2, valid", (7, 7, 1), conv_output_size((7, 7), 3, dilation=2),
     [L.Conv2D(4, 3, dilation_rate=2)]),
    ("Conv2D k3, dilation 4, valid", (32, 32, 1), conv_output_size((32, 32), 3, dilation=4),
     [L.Conv2D(4, 3, dilation_rate=4)]),
    ("Conv2D k3, dilation 4, same", (32, 32, 1), conv_output_size((32, 32), 3, padding="same", dilation=4),
     [L.Conv2D(4, 3, padding="same", dilation_rate=4)]),
    ("Conv1D k3, dilation 2, causal (length 10)", (10, 1), (conv_output_size(10, 3, padding="causal", dilation=2),),
     [L.Conv1D(4, 3, padding="causal", dilation_rate=2)]),
    ("Conv2DTranspose k3, stride 1, valid", (4, 4, 1), transposed_conv_output_size((4, 4), 3),
     [L.Conv2DTranspose(4, 3)]),
    ("Conv2DTranspose k3, stride 2, valid", (4, 4, 1), transposed_conv_output_size((4, 4), 3, 2),
     [L.Conv2DTranspose(4, 3, 2)]),
    ("Conv2DTranspose k2, stride 2, valid", (4, 4, 1), transposed_conv_output_size((4, 4), 2, 2),
     [L.Conv2DTranspose(4, 2, 2)]),
    ("Conv2DTranspose k3, stride 2, same", (4, 4, 1), transposed_conv_output_size((4, 4), 3, 2, "same"),
     [L.Conv2DTranspose(4, 3, 2, padding="same")]),
    ("Conv2DTranspose k3, stride 2, same, output_padding 0", (4, 4, 1),
     transposed_conv_output_size((4, 4), 3, 2, "same", output_padding=0),
     [L.Conv2DTranspose(4, 3, 2, padding="same", output_padding=0)]),
    ("Conv2DTranspose k4, stride 2, same", (4, 4, 1), transposed_conv_output_size((4, 4), 4, 2, "same"),
     [L.Conv2DTranspose(4, 4, 2, padding="same")]),
    ("Conv2DTranspose k3, dilation 2, valid", (4, 4, 1),
     transposed_conv_output_size((4, 4), 3, dilation=2), [L.Conv2DTranspose(4, 3, dilation_rate=2)]),
    ("MaxPooling2D 2 (stride 2)", (28, 28, 1), pool_output_size((28, 28), 2), [L.MaxPooling2D(2)]),
    ("MaxPooling2D 2 (stride 2), odd input", (7, 7, 1), pool_output_size((7, 7), 2), [L.MaxPooling2D(2)]),
    ("MaxPooling2D 2, same, odd input", (7, 7, 1), pool_output_size((7, 7), 2, padding="same"),
     [L.MaxPooling2D(2, padding="same")]),
    ("MaxPooling2D 3, stride 2 (AlexNet, overlapping)", (55, 55, 1), pool_output_size((55, 55), 3, 2),
     [L.MaxPooling2D(3, 2)]),
    ("AveragePooling2D 3, stride 1, same", (7, 7, 1), pool_output_size((7, 7), 3, 1, "same"),
     [L.AveragePooling2D(3, 1, padding="same")]),
    ("GlobalAveragePooling2D", (7, 7, 8), global_pool_output_shape((7, 7), 8), [L.GlobalAveragePooling2D()]),
    ("GlobalMaxPooling2D, keepdims", (7, 7, 8), global_pool_output_shape((7, 7), 8, keepdims=True),
     [L.GlobalMaxPooling2D(keepdims=True)]),
]
rows, size_checks = [], []
for description, in_shape, formula, layers in cases:
    got = keras_shape(layers, in_shape)
    is_global = "Global" in description
    want = tuple(formula) if is_global else (*formula, got[-1])
    ok = got == want
    size_checks.append(ok)
    rows.append([description, "×".join(map(str, in_shape[:-1])),
                 "×".join(map(str, formula)), "×".join(map(str, got if is_global else got[:-1])),
                 "✓" if ok else "✗"])
table(["layer", "input", "formula output", "Keras output", "equal"], rows)
print(f"{sum(size_checks)} of {len(size_checks)} output sizes equal Keras'")
RESULTS["output_sizes"] = {"cases": len(size_checks), "equal": sum(size_checks)}
assert all(size_checks)

# %% [markdown]
# Where does "same" put its zeros? Total $\max((\lceil i/s\rceil - 1)s + k_{\text{eff}} - i, 0)$,
# split as evenly as possible with the odd one after:

# %%
rows = []
for i, k, s, d in [(7, 3, 1, 1), (7, 4, 1, 1), (7, 3, 2, 1), (8, 3, 2, 1), (7, 4, 2, 1),
                   (28, 5, 1, 1), (32, 3, 1, 4)]:
    before, after = same_padding(i, k, s, d)
    rows.append([i, k, s, d, effective_kernel_size(k, d), before, after, conv_output_size(i, k, s, "same", d)])
table(["i", "k", "s", "d", "k_eff", "zeros before", "zeros after", "o = ⌈i/s⌉"], rows)

# %% [markdown]
# ## 2. Receptive fields
#
# The receptive field of a unit is the set of input pixels it depends on. Going up one
# layer with kernel $k$, stride $s$ and dilation $d$, the field grows by
# $(k_{\text{eff}} - 1)\cdot j$, where the *jump* $j$ is the distance, in input pixels,
# between neighbouring units of the layer below (the product of the strides so far):
#
# $$r_l = r_{l-1} + (k_{\text{eff},l} - 1)\, j_{l-1}, \qquad j_l = j_{l-1}\, s_l,\qquad r_0 = j_0 = 1.$$
#
# So unstrided 3×3 convolutions add 2 pixels per layer (linear growth), while strides or
# pooling multiply the jump and make later layers add more (geometric growth), and so
# do dilations that double from layer to layer (Yu & Koltun 2016), without losing
# resolution. Four stacks, each computed with `stack_receptive_field` and with
# `kerasdl.analysis.receptive_field` on the built Keras model, layer by layer:

# %%
def stack_model(stack, size=224):
    """A Keras model of the stack ("same" padding; max pooling for the "pool" entries)
    and the output tensor of each layer."""
    inputs = keras.Input((size, size, 1))
    x, outs = inputs, []
    for kind, k, s, d in stack:
        if kind == "pool":
            x = L.MaxPooling2D(k, s, padding="same")(x)
        else:
            x = L.Conv2D(1, k, strides=s, dilation_rate=d, padding="same")(x)
        outs.append(x)
    return keras.Model(inputs, x), outs


vgg16 = []
for convs in (2, 2, 3, 3, 3):
    vgg16 += [("conv", 3, 1, 1)] * convs + [("pool", 2, 2, 1)]
STACKS = {
    "13 × conv 3×3": [("conv", 3, 1, 1)] * 13,
    "VGG16 conv part (13 conv 3×3, 5 pool 2×2/2)": vgg16,
    "conv 3×3, stride 2, × 7": [("conv", 3, 2, 1)] * 7,
    "conv 3×3, dilation 1, 2, 4, ..., 64 (Yu & Koltun)": [("conv", 3, 1, 2 ** n) for n in range(7)],
}
rf, rows, rf_checks = {}, [], []
for name, stack in STACKS.items():
    table_ = stack_receptive_field([(k, s, d) for _, k, s, d in stack])
    model, outs = stack_model(stack)
    from_keras = [receptive_field(model, t) for t in outs]
    same = all((f.size[0], f.jump[0]) == (r, j) for f, (r, j) in zip(from_keras, table_))
    rf_checks.append(same)
    rf[name] = table_
    rows.append([name, len(stack), " ".join(str(r) for r, _ in table_), table_[-1][1],
                 "✓" if same else "✗"])
table(["stack", "layers", "receptive field after each layer (pixels per side)", "final jump",
       "equal to kerasdl.analysis"], rows)
RESULTS["receptive_fields"] = {k: v for k, v in rf.items()}
assert all(rf_checks)

fig, ax = plt.subplots(figsize=(8, 4))
for (name, table_), style in zip(rf.items(), ("o-", "o-", "s--", "o:")):
    ax.plot(range(1, len(table_) + 1), [r for r, _ in table_], style, ms=4, label=name)
ax.set_yscale("log", base=2)
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.set_xlabel("layer")
ax.set_ylabel("receptive field (pixels per side)")
ax.set_title("Receptive field growth (the strided and dilated stacks coincide)")
ax.legend(fontsize=8)
savefig(fig, "receptive_fields.png")

# %% [markdown]
# The theoretical field is only an upper bound on what a unit actually uses: the pixels
# near its centre reach it through many more paths than those at its border (Luo et al.
# 2016, "effective receptive field"). It also ignores padding: a field of 212 pixels on a
# 224-pixel image reaches past the border for every unit off the centre.
#
# ## 3. Parameters and multiply-accumulates
#
# For a layer from $C$ input channels to $N$ output channels with a $k\times k$ kernel
# and an output of $H\times W$ positions (biases counted in parameters, not in MACs):
#
# | layer | parameters | MACs |
# |---|---|---|
# | standard | $k^2 C N + N$ | $HW\,k^2 C N$ |
# | grouped ($g$ groups) | $k^2 (C/g) N + N$ | $HW\,k^2 (C/g) N$ |
# | dilated | as standard (same taps, spread out) | as standard |
# | depthwise (multiplier $m$) | $k^2 C m + C m$ | $HW\,k^2 C m$ |
# | separable (depthwise, then 1×1) | $k^2 C m + C m N + N$ | $HW\,C m (k^2 + N)$ |
# | transposed | as standard ($k^2 C N + N$) | $H_{in}W_{in}\,k^2 C N$ (each input scatters through the kernel) |
# | pooling | 0 | 0 multiplications (comparisons or additions only) |
#
# The table builds each layer on a 32×32×64 input (64 → 128 channels, 3×3 kernels,
# "same" padding) and compares the formulas with Keras' `count_params()` and with
# `kerasdl.analysis.layer_macs`.

# %%
H = W = 32
C, N, K = 64, 128, 3
specs = [
    # name, layer, formula params, formula MACs (given the output spatial size)
    ("standard Conv2D", L.Conv2D(N, K, padding="same"),
     conv_params(K, C, N), lambda o: conv_macs(o, K, C, N)),
    ("grouped Conv2D, groups=4", L.Conv2D(N, K, padding="same", groups=4),
     conv_params(K, C, N, groups=4), lambda o: conv_macs(o, K, C, N, groups=4)),
    ("grouped Conv2D, groups=64 (= depthwise, ×2)", L.Conv2D(N, K, padding="same", groups=C),
     conv_params(K, C, N, groups=C), lambda o: conv_macs(o, K, C, N, groups=C)),
    ("dilated Conv2D, dilation 2", L.Conv2D(N, K, padding="same", dilation_rate=2),
     conv_params(K, C, N), lambda o: conv_macs(o, K, C, N)),
    ("strided Conv2D, stride 2", L.Conv2D(N, K, strides=2, padding="same"),
     conv_params(K, C, N), lambda o: conv_macs(o, K, C, N)),
    ("pointwise Conv2D 1×1", L.Conv2D(N, 1), conv_params(1, C, N), lambda o: conv_macs(o, 1, C, N)),
    ("DepthwiseConv2D", L.DepthwiseConv2D(K, padding="same"),
     depthwise_conv_params(K, C), lambda o: depthwise_conv_macs(o, K, C)),
    ("DepthwiseConv2D, depth_multiplier=2", L.DepthwiseConv2D(K, padding="same", depth_multiplier=2),
     depthwise_conv_params(K, C, 2), lambda o: depthwise_conv_macs(o, K, C, 2)),
    ("SeparableConv2D", L.SeparableConv2D(N, K, padding="same"),
     separable_conv_params(K, C, N), lambda o: separable_conv_macs(o, K, C, N)),
    ("Conv2DTranspose, stride 2", L.Conv2DTranspose(N, K, strides=2, padding="same"),
     transposed_conv_params(K, C, N), lambda o: transposed_conv_macs((H, W), K, C, N)),
    ("MaxPooling2D 2×2", L.MaxPooling2D(2), 0, lambda o: 0),
    ("AveragePooling2D 3×3, stride 1, same", L.AveragePooling2D(3, 1, padding="same"), 0, lambda o: 0),
    ("GlobalAveragePooling2D", L.GlobalAveragePooling2D(), 0, lambda o: 0),
    ("GlobalMaxPooling2D", L.GlobalMaxPooling2D(), 0, lambda o: 0),
]
inputs = keras.Input((H, W, C))
rows, cost, cost_checks = [], {}, []
for name, layer, params, macs_of in specs:
    out = layer(inputs)
    spatial = tuple(int(d) for d in out.shape[1:-1])
    macs = macs_of(spatial or (1,))
    keras_params, keras_macs = layer.count_params(), layer_macs(layer)
    ok = keras_params == params and keras_macs == macs
    cost_checks.append(ok)
    cost[name] = {"output": tuple(int(d) for d in out.shape[1:]), "params": params, "macs": macs}
    rows.append([name, "×".join(str(int(d)) for d in out.shape[1:]), f"{params:,}", f"{keras_params:,}",
                 f"{macs:,}", f"{keras_macs:,}", f"{macs / cost['standard Conv2D']['macs']:.3f}",
                 "✓" if ok else "✗"])
table(["layer (input 32×32×64)", "output", "params (formula)", "params (Keras)", "MACs (formula)",
       "MACs (layer_macs)", "MACs ÷ standard", "equal"], rows)
RESULTS["costs"] = cost
assert all(cost_checks)

# %% [markdown]
# The dilated convolution costs exactly what the standard one does and sees a 5×5
# window instead of 3×3; the stride-2 one costs a quarter, because it has a quarter of
# the output positions. Grouping divides the MACs and the weights (not the biases) by
# the number of groups (with 64 groups over 64 input channels each filter sees a single channel: a
# depthwise convolution with multiplier 2). The transposed convolution, counted on its
# 32×32 input, costs what the stride-2 convolution from 64×64×128 to 32×32×64 that it
# transposes costs: the same products, run backwards.
#
# ## 4. Two pictures
#
# **A dilated kernel's footprint.** A 3×3 kernel with dilation $d$ reads 9 pixels spread
# over a $(2d+1)\times(2d+1)$ window. The picture is a real Keras convolution (all
# weights 1, no bias) applied to an image with a single 1 in the middle: the output is
# 1 wherever a unit's footprint covers that pixel, i.e. the footprint itself (mirrored,
# which changes nothing for a symmetric kernel).
#
# **The checkerboard of a transposed convolution.** A transposed convolution with stride
# $s$ copies each input value through the kernel into an $s$-spaced grid of windows.
# When $k$ is not a multiple of $s$ the windows overlap unevenly, so even a constant
# input gives a periodic pattern (Odena, Dumoulin & Olah 2016, "Deconvolution and
# checkerboard artifacts"). With all weights 1 on a constant input of ones, each output
# counts the windows covering it. A kernel divisible by the stride, or nearest-neighbour
# upsampling followed by a convolution, covers every output pixel equally (away from the
# border).

# %%
def ones_layer(layer, input_shape):
    layer.build(input_shape)
    layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    return layer


fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
impulse = np.zeros((1, 15, 15, 1), dtype="float32")
impulse[0, 7, 7, 0] = 1.0
footprints = {}
for ax, d in zip(axes, (1, 2, 3)):
    conv = ones_layer(L.Conv2D(1, 3, dilation_rate=d, padding="same", use_bias=False), impulse.shape)
    image = np.asarray(conv(impulse))[0, :, :, 0]
    footprints[d] = image
    ax.imshow(image, cmap="Greys", vmin=0, vmax=1)
    ax.set_title(f"3×3, dilation {d}: {int(image.sum())} taps over "
                 f"{effective_kernel_size(3, d)}×{effective_kernel_size(3, d)}")
    ax.set_xticks([])
    ax.set_yticks([])
savefig(fig, "dilated_footprints.png")

ones = np.ones((1, 8, 8, 1), dtype="float32")
variants = {
    "Conv2DTranspose k3, stride 2": [ones_layer(L.Conv2DTranspose(1, 3, 2, padding="same", use_bias=False), ones.shape)],
    "Conv2DTranspose k4, stride 2": [ones_layer(L.Conv2DTranspose(1, 4, 2, padding="same", use_bias=False), ones.shape)],
    "UpSampling2D ×2 + Conv2D k3": [L.UpSampling2D(2),
                                    ones_layer(L.Conv2D(1, 3, padding="same", use_bias=False), (1, 16, 16, 1))],
}
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
rows, checker = [], {}
for ax, (name, layers) in zip(axes, variants.items()):
    y = ones
    for layer in layers:
        y = layer(y)
    image = np.asarray(y)[0, :, :, 0]
    interior = image[3:-3, 3:-3]
    checker[name] = sorted(float(v) for v in np.unique(interior))
    im = ax.imshow(image, cmap="viridis")
    ax.set_title(f"{name}\noutput {image.shape[0]}×{image.shape[1]}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    rows.append([name, "×".join(map(str, image.shape)), ", ".join(f"{v:g}" for v in checker[name])])
fig.suptitle("Constant input of ones, all weights 1")
savefig(fig, "transposed_checkerboard.png")
table(["layer on an 8×8 input of ones", "output", "distinct values away from the border"], rows)
RESULTS["checkerboard_interior_values"] = checker
print("k3 stride 2, top-left 4×4 corner of the output:")
print(np.asarray(variants["Conv2DTranspose k3, stride 2"][0](ones))[0, :4, :4, 0])

# %% [markdown]
# With $k = 3$ and $s = 2$, every other output row and column is covered by two windows
# instead of one, so the interior alternates 1, 2 and 4 in a grid: the checkerboard.
# With $k = 4$ every interior pixel is covered by exactly two windows per axis, and the
# upsample-then-convolve layer sees nine ones everywhere.
#
# ## 5. What a depthwise-separable convolution saves
#
# A standard $k\times k$ convolution from $C$ to $N$ channels does $HW\,k^2 C N$ MACs. The
# separable version (MobileNets, Howard et al. 2017, §3.1) filters each channel alone
# ($HW\,k^2 C$) and then mixes channels with a 1×1 convolution ($HW\,C N$). The ratio
#
# $$\frac{HW\,C\,(k^2 + N)}{HW\,k^2 C N} = \frac{1}{N} + \frac{1}{k^2}$$
#
# does not depend on $H$, $W$ or $C$: for many output channels the saving approaches
# $k^2$ (9 for 3×3 kernels). The parameter ratio is the same up to the biases. The table
# measures both ratios on Keras layers (16×16 inputs, $C = 64$).

# %%
rows, ratios = [], []
for k in (3, 5, 7):
    for n in (16, 64, 128, 256, 512):
        inputs = keras.Input((16, 16, 64))
        std_layer, sep_layer = L.Conv2D(n, k, padding="same"), L.SeparableConv2D(n, k, padding="same")
        std_layer(inputs)
        sep_layer(inputs)
        mac_ratio = layer_macs(sep_layer) / layer_macs(std_layer)
        param_ratio = sep_layer.count_params() / std_layer.count_params()
        formula = 1 / n + 1 / k ** 2
        ratios.append({"k": k, "N": n, "formula": formula, "macs": mac_ratio, "params": param_ratio})
        rows.append([k, n, f"{formula:.4f}", f"{mac_ratio:.4f}", f"{param_ratio:.4f}",
                     f"{1 / mac_ratio:.2f}×"])
table(["k", "N", "1/N + 1/k²", "MACs ratio (layer_macs)", "params ratio (count_params)",
       "MACs saved"], rows)
RESULTS["separable_ratios"] = ratios

fig, ax = plt.subplots(figsize=(7, 3.6))
n_grid = np.geomspace(8, 1024, 100)
for i, k in enumerate((3, 5, 7)):
    ax.plot(n_grid, 1 / n_grid + 1 / k ** 2, color=f"C{i}", label=f"1/N + 1/{k}², k = {k}")
    pts = [r for r in ratios if r["k"] == k]
    ax.plot([r["N"] for r in pts], [r["macs"] for r in pts], "o", color=f"C{i}")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("output channels N")
ax.set_ylabel("separable MACs ÷ standard MACs")
ax.set_title("Depthwise-separable savings: formula (lines) and Keras layers (dots)")
ax.legend(fontsize=8)
savefig(fig, "separable_ratio.png")

# %% [markdown]
# **Against the clock.** Fewer MACs are not proportionally less time. A depthwise
# convolution does only $k^2$ multiplications per value it reads, so it is limited by
# memory traffic rather than arithmetic, and libraries optimise dense convolutions far
# more. The cell times one forward pass of each layer on this machine (batch 8, median
# of several calls after a warm-up). The CPU is shared with other jobs, so take the
# times as rough.

# %%
REPEATS = 3 if SMOKE else 7
timing_rows, timings = [], {}
for size, c, n in ([(16, 32, 32)] if SMOKE else [(56, 128, 128), (28, 256, 256), (14, 512, 512)]):
    x = np.random.default_rng(0).normal(size=(8, size, size, c)).astype("float32")
    entry = {}
    for name, layer in (("standard", L.Conv2D(n, 3, padding="same")),
                        ("separable", L.SeparableConv2D(n, 3, padding="same"))):
        layer(x)  # build and warm up
        layer(x)
        seconds = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            np.asarray(layer(x))
            seconds.append(time.perf_counter() - started)
        entry[name] = {"seconds": float(np.median(seconds))}
    entry["macs_ratio"] = separable_conv_macs((size, size), 3, c, n) / conv_macs((size, size), 3, c, n)
    entry["time_ratio"] = entry["separable"]["seconds"] / entry["standard"]["seconds"]
    timings[f"{size}x{size}x{c}->{n}"] = entry
    timing_rows.append([f"{size}×{size}×{c} → {n}", f"{1000 * entry['standard']['seconds']:.1f}",
                        f"{1000 * entry['separable']['seconds']:.1f}", f"{entry['macs_ratio']:.3f}",
                        f"{entry['time_ratio']:.3f}"])
table(["input → N (3×3, batch 8)", "standard (ms)", "separable (ms)", "MACs ratio",
       "time ratio"], timing_rows)
RESULTS["timings"] = timings

# %% [markdown]
# **A whole block.** `kerasdl.analysis.summarize` adds the layers up. Below, a stack of
# four 3×3 convolutions (64 → 128 → 128 → 128 → 128 channels, stride 2 in the third)
# against the same stack with every convolution made depthwise-separable, on 32×32×64.

# %%
def block(separable):
    conv = L.SeparableConv2D if separable else L.Conv2D
    inputs = keras.Input((32, 32, 64))
    x = inputs
    for i, stride in enumerate((1, 1, 2, 1)):
        x = conv(128, 3, strides=stride, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    return keras.Model(inputs, x, name="separable_block" if separable else "standard_block")


rows, blocks = [], {}
for separable in (False, True):
    s = summarize(block(separable))
    blocks["separable" if separable else "standard"] = {
        "parameters": s["parameters"], "macs": s["macs"], "depth": s["depth"],
        "receptive_field": list(s["receptive_field"].size)}
    rows.append(["separable" if separable else "standard", f"{s['parameters']:,}", f"{s['macs']:,}",
                 s["depth"], "×".join(map(str, s["receptive_field"].size))])
table(["block", "parameters", "MACs", "weighted depth", "receptive field"], rows)
print(f"separable / standard: parameters {blocks['separable']['parameters'] / blocks['standard']['parameters']:.3f}, "
      f"MACs {blocks['separable']['macs'] / blocks['standard']['macs']:.3f}")
RESULTS["blocks"] = blocks

with open(os.path.join(WORK, "results.json"), "w") as f:
    json.dump(RESULTS, f, indent=1, default=float)
print("wrote", os.path.join(WORK, "results.json"))

# %% [markdown]
# ## Conclusions
#
# - **Output sizes.** One formula, $o = \lfloor (i + 2p - k_{\text{eff}})/s \rfloor + 1$
#   with the dilated span $k_{\text{eff}} = k + (k-1)(d-1)$, and its transpose
#   $o = s(i-1) + a + k_{\text{eff}} - 2p$, give the output size of all 29 layers
#   tried, exactly as Keras computes it: padding (valid, same, causal, explicit and
#   asymmetric), strides, dilations, transposed convolutions with and without
#   `output_padding`, and pooling. "same" means $\lceil i/s \rceil$ outputs; TensorFlow
#   puts the odd padding pixel after (1 before and 2 after for i = 7, k = 4), so the
#   "(k − 1)/2 on each side" rule only holds for odd spans at stride 1.
# - **Receptive fields.** Thirteen 3×3 convolutions see 27 pixels; VGG16's convolution
#   part, whose five poolings take the jump to 32, sees 212; seven stride-2 convolutions
#   and seven convolutions dilated 1, 2, …, 64 both reach 255, the second without
#   losing resolution (jump 1 instead of 128). Every value equals
#   `kerasdl.analysis.receptive_field` on the built Keras model, layer by layer.
# - **Parameters and MACs.** For all 14 layers of the cost table the formulas equal
#   Keras' `count_params()` and `kerasdl.analysis.layer_macs`. On 32×32×64 → 128 with
#   3×3 kernels a standard convolution has 73,856 parameters and 75,497,472 MACs;
#   dilation changes neither; stride 2 cuts the MACs to 0.25 (a quarter of the
#   positions); 4 groups cut both by 4 (biases excepted); the transposed convolution
#   costs as much as the convolution it transposes; the separable one needs 8,896
#   parameters and 0.119 of the MACs; pooling has neither.
# - **Pictures.** A dilated 3×3 kernel reads 9 pixels spread over 5×5 or 7×7. A stride-2
#   transposed convolution with a 3×3 kernel turns a constant input into a 1-2-4
#   checkerboard; a 4×4 kernel (divisible by the stride) or nearest-neighbour upsampling
#   followed by a 3×3 convolution gives a constant interior (4 and 9).
# - **Separable savings.** The MAC ratio of a depthwise-separable to a standard
#   convolution, measured with `layer_macs` on Keras layers, equals $1/N + 1/k^2$ to four
#   decimals in all 15 configurations, from 0.1736 (k = 3, N = 16) to 0.0224 (k = 7,
#   N = 512): up to 8.84 times fewer MACs for 3×3 kernels and 44.72 for 7×7. The
#   parameter ratio is slightly higher because of the biases (0.1146 against 0.1131 at
#   k = 3, N = 512). The clock gives less: on this shared CPU the separable layer took
#   between 0.18 and 0.29 of the standard layer's time for 0.11-0.12 of its MACs (such
#   timings vary from run to run here), because the depthwise step does few
#   multiplications per value it reads. For a four-convolution block
#   `summarize` gives 61,888 against 516,608 parameters (0.120) and 0.119 of the MACs,
#   with the same 11×11 receptive field.
