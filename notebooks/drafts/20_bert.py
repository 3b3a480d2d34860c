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
# # Chapter 20 — BERT
#
# DRAFT (issue 18): not yet executed on its real runs; it moves to `notebooks/` when it is.
#
# Chapter 18's Transformer encoder reads a whole sentence at once, every word looking at
# every other word in both directions. BERT (Devlin et al., 2019) turns that encoder into a
# general-purpose text model in two stages. First it is *pretrained* on unlabelled text
# with a self-supervised task, the **masked language model**: hide some words, ask the
# model for them. Then the same weights are *fine-tuned* on a small labelled task with one
# extra layer on top. Guessing a hidden word well needs syntax, word meaning and some
# world knowledge, and the hope is that fine-tuning finds them already in place.
#
# This chapter tries the recipe at a small scale: a BERT-Mini (Turc et al., 2019) is
# pretrained on the sentences of SST-2's training split only (no extra text), then
# fine-tuned on SST-2's sentiment labels, and compared with the same network trained on
# the labels from random weights.
#
# 1. The model: BERT-base's 109,482,240 parameters counted by hand, BERT-Mini's, and what
#    each piece does (token, segment and position embeddings, the first-token pooler, the
#    masked-LM head tied to the word embeddings); the three runs of this chapter.
# 2. Masking: BERT's 15% with 80/10/10 on a real SST-2 sentence, and the proportions
#    measured over many sentences.
# 3. Pretraining: the masked-LM run's curves, and a fill-in-the-blank test.
# 4. Fine-tuning against training from scratch: parameters, time, accuracy, curves.
# 5. Deployment: the fine-tuned classifier as a TFLite file, checked against Keras.

# %%
import json
import logging
import os
import re
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

import keras
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
from IPython.display import Markdown, display
from keras import ops

import kerasdl
from kerasdl.data.pretraining import IGNORE, MASK_ID, SPECIAL_IDS, mask_tokens
from kerasdl.data.text import load_codecs, load_text_classification
from kerasdl.export import TFLiteRunner, convert_to_tflite, with_sequence_length
from kerasdl.models.transformer.bert import BertConfig, bert_count, build_bert
from kerasdl.train import get_recipe, load_run, train
from kerasdl.train.runs import is_finished_run
from kerasdl.workflows import notebook_settings

# Again after the imports: in an interactive session TensorFlow sets its logger to INFO
# (on stdout) when it is first imported, which would undo the setting above.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
SMOKE, OUTPUT_ROOT = notebook_settings()
WORK = os.path.join(OUTPUT_ROOT, "ch20_sst2")
SCRATCH = os.path.join(WORK, "bert_mini_scratch")
MLM = os.path.join(WORK, "bert_mini_mlm")
PRETRAINED = os.path.join(WORK, "bert_mini_pretrained")
rng = np.random.default_rng(0)
keras.utils.set_random_seed(0)
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print("mode:", "SMOKE (64 sentences, one-layer models, 1 epoch: numbers are meaningless)"
      if SMOKE else "full")


