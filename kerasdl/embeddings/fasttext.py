"""fastText word vectors: Bojanowski, Grave, Joulin, Mikolov, "Enriching Word Vectors with
Subword Information", TACL 2017.

A word is the bag of its character n-grams (3 to 6 characters of the word wrapped in the
boundary markers ``<`` and ``>``) plus the word itself; n-grams are hashed with FNV-1a
into a fixed number of buckets, each with a vector. The word's vector combines its own
vector and those of its n-grams, and is trained as skip-gram with negative sampling. A
word never seen in training still has n-grams, hence a vector (Sec. 3.2).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasdl.embeddings._checks import (check_counts, check_id_sequences, check_positive_number,
                                        check_seed)
from kerasdl.embeddings.corpus import Vocabulary, skipgram_pairs
from kerasdl.embeddings.word2vec import (NegativeSampling, PerExampleLossModel,
                                         check_fit_arguments, initial_embeddings,
                                         make_optimizer)
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = ["FastText", "FastTextModel", "SubwordEmbedding", "char_ngrams", "fnv1a_32",
           "ngram_buckets"]

_FNV_OFFSET = 0x811C9DC5  # 2166136261
_FNV_PRIME = 0x01000193   # 16777619
COMBINES = ("mean", "sum")


def fnv1a_32(data):
    """The 32-bit FNV-1a hash of ``data`` (bytes, or a str taken as UTF-8): start from the
    offset basis 2166136261; for each byte, xor it in, then multiply by 16777619 modulo
    2^32. fastText's C++ code xors bytes >= 0x80 sign-extended (``int8_t``), so it differs
    from this standard hash on non-ASCII text."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        raise KerasdlError(f"data must be str or bytes, got {type(data).__name__}",
                           argument="data")
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _check_ngram_range(min_n, max_n):
    check_positive_int(min_n, "min_n")
    check_positive_int(max_n, "max_n")
    if max_n < min_n:
        raise KerasdlError(f"max_n must be >= min_n = {min_n}, got {max_n}", argument="max_n")


def char_ngrams(word, min_n=3, max_n=6):
    """The character n-grams of ``<word>``, ``min_n <= n <= max_n``, in order of start
    and length (for "where", n = 3: ``<wh whe her ere re>``, Sec. 3.2). The whole
    ``<word>`` is among them when it is short enough, as in fastText; a repeated n-gram
    is listed once."""
    if not isinstance(word, str) or not word:
        raise KerasdlError(f"word must be a non-empty str, got {word!r}", argument="word")
    _check_ngram_range(min_n, max_n)
    marked = f"<{word}>"
    seen, grams = set(), []
    for start in range(len(marked)):
        for n in range(min_n, max_n + 1):
            if start + n > len(marked):
                break
            gram = marked[start:start + n]
            if gram not in seen:
                seen.add(gram)
                grams.append(gram)
    return grams


def ngram_buckets(word, min_n=3, max_n=6, buckets=2 ** 16):
    """Bucket ids ``fnv1a_32(g) % buckets`` of ``word``'s n-grams (int64 array)."""
    check_positive_int(buckets, "buckets")
    return np.asarray([fnv1a_32(g) % buckets for g in char_ngrams(word, min_n, max_n)],
                      dtype=np.int64)


def _subword_rows(words, min_n, max_n, buckets):
    """Per word, the rows of the shared table it sums: its own (``id``) and its n-grams'
    (``V + bucket``), padded with -1."""
    size = len(words)
    rows = [[i] + sorted(set((size + ngram_buckets(w, min_n, max_n, buckets)).tolist()))
            for i, w in enumerate(words)]
    width = max(len(r) for r in rows)
    table = np.full((size, width), -1, dtype=np.int32)
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    return table


