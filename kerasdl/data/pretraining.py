"""Self-supervised pretraining objectives as ``tf.data`` transformations, and the
masked-language-modelling data of the ``masked_language_modeling`` task.

* :func:`mask_tokens`: BERT's masked LM (Devlin et al. 2019, Sec. 3.1 and App. A.1) on a
  batch of token ids. Of each sequence's real tokens (not padding or another special id)
  ``max(1, round(0.15 n))`` are chosen, as BERT's ``create_pretraining_data.py`` counts
  them; of the chosen, 80% become ``[MASK]``, 10% a random token of the ordinary
  vocabulary and 10% stay as they are. Targets are the original token at the chosen
  positions and ``IGNORE`` (-1) everywhere else.
* :func:`span_corruption`: T5's objective (Raffel et al. 2020, Sec. 3.1.4) on one
  sequence: spans covering ``noise_density`` of the tokens, of mean length 3, are each
  replaced by a sentinel in the input; the target is every sentinel followed by the
  tokens it hides, then a final sentinel and the end token (the paper's Figure 2).

Both are pure TensorFlow ops drawing from stateless random ops seeded by an argument, so
a pipeline that gives each batch or example its own seed (:func:`kerasdl.seeds.fold_seed`) is
reproducible and can be resumed anywhere, e.g.::

    ds = ds.enumerate().map(lambda i, ids: mask_tokens(
        ids, vocabulary_size=v, mask_id=MASK_ID, seed=fold_seed(seed, i)))

:func:`load_masked_language_modeling` gives the sentences of a TFDS text dataset (the
sentences of a classification set such as ``glue/sst2`` or ``trec``, labels ignored; the
lines of ``tiny_shakespeare``) or of a text file, masked afresh every epoch for training
and with fixed masks for validation and test.

Vocabulary: padding (``""``) 0 and ``[UNK]`` 1 as every kerasdl codec, then ``[MASK]`` at 2
(:data:`MASK_ID`; ``fit_codec(..., reserved=RESERVED)``). No ``[CLS]`` or ``[SEP]``:
the sentences are pretrained exactly as ``load_text_classification`` later feeds them
to the classifier (which pools the first token), so a token never seen in either would
only be dead weight.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

from kerasdl.data.text import PAD, PADDINGS, UNK, TextData, fit_codec, trim_padding
from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.seeds import fold_seed

__all__ = [
    "EVALUATION_SEED",
    "IGNORE",
    "MASK",
    "MASK_ID",
    "MaskedTextData",
    "PAD_ID",
    "RESERVED",
    "SPECIAL_IDS",
    "UNK_ID",
    "check_mlm_codec",
    "fit_mlm_codec",
    "fold_seed",
    "load_masked_language_modeling",
    "mask_tokens",
    "span_corruption",
]

MASK = "[MASK]"
RESERVED = (MASK,)  # fit_codec's ``reserved``: ids 2, 3, ... after padding and OOV
PAD_ID, UNK_ID, MASK_ID = 0, 1, 2
# Never chosen for prediction nor drawn as a random replacement: padding, the OOV token
# (predicting "[UNK]" teaches nothing) and [MASK] itself.
SPECIAL_IDS = (PAD_ID, UNK_ID, MASK_ID)
IGNORE = -1  # the target of a position that is not predicted
# Validation and test masks depend on this and the example's index only: not on the
# run's seed nor the batch size, so every run and every evaluation sees the same ones.
EVALUATION_SEED = 20190602


def _seed_pair(seed):
    """A stateless-op seed ``[2]`` (int64) from an int, a scalar tensor or a pair."""
    import tensorflow as tf

    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    return tf.ensure_shape(seed, [2])


def mask_tokens(ids, *, vocabulary_size, mask_id=MASK_ID, special_ids=(PAD_ID,), rate=0.15,
                seed, mask_fraction=0.8, random_fraction=0.1):
    """BERT's masked-LM corruption of integer token ids ``[..., length]``.

    In each sequence (the last axis), ``k = max(1, round(rate * n))`` of its ``n`` real
    positions are chosen uniformly without replacement (``k = 0`` for a sequence without
    real tokens); a position is real when its id is not in ``special_ids`` nor
    ``mask_id``. Each chosen position independently becomes ``mask_id`` with probability
    ``mask_fraction`` (0.8), a token drawn uniformly from the ordinary vocabulary (every
    id in ``[0, vocabulary_size)`` that is not special) with probability
    ``random_fraction`` (0.1), and stays unchanged otherwise (0.1; a random draw may
    also give back the original, as in BERT).

    Returns ``(inputs, targets)``, both shaped and typed as ``ids``: targets hold the
    original id at the chosen positions and :data:`IGNORE` (-1) elsewhere (the loss is
    ``SparseCategoricalCrossentropy(ignore_class=-1)``). ``seed`` (an int, a scalar
    tensor or a pair) determines everything: the same ids and seed give the same result.
    """
    import tensorflow as tf

    check_positive_int(vocabulary_size, "vocabulary_size")
    if not check_fraction(rate, "rate", high_inclusive=True) > 0:
        raise KerasdlError(f"rate must be above 0, got {rate}", argument="rate")
    check_fraction(mask_fraction, "mask_fraction", high_inclusive=True)
    check_fraction(random_fraction, "random_fraction", high_inclusive=True)
    if mask_fraction + random_fraction > 1:
        raise KerasdlError(f"mask_fraction + random_fraction must be at most 1, got "
                           f"{mask_fraction} + {random_fraction}", argument="random_fraction")
    special = sorted({int(i) for i in special_ids} | {int(mask_id)})
    if not 0 <= int(mask_id) < vocabulary_size:
        raise KerasdlError(f"mask_id {mask_id} is outside the vocabulary of "
                           f"{vocabulary_size}", argument="mask_id")
    ordinary = np.setdiff1d(np.arange(vocabulary_size), special).astype("int64")
    if random_fraction and not len(ordinary):
        raise KerasdlError("no ordinary token to draw random replacements from",
                           argument="vocabulary_size")

    ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise KerasdlError(f"ids must be integer token ids, got {ids.dtype.name}",
                           argument="ids")
    choose_seed, action_seed, token_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed_pair(seed), 3))
    shape = tf.shape(ids)
    real = tf.reduce_all(tf.not_equal(ids[..., None], tf.constant(special, ids.dtype)),
                         axis=-1)
    n_real = tf.reduce_sum(tf.cast(real, tf.float32), axis=-1)
    k = tf.where(n_real > 0, tf.maximum(1.0, tf.round(rate * n_real)), 0.0)
    # A uniform random order of the real positions (special ones sort last): the first k
    # of each sequence are its chosen positions.
    scores = tf.where(real, tf.random.stateless_uniform(shape, choose_seed), 2.0)
    rank = tf.argsort(tf.argsort(scores, axis=-1, stable=True), axis=-1, stable=True)
    chosen = tf.cast(rank, tf.float32) < k[..., None]
    action = tf.random.stateless_uniform(shape, action_seed)
    to_mask = chosen & (action < mask_fraction)
    to_random = chosen & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    inputs = tf.where(to_mask, tf.cast(mask_id, ids.dtype), ids)
    if random_fraction:
        draws = tf.random.stateless_uniform(shape, token_seed, minval=0,
                                            maxval=len(ordinary), dtype=tf.int64)
        random_tokens = tf.cast(tf.gather(tf.constant(ordinary), draws), ids.dtype)
        inputs = tf.where(to_random, random_tokens, inputs)
    targets = tf.where(chosen, ids, tf.cast(IGNORE, ids.dtype))
    return inputs, targets


def _random_segmentation(num_items, num_segments, seed):
    """T5's ``_random_segmentation``: ``num_items`` split into ``num_segments`` non-empty
    runs, uniformly over the ways to do so; returns their lengths (int32)."""
    import tensorflow as tf

    first = tf.cast(tf.range(num_items - 1) < num_segments - 1, tf.int32)
    order = tf.argsort(tf.random.stateless_uniform([num_items - 1], seed), stable=True)
    first = tf.concat([[0], tf.gather(first, order)], axis=0)
    segment = tf.cumsum(first)
    return tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, num_segments)


def span_corruption(ids, *, noise_density=0.15, mean_span_length=3.0, sentinel_ids,
                    eos_id, seed, pad_id=PAD_ID, final_sentinel=True):
    """T5's span corruption of one sequence of token ids ``[length]`` (padding, ``pad_id``,
    dropped first). Returns ``(inputs, targets)``, 1-D of varying lengths (batch them
    with ``padded_batch``).

    The noise mask is T5's ``random_spans_noise_mask``: ``round(length *
    noise_density)`` noise tokens (at least 1, at most ``length - 1``) in
    ``round(noise / mean_span_length)`` spans (at least 1; at most one fewer than
    ``len(sentinel_ids)`` with ``final_sentinel``, else ``len(sentinel_ids)``), the
    noise and the kept tokens each split at random into that many non-empty spans and
    interleaved, kept tokens first. Span ``j`` becomes the single token
    ``sentinel_ids[j]`` in the input; the target is ``sentinel_ids[0]``, the tokens of
    span 0, ``sentinel_ids[1]``, the tokens of span 1, ..., then (``final_sentinel``, as
    the paper's Figure 2: "<X> for inviting <Y> last <Z>") ``sentinel_ids[spans]``, and
    ``eos_id``; the input also ends with ``eos_id``. Sequences shorter than 2 tokens
    are left whole (no span). Sentinels should be reserved ids that never occur in text
    (T5 uses the last 100 of its vocabulary). Pure TensorFlow ops; ``seed`` (an int, a
    scalar tensor or a pair) fixes the spans.
    """
    import tensorflow as tf

    sentinels = [int(s) for s in sentinel_ids]
    if len(set(sentinels)) != len(sentinels) or len(sentinels) < 1 + bool(final_sentinel):
        raise KerasdlError("sentinel_ids must be distinct ids, at least 2 with "
                           "final_sentinel (one per span and a final one)",
                           argument="sentinel_ids")
    if not 0 < noise_density < 1:
        raise KerasdlError(f"noise_density must lie in (0, 1), got {noise_density}",
                           argument="noise_density")
    if not mean_span_length >= 1:
        raise KerasdlError(f"mean_span_length must be at least 1, got {mean_span_length}",
                           argument="mean_span_length")
    max_spans = len(sentinels) - bool(final_sentinel)

    ids = tf.convert_to_tensor(ids)
    ids = tf.boolean_mask(ids, tf.not_equal(ids, tf.cast(pad_id, ids.dtype)))
    dtype = ids.dtype
    table = tf.constant(sentinels, dtype)
    eos = tf.constant([eos_id], dtype)
    length = tf.size(ids)
    noise_seed, kept_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed_pair(seed), 2))

    def corrupt():
        n = tf.cast(length, tf.float32)
        num_noise = tf.clip_by_value(tf.cast(tf.round(n * noise_density), tf.int32), 1,
                                     length - 1)
        num_kept = length - num_noise
        num_spans = tf.cast(tf.round(tf.cast(num_noise, tf.float32) / mean_span_length),
                            tf.int32)
        num_spans = tf.minimum(tf.maximum(num_spans, 1), max_spans)
        num_spans = tf.minimum(num_spans, tf.minimum(num_noise, num_kept))
        noise_lengths = _random_segmentation(num_noise, num_spans, noise_seed)
        kept_lengths = _random_segmentation(num_kept, num_spans, kept_seed)
        interleaved = tf.reshape(tf.stack([kept_lengths, noise_lengths], axis=1), [-1])
        starts = tf.cumsum(interleaved)[:-1]
        span_number = tf.cumsum(tf.math.unsorted_segment_sum(tf.ones_like(starts), starts,
                                                             length))
        noise = tf.equal(span_number % 2, 1)
        previous = tf.concat([[False], noise[:-1]], axis=0)
        first = noise & ~previous
        span = tf.maximum(tf.cumsum(tf.cast(first, tf.int32)) - 1, 0)
        sentinel = tf.gather(table, span)
        # Each position gives at most two tokens: its span's sentinel when it opens a
        # span, then (targets) its own token.
        inputs = tf.boolean_mask(tf.where(first, sentinel, ids), ~(noise & previous))
        pairs = tf.reshape(tf.stack([sentinel, ids], axis=1), [-1])
        keep = tf.reshape(tf.stack([first, noise], axis=1), [-1])
        targets = tf.boolean_mask(pairs, keep)
        return inputs, targets, num_spans

    def whole():
        return ids, tf.zeros([0], dtype), tf.constant(0, tf.int32)

    inputs, targets, spans = tf.cond(length >= 2, corrupt, whole)
    tail = [table[spans:spans + 1]] if final_sentinel else []
    return (tf.concat([inputs, eos], axis=0), tf.concat([targets, *tail, eos], axis=0))


# ------------------------------------------------------------------- MLM data and codec


def fit_mlm_codec(texts, tokenization="word", vocabulary_size=20_000, sequence_length=64):
    """A codec whose vocabulary is ``[PAD] [UNK] [MASK]`` and the most frequent tokens."""
    return fit_codec(texts, tokenization, vocabulary_size, sequence_length, reserved=RESERVED)


def check_mlm_codec(codec):
    if list(codec.vocabulary[:3]) != [PAD, UNK, MASK]:
        raise KerasdlError(f"a masked language model's vocabulary starts with "
                           f"{[PAD, UNK, MASK]}, this one with {codec.vocabulary[:3]}",
                           argument="codec")
    return codec


@dataclasses.dataclass
class MaskedTextData(TextData):
    """:class:`~kerasdl.data.text.TextData` whose pipelines yield ``(masked ids,
    targets)``, plus ``training_stream(first_epoch=0)``: the training split as one
    endless stream of epochs whose masks come from ``(seed, batch index)``, so that a run
    resumed at ``first_epoch`` sees what an uninterrupted run would."""

    training_stream: Callable | None = None
    mask_rate: float = 0.15

    def describe(self):
        return (super().describe() + f", {MASK} at {MASK_ID}; {100 * self.mask_rate:g}% of "
                "the real tokens chosen (80% [MASK], 10% random, 10% kept)")


def _line_splits(corpus, validation_fraction):
    """``{split: [non-empty lines]}`` of ``{split: text}``, validation carved off the end
    of train when the corpus has none."""
    lines = {split: [line.strip() for line in text.splitlines() if line.strip()]
             for split, text in corpus.items()}
    if "validation" not in lines and validation_fraction:
        train = lines["train"]
        cut = len(train) - max(1, round(validation_fraction * len(train)))
        lines["train"], lines["validation"] = train[:cut], train[cut:]
    return lines


def _sentence_splits(dataset, data_dir, validation_fraction, max_examples):
    """``({split: tf.data of strings}, {split: count}, source)`` for MLM."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from kerasdl.data.text import (_file_corpus, _prepared_builder, _tfds_corpus,
                                   classification_split_plan)

    path = os.path.expanduser(str(dataset))
    name = str(dataset).partition("#")[0]
    if path.endswith(".txt") or os.path.isfile(path):
        corpus, source = _file_corpus(path)
        lines, source = _line_splits(corpus, 0), source + ", one sentence a line"
    else:
        builder = _prepared_builder(name, data_dir)
        features = builder.info.features
        texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
        labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
        if len(texts) != 1:
            raise KerasdlError(f"Dataset {name!r} has no single text feature to pretrain on "
                               f"(features: {dict(features)})", argument="dataset")
        if not labels:  # whole texts (tiny_shakespeare): their lines
            corpus, source = _tfds_corpus(name, data_dir)
            lines, source = (_line_splits(corpus, validation_fraction),
                             source + ", one sentence a line")
        else:
            lines = None
    if lines is not None:
        if not lines.get("test"):
            raise KerasdlError(f"{dataset!r} gives no test sentences", argument="dataset")
        if max_examples is not None:
            lines = {k: v[: int(max_examples)] for k, v in lines.items()}
        raw = {k: tf.data.Dataset.from_tensor_slices(tf.constant(v, tf.string))
               for k, v in lines.items() if v}
        return raw, {k: len(v) for k, v in lines.items() if v}, source

    # A sentence-classification set: the splits load_text_classification uses, so that
    # pretraining reads exactly the sentences the classifier later trains on, never its
    # validation or test ones.
    text_key, label_key = texts[0], labels[0]
    plan, test_split = classification_split_plan(builder, name, label_key, validation_fraction,
                                                 max_examples)
    raw, counts = {}, {}
    for split, (base, lo, hi) in plan.items():
        raw[split] = builder.as_dataset(split=f"{base}[{lo}:{hi}]").map(
            lambda ex: ex[text_key])
        counts[split] = hi - lo
    return raw, counts, (f"TFDS {builder.name}:{builder.version} ({text_key}, labels "
                         f"ignored; test = its {test_split} split) from {builder.data_dir}")


