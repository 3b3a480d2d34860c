"""Text generation with kerasdl's GPT models, with a key/value cache.

:func:`kerasdl.decoding.lm_step_fn` re-runs the whole model on the whole prefix at every
step. A causal Transformer does not need to: the keys and values its self-attention
computes at a position never change once that position is in the prefix, so a step can
run the blocks on the new position alone and attend over the keys and values kept from
the earlier steps (the "KV cache" of every GPT implementation since GPT-2's own).

:func:`gpt_cached_step_fn` builds such a step function for models made by kerasdl's gpt
builders (``gpt2``, ``gpt_char_small``; trained or not, with a free or a fixed input
length). It computes with the model's own weights, read from its layers by name at every
call (token embedding, position table, each block's LayerNorms, attention projections and
feed-forward layers, the final LayerNorm and the tied output layer), with ``keras.ops``
only, so it runs on every backend. On TensorFlow the step is one ``tf.function``, traced
once for all shapes; on JAX one ``jax.jit``, compiled once per shape (number of prefixes,
buffer size); other backends run the ops eagerly. Its logits equal ``lm_step_fn``'s up to
float rounding (the tests compare them to 1e-5; measured: under 1e-6).

How the cache follows a search. The searches of :mod:`kerasdl.decoding` call the step
function with prefixes ``[n, t]`` that each extend one prefix of the previous call by one
token, in any order and possibly several times (beam search reorders and duplicates its
beams). The cache holds the keys and values of the previous call's prefixes, looked up by
their tokens: a prefix whose first ``t - 1`` tokens were a prefix of the previous call
runs one position; any other (a fresh prompt, or a call that does not follow the previous
one) is filled by one pass over its tokens. Only the previous call's prefixes are kept, so
memory stays at one entry per live prefix. The entries are keyed by tokens alone, not by
the model's weights: after changing the weights (training), make a new step function.

Lengths. Keys and values live in buffers ``[n, heads, capacity, key_dim]`` per block, of a
few capacities (powers of two from 16 up to the model's position count; the slots after
the prefix are masked), so that JAX compiles a handful of shapes, not one per step. A model
with a free input length reads at most ``max_positions`` tokens (its position table):
longer prefixes raise an error naming ``max_length``. A model built with a fixed input
length ``L`` (as ``kerasdl train`` builds them) reads the last ``L`` tokens of a longer
prefix, as ``lm_step_fn`` does; such a sliding window shifts every position, so those
steps run the full window without a cache.
"""

from __future__ import annotations

import math
import weakref

import keras
import numpy as np

from kerasdl.errors import InvalidArgumentError, KerasdlError, check_choice, check_positive_int

__all__ = ["METHODS", "generate", "gpt_cached_step_fn"]

METHODS = ("greedy", "sample", "beam")
_MIN_CAPACITY = 16
# The traced computation of each model, shared by its step functions so that every
# generate() call does not trace it again.
_TRACED = weakref.WeakKeyDictionary()

# Keyword arguments each search of kerasdl.decoding takes besides the step function,
# the start and max_length (generate() passes those itself).
_SEARCH_KWARGS = {
    "greedy": {"end_id", "pad_id"},
    "sample": {"end_id", "pad_id", "temperature", "top_k", "top_p", "seed"},
    "beam": {"end_id", "pad_id", "beam_width", "length_penalty", "normalization",
             "return_hypotheses"},
}


# --- the model's weights ----------------------------------------------------------------

def _layer(model, name, kind):
    try:
        layer = model.get_layer(name)
    except ValueError:
        layer = None
    if layer is None or not isinstance(layer, kind):
        raise KerasdlError(
            f"gpt_cached_step_fn needs a GPT built by kerasdl's gpt builders (gpt2, "
            f"gpt_char_small); model {getattr(model, 'name', model)!r} has no "
            f"{kind.__name__} layer named {name!r}", argument="model")
    return layer


