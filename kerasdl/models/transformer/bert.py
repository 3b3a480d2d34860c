"""BERT: Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding", NAACL 2019.

Embeddings: token + segment (2 types) + learned absolute positions (512), summed, then
LayerNorm (epsilon 1e-12, as Google's code) and dropout. A post-LN Transformer encoder
(:mod:`kerasdl.models.transformer.blocks`) with exact (erf) GELU; attention never looks
at padding (token id 0). The pooler is ``Dense(hidden, tanh)`` on the first position's
vector, BERT's [CLS].

One builder, four heads (``head=``):

* ``"classifier"`` (the registered form): dropout and ``Dense(num_classes)`` on the
  pooled output -> logits ``[batch, num_classes]``, Sec. 4.1's fine-tuning model.
* ``"pretraining"``: ``{"mlm_logits": [batch, length, vocabulary], "nsp_logits":
  [batch, 2]}``. The masked-LM head transforms every position (``Dense(hidden, GELU)``,
  LayerNorm) and decodes with the token embedding matrix (tied, one variable) plus its
  own output bias; next-sentence prediction is ``Dense(2)`` on the pooled output.
  Logits come for every position (the original gathers the masked ones first; a loss
  weighted to the masked positions is the same).
* ``"mlm"``: the masked-LM logits alone, ``[batch, length, vocabulary]`` (the
  ``masked_language_modeling`` task's ``bert_mini_mlm``: sentences one at a time, no
  next-sentence prediction, as RoBERTa found it unneeded). Without NSP nothing trains
  the pooler, so the model has none; its other layers carry the classifier's names,
  which is how ``kerasdl train bert_mini --from RUN`` starts from them.
* ``"none"``: ``{"sequence_output": [batch, length, hidden], "pooled_output": [batch,
  hidden]}``, the backbone, whose parameters are the reference count (bert-base-uncased:
  109,482,240).

Segment ids are an input (``[tokens, segments]``) when ``segment_input`` is True,
which is the default for the pretraining head (next-sentence prediction reads two
segments); otherwise every token is in segment 0 and the model takes token ids alone, as
kerasdl's text-classification data provide.

kerasdl's text data are word- or character-level with id 0 for padding, not WordPiece
with [CLS]/[SEP]: a model trained here pools the first word's vector, which the
encoder is free to turn into a sentence summary, as it learns to for [CLS].
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.models.transformer import blocks
from kerasdl.models.transformer.layers import (AttentionMask, ConstantIds, FirstToken,
                                               OutputBias, TiedEmbedding)
from kerasdl.layers.positions import LearnedPositionEmbedding
from kerasdl.registry import InputDecl, Variant, register_family
from kerasdl.train.recipes import Recipe

PAPER = ("Devlin, Chang, Lee & Toutanova, BERT: Pre-training of Deep Bidirectional "
         "Transformers for Language Understanding, NAACL 2019")
HEADS = ("classifier", "pretraining", "mlm", "none")
EPSILON = 1e-12


@dataclass(frozen=True)
class BertConfig:
    """BERT's sizes: ``layers`` (L), ``hidden`` (H), ``heads`` (A), ``ff_dim`` (4H),
    learned positions and segment types."""

    layers: int = 12
    hidden: int = 768
    heads: int = 12
    ff_dim: int = 3072
    max_positions: int = 512
    type_vocabulary_size: int = 2

    def __post_init__(self):
        for value, argument in ((self.layers, "layers"), (self.hidden, "hidden"),
                                (self.heads, "heads"), (self.ff_dim, "ff_dim"),
                                (self.max_positions, "max_positions"),
                                (self.type_vocabulary_size, "type_vocabulary_size")):
            check_positive_int(value, argument)
        if self.hidden % self.heads:
            raise KerasdlError(f"hidden ({self.hidden}) must be a multiple of heads "
                               f"({self.heads})", argument="heads")


def build_bert(config=BertConfig(), *, vocabulary_size=30_522, num_classes=2,
               head="classifier", segment_input=None, sequence_length=None, dropout=0.1,
               name=None):
    """BERT (Devlin et al. 2019) with the ``head`` described in the module docstring.

    Inputs: token ids ``[batch, length]`` (0 = padding), plus segment ids when
    ``segment_input`` (None: only for ``head="pretraining"``). ``dropout`` is BERT's
    0.1 on embeddings, attention weights, sublayer outputs and before the classifier.
    Weights start from a truncated normal of standard deviation 0.02, as BERT's."""
    check_choice(head, HEADS, "head")
    check_positive_int(vocabulary_size, "vocabulary_size")
    check_positive_int(num_classes, "num_classes")
    check_fraction(dropout, "dropout")
    check_positive_int(sequence_length, "sequence_length", allow_none=True)
    if sequence_length is not None and sequence_length > config.max_positions:
        raise KerasdlError(f"sequence_length {sequence_length} exceeds the model's "
                           f"{config.max_positions} positions", argument="sequence_length")
    if segment_input is None:
        segment_input = head == "pretraining"
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    d = config.hidden

    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    inputs = [tokens]
    if segment_input:
        segments = keras.Input((sequence_length,), dtype="int32", name="segments")
        inputs.append(segments)
    else:
        segments = ConstantIds(0, name="segment_ids")(tokens)
    word_embeddings = TiedEmbedding(vocabulary_size, d, embeddings_initializer=init,
                                    name="word_embeddings")
    x = keras.layers.Add(name="embeddings_sum")([
        word_embeddings(tokens),
        keras.layers.Embedding(config.type_vocabulary_size, d, embeddings_initializer=init,
                               name="segment_embeddings")(segments)])
    x = LearnedPositionEmbedding(config.max_positions, embeddings_initializer=init,
                                 name="position_embeddings")(x)
    x = keras.layers.LayerNormalization(epsilon=EPSILON, name="embeddings_norm")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)

    mask = AttentionMask(name="attention_mask")(tokens)
    attention = blocks.multi_head_attention(config.heads, d // config.heads, dropout=dropout,
                                            attention_mask=mask, kernel_initializer=init)
    ffn = blocks.feed_forward(config.ff_dim, "gelu", kernel_initializer=init)
    for i in range(config.layers):
        x = blocks.encoder_block(x, self_attention=attention, feed_forward=ffn,
                                 norm=blocks.layer_norm(EPSILON), norm_position="post",
                                 dropout=dropout, name=f"encoder{i + 1}")
    pooled = keras.layers.Dense(d, activation="tanh", kernel_initializer=init,
                                name="pooler")(FirstToken(name="first_token")(x))
    inputs = inputs[0] if len(inputs) == 1 else inputs
    name = name or "bert"

    if head == "none":
        return keras.Model(inputs, {"sequence_output": x, "pooled_output": pooled}, name=name)
    if head == "classifier":
        y = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
        # Named as kerasdl's image classifiers' heads, so that kerasdl.train.transfer
        # finds it to fine-tune a trained BERT on data with other classes.
        logits = keras.layers.Dense(num_classes, kernel_initializer=init,
                                    name="predictions")(y)
        return keras.Model(inputs, logits, name=name)
    h = keras.layers.Dense(d, activation="gelu", kernel_initializer=init,
                           name="mlm_transform")(x)
    h = keras.layers.LayerNormalization(epsilon=EPSILON, name="mlm_norm")(h)
    mlm = OutputBias(name="mlm_output_bias")(word_embeddings(h, reverse=True))
    if head == "mlm":
        return keras.Model(inputs, mlm, name=name)
    nsp = keras.layers.Dense(2, kernel_initializer=init, name="nsp_logits")(pooled)
    return keras.Model(inputs, {"mlm_logits": mlm, "nsp_logits": nsp}, name=name)


