"""Datasets: TFDS image classification, image folders and the embedded digits as
``tf.data`` pipelines of raw pixel values."""

from kerasdl.data.images import ImageData, load_image_classification
from kerasdl.data.sources import network_available, resolve_data_dir
from kerasdl.errors import DataNotFoundError

__all__ = [
    "DataNotFoundError",
    "ImageData",
    "load_image_classification",
    "network_available",
    "resolve_data_dir",
]
