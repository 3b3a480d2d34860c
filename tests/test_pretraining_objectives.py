"""Pretraining objectives (``kerasdl.data.pretraining``): BERT's token masking and T5's
span corruption as tf.data ops, the ``masked_language_modeling`` task's pipelines, and a
masked-LM run starting a classifier run through ``init_from``.

Tolerances of the masking statistics are 5 binomial standard deviations: a correct
implementation fails one about once in two million runs, and every statistic is drawn
from a fixed seed, so each test gives the same answer every time."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from kerasdl.data.pretraining import (IGNORE, MASK, MASK_ID, SPECIAL_IDS, UNK_ID, mask_tokens,
                                      span_corruption)

TFDS = os.environ.get("TFDS_DATA_DIR", "")
needs_sst2 = pytest.mark.skipif(not os.path.isdir(os.path.join(TFDS, "glue", "sst2")),
                                reason="needs TFDS_DATA_DIR with the prepared glue/sst2")
VOCAB = 1000
SENTINELS = list(range(5000, 5100))
EOS = 1


def _batch(rows=4096, length=64, seed=0):
    """Token ids [rows, length] of ordinary tokens (>= 3), with [UNK]s sprinkled in and
    padded to random lengths (some rows all padding)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, VOCAB, size=(rows, length)).astype("int32")
    ids[rng.random(ids.shape) < 0.05] = UNK_ID
    lengths = rng.integers(0, length + 1, size=rows)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def _mask(ids, seed=7, **kwargs):
    x, y = mask_tokens(ids, vocabulary_size=VOCAB, mask_id=MASK_ID, special_ids=SPECIAL_IDS,
                       seed=seed, **kwargs)
    return x.numpy(), y.numpy()


