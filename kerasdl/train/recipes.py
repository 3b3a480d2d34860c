"""Training recipes: the optimiser, schedule, epochs, batch size, augmentation and input
normalisation that the CLI and the notebooks use for each model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Recipe:
    """How to train a model.

    ``learning_rate`` is the peak rate; ``schedule="cosine"`` warms up linearly for
    ``warmup_epochs`` and then decays it to zero along a half cosine by the last step.
    ``ema_momentum`` > 0 keeps an exponential moving average of the weights (Polyak
    averaging) and ends training with the averaged weights.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    weight_decay: float = 0.0
    ema_momentum: float = 0.0
    augmentation: str = "none"
    normalization: str = "unit"
    validation_fraction: float = 0.1
    notes: str = ""

    def __post_init__(self):
        from kerasdl.augment import PRESETS
        from kerasdl.data import NORMALIZATIONS

        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1), got {self.ema_momentum!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.augmentation not in PRESETS:
            raise ValueError(f"augmentation must be one of {PRESETS}, got {self.augmentation!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {sorted(NORMALIZATIONS)}, got {self.normalization!r}"
            )

    def replace(self, **changes) -> "Recipe":
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self):
        return dataclasses.asdict(self)


DEFAULT_RECIPE = Recipe(notes="generic default: Adam, warm-up + cosine, 10 epochs")

_RECIPES: dict[str, Recipe] = {}


def register_recipe(model_name: str, recipe: Recipe) -> Recipe:
    _RECIPES[model_name] = recipe
    return recipe


def get_recipe(model_name: str) -> Recipe:
    """The model's own recipe, else :data:`DEFAULT_RECIPE`."""
    from kerasdl.registry import model_info

    info = model_info(model_name)
    return _RECIPES.get(info.name, DEFAULT_RECIPE)


# LeNet-5 (quickstart). LeCun et al. trained 20 passes with a hand-tuned decreasing step
# size and reached 0.95% test error, 0.8% with distorted training images. The recipe keeps
# the paper's input scaling and small distortions but uses Adam with warm-up and cosine
# decay, which gets there in a few minutes on two CPU cores.
register_recipe(
    "lenet5",
    Recipe(
        optimizer="adam",
        learning_rate=3e-3,
        schedule="cosine",
        warmup_epochs=1.0,
        epochs=14,
        batch_size=128,
        augmentation="shift",
        normalization="lenet",
        validation_fraction=0.1,
        notes="paper scaling (-0.1/1.175) and +-2 px shifts; Adam 3e-3 peak, cosine to 0",
    ),
)
register_recipe(
    "lenet5_modern",
    Recipe(
        optimizer="adam",
        learning_rate=3e-3,
        schedule="cosine",
        epochs=14,
        batch_size=128,
        augmentation="shift",
        normalization="unit",
        notes="+-2 px shifts; Adam 3e-3 peak, cosine to 0",
    ),
)
for _name in ("basic_cnn", "simple_cnn"):
    register_recipe(
        _name,
        Recipe(epochs=5, learning_rate=1e-3, notes="the seeds train these for a few epochs with Adam"),
    )
