"""Callbacks that write artifacts into a folder the user names: image-sample grids for
generative models and confusion matrices for classifiers. Every file is written
atomically (:mod:`kerasdl.atomic`), so a crash never leaves half a file behind."""

from __future__ import annotations

import csv
import math
import os

import keras
import numpy as np

from kerasdl.atomic import atomic_file, write_json
from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["image_grid", "ImageSampleWriter", "confusion_matrix", "ConfusionMatrixWriter"]


def _check_directory(directory):
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise KerasdlError(f"directory must be a folder path, got {directory!r}",
                           argument="directory")
    return os.path.abspath(os.fspath(directory))


def _check_every(value, argument):
    return check_positive_int(value, argument, allow_none=True)


def _value_range(images):
    """The range images are in: integers are 0-255; floats with negatives are tanh
    outputs in [-1, 1]; other floats are [0, 1] up to a maximum of 1, else 0-255."""
    if np.issubdtype(images.dtype, np.integer) or images.dtype == bool:
        return (0.0, 255.0)
    if images.size and float(np.nanmin(images)) < 0:
        return (-1.0, 1.0)
    if images.size and float(np.nanmax(images)) > 1:
        return (0.0, 255.0)
    return (0.0, 1.0)


def image_grid(images, columns=None, padding=2, value_range=None):
    """Tile ``images`` (``(N, H, W, C)`` with C in 1, 3, 4, or ``(N, H, W)``) into one
    ``uint8`` image ``(rows*H + pads, columns*W + pads, C)``, row by row, separated by
    ``padding`` black pixels. ``columns`` defaults to ``ceil(sqrt(N))``.
    ``value_range=(low, high)`` maps ``low`` to 0 and ``high`` to 255 (values outside
    are clipped); ``None`` guesses it: integer arrays 0-255, floats with negatives
    [-1, 1], floats up to 1 [0, 1], other floats 0-255."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3, 4):
        raise KerasdlError(
            f"images must be a non-empty (N, H, W, C) array with C in 1, 3 or 4 (or "
            f"(N, H, W)); got shape {images.shape}", argument="images")
    count, height, width, channels = images.shape
    columns = check_positive_int(columns, "columns", allow_none=True) or math.ceil(
        math.sqrt(count))
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise KerasdlError(f"padding must be an integer >= 0, got {padding!r}",
                           argument="padding")
    low, high = value_range if value_range is not None else _value_range(images)
    if not high > low:
        raise KerasdlError(f"value_range must be (low, high) with high > low, got "
                           f"{value_range!r}", argument="value_range")
    scaled = (images.astype("float64") - low) * (255.0 / (high - low))
    scaled = np.clip(np.nan_to_num(scaled), 0, 255).round().astype("uint8")
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * height + (rows - 1) * padding,
                     columns * width + (columns - 1) * padding, channels), "uint8")
    for i, image in enumerate(scaled):
        top = (i // columns) * (height + padding)
        left = (i % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


class ImageSampleWriter(keras.callbacks.Callback):
    """Every ``every_n_epochs`` epochs, calls ``sample_fn(model, epoch)`` (``epoch``
    counted from 0, as Keras does) for a batch of images and writes them as one grid
    (:func:`image_grid`) to ``directory/samples_epoch_XXX.png``, ``XXX`` the epoch
    counted from 1 (as ``ModelCheckpoint``'s ``{epoch}``). For watching a GAN or VAE
    learn, e.g. ``lambda model, epoch: generator(fixed_noise)``: a fixed noise batch
    shows the same samples evolving. An existing file for the same epoch (a resumed
    run) is replaced."""

    def __init__(self, sample_fn, directory, every_n_epochs=1, columns=None,
                 value_range=None, padding=2):
        super().__init__()
        if not callable(sample_fn):
            raise KerasdlError(f"sample_fn must be callable, got {sample_fn!r}",
                               argument="sample_fn")
        self.sample_fn = sample_fn
        self.directory = _check_directory(directory)
        self.every_n_epochs = check_positive_int(every_n_epochs, "every_n_epochs")
        self.columns = check_positive_int(columns, "columns", allow_none=True)
        self.value_range = value_range
        self.padding = padding
        self.written = []

    def path_for(self, epoch):
        return os.path.join(self.directory, f"samples_epoch_{epoch + 1:03d}.png")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        images = keras.ops.convert_to_numpy(self.sample_fn(self.model, epoch))
        grid = image_grid(images, self.columns, self.padding, self.value_range)
        path = self.path_for(epoch)
        with atomic_file(path, overwrite=True) as tmp:
            keras.utils.save_img(tmp, grid, file_format="png", scale=False)
        self.written.append(path)


def confusion_matrix(y_true, y_pred, num_classes):
    """``(num_classes, num_classes)`` int64 counts: row = true class, column = predicted."""
    y_true = np.asarray(y_true, "int64").reshape(-1)
    y_pred = np.asarray(y_pred, "int64").reshape(-1)
    if y_true.shape != y_pred.shape:
        raise KerasdlError(f"{y_true.size} labels but {y_pred.size} predictions",
                           argument="y_pred")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise KerasdlError(
                f"{name} holds class ids outside [0, {num_classes}): "
                f"{int(labels.min())}..{int(labels.max())}", argument=name)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _label_ids(labels):
    """Class ids from labels: one-hot (or soft) rows by argmax, else the ids themselves."""
    labels = np.asarray(labels)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        return labels.argmax(axis=-1).reshape(-1)
    return labels.reshape(-1).astype("int64")


def _predicted_ids(scores, threshold):
    """Class ids from model outputs: argmax over several classes, one column by
    ``threshold``."""
    scores = np.asarray(scores)
    if scores.ndim > 1 and scores.shape[-1] > 1:
        return scores.argmax(axis=-1).reshape(-1)
    return (scores.reshape(-1) > threshold).astype("int64")


class ConfusionMatrixWriter(keras.callbacks.Callback):
    """Writes the confusion matrix of the model's predictions on ``data`` into
    ``directory``: ``confusion_matrix_epoch_XXX.{csv,json,png}`` every
    ``every_n_epochs`` epochs (``XXX`` counted from 1), and ``confusion_matrix.{csv,json,
    png}`` when training ends (``at_train_end``; placed after ``early_stopping`` in the
    callback list, it sees the restored best weights). Rows are true classes, columns
    predicted. The PNG heatmap is drawn only when matplotlib is installed.

    ``data`` is ``(x, y)`` arrays or a re-iterable of ``(x, y)`` or ``(x, y, weight)``
    batches (a ``tf.data.Dataset``; batches are predicted one at a time, so a shuffled
    dataset still pairs labels with their predictions). Labels are class ids or one-hot;
    a model with one sigmoid output is thresholded at ``threshold`` (use 0.0 for
    logits). ``class_names`` label the rows and columns (default ``"0"``, ``"1"``, ...).
    """

    def __init__(self, data, directory, class_names=None, every_n_epochs=None,
                 at_train_end=True, batch_size=256, threshold=0.5):
        super().__init__()
        if data is None:
            raise KerasdlError("data must be (x, y) arrays or a dataset of (x, y) batches",
                               argument="data")
        self.data = data
        self.directory = _check_directory(directory)
        if class_names is not None:
            class_names = [str(c) for c in class_names]
            if len(class_names) < 2 or len(set(class_names)) != len(class_names):
                raise KerasdlError("class_names must list at least two distinct names",
                                   argument="class_names")
        self.class_names = class_names
        self.every_n_epochs = _check_every(every_n_epochs, "every_n_epochs")
        self.at_train_end = bool(at_train_end)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.threshold = float(threshold)
        self.written = []

    def _labels_and_predictions(self):
        if isinstance(self.data, (tuple, list)) and len(self.data) == 2:
            x, y = self.data
            scores = self.model.predict(x, batch_size=self.batch_size, verbose=0)
            return _label_ids(y), np.asarray(scores)
        labels, scores = [], []
        for batch in self.data:
            if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
                raise KerasdlError("a dataset for ConfusionMatrixWriter must yield (x, y) "
                                   "or (x, y, weight) batches", argument="data")
            # NumPy in between lets a tf.data pipeline feed a model on any backend.
            inputs = keras.tree.map_structure(np.asarray, batch[0])
            scores.append(np.asarray(self.model.predict_on_batch(inputs)))
            labels.append(_label_ids(np.asarray(batch[1])))
        if not labels:
            raise KerasdlError("data yielded no batches", argument="data")
        return np.concatenate(labels), np.concatenate(scores)

    def compute(self):
        """``(matrix, class_names)`` for the model's current weights."""
        y_true, scores = self._labels_and_predictions()
        y_pred = _predicted_ids(scores, self.threshold)
        if self.class_names is not None:
            names = self.class_names
        else:
            width = scores.shape[-1] if scores.ndim > 1 and scores.shape[-1] > 1 else 2
            names = [str(i) for i in range(width)]
        return confusion_matrix(y_true, y_pred, len(names)), names

    def write(self, stem, epoch=None):
        """Compute the matrix and write ``stem``.csv/.json (and .png); return the paths."""
        matrix, names = self.compute()
        base = os.path.join(self.directory, stem)
        os.makedirs(self.directory, exist_ok=True)
        with atomic_file(base + ".csv", overwrite=True) as tmp:
            with open(tmp, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["true \\ predicted", *names])
                for name, row in zip(names, matrix):
                    out.writerow([name, *(int(v) for v in row)])
        total = int(matrix.sum())
        write_json(base + ".json", {
            "epoch": epoch,
            "class_names": names,
            "rows": "true class",
            "columns": "predicted class",
            "matrix": matrix.tolist(),
            "num_examples": total,
            "accuracy": float(np.trace(matrix) / total) if total else None,
        })
        paths = [base + ".csv", base + ".json"]
        if _plot_matrix(matrix, names, base + ".png", epoch):
            paths.append(base + ".png")
        self.written.extend(paths)
        return paths

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            self.write(f"confusion_matrix_epoch_{epoch + 1:03d}", epoch + 1)

    def on_train_end(self, logs=None):
        if self.at_train_end:
            self.write("confusion_matrix")


def _plot_matrix(matrix, names, path, epoch):
    try:
        # The object API draws off-screen without touching pyplot's global state.
        from matplotlib.figure import Figure
    except ImportError:
        return False
    size = max(4.0, 0.45 * len(names) + 2.5)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=90 if len(names) > 10 else 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if epoch is not None:
        ax.set_title(f"epoch {epoch}")
    if len(names) <= 20:  # beyond that the counts are unreadable
        peak = matrix.max() or 1
        for i in ticks:
            for j in ticks:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                        fontsize=8, color="white" if matrix[i, j] > peak / 2 else "black")
    fig.tight_layout()
    with atomic_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True
