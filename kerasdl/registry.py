"""One string registry for every kerasdl model.

A builder is registered with :func:`register_model`, which stores a :class:`ModelInfo`
record next to it. The record says what the model is (family, task, paper), how to check
it (reference parameter counts and their source, a tiny ``test_kwargs`` config) and what
it takes and returns (``inputs``, ``output_shape``, ``target``), so that the model contract
in ``tests/test_model_contract.py`` can build dummy inputs and a training step for any
family without a hand-written test per model.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = [
    "InputDecl",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "resolve_template",
]

TASKS = (
    "image_classification",
    "sequence_classification",
    "token_classification",
    "language_modeling",
    "seq2seq",
    "generation",
    "segmentation",
    "detection",
    "node_classification",
    "test",
)

# How the contract fills a dummy input and what a training step needs.
INPUT_KINDS = ("float", "int")
TARGETS = ("classes", "regression", "self")


@dataclass(frozen=True)
class InputDecl:
    """What values one model input takes.

    ``kind="float"`` draws uniform values in ``[low, high)``; ``kind="int"`` draws integers
    in ``[low, high)``. ``high`` may name a builder argument (e.g. ``"vocab_size"``) whose
    value is the bound. Shapes come from the built model's own ``model.inputs``; any
    ``None`` dimension besides the batch is filled with the contract's sequence length.
    """

    kind: str = "float"
    low: float = 0.0
    high: float | str = 1.0

    def __post_init__(self):
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"InputDecl.kind must be one of {INPUT_KINDS}, got {self.kind!r}")


IMAGE_INPUT = InputDecl("float", 0.0, 1.0)


@dataclass(frozen=True)
class ModelInfo:
    """The registry record of one model.

    Attributes:
        name: registry name, lower case, e.g. ``"lenet5"``.
        builder: the function that returns the ``keras.Model``.
        family: ``"cnn"``, ``"mobile"``, ``"rnn"``, ``"transformer"``, ``"generative"``...
        task: one of ``TASKS``.
        paper: the reference, "Authors, Title, Year".
        reference_params: ``{source: count}``; each count must equal ``count_params()`` of
            the model built with ``reference_kwargs`` (default: the builder's defaults).
        reference_kwargs: the configuration the reference counts refer to.
        default_input_shape: the builder's default ``input_shape`` (without batch).
        test_kwargs: a tiny configuration that builds and trains in well under a second.
        tags: free-form labels; ``"mobile"`` makes the contract check TFLite export.
        inputs: one :class:`InputDecl` per model input, in ``model.inputs`` order.
        output_shape: the documented output shape without batch, as a template whose
            entries are ints, builder-argument names (``"num_classes"``) or ``None``
            (any size); a list of templates for several outputs.
        target: ``"classes"`` (integer labels over the last output axis, logits,
            sparse cross-entropy), ``"regression"`` (MSE against a float target of the
            output's shape) or ``"self"`` (the model's own ``train_step`` takes only x).
        description: one line for ``kerasdl list``.
    """

    name: str
    builder: Callable[..., Any]
    family: str
    task: str
    paper: str = ""
    reference_params: Mapping[str, int] = field(default_factory=dict)
    reference_kwargs: Mapping[str, Any] = field(default_factory=dict)
    default_input_shape: tuple | None = None
    test_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    inputs: tuple[InputDecl, ...] = (IMAGE_INPUT,)
    output_shape: Any = ("num_classes",)
    target: str = "classes"
    description: str = ""

    def default_kwargs(self) -> dict[str, Any]:
        """The builder's keyword defaults, as its signature declares them."""
        params = inspect.signature(self.builder).parameters
        return {
            k: p.default
            for k, p in params.items()
            if p.default is not inspect.Parameter.empty
        }

    def resolved_kwargs(self, **overrides) -> dict[str, Any]:
        kwargs = self.default_kwargs()
        kwargs.update(overrides)
        return kwargs


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    task: str,
    paper: str = "",
    reference_params: Mapping[str, int] | None = None,
    reference_kwargs: Mapping[str, Any] | None = None,
    default_input_shape: tuple | None = None,
    test_kwargs: Mapping[str, Any] | None = None,
    tags: tuple[str, ...] | list[str] = (),
    inputs: tuple[InputDecl, ...] = (IMAGE_INPUT,),
    output_shape: Any = ("num_classes",),
    target: str = "classes",
    description: str = "",
):
    """Decorator that registers a model builder under ``name``.

    Registering the same name twice is an error unless it is the same function being
    re-imported (which happens when a module is reloaded).
    """
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"model name must be a non-empty lower-case string, got {name!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")

    def decorator(builder):
        existing = _REGISTRY.get(name)
        if existing is not None and (
            existing.builder.__module__, existing.builder.__qualname__
        ) != (builder.__module__, builder.__qualname__):
            raise ValueError(
                f"model name {name!r} is already registered by "
                f"{existing.builder.__module__}.{existing.builder.__qualname__}"
            )
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            family=family,
            task=task,
            paper=paper,
            reference_params=dict(reference_params or {}),
            reference_kwargs=dict(reference_kwargs or {}),
            default_input_shape=tuple(default_input_shape) if default_input_shape else None,
            test_kwargs=dict(test_kwargs or {}),
            tags=tuple(tags),
            inputs=tuple(inputs),
            output_shape=output_shape,
            target=target,
            description=description or (doc[0] if doc else ""),
        )
        return builder

    return decorator


