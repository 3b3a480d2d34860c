"""Sequence tasks: text classification, token tagging, language modelling (next-token and
masked) and translation.

Each reads its data through :mod:`kerasdl.data.text`, sized by the recipe's
``tokenization``, ``vocabulary_size`` and ``sequence_length``; a run saves its
vocabularies (``RUN/vocabulary.json``) so that evaluating or exporting it later encodes
text exactly as in training.
"""

from __future__ import annotations

import math

import numpy as np

from kerasdl.errors import KerasdlError
from kerasdl.tasks import Task, register_task

# Per task: (tokenization, vocabulary size, sequence length) when a recipe leaves them 0.
DEFAULTS = {
    "sequence_classification": ("word", 20_000, 64),
    "language_modeling": ("character", 0, 100),
    "masked_language_modeling": ("word", 20_000, 64),
    "seq2seq": ("word", 10_000, 40),
    "token_classification": ("token", 20_000, 64),
    "conditional_language_modeling": ("word", 10_000, 32),
}


# Per-batch padding where it is the default, and where a recipe may ask for it (the
# loaders that support it; language-model windows and tag sequences are fixed-length).
BATCH_PADDING = {"seq2seq": "batch", "sequence_classification": "fixed",
                 "masked_language_modeling": "fixed"}


class _TextTask(Task):
    loader = None

    def settings(self, recipe):
        tokenization, vocab, length = DEFAULTS[self.name]
        if recipe is not None:
            tokenization = recipe.tokenization or tokenization
            vocab = recipe.vocabulary_size or vocab
            length = recipe.sequence_length or length
        return tokenization, vocab, length

    def load_data(self, dataset, *, input_shape=None, batch_size=64, validation_fraction=0.1,
                  augment=None, data_dir=None, max_examples=None, seed=0,
                  deterministic=False, recipe=None, codecs=None):
        tokenization, vocab, length = self.settings(recipe)
        codecs = codecs or {}
        padding = {}
        if self.name in BATCH_PADDING:
            padding["padding"] = getattr(recipe, "padding", "") or BATCH_PADDING[self.name]
        elif getattr(recipe, "padding", "") == "batch":
            raise KerasdlError(
                f"padding='batch' is for {', '.join(sorted(BATCH_PADDING))}; the "
                f"{self.name} data have a fixed length", argument="padding")
        return type(self).loader(
            dataset, tokenization=tokenization, vocabulary_size=vocab,
            sequence_length=length, batch_size=batch_size,
            validation_fraction=validation_fraction, data_dir=data_dir,
            max_examples=max_examples, seed=seed, **padding, **self._codec_kwargs(codecs))

    def _codec_kwargs(self, codecs):
        return {"codec": codecs["text"]} if "text" in codecs else {}

    def codecs(self, data):
        """The vocabularies a run saves, by name."""
        return {"text": data.codec}

    def build_model(self, info, data, recipe=None, **overrides):
        kwargs = info.default_kwargs()
        # Per-batch padding gives every batch its own length: the model takes any.
        sizes = {"vocabulary_size": data.vocabulary_size,
                 "sequence_length": None if data.padding == "batch"
                 else data.codec.sequence_length}
        if data.num_classes is not None:
            sizes["num_classes"] = data.num_classes
        if data.target_codec is not None:
            sizes["target_vocabulary_size"] = data.target_codec.vocabulary_size
        missing = [k for k in sizes if k not in kwargs and k != "sequence_length"]
        if missing:
            raise KerasdlError(
                f"{info.name!r} cannot be sized for this data: its builder has no "
                f"{', '.join(missing)} argument", argument="model")
        sizes = {k: v for k, v in sizes.items() if k in kwargs}
        return info.build(**{**overrides, **sizes})

    def record(self, data):
        c = data.codec
        record = {"tokenization": c.tokenization, "vocabulary_size": c.vocabulary_size,
                  "sequence_length": c.sequence_length, "preprocessing": data.describe()}
        if data.class_names:
            record["class_names"] = list(data.class_names)
            record["num_classes"] = len(data.class_names)
        return record

    def check_compatible(self, record, data):
        trained = record.get("class_names")
        if trained is not None and data.class_names is not None \
                and list(trained) != list(data.class_names):
            raise KerasdlError(
                f"the run was trained with classes {trained}, this data has "
                f"{list(data.class_names)}", argument="dataset")

    def calibration_data(self, data, limit):
        x, _ = data.arrays("train")
        return x[:limit]


def _sparse_ce(recipe=None, ignore_class=None):
    """The training loss: label-smoothed when the recipe says so."""
    from kerasdl.losses import sparse_crossentropy

    return sparse_crossentropy(getattr(recipe, "label_smoothing", 0.0), ignore_class)


