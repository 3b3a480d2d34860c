"""One string registry for every kerasdl model.

A family has one builder; its variants are data rows. :func:`register_family` registers
each :class:`Variant` row (a frozen dataclass of the family's settings plus its registry
metadata) as a model; :func:`register_model` registers a lone builder function. Either
way a :class:`ModelInfo` record is stored. The record says what the model is (family, task, paper), how to check
it (reference parameter counts and their source, a tiny ``test_kwargs`` config) and what
it takes and returns (``inputs``, ``output_shape``, ``target``), so that the model contract
in ``tests/test_model_contract.py`` can build dummy inputs and a training step for any
family without a hand-written test per model.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from kerasdl.errors import InvalidArgumentError, KerasdlError, check_choice

__all__ = [
    "InputDecl",
    "ModelInfo",
    "ParamCount",
    "Variant",
    "register_family",
    "register_model",
    "create_model",
    "is_model",
    "list_models",
    "model_info",
    "resolve_template",
]

FAMILIES = (
    "cnn",
    "mobile",
    "mlp",
    "rnn",
    "transformer",
    "generative",
    "segmentation",
    "detection",
    "graph",
    "test",
)

TASKS = (
    "image_classification",
    "sequence_classification",
    "token_classification",
    "language_modeling",
    "masked_language_modeling",
    "conditional_language_modeling",
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
        check_choice(self.kind, INPUT_KINDS, "InputDecl.kind")


@dataclass(frozen=True)
class ParamCount:
    """A reference parameter count that is not simply ``count_params()`` at the
    reference configuration: ``trainable_only`` counts trainable weights only (as PyTorch
    counts, without BatchNorm's moving statistics), and ``kwargs`` changes the
    configuration first (e.g. ``{"conv_bias": False}`` for torchvision's ResNet-50)."""

    count: int
    trainable_only: bool = False
    kwargs: Mapping[str, Any] = field(default_factory=dict)


# Image models take raw pixel values; each scales its own input (kerasdl.layers.InputScaling).
IMAGE_INPUT = InputDecl("float", 0.0, 255.0)


@dataclass(frozen=True)
class ModelInfo:
    """The registry record of one model.

    Attributes:
        name: registry name, lower case, e.g. ``"lenet5"``.
        builder: the function that returns the ``keras.Model`` (a family builder taking
            ``config=`` for models registered as variant rows).
        family: one of ``FAMILIES``.
        task: one of ``TASKS``.
        paper: the reference, "Authors, Title, Year".
        reference_params: ``{source: count}``; each count (an int, or a
            :class:`ParamCount`) must equal ``count_params()`` of the model built with
            ``reference_kwargs`` (default: the model's defaults).
        reference_kwargs: the configuration the reference counts refer to.
        default_input_shape: the model's default ``input_shape`` (without batch).
        test_kwargs: a tiny configuration that builds and trains in well under a second.
        tags: free-form labels; ``"mobile"`` makes the contract check TFLite export,
            ``"no_feature_maps"`` that the builder refuses ``features_only=True`` (a
            family builder that takes it, for a variant with no spatial maps).
        inputs: one :class:`InputDecl` per model input, in ``model.inputs`` order.
        output_shape: the documented output shape without batch, as a template whose
            entries are ints, argument names (``"num_classes"``) or ``None`` (any size);
            a list of templates for several outputs.
        target: ``"classes"`` (integer labels over the last output axis, logits,
            sparse cross-entropy), ``"regression"`` (MSE against a float target of the
            output's shape) or ``"self"`` (the model's own training step takes only x).
        description: one line for ``kerasdl list``.
        config: the variant's settings (a frozen dataclass) or None for a lone builder.
        defaults: builder-argument defaults set by the variant (e.g. ``input_shape``).
        recipe: the model's training :class:`kerasdl.train.Recipe`, or None.
        dataset_recipes: recipes for particular datasets (``{"mnist": Recipe(...)}``),
            which replace ``recipe`` there: augmentation that suits one kind of image
            (LeNet-5's handwriting distortions) stays with it.
        default_dataset: the dataset ``kerasdl train`` uses when none is given.
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
    config: Any = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    recipe: Any = None
    dataset_recipes: Mapping[str, Any] = field(default_factory=dict)
    default_dataset: str | None = None

    def _parameters(self):
        return inspect.signature(self.builder).parameters

    def config_fields(self) -> dict[str, Any]:
        """The variant's settings as ``{field: value}`` (empty for a lone builder)."""
        if self.config is None:
            return {}
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}

    def default_kwargs(self) -> dict[str, Any]:
        """Every argument ``create_model`` accepts for this model, with its default: the
        builder's keyword defaults, then the variant's settings and defaults."""
        kwargs = {
            k: p.default
            for k, p in self._parameters().items()
            if p.default is not inspect.Parameter.empty and k != "config"
        }
        kwargs.update(self.config_fields())
        kwargs.update(self.defaults)
        if "name" in kwargs:
            kwargs["name"] = self.name
        return kwargs

    def resolved_kwargs(self, **overrides) -> dict[str, Any]:
        kwargs = self.default_kwargs()
        kwargs.update(overrides)
        return kwargs

    def build(self, **overrides):
        """The model with ``overrides`` applied: a settings field of the variant replaces
        that field (``create_model("lenet5", activation="relu")``); anything else goes to
        the builder."""
        params = self._parameters()
        fields = self.config_fields()
        accepts_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [k for k in overrides if k not in params and k not in fields]
        if unknown and not accepts_var_kw:
            valid = ", ".join(k for k in self.default_kwargs())
            raise InvalidArgumentError(
                f"create_model({self.name!r}) got unexpected argument(s) "
                f"{', '.join(unknown)}; valid arguments: {valid}",
                argument=unknown[0],
            )
        kwargs = dict(self.defaults)
        if "name" in params:
            kwargs["name"] = self.name
        if self.config is not None:
            config = overrides.pop("config", None) or self.config
            changes = {k: overrides.pop(k) for k in list(overrides) if k in fields}
            kwargs["config"] = dataclasses.replace(config, **changes) if changes else config
        kwargs.update(overrides)
        return self.builder(**kwargs)


@dataclass(frozen=True)
class Variant:
    """One registered variant of a family: its name, its settings row and its own
    registry metadata. Fields left at None take the family's value (see
    :func:`register_family`); ``tags`` are added to the family's."""

    name: str
    config: Any
    description: str = ""
    reference_params: Mapping[str, int] = field(default_factory=dict)
    reference_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    recipe: Any = None
    dataset_recipes: Mapping[str, Any] = field(default_factory=dict)
    paper: str | None = None
    test_kwargs: Mapping[str, Any] | None = None
    default_dataset: str | None = None


_REGISTRY: dict[str, ModelInfo] = {}


def _check_name(name):
    if not isinstance(name, str) or not name or name != name.lower():
        raise KerasdlError(f"model name must be a non-empty lower-case string, got {name!r}",
                           argument="name")


def _check_kind(family, task, target):
    check_choice(family, FAMILIES, "family")
    check_choice(task, TASKS, "task")
    check_choice(target, TARGETS, "target")


def _store(info: ModelInfo):
    """Add ``info``; the same name twice is an error unless it is the same builder and
    variant being re-imported (which happens when a module is reloaded)."""
    existing = _REGISTRY.get(info.name)
    if existing is not None:
        same = (
            (existing.builder.__module__, existing.builder.__qualname__)
            == (info.builder.__module__, info.builder.__qualname__)
            and existing.config == info.config
        )
        if not same:
            raise KerasdlError(
                f"model name {info.name!r} is already registered by "
                f"{existing.builder.__module__}.{existing.builder.__qualname__}",
                argument="name",
            )
    _REGISTRY[info.name] = info
    return info


def _first_doc_line(obj):
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


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
    tags: Sequence[str] = (),
    inputs: tuple[InputDecl, ...] = (IMAGE_INPUT,),
    output_shape: Any = ("num_classes",),
    target: str = "classes",
    description: str = "",
    recipe: Any = None,
    dataset_recipes: Mapping[str, Any] | None = None,
    default_dataset: str | None = None,
):
    """Decorator that registers a lone builder function under ``name``. A family with
    several variants registers them as rows with :func:`register_family` instead."""
    _check_name(name)
    _check_kind(family, task, target)

    def decorator(builder):
        if default_input_shape is None:
            shape = inspect.signature(builder).parameters.get("input_shape")
            shape = None if shape is None or shape.default is inspect.Parameter.empty else shape.default
        else:
            shape = default_input_shape
        _store(ModelInfo(
            name=name,
            builder=builder,
            family=family,
            task=task,
            paper=paper,
            reference_params=dict(reference_params or {}),
            reference_kwargs=dict(reference_kwargs or {}),
            default_input_shape=tuple(shape) if shape else None,
            test_kwargs=dict(test_kwargs or {}),
            tags=tuple(tags),
            inputs=tuple(inputs),
            output_shape=output_shape,
            target=target,
            description=description or _first_doc_line(builder),
            recipe=recipe,
            dataset_recipes=dict(dataset_recipes or {}),
            default_dataset=default_dataset,
        ))
        return builder

    return decorator