def _ensure_models_imported():
    # Imported lazily so that `import kerasdl.registry` stays cheap and cycle-free.
    import kerasdl.models  # noqa: F401


def _unknown_name_error(name: str) -> ValueError:
    names = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name).lower(), names, n=5, cutoff=0.4)
    if not close:
        close = [n for n in names if str(name).lower() in n][:5]
    hint = f" Closest registered names: {', '.join(close)}." if close else ""
    return ValueError(
        f"Unknown model name {name!r}.{hint} Use kerasdl.list_models() to see all "
        f"{len(names)} models."
    )


def model_info(name: str) -> ModelInfo:
    """Return the :class:`ModelInfo` registered under ``name``."""
    _ensure_models_imported()
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise _unknown_name_error(name) from None


def create_model(name: str, /, **overrides):
    """Build the registered model ``name``; ``overrides`` go to its builder.

    Example: ``create_model("lenet5", num_classes=10)``. ``name`` is positional-only,
    so ``name=...`` reaches the builder (every builder has a ``name`` argument).
    """
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    accepts_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in overrides if k not in params]
    if unknown and not accepts_var_kw:
        valid = ", ".join(k for k in params)
        raise TypeError(
            f"create_model({name!r}) got unexpected argument(s) {', '.join(unknown)}; "
            f"valid arguments: {valid}"
        )
    return info.builder(**overrides)


def list_models(
    pattern: str | None = None,
    family: str | None = None,
    task: str | None = None,
    tags: str | list[str] | tuple[str, ...] | None = None,
) -> list[str]:
    """Sorted registry names, filtered by a shell-style ``pattern`` (``"*lenet*"``),
    ``family``, ``task`` and ``tags`` (a model must carry every tag given)."""
    _ensure_models_imported()
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for name, info in sorted(_REGISTRY.items()):
        if pattern and not fnmatch.fnmatch(name, pattern.lower()):
            continue
        if family and info.family != family:
            continue
        if task and info.task != task:
            continue
        if tags and not set(tags) <= set(info.tags):
            continue
        out.append(name)
    return out


def resolve_template(template, kwargs: Mapping[str, Any]):
    """Turn an ``output_shape`` template into a concrete tuple using builder arguments."""
    if isinstance(template, list):
        return [resolve_template(t, kwargs) for t in template]
    return tuple(kwargs[t] if isinstance(t, str) else t for t in template)
