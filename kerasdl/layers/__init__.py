"""Custom Keras layers, each registered serializable under the ``kerasdl`` package."""

from kerasdl.layers.lenet import ConnectionTableConv2D, ScaledTanh, TrainableSubsampling
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import InputScaling
from kerasdl.layers.residual import ZeroPadShortcut

__all__ = [
    "ConnectionTableConv2D",
    "InputScaling",
    "LocalResponseNormalization",
    "ScaledTanh",
    "TrainableSubsampling",
    "ZeroPadShortcut",
]
