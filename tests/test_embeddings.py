"""Word embeddings against by-hand formulas and a corpus with planted structure."""

import itertools
import math

import keras
import numpy as np
import pytest

from kerasdl.embeddings import (FastText, GloVe, HierarchicalSoftmax, NegativeSampling,
                                ParagraphVectors, SubwordEmbedding, Vocabulary, Word2Vec,
                                analogy, average_vectors, build_word2vec, cbow_examples,
                                char_ngrams, cooccurrence_matrix, cosine_similarity,
                                evaluate_analogies, fnv1a_32, glove_weighting, huffman_tree,
                                lsa, nearest, ngram_buckets, noise_distribution, ppmi, sif_weights,
                                skipgram_pairs, tokenize)
from kerasdl.errors import KerasdlError

to_numpy = keras.ops.convert_to_numpy


# ------------------------------------------------------------------ planted corpus

def _pseudo_words(rng, n, taken):
    """Random 5-letter words: they share few character n-grams, so fastText's subwords do
    not plant the groups by themselves."""
    words = []
    while len(words) < n:
        w = "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 5))
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


@pytest.fixture(scope="module")
def planted():
    """Two topics of 12 words each; a sentence draws its words from one topic, with a
    quarter of shared function words. Words of one topic only ever share windows."""
    rng = np.random.default_rng(0)
    taken = set()
    group_a, group_b = _pseudo_words(rng, 12, taken), _pseudo_words(rng, 12, taken)
    shared = ["the", "of"]
    sentences, topics = [], []
    for _ in range(300):
        topic = int(rng.random() < 0.5)
        group = (group_a, group_b)[topic]
        sentences.append([str(rng.choice(group)) if rng.random() < 0.75 else str(rng.choice(shared))
                          for _ in range(8)])
        topics.append(topic)
    vocab = Vocabulary.build(sentences)
    return {"vocab": vocab, "ids": vocab.encode_sentences(sentences), "a": group_a,
            "b": group_b, "topics": np.array(topics)}


def _same_group_rate(vectors, vocab, group_a, group_b):
    """Fraction of topic words whose nearest topic word (cosine) is in their own topic."""
    words = group_a + group_b
    m = np.asarray(vectors)[[vocab.ids[w] for w in words]]
    sims = cosine_similarity(m, m)
    np.fill_diagonal(sims, -np.inf)
    label = np.array([0] * len(group_a) + [1] * len(group_b))
    return float((label[sims.argmax(axis=1)] == label).mean())


def _check_learned(before, vectors, planted):
    after = _same_group_rate(vectors, planted["vocab"], planted["a"], planted["b"])
    assert before < 0.8, f"untrained vectors already separate the topics ({before})"
    assert after >= 0.9, (f"trained vectors put only {after:.0%} of neighbours in the own "
                          f"topic (untrained: {before:.0%})")


# ------------------------------------------------------------------ corpus

def test_tokenize_and_vocabulary():
    assert tokenize("The cat's hat, isn't it? 42!") == ["the", "cat's", "hat", "isn't", "it", "42"]
    assert tokenize("A b", lowercase=False) == ["A", "b"]
    vocab = Vocabulary.build(["b a b", ["c", "b", "a"], "d"], min_count=2)
    assert vocab.words == ["b", "a"] and vocab.counts.tolist() == [3, 2]  # by count, then name
    assert vocab.encode("a x b").tolist() == [1, 0]  # unknown words dropped
    assert vocab.decode([0, 1]) == ["b", "a"]
    assert len(Vocabulary.build(["a b c d"], max_size=2)) == 2
    with pytest.raises(KerasdlError, match="tokens"):
        vocab.encode("x", unknown="error")


