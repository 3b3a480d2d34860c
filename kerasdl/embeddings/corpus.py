"""From text to training examples: tokens, a vocabulary, skip-gram pairs and CBOW examples
(Mikolov, Chen, Corrado, Dean, "Efficient Estimation of Word Representations in Vector
Space", 2013a; Mikolov, Sutskever, Chen, Corrado, Dean, "Distributed Representations of
Words and Phrases and their Compositionality", NIPS 2013b) and word-word co-occurrence
counts (Pennington, Socher, Manning, "GloVe: Global Vectors for Word Representation",
EMNLP 2014).

A corpus here is a list of sentences, each a sequence of word ids (``Vocabulary.encode``);
windows never cross a sentence boundary. Everything is numpy.
"""

from __future__ import annotations

import re

import numpy as np

from kerasdl.embeddings._checks import (check_counts, check_id_sequences,
                                        check_nonnegative_number, check_positive_number,
                                        check_seed)
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = [
    "Vocabulary",
    "cbow_examples",
    "cooccurrence_matrix",
    "noise_distribution",
    "skipgram_pairs",
    "subsample",
    "tokenize",
]

# Runs of letters and digits, with inner apostrophes kept ("don't", "o'clock"): punctuation
# and spaces separate words and are dropped.
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")


def tokenize(text, lowercase=True):
    """The words of ``text`` (a list of str): runs of letters, digits and underscores,
    with inner apostrophes kept; punctuation is dropped."""
    if not isinstance(text, str):
        raise KerasdlError(f"text must be a str, got {type(text).__name__}", argument="text")
    if lowercase:
        text = text.lower()
    return _WORD.findall(text)


def _tokens(sentence, argument):
    if isinstance(sentence, str):
        return tokenize(sentence)
    if not hasattr(sentence, "__iter__"):
        raise KerasdlError(f"{argument} must hold sentences as str or lists of tokens, got "
                           f"{type(sentence).__name__}", argument=argument)
    tokens = list(sentence)
    for token in tokens:
        if not isinstance(token, str):
            raise KerasdlError(f"{argument} must hold tokens as str, got "
                               f"{type(token).__name__}", argument=argument)
    return tokens


class Vocabulary:
    """Words and their corpus counts; id ``i`` is ``words[i]``. Built vocabularies order
    words by falling count (ties alphabetically), as word2vec does, so id 0 is the most
    frequent word."""

    def __init__(self, words, counts):
        words = list(words)
        if not words or not all(isinstance(w, str) for w in words):
            raise KerasdlError("words must be a non-empty list of str", argument="words")
        if len(set(words)) != len(words):
            raise KerasdlError("words must not repeat a word", argument="words")
        counts = np.asarray(counts)
        if counts.shape != (len(words),) or not np.issubdtype(counts.dtype, np.integer) \
                or (counts < 0).any():
            raise KerasdlError(f"counts must be {len(words)} integers >= 0, one per word",
                               argument="counts")
        self.words = words
        self.counts = counts.astype(np.int64)
        self.ids = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, sentences, min_count=1, max_size=None):
        """The vocabulary of ``sentences`` (str, tokenized with :func:`tokenize`, or lists
        of tokens): words seen at least ``min_count`` times, at most the ``max_size`` most
        frequent ones."""
        check_positive_int(min_count, "min_count")
        check_positive_int(max_size, "max_size", allow_none=True)
        if isinstance(sentences, str) or not hasattr(sentences, "__iter__"):
            raise KerasdlError("sentences must be a list of sentences (str or token lists)",
                               argument="sentences")
        tally = {}
        for sentence in sentences:
            for token in _tokens(sentence, "sentences"):
                tally[token] = tally.get(token, 0) + 1
        kept = sorted(((-n, w) for w, n in tally.items() if n >= min_count))
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            raise KerasdlError(f"no word occurs at least min_count={min_count} times",
                               argument="min_count")
        return cls([w for _, w in kept], [-n for n, _ in kept])

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.ids

    def __repr__(self):
        return f"Vocabulary({len(self)} words, {int(self.counts.sum())} tokens)"

    @property
    def frequencies(self):
        """Unigram probabilities ``counts / counts.sum()``."""
        return self.counts / max(int(self.counts.sum()), 1)

    def encode(self, tokens, unknown="drop"):
        """Ids of ``tokens`` (a str is tokenized first). Out-of-vocabulary words are dropped
        (``unknown="drop"``, as word2vec does with rare words) or raise (``"error"``)."""
        check_choice(unknown, ("drop", "error"), "unknown")
        ids = []
        for token in _tokens(tokens, "tokens"):
            i = self.ids.get(token)
            if i is None:
                if unknown == "error":
                    raise KerasdlError(f"tokens holds {token!r}, which is not in the vocabulary",
                                       argument="tokens")
                continue
            ids.append(i)
        return np.asarray(ids, dtype=np.int64)

    def encode_sentences(self, sentences, unknown="drop"):
        """:meth:`encode` of each sentence: the corpus as a list of id arrays."""
        if isinstance(sentences, str) or not hasattr(sentences, "__iter__"):
            raise KerasdlError("sentences must be a list of sentences (str or token lists)",
                               argument="sentences")
        return [self.encode(s, unknown) for s in sentences]

    def decode(self, ids):
        """The words of ``ids``."""
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise KerasdlError("ids must be a 1-D sequence of integer ids", argument="ids")
        if arr.size and (arr.min() < 0 or arr.max() >= len(self)):
            raise KerasdlError(f"ids must be in [0, {len(self)})", argument="ids")
        return [self.words[i] for i in arr.tolist()]


