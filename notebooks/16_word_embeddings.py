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
# # Chapter 16 — Word embeddings
#
# A network that reads text first turns each word into a vector. The vectors can be
# learnt with the task, or learnt beforehand from raw text alone, on one idea: a word is
# characterised by the words around it. Two families put that idea to work. *Count*
# methods tabulate which words occur near which, reweight the table and compress it.
# *Predict* methods train a small model to guess a word from its neighbours (or the
# neighbours from the word) and keep the weights. GloVe sits in between: it fits vectors
# to the logarithm of the counts.
#
# This chapter trains six kinds of vectors on one small corpus — the plays of Tiny
# Shakespeare — and asks them the same questions:
#
# 1. the corpus and its vocabulary;
# 2. PPMI + LSA, skip-gram and CBOW with negative sampling, skip-gram with hierarchical
#    softmax, GloVe and fastText, each timed;
# 3. nearest neighbours side by side, analogies, and fastText's vectors for words it
#    never saw;
# 4. a 2-D picture of a few words;
# 5. vectors for whole speeches: averaged word vectors against PV-DBOW paragraph
#    vectors.

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
from kerasdl.data.sources import resolve_data_dir, tfds_builder
from kerasdl.embeddings import (FastText, GloVe, ParagraphVectors, Vocabulary, Word2Vec,
                                analogy, average_vectors, char_ngrams, cooccurrence_matrix,
                                cosine_similarity, lsa, nearest, ppmi, sif_embeddings,
                                tokenize)
from kerasdl.workflows import notebook_settings

