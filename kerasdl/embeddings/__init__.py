"""Word embeddings from counts and from prediction.

Counts: co-occurrence matrices, PPMI and its truncated SVD (:mod:`.counts`); GloVe
(:mod:`.glove`). Prediction: word2vec's skip-gram and CBOW with negative sampling or
hierarchical softmax (:mod:`.word2vec`), fastText's subword vectors (:mod:`.fasttext`)
and PV-DBOW paragraph vectors (:mod:`.paragraph`). :mod:`.queries` asks the vectors for
neighbours and analogies. Corpora are lists of id sequences (:class:`Vocabulary`).
"""

from kerasdl.embeddings.corpus import (Vocabulary, cbow_examples, cooccurrence_matrix,
                                       noise_distribution, skipgram_pairs, subsample, tokenize)
from kerasdl.embeddings.counts import lsa, ppmi
from kerasdl.embeddings.fasttext import (FastText, FastTextModel, SubwordEmbedding,
                                         char_ngrams, fnv1a_32, ngram_buckets)
from kerasdl.embeddings.glove import GloVe, GloVeModel, cooccurrence_triples, glove_weighting
from kerasdl.embeddings.paragraph import (ParagraphVectors, PVDBOWModel, average_vectors,
                                          remove_common_components, sif_embeddings, sif_weights)
from kerasdl.embeddings.queries import analogy, cosine_similarity, evaluate_analogies, nearest
from kerasdl.embeddings.word2vec import (HierarchicalSoftmax, HuffmanTree, NegativeSampling,
                                         PerExampleLossModel, Word2Vec, Word2VecModel,
                                         build_word2vec, huffman_tree)

__all__ = [
    "FastText",
    "FastTextModel",
    "GloVe",
    "GloVeModel",
    "HierarchicalSoftmax",
    "HuffmanTree",
    "NegativeSampling",
    "PVDBOWModel",
    "ParagraphVectors",
    "PerExampleLossModel",
    "SubwordEmbedding",
    "Vocabulary",
    "Word2Vec",
    "Word2VecModel",
    "analogy",
    "average_vectors",
    "build_word2vec",
    "cbow_examples",
    "char_ngrams",
    "cooccurrence_matrix",
    "cooccurrence_triples",
    "cosine_similarity",
    "evaluate_analogies",
    "fnv1a_32",
    "glove_weighting",
    "huffman_tree",
    "lsa",
    "nearest",
    "ngram_buckets",
    "noise_distribution",
    "ppmi",
    "remove_common_components",
    "sif_embeddings",
    "sif_weights",
    "skipgram_pairs",
    "subsample",
    "tokenize",
]