def bert_count(config, vocabulary_size, head="none", num_classes=2):
    """The parameter count of :func:`build_bert`, term by term."""
    d, f = config.hidden, config.ff_dim
    embeddings = (vocabulary_size + config.max_positions + config.type_vocabulary_size) * d \
        + 2 * d
    layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d
    count = embeddings + config.layers * layer + (d * d + d)
    if head == "classifier":
        count += d * num_classes + num_classes
    elif head == "pretraining":
        count += (d * d + d) + 2 * d + vocabulary_size + (d * 2 + 2)
    elif head == "mlm":  # no pooler (d^2 + d) or NSP; the MLM transform, norm and bias
        count += -(d * d + d) + (d * d + d) + 2 * d + vocabulary_size
    return count


# Sec. A.3's fine-tuning: Adam(W) 2e-5 (of 5e-5, 3e-5, 2e-5), batch 32, 3 epochs,
# warm-up over the first 10% of steps, linear decay (cosine here), weight decay 0.01,
# sequences of 128. Here the weights start from scratch (kerasdl has no pretrained BERT
# and its tokens are words, not WordPiece), so this recipe is the paper's setting, not a
# way to reproduce its SST-2 accuracy.
_BASE_RECIPE = Recipe(
    optimizer="adamw", learning_rate=2e-5, weight_decay=0.01, decay_matrices_only=True,
    schedule="cosine",
    warmup_epochs=0.3, epochs=3, batch_size=32, validation_fraction=0.05,
    tokenization="word", vocabulary_size=30_522, sequence_length=128, padding="batch",
    gradient_clipping="global_norm", clip_threshold=1.0,
    notes="Devlin et al. 2019, Sec. A.3 fine-tuning: AdamW 2e-5, decay 0.01, batch 32, 3 "
          "epochs, 10% warm-up; from scratch here (no pretrained weights), word tokens, "
          "each batch padded to its longest")

# A small BERT trained from scratch on SST-2: from-scratch Transformers want a larger
# rate than fine-tuning's and a warm-up; a few epochs before 67k sentences overfit.
_MINI_RECIPE = Recipe(
    optimizer="adamw", learning_rate=3e-4, weight_decay=0.01, decay_matrices_only=True,
    schedule="cosine",
    warmup_epochs=0.5, epochs=5, batch_size=64, validation_fraction=0.05,
    tokenization="word", vocabulary_size=20_000, sequence_length=64, padding="batch",
    gradient_clipping="global_norm", clip_threshold=1.0,
    notes="from scratch: AdamW 3e-4, decay 0.01, half-epoch warm-up + cosine, 5 epochs, "
          "batch 64, global-norm clipping 1.0; word tokens, 20k vocabulary, at most 64 "
          "tokens, each batch padded to its longest")

