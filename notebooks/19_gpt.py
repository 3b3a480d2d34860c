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
# # Chapter 19 — GPT
#
# GPT (Radford et al., 2018) keeps only the decoder of the Transformer (Vaswani et al.,
# 2017): a stack of causal self-attention blocks trained to predict the next token, with
# no encoder and no cross-attention. GPT-2 (Radford et al., 2019) moved the layer
# normalisation to the input of each sublayer and scaled the recipe up. This chapter
# trains a very small GPT on the same task as chapter 15 — the next character of Tiny
# Shakespeare — and sets it against chapter 15's LSTM of about the same size.
#
# 1. The model: `gpt_char_small`, its parameters counted by hand (and GPT-2 small's), the
#    tied input and output embedding, and the causal mask that makes it a language model.
# 2. Training: the two runs, GPT and LSTM, on the same text.
# 3. One table and two plots: parameters, training time, validation and test
#    cross-entropy, throughput; the validation curves against epochs and against time.
# 4. Samples from both models after the same prompt, and what the key/value cache buys
#    when a GPT generates.
# 5. Where the last block's heads look: attention maps of a short line.
# 6. Deployment: the GPT's one-token step as a TFLite file, checked against Keras.

# %%
import json
import logging
import os
import re
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

import keras
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
from IPython.display import Markdown, display

import kerasdl
from kerasdl.data.text import load_codecs
from kerasdl.decoding import greedy_decode
from kerasdl.export.gpt_step import GPTStepRunner, export_gpt_step
from kerasdl.generation import generate, gpt_cached_step_fn
from kerasdl.layers import causal_mask
from kerasdl.models.transformer.gpt import CHAR_SMALL, GPTConfig, gpt_count
from kerasdl.train import get_recipe, load_run, train
from kerasdl.train.runs import is_finished_run
from kerasdl.workflows import notebook_settings

# In a Jupyter kernel the tensorflow logger is back at INFO after the imports: quieten it again.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
SMOKE, OUTPUT_ROOT = notebook_settings()
GPT_RUN = os.path.join(OUTPUT_ROOT, "smoke_gpt_char_small_tiny_shakespeare" if SMOKE
                       else "gpt_char_small_tiny_shakespeare")
LSTM_RUN = os.path.join(OUTPUT_ROOT, "smoke_lstm_lm_tiny_shakespeare" if SMOKE
                        else "lstm_lm_tiny_shakespeare")