def noise_distribution(counts, power=0.75):
    """The negative-sampling noise distribution: unigram counts raised to ``power``,
    normalised (Mikolov et al. 2013b, Sec. 2.2: 3/4 beat both the unigram and the uniform
    distribution)."""
    counts = check_counts(counts)
    power = check_nonnegative_number(power, "power")
    weights = np.where(counts > 0, counts ** power, 0.0)
    return weights / weights.sum()


def subsample(sentences_as_ids, threshold, seed=0, counts=None):
    """Frequent-word subsampling (Mikolov et al. 2013b, Sec. 2.3): each occurrence of word
    ``w`` is dropped with probability ``1 - sqrt(t / f(w))`` (``f`` its relative frequency,
    ``t = threshold``, 1e-5 in the paper and 1e-3 in the word2vec tool). This is the
    paper's rule; the released tool keeps more, with probability ``sqrt(t/f) + t/f``, so
    the same threshold drops more words here than there. Frequencies come from ``counts``
    (a Vocabulary or counts per id) or else from the corpus itself."""
    threshold = check_positive_number(threshold, "threshold")
    rng = np.random.default_rng(check_seed(seed))
    arrays = check_id_sequences(sentences_as_ids, "sentences_as_ids",
                                vocab_size=None if counts is None else len(check_counts(counts)))
    return _subsample(arrays, threshold, rng, counts)


def _subsample(arrays, threshold, rng, counts):
    if counts is None:
        flat = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        counts = np.bincount(flat) if flat.size else np.ones(1)
    counts = check_counts(counts)
    freqs = counts / counts.sum()
    with np.errstate(divide="ignore"):
        keep = np.minimum(1.0, np.sqrt(threshold / freqs))  # unseen words: inf -> always kept
    return [a[rng.random(a.size) < keep[a]] for a in arrays]


def _flatten(sentences_as_ids, window, seed, subsample_threshold, counts, dynamic_window):
    """Tokens of all sentences end to end, each token's sentence index, and each token's
    window size (random in 1..window with the dynamic window)."""
    window = check_positive_int(window, "window")
    rng = np.random.default_rng(check_seed(seed))
    vocab_size = None if counts is None else len(check_counts(counts))
    arrays = check_id_sequences(sentences_as_ids, "sentences_as_ids", vocab_size=vocab_size)
    if subsample_threshold is not None:
        threshold = check_positive_number(subsample_threshold, "subsample")
        arrays = _subsample(arrays, threshold, rng, counts)
    if not isinstance(dynamic_window, bool):
        raise KerasdlError("dynamic_window must be True or False", argument="dynamic_window")
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    sentence = np.repeat(np.arange(len(arrays)), [a.size for a in arrays])
    # word2vec draws a window size b in 1..window per centre word: near words are then
    # sampled more often, which weights contexts by distance (Mikolov et al. 2013a, Sec. 3.2).
    if dynamic_window:
        reach = rng.integers(1, window + 1, size=tokens.size)
    else:
        reach = np.full(tokens.size, window)
    return tokens, sentence, reach, window