SMOKE, OUTPUT_ROOT = notebook_settings()
WORK = os.path.join(OUTPUT_ROOT, "ch16_word_embeddings")
os.makedirs(WORK, exist_ok=True)
print(f"kerasdl {kerasdl.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
print(f"mode: {'SMOKE (300 speeches, 1 epoch: numbers are meaningless)' if SMOKE else 'full'}")

# %% [markdown]
# ## 1. The corpus
#
# Tiny Shakespeare is about a megabyte of the plays: speeches separated by blank lines,
# each opening with the speaker's name on a line of its own. Every split of the TFDS
# dataset is used (the vectors are not evaluated on held-out text). A speech, without its
# speaker line, is one "sentence": the training windows stay inside a speech. Words are
# lower-cased runs of letters and digits, apostrophes inside a word kept ("o'er",
# "king's"); words seen fewer than 5 times are dropped, as word2vec does.

# %%
directory, _ = resolve_data_dir()
builder = tfds_builder("tiny_shakespeare", directory)
text = "\n".join(ex["text"].numpy().decode("utf-8")
                 for split in builder.info.splits for ex in builder.as_dataset(split=split))
speakers, speeches = [], []
for block in text.split("\n\n"):
    head, _, body = block.strip().partition("\n")
    if head.endswith(":") and body.strip():
        speakers.append(head[:-1].strip())
        speeches.append(" ".join(body.split()))
if SMOKE:
    speakers, speeches = speakers[:300], speeches[:300]
tokens = [tokenize(s) for s in speeches]
MIN_COUNT = 2 if SMOKE else 5
vocab = Vocabulary.build(tokens, min_count=MIN_COUNT)
corpus = vocab.encode_sentences(tokens)
n_tokens = sum(len(t) for t in tokens)
kept = sum(len(c) for c in corpus)
print(f"{len(speeches):,} speeches, {n_tokens:,} words; {len(vocab):,} distinct words seen "
      f"at least {MIN_COUNT} times cover {100 * kept / n_tokens:.1f}% of the text")
print("most frequent:", ", ".join(vocab.words[:20]))
print("example speech:", speakers[1], "--", speeches[1][:200])

# %% [markdown]
# About 190 thousand words is a very small corpus by the standards of word vectors:
# word2vec was shown on billions, GloVe on up to 42 billion. The advantage is that everything
# here trains in minutes on a CPU; the price is that only frequent words get good
# vectors, and that questions needing rare words cannot be answered. Keep that in mind
# when reading the tables below.

# %% [markdown]
# ## 2. Six ways to learn the vectors
#
# **PPMI + LSA.** Count how often word w appears within 5 positions of context word c,
# #(w, c). Pointwise mutual information compares that with what independence would
# give: PMI(w, c) = log P(w, c) / (P(w) P(c)). Negative values are noisy (they need
# huge corpora to estimate), so PPMI keeps max(0, PMI); the context probabilities are
# smoothed with exponent 0.75 to damp rare contexts. The PPMI matrix is V x V and
# sparse; a truncated SVD, M ≈ U S Vᵀ, gives dense vectors U S^0.5 (LSA).
#
# **Skip-gram with negative sampling (SGNS).** Each word w predicts the words c around
# it. Instead of a softmax over the vocabulary, the model tells real pairs from k fake
# ones, with fake contexts drawn from the unigram distribution raised to 0.75:
# log σ(u_c·v_w) + Σ_{i=1..k} log σ(−u_{n_i}·v_w). Frequent words are randomly
# subsampled first.
#
# **CBOW.** The mean of the context vectors predicts the centre word (same negative
# sampling). One example per word instead of one per pair: faster, and smoother for
# frequent words.
#
# **Skip-gram with hierarchical softmax.** The softmax over V words becomes a path of
# about log₂ V binary decisions down a Huffman tree (frequent words near the root):
# the probability of a context word is the product of the sigmoid decisions on its path.
#
# **GloVe.** Fit w_i·w̃_j + b_i + b̃_j ≈ log X_ij over the nonzero co-occurrence counts
# (here weighted 1/distance, window 10), each cell weighted by f(X) = min(1, (X/x_max)^0.75)
# so that rare pairs count little and frequent pairs do not dominate; the vectors are
# W + W̃.
#
# **fastText.** Skip-gram where a word's input vector is the mean of a vector for the
# word and vectors for its character n-grams (3 to 6 letters, hashed into buckets).
# Words that share pieces share parameters, and a word never seen still has n-grams.
#
# All vectors have 100 dimensions. The predict methods train with Adam on mini-batches of
# 512 (the word2vec tool uses plain SGD one example at a time; Adam is the robust choice
# for batches), with the learning rate and the subsampling threshold picked by a short
# search on this corpus. Subsampling needs care here: word2vec's usual threshold of
# 1e-3 drops about a third of the occurrences of a word as common as "king" in a corpus
# this small, and kerasdl draws the drop once per training rather than every epoch.
# Skip-gram with negative sampling therefore trains on every word, CBOW with a milder
# threshold (1e-2), and the two slower methods keep 1e-3, which makes each epoch
# cheaper. Trained vectors are saved under `OUTPUT_ROOT/ch16_word_embeddings/` and
# reused by a later full run with the same settings.

# %%
DIM = 16 if SMOKE else 100
EPOCHS = {"sgns": 5, "cbow": 10, "hs": 3, "glove": 25, "fasttext": 2}
if SMOKE:
    EPOCHS = {k: 1 for k in EPOCHS}
SETTINGS = {"dim": DIM, "min_count": MIN_COUNT, "speeches": len(speeches),
            "epochs": EPOCHS, "window": 5, "version": 2}
print(char_ngrams("kingdom"))


def cached(name, fit):
    """``(vectors, seconds, final loss)``: trained by ``fit()``, or read back from WORK
    when a full run with the same settings saved them."""
    path = os.path.join(WORK, f"{name}.npz")
    if not SMOKE and os.path.isfile(path):
        saved = np.load(path, allow_pickle=False)
        if json.loads(str(saved["settings"])) == SETTINGS:
            return saved["vectors"], float(saved["seconds"]), float(saved["loss"])
    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    vectors, loss = fit()
    seconds = time.perf_counter() - started
    np.savez(path, vectors=vectors, seconds=seconds, loss=loss,
             settings=json.dumps(SETTINGS))
    return vectors, seconds, loss


def fit_ppmi_lsa():
    counts = cooccurrence_matrix(corpus, len(vocab), window=5)
    return lsa(ppmi(counts, alpha=0.75), DIM), float("nan")


def fit_word2vec(method, objective, epochs, learning_rate, subsample):
    def fit():
        model = Word2Vec(vocab, dim=DIM, method=method, objective=objective, window=5,
                         subsample=subsample)
        history = model.fit(corpus, epochs=epochs, batch_size=512,
                            learning_rate=learning_rate)
        return model.vectors, history.history["loss"][-1]
    return fit


def fit_glove():
    counts = cooccurrence_matrix(corpus, len(vocab), window=10, weighting="harmonic")
    # x_max = 10 rather than the paper's 100: in a corpus this small few pairs reach 100.
    model = GloVe(len(vocab), dim=DIM, x_max=10.0)
    history = model.fit(counts, epochs=EPOCHS["glove"], batch_size=1024)
    return model.vectors, history.history["loss"][-1]


fasttext = FastText(vocab, dim=DIM, window=5)
FASTTEXT_TABLE = os.path.join(WORK, "fasttext_table.npy")


def fit_fasttext():
    history = fasttext.fit(corpus, epochs=EPOCHS["fasttext"], batch_size=512,
                           learning_rate=0.005)
    # The whole table (words and n-gram buckets): vectors for unseen words need it.
    np.save(FASTTEXT_TABLE, keras.ops.convert_to_numpy(fasttext.embedding.embeddings))
    return fasttext.vectors, history.history["loss"][-1]


METHODS = {
    "PPMI+LSA": ("ppmi_lsa", fit_ppmi_lsa, f"counts in a ±5 window, PPMI, rank-{DIM} SVD",
                 1),
    "SGNS": ("sgns", fit_word2vec("skipgram", "negative", EPOCHS["sgns"], 0.002, None),
             "skip-gram, 5 negatives", EPOCHS["sgns"]),
    "CBOW": ("cbow", fit_word2vec("cbow", "negative", EPOCHS["cbow"], 0.005, 1e-2),
             "mean of the window predicts the word, 5 negatives", EPOCHS["cbow"]),
    "SG-HS": ("hs", fit_word2vec("skipgram", "hierarchical", EPOCHS["hs"], 0.002, 1e-3),
              "skip-gram, hierarchical softmax", EPOCHS["hs"]),
    "GloVe": ("glove", fit_glove, "weighted least squares on log counts (±10, 1/d)",
              EPOCHS["glove"]),
    "fastText": ("fasttext", fit_fasttext, "skip-gram on word + 3-6-gram vectors",
                 EPOCHS["fasttext"]),
}
vectors, rows = {}, ["| method | what it fits | epochs | seconds | final loss |",
                     "|---|---|---:|---:|---:|"]
for label, (name, fit, what, epochs) in METHODS.items():
    vectors[label], seconds, loss = cached(name, fit)
    print(f"{label}: {seconds:.1f} s", flush=True)
    rows.append(f"| {label} | {what} | {epochs} | {seconds:.1f} | "
                f"{'-' if np.isnan(loss) else f'{loss:.3f}'} |")
display(Markdown("\n".join(rows)))
if not fasttext.embedding.built:  # reused vectors: put the saved n-gram table back
    fasttext.embedding.build()
    fasttext.embedding.embeddings.assign(np.load(FASTTEXT_TABLE))

# %% [markdown]
# The losses are not comparable across methods (each minimises its own objective). The
# times are: the count method pays once for a V x V singular value decomposition, the
# predict methods per pass over the pairs. Hierarchical softmax walks a dozen tree
# nodes per pair where negative sampling scores six vectors, and fastText averages a
# few dozen n-gram vectors for every centre word, which makes it the slowest per epoch.

# %% [markdown]
# ## 3. What the vectors know
#
# ### Nearest neighbours
#
# The five words with the highest cosine similarity to each query word, per method.

# %%
QUERIES = ["king", "love", "blood", "night", "father", "sword", "sweet", "heaven"]
queries = [w for w in QUERIES if w in vocab]
rows = ["| word | " + " | ".join(vectors) + " |", "|---|" + "---|" * len(vectors)]
for word in queries:
    cells = [", ".join(w for w, _ in nearest(v, vocab, word, k=5)) for v in vectors.values()]
    rows.append(f"| **{word}** | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))
if len(queries) < len(QUERIES):
    print("not in this vocabulary:", ", ".join(sorted(set(QUERIES) - set(queries))))

# %% [markdown]
# Two kinds of similarity show up. Some neighbours are *substitutes* — words that could
# stand in the same place ("night" and "day", "father" and "mother" or "son"). Others
# are *associates* — words that stand next to the query (a king and his name, "blood"
# and "shed"). fastText adds a third kind: words that share letters ("night",
# "nights", "nightly"), useful for inflections and misleading for look-alikes.
#
# On a corpus this small, do not expect the predict methods to win. Levy, Goldberg and
# Dagan (2015) found that with matched settings (window, subsampling, the 0.75
# smoothing) PPMI and SVD do about as well as skip-gram, and better on small data: the
# counts use every co-occurrence exactly, while a predictive model sees each one a few
# times through noisy gradient steps. GloVe, which also starts from the counts, shares
# that advantage.

# %% [markdown]
# ### Analogies
#
# "a is to b as c is to ?" is answered by the word nearest to b − a + c (3CosAdd; the
# three query words are excluded). A mark shows whether the expected word came first;
# the number in brackets is its rank among the 10 best answers ("–" if not there).

# %%
ANALOGIES = [("man", "woman", "king", "queen"), ("king", "queen", "lord", "lady"),
             ("father", "mother", "son", "daughter"),
             ("husband", "wife", "brother", "sister"), ("he", "his", "she", "her"),
             ("i", "my", "thou", "thy"), ("good", "better", "great", "greater")]
rows = ["| question | " + " | ".join(vectors) + " |", "|---|" + "---|" * len(vectors)]
answered, skipped = {label: 0 for label in vectors}, []
for a, b, c, d in ANALOGIES:
    if not all(w in vocab for w in (a, b, c, d)):
        skipped.append(f"{a}:{b} :: {c}:{d}")
        continue
    cells = []
    for label, v in vectors.items():
        best = [w for w, _ in analogy(v, vocab, a, b, c, k=10)]
        rank = best.index(d) + 1 if d in best else None
        answered[label] += rank == 1
        cells.append(f"{'✓' if rank == 1 else '✗'} {best[0]} ({rank or '–'})")
    rows.append(f"| {a} : {b} :: {c} : **{d}** | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))
print("first-choice answers:", ", ".join(f"{k} {n}" for k, n in answered.items()))
if skipped:
    print("skipped (a word is missing from the vocabulary):", "; ".join(skipped))
words = sorted({w for q in ANALOGIES for w in q if w in vocab}, key=lambda w: vocab.ids[w])
print("occurrences:", ", ".join(f"{w} {vocab.counts[vocab.ids[w]]}" for w in words))

# %% [markdown]
# Analogy arithmetic needs the offset between two words (man → woman) to be estimated
# well in *both* pairs, and that takes many occurrences of all four words. In this
# corpus the rarer words of these questions occur only a few dozen times (counts
# printed above); an answer then often lands near the expected word rather than on it,
# or the query word's nearest neighbour wins (the classic failure of 3CosAdd). Where a
# method scores none or one, the honest reading is that 190 thousand words are too few
# to answer these questions reliably — not that one method is better than another. On
# corpora of billions of words the same code answers most of them. The pronoun
# questions (he : his :: she : her) are the easiest: those words occur thousands of
# times.

# %% [markdown]
# ### fastText and words it never saw
#
# A word outside the vocabulary gets the mean of its n-gram vectors. The words below
# are rare or absent in the corpus; their nearest vocabulary words come from spelling,
# which is often what one wants (forms of the same word) and sometimes not (words that
# merely share letters).

# %%
CANDIDATES = ["kingly", "kingship", "lovingly", "bloodiest", "swordsman", "heavenward",
              "fatherly", "nightingale", "murtherer", "sweetest", "unkingly", "queenly"]
unseen = [w for w in CANDIDATES if w not in vocab][:8]
rows = ["| unseen word | n-grams | nearest vocabulary words (cosine) |", "|---|---:|---|"]
for word in unseen:
    neighbours = nearest(vectors["fastText"], vocab, fasttext.vector(word), k=5)
    rows.append(f"| {word} | {len(char_ngrams(word))} | "
                + ", ".join(f"{w} ({s:.2f})" for w, s in neighbours) + " |")
display(Markdown("\n".join(rows)))
print("word2vec, GloVe and PPMI have no vector at all for these words.")

# %% [markdown]
# ## 4. A picture of the space
#
# Principal components of a few groups of words (unit vectors, centred, projected on
# the two leading right singular vectors of the matrix). Two dimensions out of 100 show
# only the largest differences; clusters that stay together here are usually real,
# while distances between clusters are not to be read too literally.

# %%
GROUPS = {
    "rank": ["king", "queen", "prince", "duke", "lord", "lady", "earl", "emperor"],
    "family": ["father", "mother", "son", "daughter", "brother", "sister", "husband",
               "wife", "uncle"],
    "body": ["hand", "eye", "eyes", "heart", "head", "face", "tongue", "blood"],
    "time": ["night", "day", "morning", "hour", "year", "time", "tomorrow"],
    "numbers": ["one", "two", "three", "four", "five", "ten", "hundred", "thousand"],
}


def project(v, words):
    m = v[[vocab.ids[w] for w in words]]
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    m = m - m.mean(axis=0)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    return m @ vt[:2].T, s[:2] ** 2 / (s ** 2).sum()


shown = ["SGNS", "PPMI+LSA", "GloVe"]
fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 5.5))
for ax, label in zip(axes, shown):
    words, colours = [], []
    for i, (group, members) in enumerate(GROUPS.items()):
        present = [w for w in members if w in vocab]
        words += present
        colours += [f"C{i}"] * len(present)
    xy, explained = project(vectors[label], words)
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=25)
    for (x, y), word in zip(xy, words):
        ax.annotate(word, (x, y), fontsize=8, xytext=(3, 2), textcoords="offset points")
    ax.set_title(f"{label}: first two components ({100 * explained.sum():.0f}% of variance)")
    ax.set_xticks([])
    ax.set_yticks([])
