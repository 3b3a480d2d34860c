"""Training monitors: throughput, early stopping that keeps the best weights, and the
scores of a generative model's samples."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from kerasdl.callbacks._checks import check_non_negative
from kerasdl.errors import KerasdlError, check_choice, check_positive_int

__all__ = ["SampleScoreLogger", "Throughput", "early_stopping"]


class Throughput(keras.callbacks.Callback):
    """Adds ``examples_per_second`` (training examples per second of the epoch's training
    steps) to each epoch's logs, and prints it when ``verbose``.

    The clock starts at the epoch's first training batch and stops when its last one
    has finished, before validation (so neither ``on_epoch_begin`` work nor validation
    counts; input-pipeline waits between batches do). The first epoch includes tracing
    and compilation. Keras does not tell callbacks the batch size, so pass it; with
    ``num_examples`` (the training-set size), an epoch that is exactly one pass over it
    counts the smaller last batch correctly instead of as a full one.

    Without validation the clock stops in this callback's ``on_epoch_end``: put it
    before callbacks that evaluate there (``TestCurve``). Only ``on_train_batch_begin``
    is hooked per batch (a batch-*end* hook would stop Keras from dispatching batches
    asynchronously).
    """

    def __init__(self, batch_size, num_examples=None, verbose=False):
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_examples = check_positive_int(num_examples, "num_examples", allow_none=True)
        self.verbose = bool(verbose)
        self._reset()

    def _reset(self):
        self._start = self._stop = None
        self._last_batch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_train_batch_begin(self, batch, logs=None):
        if self._start is None:
            self._start = time.perf_counter()
        self._last_batch = batch

    def _finish(self):
        if self._start is None or self._stop is not None:
            return
        # A value that depends on every step makes an asynchronous backend (JAX) finish
        # them before the clock stops.
        keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        self._stop = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._finish()  # validation inside fit() starts after the last training step

    def steps_run(self):
        """Training steps of the current epoch so far."""
        if self._last_batch < 0:
            return 0
        # Keras reports one batch call per execution of steps_per_execution steps.
        per_call = getattr(self.model, "steps_per_execution", 1) or 1
        steps = self._last_batch + per_call
        known = (self.params or {}).get("steps")
        return min(steps, known) if known else steps

    def on_epoch_end(self, epoch, logs=None):
        self._finish()
        steps = self.steps_run()
        if logs is None or steps == 0:
            return
        examples = steps * self.batch_size
        if self.num_examples and steps == math.ceil(self.num_examples / self.batch_size):
            examples = self.num_examples
        seconds = max(self._stop - self._start, 1e-9)
        logs["examples_per_second"] = examples / seconds
        if self.verbose:
            print(f"Epoch {epoch + 1}: {examples / seconds:,.1f} examples/s "
                  f"({examples:,} examples in {seconds:.2f} s)", flush=True)


def early_stopping(monitor="val_loss", patience=10, *, mode="auto", min_delta=0.0,
                   start_from_epoch=0, baseline=None, verbose=0):
    """``keras.callbacks.EarlyStopping`` with ``restore_best_weights=True`` and checked
    arguments: stop when ``monitor`` has not improved by ``min_delta`` for ``patience``
    epochs, and leave the model with the weights of its best epoch (Keras restores them
    when training ends, whether or not it stopped early).

    Its state is not in ``keras.callbacks.BackupAndRestore``'s checkpoint: a resumed run
    starts counting patience, and looking for the best epoch, afresh.
    """
    if not isinstance(monitor, str) or not monitor:
        raise KerasdlError(f"monitor must be a metric name, got {monitor!r}",
                           argument="monitor")
    check_positive_int(patience, "patience")
    check_choice(mode, ("auto", "min", "max"), "mode")
    check_non_negative(min_delta, "min_delta")
    if not isinstance(start_from_epoch, int) or isinstance(start_from_epoch, bool) \
            or start_from_epoch < 0:
        raise KerasdlError(f"start_from_epoch must be an integer >= 0, got "
                           f"{start_from_epoch!r}", argument="start_from_epoch")
    return keras.callbacks.EarlyStopping(
        monitor=monitor, patience=patience, mode=mode, min_delta=min_delta,
        start_from_epoch=start_from_epoch, baseline=baseline, verbose=verbose,
        restore_best_weights=True)


class SampleScoreLogger(keras.callbacks.Callback):
    """Scores a generative model's samples at the end of every epoch.

    The model needs ``generate(n, seed=..., labels=...)`` (kerasdl's GANs, VAEs and
    DDPM). ``num_samples`` images are drawn with the same ``seed`` every epoch (a
    conditional model gets the classes in turn) and scored by ``scorer``, a
    :class:`kerasdl.generative_metrics.GenerativeScorer`. The epoch's logs get
    ``{prefix}frechet_distance``, ``{prefix}confidence`` and ``{prefix}class_entropy``:
    pass the callback as ``kerasdl.train.train(epoch_metrics=[...])`` so that they reach
    the run's CSV log and ``history.json``. ``scores`` keeps this session's values.
    """

    def __init__(self, scorer, num_samples=1000, seed=0, prefix="sample_"):
        super().__init__()
        if not (callable(getattr(scorer, "score", None)) and hasattr(scorer, "classifier")):
            raise KerasdlError(f"scorer must be a kerasdl.generative_metrics.GenerativeScorer, "
                               f"got {type(scorer).__name__}", argument="scorer")
        if check_positive_int(num_samples, "num_samples") < 2:
            raise KerasdlError("num_samples must be at least 2 to estimate a covariance",
                               argument="num_samples")
        self.scorer, self.num_samples, self.seed, self.prefix = scorer, num_samples, seed, prefix
        self.num_classes = int(scorer.classifier.outputs[0].shape[-1])
        self.scores = []

    def on_epoch_end(self, epoch, logs=None):
        if not hasattr(self.model, "generate"):
            raise KerasdlError(f"{type(self.model).__name__} has no generate(): "
                               "SampleScoreLogger scores generative models", argument="model")
        extra = {}
        if getattr(self.model, "conditional", False):
            extra["labels"] = np.arange(self.num_samples) % self.num_classes
        images = keras.ops.convert_to_numpy(
            self.model.generate(self.num_samples, seed=self.seed, **extra))
        score = self.scorer.score(images)
        values = {f"{self.prefix}frechet_distance": score["frechet_distance"],
                  f"{self.prefix}confidence": score["mean_confidence"],
                  f"{self.prefix}class_entropy": score["class_histogram_entropy"]}
        self.scores.append({"epoch": epoch, **values})
        if logs is not None:
            logs.update(values)
