"""Translation workflow: detokenisation, translating with a trained copy model (target =
source, so the right answer is known), beam width 1 against greedy search, the fast step
function against the model itself, attention maps, and BLEU of a tiny Multi30k run."""


import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.data.text import END, START, START_ID, END_ID, fit_codec
from kerasdl.decoding import greedy_decode, seq2seq_step_fn
from kerasdl.errors import KerasdlError
from tests.markers import needs_multi30k
from kerasdl.translation import (_CachedSeq2SeqStep, _PaddedModel, attention_map, detokenize,
                                 evaluate_bleu, translate)


LENGTH = 12
SENTENCES = [
    "A man's dog runs in the park.",
    "Two women, in red, sing.",
    "A boy in a t-shirt jumps.",
    "The girls' cat sleeps.",
    "A dog jumps in the water!",
    "Two men sing in the park.",
]
# What a perfect copy gives back: lower-cased, tokenised, then detokenised.
EXPECTED = [
    "a man's dog runs in the park.",
    "two women, in red, sing.",
    "a boy in a t-shirt jumps.",
    "the girls' cat sleeps.",
    "a dog jumps in the water!",
    "two men sing in the park.",
]


@pytest.mark.parametrize("tokens, text", [
    ("a dog .", "a dog."),
    ("a man ' s t - shirt , red", "a man's t-shirt, red"),
    ("it isn ' t here ; they ' re there ?", "it isn't here; they're there?"),
    ("the dogs ' toys", "the dogs' toys"),
    ("l ' homme", "l'homme"),
    ("( 3 . 5 ) or 1 , 000 dogs", "(3.5) or 1,000 dogs"),
    ('he said " hi there " and left', 'he said "hi there" and left'),
    ("black - and - white dog - a dog", "black-and-white dog-a dog"),
    ("a dash - ", "a dash -"),
    ("", ""),
])
def test_detokenize(tokens, text):
    assert detokenize(tokens) == text
    assert detokenize(tokens.split()) == text


def test_detokenize_rejects_other_types():
    with pytest.raises(KerasdlError) as info:
        detokenize(3)
    assert info.value.argument == "text"


@pytest.fixture(scope="module")
def copy_model():
    """A tiny ``seq2seq_luong`` trained until it copies the six sentences."""
    keras.utils.set_random_seed(0)
    source = fit_codec(SENTENCES, "word", 0, LENGTH)
    target = fit_codec(SENTENCES, "word", 0, LENGTH, reserved=(START, END))
    model = kerasdl.create_model("seq2seq_luong", vocabulary_size=source.vocabulary_size,
                                 target_vocabulary_size=target.vocabulary_size,
                                 embedding_dim=16, units=32, dropout=0.0,
                                 sequence_length=LENGTH)
    x = np.zeros((len(SENTENCES), LENGTH), "int32")
    full = np.zeros((len(SENTENCES), LENGTH + 1), "int32")
    for i, (s, t) in enumerate(zip(source.encode(SENTENCES), target.encode(SENTENCES))):
        x[i, :len(s)] = s
        row = [START_ID, *t, END_ID]
        full[i, :len(row)] = row
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True, ignore_class=0)})
    for _ in range(10):
        model.fit([x, full[:, :-1]], {"logits": full[:, 1:]}, epochs=30, batch_size=6,
                  verbose=0)
        logits = model([x, full[:, :-1]], training=False)["logits"]
        predicted = keras.ops.convert_to_numpy(logits).argmax(-1)
        if ((predicted == full[:, 1:]) | (full[:, 1:] == 0)).all():
            break
    return model, source, target, x


def test_greedy_translation_copies_and_detokenises(copy_model):
    model, source, target, _ = copy_model
    assert translate(model, source, target, SENTENCES, batch_size=4) == EXPECTED


def test_beam_width_one_is_greedy_and_wider_beams_also_copy(copy_model):
    model, source, target, x = copy_model
    # Greedy search with the generic step function on the whole (padded) model.
    step = seq2seq_step_fn(_PaddedModel(model, LENGTH), x)
    ids = greedy_decode(step, np.full(len(x), START_ID), LENGTH + 1, END_ID)
    generic = [detokenize(target.decode(row)) for row in ids]
    assert translate(model, source, target, SENTENCES, beam_width=1) == generic == EXPECTED
    assert translate(model, source, target, SENTENCES, beam_width=3) == EXPECTED
    # Unknown words become [UNK]; an empty sentence gives a (possibly empty) string.
    out = translate(model, source, target, ["A zebra runs.", ""], beam_width=2)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)


@pytest.mark.parametrize("name, length", [("seq2seq_bahdanau", 9), ("seq2seq_luong", 9),
                                          ("seq2seq_luong_dot", 9), ("seq2seq_bahdanau", None)])
