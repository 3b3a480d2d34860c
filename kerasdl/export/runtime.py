"""Running ``.tflite`` files with the LiteRT interpreter (``ai_edge_litert``)."""

from __future__ import annotations

import os
import time

import numpy as np

from kerasdl.errors import KerasdlError, NotFoundError
from kerasdl.registry import natural_key

# Input and output order. Keras' ``model.export(path, format="litert")`` goes through a
# SavedModel signature, which is a map keyed by name, so the Keras model's own order is
# lost (checked with Keras 3.15, TF 2.21, ai-edge-litert 2.3):
#   * ``get_signature_list()`` and the file's SignatureDef list inputs and outputs sorted
#     alphabetically by name (model inputs [z, m, a] -> ['a', 'm', 'z']);
#   * ``get_input_details()`` (the subgraph's input tensors, in tensor-index order) follows
#     the converter's hash-map order: sometimes alphabetical, sometimes not
#     ([in3, in1, in2, in0] -> in2, in3, in0, in1; [x10, x2, x1] -> x2, x1, x10), and
#     never the model's order except by chance;
#   * nothing else in the file (metadata, tensor names) records it.
# So the input order cannot be recovered from the file: pass ``input_names`` (e.g.
# ``[t.name for t in model.inputs]``; Keras names the signature inputs after them) to use
# lists, or feed a dict. Outputs are named ``output_0``, ``output_1``, ... in the model's
# order, which a natural sort (output_10 after output_2) restores.

_QUANTISED_DTYPES = (np.int8, np.uint8, np.int16)


def _shape(dims):
    return tuple(None if d < 0 else int(d) for d in dims)


def _details(name, raw):
    """The public description of one signature tensor."""
    q = raw["quantization_parameters"]
    scales, zeros = q["scales"], q["zero_points"]
    dtype = np.dtype(raw["dtype"])
    if len(scales) == 0 or not np.any(scales) or dtype.type not in _QUANTISED_DTYPES:
        quant = None
    elif len(scales) == 1:
        quant = (float(scales[0]), int(zeros[0]))
    else:  # per-axis: broadcast the scales along the quantised dimension
        bshape = [1] * len(raw["shape_signature"])
        bshape[q["quantized_dimension"]] = -1
        quant = (scales.reshape(bshape), zeros.reshape(bshape))
    return {
        "name": name,
        "index": int(raw["index"]),
        "shape": _shape(raw["shape_signature"]),
        "dtype": dtype,
        "quantization": quant,
    }


