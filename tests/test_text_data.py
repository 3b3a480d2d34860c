"""Text data for the sequence tasks: vocabularies and codecs, TFDS sentence
classification, language-model windows, Multi30k translation pairs, and `kerasdl train`
/ `evaluate` dispatching on a text model's task with its saved vocabulary."""

import json
import os

import numpy as np
import pytest

from kerasdl.data.text import (END_ID, START_ID, TextCodec, fit_codec, load_codecs,
                               load_language_modeling, load_text_classification,
                               load_translation, save_codecs)
from kerasdl.errors import DataNotFoundError, KerasdlError
from tests.markers import needs_multi30k

TFDS = os.environ.get("TFDS_DATA_DIR", "")
needs_tfds = pytest.mark.skipif(
    not os.path.isdir(os.path.join(TFDS, "glue")), reason="needs the offline TFDS text data")


def test_word_codec_round_trip_and_frequency_order():
    codec = fit_codec(["The cat sat.", "the cat ran!", "a dog"], "word", 0, 8)
    assert codec.vocabulary[:2] == ["", "[UNK]"]
    # Most frequent first: "the" and "cat" twice; punctuation split off as tokens.
    assert set(codec.vocabulary[2:4]) == {"the", "cat"}
    assert "." in codec.vocabulary and "!" in codec.vocabulary
    ids = codec.encode(["The cat ran."])[0]
    assert codec.decode(ids) == "the cat ran ."
    assert codec.encode(["zebra"])[0] == [1]  # out of vocabulary


def test_character_codec_keeps_every_character():
    codec = fit_codec(["ab\nba c"], "character", 0, 5)
    text = "c\nab"
    assert codec.decode(codec.encode([text])[0]) == text


def test_vocabulary_size_caps_the_vocabulary_and_codecs_round_trip(tmp_path):
    codec = fit_codec(["a a a b b c d e f"], "word", 4, 3)
    assert codec.vocabulary == ["", "[UNK]", "a", "b"]
    save_codecs(tmp_path, text=codec)
    again = load_codecs(tmp_path)["text"]
    assert again.to_dict() == codec.to_dict()
    assert json.loads((tmp_path / "vocabulary.json").read_text())["text"]["sequence_length"] == 3
    with pytest.raises(KerasdlError, match="tokenization"):
        TextCodec("bytes", ["", "[UNK]"], 3)


@needs_tfds
def test_batch_padding_cuts_only_columns_that_are_padding_everywhere():
    fixed = load_text_classification("glue/sst2", sequence_length=32, batch_size=16,
                                     vocabulary_size=500, max_examples=200)
    batch = load_text_classification("glue/sst2", sequence_length=32, batch_size=16,
                                     codec=fixed.codec, max_examples=200, padding="batch")
    widths = set()
    for (xf, yf), (xb, yb) in zip(fixed.test, batch.test):
        xf, xb, w = xf.numpy(), xb.numpy(), xb.shape[1]
        np.testing.assert_array_equal(xb, xf[:, :w])
        np.testing.assert_array_equal(yb.numpy(), yf.numpy())
        assert not xf[:, w:].any() and xb[:, -1].any()
        widths.add(w)
    assert len(widths) > 1
    for a, b in zip(fixed.arrays("test"), batch.arrays("test")):
        np.testing.assert_array_equal(a, b)  # back at the full length
    with pytest.raises(KerasdlError, match="padding"):
        load_text_classification("glue/sst2", max_examples=16, padding="ragged")


def test_a_model_that_masks_padding_gives_the_same_outputs_on_trimmed_batches():
    """What per-batch padding relies on: BERT's attention mask and first-token pooling
    make the all-padding columns inert."""
    import kerasdl
    from kerasdl.data.text import trim_padding

    model = kerasdl.create_model("bert_mini", vocabulary_size=50, num_classes=2, layers=2,
                                 hidden=16, heads=2, ff_dim=32, max_positions=16)
    ids = np.random.default_rng(0).integers(2, 50, (4, 16)).astype("int32")
    for row, length in enumerate((3, 7, 5, 2)):
        ids[row, length:] = 0
    (trimmed,) = trim_padding(ids)
    assert trimmed.shape == (4, 7)
    np.testing.assert_allclose(model(trimmed).numpy(), model(ids).numpy(), atol=1e-5)
    assert trim_padding(np.zeros((2, 5), "int32"))[0].shape == (2, 1)


@needs_tfds
def test_sst2_uses_the_labelled_validation_split_as_test():
    data = load_text_classification("glue/sst2", sequence_length=16, batch_size=8,
                                    max_examples=64)
    assert data.class_names == ["negative", "positive"]
    assert "test = its validation split" in data.source
    x, y = next(iter(data.test))
    assert x.shape == (8, 16) and x.dtype == "int32"
    assert set(np.unique(y.numpy())) <= {0, 1}  # GLUE's test labels (-1) never appear
    # The validation split is carved from the end of train, disjoint from it.
    assert data.num_examples == {"train": 64, "validation": 64, "test": 64}


@needs_tfds
def test_trec_label_choice():
    coarse = load_text_classification("trec", max_examples=16, batch_size=4)
    fine = load_text_classification("trec#label-fine", max_examples=16, batch_size=4)
    assert len(coarse.class_names) == 6 and len(fine.class_names) == 47
    with pytest.raises(KerasdlError, match="no class label"):
        load_text_classification("trec#label-nope", max_examples=4)


