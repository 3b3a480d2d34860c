"""Decoding for language models and seq2seq models: greedy search, beam search and sampling.

Every search runs on a *step function* ``step_fn(prefix_ids, rows=None) -> logits``: given
prefixes ``[n, t]`` (int32) it returns the logits ``[n, vocab]`` of the next token. The
searches pass ``rows`` ([n] ints), the index in the caller's batch of the example each
prefix belongs to, because they keep several prefixes per example (beams) or only the
unfinished ones; a step function conditioned on per-example data (the source sentence of
a translation model) picks its rows with it. A step function without a ``rows`` parameter
is called with the prefixes alone. :func:`lm_step_fn` and :func:`seq2seq_step_fn` build
step functions from Keras models.

The search bookkeeping is numpy. The model adapters run the model on the whole prefix at
every step (no cache): quadratic in the length, but it works with any model on any backend
(:mod:`kerasdl.translation` has a cached step for kerasdl's recurrent seq2seq models).

Conventions shared by the searches:

* ``start`` is a start token per example (``[batch]``) or a prompt (``[batch, t]``, rows
  of equal length);
* ``max_length`` counts every position of the output, the start token or prompt included;
* the output is ids ``[batch, <= max_length]``: the start or prompt, the generated tokens
  and the end token; positions after a row's end are 0;
* the padding id (``pad_id``, 0) is never generated: its logit is set to -inf before the
  softmax, so probabilities are renormalised over the other tokens (``pad_id=None``
  keeps it).
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import keras
import numpy as np

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int

__all__ = [
    "Hypothesis",
    "beam_search",
    "filter_logits",
    "greedy_decode",
    "ids_to_text",
    "length_normalizer",
    "lm_step_fn",
    "sample",
    "seq2seq_step_fn",
    "strip_special",
]

NORMALIZATIONS = ("gnmt", "length")


# --- model adapters ---------------------------------------------------------------------

def _model_logits(output):
    """Logits of a model's output: the tensor itself, or the ``"logits"`` entry of a dict."""
    if isinstance(output, dict):
        if "logits" not in output:
            raise KerasdlError(f"the model returned a dict without 'logits' (keys: "
                               f"{sorted(output)})", argument="model")
        output = output["logits"]
    logits = keras.ops.convert_to_numpy(output)
    if logits.ndim != 3:
        raise KerasdlError(f"the model must return logits [batch, time, vocab], got shape "
                           f"{logits.shape}", argument="model")
    return logits


def _check_model(model):
    if not callable(model):
        raise KerasdlError(f"model must be a Keras model (callable), got {type(model).__name__}",
                           argument="model")


def _fixed_length(model, index):
    """The fixed time length of the model's input ``index``, or None when it takes any."""
    inputs = getattr(model, "inputs", None)
    if not inputs or index >= len(inputs) or len(inputs[index].shape) < 2:
        return None
    length = inputs[index].shape[1]
    return None if length is None else int(length)


def _padded(prefix, length):
    """``prefix`` padded with 0 to ``length`` columns (a model built by ``kerasdl train``
    has the recipe's fixed length; the models are causal, so positions before the padding
    do not change) and the index of its last real position."""
    t = prefix.shape[1]
    if length is None or t == length:
        return prefix, t - 1
    out = np.zeros((prefix.shape[0], length), dtype=np.int32)
    out[:, :t] = prefix
    return out, t - 1


def _forward(model, inputs):
    """The model's output on one batch. A Keras model runs through ``predict_on_batch``:
    its compiled predict function is traced once per input shape (a fixed-length model:
    once), where an eager call of a recurrent layer re-runs its loop op by op, some 40
    times slower on CPU. Subclassed models are called directly (their names may not make
    valid TensorFlow scope names)."""
    if isinstance(model, keras.Model) and getattr(model, "inputs", None):
        return model.predict_on_batch(inputs)
    return model(inputs, training=False)


