"""Model analysis: parameters by layer, multiply-accumulates (MACs) counted from the
layers of a built model, depth in weighted layers, and the theoretical receptive field.

MACs count the multiplications of convolutions, dense layers and LeNet's trainable
subsampling (one per output); additions of biases, BatchNorm (foldable into the
preceding convolution), activations and pooling are not counted, as in the papers'
figures (VGG16: 15.5 G multiply-adds at 224x224).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import keras

from kerasdl.errors import KerasdlError

__all__ = ["ReceptiveField", "layer_macs", "count_macs", "weighted_depth", "receptive_field",
           "gradient_norms", "gradient_norms_by_time", "summarize"]


def _spatial(shape):
    return math.prod(int(d) for d in shape[1:-1])


def layer_macs(layer):
    """Multiply-accumulates of one call of ``layer`` on its built input, or 0."""
    from kerasdl.layers import ConnectionTableConv2D, TrainableSubsampling

    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input position scatters its channels through the whole kernel.
        kh, kw = layer.kernel_size
        cin = int(layer.input.shape[-1])
        return _spatial(layer.input.shape) * kh * kw * cin * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        out = layer.output.shape
        return _spatial(out) * int(out[-1]) * kh * kw
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = int(layer.input.shape[-1])
        out = layer.output.shape
        depthwise = _spatial(out) * cin * layer.depth_multiplier * kh * kw
        return depthwise + _spatial(out) * cin * layer.depth_multiplier * int(out[-1])
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = int(layer.input.shape[-1])
        out = layer.output.shape
        return _spatial(out) * int(out[-1]) * kh * kw * cin // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(int(d) for d in layer.input.shape[1:-1])
        return positions * int(layer.input.shape[-1]) * layer.units
    if isinstance(layer, ConnectionTableConv2D):
        connections = sum(len(row) for row in layer.table)
        return _spatial(layer.output.shape) * connections * layer.kernel_size ** 2
    if isinstance(layer, TrainableSubsampling):
        out = layer.output.shape
        return _spatial(out) * int(out[-1])
    if isinstance(layer, keras.layers.Conv1D):
        out = layer.output.shape
        return int(out[1]) * int(out[-1]) * layer.kernel_size[0] * int(layer.input.shape[-1]) \
            // layer.groups
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _attention_macs(layer)
    if _is_tied_embedding(layer):
        return _tied_output_macs(layer)
    recurrent = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    if isinstance(recurrent, _RECURRENT):
        # Per step, each gate multiplies the input and the previous state by its weights.
        sequence = keras.tree.flatten(layer.input)[0]  # also given masks or initial states
        # A sequence of any length is counted per time step.
        steps, width = int(sequence.shape[1] or 1), int(sequence.shape[-1])
        gates = 4 if isinstance(recurrent, keras.layers.LSTM) else \
            3 if isinstance(recurrent, keras.layers.GRU) else 1
        directions = 2 if recurrent is not layer else 1
        return directions * steps * gates * recurrent.units * (width + recurrent.units)
    return 0


_RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)


def _length(shape):
    # A free length is counted per position, as recurrent layers per time step.
    return int(shape[1] or 1) if len(shape) > 2 else 1


def _attention_macs(layer):
    """Projections of queries, keys and values, the scores ``Q K^T``, the weighted sum
    of the values and the output projection, summed over every call of the layer."""
    total = 0
    for node in layer._inbound_nodes:  # one per call (a shared layer has several)
        tensors = [t for t in keras.tree.flatten(node.input_tensors)]
        query, value = tensors[0], tensors[1] if len(tensors) > 1 else tensors[0]
        lq, lk = _length(query.shape), _length(value.shape)
        d_q, heads, key_dim = layer.query_dense.kernel.shape
        d_k = layer.key_dense.kernel.shape[0]
        d_v, _, value_dim = layer.value_dense.kernel.shape
        d_out = layer.output_dense.kernel.shape[-1]
        total += (lq * d_q * heads * key_dim + lk * d_k * heads * key_dim
                  + lk * d_v * heads * value_dim
                  + heads * lq * lk * (key_dim + value_dim)
                  + lq * heads * value_dim * d_out)
    return int(total)


def _is_tied_embedding(layer):
    from kerasdl.models.transformer.layers import TiedEmbedding

    return isinstance(layer, TiedEmbedding)


def _tied_output_macs(layer):
    """The reverse calls of a tied embedding: vectors times the transposed table (the
    lookups cost nothing)."""
    total = 0
    for node in layer._inbound_nodes:
        inputs = keras.tree.flatten(node.input_tensors)[0]
        if keras.backend.standardize_dtype(inputs.dtype).startswith("float"):
            positions = math.prod(int(d or 1) for d in inputs.shape[1:-1])
            total += positions * layer.output_dim * layer.input_dim
    return int(total)


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def count_macs(model):
    """Total multiply-accumulates of one forward pass of one example."""
    return sum(layer_macs(layer) for layer in _layers(model))


_NORMALIZATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                  keras.layers.GroupNormalization, keras.layers.UnitNormalization)


def _is_weighted(layer):
    """A layer with weights of its own that transforms features (convolutions, dense,
    LeNet's trainable subsampling, highway layers); normalisation layers do not count."""
    return (not isinstance(layer, (keras.Model, *_NORMALIZATION))
            and bool(getattr(layer, "weights", None)))


def weighted_depth(model):
    """Depth as the papers count it: layers with weights (convolution, dense, LeNet's
    trainable subsampling, highway layers; not normalisation) on the longest path from
    input to output (LeNet-5: 7, VGG-16: 16, GoogLeNet: 22, ResNet-50: 50, DenseNet-121:
    121).
    Parallel branches (Inception's, shortcuts) count once, along the longer one; a
    separable convolution counts as one layer, as in Xception's 36."""
    def step(op, node, inputs):
        depth = max((d for d in inputs if d is not None), default=0) + int(_is_weighted(op))
        return [depth] * len(node.outputs)

    graph = _graph(model)
    return max(_walk(graph, [0] * len(graph.inputs), {}, step), default=0)


# ---------------------------------------------------------------------------- receptive field


@dataclass(frozen=True)
class ReceptiveField:
    """The theoretical receptive field of one feature map.

    Attributes:
        size: input pixels one unit of the map sees, per spatial axis (height, width).
        jump: input pixels between neighbouring units, per spatial axis: the cumulative
            stride (a ``Fraction`` below 1 after upsampling).
        layer: the name of the layer that outputs the map.
    """

    size: tuple
    jump: tuple
    layer: str


_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
          keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
          keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSED_CONVS = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                     keras.layers.Conv3DTranspose)
