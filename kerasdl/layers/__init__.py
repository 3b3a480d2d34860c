"""Custom Keras layers, each registered serializable under the ``kerasdl`` package."""

from kerasdl.layers.lenet import ConnectionTableConv2D, ScaledTanh, TrainableSubsampling

__all__ = ["ConnectionTableConv2D", "ScaledTanh", "TrainableSubsampling"]