for i, group in enumerate(GROUPS):
    axes[0].scatter([], [], c=f"C{i}", label=group)
axes[0].legend(fontsize=8, loc="best")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Vectors for whole speeches
#
# Two ways to embed a speech:
#
# * **Averaging** the SGNS vectors of its words — plain, and SIF (each word weighted
#   a / (a + p(w)), which shrinks frequent words, then the direction all speeches share
#   removed);
# * **PV-DBOW** (Le & Mikolov's distributed bag of words): a vector per speech is
#   trained, like a skip-gram centre word, to predict the words of that speech.
#
# Neither knows who speaks. A simple check of what the vectors capture: how often is a
# speech's nearest other speech spoken by the same character? Characters live in one play,
# talk about its people and places and have their own turns of phrase. A random pick of
# a speech gives the baseline.

# %%
docs = corpus
doc_vectors = {"average": average_vectors(docs, vectors["SGNS"]),
               "SIF": sif_embeddings(docs, vectors["SGNS"], vocab)}
keras.utils.set_random_seed(0)
started = time.perf_counter()
pv = ParagraphVectors(vocab, dim=DIM, negatives=5)
pv.fit(docs, epochs=1 if SMOKE else 10, batch_size=512)
doc_vectors["PV-DBOW"] = pv.vectors
print(f"PV-DBOW: {len(docs):,} speech vectors in {time.perf_counter() - started:.0f} s")

