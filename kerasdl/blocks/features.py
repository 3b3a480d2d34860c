"""Feature taps: the last feature map at each stride, for ``features_only=True``
(timm's convention), so segmentation and detection heads can use any CNN as encoder."""

from __future__ import annotations


class FeatureTaps:
    """Collects ``(stride, tensor)`` as a builder goes; the last tensor recorded at each
    stride is that stride's feature map."""

    def __init__(self, min_stride=2):
        self.min_stride = min_stride
        self._taps = {}

    def record(self, tensor, stride):
        if stride >= self.min_stride:
            self._taps[stride] = tensor
        return tensor

    def outputs(self):
        """``{"stride_S": tensor}`` in increasing stride order."""
        return {f"stride_{s}": self._taps[s] for s in sorted(self._taps)}