def test_cached_step_gives_the_models_logits(name, length):
    keras.utils.set_random_seed(1)
    model = kerasdl.create_model(name, vocabulary_size=30, target_vocabulary_size=25,
                                 embedding_dim=8, units=6, sequence_length=length)
    rng = np.random.default_rng(0)
    source = rng.integers(1, 30, (3, 9)).astype("int32")
    source[0, 4:] = 0  # padded sources: the attention must ignore the padding
    source[1, 7:] = 0
    prefixes = np.concatenate([np.full((8, 1), START_ID), rng.integers(4, 25, (8, 6))], 1)
    rows = rng.integers(0, len(source), 8)
    padded = prefixes if length is None else np.pad(prefixes, ((0, 0), (0, length - 7)))
    full = keras.ops.convert_to_numpy(model([source[rows], padded], training=False)["logits"])
    step = _CachedSeq2SeqStep(model, source)
    for t in range(1, 8):  # one token per call, as the searches do: states come from the cache
        np.testing.assert_allclose(step(prefixes[:, :t], rows), full[:, t - 1], atol=1e-4)
    fresh = _CachedSeq2SeqStep(model, source)  # prefixes never seen: run from the start
    np.testing.assert_allclose(fresh(prefixes, rows), full[:, 6], atol=1e-4)


class _OpaqueModel:
    """The copy model behind a plain callable: translate() cannot see its layers and
    falls back to the generic step function."""

    def __init__(self, model):
        self.inputs, self._model = model.inputs, model

    def __call__(self, inputs, training=False):
        return self._model(inputs, training=training)


def test_generic_step_function_gives_the_same_translations(copy_model):
    model, source, target, _ = copy_model
    opaque = _OpaqueModel(model)
    assert translate(opaque, source, target, SENTENCES[:3], beam_width=2) == EXPECTED[:3]


def test_attention_map_shapes(copy_model):
    model, source, target, _ = copy_model
    src, out, weights = attention_map(model, source, target, SENTENCES[0])
    assert src == ["a", "man", "'", "s", "dog", "runs", "in", "the", "park", "."]
    assert detokenize(out) == EXPECTED[0]
    assert weights.shape == (len(out), len(src))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    assert (weights >= 0).all()


@pytest.mark.parametrize("kwargs, argument", [
    ({"sentences": "one sentence"}, "sentences"),
    ({"sentences": ["ok", 3]}, "sentences"),
    ({"beam_width": 0}, "beam_width"),
    ({"batch_size": 0}, "batch_size"),
    ({"max_length": LENGTH + 2}, "max_length"),
    ({"max_length": 1}, "max_length"),
    ({"length_penalty": -1.0}, "length_penalty"),
    ({"target_codec": "nope"}, "target_codec"),
])
def test_bad_arguments_name_themselves(copy_model, kwargs, argument):
    model, source, target, _ = copy_model
    call = {"model": model, "source_codec": source, "target_codec": target,
            "sentences": SENTENCES[:1], **kwargs}
    with pytest.raises(KerasdlError) as info:
        translate(call.pop("model"), call.pop("source_codec"), call.pop("target_codec"),
                  call.pop("sentences"), **call)
    assert info.value.argument == argument


def test_source_codec_must_be_a_codec(copy_model):
    model, source, target, _ = copy_model
    with pytest.raises(KerasdlError) as info:
        translate(model, None, target, SENTENCES)
    assert info.value.argument == "source_codec"
    # A target codec without start and end tokens cannot end a translation.
    with pytest.raises(KerasdlError) as info:
        translate(model, source, source, SENTENCES)
    assert info.value.argument == "target_codec"


@needs_multi30k
def test_evaluate_bleu_on_a_tiny_run(tmp_path):
    from kerasdl.train import get_recipe, train

    recipe = get_recipe("seq2seq_luong").replace(epochs=1, vocabulary_size=200,
                                                 sequence_length=12)
    train("seq2seq_luong", "multi30k", output_dir=tmp_path, recipe=recipe, max_examples=64,
          model_kwargs={"units": 8, "embedding_dim": 8}, verbose=0)
    results = evaluate_bleu(tmp_path, beam_widths=(1, 2), max_examples=8)
    assert sorted(results) == [1, 2]
    for k, r in results.items():
        assert 0.0 <= r["bleu"] <= 100.0
        assert "tok:13a" in r["signature"] and "case:lc" in r["signature"]
        assert r["sentences"] == 8 and len(r["translations"]) == 8
        assert r["references"][0].startswith("A man in an orange hat")
        assert r["seconds"] > 0 and r["beam_width"] == k
    with pytest.raises(KerasdlError) as info:
        evaluate_bleu(tmp_path, beam_widths=(0,))
    assert info.value.argument == "beam_widths"