def markdown_table(header, rows, align=None):
    """A Markdown table from a header and rows of cells (``align``: one of l/r per column)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


# %% [markdown]
# ## 1. The model
#
# BERT is the encoder half of the original Transformer (Vaswani et al., 2017) with three
# changes of detail: learned position embeddings instead of sinusoids, a *segment*
# embedding, and the GELU activation in the feed-forward layers. Its sizes are written
# L (layers), H (width) and A (heads), with a feed-forward width of 4H. BERT-base has
# L = 12, H = 768, A = 12.
#
# **Counting BERT-base by hand.** Nothing needs to be built to count the parameters; with
# V words in the vocabulary (30,522 WordPieces for bert-base-uncased), P = 512 positions,
# two segment types and F = 4H:
#
# * embeddings: V·H + P·H + 2·H, and one LayerNorm (a scale and a shift: 2H);
# * per layer: the four attention projections, 4(H² + H); the feed-forward network,
#   H·F + F + F·H + H; two LayerNorms, 4H;
# * the pooler, a dense layer H → H: H² + H.
#
# The cell below writes this out and compares it with `kerasdl`'s own term-by-term count
# (`bert_count`) and with the reference recorded in the registry (Hugging Face's
# `BertModel`, which is the same backbone without any head).

# %%
def bert_terms(config, vocabulary_size, head="none", num_classes=2):
    """The parameters of a BERT, term by term (``head``: none, classifier or mlm)."""
    H, F, L = config.hidden, config.ff_dim, config.layers
    return {
        "token embeddings V·H": vocabulary_size * H,
        "position embeddings P·H": config.max_positions * H,
        "segment embeddings 2·H": config.type_vocabulary_size * H,
        "embedding LayerNorm 2H": 2 * H,
        "self-attention L·4(H² + H)": L * 4 * (H * H + H),
        "feed-forward L·(2HF + F + H)": L * (2 * H * F + F + H),
        "LayerNorms in the layers L·4H": L * 4 * H,
        "pooler H² + H": H * H + H if head != "mlm" else 0,
        "classifier 2H + 2": H * num_classes + num_classes if head == "classifier" else 0,
        "MLM transform H² + H and its LayerNorm 2H": H * H + 3 * H if head == "mlm" else 0,
        "MLM output bias V (decoder tied to the token embeddings)":
            vocabulary_size if head == "mlm" else 0,
    }


base_info = kerasdl.model_info("bert_base")
mini_info = kerasdl.model_info("bert_mini")
mlm_info = kerasdl.model_info("bert_mini_mlm")
V_BASE = base_info.default_kwargs()["vocabulary_size"]
V_MINI = mini_info.default_kwargs()["vocabulary_size"]
columns = {
    f"BERT-base, V = {V_BASE:,}, no head": bert_terms(base_info.config, V_BASE),
    f"BERT-Mini classifier, V = {V_MINI:,}": bert_terms(mini_info.config, V_MINI, "classifier"),
    f"BERT-Mini masked LM, V = {V_MINI:,}": bert_terms(mlm_info.config, V_MINI, "mlm"),
}
rows = [[term] + [f"{c[term]:,}" if c[term] else "–" for c in columns.values()]
        for term in next(iter(columns.values()))]
totals = [sum(c.values()) for c in columns.values()]
rows.append(["**total**"] + [f"**{t:,}**" for t in totals])
EMBEDDING_TERMS = ("token", "position", "segment", "embedding")
rows.append(["embeddings' share"] + [
    f"{100 * sum(v for k, v in c.items() if k.startswith(EMBEDDING_TERMS)) / t:.0f}%"
    for c, t in zip(columns.values(), totals)])
display(markdown_table(["term"] + list(columns), rows))

base_reference = next(iter(base_info.reference_params.values()))
print(f"BERT-base: by hand {totals[0]:,}; kerasdl's bert_count "
      f"{bert_count(base_info.config, V_BASE):,}; registry reference {base_reference:,}")
print("sizes:", {name: info.config for name, info in
                 (("bert_base", base_info), ("bert_mini", mini_info))})

# %% [markdown]
# BERT-Mini (L = 4, H = 256, A = 4, F = 1,024) is one of the 24 small BERTs of Turc et al.
# (2019). It is about 13 times smaller than BERT-base, and the shrinking is not even: the
# layers shrink by a factor of 27 (a third of the width, squared, and a third of the
# depth), the word-embedding table only by 4.6 (a third of the width, and 20,000 words
# instead of 30,522). More than half of BERT-Mini is its word-embedding
# table. A tied masked-LM head costs nothing but a bias for the vocabulary: it
# scores a word with the same vector that embeds it (below).
#
# BERT-Mini is small enough to build here; its built count must match the hand count:

# %%
mini = kerasdl.create_model("bert_mini", sequence_length=64)
print(f"bert_mini built: {mini.count_params():,} parameters (hand count {totals[1]:,}); "
      f"registered reference: {next(iter(mini_info.reference_params.values())):,}")
print(f"bert_mini_mlm registered reference: {next(iter(mlm_info.reference_params.values())):,} "
      f"(hand count {totals[2]:,})")
rows = [[layer.name, type(layer).__name__, f"{layer.count_params():,}"]
        for layer in mini.layers if layer.count_params()]
display(markdown_table(["layer", "type", "parameters"], rows, ["l", "l", "r"]))
del mini

# %% [markdown]
# **What the pieces do.** A tiny BERT with the pretraining head (two segments as input)
# makes each piece visible. The checks below recompute, from the layers' own weights:
#
# * **the input embedding**: the sum of a token embedding, a segment embedding (sentence A
#   or B; next-sentence prediction and sentence-pair tasks feed two sentences at once)
#   and a position embedding, then a LayerNorm. Attention ignores order, and the position
#   table is what tells the encoder where each token sits;
# * **the pooler**: tanh(W h₀ + b) on the final vector h₀ of the *first* position. In
#   BERT that position holds the [CLS] token, whose vector the fine-tuned classifier reads.
#   kerasdl's word-level data have no [CLS], so here the first word's vector takes its
#   role (the encoder is free to turn it into a sentence summary). The attention mask
#   keeps padding (id 0) out of every attention;
# * **the masked-LM head**: every position's vector goes through a dense layer with GELU
#   and a LayerNorm, then is scored against every word: logits = h Eᵀ + b, where E is the
#   **token-embedding matrix itself** (tied weights; only the bias b is new).

# %%
tiny = build_bert(BertConfig(layers=2, hidden=16, heads=2, ff_dim=32, max_positions=16),
                  vocabulary_size=50, head="pretraining", sequence_length=8)
tokens = np.array([[7, 12, 30, 4, 9, 21, 0, 0], [5, 5, 8, 40, 0, 0, 0, 0]], dtype="int32")
segments = np.array([[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0, 0, 0]], dtype="int32")
probe = keras.Model(tiny.inputs, [tiny.get_layer("embeddings_norm").output,
                                  tiny.get_layer("first_token").output,
                                  tiny.get_layer("pooler").output,
                                  tiny.get_layer("mlm_norm").output,
                                  tiny.output["mlm_logits"]])
embedded, first, pooled, transformed, logits = probe.predict([tokens, segments], verbose=0)


def weights(name, attribute):
    return ops.convert_to_numpy(getattr(tiny.get_layer(name), attribute))


E = weights("word_embeddings", "embeddings")
by_hand = (E[tokens] + weights("segment_embeddings", "embeddings")[segments]
           + weights("position_embeddings", "embeddings")[None, :tokens.shape[1]])
by_hand = ops.convert_to_numpy(tiny.get_layer("embeddings_norm")(by_hand))
pooled_by_hand = np.tanh(first @ weights("pooler", "kernel") + weights("pooler", "bias"))
logits_by_hand = transformed @ E.T + weights("mlm_output_bias", "bias")
print(f"embeddings: LayerNorm(token + segment + position) vs the model: "
      f"max difference {np.abs(by_hand - embedded).max():.1e}")
print(f"pooler: tanh(W h₀ + b) on the first position vs the model: "
      f"max difference {np.abs(pooled_by_hand - pooled).max():.1e}")
print(f"MLM logits: transformed vectors · Eᵀ + bias vs the model: "
      f"max difference {np.abs(logits_by_hand - logits).max():.1e}")
tied = [w.path for w in tiny.weights if w.shape == E.shape]
print(f"weights of shape {E.shape} (vocabulary x width) in the model: {tied}")
print("outputs:", {k: tuple(v.shape) for k, v in tiny.output.items()})
del tiny, probe

# %% [markdown]
# One [50, 16] matrix serves both ends: it embeds the input words and scores the output
# words. Besides saving V·H parameters, tying makes a word's input and output vectors
# the same, which suits a task whose answers are words of its own input.
#
# The chapter's model uses `head="mlm"` for pretraining: one sentence at a time, no
# next-sentence prediction (RoBERTa, Liu et al. 2019, found NSP unnecessary), and so no
# pooler, which nothing would train. `head="classifier"` adds dropout and a
# Dense(2) on the pooled vector.
#
# ### The three runs
#
# Three runs on GLUE's SST-2 (single movie-review sentences and phrases, positive or
# negative), all with kerasdl's word-level tokens (20,000 words, 64 tokens at most):
#
# | run | model | what it does |
# |---|---|---|
# | `ch20_sst2/bert_mini_scratch` | `bert_mini` | the classifier, from random weights (5 epochs, AdamW 3·10⁻⁴) |
# | `ch20_sst2/bert_mini_mlm` | `bert_mini_mlm` | masked-LM pretraining on SST-2's training sentences, labels ignored (20 epochs) |
# | `ch20_sst2/bert_mini_pretrained` | `bert_mini` | the classifier, starting from the MLM run's weights (`init_from`), same recipe as from scratch |
#
# The MLM run reads exactly the classifier's training sentences: SST-2 train minus the
# last 5%, which both keep as their validation split. It never sees a validation or test
# sentence. kerasdl's "test" split of SST-2 is GLUE's *validation* split (872
# sentences): GLUE withholds its test labels, and papers report SST-2 on validation.
#
# Fine-tuning copies every layer the two models share by name (the embeddings and the
# encoder) and keeps the vocabulary of the MLM run, which has `[MASK]` at id 2. The pooler
# and the classifier start from random weights. The runs are trained outside this
# notebook:
#
#     nohup nice -n 19 bash benchmarks/long_runs.sh bert >> saved_models/long_runs.log 2>&1 &
#
# The cell below reuses finished runs; for a missing run it trains the same run, in the
# same folder, with `kerasdl.train.train` (resumably; do not start it while the
# background script is training that folder). In smoke mode one-layer models of width
# 16 train for one epoch on 64 sentences, the fine-tuned one from the smoke MLM run, in
# a temporary folder.

# %%
if SMOKE:
    tiny_kwargs = {"layers": 1, "hidden": 16, "heads": 2, "ff_dim": 32, "max_positions": 32}
    fast = {"epochs": 1, "batch_size": 32, "vocabulary_size": 0, "sequence_length": 32}
    classifier_recipe = get_recipe("bert_mini").replace(**fast)
    train("bert_mini", "glue/sst2", output_dir=SCRATCH, recipe=classifier_recipe,
          max_examples=64, model_kwargs=tiny_kwargs, overwrite=True, verbose=0)
    train("bert_mini_mlm", "glue/sst2", output_dir=MLM,
          recipe=get_recipe("bert_mini_mlm").replace(**fast), max_examples=64,
          model_kwargs=tiny_kwargs, overwrite=True, verbose=0)
    # The architecture comes from the MLM run: init_from takes no model_kwargs.
    train("bert_mini", "glue/sst2", output_dir=PRETRAINED, recipe=classifier_recipe,
          max_examples=64, init_from=MLM, overwrite=True, verbose=0)
else:
    if not is_finished_run(SCRATCH):
        train("bert_mini", "glue/sst2", output_dir=SCRATCH, verbose=2)
    if not is_finished_run(MLM):
        train("bert_mini_mlm", "glue/sst2", output_dir=MLM, verbose=2)
    if not is_finished_run(PRETRAINED):
        train("bert_mini", "glue/sst2", output_dir=PRETRAINED, init_from=MLM, verbose=2)

runs = {}
for label, path in (("from scratch", SCRATCH), ("masked LM", MLM),
                    ("fine-tuned from the masked LM", PRETRAINED)):
    runs[label] = load_run(path)
    model, record = runs[label]
    print(f"{label:30s} {record['model']:14s} {record['parameters']:>10,} parameters; "
          f"{record['preprocessing']}")
codec = load_codecs(MLM)["text"]
print("the fine-tuned run encodes text with the MLM run's vocabulary:",
      load_codecs(PRETRAINED)["text"].vocabulary == codec.vocabulary)
print("layers copied from the MLM run:", ", ".join(runs["fine-tuned from the masked LM"][1]
                                                    .get("layers_initialized", [])))

# %% [markdown]
# ## 2. Masking
#
# BERT's masked LM (Devlin et al., Sec. 3.1) chooses 15% of the tokens of each sentence
# as prediction targets. Of the chosen tokens, 80% are replaced by `[MASK]`, 10% by a
# random word and 10% are left as they are. The loss is the cross-entropy at the chosen
# positions only. Why not always `[MASK]`? Because `[MASK]` never occurs at fine-tuning
# time. A model that only ever had to predict at `[MASK]` could ignore the vectors of
# ordinary words. With the random and unchanged 20%, any word might be a target, so the
# model must keep a good representation of every position.
#
# `kerasdl.data.pretraining.mask_tokens` does this on a batch of token ids:
# `max(1, round(0.15·n))` of the n real tokens of each sentence are chosen, never
# padding, `[UNK]` or `[MASK]` itself (predicting "unknown word" teaches nothing). It
# returns the corrupted ids and the targets: the original id at the chosen positions and
# `IGNORE` (−1) elsewhere. It is a stateless function of its seed. The training
# pipeline gives every batch of every epoch its own seed, so a sentence is masked afresh
# each epoch, as RoBERTa's "dynamic masking" does. The validation and test masks stay
# fixed, so that their scores are comparable from epoch to epoch.
#
# SST-2 sentences, encoded with the MLM run's vocabulary (the same loader and splits as
# the classifier):

# %%
data = load_text_classification("glue/sst2", codec=codec, validation_fraction=0.05,
                                batch_size=256, max_examples=64 if SMOKE else 5000)
print(data.source)
print({split: n for split, n in data.num_examples.items()})
x_train, _ = data.arrays("train")
x_test, y_test = data.arrays("test")
words = np.array(codec.vocabulary, dtype=object)


def show_word(i):
    return {0: "·", 1: "[UNK]", MASK_ID: "**[MASK]**"}.get(int(i), words[int(i)])


real_counts = (~np.isin(x_train, SPECIAL_IDS)).sum(axis=1)
example = x_train[int(np.argmax(np.where(real_counts <= 20, real_counts, 0)))]
n = int((example > 0).sum())
rows = [["original"] + [show_word(i) for i in example[:n]]]
for seed in range(3):
    inputs, targets = mask_tokens(example[None], vocabulary_size=codec.vocabulary_size,
                                  mask_id=MASK_ID, special_ids=SPECIAL_IDS, seed=seed)
    inputs, targets = inputs.numpy()[0], targets.numpy()[0]
    cells = []
    for i in range(n):
        if targets[i] == IGNORE:
            cells.append(show_word(inputs[i]))
        elif inputs[i] == MASK_ID:
            cells.append("**[MASK]**")
        elif inputs[i] != example[i]:
            cells.append(f"*{words[inputs[i]]}* (random)")
        else:
            cells.append(f"**{words[inputs[i]]}** (kept)")
    rows.append([f"seed {seed}"] + cells)
display(markdown_table(["", *map(str, range(n))], rows, ["l"] * (n + 1)))
print(f"{n} tokens, of which {int((~np.isin(example, SPECIAL_IDS)).sum())} can be chosen; "
      f"max(1, round(0.15·n)) of those are targets")

# %% [markdown]
# Each row is one draw, as three epochs would see the sentence. Bold marks a target: a
# `[MASK]`, or a word left unchanged but still to be predicted. Italics mark a random
# replacement, also a target. The model is never told which unmasked words are targets.
#
# Over many sentences the proportions should come out as 15% and 80/10/10. One detail
# matters for SST-2, whose training split holds many short *phrases* as well as
# sentences. A phrase of one to three words still gets one target, so short texts are
# masked far above 15%:

# %%
inputs, targets = mask_tokens(x_train, vocabulary_size=codec.vocabulary_size,
                              mask_id=MASK_ID, special_ids=SPECIAL_IDS, seed=1)
inputs, targets = inputs.numpy(), targets.numpy()
choosable = ~np.isin(x_train, SPECIAL_IDS)
chosen = targets != IGNORE
masked = chosen & (inputs == MASK_ID)
randomised = chosen & (inputs != MASK_ID) & (inputs != x_train)
kept = chosen & (inputs == x_train)
assert not (chosen & ~choosable).any(), "a special token was chosen"

n_real = choosable.sum(axis=1)
rows = []
for low, high in ((1, 3), (4, 6), (7, 13), (14, 30), (31, 64)):
    group = (n_real >= low) & (n_real <= high)
    if group.any():
        expected = np.maximum(1, np.round(0.15 * n_real[group])).sum() / n_real[group].sum()
        rows.append([f"{low}–{high} tokens", f"{int(group.sum()):,}",
                     f"{int(n_real[group].sum()):,}", f"{int(chosen[group].sum()):,}",
                     f"{100 * chosen[group].sum() / n_real[group].sum():.1f}%",
                     f"{100 * expected:.1f}%"])
rows.append(["**all**", f"{int((n_real > 0).sum()):,}", f"{int(n_real.sum()):,}",
             f"{int(chosen.sum()):,}", f"**{100 * chosen.sum() / n_real.sum():.1f}%**", "15%"])
display(markdown_table(["sentence length (tokens that can be chosen)", "sentences",
                        "tokens", "chosen", "chosen share", "max(1, round(0.15 n)) / n"],
                       rows))
n_chosen = int(chosen.sum())
display(markdown_table(
    ["of the chosen tokens", "count", "measured", "BERT"],
    [["replaced by [MASK]", f"{int(masked.sum()):,}",
      f"{100 * masked.sum() / n_chosen:.1f}%", "80%"],
     ["replaced by a random word", f"{int(randomised.sum()):,}",
      f"{100 * randomised.sum() / n_chosen:.1f}%", "10%"],
     ["left unchanged", f"{int(kept.sum()):,}", f"{100 * kept.sum() / n_chosen:.1f}%",
      "10% (+ the rare random draw of the word itself)"]]))
print(f"{len(x_train):,} training sentences; tokens that cannot be chosen ([UNK]): "
      f"{int(((x_train > 0) & ~choosable).sum()):,}")

# %% [markdown]
# The 80/10/10 split should come out within the sampling noise of a few thousand draws
# (about one point). The share of chosen tokens depends on the lengths: close to 15% for
# long sentences, and well above it on SST-2's short phrases, where the floor of one
# target per text dominates. (For a text of n tokens, round(0.15·n) also moves in steps:
# 7 tokens give 1 target, 14%; 10 tokens give 2, 20%.) BERT pretrained on long documents
# cut into 512-token blocks, where none of this matters.

# %% [markdown]
# ## 3. Pretraining
#
# The masked-LM run logs, every epoch, the cross-entropy at the chosen positions and
# their top-1 accuracy (`accuracy` in its history: the masked-token accuracy), on the
# training batches (new masks every epoch, dropout on) and on the held-out 5% (fixed
# masks). A uniform guess over 20,000 words would give ln 20,000 ≈ 9.9 nats and 0.005%.
# A better baseline always guesses the most frequent word: it is right as often as that
# word's share of the tokens that can be chosen (computed below on the training
# sentences loaded above).

# %%
mlm_model, mlm_record = runs["masked LM"]
with open(os.path.join(MLM, "history.json")) as f:
    mlm_history = json.load(f)
counts = np.bincount(x_train[choosable], minlength=codec.vocabulary_size)
most_frequent = int(np.argmax(counts))
frequency_baseline = counts[most_frequent] / counts.sum()
epochs = np.arange(1, len(mlm_history["loss"]) + 1)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, key, label in ((axes[0], "loss", "cross-entropy at the chosen positions (nats)"),
                       (axes[1], "accuracy", "masked-token accuracy, %")):
    scale = 100 if key == "accuracy" else 1
    ax.plot(epochs, scale * np.array(mlm_history[key]), marker="o", label="training")
    if f"val_{key}" in mlm_history:
        ax.plot(epochs, scale * np.array(mlm_history[f"val_{key}"]), marker="o",
                label="validation (held-out 5%)")
    if key == "accuracy":
        ax.axhline(100 * frequency_baseline, color="C3", linestyle="--",
                   label=f"always {words[most_frequent]!r}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
axes[0].set_title("Masked-LM loss")
axes[1].set_title("Masked-token accuracy")
plt.tight_layout()
plt.show()
print(f"test (GLUE validation, fixed masks): masked-token accuracy "
      f"{100 * mlm_record['test_masked_token_accuracy']:.1f}% over "
      f"{mlm_record['test_masked_tokens']:,} masked tokens, "
      f"{mlm_record['test_nats_per_masked_token']:.3f} nats (perplexity "
      f"{mlm_record['test_perplexity']:.1f}); always {words[most_frequent]!r}: "
      f"{100 * frequency_baseline:.1f}%")

# %% [markdown]
# **Fill in the blank.** The real test of a masked LM: hide one word of a sentence it
# has never seen and read its five best guesses. The sentences come from GLUE's
# validation split (kerasdl's SST-2 test split). Where a sentence holds a
# sentiment-bearing word from a short list, that word is hidden: to restore it, the model
# must have learnt what kind of word the context calls for. `[PAD]`, `[UNK]` and
# `[MASK]` are left out of the guesses; the model never has them as targets.

# %%
SENTIMENT = {"good", "bad", "great", "best", "worst", "funny", "boring", "dull", "fun",
             "beautiful", "better", "worse", "interesting", "love", "enjoyable", "brilliant",
             "awful", "mess", "fine", "perfect", "charming", "tedious", "little", "well"}
picked = {}  # sentence index -> position of the hidden word
for k, row in enumerate(x_test):
    n_row = int((row > 0).sum())
    hits = [i for i in range(n_row) if row[i] > 2 and words[row[i]] in SENTIMENT]
    if 6 <= n_row <= 25 and hits:
        picked[k] = hits[0]
    if len(picked) == 5:
        break
for k, row in enumerate(x_test):  # too few sentiment words (smoke mode): a middle word
    if len(picked) == 5:
        break
    n_row = int((row > 0).sum())
    middle = [i for i in range(n_row // 3, n_row) if row[i] > 2]
    if n_row >= 4 and middle and k not in picked:
        picked[k] = middle[0]

batch = x_test[list(picked)].copy()
positions = np.array(list(picked.values()))
answers = batch[np.arange(len(batch)), positions].copy()
batch[np.arange(len(batch)), positions] = MASK_ID
blank_logits = mlm_model.predict(batch, verbose=0)[np.arange(len(batch)), positions]
blank_logits[:, list(SPECIAL_IDS)] = -np.inf
probabilities = np.exp(blank_logits - blank_logits.max(-1, keepdims=True))
probabilities /= probabilities.sum(-1, keepdims=True)
rows = []
for row, answer, p in zip(batch, answers, probabilities):
    n_row = int((row > 0).sum())
    top = np.argsort(-p)[:5]
    rank = int((p > p[answer]).sum()) + 1
    rows.append([" ".join(show_word(i) for i in row[:n_row]), words[answer],
                 ", ".join(f"{words[i]} ({100 * p[i]:.1f}%)" for i in top),
                 f"{rank:,}"])
display(markdown_table(["sentence", "hidden word", "top 5 guesses", "rank of the hidden word"],
                       rows, ["l", "l", "l", "r"]))

# %% [markdown]
# Things to look for: whether the guesses have the right part of speech (an adjective
# where an adjective belongs), whether their *polarity* follows the context ("a
# [MASK] mess" calls for a negative word), and how often "good" and "bad" compete. The
# second point is the reason to hope that pretraining helps the sentiment classifier. A
# model that only learnt word order would rank "good" and "bad" alike; one whose guesses
# follow the polarity has learnt something about sentiment from unlabelled text. SST-2's
# training split holds about 0.7 million words, so expect frequent words to dominate
# the guesses. BERT read 3.3 billion.

# %% [markdown]
# ## 4. Fine-tuning against training from scratch
#
# Both classifiers have the same architecture, recipe, data and seed. The only
# difference is where their embeddings and encoder layers start. The
# table reads each run's `run.json` and `history.json`:
#
# * **validation** is the held-out last 5% of SST-2's training split, scored after every
#   epoch;
# * **test** is GLUE's validation split (872 sentences), scored once at the end. The runs
#   pick nothing on it: the recipe fixes the number of epochs, and the final weights are
#   kept whatever the curves do;
# * **wall time** is the epochs' time summed from the console log `train.log` when the
#   run was trained by `long_runs.sh` (every session appends to it), else `run.json`'s
#   time of its last session.

# %%
EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) - (\d+)s - ")


def wall_time(run_dir, record):
    """(seconds, where they come from) for a run's training."""
    log = os.path.join(run_dir, "train.log")
    if os.path.isfile(log):
        with open(log) as f:
            seconds = [int(m.group(3)) for line in f if (m := EPOCH_LINE.match(line))
                       and m.group(1) == m.group(2)]
        if seconds:
            return sum(seconds), f"train.log, {len(seconds)} epochs"
    how = "run.json, last session only" if record.get("resumed") else "run.json"
    return record["train_seconds_this_session"], how


