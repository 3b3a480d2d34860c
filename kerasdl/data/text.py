"""Text datasets as ``tf.data`` pipelines of token ids, for every sequence task.

Tokenisation and vocabularies use ``keras.layers.TextVectorization`` inside ``tf.data``:
word level (lower-cased, punctuation split off as its own tokens) or character level
(every character kept, newlines included). The vocabulary is fitted on the training
split only and saved with a run (:class:`TextCodec`), so that a reloaded model encodes
and decodes exactly as it was trained. Id 0 is padding, id 1 the out-of-vocabulary token;
translation targets also reserve 2 and 3 for the start and end tokens.

Sources: TFDS text datasets by name (``glue/sst2``, ``trec``, ``tiny_shakespeare``, ...),
any plain-text file (``PATH.txt``) for language modelling, and the raw Multi30k files for
translation (``multi30k`` = German to English; ``multi30k:en-de`` for another pair), and
CoNLL-style files of tagged tokens for token classification.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from typing import Any

import numpy as np

from kerasdl.atomic import write_json
from kerasdl.data.sources import (PROBE_HOST, network_available, offline_forced,
                                  resolve_data_dir, tfds_builder)
from kerasdl.errors import DataNotFoundError, KerasdlError, check_choice, check_positive_int

# "token": text already split into tokens (a tagging corpus): lower-cased, split on
# whitespace only, so that token i keeps its tag i.
TOKENIZATIONS = ("word", "character", "token")
PAD, UNK, START, END = "", "[UNK]", "[start]", "[end]"
START_ID, END_ID = 2, 3
CODEC_FILE = "vocabulary.json"
# Punctuation becomes tokens of its own, so that "dog." and "dog" share "dog" and a
# decoded sentence can be detokenised for BLEU.
_PUNCTUATION = r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~¿¡«»„“”])"

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def _standardizer(tokenization):
    return {"character": None, "token": "lower"}.get(tokenization, _standardize_words)


def _standardize_words(text):
    import tensorflow as tf

    text = tf.strings.lower(text)
    text = tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


@dataclasses.dataclass
class TextCodec:
    """Text <-> token ids with a fixed vocabulary (``vocabulary[i]`` is id ``i``)."""

    tokenization: str
    vocabulary: list
    sequence_length: int

    def __post_init__(self):
        check_choice(self.tokenization, TOKENIZATIONS, "tokenization")
        self._layer = None

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def layer(self):
        """The ``TextVectorization`` layer (ragged output: pad later, per task)."""
        import keras

        if self._layer is None:
            if self.vocabulary[:2] != [PAD, UNK]:
                raise KerasdlError("a vocabulary starts with the padding and OOV tokens "
                                   f"{[PAD, UNK]}", argument="vocabulary")
            char = self.tokenization == "character"
            self._layer = keras.layers.TextVectorization(
                standardize=_standardizer(self.tokenization),
                split="character" if char else "whitespace",
                vocabulary=self.vocabulary[2:], ragged=True)
        return self._layer

    def encode(self, texts):
        """A list of strings -> a list of id lists (no padding, no truncation)."""
        ids = self.layer()(np.asarray(list(texts), dtype=object))
        return [list(map(int, row)) for row in ids.numpy()]

    def decode(self, ids, strip=(0, START_ID, END_ID), stop_at_end=True):
        """Token ids -> text; stops at the end token, drops padding and start tokens;
        words are joined by spaces, characters by nothing."""
        out = []
        for i in np.asarray(ids).reshape(-1):
            i = int(i)
            if stop_at_end and i == END_ID and self.vocabulary[END_ID] == END:
                break
            if i in strip and (i == 0 or self.vocabulary[i] in (START, END)):
                continue
            out.append(self.vocabulary[i] if 0 <= i < len(self.vocabulary) else UNK)
        return ("" if self.tokenization == "character" else " ").join(out)

    def to_dict(self):
        return {"tokenization": self.tokenization, "sequence_length": self.sequence_length,
                "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_dict(cls, d):
        return cls(d["tokenization"], list(d["vocabulary"]), int(d["sequence_length"]))


def fit_codec(texts, tokenization, vocabulary_size, sequence_length, reserved=()):
    """A :class:`TextCodec` whose vocabulary is the ``vocabulary_size`` most frequent
    tokens of ``texts`` (a ``tf.data`` dataset or list of strings; 0 = all tokens), after
    the padding, OOV and ``reserved`` tokens."""
    import keras
    import tensorflow as tf

    check_choice(tokenization, TOKENIZATIONS, "tokenization")
    char = tokenization == "character"
    limit = None if not vocabulary_size else int(vocabulary_size) - len(reserved)
    adapter = keras.layers.TextVectorization(
        max_tokens=None if limit is None else limit,
        standardize=_standardizer(tokenization),
        split="character" if char else "whitespace")
    if not isinstance(texts, tf.data.Dataset):
        texts = tf.data.Dataset.from_tensor_slices(list(texts))
    adapter.adapt(texts.batch(1024))
    learned = [t for t in adapter.get_vocabulary() if t not in (PAD, UNK, *reserved)]
    return TextCodec(tokenization, [PAD, UNK, *reserved, *learned], int(sequence_length))


def save_codecs(run_dir, **codecs):
    """``RUN/vocabulary.json`` with each named codec (``source``, ``target``, ``text``)."""
    write_json(os.path.join(run_dir, CODEC_FILE),
               {name: codec.to_dict() for name, codec in codecs.items() if codec is not None})


def load_codecs(run_dir):
    """The codecs a run saved, by name; an empty dict for a run without text."""
    path = os.path.join(run_dir, CODEC_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return {name: TextCodec.from_dict(d) for name, d in json.load(f).items()}


@dataclasses.dataclass
class TextData:
    """A text dataset ready for a task: batched ``(inputs, targets)`` pipelines of ids."""

    task: str
    train: Any
    validation: Any
    test: Any
    num_examples: dict
    source: str
    codec: TextCodec
    batch_size: int
    class_names: list | None = None
    target_codec: TextCodec | None = None
    raw_test: list | None = None  # (source text, reference text) pairs for translation
    embedded: bool = False
    # "batch": each batch is padded to its longest sequence (at most the codec's
    # sequence_length), so models must take any length; "fixed": every batch is padded
    # to sequence_length.
    padding: str = "fixed"

    @property
    def num_classes(self):
        return len(self.class_names) if self.class_names else None

    @property
    def vocabulary_size(self):
        return self.codec.vocabulary_size

    def arrays(self, split):
        """``(inputs, targets)`` of a split as numpy arrays (inputs a tuple for seq2seq)."""
        ds = {"train": self.train, "validation": self.validation, "test": self.test}[split]
        if ds is None:
            raise KerasdlError(f"this dataset has no {split} split", argument="split")
        xs, ys = [], []
        for x, y in ds:
            xs.append(x)
            ys.append(y.numpy())
        # Per-batch padded splits come back at the full length, as fixed padding gives.
        width = self.codec.sequence_length if self.padding == "batch" else None
        if isinstance(xs[0], (tuple, list)):
            inputs = tuple(_stack_padded([x[i].numpy() for x in xs], width)
                           for i in range(len(xs[0])))
        else:
            inputs = _stack_padded([x.numpy() for x in xs], width)
        return inputs, _stack_padded(ys, width)

    def describe(self):
        c = self.codec
        length = (f"each batch padded to its longest sequence, at most {c.sequence_length}"
                  if self.padding == "batch" else f"sequences of {c.sequence_length}")
        return (f"{c.tokenization}-level tokens, vocabulary of {c.vocabulary_size:,} "
                f"(0 padding, 1 unknown), {length}")


PADDINGS = ("fixed", "batch")


def trim_padding(ids, *others):
    """``ids`` [batch, length] (0 = padding) without its trailing columns that are padding
    in every row (at least one column kept), and ``others`` cut to the same width. Where
    the model masks padding this changes nothing but the work."""
    import tensorflow as tf

    positions = tf.range(1, tf.shape(ids)[1] + 1)
    width = tf.maximum(tf.reduce_max(tf.where(ids != 0, positions[None, :], 0)), 1)
    return (ids[:, :width],) + tuple(o[:, :width] for o in others)


def _stack_padded(batches, width=None):
    """Batches of ids concatenated, each right-padded with 0 (padding) to ``width`` when
    it is given: per-batch padding gives the batches of one split different widths."""
    if width is not None and batches[0].ndim > 1:
        batches = [b if b.shape[1] == width else
                   np.pad(b, [(0, 0), (0, width - b.shape[1])] + [(0, 0)] * (b.ndim - 2))
                   for b in batches]
    return np.concatenate(batches)


# ------------------------------------------------------------------------------ sources


def _prepared_builder(name, data_dir):
    """A prepared TFDS builder for ``name``, downloading it only where that can work."""
    directory, origin = resolve_data_dir(data_dir)
    builder = tfds_builder(name, directory)
    if not builder.is_prepared():
        why = None
        if offline_forced():
            why = "KERASDL_OFFLINE is set"
        elif not network_available():
            why = (f"the network is unreachable (no connection to {PROBE_HOST[0]} within "
                   "a few seconds)")
        if why:
            raise DataNotFoundError(
                f"Dataset {name!r} is not prepared in {builder.data_dir} (data directory "
                f"from {origin}) and {why}. Point TFDS_DATA_DIR or --data-dir at a folder "
                f"holding a TFDS-prepared copy ({builder.name}/{builder.version}/), or run "
                "once with network access so that TFDS can download it.")
        print(f"Downloading and preparing {name!r} with TFDS into {directory} ...", flush=True)
        builder.download_and_prepare()
    return builder


def _text_and_label_keys(builder, name, label_key=None):
    import tensorflow_datasets as tfds

    features = builder.info.features
    texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if len(texts) != 1 or not labels:
        raise KerasdlError(
            f"Dataset {name!r} is not a text-classification dataset: it needs one text "
            f"feature and a class label (it has {dict(features)})", argument="dataset")
    if label_key is None:
        label_key = labels[0]
    elif label_key not in labels:
        raise KerasdlError(f"{name!r} has no class label {label_key!r}; it has {labels}",
                           argument="dataset")
    return texts[0], label_key


def _is_labelled(builder, split, label_key):
    """GLUE's test splits carry label -1 (their labels are withheld)."""
    ds = builder.as_dataset(split=f"{split}[:32]")
    return any(int(ex[label_key]) >= 0 for ex in ds)


