"""The Transformer family (BERT, GPT-2, T5, ViT, the original Transformer) beyond the
model contract: reference counts against hand formulas written here from each paper's
sizes, tied output layers that really share one variable, causal and padding masks, T5's
relative position bias (its buckets and where its tables live) and ViT's patch sequence.

Only tiny configurations are built here; the contract builds each reference
configuration once and checks ``count_params()`` against the registry's count, which
these tests check against the formulas.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.errors import KerasdlError
from kerasdl.layers.positions import SinusoidalPositionEncoding, relative_position_bucket
from kerasdl.models.transformer.layers import RMSNorm


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(7)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _reference(name):
    """The registry's single reference count of ``name``."""
    counts = list(kerasdl.model_info(name).reference_params.values())
    assert len(counts) == 1
    return counts[0]


# ------------------------------------------------------------------- hand formulas


def layer_norm(d):
    return 2 * d  # gamma and beta


def attention(d, bias=True):
    return 4 * (d * d + (d if bias else 0))  # query, key, value, output


def ffn(d, f, bias=True):
    return d * f + f * d + ((f + d) if bias else 0)


def bert_formula(vocab, layers, d, ff, positions, types, head="none", classes=2):
    embeddings = vocab * d + positions * d + types * d + layer_norm(d)
    layer = attention(d) + layer_norm(d) + ffn(d, ff) + layer_norm(d)
    pooler = d * d + d
    total = embeddings + layers * layer + pooler
    if head == "classifier":
        total += d * classes + classes
    if head == "pretraining":
        # MLM transform Dense + LayerNorm, output bias (decoder tied), NSP Dense(2)
        total += (d * d + d) + layer_norm(d) + vocab + (d * 2 + 2)
    return total


def gpt_formula(vocab, layers, d, ff, positions):
    block = layer_norm(d) + attention(d) + layer_norm(d) + ffn(d, ff)
    return vocab * d + positions * d + layers * block + layer_norm(d)  # LM head tied


def t5_formula(vocab, layers, d, heads, key_dim, ff, buckets=32, target_vocab=None):
    inner = heads * key_dim
    attn = 4 * d * inner  # no biases
    rms = d  # scale only
    encoder_layer = rms + attn + rms + 2 * d * ff
    decoder_layer = rms + attn + rms + attn + rms + 2 * d * ff
    bias_tables = 2 * buckets * heads  # first encoder layer and first decoder layer
    embeddings = vocab * d + (target_vocab * d if target_vocab else 0)
    return embeddings + layers * (encoder_layer + decoder_layer) + bias_tables + 2 * rms