TARGET = 1.6  # issue 18: validation cross-entropy at most 1.6 nats per character
SEED = 0
keras.utils.set_random_seed(SEED)
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (64 windows, tiny models, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")


def show(ch):
    """A character as printed in tables and plots: newline as \\n, space as ␣."""
    return {"\n": "\\n", " ": "␣"}.get(ch, ch)


def heatmap(ax, values, title, xlabels=None, ylabels=None, cmap="viridis", vmin=0, vmax=1):
    """A matrix as an image, with tick labels."""
    image = ax.imshow(np.asarray(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), xlabels, fontsize=7)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
    ax.set_title(title, fontsize=9)
    return image


# %% [markdown]
# ## 1. The model
#
# A GPT reads token ids x₁ … x_T and returns, at every position t, logits over the
# vocabulary for x_{t+1}. kerasdl's builder (`kerasdl/models/transformer/gpt.py`) follows
# GPT-2:
#
# * a **token embedding** (V × d) and a **learned position embedding** (P × d, one row
#   per position up to the context length P), added together;
# * N **pre-LN blocks**: x ← x + Attention(LN(x)), then x ← x + FFN(LN(x)), where the
#   attention is causal (section 1.3) and FFN(h) = GELU(h W₁ + b₁) W₂ + b₂ with an inner
#   width of 4d;
# * a final LayerNorm, and logits = h Eᵀ: the **output layer is the token embedding
#   transposed** (section 1.2), with no bias.
#
# `gpt_char_small` has N = 4 blocks of width d = 128 with 4 heads of 32, and a context of
# 128 characters: the CPU-sized configuration of Karpathy's nanoGPT (`shakespeare_char`),
# with a longer context. With Tiny Shakespeare's 65 characters plus padding and unknown,
# V = 67.
#
# ### 1.1 Counting the parameters
#
# Per block: two LayerNorms (a gain and a bias each, 4d), the attention's four d × d
# projections with biases, 4(d² + d) (chapter 18), and the feed-forward network,
# d·4d + 4d + 4d·d + d. Then the two embedding tables, (V + P)·d, and the final LayerNorm,
# 2d. `gpt_count` adds these terms; the cell checks them against the built model, layer
# group by layer group, and does the same sum for GPT-2 small (12 blocks of 768, 12 heads,
# 1,024 positions, a vocabulary of 50,257 byte-pair tokens) without building it.

# %%
def breakdown(config, vocabulary_size):
    """Parameters of build_gpt by component, from the formula."""
    n, d, f = config.layers, config.hidden, config.ff_dim
    return {"token embedding (tied to the output)": vocabulary_size * d,
            "position embedding": config.max_positions * d,
            "self-attention": n * 4 * (d * d + d),
            "feed-forward": n * (d * f + f + f * d + d),
            "layer norms": n * 4 * d + 2 * d}


PATTERNS = {"token embedding (tied to the output)": r"token_embeddings",
            "position embedding": r"position_embeddings",
            "self-attention": r"block\d+_self_attention",
            "feed-forward": r"block\d+_ffn_(inner|outer)",
            "layer norms": r"block\d+_\w+_norm|final_norm"}

gpt = kerasdl.create_model("gpt_char_small", sequence_length=128)
V = 67
small, large = breakdown(CHAR_SMALL, V), breakdown(GPTConfig(), 50_257)
rows = ["| component | gpt_char_small, formula | gpt_char_small, built | share | "
        "GPT-2 small, formula | share |", "|---|---:|---:|---:|---:|---:|"]
for component in small:
    built = sum(layer.count_params() for layer in gpt.layers
                if re.fullmatch(PATTERNS[component], layer.name))
    rows.append(f"| {component} | {small[component]:,} | {built:,} | "
                f"{100 * small[component] / sum(small.values()):.1f}% | "
                f"{large[component]:,} | {100 * large[component] / sum(large.values()):.1f}% |")
rows.append(f"| **total** | **{sum(small.values()):,}** | **{gpt.count_params():,}** | 100% | "
            f"**{sum(large.values()):,}** | 100% |")
display(Markdown("\n".join(rows)))
gpt2_reference = next(iter(kerasdl.model_info("gpt2").reference_params.values()))
lstm_reference = next(iter(kerasdl.model_info("lstm_lm").reference_params.values()))
print(f"gpt_char_small: built {gpt.count_params():,}, gpt_count(CHAR_SMALL, {V}) "
      f"{gpt_count(CHAR_SMALL, V):,}")
print(f"GPT-2 small: gpt_count(GPTConfig(), 50257) {gpt_count(GPTConfig(), 50_257):,}, "
      f"the released checkpoint {gpt2_reference:,} (the paper's Table 2 rounds it to 117M)")
print(f"chapter 15's lstm_lm at {V} characters: {lstm_reference:,} "
      f"({gpt.count_params() / lstm_reference:.2f} times the GPT's count)")

# %% [markdown]
# The two models are of one size; the difference is where the weights sit. GPT-2 small
# keeps almost a third of its weights in the token table, because its vocabulary is large;
# a character vocabulary makes the embeddings almost free, and nearly everything is in the
# blocks. In both, the feed-forward networks hold twice as many weights as the attention.
#
# ### 1.2 Tied input and output embeddings
#
# The output layer has to map a d-dimensional state to V logits: a d × V matrix. Press &
# Wolf (2017) observed that the input embedding E (V × d) can serve for it, transposed:
# the logit of token v is the dot product of the final state with v's own embedding
# vector. Tying saves V·d weights (38.6 million in GPT-2 small, 8,576 here), and each row
# of E now gets a gradient at every position — as the output weight of the target and of
# every competitor — not only where its token appears in the input. The model's
# `TiedEmbedding` layer holds one matrix and is called twice; the check below recomputes
# the logits by hand from the final LayerNorm's output and E.

# %%
probe_ids = np.random.default_rng(SEED).integers(2, V, size=(2, 128)).astype("int32")
final_states = keras.Model(gpt.inputs, gpt.get_layer("final_norm").output)
E = keras.ops.convert_to_numpy(gpt.get_layer("token_embeddings").embeddings)
by_hand = final_states.predict_on_batch(probe_ids) @ E.T
logits = np.asarray(gpt.predict_on_batch(probe_ids))
print(f"token embedding E {E.shape}; weights of the token_embeddings layer: "
      f"{[tuple(w.shape) for w in gpt.get_layer('token_embeddings').weights]}")
print(f"max |final state @ Eᵀ - the model's logits| = {np.abs(by_hand - logits).max():.1e}")

# %% [markdown]
# ### 1.3 The causal mask
#
# Trained on whole windows, the model predicts all 128 next characters in one pass; the
# prediction at position t must not see the characters after t, its own target among
# them. Every self-attention layer therefore lets query i attend to keys j ≤ i only:
# `kerasdl.layers.causal_mask` (chapter 18), the lower triangle below, which Keras'
# `MultiHeadAttention(use_causal_mask=True)` applies inside the model. The second plot
# tests the whole network: change the character at position 64 of a window, and the
# logits at positions 0 … 63 do not move, while every later position's do.

# %%
mask = keras.ops.convert_to_numpy(causal_mask(12))[0]
changed = probe_ids.copy()
changed[:, 64] = 2 + (changed[:, 64] - 1) % (V - 2)  # another character at position 64
shift = np.abs(np.asarray(gpt.predict_on_batch(changed)) - logits).max(axis=(0, 2))
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
heatmap(axes[0], mask, "causal_mask(12): black where query i may read key j (j ≤ i)",
        range(12), range(12), cmap="Greys")
axes[0].set_xlabel("key position j")
axes[0].set_ylabel("query position i")
axes[1].semilogy(np.arange(128), np.maximum(shift, 1e-12), marker=".", linestyle="none")
axes[1].axvline(64, color="C3", linestyle="--", label="the changed position")
axes[1].set_xlabel("position t")
axes[1].set_ylabel("max |change of the logits| (floor 1e-12)")
axes[1].set_title("Changing one input character changes the predictions from there on")
axes[1].legend()
axes[1].grid(alpha=0.3)
plt.tight_layout()
plt.show()
print(f"largest change before position 64: {shift[:64].max():.1e}; "
      f"smallest from 64 on: {shift[64:].min():.1e}")
del gpt, final_states

# %% [markdown]
# ## 2. Training the two models
#
# Both runs read the same Tiny Shakespeare splits with the same character vocabulary and
# differ in their model and recipe:
#
# * **`lstm_lm`** (chapter 15): two LSTM layers of 256 on 64-d embeddings, windows of 100
#   characters, Adam at 3·10⁻³ with a warm-up and a cosine decay, 30 epochs.
# * **`gpt_char_small`**: windows of 128 characters, 30 epochs of batches of 64, AdamW
#   (Loshchilov & Hutter, 2019) at 10⁻³ with weight decay 0.1, a warm-up and a cosine
#   decay, gradients clipped to a global norm of 1. Dropout 0.1 acts on the embeddings,
#   the attention weights and every sublayer's output. The recipe's source is nanoGPT's
#   `shakespeare_char` example (Karpathy, 2022), whose peak rate, batch size, weight
#   decay and clipping it takes. nanoGPT's example itself trains a larger model (6 blocks
#   of 384, a context of 256) for a fixed number of iterations, with dropout 0.2, Adam's
#   β₂ = 0.99, a learning rate that decays to 10⁻⁴ rather than 0, and weight decay on the
#   weight matrices only; Keras' AdamW here decays every weight.
#
# The runs are trained outside this notebook, resumably, by
#
#     nohup nice -n 19 bash benchmarks/long_runs.sh gpt >> saved_models/long_runs.log 2>&1 &
#
# which runs `kerasdl train gpt_char_small --dataset tiny_shakespeare --output
# saved_models/gpt_char_small_tiny_shakespeare` and appends its console output to
# `train.log` in the run folder (`shakespeare` does the same for the LSTM). The cell below
# reuses finished runs; without one it trains the same run in the same folder with
# `kerasdl.train.train` (an interrupted run resumes where it stopped — but do not start it
# while the background script is training that folder). In smoke mode both models are
# tiny (a GPT of one block of width 16 with 2 heads; an LSTM of 32 units) and train for
# one epoch on 64 windows of 32 characters.

# %%
gpt_recipe, lstm_recipe = get_recipe("gpt_char_small"), get_recipe("lstm_lm")
print("gpt_char_small recipe:", gpt_recipe.notes)
print("lstm_lm recipe:       ", lstm_recipe.notes)
if SMOKE:
    smoke = dict(epochs=1, batch_size=32, sequence_length=32)
    train("gpt_char_small", "tiny_shakespeare", output_dir=GPT_RUN,
          recipe=gpt_recipe.replace(**smoke), max_examples=64,
          model_kwargs={"layers": 1, "hidden": 16, "heads": 2, "ff_dim": 32,
                        "max_positions": 32},
          overwrite=True, verbose=0)
    train("lstm_lm", "tiny_shakespeare", output_dir=LSTM_RUN,
          recipe=lstm_recipe.replace(**smoke), max_examples=64,
          model_kwargs={"units": 32, "embedding_dim": 16}, overwrite=True, verbose=0)
else:
    if not is_finished_run(GPT_RUN):
        train("gpt_char_small", "tiny_shakespeare", output_dir=GPT_RUN, verbose=2)
    if not is_finished_run(LSTM_RUN):
        train("lstm_lm", "tiny_shakespeare", output_dir=LSTM_RUN, verbose=2)

runs = {}
for label, run_dir in (("GPT", GPT_RUN), ("LSTM", LSTM_RUN)):
    model, record = load_run(run_dir)
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    runs[label] = {"dir": run_dir, "model": model, "record": record, "history": history,
                   "codec": load_codecs(run_dir)["text"]}
    print(f"{label}: {record['model']} on {record['dataset']}, {model.count_params():,} "
          f"parameters; {record['preprocessing']}; windows {record['num_examples']}")
print("same character vocabulary:",
      runs["GPT"]["codec"].vocabulary == runs["LSTM"]["codec"].vocabulary)

# %% [markdown]
# ## 3. The comparison
#
# **Training time.** A run's `history.json` holds, per epoch, `examples_per_second`:
# training windows divided by the seconds of that epoch's training steps (validation
# excluded; the first epoch includes tracing). Windows ÷ that rate gives the seconds of
# each epoch's training, and their sum the time the model spent training, for both runs
# measured the same way. A run trained by `benchmarks/long_runs.sh` also has its console
# log, `train.log`, whose per-epoch seconds (validation included) summed over every
# session are the wall time `benchmarks/long_run_record.py` records; the table shows it
# where there is one. Both runs trained at `nice 19` on a shared two-core machine, so
# their speeds also depend on what else was running: read the times as rough.
#
# **Throughput** is the median over epochs, in windows per second and in characters per
# second (windows of different lengths: 128 and 100 characters).
#
# **Scores.** `val_loss` in the history is the validation cross-entropy in nats per
# character after each epoch (best and last epoch); `run.json` holds the final model's
# validation and test scores, computed over whole splits by `kerasdl.train`. Each run cuts
# the texts into windows of its own length and scores whole windows, each read from its
# start, so the two score almost, not exactly, the same characters.

# %%
EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) - (\d+)s - ")