def load_masked_language_modeling(dataset, *, tokenization="word", vocabulary_size=20_000,
                                  sequence_length=64, batch_size=64, validation_fraction=0.1,
                                  data_dir=None, max_examples=None, seed=0, codec=None,
                                  rate=0.15, padding="fixed"):
    """Sentences as ``(masked ids [batch, sequence_length], targets)`` for BERT's masked LM.

    ``dataset``: a TFDS sentence-classification set (``glue/sst2``, ``trec``: its
    sentences, labels ignored, split as :func:`~kerasdl.data.text.load_text_classification`
    splits them), a TFDS dataset of whole texts (``tiny_shakespeare``: its non-empty
    lines) or a text file (its lines, split 90/5/5). Sentences are padded or cut to
    ``sequence_length``; :func:`mask_tokens` then chooses ``rate`` of the real tokens of
    each (never padding, ``[UNK]`` or ``[MASK]``). Training batches get new masks every
    epoch (from ``seed``); validation and test masks are fixed per sentence (from
    :data:`EVALUATION_SEED` and its index), whatever the run's seed or batch size.
    ``padding="batch"`` cuts each masked batch's all-padding columns off
    (:func:`~kerasdl.data.text.trim_padding`): the same sentences and the same masks on
    fewer positions.
    ``codec`` (a saved run's) fixes the vocabulary, else one is fitted on the training
    split with :data:`RESERVED` tokens.
    """
    import tensorflow as tf

    check_positive_int(batch_size, "batch_size")
    check_choice(padding, PADDINGS, "padding")
    raw, counts, source = _sentence_splits(dataset, data_dir, validation_fraction,
                                           max_examples)
    if codec is None:
        codec = fit_mlm_codec(raw["train"], tokenization, vocabulary_size, sequence_length)
    check_mlm_codec(codec)
    layer, length, size = codec.layer(), codec.sequence_length, codec.vocabulary_size
    autotune = tf.data.AUTOTUNE

    def vectorize(texts):
        return tf.cast(layer(texts).to_tensor(default_value=0, shape=[None, length]), "int32")

    def mask(ids, seed_):
        return mask_tokens(ids, vocabulary_size=size, mask_id=MASK_ID,
                           special_ids=SPECIAL_IDS, rate=rate, seed=seed_)

    def trimmed(ds):
        # Masks are drawn on the full-length batch first, so both paddings see the same.
        return ds.map(trim_padding, num_parallel_calls=autotune) if padding == "batch" else ds

    def shuffled_batches():
        ds = raw["train"].shuffle(min(counts["train"], 100_000), seed=seed,
                                  reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(vectorize, num_parallel_calls=autotune)

    def training_stream(first_epoch=0):
        # Batch i of the endless stream is masked from (seed, i): new masks every epoch,
        # and a stream started at first_epoch continues an earlier one exactly.
        steps = -(-counts["train"] // batch_size)
        ds = shuffled_batches().repeat().enumerate()
        if first_epoch:
            ds = ds.skip(int(first_epoch) * steps)
        return trimmed(ds.map(lambda i, ids: mask(ids, fold_seed(seed, i)),
                              num_parallel_calls=autotune)).prefetch(autotune)

    # The finite training pipeline (for model.fit(data.train, epochs=...)): every
    # iteration draws new per-batch seeds.
    train = trimmed(tf.data.Dataset.zip(
        shuffled_batches(),
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)).map(
        mask, num_parallel_calls=autotune)).prefetch(autotune)

    def evaluation(split):
        if split not in raw:
            return None
        stream = {"validation": 1, "test": 2}[split]

        def one(i, text):
            ids = vectorize(text[None])[0]
            return mask(ids, fold_seed(EVALUATION_SEED, stream, i))

        return trimmed(raw[split].enumerate().map(one, num_parallel_calls=autotune)
                       .batch(batch_size)).cache().prefetch(autotune)

    return MaskedTextData(
        task="masked_language_modeling", train=train, validation=evaluation("validation"),
        test=evaluation("test"), num_examples=counts, source=source, codec=codec,
        batch_size=batch_size, training_stream=training_stream, mask_rate=rate,
        padding=padding)
