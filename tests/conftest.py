"""Session-wide test setup.

``tests`` is a package (``tests/__init__.py``), so pytest puts the repository root on
``sys.path`` and ``tests.contract_models`` imports the same way in the main process and
in every pytest-xdist worker. Importing it registers the test-only models before any test
module is collected, so ``kerasdl.list_models()`` at collection time includes them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests never touch the network: a dataset that is not prepared fails at once.
os.environ["KERASDL_OFFLINE"] = "1"

# Faster XLA compilation for the JAX tests (tests/jax_env.py says why); set before JAX
# starts XLA, which reads the flags once.
from tests.jax_env import FAST_COMPILE_XLA_FLAGS  # noqa: E402

if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", FAST_COMPILE_XLA_FLAGS)

from tests import contract_models  # noqa: E402,F401  (registers the test_* models)


def _draw_initial_truncated_normals_with_numpy():
    """Under JAX, every ``truncated_normal`` call with a new shape compiles an XLA
    program (0.4-1 s on 2 cores): an EfficientNet-B0 spent 25 of its 30 s build there,
    most of the JAX run's time. The tests draw those initial values with numpy instead
    (same truncation at 2 standard deviations, seeded by the JAX key), so building costs
    what it costs on TensorFlow; inside traced functions JAX still draws them. Only the
    initial weights' random stream changes: what the contract checks on JAX (outputs,
    saving, training steps) still runs through JAX."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from keras.src.backend.jax import random as jax_random

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        dtype = dtype or keras.config.floatx()
        key = jax_random.jax_draw_seed(seed)
        if isinstance(key, jax.core.Tracer):
            sample = jax.random.truncated_normal(key, shape=shape, lower=-2.0, upper=2.0,
                                                 dtype=dtype)
            return sample * stddev + mean
        rng = np.random.default_rng(np.asarray(key).astype(np.uint64).tolist())
        values = rng.standard_normal(shape)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        return jnp.asarray(values * stddev + mean, dtype=dtype)

    jax_random.truncated_normal = truncated_normal


import keras  # noqa: E402

if keras.config.backend() == "jax":
    _draw_initial_truncated_normals_with_numpy()