def console_seconds(run_dir):
    """Seconds of every finished epoch in the run's console log, or None without one."""
    path = os.path.join(run_dir, "train.log")
    if not os.path.isfile(path):
        return None
    seconds = []
    with open(path) as f:
        for line in f:
            match = EPOCH_LINE.match(line)
            if match and match.group(1) == match.group(2):
                seconds.append(int(match.group(3)))
    return seconds


for run in runs.values():
    record, history = run["record"], run["history"]
    missing = [np.nan] * len(history["loss"])  # an epoch without a log row is NaN
    run["rate"] = np.array(history.get("examples_per_second", missing), dtype=float)
    run["epoch_seconds"] = record["num_examples"]["train"] / run["rate"]
    run["console_seconds"] = console_seconds(run["dir"])
    run["val"] = np.array(history.get("val_loss", missing), dtype=float)


def cell(run, what):
    record, history = run["record"], run["history"]
    rate = float(np.nanmedian(run["rate"]))
    if what == "parameters":
        return f"{record['parameters']:,}"
    if what == "context":
        return f"{record['sequence_length']}"
    if what == "epochs":
        return f"{len(history['loss'])}"
    if what == "train_time":
        return f"{np.nansum(run['epoch_seconds']):,.0f}"
    if what == "console_time":
        seconds = run["console_seconds"]
        return f"{sum(seconds):,} ({len(seconds)} epochs)" if seconds else "—"
    if what == "best_val":
        best = int(np.nanargmin(run["val"]))
        return f"{run['val'][best]:.3f} (epoch {best + 1})"
    if what == "last_val":
        return f"{run['val'][-1]:.3f}"
    if what in ("validation", "test"):
        return (f"{record[f'{what}_nats_per_token']:.3f} "
                f"({record[f'{what}_bits_per_token']:.3f} bits)")
    if what == "scored":
        return f"{record['validation_tokens']:,} / {record['test_tokens']:,}"
    if what == "windows":
        return f"{rate:,.1f}"
    if what == "characters":
        return f"{rate * record['sequence_length']:,.0f}"
    raise ValueError(what)


