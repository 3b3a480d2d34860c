"""Datasets: TFDS image classification as ``tf.data`` pipelines, plus the embedded digits."""

from kerasdl.data.images import NORMALIZATIONS, ImageData, load_image_classification
from kerasdl.data.sources import DataNotFoundError, network_available, resolve_data_dir

__all__ = [
    "DataNotFoundError",
    "ImageData",
    "NORMALIZATIONS",
    "load_image_classification",
    "network_available",
    "resolve_data_dir",
]
