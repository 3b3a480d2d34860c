"""Synthetic sequence tasks, generated in memory.

The adding problem (Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
Computation 1997, Experiment 4), in the form of Le, Jaitly & Hinton, "A Simple Way to
Initialize Recurrent Networks of Rectified Linear Units", arXiv:1502.03278, 2015: each
step carries a random number and a marker; the target is the sum of the two marked
numbers. One marker lies in the first half and one in the second, so the answer needs
information from at least ``length / 2`` steps back, and a network whose gradients
vanish over time cannot beat predicting the mean.
"""

from __future__ import annotations

import numpy as np

from kerasdl.errors import KerasdlError, check_positive_int

__all__ = ["ADDING_BASELINE_MSE", "adding_problem"]

# Predicting 1.0, the mean of the sum of two uniform [0, 1) numbers, whatever the input,
# leaves their variance as the error: 2 * 1/12 = 1/6 ~ 0.167. A model must go below it
# to have learned anything.
ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(num_examples, length, seed=0):
    """``(x, y)`` of the adding problem.

    Args:
        num_examples: number of sequences.
        length: time steps per sequence (at least 2).
        seed: seed of the NumPy generator; the same seed gives the same data.

    Returns:
        ``x`` float32 [num_examples, length, 2]: channel 0 holds numbers uniform in
        [0, 1), channel 1 is 1 at exactly two steps, one uniform in the first half
        ``[0, length // 2)`` and one in the second ``[length // 2, length)``, else 0;
        ``y`` float32 [num_examples, 1], the sum of the two marked numbers.
    """
    check_positive_int(num_examples, "num_examples")
    check_positive_int(length, "length")
    if length < 2:
        raise KerasdlError(f"length must be at least 2 (one marker per half), got {length}",
                           argument="length")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise KerasdlError(f"seed must be a non-negative integer, got {seed!r}",
                           argument="seed")
    rng = np.random.default_rng(seed)
    half = length // 2
    values = rng.random((num_examples, length), dtype=np.float32)
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    rows = np.arange(num_examples)
    markers = np.zeros((num_examples, length), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y
