"""Translating with a trained seq2seq run: sentences in, detokenised sentences out, BLEU.

:func:`translate` encodes source sentences with the run's source vocabulary, decodes
with greedy or beam search (:mod:`kerasdl.decoding`), turns the ids back into words with
the target vocabulary and joins the punctuation that tokenisation split off
(:func:`detokenize`). :func:`evaluate_bleu` does this for a run's test sentences and
scores them with sacreBLEU (:func:`kerasdl.metrics.bleu`) against the raw references;
:func:`attention_map` gives the attention weights behind one translation.

Decoding speed. The generic step function (:func:`kerasdl.decoding.seq2seq_step_fn`)
re-runs the whole model, encoder included, on every prefix. For kerasdl's recurrent
encoder-decoders (``seq2seq_bahdanau``, ``seq2seq_luong``, ``seq2seq_luong_dot``) the
step function here runs their own layers instead: the encoder once per batch of
sources, and the decoder GRU one token per step from the state it reached on the
prefix (states are kept for the prefixes of the previous step, which every search
extends by one token). It gives the model's logits (the tests compare the two); any
other seq2seq model falls back to the generic step, with prefixes padded to the
model's fixed target length when it has one.
"""

from __future__ import annotations

import gzip
import os
import time

import numpy as np

from kerasdl.errors import KerasdlError, check_fraction, check_positive_int

__all__ = ["attention_map", "detokenize", "evaluate_bleu", "load_test_pairs", "translate"]

# Tokens glued to the word before them ("dog ." -> "dog.") or to the word after them.
_NO_SPACE_BEFORE = {".", ",", "!", "?", ":", ";", ")", "]", "}", "%", "»", "”", "…"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "¿", "¡", "«", "„", "“"}
# Tokens that join two word tokens without spaces ("t - shirt" -> "t-shirt").
_JOINERS = {"-", "/", "@", "_"}
_APOSTROPHES = {"'", "’"}
# English clitics after an apostrophe ("man ' s" -> "man's", "isn ' t" -> "isn't").
_CLITICS = {"s", "t", "re", "ve", "ll", "d", "m"}


def _is_word(token):
    return any(ch.isalnum() for ch in token)


def detokenize(text):
    """Undo the word tokenisation of :mod:`kerasdl.data.text` (punctuation split off as
    tokens of its own) so that BLEU sees text written the usual way: ``"a dog ."`` ->
    ``"a dog."``, ``"a man ' s t - shirt , red"`` -> ``"a man's t-shirt, red"``,
    ``"( 3 . 5 )"`` -> ``"(3.5)"``, ``'he said " hi "'`` -> ``'he said "hi"'``.

    ``text`` is a string of space-separated tokens or a list of tokens. Apostrophes join
    a word to an English clitic (s, t, re, ve, ll, d, m) or follow a one- or two-letter
    elided word (French "l ' homme" -> "l'homme"); otherwise they close the word before
    them ("dogs ' toys" -> "dogs' toys"). Straight double quotes alternate between
    opening and closing."""
    if isinstance(text, str):
        tokens = text.split()
    elif isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
        tokens = [t for t in text if t.strip()]
    else:
        raise KerasdlError("text must be a string or a list of string tokens",
                           argument="text")
    if not tokens:
        return ""
    n = len(tokens)
    # glue[i]: no space between tokens[i - 1] and tokens[i].
    glue = [False] * n
    open_quote = False
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i > 0 else None
        after = tokens[i + 1] if i + 1 < n else None
        if token in _NO_SPACE_BEFORE:
            glue[i] = True
        if before in _NO_SPACE_AFTER:
            glue[i] = True
        if token == '"':
            if open_quote:
                glue[i] = True  # a closing quote sticks to the word before it
            elif after is not None:
                glue[i + 1] = True  # an opening quote sticks to the word after it
            open_quote = not open_quote
        if token in _JOINERS and before is not None and after is not None \
                and _is_word(before) and _is_word(after):
            glue[i] = glue[i + 1] = True
        if token in (".", ",") and before is not None and after is not None \
                and before[-1:].isdigit() and after[:1].isdigit():
            glue[i] = glue[i + 1] = True  # 3 . 5 -> 3.5, 1 , 000 -> 1,000
        if token in _APOSTROPHES and before is not None and _is_word(before):
            glue[i] = True
            if after is not None and _is_word(after) and (
                    after.lower() in _CLITICS or (len(before) <= 2 and before.isalpha())):
                glue[i + 1] = True
    out = [tokens[0]]
    for i in range(1, n):
        out.append(tokens[i] if glue[i] else " " + tokens[i])
    return "".join(out)