speaker_ids = np.unique(speakers, return_inverse=True)[1]
useful = np.array([len(d) >= 5 for d in docs])  # a speech of 1-4 words says little
rng = np.random.default_rng(0)
queries_idx = rng.choice(np.flatnonzero(useful), min(1000, int(useful.sum())), replace=False)
counts = np.bincount(speaker_ids[useful])
chance = float(((counts / counts.sum()) ** 2).sum())
rows = ["| speech vectors | same speaker as the nearest speech |", "|---|---:|"]
rows.append(f"| random speech (chance) | {100 * chance:.1f}% |")
neighbours = {}
for label, m in doc_vectors.items():
    sims = cosine_similarity(m[queries_idx], m)
    sims[np.arange(len(queries_idx)), queries_idx] = -np.inf  # not itself
    sims[:, ~useful] = -np.inf
    best = sims.argmax(axis=1)
    neighbours[label] = best
    same = float((speaker_ids[best] == speaker_ids[queries_idx]).mean())
    rows.append(f"| {label} | {100 * same:.1f}% |")
display(Markdown("\n".join(rows)))


def short(i, width=110):
    s = speeches[i]
    return f"*{speakers[i]}*: " + (s if len(s) <= width else s[:width].rsplit(" ", 1)[0] + " …")


for q in range(3):
    i = queries_idx[q]
    lines = [f"**Query** — {short(i)}", ""]
    for label in doc_vectors:
        lines.append(f"- {label}: {short(neighbours[label][q])}")
    display(Markdown("\n".join(lines)))