def vit_formula(image, patch, layers, d, heads, mlp, classes, channels=3):
    patches = (image // patch) ** 2
    embedding = patch * patch * channels * d + d  # Conv2D with bias
    tokens = d + (patches + 1) * d  # class token, positions
    block = layer_norm(d) + attention(d) + layer_norm(d) + ffn(d, mlp)
    return embedding + tokens + layers * block + layer_norm(d) + d * classes + classes


def transformer_formula(vocab, layers, d, ff, target_vocab=None):
    encoder_layer = attention(d) + layer_norm(d) + ffn(d, ff) + layer_norm(d)
    decoder_layer = 2 * attention(d) + 3 * layer_norm(d) + ffn(d, ff)
    embeddings = vocab * d + (target_vocab * d if target_vocab else 0)
    return embeddings + layers * (encoder_layer + decoder_layer)


def test_reference_counts_equal_hand_formulas():
    """Each registered reference count equals the formula from the paper's sizes, and
    the formulas give the published counts (the contract checks count_params())."""
    assert bert_formula(30_522, 12, 768, 3072, 512, 2) == 109_482_240
    assert _reference("bert_base") == 109_482_240
    assert kerasdl.model_info("bert_base").reference_kwargs == {"head": "none"}
    # HF BertForPreTraining: the same backbone plus the MLM and NSP heads.
    assert bert_formula(30_522, 12, 768, 3072, 512, 2, head="pretraining") == 110_106_428
    assert _reference("bert_mini") == bert_formula(20_000, 4, 256, 1024, 512, 2,
                                                   head="classifier", classes=2)

    assert gpt_formula(50_257, 12, 768, 3072, 1024) == 124_439_808
    assert _reference("gpt2") == 124_439_808
    assert _reference("gpt_char_small") == gpt_formula(67, 4, 128, 512, 128)

    assert t5_formula(32_128, 6, 512, 8, 64, 2048) == 60_506_624
    assert _reference("t5_small") == 60_506_624
    assert _reference("t5_tiny") == t5_formula(10_000, 4, 256, 4, 64, 1024)

    assert vit_formula(224, 16, 12, 768, 12, 3072, 1000) == 86_567_656
    assert _reference("vit_b16") == 86_567_656
    assert _reference("vit_cifar") == vit_formula(32, 4, 7, 256, 4, 512, 10)

    assert transformer_formula(37_000, 6, 512, 2048) == 63_082_496
    assert _reference("transformer_base") == 63_082_496
    assert _reference("transformer_small") == transformer_formula(10_000, 3, 256, 512)


TINY_BERT = dict(vocabulary_size=23, layers=2, hidden=16, heads=2, ff_dim=32,
                 max_positions=12)


@pytest.mark.parametrize("head", ["none", "classifier", "pretraining"])
def test_bert_heads_count_and_outputs(head):
    model = kerasdl.create_model("bert_base", head=head, num_classes=3, **TINY_BERT)
    assert model.count_params() == bert_formula(23, 2, 16, 32, 12, 2, head=head, classes=3)
    tokens = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], "int32")
    if head == "pretraining":  # takes segment ids by default: NSP reads two segments
        assert [t.name for t in model.inputs] == ["tokens", "segments"]
        out = model([tokens, np.array([[0, 0, 1, 1], [0, 1, 1, 1]], "int32")])
        assert _np(out["mlm_logits"]).shape == (2, 4, 23)
        assert _np(out["nsp_logits"]).shape == (2, 2)
    elif head == "none":
        out = model(tokens)
        assert _np(out["sequence_output"]).shape == (2, 4, 16)
        assert _np(out["pooled_output"]).shape == (2, 16)
    else:
        assert _np(model(tokens)).shape == (2, 3)


def test_small_models_count_as_their_formulas():
    """The formulas hold for other sizes and both embedding arrangements."""
    gpt = kerasdl.create_model("gpt2", vocabulary_size=19, layers=2, hidden=12, heads=3,
                               ff_dim=20, max_positions=9)
    assert gpt.count_params() == gpt_formula(19, 2, 12, 20, 9)
    shared = kerasdl.create_model("t5_small", vocabulary_size=21, layers=2, d_model=16,
                                  heads=2, key_dim=6, ff_dim=24, num_buckets=8)
    assert shared.count_params() == t5_formula(21, 2, 16, 2, 6, 24, buckets=8)
    separate = kerasdl.create_model("t5_small", vocabulary_size=21, target_vocabulary_size=13,
                                    layers=2, d_model=16, heads=2, key_dim=6, ff_dim=24,
                                    num_buckets=8)
    assert separate.count_params() == t5_formula(21, 2, 16, 2, 6, 24, buckets=8,
                                                 target_vocab=13)
    vit = kerasdl.create_model("vit_b16", input_shape=(16, 16, 3), num_classes=5,
                               patch_size=4, hidden=16, layers=2, heads=2, mlp_dim=24)
    assert vit.count_params() == vit_formula(16, 4, 2, 16, 2, 24, 5)
    for target in (None, 11):
        model = kerasdl.create_model("transformer_base", vocabulary_size=21,
                                     target_vocabulary_size=target, layers=2, d_model=16,
                                     heads=2, ff_dim=24)
        assert model.count_params() == transformer_formula(21, 2, 16, 24, target)


# -------------------------------------------------------------------- tied weights


def _vocabulary_variables(model, vocabulary):
    return [v for v in model.weights if vocabulary in tuple(v.shape) and len(v.shape) == 2]


