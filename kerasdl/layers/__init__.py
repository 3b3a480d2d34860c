"""Custom Keras layers, each registered serializable under the ``kerasdl`` package."""

from kerasdl.layers.highway import HighwayConv2D, HighwayDense
from kerasdl.layers.lenet import ConnectionTableConv2D, ScaledTanh, TrainableSubsampling
from kerasdl.layers.normalization import LocalResponseNormalization
from kerasdl.layers.preprocessing import InputScaling, PixelCast
from kerasdl.layers.recurrent import ScratchGRU, ScratchLSTM, ScratchSimpleRNN
from kerasdl.layers.residual import ZeroPadShortcut
from kerasdl.layers.shuffle import ChannelShuffle, ChannelSplit
from kerasdl.layers.attention import (
    ScratchMultiHeadAttention,
    attention_weights,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)
from kerasdl.layers.pooling import MaskedGlobalMaxPooling1D
from kerasdl.layers.positions import (
    LearnedPositionEmbedding,
    RelativePositionBias,
    SinusoidalPositionEncoding,
    apply_rotary,
    relative_position_bucket,
    sinusoidal_encoding,
)

__all__ = [
    "ChannelShuffle",
    "ChannelSplit",
    "ConnectionTableConv2D",
    "HighwayConv2D",
    "HighwayDense",
    "InputScaling",
    "LocalResponseNormalization",
    "PixelCast",
    "ScaledTanh",
    "ScratchGRU",
    "ScratchLSTM",
    "ScratchSimpleRNN",
    "TrainableSubsampling",
    "ZeroPadShortcut",
    "MaskedGlobalMaxPooling1D",
    "ScratchMultiHeadAttention",
    "attention_weights",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "scaled_dot_product_attention",
    "LearnedPositionEmbedding",
    "RelativePositionBias",
    "SinusoidalPositionEncoding",
    "apply_rotary",
    "relative_position_bucket",
    "sinusoidal_encoding",
]
