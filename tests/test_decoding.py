"""kerasdl.decoding and kerasdl.metrics: searches on a bigram "language model" whose
next-token distribution is a table we set (so every sequence's probability is known and
the best one can be found by enumeration), a seq2seq model that copies its source,
perplexity against numpy (TensorFlow here, JAX in a subprocess), and BLEU against
sacreBLEU itself."""

import itertools
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import sacrebleu

from kerasdl.decoding import (
    beam_search,
    filter_logits,
    greedy_decode,
    ids_to_text,
    length_normalizer,
    lm_step_fn,
    sample,
    seq2seq_step_fn,
    strip_special,
)
from kerasdl.errors import KerasdlError
from kerasdl.metrics import (
    BitsPerCharacter,
    Perplexity,
    bleu,
    cross_entropy_per_token,
    nats_to_bits,
)
from tests.jax_env import jax_subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAD, START, END = 0, 1, 2


# --- a language model with known probabilities ------------------------------------------

def _bigram_model(probs):
    """A language model whose logits at position t are log P(next | token t): an
    Embedding whose table holds the log-probabilities (-inf for impossible tokens)."""
    probs = np.asarray(probs, dtype=np.float64)
    vocab = probs.shape[0]
    with np.errstate(divide="ignore"):
        table = np.log(probs).astype("float32")
    ids = keras.Input((None,), dtype="int32")
    layer = keras.layers.Embedding(vocab, vocab, name="bigram")
    model = keras.Model(ids, layer(ids))
    layer.set_weights([table])
    return model


def _random_bigram(vocab, seed):
    """Transition probabilities over END and the words (ids 3..): never PAD or START."""
    rng = np.random.default_rng(seed)
    probs = np.zeros((vocab, vocab))
    probs[:, END:] = rng.dirichlet(np.full(vocab - END, 0.7), size=vocab)
    return probs


def _table(vocab, rows):
    """Transition probabilities from ``{prev: {next: p}}``; other rows uniform over END
    and the words."""
    probs = np.zeros((vocab, vocab))
    probs[:, END:] = 1.0 / (vocab - END)
    for prev, row in rows.items():
        probs[prev] = 0.0
        for nxt, p in row.items():
            probs[prev, nxt] = p
    return probs


def _log_prob(probs, prefix, generated):
    tokens = [prefix[-1], *generated]
    with np.errstate(divide="ignore"):
        return float(sum(np.log(probs[a, b]) for a, b in zip(tokens, tokens[1:])))


def _exhaustive_best(probs, prefix, max_new):
    """The most probable continuation of ``prefix`` by enumeration: sequences ending in
    END within ``max_new`` tokens, or ``max_new`` tokens without END."""
    words = range(END + 1, probs.shape[0])
    best, best_score = None, -math.inf
    for n in range(1, max_new + 1):
        for body in itertools.product(words, repeat=n - 1):
            endings = [(*body, END)] + ([(*body, w) for w in words] if n == max_new else [])
            for seq in endings:
                score = _log_prob(probs, prefix, seq)
                if score > best_score:
                    best, best_score = list(seq), score
    return best, best_score


# --- greedy and beam search -------------------------------------------------------------

