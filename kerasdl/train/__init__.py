"""Training recipes and resumable training runs."""

from kerasdl.train.recipes import (DEFAULT_RECIPE, MOBILE_CIFAR10_RECIPE, Recipe, get_recipe,
                                    register_recipe)
from kerasdl.train.runs import build_for_fit, default_run_dir, evaluate, load_run, train

__all__ = [
    "DEFAULT_RECIPE",
    "MOBILE_CIFAR10_RECIPE",
    "Recipe",
    "build_for_fit",
    "default_run_dir",
    "evaluate",
    "get_recipe",
    "load_run",
    "register_recipe",
    "train",
]
