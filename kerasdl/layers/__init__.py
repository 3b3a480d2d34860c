"""Custom Keras layers, each registered serializable under the ``kerasdl`` package."""

from kerasdl.layers.highway import HighwayConv2D, HighwayDense
from kerasdl.layers.lenet import ConnectionTableConv2D, ScaledTanh, TrainableSubsampling
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import InputScaling
from kerasdl.layers.residual import ZeroPadShortcut

__all__ = [
    "ConnectionTableConv2D",
    "HighwayConv2D",
    "HighwayDense",
    "InputScaling",
    "LocalResponseNormalization",
    "ScaledTanh",
    "TrainableSubsampling",
    "ZeroPadShortcut",
]