def test_greedy_follows_the_most_likely_token_and_pads_after_the_end():
    probs = _table(6, {START: {3: 0.7, END: 0.3}, 3: {4: 0.6, END: 0.4}, 4: {END: 0.9, 5: 0.1},
                       5: {5: 1.0}})
    step = lm_step_fn(_bigram_model(probs))
    out = greedy_decode(step, [START, 5], max_length=6, end_id=END)
    np.testing.assert_array_equal(out, [[START, 3, 4, END, 0, 0], [5, 5, 5, 5, 5, 5]])
    # Stops as soon as every row has ended; a prompt continues from its last token.
    out = greedy_decode(step, [[START, 5, 3], [START, 3, 4]], max_length=9, end_id=END)
    np.testing.assert_array_equal(out, [[START, 5, 3, 4, END], [START, 3, 4, END, 0]])
    # Padding is never generated unless pad_id=None, even where it is the likeliest.
    padding = lm_step_fn(_bigram_model(_table(5, {START: {PAD: 0.6, 3: 0.3, END: 0.1}})))
    assert greedy_decode(padding, [START], 3, END).tolist() == [[START, 3, END]]
    assert greedy_decode(padding, [START], 2, END, pad_id=None).tolist() == [[START, PAD]]
    # A step function without ``rows`` is called with the prefixes alone.
    plain = greedy_decode(lambda prefix: step(prefix), [START], max_length=6, end_id=END)
    np.testing.assert_array_equal(plain, [[START, 3, 4, END]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_of_one_is_greedy(seed):
    step = lm_step_fn(_bigram_model(_random_bigram(7, seed)))
    start = [START, 3, 4, 5, 6]
    greedy = greedy_decode(step, start, max_length=7, end_id=END)
    beam = beam_search(step, start, beam_width=1, max_length=7, end_id=END, length_penalty=0.0)
    np.testing.assert_array_equal(beam, greedy)


def test_beam_of_one_ignores_endings_greedy_would_not_take():
    # The second-best first token ends (0.4), and beats where greedy goes (0.6 * 0.5);
    # a beam of one must still not take it.
    probs = _table(6, {START: {3: 0.6, END: 0.4}, 3: {3: 0.5, 4: 0.5}, 4: {END: 1.0}})
    step = lm_step_fn(_bigram_model(probs))
    greedy = greedy_decode(step, [START], max_length=4, end_id=END)
    assert greedy.tolist() == [[START, 3, 3, 3]]
    beam = beam_search(step, [START], beam_width=1, max_length=4, end_id=END, length_penalty=0.0)
    np.testing.assert_array_equal(beam, greedy)
    wider = beam_search(step, [START], beam_width=2, max_length=4, end_id=END, length_penalty=0.0)
    assert wider.tolist() == [[START, END]]


def test_beam_keeps_its_width_of_prefixes_when_some_end():
    # The best output under mean log-probability, 4 END, starts with the third likeliest
    # token: it survives only if the ending ranked first does not take a beam's place.
    probs = _table(6, {START: {END: 0.4, 3: 0.35, 4: 0.25}, 3: {END: 0.5, 3: 0.25, 5: 0.25},
                       4: {END: 1.0}})
    step = lm_step_fn(_bigram_model(probs))
    out = beam_search(step, [START], beam_width=2, max_length=3, end_id=END,
                      length_penalty=1.0, normalization="length")
    assert out.tolist() == [[START, 4, END]]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wide_beam_finds_the_best_sequence_found_by_enumeration(seed):
    probs = _random_bigram(6, seed)  # END and three words: 4 ** 3 extensions at most
    step = lm_step_fn(_bigram_model(probs))
    prompts = np.array([[START, 3], [START, 5]])
    max_new = 4
    out, hyps = beam_search(step, prompts, beam_width=64, max_length=2 + max_new, end_id=END,
                            length_penalty=0.0, return_hypotheses=True)
    for prompt, row, found in zip(prompts, out, hyps):
        best, best_score = _exhaustive_best(probs, prompt, max_new)
        assert strip_special(row[2:]) == best
        assert found[0].log_prob == pytest.approx(best_score, abs=1e-5)
        assert found[0].score == found[0].log_prob  # alpha 0: no normalisation
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
        for h in found:  # every hypothesis' log-probability is its sequence's
            generated = strip_special(h.ids[2:], end_id=END) + ([END] if h.finished else [])
            assert h.log_prob == pytest.approx(_log_prob(probs, prompt, generated), abs=1e-5)
            assert h.finished == (h.ids[-1] == END)


def test_beam_escapes_the_greedy_trap():
    # The likelier first word (3) leads nowhere in particular; the other (4) almost surely
    # ends: 0.4 * 0.99 beats 0.6 * 0.34.
    probs = _table(6, {START: {3: 0.6, 4: 0.4}, 3: {END: 0.34, 3: 0.33, 4: 0.33},
                       4: {END: 0.99, 3: 0.01}})
    step = lm_step_fn(_bigram_model(probs))
    greedy = greedy_decode(step, [START], max_length=3, end_id=END)
    beam = beam_search(step, [START], beam_width=2, max_length=3, end_id=END,
                       length_penalty=0.0)
    np.testing.assert_array_equal(greedy, [[START, 3, END]])
    np.testing.assert_array_equal(beam, [[START, 4, END]])
    assert _exhaustive_best(probs, [START], 2)[0] == [4, END]


def test_length_normalisation_changes_the_choice():
    # Ending at once: 0.52; one word then the end: 0.48 * 0.98 = 0.47.
    probs = _table(5, {START: {END: 0.52, 3: 0.48}, 3: {END: 0.98, 3: 0.02}})
    step = lm_step_fn(_bigram_model(probs))

    def best(**kwargs):
        return beam_search(step, [START], beam_width=2, max_length=4, end_id=END,
                           **kwargs).tolist()[0]

    assert best(length_penalty=0.0) == [START, END]
    assert best(length_penalty=2.0) == [START, 3, END]
    assert best(length_penalty=1.0, normalization="length") == [START, 3, END]
    _, hyps = beam_search(step, [START], beam_width=2, max_length=4, end_id=END,
                          length_penalty=2.0, return_hypotheses=True)
    top = hyps[0][0]
    assert top.log_prob == pytest.approx(math.log(0.48 * 0.98), abs=1e-6)
    assert top.score == pytest.approx(top.log_prob / ((5 + 2) / 6) ** 2, abs=1e-6)
    assert length_normalizer(3, 0.0) == 1.0
    assert length_normalizer(3, 0.5, "length") == pytest.approx(math.sqrt(3))


def test_beam_search_without_end_keeps_unfinished_hypotheses():
    probs = _table(5, {START: {3: 0.9, 4: 0.1}, 3: {3: 0.5, 4: 0.5}, 4: {4: 1.0}})
    step = lm_step_fn(_bigram_model(probs))
    out, hyps = beam_search(step, [START], beam_width=3, max_length=3, end_id=None,
                            length_penalty=0.0, return_hypotheses=True)
    assert out.shape == (1, 3) and out[0, 1] == 3
    assert not any(h.finished for h in hyps[0]) and len(hyps[0]) == 3


# --- sampling ---------------------------------------------------------------------------

FIRST = {END: 0.05, 3: 0.5, 4: 0.25, 5: 0.15, 6: 0.05}


def _first_token_frequencies(**kwargs):
    step = lm_step_fn(_bigram_model(_table(7, {START: FIRST})))
    out = sample(step, np.full(6000, START), max_length=2, end_id=END, seed=7, **kwargs)
    return np.bincount(out[:, 1], minlength=7) / len(out)


def _renormalised(kept):
    p = np.zeros(7)
    for token in kept:
        p[token] = FIRST[token]
    return p / p.sum()


@pytest.mark.parametrize("kwargs, kept", [
    ({}, [END, 3, 4, 5, 6]),
    ({"top_p": 0.8}, [3, 4, 5]),  # 0.5 + 0.25 < 0.8 <= 0.5 + 0.25 + 0.15
    ({"top_p": 0.7}, [3, 4]),
    ({"top_p": 0.4}, [3]),
    ({"top_k": 2}, [3, 4]),
    ({"top_k": 4, "top_p": 0.8}, [3, 4, 5]),
])
def test_sampling_follows_the_filtered_distribution(kwargs, kept):
    freq = _first_token_frequencies(**kwargs)
    expected = _renormalised(kept)
    assert set(np.flatnonzero(freq)) == set(kept)
    np.testing.assert_allclose(freq, expected, atol=0.03)


def test_filter_logits_temperature_and_nucleus_boundaries():
    p = np.array([[0.5, 0.25, 0.125, 0.125]])
    scaled = filter_logits(np.log(p), temperature=2.0)
    np.testing.assert_allclose(np.exp(scaled) / np.exp(scaled).sum(), np.sqrt(p) / np.sqrt(p).sum())
    assert np.isinf(filter_logits(np.log(p), top_p=0.6)).tolist() == [[False, False, True, True]]
    assert np.isinf(filter_logits(np.log(p), top_p=1.0)).sum() == 0
    # The smallest set reaching top_p: exactly reaching it is enough.
    assert np.isinf(filter_logits(np.log(p), top_p=0.75)).sum() == 2
    assert np.isinf(filter_logits(np.log(p), top_p=0.875)).sum() == 1
    # Ties at the k-th value are kept.
    assert np.isinf(filter_logits(np.log(p), top_k=3)).sum() == 0


def test_sampling_is_seeded_and_respects_the_end():
    step = lm_step_fn(_bigram_model(_random_bigram(7, 5)))
    start = np.full(200, START)
    a = sample(step, start, max_length=8, end_id=END, seed=3)
    b = sample(step, start, max_length=8, end_id=END, seed=np.random.default_rng(3))
    c = sample(step, start, max_length=8, end_id=END, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for row in a:
        ends = np.flatnonzero(row == END)
        tail = row[ends[0] + 1:] if len(ends) else row[:0]
        assert (tail == 0).all() and (row[:len(row) - len(tail)] != 0).all()


def test_sampling_limits_are_greedy():
    step = lm_step_fn(_bigram_model(_random_bigram(7, 6)))
    start = [START, 3, 4, 5, 6]
    greedy = greedy_decode(step, start, max_length=8, end_id=END)
    for kwargs in ({"top_k": 1}, {"temperature": 0.0}, {"temperature": 1e-3}):
        np.testing.assert_array_equal(
            sample(step, start, max_length=8, end_id=END, seed=0, **kwargs), greedy)


# --- seq2seq ----------------------------------------------------------------------------

class _CopySource(keras.Model):
    """Predicts at target position t the source token at position t (logit 3 above the
    rest, so other tokens keep some probability and beams have choices)."""

    def __init__(self, vocab, **kwargs):
        super().__init__(**kwargs)
        self.vocab = vocab

    def call(self, inputs, training=False):
        source, target = inputs
        length = keras.ops.shape(target)[1]
        logits = 3.0 * keras.ops.one_hot(source[:, :length], self.vocab)
        attention = keras.ops.zeros((keras.ops.shape(target)[0], length,
                                     keras.ops.shape(source)[1]))
        return {"logits": logits, "attention": attention}


SOURCES = np.array([[3, 4, 5, END, 0, 0],
                    [5, 5, 3, 4, 6, END],
                    [4, END, 0, 0, 0, 0]])
COPIES = [[START, 3, 4, 5, END, 0, 0],
          [START, 5, 5, 3, 4, 6, END],
          [START, 4, END, 0, 0, 0, 0]]


def test_seq2seq_greedy_copies_the_source():
    step = seq2seq_step_fn(_CopySource(7), SOURCES)
    out = greedy_decode(step, np.full(3, START), max_length=7, end_id=END)
    np.testing.assert_array_equal(out, COPIES)


def test_seq2seq_beam_uses_each_examples_source():
    step = seq2seq_step_fn(_CopySource(7), SOURCES)
    out, hyps = beam_search(step, np.full(3, START), beam_width=3, max_length=7, end_id=END,
                            return_hypotheses=True)
    np.testing.assert_array_equal(out, COPIES)
    for copy, found in zip(COPIES, hyps):
        assert found[0].finished and found[0].ids.tolist() == [t for t in copy if t]
    with pytest.raises(KerasdlError) as error:  # prefixes of 3 beams without rows
        step(np.full((9, 1), START))
    assert error.value.argument == "rows"


# --- ids to text ------------------------------------------------------------------------

def test_strip_special_and_ids_to_text():
    vocabulary = ["", "<s>", "</s>", "a", "b", "c"]
    ids = np.array([[1, 3, 4, 2, 5, 0], [1, 5, 0, 0, 0, 0]])
    assert strip_special(ids, start_id=1, end_id=2) == [[3, 4], [5]]
    assert strip_special([1, 3, 2, 4], start_id=1, end_id=2) == [3]
    assert ids_to_text(ids, vocabulary, start_id=1, end_id=2) == ["a b", "c"]
    assert ids_to_text([1, 3, 4, 5], vocabulary, "", start_id=1) == "abc"
    assert ids_to_text([[1, 3, 2], [1, 4, 4, 2]], vocabulary, end_id=2, start_id=1) == ["a", "b b"]


# --- perplexity -------------------------------------------------------------------------

def _numpy_nats(targets, logits, ignore=0):
    total, count = 0.0, 0
    for index in np.ndindex(targets.shape):
        if ignore is not None and targets[index] == ignore:
            continue
        row = logits[index].astype(np.float64)
        total += math.log(np.exp(row).sum()) - row[targets[index]]
        count += 1
    return total, count


def _lm_batch(seed, batch=3, time=5, vocab=7):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, time, vocab)).astype("float32") * 2
    targets = rng.integers(1, vocab, size=(batch, time))
    lengths = rng.integers(1, time + 1, size=batch)
    targets[np.arange(time)[None, :] >= lengths[:, None]] = 0
    return targets, logits


def test_perplexity_is_exp_of_mean_cross_entropy_without_padding():
    targets, logits = _lm_batch(0)
    total, count = _numpy_nats(targets, logits)
    assert count < targets.size
    metric = Perplexity()
    metric.update_state(targets, logits)
    assert float(metric.result()) == pytest.approx(math.exp(total / count), rel=1e-5)
    assert cross_entropy_per_token(targets, logits) == pytest.approx(total / count, rel=1e-6)
    every, n_all = _numpy_nats(targets, logits, ignore=None)
    counting_all = Perplexity(ignore_id=None)
    counting_all.update_state(targets, logits)
    assert float(counting_all.result()) == pytest.approx(math.exp(every / n_all), rel=1e-5)
    bpc = BitsPerCharacter()
    bpc.update_state(targets, logits)
    assert float(bpc.result()) == pytest.approx(nats_to_bits(total / count), rel=1e-5)


def test_perplexity_accumulates_by_token():
    (ta, la), (tb, lb) = _lm_batch(1, batch=1), _lm_batch(2, batch=4)
    (sa, na), (sb, nb) = _numpy_nats(ta, la), _numpy_nats(tb, lb)
    assert na != nb
    metric = Perplexity()
    metric.update_state(ta, la)
    metric.update_state(tb, lb)
    assert float(metric.result()) == pytest.approx(math.exp((sa + sb) / (na + nb)), rel=1e-5)
    assert float(metric.result()) != pytest.approx(math.exp((sa / na + sb / nb) / 2), rel=1e-3)
    metric.reset_state()
    weights = np.array([1.0, 0.0, 2.0, 0.5])
    metric.update_state(tb, lb, sample_weight=weights)
    rows = [_numpy_nats(tb[i:i + 1], lb[i:i + 1]) for i in range(4)]
    weighted = sum(w * s for w, (s, _) in zip(weights, rows))
    assert float(metric.result()) == pytest.approx(
        math.exp(weighted / sum(w * n for w, (_, n) in zip(weights, rows))), rel=1e-5)


def test_uniform_logits_give_the_vocabulary_size():
    metric = Perplexity()
    metric.update_state(np.array([[3, 1, 0], [5, 0, 0]]), np.zeros((2, 3, 11), "float32"))
    assert float(metric.result()) == pytest.approx(11.0, rel=1e-5)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(Perplexity(ignore_id=-1, name="ppl")))
    assert isinstance(restored, Perplexity)
    assert (restored.ignore_id, restored.name) == (-1, "ppl")


