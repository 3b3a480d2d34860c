"""Export to SavedModel and TFLite (LiteRT), verification, and model cards."""

from kerasdl.export.bench import benchmark, render_bench
from kerasdl.export.bundle import FORMATS, export_model, render_model_card
from kerasdl.export.gpt_step import GPTStepRunner, export_gpt_step
from kerasdl.export.metadata import read_labels
from kerasdl.export.predict import predict_images
from kerasdl.export.runtime import TFLiteRunner
from kerasdl.export.tflite import VARIANTS, convert_to_tflite, with_sequence_length

__all__ = [
    "FORMATS",
    "GPTStepRunner",
    "VARIANTS",
    "TFLiteRunner",
    "benchmark",
    "convert_to_tflite",
    "export_gpt_step",
    "export_model",
    "predict_images",
    "read_labels",
    "render_bench",
    "render_model_card",
    "with_sequence_length",
]