ROWS = [("parameters", "parameters"),
        ("context (characters per window)", "context"),
        ("epochs", "epochs"),
        ("time in training steps, s (sum over epochs)", "train_time"),
        ("console wall time, s (sum of train.log's epochs)", "console_time"),
        ("validation nats/char, best epoch (history)", "best_val"),
        ("validation nats/char, last epoch (history)", "last_val"),
        ("validation nats/char, final model (run.json)", "validation"),
        ("test nats/char, final model (run.json)", "test"),
        ("characters scored, validation / test", "scored"),
        ("training windows per second (median epoch)", "windows"),
        ("training characters per second (median epoch)", "characters")]
table = ["| | GPT (`gpt_char_small`) | LSTM (`lstm_lm`) |", "|---|---:|---:|"]
table += [f"| {label} | {cell(runs['GPT'], key)} | {cell(runs['LSTM'], key)} |"
          for label, key in ROWS]
display(Markdown("\n".join(table)))
if not SMOKE:
    for label, run in runs.items():
        h = run["record"]["validation_nats_per_token"]
        print(f"{label}: issue 18 target, at most {TARGET} nats/char on validation: "
              f"{'met' if h <= TARGET else 'NOT met'} ({h:.3f})")

# %% [markdown]
# The same validation curves twice: against the epoch, and against the training time
# spent so far (the cumulative sum of the epochs' training seconds above), which is the
# fairer axis when one model's epoch costs more than the other's. Dashed: the training
# loss, averaged over each epoch with dropout on.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for (label, run), color in zip(runs.items(), ("C0", "C1")):
    history = run["history"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    minutes = np.nancumsum(run["epoch_seconds"]) / 60
    name = run["record"]["model"]
    for ax, x in zip(axes, (epochs, minutes)):
        ax.plot(x, run["val"], marker="o", markersize=3, color=color,
                label=f"{label} ({name}), validation")
        ax.plot(x, history["loss"], linestyle="--", color=color, alpha=0.6,
                label=f"{label}, training")
for ax, xlabel in zip(axes, ("epoch", "training time so far (minutes)")):
    ax.axhline(TARGET, color="C3", linestyle=":", label=f"target ({TARGET} nats/char)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.grid(alpha=0.3)
axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].set_title("Validation cross-entropy per epoch")
axes[1].set_title("… and against training time")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Samples, and the key/value cache
#
# Both models continue the prompt "ROMEO:", by sampling at a temperature τ = 0.8 (the
# logits divided by τ before the softmax, chapter 15) with one seed, and greedily.
# `kerasdl.generation.generate` drives `kerasdl.decoding`'s searches for both.
#
# The two models remember differently. The LSTM carries a state from character to
# character, so (as in chapter 15) it is rebuilt with a free input length and reads the
# whole text so far. The GPT sees at most its context: once the text is longer than its
# window, the step function feeds it the last window only. Anything further back is
# gone.

# %%
PROMPT = "ROMEO:"
LENGTH = 40 if SMOKE else 300
TAU = 0.8
gpt, gpt_codec = runs["GPT"]["model"], runs["GPT"]["codec"]
lstm_record, lstm_codec = runs["LSTM"]["record"], runs["LSTM"]["codec"]
lstm = kerasdl.create_model("lstm_lm", vocabulary_size=lstm_record["vocabulary_size"],
                            **lstm_record.get("model_kwargs", {}))
lstm.set_weights(runs["LSTM"]["model"].get_weights())
WINDOW = gpt.input_shape[1]
print(f"GPT context: {WINDOW} characters; LSTM rebuilt with input shape {lstm.input_shape}")

samples = {}
for label, model, codec, cache in (("GPT", gpt, gpt_codec, True),
                                   ("LSTM", lstm, lstm_codec, False)):
    prompt = np.array(codec.encode([PROMPT])[0], dtype="int32")
    assert (prompt > 1).all(), "the prompt has characters outside the vocabulary"
    samples[f"{label}, sampling τ = {TAU}"] = codec.decode(
        generate(model, prompt, LENGTH, method="sample", temperature=TAU, seed=SEED,
                 cache=cache))
    samples[f"{label}, greedy"] = codec.decode(
        generate(model, prompt, LENGTH, method="greedy", cache=cache))
for name, text in samples.items():
    print(f"===== {name} " + "=" * max(0, 60 - len(name)))
    print(text)
    print()

# %% [markdown]
# Things to compare: whether each keeps the play's layout (a name in capitals, a colon, a
# speech in verse lines, the next speaker); which spells more words right; whether the
# greedy outputs loop, and on what; and whether the GPT's text loses its thread after
# 128 characters, where its memory ends, while the LSTM's — whose memory is a fading
# state — does not visibly change there.
#
# **The key/value cache.** Generating one character at a time, a plain step function runs
# the model over the whole prefix at every step (`kerasdl.decoding.lm_step_fn`; for a
# model with a fixed input length, over the whole padded window). But the causal mask
# means that the keys and values a block computes at position t never change once t is in
# the prefix. `kerasdl.generation.gpt_cached_step_fn` keeps them, and each step runs the
# blocks on the new position alone, attending over the cached keys and values. The two
# must give the same tokens; the cell times both, greedily, after a warm-up run of each
# (which traces the computation), over as many new characters as fit in the window.

# %%
prompt = np.array(gpt_codec.encode([PROMPT])[0], dtype="int32")
NEW = WINDOW - len(prompt)
for cache in (True, False):  # warm-up: tracing is not what is being timed
    generate(gpt, prompt, 4, cache=cache)
timings, outputs = {}, {}
for cache in (True, False):
    start = time.perf_counter()
    outputs[cache] = generate(gpt, prompt, NEW, method="greedy", cache=cache)
    timings[cache] = time.perf_counter() - start
assert np.array_equal(outputs[True], outputs[False]), "cached and uncached tokens differ"
sampled = [generate(gpt, prompt, NEW, method="sample", temperature=TAU, seed=SEED,
                    cache=cache) for cache in (True, False)]
step = gpt_cached_step_fn(gpt)
greedy_decode(step, prompt[None], len(prompt) + NEW)
rows = ["| generation | seconds | ms per character | positions run through the blocks |",
        "|---|---:|---:|---:|",
        f"| with the cache (`gpt_cached_step_fn`) | {timings[True]:.3f} | "
        f"{1000 * timings[True] / NEW:.2f} | {step.positions_computed:,} |",
        f"| without (`lm_step_fn`, the padded window each step) | {timings[False]:.3f} | "
        f"{1000 * timings[False] / NEW:.2f} | {NEW * WINDOW:,} |"]
display(Markdown("\n".join(rows)))
print(f"{NEW} new characters after {PROMPT!r}: identical greedy tokens with and without "
      f"the cache: True (asserted); identical samples at τ = {TAU}: "
      f"{bool(np.array_equal(*sampled))}; speed-up {timings[False] / timings[True]:.2f}x")

# %% [markdown]
# The cached step computes one position instead of a whole window, but on a model this
# small much of a step's time is fixed overhead (calling into TensorFlow, copying the
# cache), so the speed-up is far smaller than the ratio of positions; it grows with the
# length generated. `benchmarks/kv_cache.py` measured it on
# `gpt_char_small` with random weights and a free input length (where the uncached step
# runs the prefix, not a padded window):

# %%
kv_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(kerasdl.__file__))),
                       "benchmarks", "results", "kv_cache.json")
