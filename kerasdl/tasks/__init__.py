"""One adapter per task: what a training run, an evaluation and an export need to know
about the kind of model they handle.

``kerasdl train``, ``kerasdl evaluate`` and ``kerasdl export`` look the model's registered
``task`` up here and leave every task-specific decision to its :class:`Task`: which data
loader, loss and metrics, how a prediction is compared with the Keras model's when an
export is verified, and what the model card reports. A new task (text classification,
language modelling, segmentation, ...) is one new subclass registered with
:func:`register_task`.
"""

from __future__ import annotations

from kerasdl.errors import KerasdlError

__all__ = ["Task", "get_task", "register_task", "TASK_ADAPTERS"]


class Task:
    """The interface every task adapter implements. ``name`` is a registry task name."""

    name = ""
    # Whether evaluating a saved run needs its recipe to load the data the same way.
    evaluation_uses_recipe = False

    def load_data(self, dataset, *, input_shape, batch_size, validation_fraction=0.1,
                  augment=None, data_dir=None, max_examples=None, seed=0,
                  deterministic=False, recipe=None, codecs=None):
        """Train/validation/test pipelines for ``dataset``, fitted to ``input_shape``
        (and, for text, to the ``recipe``'s tokenization, vocabulary and length, or to
        the vocabularies ``codecs`` a trained run saved).
        The data may carry an ``epoch`` variable counting the passes over its training
        pipeline, from which that pipeline draws its shuffle and augmentation."""
        raise NotImplementedError

    def input_shape_of(self, model):
        """The input shape (without batch) a trained ``model`` wants its data fitted to,
        or None (a text model, or several inputs)."""
        shape = model.input_shape
        return None if isinstance(shape, list) else shape[1:]

    def make_augment(self, preset, input_shape, seed=0):
        """The recipe's augmentation preset as a ``(x, y) -> (x, y)`` hook, or None."""
        return None

    def build_model(self, info, data, recipe=None, **overrides):
        """The registered model, sized for ``data`` (input shape, number of classes...),
        in its training form for ``recipe`` (e.g. with auxiliary outputs)."""
        raise NotImplementedError

    def compile_kwargs(self, model=None, recipe=None):
        """``loss``, ``metrics`` (and ``loss_weights``) for ``model.compile``."""
        raise NotImplementedError

    def fit_data(self, model, data):
        """``(train, validation, test)`` pipelines whose targets match ``model``'s
        outputs (validation None when the run holds none out)."""
        return data.train, data.validation, data.test

    def callbacks(self, model, data, run_dir):
        """Extra Keras callbacks of a training run (e.g. sample grids into ``run_dir``)."""
        return []

    def inference_model(self, model):
        """The model a run saves, evaluates and exports, from its training form."""
        return model

    def evaluate(self, model, data, batch_size=256):
        """Test metrics of a trained model, as a flat dict of floats."""
        raise NotImplementedError

    def summary(self, result):
        """One line for the CLI about an :meth:`evaluate` result."""
        raise NotImplementedError

    def codecs(self, data):
        """Vocabularies a run must save to encode its data again later, by name."""
        return {}

    def record(self, data):
        """What a run record stores about the data (for evaluation and export later)."""
        return {}

    def check_compatible(self, record, data):
        """Raise ``KerasdlError`` when a run trained per ``record`` cannot be evaluated on
        ``data`` (e.g. other classes)."""

    def verification_data(self, data, limit=None):
        """``(inputs, targets)`` of real test examples for verifying an export."""
        raise NotImplementedError

    def calibration_data(self, data, limit):
        """Real training inputs for int8 calibration."""
        raise NotImplementedError

    def compare(self, reference, outputs, targets):
        """How far an exported artifact's ``outputs`` are from the Keras ``reference``."""
        raise NotImplementedError

    def describe_io(self, model, record):
        """Machine-readable ``{"input": ..., "output": ...}`` for the model card."""
        raise NotImplementedError


TASK_ADAPTERS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASK_ADAPTERS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The adapter of the registry task ``name``."""
    import kerasdl.tasks.generation  # noqa: F401
    import kerasdl.tasks.image_classification  # noqa: F401  (registers itself)
    import kerasdl.tasks.text  # noqa: F401

    try:
        return TASK_ADAPTERS[name]
    except KeyError:
        raise KerasdlError(
            f"kerasdl has no training/evaluation/export adapter for task {name!r} yet; "
            f"tasks with one: {', '.join(sorted(TASK_ADAPTERS))}",
            argument="task",
        ) from None