# --- step functions ---------------------------------------------------------------------

_CACHED_LAYERS = ("source_embedding", "encoder", "encoder_final", "decoder_init",
                  "encoder_projection", "target_embedding", "decoder_gru", "attention",
                  "context_and_state", "attentional", "logits")


def _target_length(model):
    """The fixed length of the model's decoder input, or None when it takes any."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 2:
        return None
    length = inputs[1].shape[1] if len(inputs[1].shape) > 1 else None
    return None if length is None else int(length)


def _source_length(model):
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 2 or len(inputs[0].shape) < 2:
        return None
    length = inputs[0].shape[1]
    return None if length is None else int(length)


def _pad(ids, length):
    """Rows of ``ids`` padded with 0 (or cut) to ``length`` columns."""
    ids = np.asarray(ids, dtype=np.int32)
    if length is None or ids.shape[1] == length:
        return ids
    if ids.shape[1] > length:
        return ids[:, :length]
    out = np.zeros((ids.shape[0], length), dtype=np.int32)
    out[:, :ids.shape[1]] = ids
    return out


class _PaddedModel:
    """A seq2seq model whose decoder input has a fixed length, callable on shorter
    prefixes: they are padded (padding is masked and the decoder is causal, so the
    positions of the prefix are unchanged) and the outputs cut back to the prefix."""

    def __init__(self, model, length):
        self.model, self.length = model, length

    def __call__(self, inputs, training=False):
        import keras

        source, prefix = inputs
        t = np.shape(prefix)[1]
        out = self.model([source, _pad(prefix, self.length)], training=training)
        if isinstance(out, dict):
            return {k: keras.ops.convert_to_numpy(v)[:, :t] for k, v in out.items()}
        return keras.ops.convert_to_numpy(out)[:, :t]


def _has_kerasdl_layers(model):
    try:
        names = {layer.name for layer in model.layers}
    except AttributeError:
        return False
    return all(name in names for name in _CACHED_LAYERS)


class _CachedSeq2SeqStep:
    """A step function for kerasdl's GRU encoder-decoders that runs the encoder once and
    the decoder one token per step (see the module docstring)."""

    def __init__(self, model, source_ids):
        import keras

        ops = keras.ops
        self.model = model
        layer = model.get_layer
        self.score = "additive" if "query_projection" in {l.name for l in model.layers} \
            else "other"
        source = np.asarray(source_ids, dtype=np.int32)
        mask = source != 0
        s = layer("source_embedding")(source)
        states, forward, backward = layer("encoder")(s, mask=ops.convert_to_tensor(mask))
        start = layer("decoder_init")(layer("encoder_final")([forward, backward]))
        self.keys = ops.convert_to_numpy(layer("encoder_projection")(states))
        self.start = ops.convert_to_numpy(start)
        self.mask = mask
        self.cache = {}

    def _decoder_states(self, prefix, rows):
        """Decoder GRU outputs ``[n, 1, units]`` at the last position of each prefix."""
        import keras

        layer = self.model.get_layer
        n, t = prefix.shape
        previous = np.empty((n, self.start.shape[1]), dtype=np.float32)
        keys = [(int(r), prefix[i, :-1].tobytes()) for i, r in enumerate(rows)]
        missing = []
        for i, key in enumerate(keys):
            state = self.cache.get(key)
            if state is None:
                missing.append(i)
            else:
                previous[i] = state
        if missing:
            missing = np.asarray(missing)
            if t == 1:
                previous[missing] = self.start[rows[missing]]
            else:
                run = layer("decoder_gru")(layer("target_embedding")(prefix[missing, :-1]),
                                           initial_state=self.start[rows[missing]])
                previous[missing] = keras.ops.convert_to_numpy(run)[:, -1]
        out = layer("decoder_gru")(layer("target_embedding")(prefix[:, -1:]),
                                   initial_state=previous)
        out = keras.ops.convert_to_numpy(out)
        # Every search extends the prefixes of the previous step by one token: keep
        # only the states reached now.
        self.cache = {(int(r), prefix[i].tobytes()): out[i, -1] for i, r in enumerate(rows)}
        return out

    def outputs(self, prefix_ids, rows=None):
        """``(logits [n, vocab], attention weights [n, source length])`` of the next token."""
        import keras

        layer = self.model.get_layer
        prefix = np.asarray(prefix_ids, dtype=np.int32)
        rows = np.arange(len(prefix)) if rows is None else np.asarray(rows, dtype=np.int64)
        h = self._decoder_states(prefix, rows)
        keys = self.keys[rows]
        value_mask = keras.ops.convert_to_tensor(self.mask[rows])
        attention = layer("attention")
        if self.score == "additive":
            query = layer("query_projection")(h)
            context, weights = attention([query, keys], mask=[None, value_mask],
                                         return_attention_scores=True)
        elif isinstance(attention, keras.layers.Attention):
            context, weights = attention([h, keys], mask=[None, value_mask],
                                         return_attention_scores=True)
        else:
            context, weights = attention([h, keys], mask=[None, value_mask])
        joined = layer("context_and_state")([context, h])
        logits = layer("logits")(layer("attentional")(joined))
        return (keras.ops.convert_to_numpy(logits)[:, -1],
                keras.ops.convert_to_numpy(weights)[:, -1])

    def __call__(self, prefix_ids, rows=None):
        return self.outputs(prefix_ids, rows)[0]


def _step_fn(model, source_ids):
    """The fastest correct step function for ``model`` on ``source_ids``."""
    from kerasdl.decoding import seq2seq_step_fn

    if _has_kerasdl_layers(model):
        return _CachedSeq2SeqStep(model, source_ids)
    length = _target_length(model)
    return seq2seq_step_fn(model if length is None else _PaddedModel(model, length),
                           source_ids)


# --- checks -----------------------------------------------------------------------------

def _check_model(model):
    if not callable(model):
        raise KerasdlError(f"model must be a Keras seq2seq model, got {type(model).__name__}",
                           argument="model")
    inputs = getattr(model, "inputs", None)
    if inputs is not None and len(inputs) != 2:
        raise KerasdlError(f"model must take [source ids, target-in ids]; it has "
                           f"{len(inputs)} inputs", argument="model")


def _check_codecs(source_codec, target_codec):
    from kerasdl.data.text import END, END_ID, START, START_ID, TextCodec

    for codec, argument in ((source_codec, "source_codec"), (target_codec, "target_codec")):
        if not isinstance(codec, TextCodec):
            raise KerasdlError(f"{argument} must be a TextCodec (load_codecs(run_dir)), got "
                               f"{type(codec).__name__}", argument=argument)
    vocabulary = target_codec.vocabulary
    if len(vocabulary) <= END_ID or vocabulary[START_ID] != START \
            or vocabulary[END_ID] != END:
        raise KerasdlError(f"target_codec must reserve ids {START_ID} and {END_ID} for "
                           f"{START!r} and {END!r} (a translation run's target codec)",
                           argument="target_codec")


def _check_sentences(sentences, argument="sentences"):
    if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)):
        raise KerasdlError(f"{argument} must be a list of strings (pass [sentence] for one)",
                           argument=argument)
    for s in sentences:
        if not isinstance(s, str):
            raise KerasdlError(f"{argument} must hold strings, got {type(s).__name__}",
                               argument=argument)
    return list(sentences)


def _check_max_length(model, target_codec, max_length):
    """Output positions, the start token included: at most one more than the decoder's
    input length (its last position reads a prefix of that length)."""
    limit = _target_length(model)
    if limit is not None:
        limit += 1
    if max_length is None:
        return limit if limit is not None else target_codec.sequence_length + 1
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise KerasdlError(f"max_length must be an integer >= 2 (the start token and one "
                           f"word), got {max_length!r}", argument="max_length")
    if limit is not None and max_length > limit:
        raise KerasdlError(f"max_length must be at most {limit} for this model (its "
                           f"decoder reads {limit - 1} tokens), got {max_length}",
                           argument="max_length")
    return max_length


def _encode_sources(model, source_codec, sentences):
    length = _source_length(model) or source_codec.sequence_length
    rows = source_codec.encode(sentences) if sentences else []
    ids = np.zeros((len(rows), length), dtype=np.int32)
    for i, row in enumerate(rows):
        row = row[:length]
        ids[i, :len(row)] = row
    return ids


def _detokenised(ids, target_codec):
    from kerasdl.data.text import END_ID, START_ID
    from kerasdl.decoding import strip_special

    return [detokenize(target_codec.decode(row))
            for row in strip_special(ids, start_id=START_ID, end_id=END_ID, pad_id=0)]


# --- public API -------------------------------------------------------------------------

def translate(model, source_codec, target_codec, sentences, *, beam_width=1,
              max_length=None, length_penalty=0.6, batch_size=64, progress_every=10):
    """Translations of ``sentences`` (a list of str) as detokenised strings.

    The sentences are encoded with ``source_codec`` (cut to the model's source length),
    decoded greedily (``beam_width=1``) or by beam search (``beam_width`` > 1, scores
    divided by the GNMT length penalty with ``length_penalty`` as alpha), stripped of the
    start, end and padding tokens, turned into words by ``target_codec`` and detokenised
    (:func:`detokenize`). ``max_length`` counts output positions with the start token
    (default: the decoder's input length + 1). Batches of ``batch_size`` sentences; a
    progress line every ``progress_every`` batches (None or 0: silent).
    """
    from kerasdl.data.text import END_ID, START_ID
    from kerasdl.decoding import beam_search, greedy_decode

    _check_model(model)
    _check_codecs(source_codec, target_codec)
    sentences = _check_sentences(sentences)
    beam_width = check_positive_int(beam_width, "beam_width")
    batch_size = check_positive_int(batch_size, "batch_size")
    length_penalty = check_fraction(length_penalty, "length_penalty", low=0.0,
                                    high=float("inf"))
    if progress_every is not None and progress_every != 0:
        progress_every = check_positive_int(progress_every, "progress_every")
    max_length = _check_max_length(model, target_codec, max_length)
    source = _encode_sources(model, source_codec, sentences)
    out, started = [], time.perf_counter()
    batches = -(-len(sentences) // batch_size)
    for b in range(batches):
        chunk = source[b * batch_size:(b + 1) * batch_size]
        step = _step_fn(model, chunk)
        start = np.full(len(chunk), START_ID, dtype=np.int32)
        if beam_width == 1:
            ids = greedy_decode(step, start, max_length, END_ID)
        else:
            ids = beam_search(step, start, beam_width, max_length, END_ID,
                              length_penalty=length_penalty)
        out.extend(_detokenised(ids, target_codec))
        if progress_every and (b + 1) % progress_every == 0 and b + 1 < batches:
            print(f"  translated {len(out):,}/{len(sentences):,} sentences (beam "
                  f"{beam_width}, {time.perf_counter() - started:.0f} s)", flush=True)
    return out


def attention_map(model, source_codec, target_codec, sentence, *, beam_width=1,
                  max_length=None, length_penalty=0.6):
    """``(source tokens, output tokens, weights)`` for one translated sentence.

    ``sentence`` is translated as by :func:`translate`; the model is then run once more
    on the decoded output (teacher-forced on its own prefix) and ``weights[i, j]`` is the
    attention of the step that produced output token ``i`` on source token ``j``
    (``[len(output tokens), len(source tokens)]``). The tokens are the vocabulary's:
    unknown words show as ``[UNK]``; start, end and padding are left out."""
    import keras

    from kerasdl.data.text import END_ID, START_ID
    from kerasdl.decoding import beam_search, greedy_decode, strip_special

    _check_model(model)
    _check_codecs(source_codec, target_codec)
    if not isinstance(sentence, str) or not sentence.strip():
        raise KerasdlError(f"sentence must be a non-empty string, got {sentence!r}",
                           argument="sentence")
    beam_width = check_positive_int(beam_width, "beam_width")
    max_length = _check_max_length(model, target_codec, max_length)
    source = _encode_sources(model, source_codec, [sentence])
    n_source = int((source[0] != 0).sum())
    if n_source == 0:
        raise KerasdlError("sentence has no token the source vocabulary knows (not even "
                           "as unknown words)", argument="sentence")
    step = _step_fn(model, source)
    start = np.full(1, START_ID, dtype=np.int32)
    if beam_width == 1:
        ids = greedy_decode(step, start, max_length, END_ID)
    else:
        ids = beam_search(step, start, beam_width, max_length, END_ID,
                          length_penalty=length_penalty)
    output = strip_special(ids[0], start_id=START_ID, end_id=END_ID, pad_id=0)
    prefix = np.asarray([[START_ID, *output]], dtype=np.int32)
    length = _target_length(model)
    if length is not None and prefix.shape[1] > length:
        prefix = prefix[:, :length]  # an output without end token fills every position
    outputs = model([source, _pad(prefix, length)], training=False)
    if not isinstance(outputs, dict) or "attention" not in outputs:
        raise KerasdlError("model must return a dict with 'attention' weights",
                           argument="model")
    weights = keras.ops.convert_to_numpy(outputs["attention"])[0]
    source_tokens = [source_codec.vocabulary[i] for i in source[0, :n_source]]
    output_tokens = [target_codec.vocabulary[i] for i in output]
    return source_tokens, output_tokens, np.asarray(weights[:len(output_tokens), :n_source])


def load_test_pairs(dataset="multi30k", *, max_examples=None, data_dir=None):
    """``(source sentences, reference sentences)`` of Multi30k's ``test_2016_flickr``, as
    written in the raw files (the references BLEU is computed against). ``dataset`` as
    for :func:`kerasdl.data.text.load_translation` (``multi30k`` = German to English)."""
    from kerasdl.data.text import MULTI30K_LANGUAGES, MULTI30K_SPLITS, multi30k_dir
    from kerasdl.errors import check_choice

    name, _, pair = str(dataset).partition(":")
    if name != "multi30k":
        raise KerasdlError(f"unknown translation dataset {dataset!r}; available: multi30k, "
                           "multi30k:SRC-TGT", argument="dataset")
    src_lang, _, tgt_lang = (pair or "de-en").partition("-")
    for lang in (src_lang, tgt_lang):
        check_choice(lang, MULTI30K_LANGUAGES, "dataset")
    max_examples = check_positive_int(max_examples, "max_examples", allow_none=True)
    folder = multi30k_dir(data_dir)
    stem = MULTI30K_SPLITS["test"]
    lines = []
    for lang in (src_lang, tgt_lang):
        with gzip.open(os.path.join(folder, f"{stem}.{lang}.gz"), "rt", encoding="utf-8") as f:
            lines.append([line.rstrip("\n") for line in f])
    if len(lines[0]) != len(lines[1]):
        raise KerasdlError(f"{stem}: {len(lines[0])} {src_lang} lines but {len(lines[1])} "
                           f"{tgt_lang} lines", argument="dataset")
    if max_examples is not None:
        lines = [side[:max_examples] for side in lines]
    return lines[0], lines[1]


def evaluate_bleu(run_dir, *, beam_widths=(1, 5), max_examples=None, data_dir=None,
                  length_penalty=0.6, batch_size=64, progress_every=10):
    """Corpus BLEU of a trained translation run on ``test_2016_flickr``, per beam width.

    The run (``kerasdl.train.load_run``) translates the test sources with
    :func:`translate`; the detokenised output is scored against the raw reference
    sentences by sacreBLEU, lowercased, with its ``13a`` tokenizer
    (:func:`kerasdl.metrics.bleu`). ``max_examples`` takes the first sentences only.
    Returns ``{beam_width: {"bleu", "signature", "sentences", "seconds", "beam_width",
    "length_penalty", "translations", "sources", "references"}}``; beam width 1 is greedy
    decoding.
    """
    from kerasdl.data.text import load_codecs
    from kerasdl.metrics import bleu
    from kerasdl.train import load_run
    from kerasdl.train.runs import run_dir_of

    if isinstance(beam_widths, int) and not isinstance(beam_widths, bool):
        beam_widths = (beam_widths,)
    if isinstance(beam_widths, str) or not hasattr(beam_widths, "__iter__"):
        raise KerasdlError(f"beam_widths must be a list of positive integers, got "
                           f"{beam_widths!r}", argument="beam_widths")
    beam_widths = list(beam_widths)
    if not beam_widths:
        raise KerasdlError("beam_widths is empty", argument="beam_widths")
    for k in beam_widths:
        check_positive_int(k, "beam_widths")
    max_examples = check_positive_int(max_examples, "max_examples", allow_none=True)
    model, record = load_run(run_dir)
    folder = run_dir_of(run_dir)
    if record.get("task") not in (None, "seq2seq"):
        raise KerasdlError(f"{folder} is a {record['task']} run, not a translation run",
                           argument="run_dir")
    codecs = load_codecs(folder)
    if "source" not in codecs or "target" not in codecs:
        raise KerasdlError(f"{folder} has no source and target vocabularies "
                           "(vocabulary.json of a translation run)", argument="run_dir")
    sources, references = load_test_pairs(record.get("dataset") or "multi30k",
                                          max_examples=max_examples, data_dir=data_dir)
    results = {}
    for k in beam_widths:
        started = time.perf_counter()
        hypotheses = translate(model, codecs["source"], codecs["target"], sources,
                               beam_width=k, length_penalty=length_penalty,
                               batch_size=batch_size, progress_every=progress_every)
        seconds = time.perf_counter() - started
        score = bleu(hypotheses, references, lowercase=True, tokenize="13a")
        results[k] = {"bleu": score.score, "signature": score.signature,
                      "sentences": len(sources), "seconds": seconds, "beam_width": k,
                      "length_penalty": length_penalty if k > 1 else None,
                      "translations": hypotheses, "sources": sources,
                      "references": references}
    return results