def _read_gpt(model):
    """The model's layers the cached step computes with, as a flat list of variables,
    and its sizes."""
    from kerasdl.layers.positions import LearnedPositionEmbedding
    from kerasdl.models.transformer.layers import TiedEmbedding

    if not isinstance(model, keras.Model):
        raise KerasdlError(f"model must be a Keras model, got {type(model).__name__}",
                           argument="model")
    names = {layer.name for layer in model.layers}
    embedding = _layer(model, "token_embeddings", TiedEmbedding)
    positions = _layer(model, "position_embeddings", LearnedPositionEmbedding)
    variables = [embedding.embeddings, positions.embeddings]
    epsilons, activations = [], []
    heads = key_dim = None
    count = 0
    while f"block{count + 1}_self_attention" in names:
        block = f"block{count + 1}"
        attention = _layer(model, f"{block}_self_attention", keras.layers.MultiHeadAttention)
        norms = [_layer(model, f"{block}_self_attention_norm", keras.layers.LayerNormalization),
                 _layer(model, f"{block}_ffn_norm", keras.layers.LayerNormalization)]
        inner = _layer(model, f"{block}_ffn_inner", keras.layers.Dense)
        outer = _layer(model, f"{block}_ffn_outer", keras.layers.Dense)
        for norm in norms:
            if norm.rms_scaling or not (norm.center and norm.scale):
                raise KerasdlError(f"{norm.name} is not a plain LayerNorm", argument="model")
        projections = [attention.query_dense, attention.key_dense, attention.value_dense,
                       attention.output_dense]
        if any(p.bias is None for p in projections) or inner.bias is None \
                or outer.bias is None:
            raise KerasdlError(f"{block} has projections without biases, unlike GPT-2",
                               argument="model")
        if tuple(attention.query_dense.kernel.shape) != (
                positions.embeddings.shape[1], attention.num_heads, attention.key_dim):
            raise KerasdlError(f"{attention.name} does not attend over the sequence axis "
                               "with [width, heads, key_dim] projections", argument="model")
        heads, key_dim = attention.num_heads, attention.key_dim
        variables += [norms[0].gamma, norms[0].beta]
        for p in projections:
            variables += [p.kernel, p.bias]
        variables += [norms[1].gamma, norms[1].beta, inner.kernel, inner.bias,
                      outer.kernel, outer.bias]
        epsilons.append((norms[0].epsilon, norms[1].epsilon))
        activations.append(inner.activation)
        count += 1
    if not count:
        raise KerasdlError("gpt_cached_step_fn needs a GPT built by kerasdl's gpt builders; "
                           "the model has no layer block1_self_attention", argument="model")
    final = _layer(model, "final_norm", keras.layers.LayerNormalization)
    variables += [final.gamma, final.beta]
    sizes = {"layers": count, "heads": heads, "key_dim": key_dim,
             "max_positions": positions.max_length, "epsilons": epsilons,
             "final_epsilon": final.epsilon, "activations": activations}
    return variables, sizes


def _fixed_length(model):
    length = model.inputs[0].shape[1] if getattr(model, "inputs", None) else None
    return None if length is None else int(length)


# --- the computation --------------------------------------------------------------------