@keras.saving.register_keras_serializable(package="kerasdl")
class SubwordEmbedding(keras.layers.Layer):
    """fastText's input vectors: one table with a row per word (``0 .. V-1``) and per hash
    bucket (``V .. V+buckets-1``); word ``i`` is the mean (``combine="mean"``, what the
    fastText code computes) or the sum (the paper's Eq. of Sec. 3.2) of its own row and
    its n-gram rows. Colliding n-grams share a row, which bounds memory (Sec. 3.2)."""

    def __init__(self, words, dim, min_n=3, max_n=6, buckets=2 ** 16, combine="mean",
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.words = list(words)
        if not self.words or not all(isinstance(w, str) and w for w in self.words):
            raise KerasdlError("words must be a non-empty list of non-empty str",
                               argument="words")
        self.dim = check_positive_int(dim, "dim")
        _check_ngram_range(min_n, max_n)
        self.min_n, self.max_n = min_n, max_n
        self.buckets = check_positive_int(buckets, "buckets")
        self.combine = check_choice(combine, COMBINES, "combine")
        self.seed = check_seed(seed)
        self._rows = _subword_rows(self.words, min_n, max_n, self.buckets)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(len(self.words) + self.buckets, self.dim), name="embeddings",
            initializer=initial_embeddings(self.dim, self.seed))

    def combine_rows(self, rows):
        """The combined vector of each row list in ``rows`` ``[..., S]`` (-1 = padding)."""
        rows = ops.cast(rows, "int32")
        vectors = ops.take(self.embeddings, ops.maximum(rows, 0), axis=0)
        mask = ops.cast(ops.greater_equal(rows, 0), vectors.dtype)
        total = ops.sum(vectors * ops.expand_dims(mask, -1), axis=-2)
        if self.combine == "sum":
            return total
        return total / ops.maximum(ops.sum(mask, axis=-1, keepdims=True), 1.0)

    def call(self, word_ids):
        rows = ops.take(ops.convert_to_tensor(self._rows), ops.cast(word_ids, "int32"), axis=0)
        return self.combine_rows(rows)

    def get_config(self):
        return {**super().get_config(), "words": self.words, "dim": self.dim,
                "min_n": self.min_n, "max_n": self.max_n, "buckets": self.buckets,
                "combine": self.combine, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasdl")
class FastTextModel(PerExampleLossModel):
    """Skip-gram with negative sampling over :class:`SubwordEmbedding` input vectors; call
    on ``{"input_ids", "target_ids"[, "negative_ids"]}``, returns the loss per example."""

    def __init__(self, words, counts, dim=100, negatives=5, min_n=3, max_n=6,
                 buckets=2 ** 16, combine="mean", power=0.75, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.embedding = SubwordEmbedding(words, dim, min_n, max_n, buckets, combine, seed,
                                          name="subword_vectors")
        counts = check_counts(counts)
        if counts.shape != (len(self.embedding.words),):
            raise KerasdlError(f"counts must hold one count per word ({len(words)})",
                               argument="counts")
        self.objective = NegativeSampling(counts, dim, negatives, power, seed=seed,
                                          name="negative_sampling")
        self._config = {"words": self.embedding.words, "counts": [float(c) for c in counts],
                        "dim": dim, "negatives": negatives, "min_n": min_n, "max_n": max_n,
                        "buckets": buckets, "combine": combine, "power": power, "seed": seed}

    def call(self, inputs):
        h = self.embedding(inputs["input_ids"])
        return self.objective((h, inputs["target_ids"]), negative_ids=inputs.get("negative_ids"))

    def get_config(self):
        return {**super().get_config(), **self._config}


class FastText:
    """fastText skip-gram on a corpus of id sequences. ``vocab`` must be a
    :class:`Vocabulary` (the n-grams need the words). ``buckets`` is 2 million in fastText;
    the smaller default suits the small corpora of this book. Pairs and subsampling are
    drawn once per ``fit`` from ``seed``, as in :class:`Word2Vec`."""

    def __init__(self, vocab, dim=100, window=5, negatives=5, min_n=3, max_n=6,
                 buckets=2 ** 16, combine="mean", subsample=1e-3, power=0.75, seed=0):
        if not isinstance(vocab, Vocabulary):
            raise KerasdlError("vocab must be a Vocabulary (fastText needs the words)",
                               argument="vocab")
        self.vocab = vocab
        self.window = check_positive_int(window, "window")
        if subsample is not None:
            check_positive_number(subsample, "subsample")
        self.subsample = subsample
        self.seed = check_seed(seed)
        self.model = FastTextModel(vocab.words, vocab.counts, dim, negatives, min_n, max_n,
                                   buckets, combine, power, self.seed)
        self.embedding = self.model.embedding

    def fit(self, sentences_as_ids, epochs=5, batch_size=256, learning_rate=0.01,
            optimizer="adam", verbose=0):
        """Trains on ``sentences_as_ids``; returns the Keras ``History``."""
        check_fit_arguments(epochs, batch_size, verbose)
        optimizer = make_optimizer(optimizer, learning_rate)
        check_id_sequences(sentences_as_ids, "sentences_as_ids", vocab_size=len(self.vocab))
        centres, contexts = skipgram_pairs(sentences_as_ids, self.window, self.seed,
                                           self.subsample, counts=self.vocab.counts)
        if not centres.size:
            raise KerasdlError("sentences_as_ids gives no training pair (sentences too "
                               "short, or all words subsampled away?)",
                               argument="sentences_as_ids")
        x = {"input_ids": centres.astype("int32"), "target_ids": contexts.astype("int32")}
        self.model.compile(optimizer=optimizer)
        return self.model.fit(x, batch_size=batch_size, epochs=epochs, shuffle=True,
                              verbose=verbose)

    def _table(self):
        if not self.embedding.built:
            self.embedding.build()
        return keras.ops.convert_to_numpy(self.embedding.embeddings)

    @property
    def vectors(self):
        """The vectors of the vocabulary's words (own row and n-grams), numpy ``[V, dim]``."""
        self._table()
        return keras.ops.convert_to_numpy(self.embedding.combine_rows(self.embedding._rows))

    def vector(self, word):
        """The vector of ``word``: as in :attr:`vectors` for a vocabulary word, else the
        combination of its n-gram vectors alone (fastText's out-of-vocabulary vector)."""
        if not isinstance(word, str) or not word:
            raise KerasdlError(f"word must be a non-empty str, got {word!r}", argument="word")
        i = self.vocab.ids.get(word)
        if i is not None:
            self._table()
            return keras.ops.convert_to_numpy(self.embedding.combine_rows(self.embedding._rows[i]))
        table = self._table()
        e = self.embedding
        rows = len(self.vocab) + np.unique(ngram_buckets(word, e.min_n, e.max_n, e.buckets))
        total = table[rows].sum(axis=0)
        return total if e.combine == "sum" else total / rows.size