def test_skipgram_pairs_and_cbow_examples_by_hand():
    corpus = [[0, 1, 2], [3, 4]]
    centres, contexts = skipgram_pairs(corpus, window=1, dynamic_window=False)
    assert list(zip(centres.tolist(), contexts.tolist())) == [
        (0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]  # no pair across the sentence break
    windows, targets = cbow_examples(corpus, window=2, dynamic_window=False)
    assert targets.tolist() == [0, 1, 2, 3, 4]
    assert windows.tolist() == [[1, 2, -1, -1], [0, 2, -1, -1], [0, 1, -1, -1],
                                [4, -1, -1, -1], [3, -1, -1, -1]]


def test_dynamic_window_and_subsampling_rates():
    rng = np.random.default_rng(1)
    corpus = [rng.integers(0, 50, 200) for _ in range(50)]
    # Window size b uniform in 1..4: a context at distance d is kept with P(b >= d) = (5-d)/4.
    # Ids equal to positions (sentences 1000 apart) make distances readable from the pairs.
    positions = [np.arange(t.size) + 1000 * i for i, t in enumerate(corpus)]
    centres, contexts = skipgram_pairs(positions, window=4, seed=3)
    distance = np.abs(centres - contexts)
    for d in range(1, 5):
        possible = 2 * sum(t.size - d for t in corpus)
        assert abs((distance == d).sum() / possible - (5 - d) / 4) < 0.03
    # Word 0 has frequency 1/2 among {0: 5000, 1..5000: once}: kept with sqrt(t / f).
    skewed = [np.concatenate([np.zeros(5000, int), np.arange(1, 5001)])]
    centres, _ = skipgram_pairs(skewed, window=1, subsample=0.02, seed=0, dynamic_window=False)
    kept_zero = (centres == 0).sum() / 2  # each kept 0 is the centre of ~2 pairs
    assert abs(kept_zero / 5000 - math.sqrt(0.02 / 0.5)) < 0.03


def test_cooccurrence_counts_by_hand():
    x = cooccurrence_matrix([[0, 1, 2, 0]], vocab_size=3, window=2, weighting="harmonic")
    expected = np.zeros((3, 3))
    for i, j, d in [(0, 1, 1), (1, 2, 1), (2, 0, 1), (0, 2, 2), (1, 0, 2)]:
        expected[i, j] += 1 / d
        expected[j, i] += 1 / d
    np.testing.assert_allclose(x, expected)
    np.testing.assert_array_equal(
        cooccurrence_matrix([[0, 1, 2, 0]], 3, 2) > 0, expected > 0)


# ------------------------------------------------------------------ counts

def test_ppmi_equals_the_formula_by_hand():
    x = np.array([[4.0, 0.0, 2.0], [1.0, 3.0, 0.0], [2.0, 2.0, 6.0]])
    for alpha in (0.75, 1.0):
        n = x.sum()
        col = x.sum(axis=0) ** alpha
        expected = np.zeros_like(x)
        for w, c in itertools.product(range(3), range(3)):
            if x[w, c]:
                pmi = math.log((x[w, c] / n) / ((x[w].sum() / n) * (col[c] / col.sum())))
                expected[w, c] = max(pmi, 0.0)
        np.testing.assert_allclose(ppmi(x, alpha=alpha), expected)
    with np.errstate(divide="ignore"):
        plain = np.maximum(np.log(x * x.sum() / np.outer(x.sum(1), x.sum(0))), 0)
    np.testing.assert_allclose(ppmi(x, alpha=1.0), np.where(x > 0, plain, 0.0))
    assert not np.allclose(ppmi(x, 0.75), ppmi(x, 1.0))


def test_lsa_dimensions_and_rank_k_reconstruction():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(12, 3)) @ rng.normal(size=(3, 9))  # rank 3
    words, contexts = lsa(m, 3, eigenvalue_weighting=0.5, return_contexts=True)
    assert words.shape == (12, 3) and contexts.shape == (9, 3)
    np.testing.assert_allclose(words @ contexts.T, m, atol=1e-10)
    s = np.linalg.svd(m, compute_uv=False)[:3]
    np.testing.assert_allclose(np.linalg.norm(lsa(m, 3, eigenvalue_weighting=1.0), axis=0), s)
    np.testing.assert_allclose(np.linalg.norm(lsa(m, 3, eigenvalue_weighting=0.0), axis=0), 1.0)
    # Rank 2 of a rank-3 matrix is not exact.
    w2, c2 = lsa(m, 2, return_contexts=True)
    assert np.abs(w2 @ c2.T - m).max() > 1e-3


def test_truncated_lsa_equals_the_full_svd_with_fixed_signs():
    m = np.abs(np.random.default_rng(1).normal(size=(80, 60)))
    words = lsa(m, 10)  # ARPACK: 10 < 60 // 2
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    u = u[:, :10] * np.sign(u[np.argmax(np.abs(u[:, :10]), axis=0), np.arange(10)])
    np.testing.assert_allclose(words, u * np.sqrt(s[:10]), atol=1e-8)


def test_ppmi_lsa_separates_the_planted_topics(planted):
    vocab = planted["vocab"]
    x = cooccurrence_matrix(planted["ids"], len(vocab), window=3)
    random = np.random.default_rng(0).normal(size=(len(vocab), 4))
    _check_learned(_same_group_rate(random, vocab, planted["a"], planted["b"]),
                   lsa(ppmi(x), 4), planted)


# ------------------------------------------------------------------ Huffman tree and losses

