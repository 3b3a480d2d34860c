"""Vectors for sentences and documents.

* Averages of word vectors, optionally weighted ``a / (a + p(w))`` with the first
  principal component removed: SIF, Arora, Liang, Ma, "A Simple but Tough-to-Beat
  Baseline for Sentence Embeddings", ICLR 2017. The weight shrinks frequent words, whose
  vectors mostly carry the corpus's common direction; removing that direction then
  takes out what all sentences share.
* PV-DBOW, the distributed bag of words paragraph vector: Le & Mikolov, "Distributed
  Representations of Sentences and Documents", ICML 2014, Sec. 2.3. A document's vector
  is trained to predict the document's words (here with negative sampling); a new
  document gets its vector by the same training with the word side frozen.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasdl.embeddings._checks import (check_counts, check_id_sequences, check_matrix,
                                        check_positive_number, check_seed)
from kerasdl.embeddings.word2vec import (NegativeSampling, PerExampleLossModel,
                                         check_fit_arguments, initial_embeddings,
                                         make_optimizer)
from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["PVDBOWModel", "ParagraphVectors", "average_vectors", "remove_common_components",
           "sif_embeddings", "sif_weights"]


def sif_weights(counts, a=1e-3):
    """SIF word weights ``a / (a + p(w))``, ``p`` the unigram probability of ``counts``
    (a Vocabulary or counts per id); Arora et al. found ``a`` in 1e-4 .. 1e-3 best."""
    counts = check_counts(counts)
    a = check_positive_number(a, "a")
    return a / (a + counts / counts.sum())


def average_vectors(documents_as_ids, vectors, weights=None):
    """Each document's (weighted) mean word vector, ``[n_documents, dim]``:
    ``sum_w weight(w) v_w / n_words``. An empty document gets the zero vector."""
    table = check_matrix(vectors, "vectors")
    docs = check_id_sequences(documents_as_ids, "documents_as_ids", vocab_size=table.shape[0])
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (table.shape[0],) or not np.all(np.isfinite(weights)):
            raise KerasdlError(f"weights must hold one finite number per word "
                               f"({table.shape[0]})", argument="weights")
    out = np.zeros((len(docs), table.shape[1]))
    for n, doc in enumerate(docs):
        if doc.size:
            rows = table[doc] if weights is None else table[doc] * weights[doc, None]
            out[n] = rows.mean(axis=0)
    return out


def remove_common_components(matrix, n=1):
    """``matrix`` with its projection on its first ``n`` singular directions removed
    (SIF's step 2, uncentred as in the paper's Algorithm 1)."""
    m = check_matrix(matrix, "matrix")
    n = check_positive_int(n, "n")
    if n > min(m.shape):
        raise KerasdlError(f"n must be at most min(matrix.shape) = {min(m.shape)}",
                           argument="n")
    _, _, vt = np.linalg.svd(m, full_matrices=False)
    top = vt[:n]
    return m - (m @ top.T) @ top


def sif_embeddings(documents_as_ids, vectors, counts, a=1e-3, remove_component=True):
    """SIF sentence vectors (Arora et al. 2017, Algorithm 1): the :func:`sif_weights`
    weighted average, then the first common component removed (with at least 2
    documents)."""
    weights = sif_weights(counts, a)
    out = average_vectors(documents_as_ids, vectors, weights)
    if not isinstance(remove_component, bool):
        raise KerasdlError("remove_component must be True or False",
                           argument="remove_component")
    if remove_component and out.shape[0] > 1:
        out = remove_common_components(out, 1)
    return out


@keras.saving.register_keras_serializable(package="kerasdl")
class PVDBOWModel(PerExampleLossModel):
    """PV-DBOW: a document vector predicts each of its words with negative sampling; call
    on ``{"input_ids" (document ids), "target_ids" (word ids)[, "negative_ids"]}``,
    returns the loss per example."""

    def __init__(self, num_documents, counts, dim=100, negatives=5, power=0.75, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_documents = check_positive_int(num_documents, "num_documents")
        self.counts = check_counts(counts)
        self.dim = check_positive_int(dim, "dim")
        self.seed = check_seed(seed)
        self.documents = keras.layers.Embedding(
            self.num_documents, self.dim, name="document_vectors",
            embeddings_initializer=initial_embeddings(self.dim, seed))
        self.objective = NegativeSampling(self.counts, self.dim, negatives, power, seed=seed,
                                          name="negative_sampling")
        self.negatives, self.power = negatives, power

    def call(self, inputs):
        h = self.documents(ops.cast(inputs["input_ids"], "int32"))
        return self.objective((h, inputs["target_ids"]), negative_ids=inputs.get("negative_ids"))

    def get_config(self):
        return {**super().get_config(), "num_documents": self.num_documents,
                "counts": [float(c) for c in self.counts], "dim": self.dim,
                "negatives": self.negatives, "power": self.power, "seed": self.seed}


def _document_pairs(docs):
    lengths = [d.size for d in docs]
    return {"input_ids": np.repeat(np.arange(len(docs)), lengths).astype("int32"),
            "target_ids": (np.concatenate(docs) if docs else np.zeros(0)).astype("int32")}


class ParagraphVectors:
    """PV-DBOW document vectors. ``vocab`` (a Vocabulary or counts per id) sets the noise
    distribution; :meth:`fit` learns one vector per training document (:attr:`vectors`)
    and the output word vectors; :meth:`infer` embeds new documents with those frozen."""

    def __init__(self, vocab, dim=100, negatives=5, power=0.75, seed=0):
        self.counts = check_counts(vocab, "vocab")
        self.dim = check_positive_int(dim, "dim")
        self.negatives = check_positive_int(negatives, "negatives")
        self.power = power
        self.seed = check_seed(seed)
        self.model = None

    def _train(self, model, docs, epochs, batch_size, optimizer, verbose):
        x = _document_pairs(docs)
        if not x["target_ids"].size:
            raise KerasdlError("documents_as_ids holds no word", argument="documents_as_ids")
        model.compile(optimizer=optimizer)
        return model.fit(x, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)

    def fit(self, documents_as_ids, epochs=10, batch_size=256, learning_rate=0.01,
            optimizer="adam", verbose=0):
        """Trains document and word vectors; returns the Keras ``History``."""
        check_fit_arguments(epochs, batch_size, verbose)
        optimizer = make_optimizer(optimizer, learning_rate)
        docs = check_id_sequences(documents_as_ids, "documents_as_ids",
                                  vocab_size=self.counts.size)
        if not docs:
            raise KerasdlError("documents_as_ids holds no document", argument="documents_as_ids")
        self.model = PVDBOWModel(len(docs), self.counts, self.dim, self.negatives, self.power,
                                 self.seed)
        return self._train(self.model, docs, epochs, batch_size, optimizer, verbose)

    @property
    def vectors(self):
        """The training documents' vectors, numpy ``[n_documents, dim]``."""
        self._check_fitted()
        return keras.ops.convert_to_numpy(self.model.documents.embeddings)

    def _check_fitted(self):
        if self.model is None:
            raise KerasdlError("fit the paragraph vectors before using them")

    def infer(self, documents_as_ids, epochs=20, batch_size=256, learning_rate=0.01,
              optimizer="adam", seed=None):
        """Vectors of new documents, ``[n, dim]``: fresh document vectors trained on the
        PV-DBOW objective while the word side stays as :meth:`fit` left it (Le & Mikolov
        2014, Sec. 2.2, "inference stage")."""
        self._check_fitted()
        check_fit_arguments(epochs, batch_size, 0)
        optimizer = make_optimizer(optimizer, learning_rate)
        docs = check_id_sequences(documents_as_ids, "documents_as_ids",
                                  vocab_size=self.counts.size)
        if not docs:
            raise KerasdlError("documents_as_ids holds no document", argument="documents_as_ids")
        seed = self.seed + 1 if seed is None and self.seed is not None else check_seed(seed)
        model = PVDBOWModel(len(docs), self.counts, self.dim, self.negatives, self.power, seed)
        model.objective.build()
        model.objective.output_vectors.assign(self.model.objective.output_vectors)
        model.objective.trainable = False
        self._train(model, docs, epochs, batch_size, optimizer, 0)
        return keras.ops.convert_to_numpy(model.documents.embeddings)