if os.path.isfile(kv_path):
    with open(kv_path) as f:
        kv = json.load(f)
    rows = ["| new tokens | ms/token, cached | ms/token, uncached | speed-up | "
            "identical tokens |", "|---:|---:|---:|---:|---|"]
    rows += [f"| {r['new_tokens']} | {r['ms_per_token_cached']:.2f} | "
             f"{r['ms_per_token_uncached']:.2f} | {r['speedup']:.2f} | {r['identical_tokens']} |"
             for r in kv["results"]]
    display(Markdown("\n".join(rows)))
    print(f"{kv['command']}; {kv['machine']}; {kv['statistic']}")
else:
    print(f"no benchmark record at {kv_path}")

# %% [markdown]
# ## 5. Where the last block looks
#
# The model returns logits only; the attention weights are inside the layer named
# `block{N}_self_attention` of the last block N, a `keras.layers.MultiHeadAttention`.
# Its input is the output of the block's first LayerNorm, `block{N}_self_attention_norm`.
# A sub-model from the GPT's input to that LayerNorm's output (and to the attention's
# own output, for a check) captures it for one line, and calling the same layer on it
# with `use_causal_mask=True, return_attention_scores=True` recomputes the attention
# together with its weights, [batch, heads, query, key]. The line is padded to the
# model's window; the causal mask keeps the padding after it from changing anything
# before it.

