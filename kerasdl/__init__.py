"""kerasdl: the runnable deep-learning textbook for Keras 3."""

__version__ = "0.1.0"

from kerasdl.registry import (  # noqa: E402
    InputDecl,
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "__version__",
    "InputDecl",
    "ModelInfo",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
