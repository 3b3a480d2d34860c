"""The multilayer perceptron: Flatten, then fully connected hidden layers, then logits.

Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors",
Nature 323, 1986, trained such networks by backpropagation; ``kerasdl.scratch.neurons.MLP``
is the same network written out in numpy.

A dense layer from ``n`` to ``m`` units holds ``n * m + m`` parameters (a weight per
pair, a bias per output), so a ``d``-input MLP with hidden sizes ``h_1 .. h_k`` and ``c``
classes holds ``sum_i (h_{i-1} + 1) h_i`` with ``h_0 = d`` and ``h_{k+1} = c``. For MNIST,
784-256-128-10 gives 200,960 + 32,896 + 1,290 = 235,146.

Output and loss: like every kerasdl classifier it returns logits (no softmax), to be
trained with ``SparseCategoricalCrossentropy(from_logits=True)``, which computes the
softmax and the log together and stably (the fused gradient ``softmax(z) - onehot(y)`` of
``kerasdl.scratch.neurons.categorical_crossentropy_grad``); pass
``classifier_activation="softmax"`` for probabilities, then train with
``from_logits=False``.
"""

from __future__ import annotations

import keras

from kerasdl.errors import KerasdlError, check_positive_int
from kerasdl.heads import check_classifier_args, classifier
from kerasdl.layers.preprocessing import apply_input_scaling
from kerasdl.registry import register_model
from kerasdl.train.recipes import Recipe

PAPER = ("Rumelhart, Hinton, Williams, Learning representations by back-propagating errors, "
         "Nature 1986")


def _check_hidden_units(hidden_units):
    if not isinstance(hidden_units, (tuple, list)):
        raise KerasdlError("hidden_units must be a tuple of positive integers (empty for "
                           f"none), got {hidden_units!r}", argument="hidden_units")
    for units in hidden_units:
        check_positive_int(units, "hidden_units")
    return tuple(hidden_units)


def _check_activation(activation):
    if not isinstance(activation, str):
        raise KerasdlError(f"activation must be the name of a Keras activation, got "
                           f"{activation!r}", argument="activation")
    try:
        keras.activations.get(activation)
    except ValueError:
        raise KerasdlError(f"activation {activation!r} is not a Keras activation (e.g. "
                           "'relu', 'tanh', 'sigmoid', 'gelu')", argument="activation") from None
    return activation


# Adam's default rate with the warm-up and cosine decay of the other MNIST recipes; the
# model's dropout_rate (default 0) is the regulariser to reach for if it overfits.
_RECIPE = Recipe(optimizer="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5,
                 epochs=10, batch_size=128, validation_fraction=0.1,
                 notes="Adam 1e-3, half-epoch warm-up and cosine decay, 10 epochs")


@register_model(
    "mlp",
    family="mlp",
    task="image_classification",
    paper=PAPER,
    reference_params={
        "hand count for 784-256-128-10, sum of (fan_in + 1) x fan_out: 785x256 + 257x128 "
        "+ 129x10 = 200,960 + 32,896 + 1,290": 235_146,
    },
    test_kwargs={"input_shape": (6, 6, 1), "num_classes": 3, "hidden_units": (8, 5)},
    description="Multilayer perceptron: Flatten, Dense 256 and 128 ReLU, Dense logits",
    default_dataset="mnist",
    recipe=_RECIPE,
    tags=("mnist",),
)
def build_mlp(input_shape=(28, 28, 1), num_classes=10, hidden_units=(256, 128),
              activation="relu", dropout_rate=0.0, include_top=True,
              classifier_activation=None, input_scaling="unit", name="mlp"):
    """Flatten -> [Dense(activation) -> Dropout] per hidden layer -> Dense logits.

    Args:
        input_shape: (height, width, channels) of raw pixels; flattened first.
        num_classes: number of output logits.
        hidden_units: units of each hidden layer, in order; ``()`` gives multinomial
            logistic regression (a single layer).
        activation: the hidden layers' Keras activation name.
        dropout_rate: dropout after every hidden layer (so also just before the
            classifier, the standard meaning of this argument); 0 for none.
        include_top: if False, the model ends at the last hidden layer's activations
            (at the flattened pixels when ``hidden_units`` is empty).
        classifier_activation: None for logits (the kerasdl default) or e.g. "softmax".
        input_scaling: how raw pixels are scaled first (default [0, 1]; see
            :func:`kerasdl.layers.preprocessing.make_input_scaling`), or None.
        name: the Keras model name.
    """
    input_shape = check_classifier_args(input_shape, num_classes, include_top, dropout_rate)
    hidden_units = _check_hidden_units(hidden_units)
    activation = _check_activation(activation)
    inputs = keras.Input(shape=input_shape, name="image")
    x = apply_input_scaling(inputs, input_scaling)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"dense{i}")(x)
        # The last hidden layer's dropout is the classifier's own (heads.classifier).
        if dropout_rate and (i < len(hidden_units) or not include_top):
            x = keras.layers.Dropout(dropout_rate, name=f"dropout{i}")(x)
    if include_top:
        x = classifier(x, num_classes, classifier_activation, dropout_rate, name="predictions")
    return keras.Model(inputs, x, name=name)
