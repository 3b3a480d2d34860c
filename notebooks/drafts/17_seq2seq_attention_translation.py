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
# # Chapter 17 — Sequence to sequence: attention and translation
#
# DRAFT (issue 17): not yet executed on its real runs; it moves to `notebooks/` when it is.
#
# A classifier maps a sentence to a label; a translator maps a sentence to another
# sentence, of a length it has to decide itself. The encoder-decoder splits the job: an
# encoder reads the source sentence into vectors, a decoder writes the target one word
# at a time, each word conditioned on the source and on the words already written.
# Attention lets the decoder look back at every source position at every step instead of
# squeezing the whole source into one vector — the step that made neural translation
# work, and the seed of the Transformer.
#
# 1. The encoder-decoder and its training by teacher forcing.
# 2. Additive (Bahdanau) and multiplicative (Luong) attention, as equations and in code.
# 3. A GRU encoder-decoder with additive attention trained on Multi30k, German to
#    English: its training curves.
# 4. Decoding: greedy search against beam search, scored with BLEU on the 1,000
#    sentences of `test_2016_flickr`; translations next to their references.
# 5. Where the model looks: the attention weights of one translation.

# %%
import csv
import inspect
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
from kerasdl.data.text import load_codecs
from kerasdl.metrics import bleu
from kerasdl.models.rnn.seq2seq import build_seq2seq_attention
from kerasdl.train import get_recipe, load_run, train
from kerasdl.train.runs import is_finished_run
from kerasdl.translation import attention_map, evaluate_bleu
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
RUN = os.path.join(OUTPUT_ROOT, "seq2seq_bahdanau_multi30k")
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (64 sentence pairs, a tiny model: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. The encoder-decoder
#
# A translation model gives the probability of a target sentence y = (y₁ … y_T) given a
# source sentence x, one word at a time:
#
# p(y | x) = ∏ₜ p(yₜ | y₁ … yₜ₋₁, x).
#
# The **encoder** (here a bidirectional GRU over the source embeddings) turns x into one
# state per source position, h̄₁ … h̄_S: each sees the whole sentence, from the left and
# from the right. The **decoder** (a GRU over the target embeddings) starts from a
# summary of the encoder (tanh of a linear map of its two final states) and, at step t,
# has read the target words before yₜ; a softmax over the target vocabulary then gives
# p(yₜ | …).
#
# **Teacher forcing.** In training the decoder reads the *reference* prefix, not its own
# guesses: the target "[start] a dog runs . [end]" gives the decoder input
# "[start] a dog runs ." and the labels "a dog runs . [end]", so that all positions are
# trained in one parallel pass with a cross-entropy per word (padding ignored). At test
# time there is no reference; the decoder reads what it has produced so far (section 4).
#
# **The bottleneck.** Sutskever et al. (2014) passed only the final encoder state to the
# decoder, and translation quality fell with sentence length: one fixed-size vector had
# to hold the whole source. Attention removes that bottleneck.

# %% [markdown]
# ## 2. Attention
#
# At decoder step t, with decoder state hₜ, a score e_{t,s} rates each encoder state h̄ₛ;
# the softmax over source positions gives the weights, their weighted sum the context:
#
# α_{t,s} = exp(e_{t,s}) / Σ_{s'} exp(e_{t,s'}),  cₜ = Σₛ α_{t,s} h̄ₛ.
#
# Padding positions get a score of −∞ (weight 0). The scores differ:
#
# | score | formula | parameters |
# |---|---|---|
# | additive (Bahdanau et al., 2015) | e_{t,s} = vᵀ tanh(W₁ hₜ + W₂ h̄ₛ) | W₁, W₂, v |
# | general (Luong et al., 2015) | e_{t,s} = hₜᵀ W_a h̄ₛ | W_a |
# | dot (Luong et al., 2015) | e_{t,s} = hₜᵀ h̄ₛ | none |
#
# The additive score is a one-hidden-layer network on the two vectors; the multiplicative
# ones are (bi)linear and compute all scores of a sentence as one matrix product, which
# is faster. The context then joins the decoder state in Luong's attentional state
# h̃ₜ = tanh(W_c [cₜ; hₜ]), and the output layer maps h̃ₜ to logits over the vocabulary.
#
# Bahdanau's own decoder feeds the context into the recurrence (the context of step t−1
# enters the GRU at step t). kerasdl uses Luong's arrangement for all three scores — the
# decoder GRU runs first, attention reads its states — so that training is one parallel
# pass over the target; the builder's docstring says so. The model's code:

# %%
print(inspect.getsource(build_seq2seq_attention))

# %%
rows = ["| model | score | parameters (10k vocabularies, embeddings 256, GRUs 512) | "
        "counted by hand |", "|---|---|---:|---:|"]
for name in ("seq2seq_bahdanau", "seq2seq_luong", "seq2seq_luong_dot"):
    info = kerasdl.model_info(name)
    model = kerasdl.create_model(name)
    hand = next(iter(info.reference_params.values()), None)
    rows.append(f"| {name} | {model.get_layer('attention').__class__.__name__} | "
                f"{model.count_params():,} | {'-' if hand is None else f'{hand:,}'} |")
    del model
display(Markdown("\n".join(rows)))

# %% [markdown]
# The score is a small part of the model: W₁ and v cost 512² + 512 weights out of about
# 15.6 million, and the dot score costs nothing. Two thirds of the parameters sit in the
# two embedding tables (10,000 x 256 each) and the output layer (512 x 10,000): the
# vocabulary, not the recurrence, makes a translation model big.

# %% [markdown]
# ## 3. Training on Multi30k
#
# Multi30k (task 1) has 29,000 image descriptions in English with German translations
# for training, 1,014 for validation and 1,000 for testing (`test_2016_flickr`). The
# sentences are short and literal ("Two dogs play in the snow."), which is why a
# recurrent model trained on a CPU can translate them well. Tokens are lower-cased words
# with punctuation split off, 10,000 per language; sentences are cut at 40 tokens.
#
# The run `seq2seq_bahdanau_multi30k` is trained outside this notebook (15 epochs, Adam
# with warm-up and cosine decay, gradients clipped to norm 1):
#
#     nohup nice -n 19 bash benchmarks/long_runs.sh multi30k >> saved_models/long_runs.log 2>&1 &
#
# This notebook reads it from `OUTPUT_ROOT`. (In smoke mode a tiny model is trained on
# 64 pairs for two epochs instead.)

# %%
if SMOKE:
    recipe = get_recipe("seq2seq_bahdanau").replace(epochs=2, vocabulary_size=200,
                                                    sequence_length=12)
    train("seq2seq_bahdanau", "multi30k", output_dir=RUN, recipe=recipe, max_examples=64,
          model_kwargs={"units": 8, "embedding_dim": 8}, overwrite=True, verbose=0)
elif not is_finished_run(RUN):
    raise RuntimeError(
        f"{RUN} holds no finished run. Train it first (several hours on a CPU) with\n"
        "    nohup nice -n 19 bash benchmarks/long_runs.sh multi30k >> "
        "saved_models/long_runs.log 2>&1 &\n"
        "then run this notebook again (an interrupted training resumes where it stopped).")
model, record = load_run(RUN)
codecs = load_codecs(RUN)
print(f"{record['model']} on {record['dataset']}: {model.count_params():,} parameters; "
      f"{record['preprocessing']}")
print(f"teacher-forced test: {record['test_nats_per_token']:.3f} nats per token "
      f"(perplexity {record['test_perplexity']:.1f}), next-word accuracy "
      f"{100 * record['test_token_accuracy']:.1f}%")

# %%
with open(os.path.join(RUN, "training_log.csv")) as f:
    by_epoch = {int(float(r["epoch"])): r for r in csv.DictReader(f)}  # last row per epoch
epochs = sorted(by_epoch)


def column(key):
    return np.array([float(by_epoch[e][key]) if by_epoch[e].get(key) not in (None, "", "NA")
                     else np.nan for e in epochs])


fig, axes = plt.subplots(1, 2, figsize=(12, 4))
x = np.array(epochs) + 1
for key, label in (("loss", "training"), ("val_loss", "validation")):
    if key in by_epoch[epochs[0]]:
        axes[0].plot(x, column(key), marker="o", label=label)
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("cross-entropy (nats per target word)")
axes[0].set_title("Teacher-forced loss")
axes[0].legend()
axes[0].grid(alpha=0.3)
if "learning_rate" in by_epoch[epochs[0]]:
    axes[1].plot(x, column("learning_rate"), marker="o", color="C2")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("learning rate (end of epoch)")
axes[1].set_title("Warm-up and cosine decay")
axes[1].grid(alpha=0.3)
plt.tight_layout()
plt.show()
final = column("val_loss")[-1] if "val_loss" in by_epoch[epochs[0]] else np.nan
print(f"last validation loss {final:.3f} nats per word: the reference word gets a "
      f"probability of exp(-{final:.3f}) = {np.exp(-final):.3f} on (geometric) average")

# %% [markdown]
# The training loss includes dropout (0.2 on embeddings and the attentional state), the
# validation loss does not, which is why validation can sit below training early on.
# The loss converts to a probability: a model shown the true prefix gives the next
# reference word, on geometric average, e to the minus the loss. That figure is lower
# than it sounds like it should be for a good translator, because many next words have
# several correct choices ("a man" or "one man", "sits" or "is sitting") and the
# reference names only one.

# %% [markdown]
# ## 4. Decoding and BLEU
#
# Without a reference, the decoder must search for a likely sentence:
#
# * **Greedy search** takes the most likely word at each step and feeds it back, until
#   it writes [end]. One early mistake cannot be undone.
# * **Beam search** keeps the k most likely prefixes at each step (here k = 5), extends
#   each by every word, and keeps the k best of those. Log-probabilities only fall as
#   words are added, so raw scores favour short outputs; the scores are divided by the
#   length penalty ((5 + |Y|) / 6)^α of Wu et al. (2016), α = 0.6.
#
# `kerasdl.translation.translate` does this on batches of sentences; for kerasdl's own
# seq2seq models it runs the encoder once per batch and the decoder one word per step
# (the generic step function of `kerasdl.decoding` re-runs the whole model on every
# prefix, tens of times slower).
#
# **BLEU** (Papineni et al., 2002) compares the n-grams (n = 1 … 4) of the outputs with
# those of the references over the whole test set: the geometric mean of the four
# precisions, times a brevity penalty when the outputs are shorter than the references.
# It is computed by sacreBLEU on *detokenised* text ("a man's t-shirt." rather than
# "a man ' s t - shirt ."), lowercased, with its standard `13a` tokenizer, against the
# raw reference sentences; the signature printed below says exactly that. Scores are
# comparable only under the same signature.

# %%
results = evaluate_bleu(RUN, beam_widths=(1, 5), max_examples=16 if SMOKE else None)
rows = ["| decoding | BLEU | 1/2/3/4-gram precision | brevity penalty | output/reference "
        "length | sentences | seconds |", "|---|---:|---|---:|---:|---:|---:|"]
for k, r in results.items():
    detail = bleu(r["translations"], r["references"]).result
    label = "greedy" if k == 1 else f"beam {k}, α = {r['length_penalty']}"
    rows.append(f"| {label} | "
                f"{r['bleu']:.2f} | {' / '.join(f'{p:.1f}' for p in detail.precisions)} | "
                f"{detail.bp:.3f} | {detail.sys_len / detail.ref_len:.3f} | "
                f"{r['sentences']:,} | {r['seconds']:.0f} |")
display(Markdown("\n".join(rows)))
print("sacreBLEU signature:", results[1]["signature"])
if not SMOKE:
    best = max(r["bleu"] for r in results.values())
    print(f"issue 17 target, at least 28 BLEU on test_2016_flickr: "
          f"{'met' if best >= 28 else 'NOT met'} ({best:.2f})")

# %% [markdown]
# Beam search usually adds a point or two of BLEU over greedy search on this test set,
# at several times the cost. It finds sentences the model prefers; it does not make the
# model better, and a wider beam can even lower BLEU when the model's most likely
# sentences are short or generic — the length penalty exists for that reason. The
# n-gram precisions show where the gap to a perfect score lies: single words are mostly
# right, four-word runs much less often.

# %%
greedy, beam = results[1]["translations"], results[5]["translations"]
sources, references = results[1]["sources"], results[1]["references"]
picks = [0, 1, 2, 3, 4, 5] if SMOKE else [0, 13, 42, 101, 250, 777]
rows = ["| German source | reference | greedy | beam 5 |", "|---|---|---|---|"]
for i in picks:
    rows.append(f"| {sources[i]} | {references[i]} | {greedy[i]} | {beam[i]} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# Things to look for in such a sample: a rare word becomes [UNK] (it fell outside the
# 10,000-word vocabulary) or is replaced by a frequent word of the same kind (one colour
# or garment for another); a detail of a long sentence is dropped or repeated; and a
# translation can be correct yet score low because the reference says it differently.
# The output is lower-case because the vocabulary is; the BLEU above is lowercased too.

# %% [markdown]
# ## 5. Where the model looks
#
# `kerasdl.translation.attention_map` translates one sentence, then runs the model once
# more on its own output and returns the attention weights α_{t,s}: one row per output
# word, one column per source token, each row summing to 1. For a language pair with
# similar word order the bright cells run along the diagonal; German verbs at the end
# of a clause and compound nouns ("Holzbrett") show up as jumps and as one source token
# feeding several output words.

# %%
candidates = [s for s in sources if 6 <= len(s.split()) <= 14] or sources
sentence = candidates[0]
source_tokens, output_tokens, weights = attention_map(
    model, codecs["source"], codecs["target"], sentence)
print("source:", sentence)
print("output:", " ".join(output_tokens))
fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(source_tokens) + 2),
                                max(4, 0.45 * len(output_tokens) + 1.5)))
image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
ax.set_yticks(range(len(output_tokens)), output_tokens)
ax.set_xlabel("source (German)")
ax.set_ylabel("output (English)")
ax.set_title("Additive attention weights")
fig.colorbar(image, ax=ax, fraction=0.04)
plt.tight_layout()
plt.show()

# %% [markdown]
# Attention weights are an explanation of limited reach: they show which encoder
# states were mixed into the context, but each encoder state already carries
# information from the whole sentence (the encoder is bidirectional), so a bright cell
# says "this position's state was used", not "this word alone caused that word".
#
# The next step removes the recurrence altogether: if every decoder step can attend to
# every source position, the encoder and decoder can be built from attention alone —
# the Transformer.