def _extend(sizes, weights, ids, start, index, keys, values):
    """Run the blocks on ``ids`` ``[n, s]`` at positions ``start .. start + s - 1``, with
    the keys and values of the earlier positions in rows ``index`` (``[n]``) of ``keys``
    and ``values`` (one ``[rows, heads, capacity, key_dim]`` buffer per block). Returns
    the next-token logits after the last position ``[n, vocab]`` and the ``[n, heads,
    capacity, key_dim]`` buffers with the new positions written in. Pure ``keras.ops``
    (matmuls rather than einsums: they stay cheap when the shapes are only known at run
    time); traced by tf.function / jax.jit."""
    ops = keras.ops
    heads, key_dim = sizes["heads"], sizes["key_dim"]
    embeddings, table = weights[0], weights[1]
    n, s = ops.shape(ids)[0], ops.shape(ids)[1]
    capacity = ops.shape(keys[0])[2]
    width = ops.shape(table)[1]
    start = ops.cast(start, "int32")
    x = ops.take(embeddings, ids, axis=0) + ops.slice(table, (start, 0), (s, width))[None]
    # Query i (position start + i) may attend to the buffer's positions 0 .. start + i;
    # the buffer's later slots hold zeros or stale entries and are masked out.
    query_positions = start + ops.arange(s, dtype="int32")
    allowed = ops.arange(capacity, dtype="int32")[None, :] <= query_positions[:, None]
    allowed = allowed[None, None]  # [1, 1, s, capacity]
    scale = 1.0 / math.sqrt(key_dim)
    zero = ops.zeros((), "int32")

    def split_heads(t):  # [n, s, heads * key_dim] -> [n, heads, s, key_dim]
        return ops.transpose(ops.reshape(t, (n, s, heads, key_dim)), (0, 2, 1, 3))

    new_keys, new_values = [], []
    i = 2
    for layer in range(sizes["layers"]):
        (g1, b1, wq, bq, wk, bk, wv, bv, wo, bo, g2, b2, w1, c1, w2, c2) = weights[i:i + 16]
        i += 16
        eps1, eps2 = sizes["epsilons"][layer]
        h = ops.layer_normalization(x, g1, b1, axis=-1, epsilon=eps1)
        # The three projections as one matmul: [width, 3 * heads * key_dim].
        kernel = ops.concatenate([ops.reshape(w, (-1, heads * key_dim)) for w in (wq, wk, wv)],
                                 axis=1)
        bias = ops.concatenate([ops.reshape(b, (-1,)) for b in (bq, bk, bv)], axis=0)
        q, k, v = ops.split(ops.matmul(h, kernel) + bias, 3, axis=-1)
        cached_k = ops.slice_update(ops.take(keys[layer], index, axis=0),
                                    (zero, zero, start, zero), split_heads(k))
        cached_v = ops.slice_update(ops.take(values[layer], index, axis=0),
                                    (zero, zero, start, zero), split_heads(v))
        new_keys.append(cached_k)
        new_values.append(cached_v)
        scores = ops.matmul(split_heads(q * scale), ops.swapaxes(cached_k, 2, 3))
        scores = ops.where(allowed, scores, -1e9)  # [n, heads, s, capacity]
        attended = ops.matmul(ops.softmax(scores, axis=-1), cached_v)
        attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (n, s, heads * key_dim))
        x = x + ops.matmul(attended, ops.reshape(wo, (heads * key_dim, -1))) + bo
        h = ops.layer_normalization(x, g2, b2, axis=-1, epsilon=eps2)
        h = sizes["activations"][layer](ops.matmul(h, w1) + c1)
        x = x + ops.matmul(h, w2) + c2
    gamma, beta = weights[i], weights[i + 1]
    last = ops.layer_normalization(x[:, -1, :], gamma, beta, axis=-1,
                                   epsilon=sizes["final_epsilon"])
    logits = ops.matmul(last, ops.transpose(embeddings))
    return logits, new_keys, new_values


def _make_extend(sizes, variables, compiled):
    """``extend(ids, start, index, keys, values)``: :func:`_extend` with the variables'
    current values, traced by the backend (TensorFlow: a ``tf.function`` reading the
    variables; JAX: ``jax.jit`` taking their arrays) when ``compiled``, else eager."""
    backend = keras.backend.backend()
    if compiled and backend == "tensorflow":
        import tensorflow as tf

        buffer = tf.TensorSpec((None, sizes["heads"], None, sizes["key_dim"]),
                               variables[0].dtype)
        # One signature for every shape: no retracing, and a cheap call.
        signature = [tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((), tf.int32),
                     tf.TensorSpec((None,), tf.int32), [buffer] * sizes["layers"],
                     [buffer] * sizes["layers"]]

        # Not jit_compile: XLA compiles once per shape, and beam search changes the
        # number of prefixes from step to step.
        @tf.function(input_signature=signature)
        def extend(ids, start, index, keys, values):
            return _extend(sizes, [v.value for v in variables], ids, start, index, keys,
                           values)

        return extend
    function = (lambda weights, *args: _extend(sizes, weights, *args))
    if compiled and backend == "jax":
        import jax

        function = jax.jit(function)
    return lambda *args: function([v.value for v in variables], *args)


def _traced(model, sizes, variables):
    """The model's traced ``extend`` (made once per model and backend)."""
    key = keras.backend.backend()
    entry = _TRACED.get(model)
    if entry is None or entry[0] != key:
        entry = (key, _make_extend(sizes, variables, True))
        _TRACED[model] = entry
    return entry[1]


# --- the step function ------------------------------------------------------------------