_POOLS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
          keras.layers.AveragePooling1D, keras.layers.AveragePooling2D,
          keras.layers.AveragePooling3D)
_UPSAMPLING = (keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D)
# Layers after which a tensor is no longer a map over input positions.
_ENDS = (keras.layers.Flatten, keras.layers.Reshape,
         keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
         keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling1D,
         keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
         keras.layers.AdaptiveAveragePooling1D, keras.layers.AdaptiveAveragePooling2D,
         keras.layers.AdaptiveAveragePooling3D, keras.layers.AdaptiveMaxPooling1D,
         keras.layers.AdaptiveMaxPooling2D, keras.layers.AdaptiveMaxPooling3D)
# Every unit sees every position: no finite receptive field to report.
_GLOBAL_MIXING = (keras.layers.MultiHeadAttention, keras.layers.Attention,
                  keras.layers.AdditiveAttention)


def _per_axis(value, axes):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * axes
    if len(values) != axes:
        raise KerasdlError(f"expected {axes} values per spatial axis, got {value!r}")
    return tuple(int(v) for v in values)


def _geometry(layer, axes):
    """``(kernel, stride, dilation, transposed)`` per axis of a layer that moves over the
    spatial axes, or None for any other layer."""
    from kerasdl.layers import TrainableSubsampling, ZeroPadShortcut

    def axis(v):
        return _per_axis(v, axes)

    if isinstance(layer, _CONVS + _TRANSPOSED_CONVS):
        return (axis(layer.kernel_size), axis(layer.strides), axis(layer.dilation_rate),
                isinstance(layer, _TRANSPOSED_CONVS))
    if isinstance(layer, _POOLS):
        return axis(layer.pool_size), axis(layer.strides), axis(1), False
    if isinstance(layer, TrainableSubsampling):
        return axis(layer.pool_size), axis(layer.pool_size), axis(1), False
    if isinstance(layer, ZeroPadShortcut):
        return axis(1), axis(layer.stride), axis(1), False
    if isinstance(layer, keras.layers.Layer) and hasattr(layer, "kernel_size"):
        # A convolution of kerasdl's own (ConnectionTableConv2D, HighwayConv2D) or any
        # layer that names its kernel as Keras' convolutions do.
        return (axis(layer.kernel_size), axis(getattr(layer, "strides", 1)),
                axis(getattr(layer, "dilation_rate", 1)), False)
    return None


