"""Model analysis: parameters by layer, multiply-accumulates (MACs) counted from the
layers of a built model, and depth in weighted layers.

MACs count the multiplications of convolutions, dense layers and LeNet's trainable
subsampling (one per output); additions of biases, BatchNorm (foldable into the
preceding convolution), activations and pooling are not counted, as in the papers'
figures (VGG16: 15.5 G multiply-adds at 224x224).
"""

from __future__ import annotations

import math

import keras

__all__ = ["layer_macs", "count_macs", "weighted_depth", "summarize"]


def _spatial(shape):
    return math.prod(int(d) for d in shape[1:-1])


def layer_macs(layer):
    """Multiply-accumulates of one call of ``layer`` on its built input, or 0."""
    from kerasdl.layers import ConnectionTableConv2D, TrainableSubsampling

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
    return 0


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def count_macs(model):
    """Total multiply-accumulates of one forward pass of one example."""
    return sum(layer_macs(layer) for layer in _layers(model))


def weighted_depth(model):
    """Convolution and dense layers on the model's longest path is what papers call depth;
    counting every weighted conv/dense layer gives it for chain-like networks (and counts
    ResNets' projection shortcuts too, which the papers do not)."""
    from kerasdl.layers import ConnectionTableConv2D

    kinds = (keras.layers.Conv2D, keras.layers.Dense, ConnectionTableConv2D)
    return sum(isinstance(layer, kinds) for layer in _layers(model))


def summarize(model):
    """``{"parameters", "macs", "depth", "layers": [(name, params, macs)]}``."""
    rows = [(layer.name, layer.count_params(), layer_macs(layer)) for layer in _layers(model)]
    return {
        "parameters": model.count_params(),
        "macs": sum(r[2] for r in rows),
        "depth": weighted_depth(model),
        "layers": rows,
    }
