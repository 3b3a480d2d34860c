"""Transfer learning: freeze up to a named stage, replace the head for a new number of
classes, copy weights between models layer by layer (a pretraining model's body into its
fine-tuning form), and layer-wise learning-rate multipliers that work with any Keras optimizer
(the course's "layers near the input learn slower")."""

from __future__ import annotations

import keras

from kerasdl.errors import KerasdlError

__all__ = ["freeze_up_to", "replace_head", "transfer_weights", "with_layerwise_lr",
           "HEAD_NAMES"]

# The classifier layer's name in kerasdl builders (and keras.applications).
HEAD_NAMES = ("predictions", "output")


def _find_head(model):
    for name in HEAD_NAMES:
        try:
            return model.get_layer(name)
        except ValueError:
            continue
    raise KerasdlError(f"{model.name} has no classifier layer named one of {HEAD_NAMES}",
                       argument="model")


def replace_head(model, num_classes, *, name=None):
    """``model`` with its classifier replaced by a fresh ``Dense(num_classes)`` (logits)
    on the same features; every other layer (and its weights) is shared."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise KerasdlError(f"num_classes must be a positive integer, got {num_classes!r}",
                           argument="num_classes")
    head = _find_head(model)
    features = head.input
    # Dropout just before the head stays: it belongs to the classifier block.
    logits = keras.layers.Dense(num_classes, name=head.name)(features)
    return keras.Model(model.inputs, logits, name=name or model.name)


def transfer_weights(source, target):
    """Copy into ``target`` the weights of every layer of ``source`` that ``target`` has
    under the same name; layers of ``target`` that ``source`` lacks keep theirs (a new
    head, a pooler no pretraining objective trained). A layer found in both with other
    weight shapes is an error, as is no layer in common. Returns ``(copied, kept)``: the
    names of the layers copied and of ``target``'s weighted layers left as they were."""
    copied, kept, mismatched = [], [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            origin = source.get_layer(layer.name)
        except ValueError:
            kept.append(layer.name)
            continue
        shapes = [tuple(w.shape) for w in origin.weights]
        wanted = [tuple(w.shape) for w in layer.weights]
        if shapes != wanted:
            mismatched.append(f"{layer.name} {shapes} -> {wanted}")
            continue
        layer.set_weights(origin.get_weights())
        copied.append(layer.name)
    if mismatched:
        raise KerasdlError(f"{source.name} and {target.name} differ in the weight shapes of "
                           f"{'; '.join(mismatched)}", argument="init_from")
    if not copied:
        raise KerasdlError(f"{target.name} has no weighted layer named as one of "
                           f"{source.name}'s", argument="init_from")
    return copied, kept


def freeze_up_to(model, stage):
    """Freeze every layer up to and including the last one whose name starts with
    ``stage`` (e.g. ``"conv3"`` for a ResNet's third stage, ``"block2"`` for VGG); the
    rest stay trainable. Returns the names of the frozen layers."""
    names = [layer.name for layer in model.layers]
    matches = [i for i, n in enumerate(names) if n.startswith(stage)]
    if not matches:
        prefixes = sorted({n.split("_")[0] for n in names})
        raise KerasdlError(f"no layer of {model.name} starts with {stage!r}; layer name "
                           f"prefixes: {', '.join(prefixes)}", argument="stage")
    last = matches[-1]
    for i, layer in enumerate(model.layers):
        layer.trainable = i > last
    return names[: last + 1]


class _LayerwiseLR:
    """Mixed in front of a Keras optimizer class: each variable's learning rate is
    multiplied by a factor looked up once per variable when the optimizer is built."""

    def __init__(self, *args, lr_multipliers=None, lr_default=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = None if lr_multipliers is None else dict(lr_multipliers)
        self.lr_default = float(lr_default)
        self._lr_lookup = None  # a function variable -> factor, given by with_layerwise_lr

    def _factor(self, variable):
        if self._lr_lookup is not None:
            return self._lr_lookup(variable)
        layer = variable.path.split("/")[-2] if "/" in variable.path else variable.path
        for prefix, factor in (self.lr_multipliers or {}).items():
            if layer.startswith(prefix):
                return factor
        return self.lr_default

    def build(self, variables):
        super().build(variables)
        # Factors are looked up once, on the Keras variables: inside update_step a
        # backend may pass its own variable object (TensorFlow: a ResourceVariable).
        self._lr_factors = [float(self._factor(v)) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._lr_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": self.lr_multipliers,
                "lr_default": self.lr_default}


_LAYERWISE_CLASSES = {}


def _layerwise_class(base):
    """``Layerwise<Base>``: registered with Keras (package ``kerasdl``) for Keras's own
    optimizers, so that a model compiled with one saves and reloads compiled."""
    cls = _LAYERWISE_CLASSES.get(base)
    if cls is None:
        cls = type(f"Layerwise{base.__name__}", (_LayerwiseLR, base),
                   {"__module__": __name__, "__doc__": _LayerwiseLR.__doc__})
        if base.__module__.startswith("keras."):
            keras.saving.register_keras_serializable(package="kerasdl")(cls)
        _LAYERWISE_CLASSES[base] = cls
    return cls


# Registered at import, before any saved model that uses one is loaded.
for _name in dir(keras.optimizers):
    _base = getattr(keras.optimizers, _name)
    if (isinstance(_base, type) and issubclass(_base, keras.optimizers.Optimizer)
            and _base is not keras.optimizers.Optimizer
            and _name != "LossScaleOptimizer"):
        _layerwise_class(_base)


def with_layerwise_lr(optimizer, multipliers, default=1.0):
    """A copy of ``optimizer`` in which each variable's learning rate is multiplied by the
    value of the first ``multipliers`` key that its layer's name starts with (else
    ``default``). Works for any Keras optimizer: every Keras 3 optimizer takes the
    learning rate as an argument of ``update_step``, and this scales it per variable.

    With a dict and one of Keras's optimizers the copy is serializable: a model compiled
    with it saves and reloads with its optimizer. ``multipliers`` may also be a function
    ``variable -> float``; such an optimizer cannot be rebuilt from a saved model (load
    it with ``compile=False``)."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise KerasdlError("optimizer must be a keras.optimizers.Optimizer instance",
                           argument="optimizer")
    base = type(optimizer)
    if isinstance(optimizer, _LayerwiseLR):
        base = next(b for b in base.__mro__ if not issubclass(b, _LayerwiseLR))
    config = {k: v for k, v in optimizer.get_config().items()
              if k not in ("lr_multipliers", "lr_default")}
    if callable(multipliers):
        # A function cannot go into a config: a class of its own, which no registry has.
        cls = type(f"Layerwise{base.__name__}", (_LayerwiseLR, base), {})
        copy = cls.from_config({**config, "lr_default": default})
        copy._lr_lookup = multipliers
        return copy
    table = dict(multipliers)
    if not all(isinstance(k, str) for k in table):
        raise KerasdlError(f"multipliers must map layer-name prefixes (str) to factors, got "
                           f"{multipliers!r}", argument="multipliers")
    return _layerwise_class(base).from_config(
        {**config, "lr_multipliers": {k: float(v) for k, v in table.items()},
         "lr_default": float(default)})