# Masked-LM pretraining of BERT-Mini on a dataset's training sentences (kerasdl's word
# tokens, so that the classifier can start from it with the same vocabulary): BERT's
# Sec. A.2 setting (Adam(W) 1e-4, decay 0.01, warm-up, dropout 0.1, 15% masking) at
# BERT-Mini's size, with the from-scratch rate of the classifier recipe and more epochs
# (SST-2's training sentences hold about 0.68 million words, so about 0.1 million
# masked tokens per epoch). Not tuned.
_MLM_RECIPE = Recipe(
    optimizer="adamw", learning_rate=3e-4, weight_decay=0.01, decay_matrices_only=True,
    schedule="cosine",
    warmup_epochs=1.0, epochs=20, batch_size=64, validation_fraction=0.05,
    tokenization="word", vocabulary_size=20_000, sequence_length=64, padding="batch",
    gradient_clipping="global_norm", clip_threshold=1.0,
    notes="masked LM from scratch: AdamW 3e-4, decay 0.01, one-epoch warm-up + cosine, 20 "
          "epochs, batch 64, clipping 1.0; word tokens, 20k vocabulary, at most 64 tokens "
          "(each batch padded to its longest), the "
          "classifier recipe's validation split (so its training sentences match); untuned")

# BERT-Mini of Turc et al. 2019 ("Well-Read Students Learn Better"): L=4, H=256, A=4.
MINI = BertConfig(layers=4, hidden=256, heads=4, ff_dim=1024)

register_family(
    build_bert,
    family="transformer",
    task="sequence_classification",
    paper=PAPER,
    test_kwargs={"vocabulary_size": 20, "num_classes": 3, "layers": 2, "hidden": 16,
                 "heads": 2, "ff_dim": 32, "max_positions": 16},
    inputs=(InputDecl("int", 1, "vocabulary_size"),),
    output_shape=("num_classes",),
    default_dataset="glue/sst2",
    tags=("text", "attention"),
    variants=[
        Variant(
            "bert_base", BertConfig(),
            description="BERT-base (L=12, H=768, A=12) sentence classifier",
            reference_params={
                "bert-base-uncased (HF BertModel: embeddings, 12 encoder layers and the "
                "pooler; head='none', no MLM/NSP or classifier head) at vocabulary "
                "30,522": 109_482_240},
            reference_kwargs={"head": "none"},
            recipe=_BASE_RECIPE),
        Variant(
            "bert_mini", MINI,
            description="BERT-Mini (L=4, H=256, A=4; Turc et al. 2019) classifier trained "
                        "from scratch",
            defaults={"vocabulary_size": 20_000},
            paper=f"{PAPER}; Turc, Chang, Lee & Toutanova, Well-Read Students Learn "
                  "Better, 2019 (BERT-Mini sizes)",
            reference_params={
                "hand count at vocabulary 20,000, 2 classes, classifier head: embeddings "
                "(20,000 + 512 + 2) x 256 + LayerNorm, 4 layers of 4 x (256^2 + 256) + "
                "2 x 256 x 1,024 + 1,024 + 256 + 2 LayerNorms, pooler, Dense 256 x 2":
                    bert_count(MINI, 20_000, "classifier", 2)},
            recipe=_MINI_RECIPE),
    ],
)

register_family(
    build_bert,
    family="transformer",
    task="masked_language_modeling",
    paper=PAPER,
    test_kwargs={"vocabulary_size": 20, "layers": 2, "hidden": 16, "heads": 2, "ff_dim": 32,
                 "max_positions": 16},
    inputs=(InputDecl("int", 1, "vocabulary_size"),),
    output_shape=(None, "vocabulary_size"),
    default_dataset="glue/sst2",
    tags=("text", "attention"),
    variants=[
        Variant(
            "bert_mini_mlm", MINI,
            description="BERT-Mini masked-LM pretraining (head='mlm'); its run starts "
                        "bert_mini (kerasdl train bert_mini --from RUN)",
            defaults={"vocabulary_size": 20_000, "head": "mlm"},
            paper=f"{PAPER}; Turc, Chang, Lee & Toutanova, Well-Read Students Learn "
                  "Better, 2019 (BERT-Mini sizes)",
            reference_params={
                "hand count at vocabulary 20,000, head='mlm': embeddings (20,000 + 512 + "
                "2) x 256 + LayerNorm, 4 layers as bert_mini's, no pooler, MLM transform "
                "256^2 + 256, its LayerNorm 2 x 256, output bias 20,000 (decoder tied to "
                "the token embeddings)": bert_count(MINI, 20_000, "mlm")},
            recipe=_MLM_RECIPE),
    ],
)
