"""Callbacks that add curves to the epoch log."""

from __future__ import annotations

import keras


class TestCurve(keras.callbacks.Callback):
    """Evaluates ``test_data`` after every epoch and adds its metrics to the epoch's logs
    as ``test_<metric>`` (so a ``CSVLogger`` placed after it records them), for plotting
    a test curve as He et al. (2015, Fig. 6) do. Nothing should be chosen on it."""

    __test__ = False  # not a pytest test class

    def __init__(self, test_data):
        super().__init__()
        self.test_data = test_data

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        result = self.model.evaluate(self.test_data, verbose=0, return_dict=True)
        logs.update({f"test_{key}": float(value) for key, value in result.items()})
