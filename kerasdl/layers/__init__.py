"""Custom Keras layers, each registered serializable under the ``kerasdl`` package."""

from kerasdl.layers.lenet import ConnectionTableConv2D, ScaledTanh, TrainableSubsampling
from kerasdl.layers.preprocessing import InputScaling

__all__ = ["ConnectionTableConv2D", "InputScaling", "ScaledTanh", "TrainableSubsampling"]