def register_family(
    builder: Callable[..., Any],
    variants: Sequence[Variant],
    *,
    family: str,
    task: str,
    paper: str = "",
    test_kwargs: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    inputs: tuple[InputDecl, ...] = (IMAGE_INPUT,),
    output_shape: Any = ("num_classes",),
    target: str = "classes",
    default_dataset: str | None = None,
    recipe: Any = None,
) -> list[ModelInfo]:
    """Register each :class:`Variant` row of one family ``builder`` as a model.

    The builder takes the row's settings as ``config=`` plus the standard arguments
    (``input_shape``, ``num_classes``, ..., ``name``). Adding a variant is adding a row.
    ``recipe`` is the family's training recipe, for rows without one of their own.
    """
    _check_kind(family, task, target)
    params = inspect.signature(builder).parameters
    if "config" not in params:
        raise TypeError(f"family builder {builder.__qualname__} must take a `config` argument")
    infos = []
    for row in variants:
        _check_name(row.name)
        unknown = set(row.defaults) - set(params)
        if unknown:
            raise TypeError(f"variant {row.name!r}: defaults {sorted(unknown)} are not "
                            f"arguments of {builder.__qualname__}")
        shape = row.defaults.get("input_shape", getattr(params.get("input_shape"), "default", None))
        infos.append(_store(ModelInfo(
            name=row.name,
            builder=builder,
            family=family,
            task=task,
            paper=paper if row.paper is None else row.paper,
            reference_params=dict(row.reference_params),
            reference_kwargs=dict(row.reference_kwargs),
            default_input_shape=tuple(shape) if shape else None,
            test_kwargs=dict(test_kwargs or {}) if row.test_kwargs is None else dict(row.test_kwargs),
            tags=tuple(dict.fromkeys((*tags, *row.tags))),
            inputs=tuple(inputs),
            output_shape=output_shape,
            target=target,
            description=row.description or _first_doc_line(builder),
            config=row.config,
            defaults=dict(row.defaults),
            recipe=row.recipe if row.recipe is not None else recipe,
            dataset_recipes=dict(row.dataset_recipes),
            default_dataset=row.default_dataset or default_dataset,
        )))
    return infos


