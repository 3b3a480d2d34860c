"""kerasdl: the runnable deep-learning textbook for Keras 3."""

__version__ = "0.2.0"

from kerasdl.errors import KerasdlError  # noqa: E402
from kerasdl.registry import (  # noqa: E402
    InputDecl,
    ModelInfo,
    Variant,
    create_model,
    is_model,
    list_models,
    model_info,
    register_family,
    register_model,
)

__all__ = [
    "__version__",
    "InputDecl",
    "KerasdlError",
    "ModelInfo",
    "Variant",
    "create_model",
    "is_model",
    "list_models",
    "model_info",
    "register_family",
    "register_model",
]
