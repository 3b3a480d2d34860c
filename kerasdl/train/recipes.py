"""Training recipes: the optimiser, schedule, epochs, batch size and augmentation that the
CLI and the notebooks use for each model.

A recipe sits next to its model's registration (the ``recipe`` of a
:class:`kerasdl.registry.Variant` row or of ``register_model``); :func:`register_recipe`
replaces it for a registered model. Input scaling is not a recipe field: it belongs to
the model (``input_scaling``), so saved and exported models carry it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
CLIPPING = ("none", "value", "norm", "global_norm", "adaptive")


@dataclass(frozen=True)
class Recipe:
    """How to train a model.

    ``learning_rate`` is the peak rate; ``schedule="cosine"`` warms up linearly for
    ``warmup_epochs`` and then decays it to zero along a half cosine by the last step.
    ``weight_decay`` is AdamW's (or SGD's, RMSprop's) decoupled decay (0.0 means none):
    ``w -= lr * weight_decay * w`` each step, outside the momentum, so a paper's L2
    coefficient trained with momentum 0.9 corresponds to 10 times it here;
    ``decay_matrices_only`` spares biases and normalisation scales (every weight of
    fewer than two dimensions), as BERT and GPT-2's training code do. ``momentum``
    and ``nesterov`` apply to SGD (``momentum`` also to RMSprop, which uses the Inception
    papers' decay 0.9 and epsilon 1.0); ``beta_1`` and ``beta_2`` to Adam and AdamW (Keras'
    defaults; DCGAN trains with beta_1 0.5). ``ema_momentum`` > 0 keeps an exponential moving average of
    the weights (Polyak averaging) and ends training with the averaged weights.
    ``aux_loss_weight`` > 0 trains the model's auxiliary classifiers (a builder with an
    ``aux_classifiers`` argument, such as GoogLeNet's) with their losses weighted so; the
    run saves the single-output model.

    ``schedule="step"`` divides the rate by 10 at half and at three quarters of the
    epochs (He et al. 2015 trained CIFAR ResNets so: 0.1 until 32k of 64k iterations,
    then 0.01, then 0.001 from 48k); ``"onecycle"`` is Smith & Topin's (2018) warm-up
    over the first 30% and annealing far below the start. ``gradient_clipping`` names
    what ``clip_threshold`` bounds: each gradient's values, each gradient's norm, their
    global norm, or (``"adaptive"``) each unit's gradient-to-weight norm ratio
    (Brock et al. 2021). ``label_smoothing`` > 0 trains classifiers and token predictors
    against ``(1 - eps) * onehot + eps / K`` (:class:`kerasdl.losses.SmoothedSparseCrossentropy`).

    ``layerwise_lr`` maps layer-name prefixes to learning-rate multipliers for fine-tuning
    (``{"conv1": 0.1, "conv2": 0.3}``: the first matching prefix applies, other layers
    train at the full rate; :func:`kerasdl.train.transfer.with_layerwise_lr`).

    Text tasks read ``tokenization`` (``"word"`` or ``"character"``),
    ``vocabulary_size`` and ``sequence_length``; 0 or "" means the task's default
    (:data:`kerasdl.tasks.text.DEFAULTS`). ``padding="batch"`` pads each batch only to
    its longest sequence (the model is then built for any length; for models that mask
    padding, the same computation on fewer positions), ``"fixed"`` every batch to
    ``sequence_length``; "" means the task's default (per batch for translation).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    weight_decay: float = 0.0
    decay_matrices_only: bool = False
    momentum: float = 0.9
    nesterov: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    ema_momentum: float = 0.0
    aux_loss_weight: float = 0.0
    gradient_clipping: str = "none"
    clip_threshold: float = 0.0
    label_smoothing: float = 0.0
    augmentation: str = "none"
    validation_fraction: float = 0.1
    tokenization: str = ""
    vocabulary_size: int = 0
    sequence_length: int = 0
    padding: str = ""
    layerwise_lr: dict | None = None
    notes: str = ""

    def __post_init__(self):
        from kerasdl.augment import PRESETS

        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_fraction(self.ema_momentum, "ema_momentum")
        check_fraction(self.momentum, "momentum")
        check_fraction(self.beta_1, "beta_1")
        check_fraction(self.beta_2, "beta_2")
        check_fraction(self.validation_fraction, "validation_fraction")
        check_fraction(self.label_smoothing, "label_smoothing")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise KerasdlError(f"learning_rate must be positive, got {self.learning_rate!r}",
                               argument="learning_rate")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise KerasdlError(f"weight_decay must be >= 0, got {self.weight_decay!r}",
                               argument="weight_decay")
        if not (isinstance(self.aux_loss_weight, (int, float)) and self.aux_loss_weight >= 0):
            raise KerasdlError(f"aux_loss_weight must be >= 0, got {self.aux_loss_weight!r}",
                               argument="aux_loss_weight")
        if not (isinstance(self.warmup_epochs, (int, float)) and self.warmup_epochs >= 0):
            raise KerasdlError(f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}",
                               argument="warmup_epochs")
        check_choice(self.augmentation, PRESETS, "augmentation")
        if self.tokenization:
            check_choice(self.tokenization, ("word", "character"), "tokenization")
        if self.padding:
            check_choice(self.padding, ("fixed", "batch"), "padding")
        for value, argument in ((self.vocabulary_size, "vocabulary_size"),
                                (self.sequence_length, "sequence_length")):
            if not (isinstance(value, int) and value >= 0):
                raise KerasdlError(f"{argument} must be an integer >= 0 (0: the task's "
                                   f"default), got {value!r}", argument=argument)
        if self.layerwise_lr is not None and not (
                isinstance(self.layerwise_lr, dict) and all(
                    isinstance(k, str) and k and isinstance(v, (int, float)) and v > 0
                    for k, v in self.layerwise_lr.items())):
            raise KerasdlError(
                "layerwise_lr must map layer-name prefixes to positive learning-rate "
                f"multipliers, e.g. {{'conv1': 0.1}}, got {self.layerwise_lr!r}",
                argument="layerwise_lr")
        check_choice(self.gradient_clipping, CLIPPING, "gradient_clipping")
        if self.gradient_clipping != "none" and not (
                isinstance(self.clip_threshold, (int, float)) and self.clip_threshold > 0):
            raise KerasdlError(
                f"gradient_clipping={self.gradient_clipping!r} needs a positive "
                f"clip_threshold, got {self.clip_threshold!r}", argument="clip_threshold")

    def replace(self, **changes) -> "Recipe":
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self):
        return dataclasses.asdict(self)

    def make_optimizer(self, steps_per_epoch, model=None):
        """The Keras optimizer this recipe describes, for ``steps_per_epoch`` steps (and,
        with ``decay_matrices_only``, for ``model``'s variables)."""
        import keras

        from kerasdl.callbacks import (OneCycle, StepDecay, WarmupCosine, gradient_clipping,
                                       with_adaptive_gradient_clipping)

        total = self.epochs * steps_per_epoch
        if self.schedule == "cosine":
            warmup = min(int(self.warmup_epochs * steps_per_epoch), total - 1)
            lr = WarmupCosine(self.learning_rate, total, warmup)
        elif self.schedule == "step":
            lr = StepDecay(self.learning_rate, [max(1, total // 2), max(2, total * 3 // 4)])
        elif self.schedule == "onecycle":
            lr = OneCycle(self.learning_rate, total)
        else:
            lr = self.learning_rate
        extra = {"use_ema": True, "ema_momentum": self.ema_momentum} if self.ema_momentum else {}
        _warn_if_ema_outlasts_run(self.ema_momentum, total)
        if self.gradient_clipping not in ("none", "adaptive"):
            extra.update(gradient_clipping(self.gradient_clipping, self.clip_threshold))
        decay = {"weight_decay": self.weight_decay} if self.weight_decay else {}
        if self.optimizer == "adam":
            optimizer = keras.optimizers.Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2,
                                              **extra)
        elif self.optimizer == "adamw":
            optimizer = keras.optimizers.AdamW(lr, weight_decay=self.weight_decay,
                                               beta_1=self.beta_1, beta_2=self.beta_2, **extra)
        elif self.optimizer == "rmsprop":
            optimizer = keras.optimizers.RMSprop(lr, rho=0.9, epsilon=1.0,
                                                 momentum=self.momentum, **decay, **extra)
        else:
            optimizer = keras.optimizers.SGD(lr, momentum=self.momentum,
                                             nesterov=self.nesterov, **decay, **extra)
        if self.decay_matrices_only and self.weight_decay and model is not None:
            optimizer.exclude_from_weight_decay(
                var_list=[v for v in model.trainable_variables if len(v.shape) < 2])
        if self.layerwise_lr:
            from kerasdl.train.transfer import with_layerwise_lr

            optimizer = with_layerwise_lr(optimizer, self.layerwise_lr)
        if self.gradient_clipping == "adaptive":
            optimizer = with_adaptive_gradient_clipping(optimizer, self.clip_threshold)
        return optimizer


def _warn_if_ema_outlasts_run(momentum, total_steps):
    """Keras starts the weight average at the first step's weights and has no warm-up
    (TensorFlow's ExponentialMovingAverage ramps the decay up with ``num_updates``), so a
    paper's 0.9999 on a run of a few thousand steps ends on weights that are still a
    sizeable part of the random initialisation."""
    if not momentum or total_steps <= 0:
        return
    left = momentum ** total_steps
    if left > 0.05:
        bound = math.floor(0.05 ** (1.0 / total_steps) * 1e4) / 1e4
        warnings.warn(
            f"ema_momentum={momentum} averages over about {1 / (1 - momentum):,.0f} steps, "
            f"but this run has {total_steps:,}: the final (averaged) weights would still "
            f"hold {left:.0%} of the first step's. Use ema_momentum <= {bound} for a run "
            f"this long, more epochs, or ema_momentum=0.0", stacklevel=3)


DEFAULT_RECIPE = Recipe(notes="generic default: Adam, warm-up + cosine, 10 epochs")

# The mobile networks on CIFAR-10 at its own 32x32 (benchmarks/mobile.py, notebook 09):
# Adam converges in tens of epochs without per-model tuning, where the papers' RMSprop
# schedules ran for hundreds of ImageNet epochs. Train with
# ``model_kwargs={"input_shape": (32, 32, 3)}`` (the registered input is 224x224).
MOBILE_CIFAR10_RECIPE = Recipe(
    optimizer="adam", learning_rate=2e-3, schedule="cosine", warmup_epochs=1, epochs=30,
    batch_size=128, augmentation="cifar", validation_fraction=0.0,
    notes="mobile networks on CIFAR-10 at 32x32: Adam 2e-3, warm-up + cosine, "
    "crop-and-flip, all 50,000 training images")


def paper_recipe(*, optimizer="sgd", learning_rate, paper_batch, epochs, l2=0.0,
                 momentum=0.9, nesterov=False, batch_size=128, warmup_epochs=0.0,
                 augmentation="cifar", notes=""):
    """A paper's ImageNet recipe as kerasdl runs it, the scaling written into ``notes``:
    the learning rate scaled linearly from the paper's batch to ``batch_size`` (Goyal et
    al. 2017), the paper's L2 coefficient turned into decoupled decay (times
    ``1 / (1 - momentum)``, what momentum makes of it), and warm-up + cosine decay over
    the paper's epochs in place of its step, plateau or exponential schedule."""
    lr = round(learning_rate * batch_size / paper_batch, 10)
    decay = round(l2 / (1 - momentum) if optimizer == "sgd" else l2, 10)
    scaling = (f"paper: {optimizer} lr {learning_rate:g} at batch {paper_batch}, L2 {l2:g}, "
               f"momentum {momentum:g}; here lr {lr:g} at batch {batch_size} (linear "
               f"scaling), decoupled decay {decay:g}, warm-up + cosine over {epochs} epochs")
    return Recipe(optimizer=optimizer, learning_rate=lr, momentum=momentum,
                  nesterov=nesterov, weight_decay=decay, schedule="cosine",
                  warmup_epochs=warmup_epochs, epochs=epochs, batch_size=batch_size,
                  augmentation=augmentation, validation_fraction=0.1,
                  notes=f"{notes}; {scaling}" if notes else scaling)

_OVERRIDES: dict[str, Recipe] = {}


def register_recipe(model_name: str, recipe: Recipe) -> Recipe:
    """Use ``recipe`` for the registered model ``model_name`` on every dataset (an unknown
    name is an error, so a typo cannot silently fall back to the default recipe)."""
    from kerasdl.registry import model_info

    if not isinstance(recipe, Recipe):
        raise KerasdlError(f"recipe must be a Recipe, got {type(recipe).__name__}",
                           argument="recipe")
    _OVERRIDES[model_info(model_name).name] = recipe
    return recipe


def _dataset_key(dataset) -> str:
    """A TFDS name without its version (``"mnist:3.0.1"`` -> ``"mnist"``); a folder or
    file that exists stays as it is (and so matches no dataset recipe)."""
    text = str(dataset)
    return text if os.path.exists(text) else text.split(":", 1)[0].strip().lower()


def get_recipe(model_name: str, dataset: str | None = None) -> Recipe:
    """The model's recipe for ``dataset`` (default: the model's default dataset): a
    recipe registered with :func:`register_recipe`, else the model's recipe for that
    dataset (``dataset_recipes`` in the registry), else its own, else
    :data:`DEFAULT_RECIPE`."""
    from kerasdl.registry import model_info

    info = model_info(model_name)
    recipes = recipes_by_dataset(info.name)
    dataset = dataset or info.default_dataset
    return recipes.get(_dataset_key(dataset), recipes[None]) if dataset else recipes[None]


def recipes_by_dataset(model_name: str) -> dict:
    """``{None: recipe for any dataset, "mnist": recipe on MNIST, ...}`` as
    :func:`get_recipe` resolves them (a recipe from :func:`register_recipe` replaces
    them all)."""
    from kerasdl.registry import model_info

    info = model_info(model_name)
    if info.name in _OVERRIDES:
        return {None: _OVERRIDES[info.name]}
    return {None: info.recipe or DEFAULT_RECIPE, **info.dataset_recipes}