def history_of(run_dir):
    with open(os.path.join(run_dir, "history.json")) as f:
        return json.load(f)


def hours(seconds):
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.0f} s"


mlm_seconds, mlm_how = wall_time(MLM, mlm_record)
histories, rows = {}, []
for label in ("from scratch", "fine-tuned from the masked LM"):
    path = SCRATCH if label == "from scratch" else PRETRAINED
    _, record = runs[label]
    history = histories[label] = history_of(path)
    val = np.array(history["val_accuracy"])
    best = int(np.nanargmax(val))
    seconds, how = wall_time(path, record)
    total = (f"{hours(seconds + mlm_seconds)} with pretraining"
             if label != "from scratch" else hours(seconds))
    rows.append([label, f"{record['parameters']:,}", len(history["loss"]),
                 f"{hours(seconds)} ({how})", total,
                 f"{100 * val[best]:.2f}% (epoch {best + 1})", f"{100 * val[-1]:.2f}%",
                 f"{100 * record['test_accuracy']:.2f}%"])
display(markdown_table(["classifier", "parameters", "epochs", "wall time", "total compute",
                        "best validation accuracy", "final validation accuracy",
                        "test accuracy (GLUE validation)"], rows))
_, scratch_record = runs["from scratch"]
print("data:", scratch_record["data_source"])
print("examples:", scratch_record["num_examples"])
print(f"masked-LM pretraining: {len(mlm_history['loss'])} epochs, {hours(mlm_seconds)} "
      f"({mlm_how})")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for (label, history), colour in zip(histories.items(), ("C0", "C1")):
    e = np.arange(1, len(history["loss"]) + 1)
    axes[0].plot(e, 100 * np.array(history["val_accuracy"]), marker="o", color=colour,
                 label=f"{label}, validation")
    axes[0].plot(e, 100 * np.array(history["accuracy"]), linestyle="--", color=colour,
                 label=f"{label}, training")
    axes[1].plot(e, history["val_loss"], marker="o", color=colour, label=label)