def _backend_check():
    """A bigram model evaluated in batches of 4 with Perplexity among its compiled
    metrics gives numpy's perplexity over every non-padding token; the adapters decode."""
    targets, logits = _lm_batch(3, batch=10, time=6)
    inputs = np.random.default_rng(4).integers(1, 7, size=targets.shape)
    model = _bigram_model(np.full((7, 7), 1 / 7))
    model.layers[1].set_weights([np.random.default_rng(5).normal(size=(7, 7)).astype("float32")])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[Perplexity()])
    logits = keras.ops.convert_to_numpy(model(inputs))
    total, count = _numpy_nats(targets, logits)
    result = model.evaluate(inputs, targets, batch_size=4, verbose=0, return_dict=True)
    assert abs(result["perplexity"] - math.exp(total / count)) < 1e-4 * math.exp(total / count)
    model.fit(inputs, targets, batch_size=4, epochs=1, verbose=0)
    copy = seq2seq_step_fn(_CopySource(7), SOURCES)
    assert beam_search(copy, np.full(3, START), 2, 7, END).tolist() == COPIES
    lm = lm_step_fn(_bigram_model(_table(5, {START: {3: 0.9, END: 0.1}, 3: {END: 1.0}})))
    assert greedy_decode(lm, [START], 4, END).tolist() == [[START, 3, END]]