def _spatial_shape(tensor):
    return tuple(tensor.shape[1:-1])


def _has_spatial_sublayers(layer):
    """Whether a layer holds a convolution or pooling that moves over positions."""
    subs = layer._flatten_layers(include_self=False) if hasattr(layer, "_flatten_layers") else ()
    for sub in subs:
        for attribute in ("kernel_size", "pool_size", "strides", "dilation_rate"):
            value = getattr(sub, attribute, 1)
            if any(v != 1 for v in (value if isinstance(value, (tuple, list)) else (value,))):
                return True
    return False


def _through(op, node, fields):
    """The field of each output of ``node`` from ``fields`` of its inputs (None: the
    tensor is not a map over input positions)."""
    outputs = node.outputs
    spatial_in = [f for f in fields if f is not None]
    if not spatial_in or isinstance(op, _ENDS):
        return [None] * len(outputs)
    if isinstance(op, _GLOBAL_MIXING):
        raise KerasdlError(f"layer {op.name!r} ({type(op).__name__}) mixes every position: "
                           "its receptive field is the whole input")
    # Where branches meet (Add, Concatenate, Multiply...) the field is the largest over
    # the paths: the maximum size and jump of the spatial inputs.
    size = tuple(map(max, zip(*(f[0] for f in spatial_in))))
    jump = tuple(map(max, zip(*(f[1] for f in spatial_in))))
    axes = len(size)
    geometry = _geometry(op, axes) if isinstance(op, keras.layers.Layer) else None
    if geometry is not None:
        kernel, strides, dilation, transposed = geometry
        size, jump = zip(*(_step(r, j, k, s, d, transposed)
                           for r, j, k, s, d in zip(size, jump, kernel, strides, dilation)))
    elif isinstance(op, _UPSAMPLING):
        jump = tuple(Fraction(j) / s for j, s in zip(jump, _per_axis(op.size, axes)))
    elif not (isinstance(op, keras.layers.Dense) or _is_pointwise(op, node, fields)):
        raise KerasdlError(
            f"receptive_field does not know how layer {op.name!r} ({type(op).__name__}) "
            "moves over the spatial axes")
    return [(size, jump) if len(out.shape) == axes + 2 else None for out in outputs]


def _is_pointwise(op, node, fields):
    """A layer that keeps the spatial shape and holds no convolution or pooling of its
    own acts on each position alone (activations, normalisation, merges, padding and
    cropping, which shift positions but not the field, ...)."""
    if isinstance(op, (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D,
                       keras.layers.ZeroPadding3D, keras.layers.Cropping1D,
                       keras.layers.Cropping2D, keras.layers.Cropping3D)):
        return True
    if isinstance(op, keras.layers.Layer) and _has_spatial_sublayers(op):
        return False
    spatial = [t for t, f in zip(node.input_tensors, fields) if f is not None]
    return all(_spatial_shape(out) == _spatial_shape(t) for t in spatial for out in node.outputs)