def lm_step_fn(model):
    """A step function for a language model (ids ``[batch, time]`` -> logits ``[batch, time,
    vocab]`` or a dict with ``"logits"``): the logits at the prefix's last position.

    A model with a fixed input length ``L`` (as ``kerasdl train`` builds them) reads
    shorter prefixes padded and longer ones through a sliding window of their last ``L``
    tokens: it was trained on windows of ``L`` from a zero state, so that is the context
    it knows how to use."""
    _check_model(model)
    length = _fixed_length(model, 0)

    def step(prefix_ids, rows=None):
        del rows  # a language model conditions on the prefix alone
        prefix = np.asarray(prefix_ids, dtype=np.int32)
        if length is not None and prefix.shape[1] > length:
            prefix = prefix[:, -length:]
        padded, last = _padded(prefix, length)
        return _model_logits(_forward(model, padded))[:, last, :]

    return step


def seq2seq_step_fn(model, source_ids):
    """A step function for a seq2seq model (``[source_ids, target_in_ids]`` -> logits
    ``[batch, T, vocab]`` or a dict with ``"logits"``) conditioned on ``source_ids``
    ``[batch, S]``: prefix ``i`` is decoded against source row ``rows[i]`` (the searches
    pass ``rows``; without it, prefix ``i`` goes with source row ``i``). The same works
    for any two-input model whose second input is the prefix, such as a one-to-many
    model conditioned on a label (``source_ids`` = labels ``[batch, 1]``). A decoder input
    of fixed length ``T`` takes prefixes padded to ``T``, and at most ``T`` tokens."""
    _check_model(model)
    source = _check_ids_2d(source_ids, "source_ids")
    length = _fixed_length(model, 1)

    def step(prefix_ids, rows=None):
        prefix = np.asarray(prefix_ids, dtype=np.int32)
        if rows is None:
            if len(prefix) != len(source):
                raise KerasdlError(f"{len(prefix)} prefixes for {len(source)} sources; pass "
                                   f"rows to say which source each prefix belongs to",
                                   argument="rows")
            src = source
        else:
            src = source[np.asarray(rows)]
        if length is not None and prefix.shape[1] > length:
            raise KerasdlError(f"the model's decoder reads at most {length} tokens; ask for "
                               f"max_length <= {length}", argument="max_length")
        padded, last = _padded(prefix, length)
        return _model_logits(_forward(model, [src, padded]))[:, last, :]

    return step


# --- argument checks and the step call --------------------------------------------------

def _check_ids_2d(ids, argument):
    arr = np.asarray(ids)
    if (arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer)
            or (arr < 0).any()):
        raise KerasdlError(f"{argument} must be non-negative integer ids [batch, length], got "
                           f"shape {arr.shape} and dtype {arr.dtype}", argument=argument)
    return arr.astype(np.int32)


def _check_start(start):
    arr = np.asarray(start)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise KerasdlError(f"start must be start ids [batch] or a prompt [batch, length], got "
                           f"shape {arr.shape}", argument="start")
    return _check_ids_2d(arr, "start")