class SequenceClassification(_TextTask):
    name = "sequence_classification"

    @staticmethod
    def loader(*args, **kwargs):
        from kerasdl.data.text import load_text_classification

        return load_text_classification(*args, **kwargs)

    def compile_kwargs(self, model=None, recipe=None):
        return {"loss": _sparse_ce(recipe), "metrics": ["accuracy"]}

    def evaluate(self, model, data, batch_size=256):
        x, y = data.arrays("test")
        logits = model.predict(x, batch_size=batch_size, verbose=0)
        loss = _sparse_ce()(y, logits)
        import keras

        accuracy = float((logits.argmax(-1) == y).mean())
        return {"test_examples": int(len(y)), "test_accuracy": accuracy,
                "test_error_percent": round(100 * (1 - accuracy), 3),
                "test_loss": float(keras.ops.convert_to_numpy(loss))}

    def summary(self, result):
        return (f"{result['dataset']}: test accuracy {100 * result['test_accuracy']:.2f}% "
                f"on {result['test_examples']:,} examples")

    def verification_data(self, data, limit=None):
        x, y = data.arrays("test")
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def compare(self, reference, outputs, targets):
        return {"accuracy": float((outputs.argmax(-1) == targets).mean()),
                "top1_agreement": float((outputs.argmax(-1) == reference.argmax(-1)).mean()),
                "max_abs_logit_diff": float(np.abs(outputs - reference).max())}

    def describe_io(self, model, record):
        return {
            "input": {"name": model.inputs[0].name, "shape": list(model.input_shape[1:]),
                      "dtype": "int32", "kind": "token ids (0 = padding)",
                      "preparation": record.get("preprocessing", ""),
                      "vocabulary": "vocabulary.json of the run"},
            "output": {"kind": "logits", "shape": list(model.output_shape[1:]),
                       "class_names": record.get("class_names"),
                       "decode": "argmax over the last axis; softmax for probabilities"},
        }


def tag_spans(tags):
    """The entity spans ``{(type, start, end)}`` of a BIO/IOB tag sequence (CoNLL's rule:
    an ``I-X`` that does not continue an ``X`` span opens one)."""
    spans, kind, start = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = str(tag).partition("-")
        continues = prefix == "I" and label == kind
        if kind is not None and not continues:
            spans.add((kind, start, i))
            kind = None
        if prefix in ("B", "I") and label and not continues:
            kind, start = label, i
    return spans


def _is_bio(class_names):
    return any(str(t).startswith(("B-", "I-")) for t in class_names or ())


class TokenClassification(_TextTask):
    """A tag per token: cross-entropy over real tokens (padding targets are -1), token
    accuracy, and entity precision/recall/F1 over exact spans when the tags are BIO."""

    name = "token_classification"

    @staticmethod
    def loader(*args, **kwargs):
        from kerasdl.data.text import load_token_classification

        return load_token_classification(*args, **kwargs)

    def _codec_kwargs(self, codecs):
        out = super()._codec_kwargs(codecs)
        if "tags" in codecs:  # a saved run's tags, in its order
            out["class_names"] = codecs["tags"].vocabulary[2:]
        return out

    def codecs(self, data):
        from kerasdl.data.text import PAD, UNK, TextCodec

        # The tag list travels in vocabulary.json too, so that evaluating a run on part
        # of a corpus (or on another one) keeps the trained tag order.
        return {"text": data.codec,
                "tags": TextCodec("token", [PAD, UNK, *data.class_names], 1)}

    def compile_kwargs(self, model=None, recipe=None):
        from kerasdl.data.text import TAG_PADDING

        # The embedding's padding mask reaches the output, so "accuracy" counts real tokens.
        return {"loss": _sparse_ce(recipe, ignore_class=TAG_PADDING), "metrics": ["accuracy"]}

    def evaluate(self, model, data, batch_size=256):
        x, y = data.arrays("test")
        predicted = model.predict(x, batch_size=batch_size, verbose=0).argmax(-1)
        real = y >= 0
        result = {"test_examples": int(len(y)), "test_tokens": int(real.sum()),
                  "test_token_accuracy": float((predicted == y)[real].mean())}
        if _is_bio(data.class_names):
            names = np.asarray(data.class_names)
            found = gold = hit = 0
            for p, t, keep in zip(predicted, y, real):
                p_spans, t_spans = tag_spans(names[p[keep]]), tag_spans(names[t[keep]])
                found, gold, hit = found + len(p_spans), gold + len(t_spans), \
                    hit + len(p_spans & t_spans)
            precision, recall = hit / max(found, 1), hit / max(gold, 1)
            result.update({"test_entity_precision": precision, "test_entity_recall": recall,
                           "test_entity_f1": 2 * precision * recall / max(precision + recall,
                                                                          1e-12)})
        return result

    def summary(self, result):
        text = (f"{result['dataset']}: test token accuracy "
                f"{100 * result['test_token_accuracy']:.2f}% on {result['test_tokens']:,} "
                f"tokens")
        if "test_entity_f1" in result:
            text += f", entity F1 {100 * result['test_entity_f1']:.2f}%"
        return text

    def verification_data(self, data, limit=None):
        x, y = data.arrays("test")
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def compare(self, reference, outputs, targets):
        return _compare_tokens(reference, outputs, targets, targets >= 0)

    def describe_io(self, model, record):
        return {
            "input": {"name": model.inputs[0].name, "shape": list(model.input_shape[1:]),
                      "dtype": "int32", "kind": "token ids (0 = padding)",
                      "preparation": record.get("preprocessing", ""),
                      "vocabulary": "vocabulary.json of the run"},
            "output": {"kind": "logits per token", "shape": list(model.output_shape[1:]),
                       "class_names": record.get("class_names"),
                       "decode": "argmax over the last axis at each real token"},
        }