# ------------------------------------------------------------------------ classification


def classification_split_plan(builder, name, label_key, validation_fraction, max_examples):
    """``({split: (TFDS split, start, end)}, test split name)`` of a sentence-classification
    dataset: test is ``test`` when labelled, else ``validation`` (GLUE); validation is
    the dataset's own or the end of ``train``; ``max_examples`` caps every split. Shared
    by the classifier's loader and MLM pretraining, so both read the same sentences."""
    splits = {s: info.num_examples for s, info in builder.info.splits.items()}
    if "test" in splits and _is_labelled(builder, "test", label_key):
        test_split = "test"
        val_split = "validation" if "validation" in splits else None
    elif "validation" in splits:
        test_split, val_split = "validation", None
    else:
        raise KerasdlError(f"{name!r} has no labelled test or validation split",
                           argument="dataset")
    n_train = splits["train"]
    plan = {"train": ("train", 0, n_train), "test": (test_split, 0, splits[test_split])}
    if val_split:
        plan["validation"] = (val_split, 0, splits[val_split])
    elif validation_fraction:
        cut = n_train - max(1, round(validation_fraction * n_train))
        plan["validation"], plan["train"] = ("train", cut, n_train), ("train", 0, cut)
    if max_examples is not None:
        plan = {k: (base, lo, min(hi, lo + int(max_examples)))
                for k, (base, lo, hi) in plan.items()}
    return plan, test_split