def _ensure_models_imported():
    # Imported lazily so that `import kerasdl.registry` stays cheap and cycle-free.
    import kerasdl.models  # noqa: F401


def natural_key(name: str):
    """``resnet18`` before ``resnet101``: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def _unknown_name_error(name: str) -> KerasdlError:
    names = sorted(_REGISTRY, key=natural_key)
    close = difflib.get_close_matches(str(name).lower(), names, n=5, cutoff=0.4)
    if not close:
        close = [n for n in names if str(name).lower() in n][:5]
    hint = f" Closest registered names: {', '.join(close)}." if close else ""
    return KerasdlError(
        f"Unknown model name {name!r}.{hint} Use kerasdl.list_models() (CLI: kerasdl list) "
        f"to see all {len(names)} models.",
        argument="name",
    )


def is_model(name) -> bool:
    """True when ``name`` (any case) is a registered model."""
    _ensure_models_imported()
    return isinstance(name, str) and name.lower() in _REGISTRY


def model_info(name: str) -> ModelInfo:
    """Return the :class:`ModelInfo` registered under ``name``."""
    _ensure_models_imported()
    if not isinstance(name, str):
        raise InvalidArgumentError(f"model name must be a string, got {type(name).__name__}",
                                   argument="name")
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise _unknown_name_error(name) from None


def create_model(name: str, /, **overrides):
    """Build the registered model ``name``; ``overrides`` replace its settings or go to
    its builder.

    Example: ``create_model("lenet5", num_classes=10)``. ``name`` is positional-only,
    so ``name=...`` reaches the builder (every builder has a ``name`` argument).
    """
    return model_info(name).build(**overrides)


def list_models(
    pattern: str | None = None,
    family: str | None = None,
    task: str | None = None,
    tags: str | Sequence[str] | None = None,
) -> list[str]:
    """Registry names in natural order (``resnet18`` before ``resnet101``), filtered by a
    shell-style ``pattern`` (``"*lenet*"``), ``family``, ``task`` and ``tags`` (a model
    must carry every tag given)."""
    _ensure_models_imported()
    if family is not None:
        check_choice(family, FAMILIES, "family")
    if task is not None:
        check_choice(task, TASKS, "task")
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for name in sorted(_REGISTRY, key=natural_key):
        info = _REGISTRY[name]
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
