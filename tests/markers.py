"""Shared pytest markers."""

import os

import pytest

needs_tfds = pytest.mark.skipif(
    not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", "/nonexistent"), "mnist")),
    reason="needs TFDS_DATA_DIR with the prepared mnist (CI points it at ../shared/data/tfds)",
)