def load_text_classification(dataset, *, tokenization="word", vocabulary_size=20_000,
                             sequence_length=64, batch_size=64, validation_fraction=0.1,
                             data_dir=None, max_examples=None, seed=0, codec=None,
                             reserved=(), padding="fixed"):
    """Sentences and class labels from a TFDS text-classification dataset.

    ``dataset`` is a TFDS name, optionally with the label to use after a ``#``
    (``trec#label-fine``; default: the first class label). The test split is the
    dataset's ``test`` split when it is labelled, else its ``validation`` split (GLUE
    withholds test labels: SST-2's published accuracies are on validation); a validation
    split is then carved off the end of ``train`` (``validation_fraction``). Sequences are
    padded or truncated to ``sequence_length`` tokens; with ``padding="batch"`` each
    batch then loses its all-padding columns (:func:`trim_padding`). ``codec`` (a saved
    run's) fixes the vocabulary instead of fitting one on the training split;
    ``reserved`` tokens (start and end) come first in a fitted vocabulary.
    """
    import tensorflow as tf

    name, _, label_key = str(dataset).partition("#")
    builder = _prepared_builder(name, data_dir)
    text_key, label_key = _text_and_label_keys(builder, name, label_key or None)
    plan, test_split = classification_split_plan(builder, name, label_key,
                                                 validation_fraction, max_examples)
    raw, counts = {}, {}
    for split, (base, lo, hi) in plan.items():
        raw[split] = builder.as_dataset(split=f"{base}[{lo}:{hi}]").map(
            lambda ex: (ex[text_key], ex[label_key]))
        counts[split] = hi - lo
    if codec is None:
        codec = fit_codec(raw["train"].map(lambda t, y: t), tokenization, vocabulary_size,
                          sequence_length, reserved=reserved)
    layer = codec.layer()
    length = codec.sequence_length

    check_choice(padding, PADDINGS, "padding")

    def vectorize(texts, labels):
        ids = tf.cast(layer(texts).to_tensor(default_value=0, shape=[None, length]), "int32")
        return (trim_padding(ids)[0] if padding == "batch" else ids), labels

    def pipeline(split, training):
        ds = raw[split]
        if training:
            ds = ds.shuffle(min(counts[split], 100_000), seed=seed,
                            reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(vectorize, num_parallel_calls=tf.data.AUTOTUNE) \
                 .prefetch(tf.data.AUTOTUNE)

    label = builder.info.features[label_key]
    return TextData(
        task="sequence_classification",
        train=pipeline("train", True),
        validation=pipeline("validation", False) if "validation" in raw else None,
        test=pipeline("test", False),
        num_examples=counts,
        source=f"TFDS {builder.name}:{builder.version} ({text_key} -> {label_key}; test = "
               f"its {test_split} split) from {builder.data_dir}",
        codec=codec,
        batch_size=batch_size,
        class_names=list(label.names),
        padding=padding,
    )


# ----------------------------------------------------------------------- language model


def _tfds_corpus(name, data_dir):
    """``{train, validation, test: text}`` of a TFDS dataset holding whole texts."""
    import tensorflow_datasets as tfds

    builder = _prepared_builder(name, data_dir)
    texts = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Text)]
    if len(texts) != 1:
        raise KerasdlError(f"Dataset {name!r} has no single text feature to model "
                           f"(features: {dict(builder.info.features)})", argument="dataset")
    corpus = {}
    for split in builder.info.splits:
        parts = [ex[texts[0]].numpy().decode("utf-8") for ex in builder.as_dataset(split=split)]
        corpus[split] = "\n".join(parts)
    if "train" not in corpus:
        raise KerasdlError(f"{name!r} has no train split", argument="dataset")
    return corpus, f"TFDS {builder.name}:{builder.version} from {builder.data_dir}"


