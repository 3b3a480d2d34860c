"""Text metrics: perplexity and bits per character of language models, token accuracy,
and corpus BLEU.

:class:`Perplexity`, :class:`BitsPerCharacter` and :class:`TokenAccuracy` are Keras
metrics (``keras.ops`` only, so they run in ``model.compile(metrics=[...])`` on every
backend) over logits ``[batch, time, vocab]`` and sparse targets ``[batch, time]``,
skipping padding (or otherwise ignored) targets.
:func:`cross_entropy_per_token` and :func:`nats_to_bits` are their numpy counterparts.
:func:`bleu` wraps sacreBLEU (Post 2018) so that scores come with a signature saying
how they were computed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlError, check_choice

__all__ = [
    "BitsPerCharacter",
    "BleuScore",
    "Perplexity",
    "TokenAccuracy",
    "bleu",
    "cross_entropy_per_token",
    "nats_to_bits",
]


def _check_ignore_id(ignore_id):
    if ignore_id is not None and (not isinstance(ignore_id, int) or isinstance(ignore_id, bool)):
        raise KerasdlError(f"ignore_id must be an int token id or None, got {ignore_id!r}",
                           argument="ignore_id")
    return ignore_id


class _TokenCrossEntropy(keras.metrics.Metric):
    """Sums the cross-entropy (nats) of every counted target token and counts them, so
    that the mean over an epoch weighs every token alike, whatever the batch it was in."""

    def __init__(self, ignore_id=0, from_logits=True, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_id = _check_ignore_id(ignore_id)
        self.from_logits = bool(from_logits)
        # float32 even under mixed precision: a float16 sum over an epoch's tokens would
        # lose the small terms.
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        if self.ignore_id is None:
            weights = ops.ones(ops.shape(y_true), dtype="float32")
        else:
            counted = ops.not_equal(y_true, self.ignore_id)
            weights = ops.cast(counted, "float32")
            # An ignored id may lie outside the vocabulary (-1, say); look up 0 instead.
            y_true = ops.where(counted, y_true, ops.zeros_like(y_true))
        if self.from_logits:
            log_probs = y_pred - ops.logsumexp(y_pred, axis=-1, keepdims=True)
        else:
            log_probs = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        picked = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)
        nats = -ops.squeeze(picked, axis=-1)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            while len(sample_weight.shape) < len(nats.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        self.total.assign_add(ops.sum(nats * weights))
        self.count.assign_add(ops.sum(weights))

    def mean_nats(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "ignore_id": self.ignore_id,
                "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="kerasdl")
class Perplexity(_TokenCrossEntropy):
    """Perplexity, ``exp`` of the mean cross-entropy per target token (nats), over the
    batches since the last reset, weighted by token. Targets equal to ``ignore_id``
    (padding, 0) are not counted (``None`` counts all); ``sample_weight`` ([batch] or
    [batch, time]) weighs tokens further. With no counted token the result is 1."""

    def __init__(self, ignore_id=0, from_logits=True, name="perplexity", dtype=None):
        super().__init__(ignore_id=ignore_id, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        return ops.exp(self.mean_nats())


@keras.saving.register_keras_serializable(package="kerasdl")
class BitsPerCharacter(_TokenCrossEntropy):
    """Mean cross-entropy per target token in bits (nats / ln 2), as :class:`Perplexity`
    counts it; on a character-level model, bits per character (Graves 2013)."""

    def __init__(self, ignore_id=0, from_logits=True, name="bits_per_character", dtype=None):
        super().__init__(ignore_id=ignore_id, from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        return self.mean_nats() / math.log(2.0)


@keras.saving.register_keras_serializable(package="kerasdl")
class TokenAccuracy(keras.metrics.Metric):
    """Accuracy over the counted target tokens of logits ``[batch, time, vocab]``: targets
    equal to ``ignore_id`` are left out of both the hits and the count (``ignore_id=-1``:
    a masked LM's unpredicted positions), so that every counted token weighs alike."""

    def __init__(self, ignore_id=0, name="token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_id = _check_ignore_id(ignore_id)
        self.hits = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                      name="hits")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true),
                       "float32")
        weights = (ops.ones(ops.shape(y_true), dtype="float32") if self.ignore_id is None
                   else ops.cast(ops.not_equal(y_true, self.ignore_id), "float32"))
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        self.hits.assign_add(ops.sum(hit * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.hits, self.count)

    def get_config(self):
        return {**super().get_config(), "ignore_id": self.ignore_id}


def cross_entropy_per_token(y_true, logits, ignore_id=0):
    """Mean cross-entropy in nats per target token of ``logits`` ``[..., vocab]`` against
    integer targets ``[...]`` (numpy, float64), skipping targets equal to ``ignore_id``.
    Perplexity is its ``exp``; bits per character its :func:`nats_to_bits`."""
    ignore_id = _check_ignore_id(ignore_id)
    targets = np.asarray(keras.ops.convert_to_numpy(y_true)).astype(np.int64)
    logits = np.asarray(keras.ops.convert_to_numpy(logits), dtype=np.float64)
    if logits.shape[:-1] != targets.shape:
        raise KerasdlError(f"logits {logits.shape} do not match targets {targets.shape}",
                           argument="logits")
    counted = np.ones(targets.shape, dtype=bool) if ignore_id is None else targets != ignore_id
    if not counted.any():
        raise KerasdlError("no target token is counted (all equal ignore_id)",
                           argument="y_true")
    targets, logits = targets[counted], logits[counted]
    top = logits.max(axis=-1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=-1))
    return float(np.mean(log_norm - logits[np.arange(len(targets)), targets]))