@needs_tfds
def test_language_model_windows_predict_the_next_character():
    data = load_language_modeling("tiny_shakespeare", sequence_length=20, batch_size=4,
                                  max_examples=8)
    x, y = next(iter(data.test))
    x, y = x.numpy(), y.numpy()
    assert x.shape == y.shape == (4, 20)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one
    assert data.codec.tokenization == "character" and data.codec.vocabulary_size == 67


def test_language_model_from_a_text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("to be or not to be, that is the question. " * 100)
    data = load_language_modeling(str(path), sequence_length=10, batch_size=2)
    assert "first 90% train" in data.source
    x, y = next(iter(data.train))
    assert x.shape == (2, 10)
    with pytest.raises(DataNotFoundError):
        load_language_modeling(str(tmp_path / "missing.txt"))
    (tmp_path / "short.txt").write_text("too short")
    with pytest.raises(KerasdlError, match="characters"):
        load_language_modeling(str(tmp_path / "short.txt"))


@needs_multi30k
def test_multi30k_pairs_have_start_and_end_and_shifted_targets():
    data = load_translation("multi30k", sequence_length=12, batch_size=4, max_examples=200)
    (src, tgt_in), tgt_out = next(iter(data.test))
    tgt_in, tgt_out = tgt_in.numpy(), tgt_out.numpy()
    assert (tgt_in[:, 0] == START_ID).all()
    np.testing.assert_array_equal(tgt_in[:, 1:], tgt_out[:, :-1])
    assert all(END_ID in row for row in tgt_out)
    source, reference = data.raw_test[0]
    assert data.target_codec.decode(tgt_out[0]) == data.target_codec.decode(
        data.target_codec.encode([reference])[0][:11])
    assert data.codec.decode(src[0]).split()[0] == source.lower().split()[0]
    with pytest.raises(KerasdlError, match="dataset"):
        load_translation("multi30k:de-xx")


@needs_multi30k
def test_multi30k_batches_are_padded_to_their_longest_sentence():
    data = load_translation("multi30k", sequence_length=12, batch_size=4, max_examples=200)
    widths = set()
    for (src, tgt_in), tgt_out in data.test:
        src, tgt_in = src.numpy(), tgt_in.numpy()
        assert 1 <= src.shape[1] <= 12 and tgt_in.shape == tgt_out.shape
        assert tgt_in.shape[1] <= 12
        # No all-padding column: each batch is as wide as its longest sentence.
        assert (src[:, -1] != 0).any() and (tgt_out.numpy()[:, -1] != 0).any()
        widths.add((src.shape[1], tgt_in.shape[1]))
    assert len(widths) > 1
    (src, tgt_in), tgt_out = data.arrays("test")
    assert src.shape == tgt_in.shape == tgt_out.shape == (200, 12)
    assert "padded to its longest" in data.describe()


@needs_tfds
def test_train_and_evaluate_a_text_classifier_with_its_saved_vocabulary(tmp_path):
    from kerasdl.train import evaluate, get_recipe, load_run, train

    recipe = get_recipe("gru_classifier").replace(epochs=1, sequence_length=12,
                                                  vocabulary_size=300, batch_size=32)
    run = tmp_path / "run"
    record = train("gru_classifier", "glue/sst2", output_dir=run, recipe=recipe,
                   max_examples=128, model_kwargs={"units": 8, "embedding_dim": 8},
                   verbose=0)
    assert record["task"] == "sequence_classification"
    assert record["vocabulary_size"] == 300 and record["sequence_length"] == 12
    codec = load_codecs(run)["text"]
    assert codec.vocabulary_size == 300
    model, _ = load_run(run)
    assert model.input_shape == (None, 12)
    result = evaluate(run, max_examples=64)
    # Evaluated with the saved vocabulary: the same predictions as encoding by hand.
    assert result["test_examples"] == 64
    assert 0.0 <= result["test_accuracy"] <= 1.0


@needs_tfds
def test_unknown_or_non_text_datasets_are_clear_errors():
    with pytest.raises(KerasdlError, match="not a text-classification dataset"):
        load_text_classification("mnist", max_examples=4)


@needs_multi30k
def test_a_translator_gives_the_same_logits_on_per_batch_and_fixed_padding():
    """The masks (GRU, attention, loss) make the extra padding of fixed batches inert."""
    import keras

    import kerasdl

    data = load_translation("multi30k", vocabulary_size=300, sequence_length=40,
                            batch_size=8, max_examples=64)
    (source, target_in), target_out = next(iter(data.test))
    source, target_in = source.numpy(), target_in.numpy()
    assert source.shape[1] < 40 and target_in.shape[1] < 40
    keras.utils.set_random_seed(0)
    model = kerasdl.create_model("seq2seq_bahdanau", vocabulary_size=data.vocabulary_size,
                                 target_vocabulary_size=data.target_codec.vocabulary_size,
                                 embedding_dim=16, units=12)
    padded = [np.pad(a, [(0, 0), (0, 40 - a.shape[1])]) for a in (source, target_in)]
    narrow = model([source, target_in])["logits"].numpy()
    wide = model(padded)["logits"].numpy()[:, :target_in.shape[1]]
    real = target_out.numpy() > 0
    np.testing.assert_allclose(narrow[real], wide[real], atol=1e-6)