def _check_token(value, argument, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise KerasdlError(f"{argument} must be a non-negative token id"
                           f"{' or None' if allow_none else ''}, got {value!r}",
                           argument=argument)
    return int(value)


def _check_common(step_fn, start, max_length, end_id, pad_id):
    if not callable(step_fn):
        raise KerasdlError(f"step_fn must be callable, got {type(step_fn).__name__}",
                           argument="step_fn")
    ids = _check_start(start)
    check_positive_int(max_length, "max_length")
    if max_length <= ids.shape[1]:
        raise KerasdlError(f"max_length ({max_length}) must exceed the length of start "
                           f"({ids.shape[1]}): it counts the start tokens too",
                           argument="max_length")
    end_id = _check_token(end_id, "end_id")
    pad_id = _check_token(pad_id, "pad_id")
    if end_id is not None and end_id == pad_id:
        raise KerasdlError(f"end_id and pad_id are both {end_id}", argument="end_id")
    return ids, end_id, pad_id


class _Stepper:
    """Calls a step function (with ``rows`` when it takes them) and checks its logits."""

    def __init__(self, step_fn, end_id, pad_id):
        self.step_fn, self.end_id, self.pad_id = step_fn, end_id, pad_id
        try:
            params = inspect.signature(step_fn).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature
            params = ()
        self.takes_rows = any(p.name == "rows" or p.kind is p.VAR_KEYWORD for p in params)

    def __call__(self, prefix, rows):
        out = self.step_fn(prefix, rows=rows) if self.takes_rows else self.step_fn(prefix)
        logits = np.array(keras.ops.convert_to_numpy(out), dtype=np.float64)
        if logits.ndim != 2 or logits.shape[0] != len(prefix):
            raise KerasdlError(f"step_fn must return logits [{len(prefix)}, vocab] for "
                               f"{len(prefix)} prefixes, got shape {logits.shape}",
                               argument="step_fn")
        if np.isnan(logits).any() or not np.isfinite(logits).any(axis=1).all():
            raise KerasdlError("step_fn returned NaN logits, or a row without a finite one",
                               argument="step_fn")
        vocab = logits.shape[1]
        if self.end_id is not None and self.end_id >= vocab:
            raise KerasdlError(f"end_id {self.end_id} is outside the vocabulary of {vocab}",
                               argument="end_id")
        if self.pad_id is not None and self.pad_id < vocab:
            logits[:, self.pad_id] = -np.inf
            if not np.isfinite(logits).any(axis=1).all():
                raise KerasdlError(f"step_fn gives probability only to pad_id "
                                   f"{self.pad_id}, which is never generated",
                                   argument="step_fn")
        return logits


def _log_softmax(logits):
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --- greedy -----------------------------------------------------------------------------

def greedy_decode(step_fn, start, max_length, end_id=None, *, pad_id=0):
    """Greedy search: the most likely next token at every step. Returns ids ``[batch,
    <= max_length]``; decoding stops once every row has produced ``end_id``."""
    ids, end_id, pad_id = _check_common(step_fn, start, max_length, end_id, pad_id)
    stepper = _Stepper(step_fn, end_id, pad_id)
    batch, length = ids.shape
    out = np.zeros((batch, max_length), dtype=np.int32)
    out[:, :length] = ids
    done = np.zeros(batch, dtype=bool)
    while length < max_length and not done.all():
        live = np.flatnonzero(~done)
        token = stepper(out[live, :length], live).argmax(axis=-1)
        out[live, length] = token
        length += 1
        if end_id is not None:
            done[live] = token == end_id
    return out[:, :length]


# --- beam search ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Hypothesis:
    """One beam-search hypothesis: ``ids`` (start or prompt, generated tokens, and the end
    token when ``finished``), ``log_prob`` (sum of the generated tokens' log-probabilities)
    and ``score`` (``log_prob`` divided by the length penalty, what the search ranks by)."""

    ids: np.ndarray
    log_prob: float
    score: float
    finished: bool


def length_normalizer(length, alpha, normalization="gnmt"):
    """The length penalty ``lp(Y)`` that beam-search scores are divided by, for ``length``
    generated tokens (end token included):

    * ``"gnmt"`` (Wu et al. 2016, section 7, without their coverage penalty):
      ``((5 + |Y|) / 6) ** alpha``;
    * ``"length"``: ``|Y| ** alpha`` (``alpha=1`` is the mean log-probability per token).

    ``alpha=0`` gives 1 (no normalisation); larger ``alpha`` favours longer outputs.
    """
    if normalization == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    return float(length) ** alpha


def beam_search(step_fn, start, beam_width, max_length, end_id, *, length_penalty=0.6,
                normalization="gnmt", pad_id=0, return_hypotheses=False):
    """Beam search (as in Sutskever et al. 2014; Wu et al. 2016) keeping ``beam_width``
    unfinished prefixes per example.

    Scores are sums of log-probabilities divided by :func:`length_normalizer` with
    ``alpha=length_penalty`` (default 0.6 with ``"gnmt"``, the setting of Vaswani et al.
    2017; 0 ranks by log-probability alone). At each step the extensions of the prefixes
    are taken best first: those ending in ``end_id`` are set aside as finished, the others
    go on until ``beam_width`` prefixes are chosen (so a beam of one, with
    ``length_penalty=0``, is greedy search). An example's search stops when its
    best finished hypothesis scores at least as much as any continuation of its prefixes
    could (log-probabilities only fall as tokens are added, so a prefix with
    log-probability ``s`` can score at most ``s / lp(max generated length)``); at
    ``max_length`` the remaining prefixes count as unfinished hypotheses.

    Returns the best hypothesis per example as ids ``[batch, <= max_length]`` (0 after
    the end); with ``return_hypotheses=True``, also a list per example of up to
    ``beam_width`` :class:`Hypothesis`, best first.
    """
    ids, end_id, pad_id = _check_common(step_fn, start, max_length, end_id, pad_id)
    k = check_positive_int(beam_width, "beam_width")
    alpha = check_fraction(length_penalty, "length_penalty", low=0.0, high=math.inf)
    check_choice(normalization, NORMALIZATIONS, "normalization")
    stepper = _Stepper(step_fn, end_id, pad_id)
    batch, prompt = ids.shape

    def normalised(log_prob, generated):
        return log_prob / length_normalizer(generated, alpha, normalization)

    seqs = np.zeros((batch, k, max_length), dtype=np.int32)
    seqs[:, :, :prompt] = ids[:, None, :]
    # One live prefix per example at first: the copies start at -inf so that they are
    # never chosen and the first step does not fill the beam with duplicates.
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0
    finished = [[] for _ in range(batch)]
    active = np.ones(batch, dtype=bool)
    best_possible = 1.0 / length_normalizer(max_length - prompt, alpha, normalization)

    for length in range(prompt, max_length):
        examples = np.flatnonzero(active)
        if not len(examples):
            break
        which, beam = np.nonzero(np.isfinite(scores[examples]))
        rows = examples[which]
        log_probs = _log_softmax(stepper(seqs[rows, beam, :length], rows))
        vocab = log_probs.shape[1]
        candidates = np.full((len(examples), k, vocab), -np.inf)
        candidates[which, beam] = scores[rows, beam][:, None] + log_probs
        candidates = candidates.reshape(len(examples), k * vocab)
        # Each prefix has one ending, so the 2k best extensions hold k that go on.
        n_top = min(2 * k, k * vocab)
        top = np.argpartition(-candidates, n_top - 1, axis=1)[:, :n_top]
        top_scores = np.take_along_axis(candidates, top, axis=1)
        # Best first, ties broken by index so that results do not depend on argpartition.
        order = np.lexsort((top, -top_scores), axis=-1)
        top = np.take_along_axis(top, order, axis=1)

        generated = length + 1 - prompt
        for i, example in enumerate(examples):
            keep = []
            for flat in top[i]:
                score = candidates[i, flat]
                if not np.isfinite(score) or len(keep) == k:
                    break
                source_beam, token = divmod(int(flat), vocab)
                if token == end_id:
                    hyp_ids = seqs[example, source_beam, :length + 1].copy()
                    hyp_ids[length] = token
                    finished[example].append(Hypothesis(
                        hyp_ids, float(score), float(normalised(score, generated)), True))
                else:
                    keep.append((source_beam, token, score))
            new_seqs = np.zeros((k, max_length), dtype=np.int32)
            new_seqs[:, :prompt] = ids[example]
            new_scores = np.full(k, -np.inf)
            for j, (source_beam, token, score) in enumerate(keep):
                new_seqs[j, :length] = seqs[example, source_beam, :length]
                new_seqs[j, length] = token
                new_scores[j] = score
            seqs[example], scores[example] = new_seqs, new_scores
            if not keep:
                active[example] = False
            elif finished[example]:
                best_finished = max(h.score for h in finished[example])
                if best_finished >= new_scores[0] * best_possible:
                    active[example] = False

    for example in np.flatnonzero(active):
        for j in np.flatnonzero(np.isfinite(scores[example])):
            log_prob = float(scores[example, j])
            finished[example].append(Hypothesis(
                seqs[example, j].copy(), log_prob,
                float(normalised(log_prob, max_length - prompt)), False))

    hypotheses = [sorted(h, key=lambda h: -h.score)[:k] for h in finished]
    longest = max(len(h[0].ids) for h in hypotheses)
    out = np.zeros((batch, longest), dtype=np.int32)
    for example, hyps in enumerate(hypotheses):
        out[example, :len(hyps[0].ids)] = hyps[0].ids
    return (out, hypotheses) if return_hypotheses else out


# --- sampling ---------------------------------------------------------------------------

def _check_filters(temperature, top_k, top_p, zero_ok):
    temperature = check_fraction(temperature, "temperature", low=0.0, high=math.inf)
    if temperature == 0.0 and not zero_ok:
        raise KerasdlError("temperature must be positive here (sample() treats 0 as greedy)",
                           argument="temperature")
    top_k = check_positive_int(top_k, "top_k", allow_none=True)
    if top_p is not None:
        top_p = check_fraction(top_p, "top_p", low=0.0, high=1.0, high_inclusive=True)
        if top_p == 0.0:
            raise KerasdlError("top_p must be in (0, 1], got 0", argument="top_p")
    return temperature, top_k, top_p


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Logits ``[n, vocab]`` divided by ``temperature``, then with -inf outside the
    ``top_k`` largest (ties at the k-th value kept) and outside the nucleus: the smallest
    set of most likely tokens whose probability sums to at least ``top_p`` (Holtzman et
    al. 2020), computed after the top-k cut."""
    temperature, top_k, top_p = _check_filters(temperature, top_k, top_p, zero_ok=False)
    logits = np.array(logits, dtype=np.float64) / temperature
    vocab = logits.shape[-1]
    if top_k is not None and top_k < vocab:
        kth = np.partition(logits, vocab - top_k, axis=-1)[..., vocab - top_k, None]
        logits[logits < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")
        probs = np.exp(_log_softmax(np.take_along_axis(logits, order, axis=-1)))
        before = np.cumsum(probs, axis=-1) - probs
        # A token stays if the more likely ones before it do not yet reach top_p.
        drop = np.zeros(logits.shape, dtype=bool)
        np.put_along_axis(drop, order, before >= top_p, axis=-1)
        logits[drop] = -np.inf
    return logits


def sample(step_fn, start, max_length, end_id=None, *, temperature=1.0, top_k=None,
           top_p=None, seed=None, pad_id=0):
    """Ancestral sampling of the next token from the model's distribution, reshaped by
    :func:`filter_logits` (``temperature``, ``top_k``, nucleus ``top_p``).

    ``temperature=0`` is greedy decoding (the limit of the distribution as the
    temperature falls to 0). ``seed`` is an int, a ``numpy.random.Generator`` (drawn
    from and advanced), or None for fresh entropy. Returns ids ``[batch, <= max_length]``
    like :func:`greedy_decode`.
    """
    ids, end_id, pad_id = _check_common(step_fn, start, max_length, end_id, pad_id)
    temperature, top_k, top_p = _check_filters(temperature, top_k, top_p, zero_ok=True)
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                          and seed >= 0):
        rng = np.random.default_rng(seed)
    else:
        raise KerasdlError(f"seed must be a non-negative int, a numpy Generator or None, "
                           f"got {seed!r}", argument="seed")
    stepper = _Stepper(step_fn, end_id, pad_id)
    batch, length = ids.shape
    out = np.zeros((batch, max_length), dtype=np.int32)
    out[:, :length] = ids
    done = np.zeros(batch, dtype=bool)
    while length < max_length and not done.all():
        live = np.flatnonzero(~done)
        logits = stepper(out[live, :length], live)
        if temperature == 0:
            token = logits.argmax(axis=-1)
        else:
            probs = np.exp(_log_softmax(filter_logits(logits, temperature, top_k, top_p)))
            cdf = np.cumsum(probs, axis=-1)
            # u in (0, total]: the first token whose cdf reaches u has nonzero probability.
            u = (1.0 - rng.random(len(live))) * cdf[:, -1]
            token = np.minimum((cdf < u[:, None]).sum(axis=-1), probs.shape[1] - 1)
        out[live, length] = token
        length += 1
        if end_id is not None:
            done[live] = token == end_id
    return out[:, :length]


# --- ids to text ------------------------------------------------------------------------

def _sequences(ids):
    """``ids`` as a list of 1-D int arrays, and whether it was a batch."""
    if isinstance(ids, (list, tuple)) and len(ids) and np.ndim(ids[0]) >= 1:
        rows, batched = [np.asarray(row) for row in ids], True
    else:
        arr = np.asarray(ids)
        if arr.ndim == 2:
            rows, batched = list(arr), True
        elif arr.ndim == 1:
            rows, batched = [arr], False
        else:
            raise KerasdlError(f"ids must be a sequence of ids or a batch of them, got shape "
                               f"{arr.shape}", argument="ids")
    for row in rows:
        if row.ndim != 1 or (row.size and not np.issubdtype(row.dtype, np.integer)):
            raise KerasdlError(f"ids must hold integer token ids, got dtype {row.dtype}",
                               argument="ids")
    return rows, batched


def _strip(ids, start_id, end_id, pad_id):
    start_id = _check_token(start_id, "start_id")
    end_id = _check_token(end_id, "end_id")
    pad_id = _check_token(pad_id, "pad_id")
    rows, batched = _sequences(ids)
    stripped = []
    for row in rows:
        tokens = []
        for token in row.tolist():
            if token == end_id:
                break
            if token != start_id and token != pad_id:
                tokens.append(token)
        stripped.append(tokens)
    return stripped, batched


def strip_special(ids, *, start_id=None, end_id=None, pad_id=0):
    """Token ids as lists without ``start_id`` and ``pad_id`` tokens, cut before the first
    ``end_id``. A sequence gives a list of ints; a batch (2-D array or list of sequences)
    a list of such lists."""
    stripped, batched = _strip(ids, start_id, end_id, pad_id)
    return stripped if batched else stripped[0]


def ids_to_text(ids, vocabulary, join=" ", *, start_id=None, end_id=None, pad_id=0):
    """Text of token ids: :func:`strip_special`, then each id's entry in ``vocabulary``
    (a list of strings indexed by id) joined with ``join`` (``" "`` for words, ``""`` for
    characters). A sequence gives a string, a batch a list of strings."""
    if isinstance(vocabulary, (str, bytes)) or not hasattr(vocabulary, "__getitem__"):
        raise KerasdlError("vocabulary must be a list of strings indexed by token id",
                           argument="vocabulary")
    if not isinstance(join, str):
        raise KerasdlError(f"join must be a string, got {join!r}", argument="join")
    stripped, batched = _strip(ids, start_id, end_id, pad_id)
    texts = []
    for tokens in stripped:
        bad = [t for t in tokens if t >= len(vocabulary)]
        if bad:
            raise KerasdlError(f"token id {bad[0]} is outside the vocabulary of "
                               f"{len(vocabulary)}", argument="ids")
        texts.append(join.join(str(vocabulary[t]) for t in tokens))
    return texts if batched else texts[0]