def nats_to_bits(nats):
    """Nats to bits (divide by ln 2): mean cross-entropy per character in nats to bits
    per character."""
    return nats / math.log(2.0)


# --- BLEU -------------------------------------------------------------------------------

class BleuScore(NamedTuple):
    """Corpus BLEU (0-100), sacreBLEU's signature of the settings, and its full result."""

    score: float
    signature: str
    result: object


def _check_strings(values, argument):
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise KerasdlError(f"{argument} must be a list of strings", argument=argument)
    for value in values:
        if not isinstance(value, str):
            raise KerasdlError(f"{argument} must hold strings (detokenised text), got "
                               f"{type(value).__name__}", argument=argument)
    return list(values)


def bleu(hypotheses, references, lowercase=True, tokenize="13a"):
    """Corpus BLEU (Papineni et al. 2002) of detokenised ``hypotheses`` (list of strings)
    against ``references``: a list of strings (one reference per hypothesis) or a list of
    such lists (several references: each inner list holds one reference for every
    hypothesis, sacreBLEU's layout). Computed by ``sacrebleu.metrics.BLEU`` with its
    tokenizer ``tokenize``; returns a :class:`BleuScore`.

    ``lowercase=True`` by default because published Multi30k figures (the WMT 2016-2018
    multimodal tasks and the papers on them) are, as a rule, lowercased BLEU, usually on
    lowercased, tokenised text; cased BLEU is lower. Scores are comparable only under the
    same signature.
    """
    from sacrebleu.metrics import BLEU

    hypotheses = _check_strings(hypotheses, "hypotheses")
    if not hypotheses:
        raise KerasdlError("hypotheses is empty", argument="hypotheses")
    if isinstance(references, (list, tuple)) and references and all(
            isinstance(r, (list, tuple)) for r in references):
        streams = [_check_strings(r, "references") for r in references]
    else:
        streams = [_check_strings(references, "references")]
    for stream in streams:
        if len(stream) != len(hypotheses):
            raise KerasdlError(f"each reference list needs one reference per hypothesis: "
                               f"{len(stream)} for {len(hypotheses)}", argument="references")
    check_choice(tokenize, tuple(BLEU.TOKENIZERS), "tokenize")
    metric = BLEU(lowercase=bool(lowercase), tokenize=tokenize)
    result = metric.corpus_score(hypotheses, streams)
    return BleuScore(float(result.score), str(metric.get_signature()), result)