def _step(r, j, k, s, d, transposed):
    k_eff = d * (k - 1) + 1
    if transposed:
        # An output unit gathers at most ceil(k_eff / s) neighbouring input units.
        return r + (-(-k_eff // s) - 1) * j, Fraction(j) / s
    return r + (k_eff - 1) * j, j * s


def _graph(model):
    if hasattr(model, "_nodes_by_depth"):
        return model
    functional = getattr(model, "_functional", None)  # a built Sequential model
    if functional is None:
        raise KerasdlError(f"receptive_field needs a functional (or built Sequential) model; "
                           f"{model.name!r} is a {type(model).__name__}")
    return functional


def _walk(model, input_values, values, step):
    """Walk ``model``'s graph in topological order, nested models included, filling
    ``values`` (tensor id -> value): ``step(op, node, input_values)`` gives the values
    of each node's outputs (None: no value). Returns the values of the model's outputs."""
    graph = _graph(model)
    for tensor, value in zip(graph.inputs, input_values):
        if value is not None:
            values[id(tensor)] = value
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.is_input:
                continue
            op = node.operation
            inputs = [values.get(id(t)) for t in node.input_tensors]
            if isinstance(op, keras.Model):
                outs = _walk(op, inputs, values, step)
            else:
                outs = step(op, node, inputs)
            for tensor, value in zip(node.outputs, outs):
                if value is not None:
                    values[id(tensor)] = value
    return [values.get(id(t)) for t in graph.outputs]


def _propagate(model, input_fields, fields, ends):
    """Receptive fields along ``model``'s graph into ``fields`` (tensor id -> ``(size,
    jump, layer)``); ``ends`` collects the maps where the spatial part stops."""

    def step(op, node, inputs):
        outs = [None if f is None else (*f, op.name)
                for f in _through(op, node, [None if i is None else i[:2] for i in inputs])]
        if not any(outs):
            ends.extend(f for f in inputs if f is not None)
        return outs

    return _walk(model, input_fields, fields, step)


def _as_result(field):
    size, jump, layer = field
    jump = tuple(int(j) if Fraction(j).denominator == 1 else Fraction(j) for j in jump)
    return ReceptiveField(size=tuple(int(r) for r in size), jump=jump, layer=layer)


def receptive_field(model, tensor=None):
    """The theoretical receptive field of a feature map of ``model``: by default its last
    spatial map (the one its global pooling, ``Flatten`` or output takes; the deepest
    when there are several), or ``tensor``, any tensor of the model's graph (e.g.
    ``model.get_layer("block3_pool").output``, or one output of a ``features_only``
    model).

    From each input image position (size 1, jump 1), layer by layer along the graph:
    a convolution or pooling with kernel ``k``, stride ``s`` and dilation ``d`` (Keras'
    Conv/DepthwiseConv/SeparableConv and pooling layers, LeNet's subsampling and
    connection-table layers, highway convolutions, option-A shortcuts) gives
    ``size + d (k - 1) jump`` and ``jump s``; upsampling divides the jump; layers
    that act on each position alone (activations, normalisation, padding, per-position
    ``Dense``) keep both. Where branches meet (ResNet's Add, DenseNet's and Inception's
    Concatenate) the maximum over the paths is taken. Global pooling, ``Flatten`` and
    ``Reshape`` end the spatial part, which is also why squeeze-and-excitation gates do
    not count as seeing the whole image. Padding is not modelled: at the borders part of
    the field lies outside the image. Channels-last layout is assumed.

    Returns:
        a :class:`ReceptiveField` (``size`` and ``jump`` per spatial axis, ``layer``).

    Raises:
        KerasdlError: the model has no spatial map, ``tensor`` is not a spatial map of
            its graph, or a layer changes the spatial shape in a way this does not know.
    """
    graph = _graph(model)
    start = [((1,) * (len(t.shape) - 2), (1,) * (len(t.shape) - 2), t.name)
             if len(t.shape) >= 3 else None for t in graph.inputs]
    fields, ends = {}, []
    outputs = _propagate(model, start, fields, ends)
    if tensor is not None:
        field = fields.get(id(tensor))
        if field is None:
            raise KerasdlError(f"{getattr(tensor, 'name', tensor)!r} is not a spatial map of "
                               f"{model.name!r}'s graph", argument="tensor")
        return _as_result(field)
    # Maps that some convolution or pooling made (not the input pixels themselves, as an
    # MLP flattens them), in graph order; the deepest wins, the later one on a tie.
    candidates = [f for f in ends + outputs
                  if f is not None and any(v != 1 for v in (*f[0], *f[1]))]
    if not candidates:
        raise KerasdlError(f"{model.name!r} has no spatial feature map", argument="model")
    order = {id(f): i for i, f in enumerate(candidates)}
    return _as_result(max(candidates, key=lambda f: (max(f[1]), max(f[0]), order[id(f)])))


def counting_model(info):
    """``(model, what one count covers)`` for a registry entry at its defaults: an image
    model at its default input, a text model at the sequence length its recipe trains
    with (a recurrent layer's cost grows with the length)."""
    if info.default_input_shape is None and "sequence_length" in info.default_kwargs():
        from kerasdl.tasks.text import DEFAULTS

        length = (info.recipe.sequence_length if info.recipe else 0) or \
            DEFAULTS.get(info.task, (None, None, 64))[2]
        return info.build(sequence_length=length), f"per example of {length} tokens"
    model = info.build()
    if None in tuple(model.inputs[0].shape[1:2]):
        return model, "per time step"
    return model, f"per image at {info.default_input_shape}"


def summarize(model):
    """``{"parameters", "macs", "depth", "receptive_field", "layers": [(name, params,
    macs)]}``; ``receptive_field`` is that of the last spatial map (see
    :func:`receptive_field`), None for a model without one or with a layer it cannot
    follow."""
    rows = [(layer.name, layer.count_params(), layer_macs(layer)) for layer in _layers(model)]
    try:
        field = receptive_field(model)
    except KerasdlError:
        field = None
    try:
        depth = weighted_depth(model)
    except KerasdlError:
        # A subclassed wrapper (autoencoder, VAE, GAN): its functional sub-networks in the
        # order it runs them (encoder then decoder; generator then discriminator).
        depth = sum(weighted_depth(layer) for layer in model.layers
                    if isinstance(layer, keras.Model))
    return {
        "parameters": model.count_params(),
        "macs": sum(r[2] for r in rows),
        "depth": depth,
        "receptive_field": field,
        "layers": rows,
    }


# ---------------------------------------------------------------------------- gradients


def gradient_norms(model, x, y, loss=None):
    """``[(layer name, L2 norm of d loss / d kernel)]`` for each layer with a kernel, in
    the model's layer order: how strongly the loss reaches each depth (He et al. 2015's
    degradation problem; the vanishing-gradient plots of the fundamentals chapter).

    ``loss`` defaults to sparse cross-entropy on logits (integer labels ``y``). The
    forward pass runs in training mode, as during the first step of training. Works on
    the TensorFlow and JAX backends.
    """
    import numpy as np

    loss_fn = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernels = [(layer.name, layer.kernel) for layer in _layers(model)
               if getattr(layer, "kernel", None) is not None and layer.trainable]
    if not kernels:
        raise KerasdlError(f"{model.name!r} has no trainable kernels", argument="model")
    backend = keras.config.backend()
    x = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    y = keras.ops.convert_to_tensor(np.asarray(y))
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x, training=True))
        grads = tape.gradient(value, [k.value for _, k in kernels])
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        others = [v.value for v in model.non_trainable_variables]

        def compute(trainable):
            out, _ = model.stateless_call(trainable, others, x, training=True)
            return loss_fn(y, out)

        all_grads = jax.grad(compute)(trainable)
        by_id = {id(v): g for v, g in zip(model.trainable_variables, all_grads)}
        grads = [by_id[id(k)] for _, k in kernels]
    else:
        raise KerasdlError(f"gradient_norms supports the tensorflow and jax backends, not "
                           f"{backend!r}", argument="backend")
    return [(name, float(np.linalg.norm(keras.ops.convert_to_numpy(g))))
            for (name, _), g in zip(kernels, grads)]