# %%
LINE = "JULIET:\nO Romeo, Romeo!"
line_ids = gpt_codec.encode([LINE])[0][:WINDOW]
window = np.zeros((1, WINDOW), dtype="int32")
window[0, :len(line_ids)] = line_ids
last = max(int(m.group(1)) for layer in gpt.layers
           if (m := re.fullmatch(r"block(\d+)_self_attention", layer.name)))
attention = gpt.get_layer(f"block{last}_self_attention")
probe = keras.Model(gpt.inputs, [gpt.get_layer(f"block{last}_self_attention_norm").output,
                                 attention.output])
normed, inside = probe.predict_on_batch(window)
recomputed, scores = attention(normed, normed, use_causal_mask=True,
                               return_attention_scores=True, training=False)
scores = keras.ops.convert_to_numpy(scores)[0, :, :len(line_ids), :len(line_ids)]
print(f"{attention.name}: {attention.num_heads} heads of {attention.key_dim}; max |recomputed "
      f"- the model's own output| = "
      f"{np.abs(keras.ops.convert_to_numpy(recomputed) - inside).max():.1e}")
print(f"weights above the diagonal (future keys): {np.abs(np.triu(scores, 1)).max():.1e}; "
      f"row sums {scores.sum(-1).min():.4f} … {scores.sum(-1).max():.4f}")