class TFLiteRunner:
    """A LiteRT model with float-in, float-out ``predict``, run through its signature.

    Integer-quantised inputs and outputs are (de)quantised with each tensor's own scale
    and zero point, so callers pass and get float32 in the Keras model's units. Integer
    inputs that are not quantised (token ids) are only cast to their dtype.

    ``input_names`` is the Keras model's input order (``[t.name for t in model.inputs]``),
    which the file does not record; without it, a model with several inputs takes a dict
    ``{name: array}`` and ``self.input_names`` is the signature's alphabetical order.
    """

    def __init__(self, path, num_threads=None, input_names=None, signature_key=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise NotFoundError(f"no TFLite file at {path}")
        self.path = path
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        except ValueError as e:
            raise KerasdlError(f"{path} is not a readable .tflite model: {e}") from e
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise KerasdlError(f"{path} has no signature; re-export it with model.export()")
        if signature_key is None:
            default = "serving_default"
            signature_key = default if default in signatures else next(iter(signatures))
        elif signature_key not in signatures:
            raise KerasdlError(
                f"{path} has no signature {signature_key!r}; it has {', '.join(signatures)}",
                argument="signature_key",
            )
        self.signature_key = signature_key
        runner = self._signature_runner()
        ins, outs = runner.get_input_details(), runner.get_output_details()
        del runner

        names = sorted(ins)
        self._order_known = len(names) == 1
        if input_names is not None:
            input_names = [str(n) for n in input_names]
            if sorted(input_names) != names:
                raise KerasdlError(
                    f"input_names {input_names} do not match the model's inputs "
                    f"{', '.join(names)}",
                    argument="input_names",
                )
            names, self._order_known = input_names, True
        self._inputs = [_details(n, ins[n]) for n in names]
        self._outputs = [_details(n, outs[n]) for n in sorted(outs, key=natural_key)]

    def _signature_runner(self):
        # Made per call, not kept: a live SignatureRunner holds a reference to the
        # interpreter's wrapper, and then interpreter.invoke(), allocate_tensors() and
        # resize_tensor_input() refuse to run ("at least 1 reference to internal data").
        return self.interpreter.get_signature_runner(self.signature_key)

    @property
    def input_names(self):
        return [d["name"] for d in self._inputs]

    @property
    def output_names(self):
        return [d["name"] for d in self._outputs]

    @property
    def input_details(self):
        """One dict per input: name, index, shape (None where dynamic), dtype, quantization."""
        return [dict(d) for d in self._inputs]

    @property
    def output_details(self):
        return [dict(d) for d in self._outputs]

    @property
    def input_dtype(self):
        return self._inputs[0]["dtype"]

    def _named(self, x, batched):
        """``x`` (an array, a list in input order, or a dict) as ``[(detail, array)]``."""
        n, listed = len(self._inputs), ", ".join(self.input_names)
        if isinstance(x, dict):
            unknown = [k for k in x if k not in self.input_names]
            missing = [k for k in self.input_names if k not in x]
            if unknown:
                raise KerasdlError(f"unknown input names {unknown}; the model's inputs: {listed}")
            if missing:
                raise KerasdlError(f"missing inputs {missing}; the model's inputs: {listed}")
            return [(d, np.asarray(x[d["name"]])) for d in self._inputs]
        rank = len(self._inputs[0]["shape"]) - (0 if batched else 1)
        # A single-input model also takes a batch as nested lists, so a list counts as a
        # list of inputs only when it holds arrays of the input's full rank.
        is_list = isinstance(x, (list, tuple)) and len(x) > 0 and all(
            hasattr(a, "shape") and np.ndim(a) == rank for a in x
        )
        if n == 1 and not is_list:
            return [(self._inputs[0], np.asarray(x))]
        if not isinstance(x, (list, tuple)):
            raise KerasdlError(f"the model takes {n} inputs ({listed}); pass a list or a dict")
        if len(x) != n:
            plural = "s" if n > 1 else ""
            raise KerasdlError(f"the model takes {n} input{plural} ({listed}); got {len(x)}")
        if not self._order_known:
            raise KerasdlError(
                f"{self.path} does not record the Keras model's input order; pass a dict "
                f"{{name: array}} with names {listed}, or create the runner with "
                "input_names=[t.name for t in model.inputs]"
            )
        return [(d, np.asarray(a)) for d, a in zip(self._inputs, x)]

    def _check(self, named, batched):
        sizes = set()
        for d, a in named:
            expected = d["shape"][1:]
            got = a.shape[1:] if batched else a.shape
            fits = len(got) == len(expected) and all(
                e is None or e == g for e, g in zip(expected, got)
            )
            if not fits:
                raise KerasdlError(
                    f"wrong input shape: input '{d['name']}' has shape {tuple(got)} per example; "
                    f"the model expects {expected}"
                )
            if batched:
                sizes.add(len(a))
        if len(sizes) > 1:
            raise KerasdlError(f"inputs have different batch sizes {sorted(sizes)}")
        if sizes == {0}:
            raise KerasdlError("predict needs at least one example")

    @staticmethod
    def _quantize(d, x):
        if d["quantization"] is None:
            return x.astype(d["dtype"], copy=False)
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        q = np.round(np.asarray(x, dtype="float32") / scale + zero)
        return np.clip(q, info.min, info.max).astype(d["dtype"])

    @staticmethod
    def _dequantize(d, y):
        if d["quantization"] is not None:
            scale, zero = d["quantization"]
            return ((y.astype("float32") - zero) * scale).astype("float32")
        # Unquantised integer outputs (class ids, counts) keep their dtype.
        return y.astype("float32", copy=False) if np.issubdtype(y.dtype, np.floating) else y

    def _feed(self, named, start=None, stop=None):
        return {d["name"]: self._quantize(d, a[start:stop]) for d, a in named}

    def predict(self, x, batch_size=256):
        """Outputs for a batch: one array for a single-output model, else a list in the
        model's output order. ``x`` is an array, a list in input order, or a dict by name;
        it is run ``batch_size`` examples at a time."""
        named = self._named(x, batched=True)
        self._check(named, batched=True)
        total = len(named[0][1])
        run = self._signature_runner()
        chunks = []
        for start in range(0, total, batch_size):
            # The signature runner resizes the (dynamic) batch dim of every input itself.
            result = run(**self._feed(named, start, start + batch_size))
            chunks.append([self._dequantize(d, result[d["name"]]) for d in self._outputs])
        outputs = [np.concatenate(parts) for parts in zip(*chunks)]
        return outputs[0] if len(outputs) == 1 else outputs

    def latency_ms(self, example, runs=200, warmup=20):
        """Median wall time of one batch-1 ``invoke`` in milliseconds; ``example`` is one
        example without the batch dim (a list or dict of them for several inputs)."""
        named = self._named(example, batched=False)
        self._check(named, batched=False)
        feed = {d["name"]: self._quantize(d, a[None]) for d, a in named}
        run = self._signature_runner()
        run(**feed)  # resizes to batch 1 and allocates
        # Time invoke alone, as before; the signature runner would add resizing, allocation
        # and output copies. That needs the signature to live in the primary subgraph,
        # which is the case for every single-signature (Keras-exported) file.
        primary = {d["index"] for d in self.interpreter.get_input_details()}
        single = len(self.interpreter.get_signature_list()) == 1
        direct = single and primary == {d["index"] for d in self._inputs}
        if direct:
            del run  # interpreter.invoke() refuses to run while a signature runner lives
        times = []
        for i in range(warmup + runs):
            if direct:
                for d in self._inputs:
                    self.interpreter.set_tensor(d["index"], feed[d["name"]])
                t0 = time.perf_counter()
                self.interpreter.invoke()
            else:
                t0 = time.perf_counter()
                run(**feed)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000.0)