def test_huffman_tree_codes():
    counts = [45, 13, 12, 16, 9, 5]  # CLRS's example: the optimum costs 224 bits per 100
    tree = huffman_tree(counts)
    codes = ["".join(map(str, tree.codes[w, :tree.lengths[w]])) for w in range(len(counts))]
    assert not any(a != b and b.startswith(a) for a in codes for b in codes)  # prefix-free
    assert tree.lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert int(np.dot(tree.lengths, counts)) == 224
    assert tree.lengths[0] == tree.lengths.min()
    assert set(tree.points[tree.mask].tolist()) == set(range(5))
    assert (tree.points[:, 0] == 4).all()  # every path starts at the root, inner node V-2


def test_hierarchical_softmax_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 100, 37)
    layer = HierarchicalSoftmax(counts, 8)
    layer.build()
    layer.node_vectors.assign(rng.normal(size=(36, 8)).astype("float32"))
    h = rng.normal(size=(5, 8)).astype("float32")
    log_p = to_numpy(layer.log_probabilities(h))
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-5)
    # The loss of a target is -log P(target | h).
    target = np.array([0, 3, 7, 20, 36])
    np.testing.assert_allclose(to_numpy(layer((h, target))), -log_p[np.arange(5), target],
                               rtol=1e-5)


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def test_sgns_loss_equals_the_formula_by_hand():
    rng = np.random.default_rng(0)
    counts = np.arange(10, 0, -1)
    model, embedding = build_word2vec(counts, dim=4, negatives=3, seed=0)
    centre, context = np.array([1, 4]), np.array([2, 0])
    negatives = np.array([[5, 6, 7], [8, 9, 3]])
    x = {"input_ids": centre, "target_ids": context, "negative_ids": negatives}
    model(x)
    v = rng.normal(size=(10, 4)).astype("float32")
    u = rng.normal(size=(10, 4)).astype("float32")
    embedding.embeddings.assign(v)
    model.objective.output_vectors.assign(u)
    expected = [-_log_sigmoid(v[c] @ u[o]) - sum(_log_sigmoid(-v[c] @ u[k]) for k in ks)
                for c, o, ks in zip(centre, context, negatives)]
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-5)
    # A noise word equal to the target is skipped, as in word2vec.
    x["negative_ids"] = np.array([[5, 6, 2], [8, 9, 3]])
    got = to_numpy(model(x))
    np.testing.assert_allclose(got[0], -_log_sigmoid(v[1] @ u[2]) - _log_sigmoid(-v[1] @ u[5])
                               - _log_sigmoid(-v[1] @ u[6]), rtol=1e-5)
    # Drawn noise follows counts ** 0.75.
    layer = NegativeSampling(counts, 4, seed=1)
    layer.build()
    drawn = to_numpy(layer.sample((4000, 5))).ravel()
    np.testing.assert_allclose(np.bincount(drawn, minlength=10) / drawn.size,
                               noise_distribution(counts), atol=0.01)


def test_cbow_hidden_is_the_mean_of_the_real_context_words():
    model, embedding = build_word2vec(np.ones(6), dim=3, method="cbow", seed=0)
    model({"input_ids": np.array([[0, 1, -1, -1]]), "target_ids": np.array([2])})
    table = to_numpy(embedding.embeddings)
    h = to_numpy(model.hidden(np.array([[0, 1, -1, -1], [4, -1, -1, -1]])))
    np.testing.assert_allclose(h, [(table[0] + table[1]) / 2, table[4]], rtol=1e-6)


def test_layers_round_trip_through_their_config():
    for layer in (NegativeSampling([3, 2, 1], 4, negatives=2, seed=0),
                  HierarchicalSoftmax([3, 2, 1], 4), SubwordEmbedding(["ab", "cd"], 4, buckets=16)):
        copy = type(layer).from_config(layer.get_config())
        assert copy.get_config() == layer.get_config()


# ------------------------------------------------------------- predictive models, planted corpus

@pytest.mark.parametrize("method,objective", [("skipgram", "negative"), ("cbow", "negative"),
                                              ("skipgram", "hierarchical"),
                                              ("cbow", "hierarchical")])
def test_word2vec_separates_the_planted_topics(planted, method, objective):
    model = Word2Vec(planted["vocab"], dim=16, method=method, objective=objective, window=3,
                     subsample=None, seed=0)
    before = _same_group_rate(model.vectors, planted["vocab"], planted["a"], planted["b"])
    history = model.fit(planted["ids"], epochs=4, batch_size=128, learning_rate=0.01)
    assert history.history["loss"][-1] < history.history["loss"][0]
    _check_learned(before, model.vectors, planted)