chars = [show(gpt_codec.vocabulary[i]) for i in line_ids]
distance = np.arange(len(chars))[:, None] - np.arange(len(chars))[None, :]
heads = scores.shape[0]
fig, axes = plt.subplots(1, heads, figsize=(4.2 * heads, 4.6), squeeze=False)
for h, ax in enumerate(axes[0]):
    mean_distance = float((scores[h] * distance).sum(-1).mean())
    heatmap(ax, scores[h], f"head {h + 1}: looks back {mean_distance:.1f} characters "
            "on average", chars, chars)
    ax.set_xlabel("key (character read)")
    if h == 0:
        ax.set_ylabel("query (predicts the next character)")
fig.suptitle(f"Self-attention weights of block {last}, the last one")
plt.tight_layout()
plt.show()
print(f"for scale: a head spreading its weight evenly over the keys it may read would look "
      f"back {float(np.arange(len(chars)).mean() / 2):.1f} characters on average")

# %% [markdown]
# Row t is the query at character t, which predicts character t + 1; its cells show which
# earlier characters the head read to do so, and the title gives the average distance it
# looks back (0: the current character only). Things to look for in the trained model: a
# head that reads mostly the previous character or two (spelling is local); a head that
# parks its weight on the first character or on the newline, when it has nothing better
# to read; and, after "Romeo, R", a head that finds the earlier "Romeo" and copies what
# followed it (an "induction head", Olsson et al., 2022). One line and one block are a
# small window into the model: the other blocks have maps of their own, and a key at
# position j is by then a mixture of everything up to j, not the character alone.