axes[0].set_ylabel("accuracy, %")
axes[0].set_title("SST-2 accuracy per epoch")
axes[1].set_ylabel("validation cross-entropy (nats)")
axes[1].set_title("Validation loss")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# What to read in the curves: whether the pretrained model starts higher after its first
# epoch (its encoder already produces useful features), whether it ends higher, and
# whether the gap between training and validation accuracy, a sign of overfitting,
# is smaller for it. A Transformer trained from scratch on 64 thousand short texts
# overfits quickly, which is why the recipe stops at 5 epochs.
#
# Two caveats before drawing conclusions. First, BERT's own fine-tuning uses a learning
# rate of 2–5·10⁻⁵ for 2–4 epochs, small enough not to wipe out what pretraining
# learnt. Here both classifiers share the from-scratch recipe (3·10⁻⁴) so that the
# comparison changes one thing only, and fine-tuning at a smaller rate might do better.
# Second, the MLM saw no text the classifier did not also see. BERT's gains come from
# pretraining on billions of words of *other* text. Any gain here comes from the
# objective alone: predicting hidden words is a second task that regularises the
# encoder and teaches it word co-occurrences that 67 thousand labels cannot.

# %% [markdown]
# ## 5. Deployment
#
# The fine-tuned classifier goes to a phone as a TFLite (LiteRT) file.
# `kerasdl.export.convert_to_tflite` uses Keras' LiteRT exporter with TFLite's built-in
# operations only, so the file runs on the plain runtime without the Flex delegate.
# The GELU, the attention with its padding mask and the LayerNorms all have builtin
# equivalents. Two variants: float32 (the same numbers) and dynamic-range quantisation
# (weights stored as int8, about four times smaller, activations quantised on the fly).
# `TFLiteRunner` runs each file on the SST-2 test sentences (GLUE validation), and the
# results are compared with Keras: accuracy, agreement of the predicted classes, and
# the largest difference between logits. The runs trained on batches padded to their
# longest sentence, so the model takes any length; the file gets the run's fixed
# length (`with_sequence_length`), as an app's input buffer has one.

