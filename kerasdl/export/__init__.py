"""Export to SavedModel and TFLite (LiteRT), verification, and model cards."""

from kerasdl.export.bundle import FORMATS, export_model, render_model_card
from kerasdl.export.runtime import TFLiteRunner
from kerasdl.export.tflite import VARIANTS, convert_to_tflite

__all__ = [
    "FORMATS",
    "VARIANTS",
    "TFLiteRunner",
    "convert_to_tflite",
    "export_model",
    "render_model_card",
]