def test_glove_separates_the_planted_topics(planted):
    vocab = planted["vocab"]
    x = cooccurrence_matrix(planted["ids"], len(vocab), window=3, weighting="harmonic")
    glove = GloVe(len(vocab), dim=16, x_max=10.0, seed=0)
    before = _same_group_rate(glove.vectors, vocab, planted["a"], planted["b"])
    glove.fit(x, epochs=25, batch_size=64)
    np.testing.assert_allclose(glove.vectors, glove.word_vectors + glove.context_vectors)
    _check_learned(before, glove.vectors, planted)
    np.testing.assert_allclose(glove_weighting([0.0, 5.0, 100.0, 400.0]),
                               [0.0, 0.05 ** 0.75, 1.0, 1.0])


def test_fasttext_separates_the_planted_topics_and_embeds_unseen_words(planted):
    vocab = planted["vocab"]
    model = FastText(vocab, dim=16, window=3, buckets=1024, subsample=None, seed=0)
    before = _same_group_rate(model.vectors, vocab, planted["a"], planted["b"])
    model.fit(planted["ids"], epochs=4, batch_size=128)
    _check_learned(before, model.vectors, planted)
    word = planted["a"][0]
    np.testing.assert_allclose(model.vector(word), model.vectors[vocab.ids[word]], rtol=1e-6)
    # An unseen word shares 10 of its 18 n-grams with `word` and (hash collisions aside)
    # none with the words of the other topic.
    unseen = model.vector(word + "s")
    assert word + "s" not in vocab
    others = model.vectors[[vocab.ids[w] for w in planted["b"]]]
    assert cosine_similarity(unseen, model.vector(word)) > cosine_similarity(others, unseen).max()


