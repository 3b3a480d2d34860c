"""Running ``.tflite`` files with the LiteRT interpreter (``ai_edge_litert``)."""

from __future__ import annotations

import os
import time

import numpy as np


class TFLiteRunner:
    """A single-input, single-output LiteRT model with float-in, float-out ``predict``.

    Integer-quantised inputs and outputs are (de)quantised with the tensors' own scale
    and zero point, so callers always pass and get float32 in the Keras model's units.
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no TFLite file at {path}")
        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"TFLiteRunner handles one input and one output; {path} has "
                f"{len(inputs)} inputs and {len(outputs)} outputs"
            )
        self._in, self._out = inputs[0], outputs[0]
        self._batch = None

    @property
    def input_dtype(self):
        return np.dtype(self._in["dtype"])

    def _resize(self, batch):
        if batch != self._batch:
            shape = list(self._in["shape"])
            shape[0] = batch
            self.interpreter.resize_tensor_input(self._in["index"], shape)
            self.interpreter.allocate_tensors()
            self._in = self.interpreter.get_input_details()[0]
            self._out = self.interpreter.get_output_details()[0]
            self._batch = batch

    def _quantize(self, x):
        dtype = self.input_dtype
        if dtype == np.float32:
            return x.astype("float32")
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)

    def _dequantize(self, y):
        if y.dtype == np.float32:
            return y
        scale, zero = self._out["quantization"]
        return (y.astype("float32") - zero) * scale

    def predict(self, x, batch_size=256):
        """Outputs for a batch of float inputs, computed ``batch_size`` at a time."""
        x = np.asarray(x, dtype="float32")
        expected = tuple(self._in["shape_signature"][1:])
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"input shape {tuple(x.shape[1:])} does not match the model's {expected}"
            )
        out = []
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self._in["index"], self._quantize(chunk))
            self.interpreter.invoke()
            out.append(self._dequantize(self.interpreter.get_tensor(self._out["index"])))
        return np.concatenate(out)

    def latency_ms(self, example, runs=200, warmup=20):
        """Median wall time of one batch-1 ``invoke`` in milliseconds."""
        self._resize(1)
        x = self._quantize(np.asarray(example, dtype="float32")[None])
        times = []
        for i in range(warmup + runs):
            self.interpreter.set_tensor(self._in["index"], x)
            t0 = time.perf_counter()
            self.interpreter.invoke()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000.0)
