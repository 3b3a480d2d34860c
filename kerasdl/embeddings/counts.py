"""Count-based word vectors: positive pointwise mutual information and its truncated SVD
(Levy, Goldberg, Dagan, "Improving Distributional Similarity with Lessons Learned from
Word Embeddings", TACL 2015; LSA: Deerwester et al., "Indexing by Latent Semantic
Analysis", JASIS 1990)."""

from __future__ import annotations

import numbers

import numpy as np

from kerasdl.embeddings._checks import check_matrix
from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["lsa", "ppmi"]


def _check_exponent(value, argument, low=0.0, high=None):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= low \
            or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise KerasdlError(f"{argument} must be a number >= {low}{upper}, got {value!r}",
                           argument=argument)
    return float(value)


def ppmi(cooc, alpha=0.75):
    """Positive PMI of a word-context count matrix ``cooc`` (rows words, columns contexts):
    ``max(0, log P(w, c) / (P(w) P_alpha(c)))`` with ``P(w, c) = #(w, c) / N``,
    ``P(w) = #(w) / N`` and the smoothed context distribution
    ``P_alpha(c) = #(c)^alpha / sum_c' #(c')^alpha``. ``alpha = 0.75`` (Levy et al. 2015,
    Sec. 3.2, after word2vec's noise distribution) lowers PMI's bias towards rare contexts;
    ``alpha = 1`` is plain PPMI. Cells with no count are 0."""
    counts = check_matrix(cooc, "cooc", nonnegative=True)
    alpha = _check_exponent(alpha, "alpha", low=0.0)
    total = counts.sum()
    if total <= 0:
        raise KerasdlError("cooc must hold some positive count", argument="cooc")
    p_word = counts.sum(axis=1) / total
    context = counts.sum(axis=0)
    smoothed = np.where(context > 0, context ** alpha, 0.0)
    p_context = smoothed / smoothed.sum()
    joint = counts / total
    out = np.zeros_like(counts)
    seen = counts > 0  # a positive cell has a positive row and column sum
    expected = np.outer(p_word, p_context)
    out[seen] = np.log(joint[seen] / expected[seen])
    return np.maximum(out, 0.0)


def lsa(matrix, dim, eigenvalue_weighting=0.5, return_contexts=False):
    """Word vectors from the rank-``dim`` truncated SVD ``M ~ U_k S_k V_k^T`` of ``matrix``
    (a PPMI matrix, say): ``W = U_k S_k^p`` with ``p = eigenvalue_weighting``. The
    "correct" ``p = 1`` of textbook LSA does worse on similarity tasks than ``p = 0.5``
    (symmetric) or ``p = 0`` (Levy et al. 2015, Sec. 3.3); 0.5 is the default. With
    ``return_contexts`` also the context vectors ``C = V_k S_k^(1 - p)``, so that
    ``W @ C.T`` is the best rank-``dim`` approximation of ``matrix`` for every ``p``.

    Signs are fixed (each component's largest-magnitude entry in ``U`` positive), so the
    result does not depend on the LAPACK build."""
    m = check_matrix(matrix, "matrix")
    dim = check_positive_int(dim, "dim")
    if dim > min(m.shape):
        raise KerasdlError(f"dim must be at most min(matrix.shape) = {min(m.shape)}, got {dim}",
                           argument="dim")
    p = _check_exponent(eigenvalue_weighting, "eigenvalue_weighting", low=0.0, high=1.0)
    if not isinstance(return_contexts, bool):
        raise KerasdlError("return_contexts must be True or False", argument="return_contexts")
    if dim < min(m.shape) // 2:
        # Only the top dim components: ARPACK (Lanczos) from a fixed start vector, far
        # cheaper than a full SVD of a vocabulary-sized matrix and as exact.
        from scipy.sparse.linalg import svds

        start = np.full(min(m.shape), 1.0 / np.sqrt(min(m.shape)))
        u, s, vt = svds(np.asarray(m, dtype=np.float64), k=dim, v0=start)
        order = np.argsort(s)[::-1]
        u, s, v = u[:, order], s[order], vt[order].T
    else:
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        u, s, v = u[:, :dim], s[:dim], vt[:dim].T
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(dim)])
    flip[flip == 0] = 1.0
    u, v = u * flip, v * flip
    words = u * s ** p
    if return_contexts:
        return words, v * s ** (1.0 - p)
    return words