def test_gpt_output_layer_is_the_token_embedding():
    model = kerasdl.create_model("gpt2", vocabulary_size=29, layers=2, hidden=16, heads=2,
                                 ff_dim=32, max_positions=10, dropout=0.0)
    tied = _vocabulary_variables(model, 29)
    assert [v.path for v in tied] == ["token_embeddings/embeddings"]
    tokens = np.random.default_rng(0).integers(0, 29, size=(2, 7)).astype("int32")
    hidden = keras.Model(model.input, model.get_layer("final_norm").output)(tokens)
    np.testing.assert_allclose(_np(model(tokens)), _np(hidden) @ _np(tied[0]).T,
                               rtol=1e-5, atol=1e-5)
    # One variable: changing it changes the input side and the output side at once.
    before = _np(model(tokens))
    tied[0].assign(tied[0] * 2.0)
    assert not np.allclose(_np(model(tokens)), before)


def test_bert_mlm_decoder_is_the_word_embedding_plus_its_own_bias():
    model = kerasdl.create_model("bert_base", head="pretraining", **TINY_BERT, dropout=0.0)
    tied = _vocabulary_variables(model, 23)
    assert [v.path for v in tied] == ["word_embeddings/embeddings"]
    bias = model.get_layer("mlm_output_bias").bias
    bias.assign(np.linspace(-1, 1, 23).astype("float32"))
    x = [np.array([[4, 5, 6, 0]], "int32"), np.array([[0, 0, 1, 0]], "int32")]
    h = keras.Model(model.inputs, model.get_layer("mlm_norm").output)(x)
    np.testing.assert_allclose(_np(model(x)["mlm_logits"]),
                               _np(h) @ _np(tied[0]).T + _np(bias), rtol=1e-5, atol=1e-5)


def test_t5_shares_one_embedding_for_encoder_decoder_and_output():
    model = kerasdl.create_model("t5_small", vocabulary_size=31, layers=2, d_model=16,
                                 heads=2, key_dim=8, ff_dim=32, dropout=0.0)
    tied = _vocabulary_variables(model, 31)
    assert [v.path for v in tied] == ["shared_embedding/embeddings"]
    rng = np.random.default_rng(1)
    x = [rng.integers(1, 31, (2, 5)).astype("int32"), rng.integers(1, 31, (2, 4)).astype("int32")]
    h = keras.Model(model.inputs, model.get_layer("decoder_final_norm").output)(x)
    # T5 v1.0 scales the decoder output by d_model^-0.5 before the tied output layer.
    np.testing.assert_allclose(_np(model(x)), _np(h) * 16 ** -0.5 @ _np(tied[0]).T,
                               rtol=1e-5, atol=1e-5)


def test_two_vocabularies_tie_the_target_embedding_to_the_output():
    for name in ("t5_small", "transformer_base"):
        kwargs = dict(vocabulary_size=31, target_vocabulary_size=13, layers=1, d_model=16,
                      heads=2, ff_dim=32)
        model = kerasdl.create_model(name, **kwargs)
        assert [v.path for v in _vocabulary_variables(model, 13)] == \
            ["target_embedding/embeddings"], name
        assert [v.path for v in _vocabulary_variables(model, 31)] == \
            ["source_embedding/embeddings"], name


# ---------------------------------------------------------------------------- masks


def _changes_only_from(logits_a, logits_b, position):
    """Logits before ``position`` equal, at ``position`` different."""
    np.testing.assert_allclose(logits_a[:, :position], logits_b[:, :position], atol=1e-5)
    assert not np.allclose(logits_a[:, position], logits_b[:, position], atol=1e-5)


def test_gpt_is_causal():
    model = kerasdl.create_model("gpt2", vocabulary_size=29, layers=2, hidden=16, heads=2,
                                 ff_dim=32, max_positions=10)
    tokens = np.random.default_rng(2).integers(1, 29, size=(2, 8)).astype("int32")
    changed = tokens.copy()
    changed[:, 5] = (changed[:, 5] % 28) + 1
    _changes_only_from(_np(model(tokens)), _np(model(changed)), 5)