# %% [markdown]
# All three are far above chance, and none is close to telling speakers apart: the
# nearest speech shares a topic or a turn of phrase more often than a speaker. Averaging
# is free once word vectors exist and is a strong baseline. SIF's weights shrink "the",
# "and" and "i", which dominate an unweighted mean of a short speech; whether that helps
# depends on the task — the speaker's own habits of little words are part of what this
# check rewards. PV-DBOW learns one vector per speech from that speech's words alone, a
# few dozen words for most speeches: little evidence per vector, which is why it needs
# many epochs and does best on longer documents; a new speech needs a short training of
# its own (`ParagraphVectors.infer`). None of these methods knows word order: the same
# words in another order give the same (or nearly the same) vector — the motivation for
# the recurrent and attention models of the next chapters.

# %% [markdown]
# ## Conclusions
#
# * On 194,040 words of Shakespeare (3,252 words seen at least five times), every method
#   learns associations. The nearest neighbours come from the same scene or register:
#   *king* has henry, richard and crown; *night* has day, morn and morrow; *father* has
#   son, brother and mother. fastText's neighbours are also morphological (*night*:
#   nights, nightly, midnight).
# * Analogies mostly fail at this size: each method puts the right word first for 0 to 3
#   of the 7 questions (GloVe 3; PPMI+LSA and CBOW 2). The easy ones are the frequent
#   pronoun pairs, which the count-based methods get right.
# * Count-based PPMI+LSA is the cheapest method (57 s) and does as well as the
#   predictive ones here. fastText is the dearest (491 s for two epochs).
# * fastText gives vectors to unseen words, and most land next to their relatives
#   (*fatherly*: fathers, father; *swordsman*: swords, sword). Spelling can mislead it,
#   though: *murtherer* lands on *further*.
# * Speech vectors find a speech by the same speaker 4.6% to 7.1% of the time, against
#   1.1% by chance. Plain averaging does best.