class _CachedGPTStep:
    """The step function of :func:`gpt_cached_step_fn`."""

    def __init__(self, model, compiled=True):
        self.model = model
        self._variables, self._sizes = _read_gpt(model)
        self.max_positions = self._sizes["max_positions"]
        self.fixed_length = _fixed_length(model)
        # The most tokens one pass reads: the fixed window, else the position table.
        self.window = self.fixed_length or self.max_positions
        self._extend = (_traced(model, self._sizes, self._variables) if compiled
                        else _make_extend(self._sizes, self._variables, False))
        self.positions_computed = 0  # positions run through the blocks, for the curious
        self.reset()

    def reset(self):
        """Forget the cached keys and values."""
        self._entries, self._length = {}, None
        self._keys = self._values = None

    def _capacity(self, t):
        return min(self.window, max(_MIN_CAPACITY, 1 << (t - 1).bit_length()))

    def _run(self, ids, start, index, keys, values):
        self.positions_computed += int(ids.shape[0] * ids.shape[1])
        ops = keras.ops
        return self._extend(ops.convert_to_tensor(ids, "int32"),
                            ops.convert_to_tensor(start, "int32"),
                            ops.convert_to_tensor(index, "int32"), keys, values)

    def _fill(self, prefix, capacity):
        """Logits and buffers of ``prefix`` from one pass over all its tokens."""
        shape = (1, self._sizes["heads"], capacity, self._sizes["key_dim"])
        empty = keras.ops.zeros(shape, self._variables[0].dtype)
        layers = self._sizes["layers"]
        return self._run(prefix, 0, np.zeros(len(prefix), np.int32), [empty] * layers,
                         [empty] * layers)

    def _continue(self, prefix, rows_before, capacity):
        """Logits and buffers of ``prefix``, whose first ``t - 1`` tokens are the
        previous call's prefixes ``rows_before``: one position through the blocks."""
        keys, values = self._keys, self._values
        grow = capacity - int(keys[0].shape[2])
        if grow > 0:
            pad = ((0, 0), (0, 0), (0, grow), (0, 0))
            keys = [keras.ops.pad(k, pad) for k in keys]
            values = [keras.ops.pad(v, pad) for v in values]
        return self._run(prefix[:, -1:], prefix.shape[1] - 1, rows_before, keys, values)

    def _lookup(self, prefix):
        """For each prefix ``[n, t]``, the row of the previous call's prefixes that its
        first ``t - 1`` tokens are (whose keys and values are cached), or -1."""
        found = np.full(len(prefix), -1, dtype=np.int64)
        if self._length == prefix.shape[1] - 1:
            for i, row in enumerate(prefix[:, :-1]):
                found[i] = self._entries.get(row.tobytes(), -1)
        return found

    def __call__(self, prefix_ids, rows=None):
        del rows  # a language model conditions on the prefix alone
        ops = keras.ops
        prefix = np.asarray(prefix_ids, dtype=np.int32)
        if prefix.ndim != 2 or prefix.shape[1] == 0:
            raise KerasdlError(f"prefix_ids must be token ids [n, t], got shape {prefix.shape}",
                               argument="prefix_ids")
        n, t = prefix.shape
        if t > self.window:
            if self.fixed_length is None:
                raise KerasdlError(
                    f"prefixes of {t} tokens exceed the model's {self.max_positions} "
                    f"positions; ask for max_length <= {self.max_positions + 1} (the prompt "
                    f"and the generated tokens)", argument="max_length")
            # The model reads the last L tokens, as lm_step_fn: positions all shift, so
            # nothing cached applies.
            self.reset()
            logits, _, _ = self._fill(prefix[:, -self.window:], self.window)
            return ops.convert_to_numpy(logits)
        capacity = self._capacity(t)
        found = self._lookup(prefix)
        hit = np.flatnonzero(found >= 0)
        miss = np.flatnonzero(found < 0)
        parts = []
        if len(hit):
            parts.append((hit, self._continue(prefix[hit], found[hit], capacity)))
        if len(miss):
            parts.append((miss, self._fill(prefix[miss], capacity)))
        if len(parts) == 1:
            logits, keys, values = parts[0][1]
        else:  # both: put the rows back in the prefixes' order
            order = np.argsort(np.concatenate([hit, miss]))
            index = ops.convert_to_tensor(order, "int32")

            def joined(a, b):
                return ops.take(ops.concatenate([a, b], axis=0), index, axis=0)

            (_, (l1, k1, v1)), (_, (l2, k2, v2)) = parts
            logits = joined(l1, l2)
            keys = [joined(a, b) for a, b in zip(k1, k2)]
            values = [joined(a, b) for a, b in zip(v1, v2)]
        # Every search extends the prefixes of this call: keep their keys and values.
        self._keys, self._values = list(keys), list(values)
        self._entries = {prefix[i].tobytes(): i for i in range(n)}
        self._length = t
        return ops.convert_to_numpy(logits)