@pytest.mark.parametrize("name", ["t5_small", "transformer_base"])
def test_translation_decoders_are_causal_and_ignore_source_padding(name):
    model = kerasdl.create_model(name, vocabulary_size=31, target_vocabulary_size=17,
                                 layers=2, d_model=16, heads=2, ff_dim=32)
    rng = np.random.default_rng(3)
    source = rng.integers(1, 31, (2, 5)).astype("int32")
    target = rng.integers(1, 17, (2, 6)).astype("int32")
    changed = target.copy()
    changed[:, 3] = (changed[:, 3] % 16) + 1
    _changes_only_from(_np(model([source, target])), _np(model([source, changed])), 3)
    # More padding after the source sentence changes nothing.
    padded = np.concatenate([source, np.zeros((2, 4), "int32")], axis=1)
    np.testing.assert_allclose(_np(model([padded, target])), _np(model([source, target])),
                               atol=1e-5)


def test_bert_ignores_padding():
    """Padding (id 0) is hidden from attention: more or less of it leaves the real
    positions' outputs, the pooled output and the classifier unchanged."""
    backbone = kerasdl.create_model("bert_base", head="none", **TINY_BERT)
    short = np.array([[5, 6, 7, 0], [8, 9, 10, 11]], "int32")
    long = np.concatenate([short, np.zeros((2, 5), "int32")], axis=1)
    a, b = backbone(short), backbone(long)
    np.testing.assert_allclose(_np(a["sequence_output"])[0, :3],
                               _np(b["sequence_output"])[0, :3], atol=1e-5)
    np.testing.assert_allclose(_np(a["sequence_output"])[1], _np(b["sequence_output"])[1, :4],
                               atol=1e-5)
    np.testing.assert_allclose(_np(a["pooled_output"]), _np(b["pooled_output"]), atol=1e-5)
    # A real token where padding was does change the outputs: the mask is not vacuous.
    filled = short.copy()
    filled[0, 3] = 12
    assert not np.allclose(_np(backbone(filled)["pooled_output"])[0],
                           _np(a["pooled_output"])[0], atol=1e-5)


def test_sequence_longer_than_the_learned_positions_is_refused():
    with pytest.raises(KerasdlError, match="sequence_length"):
        kerasdl.create_model("gpt_char_small", sequence_length=129)
    with pytest.raises(KerasdlError, match="sequence_length"):
        kerasdl.create_model("bert_base", **TINY_BERT, sequence_length=13)


# ------------------------------------------------------------------ T5 position bias


def _t5_bucket(relative, bidirectional, num_buckets=32, max_distance=128):
    """T5's bucketing for one ``key - query`` distance, in plain Python (Raffel et al.
    2020; mesh_tensorflow's ``_relative_position_bucket``)."""
    bucket = 0
    n = -relative
    if bidirectional:
        num_buckets //= 2
        if n < 0:
            bucket += num_buckets
        n = abs(n)
    else:
        n = max(n, 0)
    exact = num_buckets // 2
    if n < exact:
        return bucket + n
    large = exact + int(math.log(n / exact) / math.log(max_distance / exact)
                        * (num_buckets - exact))
    return bucket + min(large, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_buckets_match_t5(bidirectional):
    relative = np.arange(-300, 301)
    got = _np(relative_position_bucket(keras.ops.convert_to_tensor(relative, "int32"),
                                       bidirectional))
    want = [_t5_bucket(int(r), bidirectional) for r in relative]
    np.testing.assert_array_equal(got, want)
    assert got.min() == 0 and got.max() == 31


def test_t5_bias_tables_only_in_the_first_layers():
    model = kerasdl.create_model("t5_small", vocabulary_size=31, layers=3, d_model=16,
                                 heads=2, key_dim=8, ff_dim=32)
    tables = [v for v in model.weights if "relative_attention_bias" in v.path]
    assert sorted(v.path for v in tables) == [
        "decoder1_relative_position_bias/relative_attention_bias/embeddings",
        "encoder1_relative_position_bias/relative_attention_bias/embeddings"]
    assert all(tuple(v.shape) == (32, 2) for v in tables)
    # Every self-attention of a stack reads the bias its first layer computes; cross-
    # attention reads none.
    bias_layer = model.get_layer("encoder1_relative_position_bias")
    for i in (1, 2, 3):
        for stack in ("encoder", "decoder"):
            layer = model.get_layer(f"{stack}{i}_self_attention")
            assert len(layer.input) == 4
            assert layer.input[3] is model.get_layer(
                f"{stack}1_relative_position_bias").output
        assert len(model.get_layer(f"decoder{i}_cross_attention").input) == 3
    assert bias_layer.bidirectional
    assert not model.get_layer("decoder1_relative_position_bias").bidirectional


def test_t5_layer_norm_is_rms_without_bias():
    layer = RMSNorm(epsilon=1e-6)
    x = np.random.default_rng(4).normal(size=(2, 3, 8)).astype("float32")
    y = _np(layer(x))
    assert [w.name for w in layer.weights] == ["scale"]
    want = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_sinusoidal_encoding_is_the_papers():
    x = np.zeros((1, 7, 6), "float32")
    pe = _np(SinusoidalPositionEncoding()(x))[0]
    pos, i = np.arange(7)[:, None], np.arange(3)[None, :]
    angle = pos / 10_000 ** (2 * i / 6)
    np.testing.assert_allclose(pe[:, 0::2], np.sin(angle), atol=1e-5)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(angle), atol=1e-5)


