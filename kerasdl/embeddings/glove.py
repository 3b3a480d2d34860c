"""GloVe: Pennington, Socher, Manning, "GloVe: Global Vectors for Word Representation",
EMNLP 2014.

Weighted least squares on the logarithm of the co-occurrence counts ``X``:
``J = sum_{ij, X_ij > 0} f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2`` (Eq. 8) with
``f(x) = min(1, (x / x_max)^alpha)``, ``x_max = 100``, ``alpha = 3/4`` (Eq. 9). The model
is trained with an ordinary ``model.fit`` on the nonzero cells ``(i, j)`` as inputs,
``log X_ij`` as targets and ``f(X_ij)`` as sample weights. The paper's word vectors are
``W + W~`` (Sec. 4.2).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasdl.embeddings._checks import check_matrix, check_positive_number, check_seed
from kerasdl.embeddings.word2vec import (check_fit_arguments, initial_embeddings,
                                         make_optimizer)
from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["GloVe", "GloVeModel", "cooccurrence_triples", "glove_weighting"]


def glove_weighting(x, x_max=100.0, alpha=0.75):
    """GloVe's weight ``f(x) = min(1, (x / x_max)^alpha)`` (Eq. 9): rare pairs, whose
    counts are noisy, weigh less; frequent ones are capped so they do not dominate."""
    x_max = check_positive_number(x_max, "x_max")
    alpha = check_positive_number(alpha, "alpha")
    x = np.asarray(x, dtype=np.float64)
    if (x < 0).any():
        raise KerasdlError("x must hold counts >= 0", argument="x")
    return np.minimum(1.0, (x / x_max) ** alpha)


def cooccurrence_triples(cooc):
    """The nonzero cells of a co-occurrence matrix as ``(rows, cols, values)``."""
    m = check_matrix(cooc, "cooc", square=True, nonnegative=True)
    rows, cols = np.nonzero(m)
    return rows.astype(np.int32), cols.astype(np.int32), m[rows, cols]


def _offset_seed(seed, k):
    return None if seed is None else seed + k


@keras.saving.register_keras_serializable(package="kerasdl")
class GloVeModel(keras.Model):
    """Word and context vectors with biases; call on ``{"row_ids", "col_ids"}``, returns
    ``w_i . w~_j + b_i + b~_j``. Its loss is half the weighted squared error summed over
    the batch, GloVe's ``J`` restricted to the batch: with a sum, not a mean, Adagrad takes
    the reference code's per-pair step sizes."""

    def __init__(self, vocab_size, dim=50, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.dim = check_positive_int(dim, "dim")
        self.seed = check_seed(seed)

        def table(name, width, k):
            return keras.layers.Embedding(
                self.vocab_size, width, name=name,
                embeddings_initializer=initial_embeddings(self.dim, _offset_seed(seed, k)))

        self.word_vectors = table("word_vectors", self.dim, 0)
        self.context_vectors = table("context_vectors", self.dim, 1)
        self.word_biases = table("word_biases", 1, 2)
        self.context_biases = table("context_biases", 1, 3)

    def call(self, inputs):
        i = ops.cast(inputs["row_ids"], "int32")
        j = ops.cast(inputs["col_ids"], "int32")
        dot = ops.sum(self.word_vectors(i) * self.context_vectors(j), axis=-1)
        return dot + self.word_biases(i)[:, 0] + self.context_biases(j)[:, 0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        error = ops.square(y_pred - ops.cast(y, y_pred.dtype))
        if sample_weight is not None:
            error = error * ops.cast(sample_weight, y_pred.dtype)
        loss = 0.5 * ops.sum(error)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim,
                "seed": self.seed}


class GloVe:
    """GloVe on a ``[V, V]`` co-occurrence matrix (:func:`cooccurrence_matrix` with
    ``weighting="harmonic"`` counts as the paper does). The paper trains with Adagrad at
    0.05 (Sec. 4.2), the default here."""

    def __init__(self, vocab_size, dim=50, x_max=100.0, alpha=0.75, seed=0):
        self.x_max = check_positive_number(x_max, "x_max")
        self.alpha = check_positive_number(alpha, "alpha")
        self.model = GloVeModel(vocab_size, dim, check_seed(seed))

    def fit(self, cooc, epochs=25, batch_size=512, learning_rate=0.05, optimizer="adagrad",
            verbose=0):
        """Trains on the nonzero cells of ``cooc``; returns the Keras ``History``."""
        check_fit_arguments(epochs, batch_size, verbose)
        optimizer = make_optimizer(optimizer, learning_rate)
        rows, cols, values = cooccurrence_triples(cooc)
        if np.shape(cooc)[0] != self.model.vocab_size:
            raise KerasdlError(f"cooc must be {self.model.vocab_size} x {self.model.vocab_size}"
                               f", got {np.shape(cooc)}", argument="cooc")
        if not values.size:
            raise KerasdlError("cooc holds no co-occurrence", argument="cooc")
        x = {"row_ids": rows, "col_ids": cols}
        y = np.log(values).astype("float32")
        weights = glove_weighting(values, self.x_max, self.alpha).astype("float32")
        self.model.compile(optimizer=optimizer)
        return self.model.fit(x, y, sample_weight=weights, batch_size=batch_size, epochs=epochs,
                              shuffle=True, verbose=verbose)

    def _table(self, layer):
        if not layer.built:
            layer.build((None,))
        return keras.ops.convert_to_numpy(layer.embeddings)

    @property
    def word_vectors(self):
        return self._table(self.model.word_vectors)

    @property
    def context_vectors(self):
        return self._table(self.model.context_vectors)

    @property
    def vectors(self):
        """``W + W~``, numpy ``[V, dim]``: the sum of the two sets, which the paper found
        a little better than either (Sec. 4.2)."""
        return self.word_vectors + self.context_vectors
