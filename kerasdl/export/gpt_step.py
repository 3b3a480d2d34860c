"""A kerasdl GPT's single-step decoder as a TFLite file, for generation on a phone.

A whole-model export takes a window of tokens and recomputes every position at every
step. The step decoder exported here runs one new token through the blocks and carries
the keys and values of the earlier positions in and out (the KV cache of
:mod:`kerasdl.generation`, whose computation it shares), so a step costs one position:

    inputs   token [1, 1] int32, position [1] int32 (0 for the first token),
             keys, values [layers, 1, heads, capacity, key_dim] float32 (zeros at first)
    outputs  logits [1, vocabulary], keys, values (the new position written in)

An app feeds the prompt one token at a time, then its own choices, and passes the
returned ``keys``/``values`` back in; ``capacity`` (at most the model's position count)
bounds the prompt plus the generated tokens. Verification runs the file over a random
token sequence of ``capacity`` tokens and compares every step's logits with the Keras
model's output at that position; :class:`GPTStepRunner` decodes with it.
"""

from __future__ import annotations

import os

import numpy as np

from kerasdl.atomic import atomic_file
from kerasdl.errors import KerasdlError

SIGNATURE = "serving_default"  # as TFLiteConverter.from_concrete_functions names it
INPUTS = ("keys", "position", "token", "values")


def _sizes(model, capacity):
    from kerasdl.generation import _fixed_length, _read_gpt

    variables, sizes = _read_gpt(model)
    limit = min(sizes["max_positions"], _fixed_length(model) or sizes["max_positions"])
    if capacity is None:
        capacity = limit
    if not (isinstance(capacity, int) and 1 <= capacity <= limit):
        raise KerasdlError(f"capacity must be an integer in [1, {limit}] (the positions the "
                           f"model reads), got {capacity!r}", argument="capacity")
    return variables, sizes, capacity


def gpt_step_function(model, capacity=None):
    """The step as a ``tf.function`` with fixed shapes (see the module docstring), the
    ``tf.Module`` holding the model's variables, and the cache shape."""
    import tensorflow as tf

    from kerasdl.generation import _extend

    variables, sizes, capacity = _sizes(model, capacity)
    shape = (sizes["layers"], 1, sizes["heads"], capacity, sizes["key_dim"])
    dtype = variables[0].dtype

    @tf.function(input_signature=[tf.TensorSpec((1, 1), tf.int32, name="token"),
                                  tf.TensorSpec((1,), tf.int32, name="position"),
                                  tf.TensorSpec(shape, dtype, name="keys"),
                                  tf.TensorSpec(shape, dtype, name="values")])
    def step(token, position, keys, values):
        layers = sizes["layers"]
        logits, new_keys, new_values = _extend(
            sizes, [v.value for v in variables], token, position[0],
            tf.zeros((1,), tf.int32), [keys[i] for i in range(layers)],
            [values[i] for i in range(layers)])
        return {"logits": logits, "keys": tf.stack(new_keys), "values": tf.stack(new_values)}

    module = tf.Module()
    module.variables_ = [v.value for v in variables]
    return step, module, shape


class GPTStepRunner:
    """Runs an exported step decoder: ``step(token, position)`` returns the next-token
    logits and keeps the cache; ``generate(prompt_ids, max_new_tokens)`` decodes greedily
    (as :func:`kerasdl.generation.generate` with ``method="greedy"``)."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise KerasdlError(f"no TFLite file at {path}", argument="path")
        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        inputs = sorted(signatures.get(SIGNATURE, {}).get("inputs", []))
        if tuple(inputs) != INPUTS:
            raise KerasdlError(f"{path} is not a GPT step decoder (its inputs are "
                               f"{inputs or 'unknown'}, not {list(INPUTS)})", argument="path")
        self._runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self._runner.get_input_details()
        self.cache_shape = tuple(int(d) for d in details["keys"]["shape"])
        self.capacity = self.cache_shape[3]
        self.reset()

    def reset(self):
        """Forget the cached positions."""
        self._keys = np.zeros(self.cache_shape, np.float32)
        self._values = np.zeros(self.cache_shape, np.float32)
        self.length = 0

    def step(self, token):
        """Logits ``[vocabulary]`` after feeding ``token`` at the next position."""
        if self.length >= self.capacity:
            raise KerasdlError(f"the step decoder holds {self.capacity} positions; reset() "
                               "or export with a larger capacity", argument="token")
        out = self._runner(token=np.array([[token]], np.int32),
                           position=np.array([self.length], np.int32),
                           keys=self._keys, values=self._values)
        self._keys, self._values = out["keys"], out["values"]
        self.length += 1
        return out["logits"][0]

    def generate(self, prompt_ids, max_new_tokens, end_id=None):
        """Greedy decoding: the prompt followed by up to ``max_new_tokens`` tokens."""
        prompt = [int(t) for t in np.asarray(prompt_ids).reshape(-1)]
        if not prompt or len(prompt) + max_new_tokens - 1 > self.capacity:
            raise KerasdlError(
                f"{len(prompt)} prompt tokens + {max_new_tokens} new ones need "
                f"{len(prompt) + max_new_tokens - 1} positions; the file holds "
                f"{self.capacity}: ask for max_new_tokens <= "
                f"{self.capacity + 1 - len(prompt)}", argument="max_new_tokens")
        self.reset()
        for token in prompt:
            logits = self.step(token)
        out = list(prompt)
        for i in range(max_new_tokens):
            token = int(np.argmax(logits))
            out.append(token)
            if token == end_id or i == max_new_tokens - 1:
                break
            logits = self.step(token)
        return np.array(out, np.int32)


def export_gpt_step(model, path, capacity=None, overwrite=False, atol=1e-4, seed=0):
    """Write ``model``'s (a kerasdl GPT's) single-step decoder to ``path`` (``.tflite``),
    builtin ops only, and verify it: ``capacity`` random tokens fed one by one give the
    Keras model's logits at every position within ``atol``; a larger difference removes
    the file and raises. Returns ``{"path", "size_bytes", "capacity", "steps_checked",
    "max_abs_logit_diff", "top1_agreement"}``."""
    import tensorflow as tf

    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise KerasdlError(f"path must end with '.tflite', got {path!r}", argument="path")
    step, module, shape = gpt_step_function(model, capacity)
    capacity = shape[3]
    concrete = step.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    with atomic_file(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
        report = _verify(model, tmp, capacity, atol, seed)
    return {"path": path, "size_bytes": os.path.getsize(path), "capacity": capacity,
            **report}


def _verify(model, path, capacity, atol, seed):
    vocabulary = int(model.output.shape[-1])
    tokens = np.random.default_rng(seed).integers(1, vocabulary, capacity).astype("int32")
    length = model.inputs[0].shape[1]
    window = np.zeros((1, length or capacity), np.int32)
    window[0, :capacity] = tokens
    # Causal: positions after the sequence do not change the ones before.
    expected = np.asarray(model.predict_on_batch(window))[0, :capacity]
    runner = GPTStepRunner(path)
    got = np.stack([runner.step(t) for t in tokens])
    diff = float(np.abs(got - expected).max())
    agreement = float((got.argmax(-1) == expected.argmax(-1)).mean())
    if not diff <= atol:
        raise KerasdlError(
            f"the exported step decoder's logits differ from Keras by up to {diff:.3g} "
            f"(tolerance {atol}); the file was not written", argument="atol")
    return {"steps_checked": capacity, "max_abs_logit_diff": diff,
            "top1_agreement": agreement}
