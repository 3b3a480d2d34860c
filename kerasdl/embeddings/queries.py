"""Questions to word vectors: similarity, nearest neighbours and analogies.

Analogies "a is to b as c is to ?" (Mikolov, Yih, Zweig, "Linguistic Regularities in
Continuous Space Word Representations", NAACL 2013) are answered with 3CosAdd,
``argmax_d cos(d, b - a + c)``, or 3CosMul, ``argmax_d cos(d, b) cos(d, c) /
(cos(d, a) + eps)`` with cosines shifted to [0, 1] (Levy & Goldberg, "Linguistic
Regularities in Sparse and Explicit Word Representations", CoNLL 2014), which keeps one
large term from dominating. The query words are never answers.
"""

from __future__ import annotations

import numpy as np

from kerasdl.embeddings.corpus import Vocabulary
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = ["analogy", "cosine_similarity", "evaluate_analogies", "nearest"]

ANALOGY_METHODS = ("add", "mul")
_EPS = 1e-3  # Levy & Goldberg's epsilon, against division by zero in 3CosMul


def _as_float_array(x, argument, ndims):
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise KerasdlError(f"{argument} must be numeric", argument=argument) from None
    if arr.ndim not in ndims or arr.size == 0 or not np.all(np.isfinite(arr)):
        allowed = " or ".join(map(str, ndims))
        raise KerasdlError(f"{argument} must be a non-empty {allowed}-D array of finite numbers, "
                           f"got shape {arr.shape}", argument=argument)
    return arr


def _normalise(m):
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)  # a zero vector stays zero: similarity 0


def cosine_similarity(a, b):
    """Cosine similarity of vectors ``a`` and ``b``: a number for two vectors, ``[n]`` for
    a matrix and a vector, ``[n, m]`` for two matrices. A zero vector has similarity 0."""
    a = _as_float_array(a, "a", (1, 2))
    b = _as_float_array(b, "b", (1, 2))
    if a.shape[-1] != b.shape[-1]:
        raise KerasdlError(f"a and b must have the same dimension, got {a.shape[-1]} and "
                           f"{b.shape[-1]}", argument="b")
    out = _normalise(a) @ _normalise(b).T
    return float(out) if out.ndim == 0 else out


def _words(vocab):
    if isinstance(vocab, Vocabulary):
        return vocab.words, vocab.ids
    if isinstance(vocab, str) or not hasattr(vocab, "__iter__"):
        raise KerasdlError("vocab must be a Vocabulary or a list of words", argument="vocab")
    words = list(vocab)
    return words, {w: i for i, w in enumerate(words)}


def _check_vectors(vectors, words):
    m = _as_float_array(vectors, "vectors", (2,))
    if m.shape[0] != len(words):
        raise KerasdlError(f"vectors must have one row per vocabulary word ({len(words)}), got "
                           f"{m.shape[0]}", argument="vectors")
    return m


def _lookup(ids, word, argument):
    if word not in ids:
        raise KerasdlError(f"{argument}={word!r} is not in the vocabulary", argument=argument)
    return ids[word]


def _top(scores, words, k, banned):
    scores = scores.copy()
    scores[list(banned)] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    best = np.argsort(-scores, kind="stable")[:k]
    return [(words[i], float(scores[i])) for i in best]


def nearest(vectors, vocab, word_or_vector, k=10, exclude=()):
    """The ``k`` words most cosine-similar to a word (itself left out) or to a vector, as
    ``[(word, similarity), ...]``, best first; words in ``exclude`` are left out too."""
    words, ids = _words(vocab)
    m = _check_vectors(vectors, words)
    check_positive_int(k, "k")
    if isinstance(exclude, str) or not hasattr(exclude, "__iter__"):
        raise KerasdlError("exclude must be a collection of words", argument="exclude")
    banned = {ids[w] for w in exclude if w in ids}
    if isinstance(word_or_vector, str):
        i = _lookup(ids, word_or_vector, "word_or_vector")
        query = m[i]
        banned.add(i)
    else:
        query = _as_float_array(word_or_vector, "word_or_vector", (1,))
        if query.size != m.shape[1]:
            raise KerasdlError(f"word_or_vector must have {m.shape[1]} dimensions, got "
                               f"{query.size}", argument="word_or_vector")
    scores = _normalise(m) @ _normalise(query)
    return _top(scores, words, k, banned)


def _analogy_scores(unit, ia, ib, ic, method):
    """Scores of every word as the answer of "a : b :: c : ?" (rows of ``ia``.. at once)."""
    if method == "add":
        return _normalise(unit[ib] - unit[ia] + unit[ic]) @ unit.T
    shift = lambda s: (s + 1.0) / 2.0  # noqa: E731  (cosines into [0, 1])
    sa, sb, sc = (shift(unit[i] @ unit.T) for i in (ia, ib, ic))
    return sb * sc / (sa + _EPS)


def analogy(vectors, vocab, a, b, c, k=1, method="add"):
    """Answers "``a`` is to ``b`` as ``c`` is to ?": the ``k`` best words (never ``a``,
    ``b`` or ``c``) as ``[(word, score), ...]``, by 3CosAdd (``method="add"``: the words
    nearest to ``b - a + c``, with unit vectors) or 3CosMul (``"mul"``)."""
    words, ids = _words(vocab)
    m = _check_vectors(vectors, words)
    check_positive_int(k, "k")
    check_choice(method, ANALOGY_METHODS, "method")
    ia, ib, ic = (_lookup(ids, w, name) for w, name in ((a, "a"), (b, "b"), (c, "c")))
    scores = _analogy_scores(_normalise(m), ia, ib, ic, method)
    return _top(scores, words, k, {ia, ib, ic})


def evaluate_analogies(vectors, vocab, quadruples, method="add"):
    """Accuracy on analogy questions ``(a, b, c, d)`` (``d`` the expected answer), as in
    Mikolov et al.'s word analogy test. Questions with a word outside the vocabulary are
    skipped and counted. Returns ``{"accuracy", "correct", "total", "skipped"}``;
    ``accuracy`` is over the questions answered (``nan`` if none)."""
    words, ids = _words(vocab)
    m = _check_vectors(vectors, words)
    check_choice(method, ANALOGY_METHODS, "method")
    if isinstance(quadruples, str) or not hasattr(quadruples, "__iter__"):
        raise KerasdlError("quadruples must be a list of (a, b, c, d) word tuples",
                           argument="quadruples")
    questions, skipped = [], 0
    for q in quadruples:
        if isinstance(q, str) or not hasattr(q, "__len__") or len(q) != 4:
            raise KerasdlError(f"quadruples must hold (a, b, c, d) tuples, got {q!r}",
                               argument="quadruples")
        if all(w in ids for w in q):
            questions.append([ids[w] for w in q])
        else:
            skipped += 1
    if not questions:
        return {"accuracy": float("nan"), "correct": 0, "total": 0, "skipped": skipped}
    q = np.asarray(questions)
    unit = _normalise(m)
    correct = 0
    for start in range(0, len(q), 256):  # bounded memory: [256, V] scores at a time
        part = q[start:start + 256]
        scores = _analogy_scores(unit, part[:, 0], part[:, 1], part[:, 2], method)
        rows = np.arange(len(part))
        for col in range(3):
            scores[rows, part[:, col]] = -np.inf
        correct += int((scores.argmax(axis=1) == part[:, 3]).sum())
    return {"accuracy": correct / len(q), "correct": correct, "total": len(q),
            "skipped": skipped}
