"""Shared pytest markers."""

import os

import pytest

needs_tfds = pytest.mark.skipif(
    not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", "/nonexistent"), "mnist")),
    reason="needs TFDS_DATA_DIR with the prepared mnist (CI points it at ../shared/data/tfds)",
)

_TFDS = os.environ.get("TFDS_DATA_DIR")
_MULTI30K = os.path.join(os.path.dirname(os.path.abspath(_TFDS or ".")), "raw", "multi30k")
needs_multi30k = pytest.mark.skipif(
    not _TFDS or not os.path.isdir(_MULTI30K),
    reason="needs TFDS_DATA_DIR with ../raw/multi30k beside it (../shared/data/raw/multi30k)")
