"""word2vec: skip-gram and CBOW, trained with negative sampling or hierarchical softmax
(Mikolov, Chen, Corrado, Dean, "Efficient Estimation of Word Representations in Vector
Space", ICLR workshop 2013a; Mikolov, Sutskever, Chen, Corrado, Dean, "Distributed
Representations of Words and Phrases and their Compositionality", NIPS 2013b).

Every model is a ``keras.Model`` whose output is the loss of each example, trained with
an ordinary ``model.fit`` on a dict of id arrays (``input_ids``, ``target_ids``) and no
labels. Skip-gram: the input is a centre word and the target one word of its window;
CBOW: the input is the window (padded with -1) and the target its centre word. The two
objectives are layers that score a hidden vector ``h`` against a target word:

* :class:`NegativeSampling` (2013b, Eq. 4): ``-log s(h.u_o) - sum_k log s(-h.u_k)`` with
  ``k`` noise words drawn from the unigram distribution raised to 3/4;
* :class:`HierarchicalSoftmax` (2013b, Sec. 2.1; Morin & Bengio 2005): the target's
  probability is the product of binary decisions along its path in a Huffman tree,
  ``-sum_j log s(+-h.u_node_j)``; it sums to 1 over the vocabulary by construction.

Layers and models use ``keras.ops`` only, so they run on every Keras backend.
"""

from __future__ import annotations

import dataclasses
import heapq

import keras
import numpy as np
from keras import ops

from kerasdl.embeddings._checks import (check_counts, check_id_sequences,
                                        check_nonnegative_number, check_positive_number,
                                        check_seed)
from kerasdl.embeddings.corpus import cbow_examples, noise_distribution, skipgram_pairs
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = [
    "HierarchicalSoftmax",
    "HuffmanTree",
    "NegativeSampling",
    "Word2Vec",
    "Word2VecModel",
    "build_word2vec",
    "huffman_tree",
]

METHODS = ("skipgram", "cbow")
OBJECTIVES = ("negative", "hierarchical")
OPTIMIZERS = ("adam", "sgd", "adagrad")


# ---------------------------------------------------------------------------- Huffman tree

@dataclasses.dataclass(frozen=True)
class HuffmanTree:
    """Paths from the root to each word, padded to the tree's depth. Row ``w`` of
    ``points`` lists the inner nodes on the way to word ``w`` (root first; inner node ids
    ``0 .. V-2``, the root is ``V-2``), row ``w`` of ``codes`` the branch taken at each
    (0 or 1), ``mask`` which entries are real and ``lengths`` how many."""

    codes: np.ndarray   # int8 [V, depth]
    points: np.ndarray  # int32 [V, depth]
    mask: np.ndarray    # bool [V, depth]
    lengths: np.ndarray  # int32 [V]

    @property
    def num_inner(self):
        return self.codes.shape[0] - 1