# %%
classifier, classifier_record = runs["fine-tuned from the masked LM"]
classifier = with_sequence_length(classifier, x_test.shape[1])
export_dir = os.path.join(WORK, "tflite")
os.makedirs(export_dir, exist_ok=True)
keras_logits = classifier.predict(x_test, batch_size=256, verbose=0)
rows = [["Keras (.keras file)",
         f"{os.path.getsize(os.path.join(PRETRAINED, 'model.keras')) / 2**20:.2f} MiB",
         f"{100 * (keras_logits.argmax(-1) == y_test).mean():.2f}%", "–", "–", "–"]]
for variant in ("float32", "dynamic_range"):
    path = os.path.join(export_dir, f"bert_mini_pretrained_{variant}.tflite")
    size = convert_to_tflite(classifier, path, variant=variant, overwrite=True)
    runner = TFLiteRunner(path)
    lite_logits = runner.predict(x_test)
    latency = runner.latency_ms(x_test[0], runs=20 if SMOKE else 200)
    rows.append([f"TFLite {variant}", f"{size / 2**20:.2f} MiB",
                 f"{100 * (lite_logits.argmax(-1) == y_test).mean():.2f}%",
                 f"{100 * (lite_logits.argmax(-1) == keras_logits.argmax(-1)).mean():.2f}%",
                 f"{np.abs(lite_logits - keras_logits).max():.1e}", f"{latency:.2f} ms"])
display(markdown_table(["model", "size", "test accuracy", "same class as Keras",
                        "largest logit difference", "latency, one sentence (CPU)"], rows))
print(f"{len(y_test):,} sentences; input {runner.input_details[0]['shape']} "
      f"{runner.input_dtype} token ids; run.json test accuracy "
      f"{100 * classifier_record['test_accuracy']:.2f}%; files in {export_dir}")

# %% [markdown]
# The float32 file should agree with Keras to rounding (differences around 10⁻⁵) and
# give the same class for every sentence. Quantising the weights changes the logits a
# little. What matters is whether it changes any decisions, and the accuracy column
# says. (The `.keras` file is larger than the float32 file because it also stores the
# optimizer's state, two AdamW moments per weight, so that training can go on.) The app
# must also encode text exactly as training did: the vocabulary travels with the run
# (`vocabulary.json`), and the file takes token ids, not text.

# %% [markdown]
# ## Conclusions
#
# (written after the real runs)
#
# * The model: (written after the real runs)
# * Masking on SST-2: (written after the real runs)
# * Pretraining and fill-in-the-blank: (written after the real runs)
# * Fine-tuning against from scratch: (written after the real runs)
# * Deployment: (written after the real runs)