# %% [markdown]
# ## 6. Deployment: the step decoder as a TFLite file
#
# A phone that generates text wants the cached step, not the whole model:
# `kerasdl.export.gpt_step.export_gpt_step` writes it as a TFLite file whose inputs are one
# token, its position and the key and value caches of every block, and whose outputs are
# the next-token logits and the updated caches. The app keeps the caches between calls.
# The export verifies itself: it feeds the file a random sequence of `capacity` tokens one
# at a time and compares every step's logits with the Keras model's. `GPTStepRunner` then
# decodes with the file alone; its greedy output must equal Keras' greedy generation.

# %%
tflite_path = os.path.join(OUTPUT_ROOT, "gpt_char_small_step.tflite")
report = export_gpt_step(gpt, tflite_path, overwrite=True)
for key, value in report.items():
    print(f"{key:20s} {value}")
runner = GPTStepRunner(tflite_path)
print(f"cache shape [layers, batch, heads, capacity, key_dim]: {runner.cache_shape}")
start = time.perf_counter()
on_device = runner.generate(prompt, NEW)
seconds = time.perf_counter() - start
in_keras = generate(gpt, prompt, NEW, method="greedy")
assert np.array_equal(on_device, in_keras), "TFLite and Keras greedy outputs differ"
print(f"TFLite step decoder == Keras greedy generation over {NEW} characters: True "
      f"(asserted); {1000 * seconds / NEW:.2f} ms per character")
print(gpt_codec.decode(on_device))

# %% [markdown]
# ## Conclusions
#
# - **Both meet the target, and the LSTM is ahead.** The GPT has 818,304 parameters and
#   ends at 1.508 nats per character on validation (test 1.614). The LSTM has 875,523
#   and ends at 1.433 (test 1.581). Both are under issue 18's 1.6 after 30 epochs. At this
#   size, with 7,781 training windows and an untuned nanoGPT-style recipe, attention
#   brings no gain over the recurrent model. The GPT's curve was still falling at its
#   last epoch; the LSTM's best epoch was 22.
# - **Time is not a fair comparison here.** The GPT's training steps took 7,599 s and the
#   LSTM's 2,738 s, but the GPT trained while the 2-core machine ran several other jobs
#   (load averages of 10 and more), and the LSTM mostly did not.
# - **The samples** are Shakespeare-shaped at τ = 0.8: speaker names, line breaks and
#   mostly real words, with made-up ones in between. Greedy decoding falls into loops
#   ("the state of the state").
# - **The KV cache** gives the same tokens as re-running the window, both greedy and
#   sampled (asserted), and is 1.88x faster for 122 new characters: 127 positions run
#   through the blocks instead of 15,616.
# - **Attention is causal**: the weights above the diagonal are exactly 0. Changing
#   character 64 leaves the logits at positions 0–63 unchanged.
# - **On a phone**, the single-step decoder is a 3.3 MB TFLite file with builtin ops. Its
#   128 steps match Keras to 8.1e-6 in the logits, and it decodes the same 122 characters
#   as Keras, at 1.29 ms per character.
