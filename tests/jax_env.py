"""Running tests under JAX.

XLA compiles every JAX program the tests run, and nearly all of them run once on tiny
inputs, so compilation dominates: without the backend's optimisation passes the JAX
contract pass took 298 s instead of 574 s on 2 cores. Numerics stay IEEE float32; only
fusion and scheduling differ. A user's own ``XLA_FLAGS`` win.
"""

import os

FAST_COMPILE_XLA_FLAGS = ("--xla_backend_optimization_level=0 "
                          "--xla_llvm_disable_expensive_passes=true")


def jax_subprocess_env():
    """The environment for a test that runs code under JAX in a child process (the test
    run itself holds the TensorFlow backend, which Keras chooses once per process)."""
    return dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
                JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
                XLA_FLAGS=os.environ.get("XLA_FLAGS", FAST_COMPILE_XLA_FLAGS))