def gpt_cached_step_fn(model, *, compiled=True):
    """A step function ``step(prefix_ids, rows=None) -> logits [n, vocab]`` for
    :mod:`kerasdl.decoding`'s searches that runs a kerasdl GPT (``gpt2``,
    ``gpt_char_small`` or any model of :func:`~kerasdl.models.transformer.gpt.build_gpt`)
    one new position per step with a key/value cache (see the module docstring).

    ``compiled=False`` runs the ``keras.ops`` eagerly instead of tracing them with
    ``tf.function`` / ``jax.jit``. The step function has ``reset()`` (forget the cache)
    and ``positions_computed`` (how many positions it has run through the blocks)."""
    return _CachedGPTStep(model, compiled=bool(compiled))


# --- generate ---------------------------------------------------------------------------

def generate(model, prompt_ids, max_new_tokens, method="greedy", cache=True, **kwargs):
    """Generate up to ``max_new_tokens`` tokens after ``prompt_ids`` (``[batch, t]``, rows
    of equal length; or one prompt ``[t]``) with :mod:`kerasdl.decoding`:
    ``"greedy"`` (:func:`~kerasdl.decoding.greedy_decode`), ``"sample"``
    (:func:`~kerasdl.decoding.sample`: ``temperature``, ``top_k``, ``top_p``, ``seed``) or
    ``"beam"`` (:func:`~kerasdl.decoding.beam_search`: ``beam_width``, default 4,
    ``length_penalty``, ...); ``end_id`` (default None: no end token) and ``pad_id``
    go to every method.

    ``cache=True`` decodes with :func:`gpt_cached_step_fn` (kerasdl GPT models only),
    ``cache=False`` with :func:`kerasdl.decoding.lm_step_fn` (any language model); both
    give the same tokens. Returns ids ``[batch, <= t + max_new_tokens]`` (the prompt
    included; ``[<= t + max_new_tokens]`` for a 1-D prompt), or with
    ``return_hypotheses=True`` (beam) the search's ``(ids, hypotheses)``."""
    from kerasdl import decoding

    check_choice(method, METHODS, "method")
    check_positive_int(max_new_tokens, "max_new_tokens")
    unknown = sorted(set(kwargs) - _SEARCH_KWARGS[method])
    if unknown:
        raise InvalidArgumentError(
            f"generate(method={method!r}) got unexpected argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(_SEARCH_KWARGS[method]))}", argument=unknown[0])
    prompt = np.asarray(prompt_ids)
    single = prompt.ndim == 1
    if single:
        prompt = prompt[None, :]
    if prompt.ndim != 2 or prompt.shape[1] == 0:
        raise KerasdlError(f"prompt_ids must be a prompt [t] or prompts [batch, t], got "
                           f"shape {prompt.shape}", argument="prompt_ids")
    max_length = prompt.shape[1] + max_new_tokens
    step = gpt_cached_step_fn(model) if cache else decoding.lm_step_fn(model)
    # A free-length GPT reads at most its position count (a fixed-length one slides).
    limit = step.window if cache else None
    if not cache and isinstance(model, keras.Model) and _fixed_length(model) is None:
        from kerasdl.layers.positions import LearnedPositionEmbedding

        layer = next((l for l in model.layers if isinstance(l, LearnedPositionEmbedding)), None)
        limit = None if layer is None else layer.max_length
    if limit is not None and (not cache or step.fixed_length is None) \
            and max_length - 1 > limit:
        raise KerasdlError(
            f"{prompt.shape[1]} prompt tokens + {max_new_tokens} new ones need "
            f"max_length {max_length}, but the model reads at most {limit} positions "
            f"(max_length <= {limit + 1}); ask for max_new_tokens <= "
            f"{limit + 1 - prompt.shape[1]}", argument="max_new_tokens")
    end_id = kwargs.pop("end_id", None)
    if method == "greedy":
        out = decoding.greedy_decode(step, prompt, max_length, end_id, **kwargs)
    elif method == "sample":
        out = decoding.sample(step, prompt, max_length, end_id, **kwargs)
    else:
        beam_width = kwargs.pop("beam_width", 4)
        out = decoding.beam_search(step, prompt, beam_width, max_length, end_id, **kwargs)
        if kwargs.get("return_hypotheses"):
            ids, hypotheses = out
            return (ids[0], hypotheses[0]) if single else (ids, hypotheses)
    return out[0] if single else out