def _compare_tokens(reference, outputs, targets, scored):
    """An exported file's per-token logits against Keras' at the ``scored`` positions."""
    predicted = outputs.argmax(-1)
    return {"accuracy": float((predicted == targets)[scored].mean()),
            "top1_agreement": float((predicted == reference.argmax(-1))[scored].mean()),
            "max_abs_logit_diff": float(np.abs(outputs - reference)[scored].max())}


def _token_metrics(model, ds, ignore_id):
    """Mean cross-entropy per target token (nats) over a pipeline, padding ignored."""
    total, count, correct = 0.0, 0, 0
    import keras

    for x, y in ds:
        out = model(x, training=False)
        if isinstance(out, dict):  # a seq2seq model's logits, a biLM's forward direction
            out = out["logits"] if "logits" in out else out["forward"]
        logits = np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")
        y = y.numpy()
        shifted = logits - logits.max(-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        picked = np.take_along_axis(logp, y[..., None], -1)[..., 0]
        keep = np.ones_like(y, bool) if ignore_id is None else y != ignore_id
        total += float(-picked[keep].sum())
        count += int(keep.sum())
        correct += int(((logits.argmax(-1) == y) & keep).sum())
    return total / max(count, 1), count, correct / max(count, 1)


class LanguageModeling(_TextTask):
    """Next-token prediction: cross-entropy in nats per token and perplexity."""

    name = "language_modeling"

    @staticmethod
    def loader(*args, validation_fraction=None, **kwargs):
        from kerasdl.data.text import load_language_modeling

        return load_language_modeling(*args, **kwargs)

    def compile_kwargs(self, model=None, recipe=None):
        if model is not None and isinstance(model.output, dict):
            # A bidirectional LM: the backward direction's first target does not exist.
            return {"loss": {"forward": _sparse_ce(recipe),
                             "backward": _sparse_ce(recipe, ignore_class=0)}}
        return {"loss": _sparse_ce(recipe), "metrics": ["accuracy"]}

    def fit_data(self, model, data):
        if not isinstance(model.output, dict):
            return data.train, data.validation, data.test
        import tensorflow as tf

        def both_directions(x, y):
            previous = tf.concat([tf.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
            return x, {"forward": y, "backward": previous}

        return tuple(None if ds is None else ds.map(both_directions)
                     for ds in (data.train, data.validation, data.test))

    def evaluate(self, model, data, batch_size=256):
        result = {}
        for split in ("validation", "test"):
            ds = getattr(data, split)
            if ds is None:
                continue
            nats, tokens, accuracy = _token_metrics(model, ds, ignore_id=None)
            result.update({f"{split}_nats_per_token": nats,
                           f"{split}_perplexity": math.exp(nats),
                           f"{split}_bits_per_token": nats / math.log(2),
                           f"{split}_token_accuracy": accuracy,
                           f"{split}_tokens": tokens})
        result["test_examples"] = result.get("test_tokens", 0)
        return result

    def summary(self, result):
        parts = [f"{split} {result[f'{split}_nats_per_token']:.3f} nats/token (perplexity "
                 f"{result[f'{split}_perplexity']:.2f})"
                 for split in ("validation", "test") if f"{split}_nats_per_token" in result]
        return f"{result['dataset']}: " + ", ".join(parts)


class MaskedLanguageModeling(_TextTask):
    """BERT's masked LM (:mod:`kerasdl.data.pretraining`): cross-entropy over the chosen
    positions only (targets -1 elsewhere) and their accuracy while training; on the test
    split, whose masks are fixed, masked-token accuracy, nats per masked token and
    perplexity. (Only test: a held-out validation split depends on the recipe's
    ``validation_fraction``, which ``kerasdl evaluate`` does not know; its curves are in
    the run's history.) The run's vocabulary (with ``[MASK]``) is what ``--from RUN``
    hands to the classifier it starts."""

    name = "masked_language_modeling"

    @staticmethod
    def loader(*args, **kwargs):
        from kerasdl.data.pretraining import load_masked_language_modeling

        return load_masked_language_modeling(*args, **kwargs)

    def compile_kwargs(self, model=None, recipe=None):
        from kerasdl.data.pretraining import IGNORE
        from kerasdl.metrics import TokenAccuracy

        # "accuracy" in the epoch log and curves: the masked-token accuracy.
        return {"loss": _sparse_ce(recipe, ignore_class=IGNORE),
                "metrics": [TokenAccuracy(ignore_id=IGNORE, name="accuracy")]}

    def record(self, data):
        return {**super().record(data), "mask_rate": data.mask_rate}

    def evaluate(self, model, data, batch_size=256):
        nats, tokens, accuracy = _masked_token_metrics(model, data.test)
        return {"test_examples": data.num_examples["test"],
                "test_masked_token_accuracy": accuracy, "test_nats_per_masked_token": nats,
                "test_perplexity": math.exp(nats), "test_masked_tokens": tokens}

    def summary(self, result):
        return (f"{result['dataset']}: test masked-token accuracy "
                f"{100 * result['test_masked_token_accuracy']:.2f}%, "
                f"{result['test_nats_per_masked_token']:.3f} nats/masked token (perplexity "
                f"{result['test_perplexity']:.1f}) over {result['test_masked_tokens']:,} "
                "masked tokens")

    def verification_data(self, data, limit=None):
        x, y = data.arrays("test")
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def compare(self, reference, outputs, targets):
        return _compare_tokens(reference, outputs, targets, targets >= 0)

    def describe_io(self, model, record):
        return {
            "input": {"name": model.inputs[0].name, "shape": list(model.input_shape[1:]),
                      "dtype": "int32",
                      "kind": "token ids (0 = padding, 2 = [MASK] at positions to predict)",
                      "preparation": record.get("preprocessing", ""),
                      "vocabulary": "vocabulary.json of the run"},
            "output": {"kind": "logits per position over the vocabulary",
                       "shape": list(model.output_shape[1:]),
                       "decode": "argmax over the last axis at the masked positions"},
        }


def _masked_token_metrics(model, ds):
    """``(nats per masked token, masked tokens, their accuracy)`` over a pipeline of
    ``(masked ids, targets)``; only the chosen positions (targets >= 0) count. Reduced
    over the vocabulary on the device, so no ``[batch, length, vocabulary]`` array is
    copied out."""
    import keras
    from keras import ops

    total, count, correct = 0.0, 0, 0
    for x, y in ds:
        logits = ops.cast(model(x, training=False), "float32")
        y = ops.convert_to_tensor(y)
        picked = ops.take_along_axis(logits, ops.expand_dims(ops.maximum(y, 0), -1), -1)
        nats = keras.ops.convert_to_numpy(ops.logsumexp(logits, axis=-1)
                                          - ops.squeeze(picked, -1)).astype("float64")
        predicted = keras.ops.convert_to_numpy(ops.argmax(logits, axis=-1))
        y = keras.ops.convert_to_numpy(y)
        keep = y >= 0
        total += float(nats[keep].sum())
        count += int(keep.sum())
        correct += int((predicted == y)[keep].sum())
    return total / max(count, 1), count, correct / max(count, 1)


class Seq2Seq(_TextTask):
    """Translation: teacher-forced training, token cross-entropy with padding ignored."""

    name = "seq2seq"

    @staticmethod
    def loader(*args, tokenization=None, validation_fraction=None, **kwargs):
        from kerasdl.data.text import load_translation

        return load_translation(*args, **kwargs)

    def _codec_kwargs(self, codecs):
        out = {}
        if "source" in codecs:
            out["codec"] = codecs["source"]
        if "target" in codecs:
            out["target_codec"] = codecs["target"]
        return out

    def codecs(self, data):
        return {"source": data.codec, "target": data.target_codec}

    def compile_kwargs(self, model=None, recipe=None):
        loss = _sparse_ce(recipe, ignore_class=0)
        if model is not None and isinstance(model.output, dict):
            # Keras' metric container reads every output name from y_true, so a metric on
            # "logits" alone fails on the missing "attention" target; the loss (nats per
            # token) is the training signal shown, and evaluate() measures token accuracy.
            return {"loss": {"logits": loss}}
        return {"loss": loss, "metrics": ["accuracy"]}

    def fit_data(self, model, data):
        if not isinstance(model.output, dict):
            return data.train, data.validation, data.test

        def targets(x, y):
            return x, {"logits": y}

        return tuple(None if ds is None else ds.map(targets)
                     for ds in (data.train, data.validation, data.test))

    def record(self, data):
        record = super().record(data)
        record["target_vocabulary_size"] = data.target_codec.vocabulary_size
        return record

    def verification_data(self, data, limit=None):
        (source, target_in), target_out = data.arrays("test")
        return [source[:limit], target_in[:limit]], target_out[:limit]

    def calibration_data(self, data, limit):
        (source, target_in), _ = data.arrays("train")
        return [source[:limit], target_in[:limit]]

    def compare(self, reference, outputs, targets):
        """Teacher-forced next-token logits at the real (non-padding) target positions."""
        return _compare_tokens(reference, outputs, targets, targets > 0)

    def describe_io(self, model, record):
        return {
            "input": [{"name": t.name, "shape": list(t.shape[1:]), "dtype": "int32",
                       "kind": kind, "preparation": record.get("preprocessing", ""),
                       "vocabulary": f"vocabulary.json of the run ({codec})"}
                      for t, kind, codec in zip(
                          model.inputs,
                          ("source token ids (0 = padding)",
                           "target prefix ids: start token, then the words so far"),
                          ("source", "target"))],
            "output": {"kind": "next-token logits at every target position (and the "
                               "attention weights)",
                       "decode": "greedy or beam search: kerasdl.translation.translate"},
        }

    def evaluate(self, model, data, batch_size=256):
        nats, tokens, accuracy = _token_metrics(_logits_model(model), data.test, ignore_id=0)
        return {"test_examples": data.num_examples["test"], "test_nats_per_token": nats,
                "test_perplexity": math.exp(nats), "test_token_accuracy": accuracy,
                "test_tokens": tokens}

    def summary(self, result):
        return (f"{result['dataset']}: test {result['test_nats_per_token']:.3f} nats/token "
                f"(perplexity {result['test_perplexity']:.2f}), teacher-forced token accuracy "
                f"{100 * result['test_token_accuracy']:.1f}%")


class ConditionalLanguageModeling(_TextTask):
    """One-to-many: a sentence written from a class label. Cross-entropy per token with
    padding ignored, measured with each sentence's own label and with a wrong one (the
    next class): the difference is what the label tells the model."""

    name = "conditional_language_modeling"

    @staticmethod
    def loader(*args, **kwargs):
        from kerasdl.data.text import load_conditional_language_modeling

        return load_conditional_language_modeling(*args, **kwargs)

    def compile_kwargs(self, model=None, recipe=None):
        return {"loss": _sparse_ce(recipe, ignore_class=0), "metrics": ["accuracy"]}

    def evaluate(self, model, data, batch_size=256):
        k = len(data.class_names)

        def wrong(x, y):
            return ((x[0] + 1) % k, x[1]), y

        nats, tokens, accuracy = _token_metrics(model, data.test, ignore_id=0)
        wrong_nats, _, _ = _token_metrics(model, data.test.map(wrong), ignore_id=0)
        return {"test_examples": data.num_examples["test"], "test_tokens": tokens,
                "test_nats_per_token": nats, "test_perplexity": math.exp(nats),
                "test_token_accuracy": accuracy,
                "test_nats_per_token_wrong_condition": wrong_nats,
                "test_condition_gain_nats": wrong_nats - nats}

    def summary(self, result):
        return (f"{result['dataset']}: test {result['test_nats_per_token']:.3f} nats/token "
                f"(perplexity {result['test_perplexity']:.2f}) with each sentence's label, "
                f"{result['test_nats_per_token_wrong_condition']:.3f} with a wrong one")

    def calibration_data(self, data, limit):
        x, _ = data.arrays("train")
        return tuple(a[:limit] for a in x)


def _logits_model(model):
    """A callable giving logits whether the model returns them or a dict holding them."""
    def call(x, training=False):
        out = model(x, training=training)
        return out["logits"] if isinstance(out, dict) else out

    return call


for _task in (SequenceClassification(), TokenClassification(), LanguageModeling(),
              MaskedLanguageModeling(), ConditionalLanguageModeling(), Seq2Seq()):
    register_task(_task)