# ---------------------------------------------------------------------------- ViT


def test_vit_patch_sequence():
    from kerasdl.models.transformer.vit import num_patches

    assert num_patches((224, 224, 3), 16) == 196  # ViT-B/16: 196 patches + class token
    assert num_patches((32, 32, 3), 4) == 64
    model = kerasdl.create_model("vit_b16", input_shape=(16, 16, 3), num_classes=5,
                                 patch_size=4, hidden=16, layers=1, heads=2, mlp_dim=24)
    assert tuple(model.get_layer("patch_sequence").output.shape) == (None, 16, 16)
    assert tuple(model.get_layer("class_token").output.shape) == (None, 17, 16)
    assert tuple(model.get_layer("position_embeddings").embeddings.shape) == (17, 16)
    assert tuple(model.get_layer("patch_embedding").kernel.shape) == (4, 4, 3, 16)
    assert model.get_layer("patch_embedding").strides == (4, 4)
    with pytest.raises(KerasdlError, match="patches"):
        kerasdl.create_model("vit_b16", input_shape=(18, 18, 3), num_classes=5,
                             patch_size=4, hidden=16, layers=1, heads=2, mlp_dim=24)


def test_vit_scales_raw_pixels_itself():
    model = kerasdl.create_model("vit_cifar", layers=1)
    scaling = model.get_layer("input_scaling")
    assert scaling.spec()["input_range"] == [0.0, 255.0]
    out = _np(scaling(np.array([[[[0.0, 127.5, 255.0]]]], "float32")))
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_registry_records():
    for name, task in [("bert_base", "sequence_classification"),
                       ("bert_mini", "sequence_classification"),
                       ("gpt2", "language_modeling"), ("gpt_char_small", "language_modeling"),
                       ("t5_small", "seq2seq"), ("t5_tiny", "seq2seq"),
                       ("transformer_base", "seq2seq"), ("transformer_small", "seq2seq"),
                       ("vit_b16", "image_classification"),
                       ("vit_cifar", "image_classification")]:
        info = kerasdl.model_info(name)
        assert (info.family, info.task) == ("transformer", task), name
        assert info.recipe is not None, name


def test_fixed_length_models_decode_greedily():
    """``kerasdl train`` builds the models at the recipe's fixed length; the decoders of
    :mod:`kerasdl.decoding` pad the prefix to it, which causal models allow."""
    from kerasdl.decoding import greedy_decode, lm_step_fn, seq2seq_step_fn

    gpt = kerasdl.create_model("gpt_char_small", vocabulary_size=11, layers=1,
                               sequence_length=8)
    ids = greedy_decode(lm_step_fn(gpt), np.array([[3, 4]], "int32"), max_length=6)
    assert ids.shape[0] == 1 and ids.shape[1] <= 6
    t5 = kerasdl.create_model("t5_tiny", vocabulary_size=13, target_vocabulary_size=9,
                              layers=1, d_model=16, heads=2, key_dim=8, ff_dim=32,
                              sequence_length=7)
    source = np.array([[5, 6, 7, 0, 0, 0, 0]], "int32")
    ids = greedy_decode(seq2seq_step_fn(t5, source), np.array([2], "int32"), max_length=7,
                        end_id=3)
    assert ids.shape[0] == 1 and ids[0, 0] == 2
