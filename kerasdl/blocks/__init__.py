"""Building blocks shared by every family: pure functions ``apply_<block>(x, ...,
name=...)`` that return a tensor, with keras.applications' layer names where it has
the block (so its checkpoints load into our builders)."""

from kerasdl.blocks.dense import apply_dense_block, apply_dense_layer, apply_transition
from kerasdl.blocks.features import FeatureTaps
from kerasdl.blocks.mobile import (
    apply_depthwise_separable,
    apply_inverted_residual,
    apply_mbconv,
    apply_squeeze_excite_gate,
    hard_sigmoid,
    hard_swish,
    make_divisible,
)
from kerasdl.blocks.residual import (
    apply_basic_block,
    apply_bottleneck_block,
    apply_conv_bn,
    apply_preact_basic_block,
    apply_preact_bottleneck_block,
    apply_squeeze_excite,
)

__all__ = [
    "FeatureTaps",
    "apply_basic_block",
    "apply_bottleneck_block",
    "apply_conv_bn",
    "apply_dense_block",
    "apply_dense_layer",
    "apply_depthwise_separable",
    "apply_inverted_residual",
    "apply_mbconv",
    "apply_preact_basic_block",
    "apply_preact_bottleneck_block",
    "apply_squeeze_excite",
    "apply_squeeze_excite_gate",
    "apply_transition",
    "hard_sigmoid",
    "hard_swish",
    "make_divisible",
]