def test_perplexity_and_decoding_tensorflow():
    _backend_check()


def test_perplexity_and_decoding_jax():
    env = jax_subprocess_env()
    code = ("import keras; assert keras.backend.backend() == 'jax'\n"
            "from tests.test_decoding import _backend_check\n"
            "_backend_check(); print('JAX-OK')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and "JAX-OK" in result.stdout, result.stderr[-3000:]


# --- BLEU -------------------------------------------------------------------------------

HYPS = ["A man is riding a bike down the street .", "Two dogs play in the snow .",
        "a woman sings on a stage"]
REFS = ["A man rides a bicycle down the street .", "Two dogs are playing in the snow .",
        "A woman is singing on stage ."]


def test_bleu_matches_sacrebleu():
    assert bleu(REFS, REFS).score == pytest.approx(100.0)
    ours = bleu(HYPS, REFS)
    theirs = sacrebleu.corpus_bleu(HYPS, [REFS], lowercase=True, tokenize="13a")
    assert ours.score == pytest.approx(theirs.score) and 0 < ours.score < 100
    assert "case:lc" in ours.signature and "tok:13a" in ours.signature
    cased = bleu(HYPS, REFS, lowercase=False)
    assert cased.score < ours.score and "case:mixed" in cased.signature
    assert bleu(["THE CAT SAT ON THE MAT"], ["the cat sat on the mat"]).score == pytest.approx(100)
    second = ["A man rides a bike down the street .", "Two dogs play in snow .",
              "A woman sings on a stage ."]
    several = bleu(HYPS, [REFS, second])
    assert several.score == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, [REFS, second], lowercase=True).score)
    assert several.score > ours.score


