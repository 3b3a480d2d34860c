"""GPT generation with a key/value cache (kerasdl.generation) against the full model.

The reference is :func:`kerasdl.decoding.lm_step_fn`, which re-runs the model on the
whole prefix. Each test also shows that what it compares can differ: a step whose cache
is looked up by row instead of by prefix (a plausible bug: right for greedy search on one
prompt, wrong once beams are reordered or the prompt changes) gives other logits/tokens.

The tiny GPTs have their GPT-2 initialisation (standard deviation 0.02) scaled up ten
times: logits then spread over a few units, so that argmax and beam choices are not
decided by float rounding, and the generated tokens vary more.
"""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.decoding import beam_search, greedy_decode, lm_step_fn, sample
from kerasdl.errors import InvalidArgumentError, KerasdlError
from kerasdl.generation import _CachedGPTStep, generate, gpt_cached_step_fn

VOCAB = 13
POSITIONS = 24
TOLERANCE = 1e-5

# Keras' own attention warns about its softmax over one key (lm_step_fn at length 1).
pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis")


def _tiny_gpt(seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    kwargs = dict(vocabulary_size=VOCAB, layers=2, hidden=16, heads=2, ff_dim=32,
                  max_positions=POSITIONS)
    model = kerasdl.create_model("gpt_char_small", **{**kwargs, **overrides})
    for variable in model.weights:
        if "norm" not in variable.path:
            variable.assign(variable * 10.0)
    return model


@pytest.fixture(scope="module")
def gpt():
    return _tiny_gpt()


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(0).integers(1, VOCAB, (3, POSITIONS)).astype("int32")


class _RowKeyedStep(_CachedGPTStep):
    """A wrong cache: prefix i reuses the previous call's row i, whatever its tokens."""

    def _lookup(self, prefix):
        if self._length != prefix.shape[1] - 1:
            return super()._lookup(prefix)
        return np.arange(len(prefix)) % len(self._entries)


class _Recorder:
    """A step function passing calls on to ``step`` and keeping the prefixes."""

    def __init__(self, step):
        self.step, self.calls = step, []

    def __call__(self, prefix_ids, rows=None):
        self.calls.append(np.array(prefix_ids))
        return self.step(prefix_ids, rows=rows)


@pytest.fixture(scope="module")
def full_logits(gpt, ids):
    """lm_step_fn's logits after ``ids[:, :t]``, for t = 1 .. POSITIONS (index t - 1)."""
    reference = lm_step_fn(gpt)
    return [reference(ids[:, :t]) for t in range(1, POSITIONS + 1)]


def test_cached_logits_equal_the_full_model(gpt, ids, full_logits):
    reference = lm_step_fn(gpt)
    assert np.abs(full_logits[-1]).max() > 0.5  # logits of some size, not all ~0
    # Traced, every length up to the position table; eager (keras.ops), the first few.
    for compiled, lengths in ((True, POSITIONS), (False, 5)):
        step = gpt_cached_step_fn(gpt, compiled=compiled)
        worst = max(float(np.abs(step(ids[:, :t]) - full_logits[t - 1]).max())
                    for t in range(1, lengths + 1))
        assert worst < TOLERANCE, (compiled, worst)
        # The cache was used: one position through the blocks per prefix and step.
        assert step.positions_computed == len(ids) * lengths

    # A prompt of several tokens fills the cache in one pass, then steps go on from it.
    step = gpt_cached_step_fn(gpt)
    for t in range(5, 9):
        np.testing.assert_allclose(step(ids[:, :t]), full_logits[t - 1], atol=TOLERANCE)
    assert step.positions_computed == len(ids) * 8

    # A stale cache (other prefixes' keys and values) would be caught.
    other = ids.copy()
    other[:, 2] = (other[:, 2] % (VOCAB - 1)) + 1
    stale = _RowKeyedStep(gpt)
    stale(ids[:, :9])
    assert np.abs(stale(other[:, :10]) - reference(other[:, :10])).max() > 1e-3


def test_a_mixed_call_fills_new_prefixes_and_continues_cached_ones(gpt, ids):
    """Prefixes the previous call did not have (here a fresh row) are filled by one pass
    while the others run one position; the rows keep their order."""
    reference = lm_step_fn(gpt)
    step = gpt_cached_step_fn(gpt)
    step(ids[:2, :6])
    mixed = np.stack([ids[1, :7], ids[2, :7], ids[0, :7], ids[1, :7]])  # dup + new + reorder
    np.testing.assert_allclose(step(mixed), reference(mixed), atol=TOLERANCE)
    assert step.positions_computed == 2 * 6 + 3 * 1 + 7
    after = np.stack([ids[2, :8], ids[0, :8]])  # extends the fresh row and a cached one
    np.testing.assert_allclose(step(after), reference(after), atol=TOLERANCE)
    assert step.positions_computed == 2 * 6 + 3 * 1 + 7 + 2
    # Without the keys and values the mixed call left, the fresh row would differ.
    stale = _RowKeyedStep(gpt)
    stale(ids[:2, :6])
    stale(np.stack([ids[0, :7], ids[1, :7]]))
    assert np.abs(stale(after) - reference(after)).max() > 1e-3


def test_greedy_gives_the_same_tokens(gpt, ids):
    prompt = ids[:, :4]
    cached = greedy_decode(gpt_cached_step_fn(gpt), prompt, POSITIONS)
    full = greedy_decode(lm_step_fn(gpt), prompt, POSITIONS)
    np.testing.assert_array_equal(cached, full)
    assert len(np.unique(full[:, 4:])) > 2  # not one token repeated everywhere
    np.testing.assert_array_equal(generate(gpt, prompt, POSITIONS - 4), full)
    np.testing.assert_array_equal(generate(gpt, prompt[0], POSITIONS - 4), full[0])

    # A cache left by another prompt would change the tokens.
    stale = _RowKeyedStep(gpt)
    stale(ids[::-1, :3])
    assert not np.array_equal(greedy_decode(stale, prompt, POSITIONS), full)


def test_sampling_with_a_seed_gives_the_same_tokens(gpt, ids):
    prompt = ids[:, :3]
    cached = sample(gpt_cached_step_fn(gpt), prompt, 20, seed=7, temperature=0.8)
    full = sample(lm_step_fn(gpt), prompt, 20, seed=7, temperature=0.8)
    np.testing.assert_array_equal(cached, full)
    np.testing.assert_array_equal(
        generate(gpt, prompt, 17, "sample", cache=True, seed=7, temperature=0.8), full)
    other_seed = sample(lm_step_fn(gpt), prompt, 20, seed=8, temperature=0.8)
    assert not np.array_equal(other_seed, full)  # the draws matter
    stale = _RowKeyedStep(gpt)
    stale(ids[::-1, :2])
    assert not np.array_equal(sample(stale, prompt, 20, seed=7, temperature=0.8), full)


def test_beam_search_gives_the_same_hypotheses(gpt, ids):
    prompt = ids[:2, :3]
    record = _Recorder(gpt_cached_step_fn(gpt))
    cached, cached_hyps = beam_search(record, prompt, 3, 16, end_id=1,
                                      return_hypotheses=True)
    full, full_hyps = beam_search(lm_step_fn(gpt), prompt, 3, 16, end_id=1,
                                  return_hypotheses=True)
    np.testing.assert_array_equal(cached, full)
    for mine, theirs in zip(cached_hyps, full_hyps):
        assert [h.ids.tolist() for h in mine] == [h.ids.tolist() for h in theirs]
        np.testing.assert_allclose([h.log_prob for h in mine],
                                   [h.log_prob for h in theirs], atol=1e-4)
    np.testing.assert_array_equal(
        generate(gpt, prompt, 13, "beam", beam_width=3, end_id=1), full)

    # The beams were reordered or duplicated (prefixes do not extend the previous call's
    # rows in order), and still no prefix was run again from its start.
    calls = record.calls
    assert any(len(b) != len(a) or not np.array_equal(b[:, :-1], a)
               for a, b in zip(calls, calls[1:]))
    assert record.step.positions_computed == calls[0].size + sum(len(c) for c in calls[1:])

    stale = _RowKeyedStep(gpt)
    wrong = beam_search(stale, prompt, 3, 16, end_id=1)
    assert not np.array_equal(wrong, full)


def test_max_positions(gpt, ids):
    longer = np.concatenate([ids, ids], axis=1)
    step = gpt_cached_step_fn(gpt)
    step(longer[:, :POSITIONS])  # the whole position table: fine
    with pytest.raises(KerasdlError, match="max_length <= 25"):
        step(longer[:, :POSITIONS + 1])
    # max_length counts the last token, which is generated but never read: 25.
    assert generate(gpt, ids[:, :4], POSITIONS - 3).shape == (3, POSITIONS + 1)
    for cache in (True, False):
        with pytest.raises(KerasdlError, match="max_length 26") as error:
            generate(gpt, ids[:, :4], POSITIONS - 2, cache=cache)
        assert error.value.argument == "max_new_tokens"


def test_fixed_length_model():
    """As ``kerasdl train`` builds it: ``sequence_length`` set. Beyond it the model reads
    the last ``sequence_length`` tokens (a sliding window), with and without the cache."""
    fixed = _tiny_gpt(seed=1, sequence_length=8)
    assert fixed.inputs[0].shape[1] == 8
    ids = np.random.default_rng(1).integers(1, VOCAB, (2, 11)).astype("int32")
    reference, step = lm_step_fn(fixed), gpt_cached_step_fn(fixed)
    for t in range(6, 12):
        np.testing.assert_allclose(step(ids[:, :t]), reference(ids[:, :t]), atol=TOLERANCE)
    # Cached up to 8 tokens, then a full window per step.
    assert step.positions_computed == 2 * (6 + 2 + 8 * 3)
    # The window matters: the same weights with a free length read all 11 tokens.
    free = _tiny_gpt(seed=1)
    free.set_weights(fixed.get_weights())
    assert np.abs(lm_step_fn(free)(ids) - reference(ids)).max() > 1e-3

    prompt = ids[:, :3]
    np.testing.assert_array_equal(generate(fixed, prompt, 9, cache=True),
                                  generate(fixed, prompt, 9, cache=False))


def test_rejects_other_models_and_arguments(gpt, ids):
    lstm = kerasdl.create_model("lstm_lm", vocabulary_size=VOCAB)
    with pytest.raises(KerasdlError, match="gpt builders"):
        gpt_cached_step_fn(lstm)
    with pytest.raises(InvalidArgumentError, match="beam_width"):
        generate(gpt, ids[:, :3], 4, "greedy", beam_width=3)
    with pytest.raises(KerasdlError, match="method"):
        generate(gpt, ids[:, :3], 4, "top_k")