def gradient_norms_by_time(model, x, y, loss=None):
    """The L2 norm of d loss / d input at each time step, averaged over the examples: a
    numpy array [time] for inputs ``x`` [batch, time, features]. It shows how far back
    the loss reaches, the vanishing gradients over time of Hochreiter 1991 and Bengio,
    Simard & Frasconi 1994 (the recurrent networks chapter's adding problem).

    Each example's gradient is that of its own loss (the per-example losses are summed,
    not averaged), so the norms do not shrink as the batch grows. ``loss`` defaults to
    mean squared error; give a ``keras.losses.Loss`` or a function that returns one loss
    per example. The forward pass runs in training mode, as in :func:`gradient_norms`.
    Works on the TensorFlow, JAX and PyTorch backends.
    """
    import numpy as np

    loss_fn = loss or keras.losses.MeanSquaredError()
    x = np.asarray(x, dtype="float32")
    if x.ndim != 3:
        raise KerasdlError(f"x must be [batch, time, features], got shape {x.shape}",
                           argument="x")
    x = keras.ops.convert_to_tensor(x)
    y = keras.ops.convert_to_tensor(np.asarray(y))

    def summed_loss(prediction):
        # Loss.call gives the unreduced per-example values that __call__ would average.
        per_example = (loss_fn.call(y, prediction) if isinstance(loss_fn, keras.losses.Loss)
                       else loss_fn(y, prediction))
        return keras.ops.sum(per_example)

    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            value = summed_loss(model(x, training=True))
        grad = tape.gradient(value, x)
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        others = [v.value for v in model.non_trainable_variables]

        def compute(inputs):
            out, _ = model.stateless_call(trainable, others, inputs, training=True)
            return summed_loss(out)

        grad = jax.grad(compute)(x)
    elif backend == "torch":
        import torch

        x = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(summed_loss(model(x, training=True)), x,
                                      allow_unused=True)
    else:
        raise KerasdlError(f"gradient_norms_by_time supports the tensorflow, jax and torch "
                           f"backends, not {backend!r}", argument="backend")
    if grad is None:  # the output does not depend on the input at all
        return np.zeros(x.shape[1], dtype="float32")
    grad = keras.ops.convert_to_numpy(grad)
    return np.linalg.norm(grad, axis=-1).mean(axis=0)