def _within(count, n, p, sigmas=5.0):
    """``count`` successes of ``n`` draws is within ``sigmas`` binomial std of ``n p``."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# ----------------------------------------------------------------------------- masking


def test_mask_tokens_chooses_15_percent_of_real_tokens_and_splits_80_10_10():
    ids = _batch()
    x, y = _mask(ids)
    real = (ids != 0) & (ids != UNK_ID)
    chosen = y != IGNORE
    # BERT's count per sequence: max(1, round(0.15 n)) of its n real tokens (0 for none).
    n = real.sum(1)
    expected = np.where(n > 0, np.maximum(1, np.round(0.15 * n)), 0)
    np.testing.assert_array_equal(chosen.sum(1), expected)
    assert abs(chosen.sum() / real.sum() - 0.15) < 0.005
    assert not chosen[~real].any()  # padding and [UNK] never chosen
    np.testing.assert_array_equal(y[chosen], ids[chosen])  # targets: the original tokens
    assert (y[~chosen] == IGNORE).all()
    np.testing.assert_array_equal(x[~chosen], ids[~chosen])  # nothing else changes
    total = int(chosen.sum())
    masked = x[chosen] == MASK_ID
    kept = x[chosen] == ids[chosen]
    replaced = ~masked & ~kept
    # A random draw equals the original with probability 1 / (ordinary vocabulary).
    p_same = 0.1 / (VOCAB - len(SPECIAL_IDS))
    assert _within(int(masked.sum()), total, 0.8)
    assert _within(int(kept.sum()), total, 0.1 + p_same)
    assert _within(int(replaced.sum()), total, 0.1 - p_same)
    # Random replacements come from the ordinary vocabulary, uniformly (its two halves).
    drawn = x[chosen][replaced]
    assert ((drawn >= 3) & (drawn < VOCAB)).all()
    assert _within(int((drawn < 3 + (VOCAB - 3) // 2).sum()), len(drawn), 0.5)


def test_mask_tokens_chooses_positions_uniformly():
    """Every real position of equal-length rows is chosen about as often."""
    ids = np.random.default_rng(1).integers(3, VOCAB, size=(4000, 20)).astype("int32")
    _, y = _mask(ids, seed=3)
    per_position = (y != IGNORE).sum(0)  # 3 of 20 chosen per row: p = 0.15 each
    assert all(_within(int(c), 4000, 0.15) for c in per_position), per_position


def test_mask_tokens_is_a_function_of_its_seed():
    ids = _batch(rows=256)
    a, b, c = _mask(ids, seed=11), _mask(ids, seed=11), _mask(ids, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    # A pair seed and a tensor seed work too (as tf.data gives them).
    import tensorflow as tf

    x, y = mask_tokens(tf.constant(ids), vocabulary_size=VOCAB, special_ids=SPECIAL_IDS,
                       seed=tf.constant([11, 0], tf.int64))
    np.testing.assert_array_equal(y.numpy(), a[1])


def test_mask_tokens_runs_in_a_dataset_map():
    import tensorflow as tf

    ids = _batch(rows=64)
    ds = tf.data.Dataset.from_tensor_slices(ids).batch(16).enumerate().map(
        lambda i, x: mask_tokens(x, vocabulary_size=VOCAB, special_ids=SPECIAL_IDS, seed=i))
    ys = np.concatenate([y.numpy() for _, y in ds])
    assert ys.shape == ids.shape and (ys != IGNORE).any()
    np.testing.assert_array_equal(ys[ys != IGNORE], ids[ys != IGNORE])


# ---------------------------------------------------------------------- span corruption


def _reconstruct(inputs, targets):
    """The original sequence from T5's inputs and targets: each sentinel of the input
    stands for the target tokens that follow the same sentinel."""
    fills, current = {}, None
    for t in targets[:-1]:  # the end token last
        if t in SENTINELS:
            current = fills.setdefault(t, [])
        else:
            current.append(t)
    out = []
    for t in inputs[:-1]:
        out.extend(fills[t] if t in SENTINELS else [t])
    return out


@pytest.mark.parametrize("length", [2, 3, 17, 100, 1000])
def test_span_corruption_reconstructs_the_sequence(length):
    tokens = list(np.random.default_rng(length).integers(3, VOCAB, size=length))
    for seed in range(5):
        x, y = (t.numpy().tolist() for t in span_corruption(
            np.asarray(tokens + [0, 0], "int32"), sentinel_ids=SENTINELS, eos_id=EOS,
            seed=seed))
        assert x[-1] == EOS and y[-1] == EOS
        assert _reconstruct(x, y) == tokens
        used = [t for t in x if t in SENTINELS]
        # Sentinels unique, in order, each once in the targets, then the final one.
        assert used == SENTINELS[:len(used)] and len(used) >= 1
        assert [t for t in y if t in SENTINELS] == SENTINELS[:len(used) + 1]
        assert y[0] == SENTINELS[0]
        # Every kept token is in the input, in order.
        kept = [t for t in x[:-1] if t not in SENTINELS]
        assert len(kept) + sum(1 for t in y if t not in SENTINELS) - 1 == length
        it = iter(tokens)
        assert all(any(t == s for s in it) for t in kept)


def test_span_corruption_noise_fraction_and_span_lengths():
    tokens = np.arange(3, 2003, dtype="int32")  # 2,000 distinct tokens
    x, y = (t.numpy() for t in span_corruption(tokens, sentinel_ids=SENTINELS, eos_id=EOS,
                                               seed=4))
    noise = [t for t in y[:-1] if t not in SENTINELS]
    assert len(noise) == 300  # round(0.15 * 2000), as T5
    spans = len([t for t in x if t in SENTINELS])
    assert spans == 99  # round(300 / 3) = 100 spans, capped: 100 sentinels with the final
    x, y = (t.numpy() for t in span_corruption(tokens[:600], sentinel_ids=SENTINELS,
                                               eos_id=EOS, seed=5))
    spans = len([t for t in x if t in SENTINELS])
    assert spans == 30 and len(y) - spans - 2 == 90  # mean span length 3


def test_span_corruption_is_a_function_of_its_seed_and_runs_in_tf_data():
    import tensorflow as tf

    rows = np.random.default_rng(0).integers(3, VOCAB, size=(8, 40)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices(rows).enumerate().map(
        lambda i, ids: span_corruption(ids, sentinel_ids=SENTINELS, eos_id=EOS, seed=i))
    first = [(x.numpy().tolist(), y.numpy().tolist()) for x, y in ds]
    second = [(x.numpy().tolist(), y.numpy().tolist()) for x, y in ds]
    assert first == second
    assert len({tuple(x) for x, _ in first}) == len(first)
    one = span_corruption(rows[0], sentinel_ids=SENTINELS, eos_id=EOS, seed=99)
    assert one[0].numpy().tolist() != first[0][0]  # another seed, other spans


# ----------------------------------------------------------------- the MLM task's data


LINE = "the quick brown fox jumps over the lazy dog and runs away"  # 12 words


@pytest.fixture(scope="module")
def same_lines(tmp_path_factory):
    """A text file of one sentence repeated: every row holds the same tokens, so two
    batches mask alike exactly when they were drawn from the same seeds."""
    path = tmp_path_factory.mktemp("text") / "same.txt"
    path.write_text((LINE + "\n") * 400)
    return str(path)


def _chosen(batches):
    return np.concatenate([y.numpy() != IGNORE for _, y in batches])


def _same_rows(a, b):
    """The fraction of rows chosen alike (two random choices of 2 of 12 tokens agree
    with probability 1/66)."""
    return float(np.mean([np.array_equal(r, s) for r, s in zip(a, b)]))


def test_mlm_pipelines_mask_anew_each_epoch_and_fix_evaluation_masks(same_lines):
    from kerasdl.data.pretraining import load_masked_language_modeling

    codec = None

    def load(batch_size=32, seed=0):
        return load_masked_language_modeling(same_lines, sequence_length=16,
                                             batch_size=batch_size, seed=seed, codec=codec)

    data = load()
    codec = data.codec  # the same vocabulary, without fitting it again
    assert data.codec.vocabulary[:3] == ["", "[UNK]", MASK] and data.vocabulary_size == 14
    n = data.num_examples["train"]
    steps = -(-n // 32)
    stream = list(data.training_stream(0).take(2 * steps))
    epoch0, epoch1 = _chosen(stream[:steps]), _chosen(stream[steps:])
    assert len(epoch0) == len(epoch1) == n
    assert (epoch0.sum(1) == 2).mean() > 0.9  # round(0.15 * 12) of each full line
    assert _same_rows(epoch0, epoch1) < 0.2  # new masks in epoch 2
    for x, y in stream:
        assert not (y.numpy() != IGNORE)[x.numpy() == 0].any()  # never padding
    # Resuming at epoch 1 gives the uninterrupted stream's batches, and so does a new
    # pipeline with the same seed; another seed masks otherwise.
    for a, b in zip(load().training_stream(1).take(steps), stream[steps:]):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert _same_rows(_chosen(load(seed=1).training_stream(0).take(steps)), epoch0) < 0.2
    # The finite training pipeline also masks anew at every pass.
    assert _same_rows(_chosen(data.train), _chosen(data.train)) < 0.2
    # Validation and test: the same masks every pass, whatever the batch size or seed,
    # and each sentence its own.
    again = load(batch_size=7, seed=3)
    for split in ("validation", "test"):
        a, b = _chosen(getattr(data, split)), _chosen(getattr(again, split))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, _chosen(getattr(data, split)))
        assert len(a) > 10 and _same_rows(a[1:], a[:-1]) < 0.3


def test_mlm_batch_padding_keeps_the_sentences_and_masks_of_fixed_padding(tmp_path):
    from kerasdl.data.pretraining import load_masked_language_modeling

    rng = np.random.default_rng(0)
    words = "the cat sat on a mat and then ran off to see the dog".split()
    path = tmp_path / "lines.txt"
    path.write_text("".join(" ".join(rng.choice(words, rng.integers(2, 15))) + "\n"
                            for _ in range(400)))
    fixed = load_masked_language_modeling(str(path), sequence_length=16, batch_size=8)
    batch = load_masked_language_modeling(str(path), sequence_length=16, batch_size=8,
                                          codec=fixed.codec, padding="batch")
    pairs = [(a, b) for split in ("validation", "test")
             for a, b in zip(getattr(fixed, split), getattr(batch, split))]
    pairs += list(zip(fixed.training_stream(1).take(6), batch.training_stream(1).take(6)))
    widths = set()
    for (xf, yf), (xb, yb) in pairs:
        w = xb.shape[1]
        np.testing.assert_array_equal(xb.numpy(), xf.numpy()[:, :w])
        np.testing.assert_array_equal(yb.numpy(), yf.numpy()[:, :w])  # the same masks
        assert not xf.numpy()[:, w:].any() and xb.numpy()[:, -1].any()
        widths.add(w)
    assert len(widths) > 1 and "padded to its longest" in batch.describe()


def test_mlm_data_from_tiny_shakespeare_are_its_lines():
    if not os.path.isdir(os.path.join(TFDS, "tiny_shakespeare")):
        pytest.skip("needs TFDS_DATA_DIR with the prepared tiny_shakespeare")
    from kerasdl.data.pretraining import load_masked_language_modeling

    data = load_masked_language_modeling("tiny_shakespeare", vocabulary_size=200,
                                         sequence_length=8, batch_size=4, max_examples=8)
    assert data.num_examples == {"train": 8, "validation": 8, "test": 8}
    x, y = next(iter(data.test))
    original = np.where(y.numpy() != IGNORE, y.numpy(), x.numpy())
    first_lines = {data.codec.decode(row) for x, y in data.training_stream().take(2)
                   for row in np.where(y != IGNORE, y, x)}  # one epoch of 8 lines
    assert original.shape == (4, 8) and "first citizen :" in first_lines


# ------------------------------------------------------- kerasdl train and init_from


@needs_sst2
@pytest.mark.slow
def test_mlm_run_initialises_the_classifier(tmp_path):
    import keras

    from kerasdl.train import evaluate, get_recipe, train
    from kerasdl.train.runs import load_run

    tiny = {"layers": 1, "hidden": 16, "heads": 2, "ff_dim": 32, "max_positions": 16}
    fast = {"epochs": 1, "batch_size": 32, "optimizer": "sgd", "schedule": "constant",
            "gradient_clipping": "none", "learning_rate": 0.1}
    mlm_recipe = dataclasses.replace(get_recipe("bert_mini_mlm"), sequence_length=16,
                                     vocabulary_size=0, **fast)
    mlm_dir = tmp_path / "mlm"
    record = train("bert_mini_mlm", "glue/sst2", output_dir=str(mlm_dir), max_examples=64,
                   recipe=mlm_recipe, model_kwargs=tiny, verbose=0)
    assert record["task"] == "masked_language_modeling"
    nats = record["test_nats_per_masked_token"]
    assert 0 < nats < 10 and record["test_masked_tokens"] > 0
    assert record["test_perplexity"] == pytest.approx(math.exp(nats))
    assert 0 <= record["test_masked_token_accuracy"] <= 1
    with open(mlm_dir / "history.json") as f:
        assert "accuracy" in json.load(f)  # the masked-token accuracy, logged per epoch
    pretrained, _ = load_run(mlm_dir)  # reloads with its compiled masked accuracy
    assert isinstance(pretrained.output, keras.KerasTensor)  # one output: MLM logits
    # Evaluated later (saved vocabulary, another batch size): the very same test masks.
    again = evaluate(mlm_dir, max_examples=64)
    assert again["test_nats_per_masked_token"] == pytest.approx(nats, rel=1e-5)
    assert again["test_masked_tokens"] == record["test_masked_tokens"]
    assert again["test_masked_token_accuracy"] == record["test_masked_token_accuracy"]

    captured = {}

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            for name in ("word_embeddings", "encoder1_self_attention", "encoder1_ffn_outer",
                         "pooler"):
                captured[name] = [w.copy() for w in self.model.get_layer(name).get_weights()]

    classifier_recipe = dataclasses.replace(get_recipe("bert_mini"), **fast)
    record = train("bert_mini", "glue/sst2", output_dir=str(tmp_path / "classifier"),
                   max_examples=64, recipe=classifier_recipe, init_from=str(mlm_dir),
                   verbose=0, callbacks=[Capture()])
    assert record["initialized_from_model"] == "bert_mini_mlm"
    assert record["model_kwargs"] == tiny  # the pretrained architecture
    assert "encoder1_self_attention" in record["layers_initialized"]
    for name in ("word_embeddings", "encoder1_self_attention", "encoder1_ffn_outer"):
        source = pretrained.get_layer(name).get_weights()
        assert len(source) == len(captured[name]) > 0
        for a, b in zip(source, captured[name]):
            np.testing.assert_array_equal(a, b)
    assert "pooler" not in {layer.name for layer in pretrained.layers}  # new in the classifier
    # The classifier encodes its sentences with the pretraining vocabulary.
    with open(mlm_dir / "vocabulary.json") as f, \
            open(tmp_path / "classifier" / "vocabulary.json") as g:
        assert json.load(f)["text"] == json.load(g)["text"]