def skipgram_pairs(sentences_as_ids, window, seed=0, subsample=None, *, counts=None,
                   dynamic_window=True):
    """Skip-gram training pairs ``(centers, contexts)`` (int64 arrays): every word paired
    with each word at most ``b`` positions away in its sentence, ``b`` drawn uniformly in
    ``1..window`` per centre word (``dynamic_window``, as word2vec). ``subsample`` is the
    threshold ``t`` of frequent-word subsampling (None: off), applied before the windows
    as in word2vec, so that dropped words widen the windows; ``counts`` gives the
    frequencies (default: the corpus's own). Pairs come in corpus order."""
    tokens, sentence, reach, window = _flatten(sentences_as_ids, window, seed, subsample,
                                               counts, dynamic_window)
    centres, contexts = [], []
    for d in range(1, window + 1):
        left = np.arange(max(tokens.size - d, 0))
        right = left + d
        same = sentence[left] == sentence[right]
        forward = same & (reach[left] >= d)   # centre left, context d to the right
        backward = same & (reach[right] >= d)  # centre right, context d to the left
        centres += [left[forward], right[backward]]
        contexts += [right[forward], left[backward]]
    centres = np.concatenate(centres) if centres else np.zeros(0, np.int64)
    contexts = np.concatenate(contexts) if contexts else np.zeros(0, np.int64)
    order = np.lexsort((contexts, centres))
    return tokens[centres[order]], tokens[contexts[order]]


def cbow_examples(sentences_as_ids, window, seed=0, subsample=None, *, counts=None,
                  dynamic_window=True, pad_id=-1):
    """CBOW training examples ``(contexts, targets)``: ``contexts[n]`` holds the ids of the
    words around ``targets[n]`` (at most ``b`` on each side, ``b`` as in
    :func:`skipgram_pairs`), left-aligned and padded with ``pad_id`` to ``2 * window``
    columns. Words with no context (one-word sentences) give no example."""
    if not isinstance(pad_id, int) or isinstance(pad_id, bool):
        raise KerasdlError(f"pad_id must be an int, got {pad_id!r}", argument="pad_id")
    tokens, sentence, reach, window = _flatten(sentences_as_ids, window, seed, subsample,
                                               counts, dynamic_window)
    n = tokens.size
    positions = np.arange(n)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    neighbour = positions[:, None] + offsets[None, :]
    inside = (neighbour >= 0) & (neighbour < n)
    clipped = np.clip(neighbour, 0, max(n - 1, 0))
    valid = inside & (sentence[clipped] == sentence[:, None]) \
        & (np.abs(offsets)[None, :] <= reach[:, None])
    contexts = np.where(valid, tokens[clipped], pad_id)
    # Stable sort on "is padding" moves each row's contexts to the front, in order.
    order = np.argsort(~valid, axis=1, kind="stable")
    contexts = np.take_along_axis(contexts, order, axis=1)
    has_context = valid.any(axis=1)
    return contexts[has_context], tokens[has_context]


def cooccurrence_matrix(sentences_as_ids, vocab_size, window, weighting="uniform"):
    """Word-context co-occurrence counts ``X`` (dense float64 ``[V, V]``, symmetric):
    ``X[i, j]`` adds, for every occurrence of ``j`` within ``window`` positions of ``i`` in
    a sentence, 1 (``"uniform"``) or ``1 / distance`` (``"harmonic"``, GloVe's weighting,
    Pennington et al. 2014, Sec. 4.2)."""
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    window = check_positive_int(window, "window")
    check_choice(weighting, ("uniform", "harmonic"), "weighting")
    arrays = check_id_sequences(sentences_as_ids, "sentences_as_ids", vocab_size=vocab_size)
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    sentence = np.repeat(np.arange(len(arrays)), [a.size for a in arrays])
    matrix = np.zeros((vocab_size, vocab_size))
    for d in range(1, window + 1):
        left = np.arange(max(tokens.size - d, 0))
        left = left[sentence[left] == sentence[left + d]]
        weight = 1.0 if weighting == "uniform" else 1.0 / d
        np.add.at(matrix, (tokens[left], tokens[left + d]), weight)
        np.add.at(matrix, (tokens[left + d], tokens[left]), weight)
    return matrix