# --- bad arguments ----------------------------------------------------------------------

_STEP = lm_step_fn(_bigram_model(_random_bigram(5, 0)))


@pytest.mark.parametrize("call, argument", [
    (lambda: greedy_decode("model", [START], 4, END), "step_fn"),
    (lambda: greedy_decode(_STEP, [[[START]]], 4, END), "start"),
    (lambda: greedy_decode(_STEP, [0.5], 4, END), "start"),
    (lambda: greedy_decode(_STEP, [-1], 4, END), "start"),
    (lambda: greedy_decode(_STEP, [START], 0, END), "max_length"),
    (lambda: greedy_decode(_STEP, [[START, 3]], 2, END), "max_length"),
    (lambda: greedy_decode(_STEP, [START], 4, -1), "end_id"),
    (lambda: greedy_decode(_STEP, [START], 4, 9), "end_id"),
    (lambda: greedy_decode(_STEP, [START], 4, 0), "end_id"),
    (lambda: greedy_decode(lambda p: np.zeros((1, 1, 5)), [START], 4, END), "step_fn"),
    (lambda: beam_search(_STEP, [START], 0, 4, END), "beam_width"),
    (lambda: beam_search(_STEP, [START], 2, 4, END, length_penalty=-0.5), "length_penalty"),
    (lambda: beam_search(_STEP, [START], 2, 4, END, normalization="mean"), "normalization"),
    (lambda: sample(_STEP, [START], 4, END, temperature=-1.0), "temperature"),
    (lambda: sample(_STEP, [START], 4, END, top_k=0), "top_k"),
    (lambda: sample(_STEP, [START], 4, END, top_p=0.0), "top_p"),
    (lambda: sample(_STEP, [START], 4, END, top_p=1.5), "top_p"),
    (lambda: sample(_STEP, [START], 4, END, seed="x"), "seed"),
    (lambda: filter_logits(np.zeros((1, 3)), temperature=0.0), "temperature"),
    (lambda: lm_step_fn(None), "model"),
    (lambda: seq2seq_step_fn(_CopySource(7), [3, 4]), "source_ids"),
    (lambda: ids_to_text([3, 9], ["", "a", "b", "c"]), "ids"),
    (lambda: ids_to_text([3], "abc"), "vocabulary"),
    (lambda: strip_special([1, 2], end_id=-2), "end_id"),
    (lambda: Perplexity(ignore_id="pad"), "ignore_id"),
    (lambda: cross_entropy_per_token(np.zeros((2, 3)), np.zeros((2, 4, 5))), "logits"),
    (lambda: bleu("a cat", ["a cat"]), "hypotheses"),
    (lambda: bleu(["a cat"], ["a cat", "a dog"]), "references"),
    (lambda: bleu(["a cat"], [["a", "cat"]]), "references"),
    (lambda: bleu(["a cat"], ["a cat"], tokenize="moses"), "tokenize"),
])
def test_bad_arguments_name_the_argument(call, argument):
    with pytest.raises(KerasdlError) as error:
        call()
    assert error.value.argument == argument