def test_fasttext_subwords_and_hash():
    # Published FNV-1a 32-bit test vectors.
    assert fnv1a_32("") == 0x811C9DC5
    assert fnv1a_32("a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    assert len(char_ngrams("where")) == 5 + 4 + 3 + 2  # n = 3..6 over "<where>"
    assert ngram_buckets("where", 3, 3, buckets=1000).tolist() == [
        fnv1a_32(g) % 1000 for g in ["<wh", "whe", "her", "ere", "re>"]]


# ------------------------------------------------------------------ queries

@pytest.fixture
def parallelogram():
    """b - a + c = d exactly, all unit vectors, plus distractors."""
    e = np.eye(8)
    vectors = {"man": e[0] + e[2], "king": e[1] + e[2], "woman": e[0] + e[3],
               "queen": e[1] + e[3], "same": e[4] + e[5], "same2": e[4] + 1.01 * e[5],
               "noise": e[6] + e[7], "prince": e[1] + 0.9 * e[2] + 0.3 * e[3]}
    words = list(vectors)
    table = np.array([vectors[w] / np.linalg.norm(vectors[w]) for w in words])
    return table, words


def test_analogy_finds_the_fourth_corner_and_excludes_the_query(parallelogram):
    table, words = parallelogram
    for method in ("add", "mul"):
        (best, score), = analogy(table, words, "man", "king", "woman", method=method)
        assert best == "queen"
        ranked = [w for w, _ in analogy(table, words, "man", "king", "woman", k=8, method=method)]
        assert len(ranked) == 5 and not {"man", "king", "woman"} & set(ranked)
    np.testing.assert_allclose(analogy(table, words, "man", "king", "woman")[0][1], 1.0)
    # same : same2 :: noise : ? -- "noise" itself is nearest to b - a + c, but is excluded.
    assert analogy(table, words, "same", "same2", "noise")[0][0] != "noise"
    assert nearest(table, words, "king", k=2)[0][0] == "prince"
    assert nearest(table, words, "king", k=2, exclude=["prince"])[0][0] != "prince"
    result = evaluate_analogies(table, words, [("man", "king", "woman", "queen"),
                                               ("man", "woman", "king", "prince"),
                                               ("man", "king", "girl", "princess")])
    assert result == {"accuracy": 0.5, "correct": 1, "total": 2, "skipped": 1}


# ------------------------------------------------------------------ paragraph vectors

def test_average_and_sif_vectors():
    table = np.arange(12.0).reshape(4, 3)
    docs = [[0, 2, 2], [3], []]
    np.testing.assert_allclose(average_vectors(docs, table),
                               [table[[0, 2, 2]].mean(0), table[3], np.zeros(3)])
    weights = sif_weights([6, 2, 1, 1], a=0.1)
    np.testing.assert_allclose(weights, 0.1 / (0.1 + np.array([0.6, 0.2, 0.1, 0.1])))
    np.testing.assert_allclose(average_vectors(docs[:1], table, weights),
                               [(table[0] * weights[0] + 2 * table[2] * weights[2]) / 3])


def test_pv_dbow_separates_planted_topics_and_infers_new_documents(planted):
    vocab, topics = planted["vocab"], planted["topics"]
    docs = planted["ids"]
    pv = ParagraphVectors(vocab, dim=16, seed=0)
    pv.fit(docs[:200], epochs=8)
    trained = pv.vectors
    sims = cosine_similarity(trained, trained)
    np.fill_diagonal(sims, -np.inf)
    assert (topics[:200][sims.argmax(1)] == topics[:200]).mean() >= 0.9
    output_before = to_numpy(pv.model.objective.output_vectors).copy()
    new = pv.infer(docs[200:240], epochs=15)
    np.testing.assert_array_equal(to_numpy(pv.model.objective.output_vectors), output_before)
    nearest_topic = topics[:200][cosine_similarity(new, trained).argmax(1)]
    assert (nearest_topic == topics[200:240]).mean() >= 0.9
    # Random document vectors do not know the topics.
    random = np.random.default_rng(0).normal(size=trained.shape)
    sims = cosine_similarity(random, random)
    np.fill_diagonal(sims, -np.inf)
    assert (topics[:200][sims.argmax(1)] == topics[:200]).mean() < 0.8


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("call,argument", [
    (lambda: tokenize(3), "text"),
    (lambda: Vocabulary.build(["a b"], min_count=0), "min_count"),
    (lambda: skipgram_pairs([[0, 1]], window=0), "window"),
    (lambda: skipgram_pairs([[0, -1]], window=1), "sentences_as_ids"),
    (lambda: skipgram_pairs(["a b"], window=1), "sentences_as_ids"),
    (lambda: skipgram_pairs([[0, 1]], window=1, subsample=-1.0), "subsample"),
    (lambda: cooccurrence_matrix([[0, 5]], vocab_size=3, window=1), "sentences_as_ids"),
    (lambda: cooccurrence_matrix([[0, 1]], 3, 1, weighting="gaussian"), "weighting"),
    (lambda: ppmi(np.array([[1.0, -1.0]])), "cooc"),
    (lambda: ppmi(np.ones((2, 2)), alpha=-1), "alpha"),
    (lambda: lsa(np.ones((3, 2)), 3), "dim"),
    (lambda: huffman_tree([5]), "counts"),
    (lambda: noise_distribution([3, 1], power="3/4"), "power"),
    (lambda: Word2Vec([3, 2, 1], objective="hierarchical", power=-1), "power"),
    (lambda: Word2Vec([3, 2, 1], method="glove"), "method"),
    (lambda: Word2Vec([3, 2, 1], objective="softmax"), "objective"),
    (lambda: Word2Vec([3, 2, 1], negatives=0), "negatives"),
    (lambda: Word2Vec([3, 2, 1]).fit([[0, 1]], epochs=0), "epochs"),
    (lambda: Word2Vec([3, 2, 1]).fit([[0, 7]]), "sentences_as_ids"),
    (lambda: Word2Vec([3, 2, 1]).fit([[0, 1]], optimizer="rmsprop"), "optimizer"),
    (lambda: GloVe(3, x_max=0), "x_max"),
    (lambda: GloVe(3).fit(np.ones((4, 4))), "cooc"),
    (lambda: FastText([3, 2, 1]), "vocab"),
    (lambda: char_ngrams("word", 4, 3), "max_n"),
    (lambda: fnv1a_32(5), "data"),
    (lambda: analogy(np.eye(3), ["a", "b", "c"], "a", "b", "zzz"), "c"),
    (lambda: analogy(np.eye(3), ["a", "b", "c"], "a", "b", "c", method="cos"), "method"),
    (lambda: nearest(np.eye(3), ["a", "b"], "a"), "vectors"),
    (lambda: nearest(np.eye(3), ["a", "b", "c"], "a", k=0), "k"),
    (lambda: average_vectors([[0, 3]], np.eye(3)), "documents_as_ids"),
    (lambda: sif_weights([1, 2], a=0), "a"),
    (lambda: ParagraphVectors([1, 2]).infer([[0]]), None),
])
def test_bad_arguments_raise_kerasdl_errors_naming_them(call, argument):
    with pytest.raises(KerasdlError) as caught:
        call()
    assert caught.value.argument == argument
    if argument is not None:
        assert argument in str(caught.value)