def huffman_tree(counts):
    """The Huffman tree of word ``counts`` (a Vocabulary or counts per id), as word2vec
    builds it: repeatedly merge the two least frequent nodes, the smaller becoming branch
    0. Frequent words get short codes, which makes hierarchical softmax fast (2013b,
    Sec. 2.1). Ties go to leaves before inner nodes, then to lower ids, so the tree is
    deterministic. Needs at least two words."""
    counts = check_counts(counts)
    size = counts.size
    if size < 2:
        raise KerasdlError("counts must hold at least 2 words for a Huffman tree",
                           argument="counts")
    heap = [(float(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * size - 1, dtype=np.int64)
    branch = np.zeros(2 * size - 1, dtype=np.int8)
    node = size
    while len(heap) > 1:
        c0, n0 = heapq.heappop(heap)
        c1, n1 = heapq.heappop(heap)
        parent[n0], parent[n1] = node, node
        branch[n0], branch[n1] = 0, 1
        heapq.heappush(heap, (c0 + c1, node))
        node += 1
    root = 2 * size - 2
    paths = []
    for word in range(size):
        steps, n = [], word
        while n != root:
            steps.append((parent[n] - size, branch[n]))
            n = parent[n]
        paths.append(steps[::-1])
    depth = max(len(p) for p in paths)
    codes = np.zeros((size, depth), dtype=np.int8)
    points = np.zeros((size, depth), dtype=np.int32)
    mask = np.zeros((size, depth), dtype=bool)
    for word, steps in enumerate(paths):
        for j, (point, code) in enumerate(steps):
            points[word, j], codes[word, j], mask[word, j] = point, code, True
    return HuffmanTree(codes, points, mask, mask.sum(axis=1).astype(np.int32))


# ---------------------------------------------------------------------------- objectives

def _counts_config(counts):
    return [float(c) for c in counts]


@keras.saving.register_keras_serializable(package="kerasdl")
class NegativeSampling(keras.layers.Layer):
    """Negative-sampling loss of hidden vectors against target words (2013b, Eq. 4):
    ``-log s(h . u_target) - sum_{k} log s(-h . u_k)``, ``u`` the output ("context")
    vectors this layer holds, one row per word, zero at the start as in word2vec.

    Call on ``(h, target_ids)``; the ``negatives`` noise words per example are drawn from
    ``counts ** power`` (normalised; 3/4 in the paper) with the layer's seeded generator,
    or given as ``negative_ids`` ``[batch, k]``. A noise word equal to the target is
    skipped, as word2vec does. Returns the loss of each example, ``[batch]``."""

    def __init__(self, counts, dim, negatives=5, power=0.75, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.counts = check_counts(counts)
        self.dim = check_positive_int(dim, "dim")
        self.negatives = check_positive_int(negatives, "negatives")
        self.power = check_nonnegative_number(power, "power")
        self.seed = check_seed(seed)
        cdf = np.cumsum(noise_distribution(self.counts, power))
        cdf /= cdf[-1]
        self._cdf = cdf.astype("float32")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        self.output_vectors = self.add_weight(shape=(self.counts.size, self.dim),
                                              initializer="zeros", name="output_vectors")

    def sample(self, shape):
        """Noise word ids of ``shape``, by inverse-CDF sampling: cheaper than a
        categorical draw over the whole vocabulary, and exact (word2vec uses a 1e8-entry
        table for the same purpose)."""
        u = keras.random.uniform(shape, seed=self.seed_generator)
        ids = ops.searchsorted(ops.convert_to_tensor(self._cdf), ops.reshape(u, (-1,)),
                               side="right")
        ids = ops.minimum(ops.cast(ids, "int32"), self.counts.size - 1)
        return ops.reshape(ids, ops.shape(u))

    def call(self, inputs, negative_ids=None):
        h, target = inputs
        target = ops.cast(target, "int32")
        if negative_ids is None:
            negative_ids = self.sample((ops.shape(target)[0], self.negatives))
        negative_ids = ops.cast(negative_ids, "int32")
        positive = ops.sum(h * ops.take(self.output_vectors, target, axis=0), axis=-1)
        noise = ops.take(self.output_vectors, negative_ids, axis=0)
        negative = ops.einsum("bd,bkd->bk", h, noise)
        keep = ops.cast(ops.not_equal(negative_ids, target[:, None]), h.dtype)
        return -ops.log_sigmoid(positive) - ops.sum(keep * ops.log_sigmoid(-negative), axis=-1)

    def get_config(self):
        return {**super().get_config(), "counts": _counts_config(self.counts), "dim": self.dim,
                "negatives": self.negatives, "power": self.power, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasdl")
class HierarchicalSoftmax(keras.layers.Layer):
    """Hierarchical-softmax loss (2013b, Sec. 2.1): ``-log P(target | h)`` with
    ``P(w | h) = prod_j s((1 - 2 code_j) h . u_{point_j})`` along ``w``'s path in the
    Huffman tree of ``counts`` (:func:`huffman_tree`). The layer holds one vector per
    inner node (``V - 1``), zero at the start as in word2vec. As ``s(x) + s(-x) = 1`` at
    every node, the probabilities of all words sum to 1 without a normaliser, and a word
    costs ``O(log V)`` dot products instead of ``V``.

    Call on ``(h, target_ids)``; returns the loss of each example, ``[batch]``."""

    def __init__(self, counts, dim, **kwargs):
        super().__init__(**kwargs)
        self.counts = check_counts(counts)
        self.dim = check_positive_int(dim, "dim")
        self.tree = huffman_tree(self.counts)

    def build(self, input_shape=None):
        self.node_vectors = self.add_weight(shape=(self.tree.num_inner, self.dim),
                                            initializer="zeros", name="node_vectors")

    def _path_log_probabilities(self, h, points, codes, mask):
        # h [..., dim]; points/codes/mask [..., depth]
        nodes = ops.take(self.node_vectors, points, axis=0)
        logits = ops.sum(ops.expand_dims(h, -2) * nodes, axis=-1)
        sign = 1.0 - 2.0 * ops.cast(codes, h.dtype)
        return ops.sum(ops.cast(mask, h.dtype) * ops.log_sigmoid(sign * logits), axis=-1)

    def call(self, inputs):
        h, target = inputs
        target = ops.cast(target, "int32")
        table = self._tables()
        points, codes, mask = (ops.take(t, target, axis=0) for t in table)
        return -self._path_log_probabilities(h, points, codes, mask)

    def log_probabilities(self, h):
        """``log P(w | h)`` of every word, ``[batch, V]`` (for checks and small
        vocabularies: it walks all ``V`` paths)."""
        points, codes, mask = self._tables()
        return self._path_log_probabilities(ops.expand_dims(h, 1), points[None], codes[None],
                                            mask[None])

    def _tables(self):
        return (ops.convert_to_tensor(self.tree.points, dtype="int32"),
                ops.convert_to_tensor(self.tree.codes, dtype="int32"),
                ops.convert_to_tensor(self.tree.mask.astype("float32")))

    def get_config(self):
        return {**super().get_config(), "counts": _counts_config(self.counts), "dim": self.dim}


# ---------------------------------------------------------------------------- models

class PerExampleLossModel(keras.Model):
    """A model whose output is the loss of each example: ``fit`` minimises its mean
    (plus any ``add_loss`` terms), so no labels and no compiled loss are needed."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:
            w = ops.cast(sample_weight, y_pred.dtype)
            loss = ops.sum(w * y_pred) / ops.maximum(ops.sum(w), 1e-12)
        else:
            loss = ops.mean(y_pred)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss


def initial_embeddings(dim, seed):
    """word2vec's start: input vectors uniform in ``+-0.5 / dim``."""
    return keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=seed)


@keras.saving.register_keras_serializable(package="kerasdl")
class Word2VecModel(PerExampleLossModel):
    """Skip-gram or CBOW with negative sampling or hierarchical softmax; call on
    ``{"input_ids", "target_ids"[, "negative_ids"]}``, returns the loss per example.
    ``embedding`` holds the input vectors, the word vectors word2vec outputs."""

    def __init__(self, counts, dim=100, method="skipgram", objective="negative", negatives=5,
                 power=0.75, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.counts = check_counts(counts)
        self.dim = check_positive_int(dim, "dim")
        self.method = check_choice(method, METHODS, "method")
        self.objective_name = check_choice(objective, OBJECTIVES, "objective")
        self.negatives = check_positive_int(negatives, "negatives")
        self.power = check_nonnegative_number(power, "power")
        self.seed = check_seed(seed)
        self.embedding = keras.layers.Embedding(
            self.counts.size, self.dim, embeddings_initializer=initial_embeddings(self.dim, seed),
            name="input_vectors")
        if objective == "negative":
            self.objective = NegativeSampling(self.counts, self.dim, self.negatives, self.power,
                                              seed=seed, name="negative_sampling")
        else:
            self.objective = HierarchicalSoftmax(self.counts, self.dim,
                                                 name="hierarchical_softmax")

    def hidden(self, input_ids):
        """The hidden vector ``h``: the centre word's input vector (skip-gram) or the mean
        of the window's input vectors, padding (ids < 0) left out (CBOW)."""
        input_ids = ops.cast(input_ids, "int32")
        if self.method == "skipgram":
            return self.embedding(input_ids)
        vectors = self.embedding(ops.maximum(input_ids, 0))
        mask = ops.cast(ops.greater_equal(input_ids, 0), vectors.dtype)
        total = ops.sum(vectors * ops.expand_dims(mask, -1), axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)

    def call(self, inputs):
        h = self.hidden(inputs["input_ids"])
        if self.objective_name == "negative":
            return self.objective((h, inputs["target_ids"]),
                                  negative_ids=inputs.get("negative_ids"))
        return self.objective((h, inputs["target_ids"]))

    def get_config(self):
        return {**super().get_config(), "counts": _counts_config(self.counts), "dim": self.dim,
                "method": self.method, "objective": self.objective_name,
                "negatives": self.negatives, "power": self.power, "seed": self.seed}


def build_word2vec(counts, dim=100, method="skipgram", objective="negative", negatives=5,
                   power=0.75, seed=None):
    """``(training_model, embedding_layer)``: an uncompiled :class:`Word2VecModel` and its
    input-vector ``keras.layers.Embedding``. ``counts`` (a Vocabulary or counts per id)
    set the noise distribution or the Huffman tree."""
    model = Word2VecModel(counts, dim, method, objective, negatives, power, seed)
    return model, model.embedding


def make_optimizer(optimizer, learning_rate):
    """A Keras optimizer from a name in ``OPTIMIZERS`` (or an optimizer, returned as is).
    Adagrad starts its accumulators at 1, as GloVe's reference code does, so the first
    steps have the nominal learning rate."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    learning_rate = check_positive_number(learning_rate, "learning_rate")
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if optimizer == "adagrad":
        return keras.optimizers.Adagrad(learning_rate, initial_accumulator_value=1.0)
    return keras.optimizers.SGD(learning_rate)


def check_fit_arguments(epochs, batch_size, verbose):
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_choice(verbose, (0, 1, 2, "auto"), "verbose")


class Word2Vec:
    """word2vec on a corpus of id sequences. ``vocab`` (a :class:`Vocabulary` or counts per
    id) fixes the vocabulary size, the noise distribution, the Huffman tree and the
    subsampling frequencies. ``subsample`` is the threshold ``t`` (1e-3 as the word2vec
    tool; None turns it off). Windows and subsampling are drawn once per ``fit`` from
    ``seed`` (word2vec redraws them every pass; one draw keeps the data an ordinary fixed
    Keras dataset); noise words come from the model's seeded generator.

    The word2vec tool trains with SGD and a linearly decaying rate of 0.025 (skip-gram),
    one example at a time; on mini-batches with a mean loss Adam is the robust default."""

    def __init__(self, vocab, dim=100, method="skipgram", objective="negative", window=5,
                 negatives=5, subsample=1e-3, power=0.75, seed=0):
        self.counts = check_counts(vocab, "vocab")
        self.window = check_positive_int(window, "window")
        if subsample is not None:
            check_positive_number(subsample, "subsample")
        self.subsample = subsample
        self.seed = check_seed(seed)
        self.method = check_choice(method, METHODS, "method")
        self.model, self.embedding = build_word2vec(self.counts, dim, method, objective,
                                                    negatives, power, seed)

    def examples(self, sentences_as_ids):
        """The training inputs for ``model.fit``: a dict of id arrays."""
        make = skipgram_pairs if self.method == "skipgram" else cbow_examples
        inputs, targets = make(sentences_as_ids, self.window, self.seed, self.subsample,
                               counts=self.counts)
        return {"input_ids": inputs.astype("int32"), "target_ids": targets.astype("int32")}

    def fit(self, sentences_as_ids, epochs=5, batch_size=256, learning_rate=0.01,
            optimizer="adam", verbose=0):
        """Trains on ``sentences_as_ids``; returns the Keras ``History``."""
        check_fit_arguments(epochs, batch_size, verbose)
        optimizer = make_optimizer(optimizer, learning_rate)
        check_id_sequences(sentences_as_ids, "sentences_as_ids", vocab_size=self.counts.size)
        x = self.examples(sentences_as_ids)
        if not x["target_ids"].size:
            raise KerasdlError("sentences_as_ids gives no training example (sentences too "
                               "short, or all words subsampled away?)",
                               argument="sentences_as_ids")
        self.model.compile(optimizer=optimizer)
        return self.model.fit(x, batch_size=batch_size, epochs=epochs, shuffle=True,
                              verbose=verbose)

    @property
    def vectors(self):
        """The word vectors (input vectors), numpy ``[V, dim]``."""
        if not self.embedding.built:
            self.embedding.build((None,))
        return keras.ops.convert_to_numpy(self.embedding.embeddings)