def _file_corpus(path):
    """A plain-text file split 90/5/5 by position (train, validation, test)."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"no text file at {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if len(text) < 1000:
        raise KerasdlError(f"{path} holds {len(text)} characters; a language model needs "
                           "at least a few thousand", argument="dataset")
    a, b = int(0.9 * len(text)), int(0.95 * len(text))
    return ({"train": text[:a], "validation": text[a:b], "test": text[b:]},
            f"text file {os.path.abspath(path)} (first 90% train, next 5% validation, "
            "last 5% test)")


def load_language_modeling(dataset, *, tokenization="character", vocabulary_size=0,
                           sequence_length=100, batch_size=64, data_dir=None,
                           max_examples=None, seed=0, codec=None, **_):
    """Fixed-length windows of a text and their next-token targets.

    ``dataset`` is a TFDS name whose splits hold whole texts (``tiny_shakespeare``) or the
    path of a plain-text file (split 90/5/5). Each split's tokens are cut into
    consecutive windows of ``sequence_length + 1``; a window gives the inputs (all but
    the last token) and the targets (all but the first). ``max_examples`` caps the
    windows per split. Training windows are reshuffled every epoch.
    """
    import tensorflow as tf

    path = os.path.expanduser(str(dataset))
    if path.endswith(".txt") or os.path.isfile(path):
        corpus, source = _file_corpus(path)
    else:
        corpus, source = _tfds_corpus(dataset, data_dir)
    if codec is None:
        codec = fit_codec([corpus["train"]], tokenization, vocabulary_size, sequence_length)
    length = codec.sequence_length
    pipelines, counts = {}, {}
    for split in ("train", "validation", "test"):
        if split not in corpus:
            pipelines[split] = None
            continue
        ids = np.asarray(codec.layer()(np.asarray([corpus[split]], dtype=object))[0].numpy(),
                         dtype="int32")
        n = len(ids) // (length + 1)
        if max_examples is not None:
            n = min(n, int(max_examples))
        if n == 0:
            raise KerasdlError(f"the {split} split has {len(ids)} tokens, fewer than one "
                               f"window of {length + 1}", argument="sequence_length")
        windows = ids[: n * (length + 1)].reshape(n, length + 1)
        ds = tf.data.Dataset.from_tensor_slices(windows)
        if split == "train":
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        pipelines[split] = ds.batch(batch_size).map(
            lambda w: (w[:, :-1], w[:, 1:]), num_parallel_calls=tf.data.AUTOTUNE
        ).prefetch(tf.data.AUTOTUNE)
        counts[split] = n
    return TextData(task="language_modeling", train=pipelines["train"],
                    validation=pipelines["validation"], test=pipelines["test"],
                    num_examples=counts, source=source, codec=codec, batch_size=batch_size)


# ---------------------------------------------------------------------- token tagging

TAG_PADDING = -1  # the target of a padding position: the loss and metrics ignore it
_TAGGING_SPLITS = {"train": ("train",), "validation": ("dev", "valid", "validation", "val"),
                   "test": ("test",)}


def read_conll(path, column=None):
    """Sentences of a CoNLL-style file as ``[(tokens, tags), ...]``.

    One token per line, fields separated by whitespace, a blank line between sentences;
    ``-DOCSTART-`` lines are skipped. The token is the first field and the tag the last
    (``column`` picks another, 0-based). For CoNLL-U files (``.conllu``) the token is the
    FORM field and the tag UPOS by default (``column=4`` gives XPOS); comment lines and
    multi-word or empty-node rows are skipped.
    """
    conllu = str(path).endswith(".conllu")
    token_field = 1 if conllu else 0
    if column is None:
        column = 3 if conllu else -1
    opener = gzip.open if str(path).endswith(".gz") else open
    sentences, tokens, tags = [], [], []
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                if tokens:
                    sentences.append((tokens, tags))
                tokens, tags = [], []
                continue
            if fields[0] == "-DOCSTART-" or (conllu and (line.startswith("#")
                                                        or not fields[0].isdigit())):
                continue
            try:
                tag = fields[column]
            except IndexError:
                raise KerasdlError(f"{path}, line {number}: no field {column} in "
                                   f"{line.strip()!r}", argument="dataset") from None
            tokens.append(fields[token_field])
            tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise KerasdlError(f"{path} holds no tagged sentences (one 'token ... tag' line per "
                           "token, a blank line between sentences)", argument="dataset")
    return sentences


def _tagging_files(path):
    """``{split: file}`` of a folder holding train/dev/test files."""
    found = {}
    for name in sorted(os.listdir(path)):
        stem = name.lower().split(".")[0]
        for split, stems in _TAGGING_SPLITS.items():
            if split not in found and any(stem == s or stem.endswith(("-" + s, "_" + s))
                                          for s in stems):
                found[split] = os.path.join(path, name)
    if "train" not in found:
        raise DataNotFoundError(f"no training file in {path} (expected a name like "
                                "train.txt, en_ewt-ud-train.conllu or train.conll)")
    return found


def load_token_classification(dataset, *, tokenization="token", vocabulary_size=20_000,
                              sequence_length=64, batch_size=64, validation_fraction=0.1,
                              data_dir=None, max_examples=None, seed=0, codec=None,
                              class_names=None):
    """Tagged sentences (part of speech, named entities) from CoNLL-style files.

    ``dataset`` is a file (its sentences split 90/5/5 in order) or a folder holding
    ``train``, ``dev``/``valid`` and ``test`` files, optionally followed by ``#N``, the
    0-based column of the tag. Tokens are lower-cased and never re-split (tokenisation
    ``token``), so every position keeps its tag; sentences are padded or cut to
    ``sequence_length``, padding positions get the target ``TAG_PADDING`` (-1). Tags are
    the training split's tags in sorted order (``class_names`` fixes them for a saved
    run); a tag of another split that training never saw is an error.
    """
    import tensorflow as tf

    path, _, column = os.path.expanduser(str(dataset)).partition("#")
    if column and not column.lstrip("-").isdigit():
        raise KerasdlError(f"the tag column after '#' must be an integer, got {column!r}",
                           argument="dataset")
    column = int(column) if column else None
    if os.path.isdir(path):
        files = _tagging_files(path)
        sentences = {split: read_conll(f, column) for split, f in files.items()}
        source = f"tagged files in {os.path.abspath(path)} ({', '.join(files)})"
        if "validation" not in sentences and validation_fraction:
            train = sentences["train"]
            cut = len(train) - max(1, round(validation_fraction * len(train)))
            sentences["train"], sentences["validation"] = train[:cut], train[cut:]
    elif os.path.isfile(path):
        everything = read_conll(path, column)
        a, b = int(0.9 * len(everything)), int(0.95 * len(everything))
        sentences = {"train": everything[:a], "validation": everything[a:b],
                     "test": everything[b:]}
        source = (f"tagged file {os.path.abspath(path)} (first 90% of sentences train, next "
                  "5% validation, last 5% test)")
    else:
        raise DataNotFoundError(
            f"no tagged file or folder at {path}: token tagging reads CoNLL-style files "
            "(one 'token ... tag' line per token, a blank line between sentences)")
    if not sentences.get("test"):
        raise KerasdlError(f"{path} gives no test sentences", argument="dataset")
    if max_examples is not None:
        sentences = {k: v[: int(max_examples)] for k, v in sentences.items()}
    if codec is None:
        codec = fit_codec([" ".join(t) for t, _ in sentences["train"]], tokenization,
                          vocabulary_size, sequence_length)
    if class_names is None:
        class_names = sorted({tag for _, tags in sentences["train"] for tag in tags})
    tag_ids = {tag: i for i, tag in enumerate(class_names)}
    length = codec.sequence_length
    pipelines, counts = {}, {}
    for split in ("train", "validation", "test"):
        rows = sentences.get(split)
        if not rows:
            pipelines[split] = None
            continue
        ids = codec.encode(" ".join(tokens) for tokens, _ in rows)
        x = np.zeros((len(rows), length), "int32")
        y = np.full((len(rows), length), TAG_PADDING, "int32")
        for i, ((tokens, tags), row) in enumerate(zip(rows, ids)):
            if len(row) != len(tokens):  # a token holding whitespace would shift its tags
                raise KerasdlError(f"{split} sentence {i + 1}: {len(tokens)} tokens became "
                                   f"{len(row)} ids", argument="dataset")
            unseen = [t for t in tags if t not in tag_ids]
            if unseen:
                raise KerasdlError(f"{split} sentence {i + 1} has the tag {unseen[0]!r}, which "
                                   f"training does not know (tags: {class_names})",
                                   argument="dataset")
            n = min(len(row), length)
            x[i, :n] = row[:n]
            y[i, :n] = [tag_ids[t] for t in tags[:n]]
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if split == "train":
            ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
        pipelines[split] = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        counts[split] = len(rows)
    return TextData(task="token_classification", train=pipelines["train"],
                    validation=pipelines["validation"], test=pipelines["test"],
                    num_examples=counts, source=source, codec=codec, batch_size=batch_size,
                    class_names=list(class_names))


# -------------------------------------------------------------------------- translation


def multi30k_dir(data_dir=None, download=True):
    """The folder with Multi30k task 1's raw ``.gz`` files: ``raw/multi30k`` beside the
    TFDS data directory (``../shared/data`` layout), else ``KERASDL_RAW_DATA_DIR/multi30k``,
    else downloaded from the official repository into ``~/.keras/datasets/multi30k``."""
    tfds_dir, _ = resolve_data_dir(data_dir)
    candidates = [os.path.join(os.path.dirname(tfds_dir), "raw", "multi30k")]
    if os.environ.get("KERASDL_RAW_DATA_DIR"):
        candidates.insert(0, os.path.join(os.environ["KERASDL_RAW_DATA_DIR"], "multi30k"))
    cache = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "multi30k")
    candidates.append(cache)
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "train.en.gz")):
            return folder
    if not download or offline_forced() or not network_available():
        raise DataNotFoundError(
            f"Multi30k's raw files are not in {', '.join(candidates)} and the network is "
            "unreachable or downloads are off. Set KERASDL_RAW_DATA_DIR to a folder holding "
            "multi30k/{train,val,test_2016_flickr}.{en,de}.gz.")
    import keras

    os.makedirs(cache, exist_ok=True)
    for split in MULTI30K_SPLITS.values():
        for lang in MULTI30K_LANGUAGES[:2]:
            keras.utils.get_file(f"{split}.{lang}.gz", MULTI30K_URL + f"{split}.{lang}.gz",
                                 cache_dir=os.path.dirname(os.path.dirname(cache)),
                                 cache_subdir="datasets/multi30k")
    return cache


def _read_lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _framed(words, length, per_batch=False):
    """Ragged token ids -> ``[start] words [end]`` cut to at most ``length + 1`` and padded
    to that (or, ``per_batch``, to the batch's longest) (int32): the decoder reads all but
    the last position and predicts all but the first."""
    import tensorflow as tf

    words = words[:, : length - 1]
    rows = words.nrows()
    start = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], tf.constant(START_ID, words.dtype)))
    end = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], tf.constant(END_ID, words.dtype)))
    full = tf.concat([start, words, end], axis=1).to_tensor(
        default_value=0, shape=None if per_batch else [None, length + 1])
    return tf.cast(full, "int32")


def load_conditional_language_modeling(dataset, *, tokenization="word",
                                       vocabulary_size=10_000, sequence_length=32,
                                       batch_size=64, validation_fraction=0.1, data_dir=None,
                                       max_examples=None, seed=0, codec=None):
    """One-to-many data: a class label in, its sentence out.

    The sentences and labels of a text-classification dataset
    (:func:`load_text_classification`: ``trec``, ``glue/sst2``) become
    ``((label [batch, 1], [start] words), words [end])`` pairs, padded to
    ``sequence_length`` + 1 tokens, so a model learns to write a sentence of a class.
    """
    if codec is not None and codec.vocabulary[2:4] != [START, END]:
        raise KerasdlError("a conditional language model's vocabulary needs the start and "
                           "end tokens at ids 2 and 3", argument="codec")
    data = load_text_classification(
        dataset, tokenization=tokenization, vocabulary_size=vocabulary_size,
        sequence_length=sequence_length, batch_size=batch_size,
        validation_fraction=validation_fraction, data_dir=data_dir,
        max_examples=max_examples, seed=seed, codec=codec, reserved=(START, END))
    import tensorflow as tf

    length = data.codec.sequence_length

    def frame(ids, labels):
        full = _framed(tf.RaggedTensor.from_tensor(ids, padding=0), length)
        return (tf.cast(labels, "int32")[:, None], full[:, :-1]), full[:, 1:]

    return dataclasses.replace(
        data, task="conditional_language_modeling",
        train=data.train.map(frame), test=data.test.map(frame),
        validation=None if data.validation is None else data.validation.map(frame))


def load_translation(dataset="multi30k", *, vocabulary_size=10_000, sequence_length=40,
                     batch_size=64, data_dir=None, max_examples=None, seed=0, codec=None,
                     target_codec=None, padding="batch", **_):
    """Sentence pairs as ``((source ids, target input ids), target output ids)``.

    ``dataset`` is ``multi30k`` (German to English) or ``multi30k:SRC-TGT`` with languages
    from en, de, fr, cs. Splits: train, val, test_2016_flickr. Word-level tokens, lower-
    cased, punctuation split off. The target is ``[start] words [end]``, at most
    ``sequence_length + 1`` tokens; the decoder reads it without the last token and
    predicts it without the first. Sources are cut to ``sequence_length``. Each batch is
    padded only to its longest sentence (``padding="batch"``; ``"fixed"`` pads every
    batch to ``sequence_length``): the models mask padding, and the longest German
    sentence of a shuffled Multi30k batch of 64 has about 26 tokens on average, against
    the fixed 40 every step used to compute. Models for this data must take sequences of
    any length (``sequence_length=None``).
    """
    import tensorflow as tf

    name, _, pair = str(dataset).partition(":")
    if name != "multi30k":
        raise KerasdlError(f"unknown translation dataset {dataset!r}; available: multi30k, "
                           "multi30k:SRC-TGT", argument="dataset")
    src_lang, _, tgt_lang = (pair or "de-en").partition("-")
    for lang in (src_lang, tgt_lang):
        check_choice(lang, MULTI30K_LANGUAGES, "dataset")
    folder = multi30k_dir(data_dir)
    text = {}
    for split, stem in MULTI30K_SPLITS.items():
        src = _read_lines(os.path.join(folder, f"{stem}.{src_lang}.gz"))
        tgt = _read_lines(os.path.join(folder, f"{stem}.{tgt_lang}.gz"))
        if len(src) != len(tgt):
            raise KerasdlError(f"{stem}: {len(src)} {src_lang} lines but {len(tgt)} "
                               f"{tgt_lang} lines", argument="dataset")
        if max_examples is not None:
            src, tgt = src[: int(max_examples)], tgt[: int(max_examples)]
        text[split] = (src, tgt)
    if codec is None:
        codec = fit_codec(text["train"][0], "word", vocabulary_size, sequence_length)
    if target_codec is None:
        target_codec = fit_codec(text["train"][1], "word", vocabulary_size, sequence_length,
                                 reserved=(START, END))
    length = codec.sequence_length
    src_layer, tgt_layer = codec.layer(), target_codec.layer()

    check_choice(padding, PADDINGS, "padding")
    per_batch = padding == "batch"

    def vectorize(src, tgt):
        s = src_layer(src)[:, :length].to_tensor(default_value=0,
                                                 shape=None if per_batch else [None, length])
        # At least one position, so that a batch of empty sources still feeds the RNN.
        s = tf.pad(s, [[0, 0], [0, tf.maximum(1 - tf.shape(s)[1], 0)]])
        full = _framed(tgt_layer(tgt), length, per_batch=per_batch)
        return (tf.cast(s, "int32"), full[:, :-1]), full[:, 1:]

    def pipeline(split, training):
        src, tgt = text[split]
        ds = tf.data.Dataset.from_tensor_slices((src, tgt))
        if training:
            ds = ds.shuffle(len(src), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(vectorize, num_parallel_calls=tf.data.AUTOTUNE) \
                 .prefetch(tf.data.AUTOTUNE)

    return TextData(
        task="seq2seq",
        train=pipeline("train", True),
        validation=pipeline("validation", False),
        test=pipeline("test", False),
        num_examples={s: len(text[s][0]) for s in text},
        source=f"Multi30k task 1 {src_lang}->{tgt_lang} (train / val / test_2016_flickr) "
               f"from {folder}",
        codec=codec,
        target_codec=target_codec,
        batch_size=batch_size,
        raw_test=list(zip(*text["test"])),
        padding=padding,
    )


def check_sequence_settings(tokenization, vocabulary_size, sequence_length):
    check_choice(tokenization, TOKENIZATIONS, "tokenization")
    check_positive_int(sequence_length, "sequence_length")
    if not (isinstance(vocabulary_size, int) and vocabulary_size >= 0):
        raise KerasdlError(f"vocabulary_size must be an integer >= 0 (0: every token), got "
                           f"{vocabulary_size!r}", argument="vocabulary_size")
