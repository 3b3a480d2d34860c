"""Losses shared by the tasks.

:class:`SmoothedSparseCrossentropy` is label-smoothed cross-entropy for integer labels
(Szegedy et al. 2016, "Rethinking the Inception Architecture", Sec. 7; used with
epsilon 0.1 by Vaswani et al. 2017, Sec. 5.4). Keras' ``CategoricalCrossentropy`` smooths
but wants one-hot targets (a 10,000-word vocabulary would make them 10,000 wide), and
``SparseCategoricalCrossentropy`` ignores a padding class but does not smooth; this loss
does both. With target distribution ``(1 - eps) * onehot(y) + eps / K`` the loss is

    (1 - eps) * (-log p_y) + eps * mean_k(-log p_k),

equal to Keras' ``CategoricalCrossentropy(label_smoothing=eps)`` on one-hot labels, and
to ``SparseCategoricalCrossentropy`` (padding ignored the same way) when ``eps`` is 0.
"""

import keras
from keras import ops

from kerasdl.errors import check_fraction


def _set_mask(values, mask):
    # The mask travels on the tensor, as Keras' own sparse cross-entropy hands it to
    # Loss.__call__, which then averages over the valid positions only (combined with
    # any mask the predictions carry).
    from keras.src.backend import set_keras_mask

    set_keras_mask(values, mask)


@keras.saving.register_keras_serializable(package="kerasdl")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against logits with label smoothing ``epsilon``;
    positions labelled ``ignore_class`` (padding) take no part."""

    def __init__(self, label_smoothing=0.1, ignore_class=None, from_logits=True,
                 name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = check_fraction(label_smoothing, "label_smoothing")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        valid = None
        if self.ignore_class is not None:
            valid = ops.not_equal(y_true, self.ignore_class)
            y_true = ops.where(valid, y_true, 0)
        if self.from_logits:
            log_p = ops.log_softmax(y_pred, axis=-1)
        else:
            log_p = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        depth = ops.shape(y_pred)[-1]
        nll = -ops.sum(ops.one_hot(y_true, depth, dtype=log_p.dtype) * log_p, axis=-1)
        uniform = -ops.mean(log_p, axis=-1)
        eps = self.label_smoothing
        values = (1.0 - eps) * nll + eps * uniform
        if valid is not None:
            values = ops.where(valid, values, ops.zeros_like(values))
            _set_mask(values, valid)
        return values

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "ignore_class": self.ignore_class, "from_logits": self.from_logits}


def sparse_crossentropy(label_smoothing=0.0, ignore_class=None):
    """Keras' ``SparseCategoricalCrossentropy`` on logits, or the smoothed loss when
    ``label_smoothing`` is positive (the tasks' training loss; reported test losses stay
    unsmoothed)."""
    if label_smoothing:
        return SmoothedSparseCrossentropy(label_smoothing, ignore_class=ignore_class)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      ignore_class=ignore_class)
