"""Gradient clipping: Keras' own by-value and by-norm clipping, and adaptive gradient
clipping (AGC) for any Keras optimizer."""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.callbacks._checks import check_positive
from kerasdl.errors import KerasdlError, check_choice

__all__ = [
    "gradient_clipping",
    "unitwise_norm",
    "adaptive_clip",
    "AdaptiveGradientClipping",
    "with_adaptive_gradient_clipping",
]

_CLIP_KWARGS = {"value": "clipvalue", "norm": "clipnorm", "global_norm": "global_clipnorm"}


def gradient_clipping(by, threshold):
    """Keyword arguments for a Keras optimizer that clip gradients (Keras does the
    clipping; this only checks the choice and the threshold):

    - ``"value"``: each gradient element into ``[-threshold, threshold]``;
    - ``"norm"``: each variable's gradient to L2 norm at most ``threshold``;
    - ``"global_norm"``: all gradients together to global L2 norm at most ``threshold``
      (Pascanu et al. 2013, the usual choice for RNNs and Transformers).

    ``keras.optimizers.SGD(0.1, **gradient_clipping("global_norm", 1.0))``
    """
    check_choice(by, tuple(_CLIP_KWARGS), "by")
    return {_CLIP_KWARGS[by]: check_positive(threshold, "threshold")}


def unitwise_norm(x):
    """Frobenius norm per unit, as in Brock et al. (2021, Sec. 4.1): a unit is one output
    unit, i.e. one slice along the last axis of a Keras kernel (Dense ``(in, out)``,
    Conv ``(kh, kw, in, out)``), so the norm runs over every other axis and keeps
    them (size 1) for broadcasting. A vector or scalar (bias, norm scale) is one unit."""
    x = ops.cast(x, "float32")
    if len(x.shape) <= 1:
        return ops.sqrt(ops.sum(ops.square(x)))
    axes = tuple(range(len(x.shape) - 1))
    return ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))


def adaptive_clip(gradient, weight, clipping=0.01, eps=1e-3, loss_scale=None):
    """``gradient`` with each unit ``G_i`` rescaled to ``clipping * max(|W_i|, eps) / |G_i|
    * G_i`` where ``|G_i| / max(|W_i|, eps) > clipping`` (Brock et al. 2021, eq. 3).
    ``loss_scale``: a constant factor the gradient still carries (its norm is compared
    unscaled)."""
    grad_norm = unitwise_norm(gradient)
    if loss_scale:
        grad_norm = grad_norm / loss_scale
    max_norm = clipping * ops.maximum(unitwise_norm(weight), eps)
    # The floor only keeps the unselected branch finite for an all-zero gradient.
    factor = ops.where(grad_norm > max_norm, max_norm / ops.maximum(grad_norm, 1e-6), 1.0)
    return gradient * ops.cast(factor, keras.backend.standardize_dtype(gradient.dtype))


@keras.saving.register_keras_serializable(package="kerasdl")
class AdaptiveGradientClipping(keras.optimizers.Optimizer):
    """Wraps any Keras optimizer and applies adaptive gradient clipping (AGC; Brock et al.
    2021, "High-Performance Large-Scale Image Recognition Without Normalization",
    Sec. 4.1) to the gradients before the wrapped optimizer sees them.

    Each unit's gradient is clipped so that ``|G_i| <= clipping * max(|W_i|, eps)``
    (see :func:`unitwise_norm` for what a unit is). The paper uses ``eps=1e-3`` and
    ``clipping=0.01`` at batch size 4096 (larger batches want smaller values), and
    leaves the final linear layer unclipped: ``exclude`` lists substrings of variable paths (e.g. the classifier
    layer's name, ``"predictions/"``) whose gradients pass through untouched.

    The wrapper follows ``keras.optimizers.LossScaleOptimizer``: it owns no update rule,
    forwards ``learning_rate``, ``iterations`` and loss scaling to the wrapped optimizer
    (so schedules, ``ReduceLROnPlateau`` and EMA behave as without it), and serializes
    the wrapped optimizer in its config. It overrides only ``apply``; the JAX trainer's
    ``stateless_apply`` runs ``apply`` inside a stateless scope, so the same code clips
    on TensorFlow and JAX. With gradient accumulation on the wrapped optimizer, each
    micro-batch's gradient is clipped before it is accumulated; under ``tf.distribute``,
    like Keras' own ``clipnorm``, each replica's gradient is clipped.
    """

    def __init__(self, inner_optimizer, clipping=0.01, eps=1e-3, exclude=(), name=None):
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise KerasdlError(
                f"inner_optimizer must be a keras.optimizers.Optimizer instance, got "
                f"{inner_optimizer!r}", argument="inner_optimizer")
        if isinstance(inner_optimizer, keras.optimizers.LossScaleOptimizer):
            # Its gradients arrive still multiplied by the dynamic loss scale.
            raise KerasdlError(
                "wrap the optimizer in AdaptiveGradientClipping before loss scaling, not "
                "after (model.compile adds the LossScaleOptimizer itself under a "
                "mixed_float16 policy)", argument="inner_optimizer")
        try:
            parts = None if isinstance(exclude, str) else list(exclude)
        except TypeError:
            parts = None
        if parts is None or not all(isinstance(p, str) and p for p in parts):
            raise KerasdlError(
                f"exclude must be a list of non-empty variable-path substrings, got "
                f"{exclude!r}", argument="exclude")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.clipping = check_positive(clipping, "clipping")
        self.eps = check_positive(eps, "eps")
        self.exclude = parts

    def build(self, variables):
        # The wrapped optimizer may come already built (e.g. reused after a first fit).
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(variables)
        super().build(variables)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    def _skips(self, variable):
        if self._overwrite_variable_with_gradient(variable):
            return True  # its "gradient" is a new value, not a direction
        path = getattr(variable, "path", None) or getattr(variable, "name", "")
        return any(part in path for part in self.exclude)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            if not self.built:
                raise ValueError("AdaptiveGradientClipping.apply without variables needs a "
                                 "built optimizer; call build(trainable_variables) first")
            variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
            variables = trainable_variables
        scale = self.inner_optimizer.loss_scale_factor
        clipped = []
        for grad, variable in zip(grads, variables):
            if grad is None or self._skips(variable):
                clipped.append(grad)
            else:
                # ``variable.value`` reads the stateless scope's value under JAX.
                clipped.append(adaptive_clip(ops.convert_to_tensor(grad), variable.value,
                                             self.clipping, self.eps, scale))
        self.inner_optimizer.apply(clipped, trainable_variables)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "clipping": self.clipping,
            "eps": self.eps,
            "exclude": list(self.exclude),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)


def with_adaptive_gradient_clipping(optimizer, clipping=0.01, eps=1e-3, exclude=()):
    """``optimizer`` (an instance, or a name such as ``"sgd"``) wrapped in
    :class:`AdaptiveGradientClipping`: pass the result to ``model.compile``."""
    if isinstance(optimizer, (str, dict)):
        optimizer = keras.optimizers.get(optimizer)
    return AdaptiveGradientClipping(optimizer, clipping=clipping, eps=eps, exclude=exclude)
