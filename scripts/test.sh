#!/usr/bin/env bash
# Set up .venv with the test extras if needed, then run the whole test suite
# (model contract, unit, CLI, e2e on real data, notebooks in smoke mode) on 2 workers on
# the TensorFlow backend, then the model contract again on the JAX backend.
# Extra arguments go to both pytest runs.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" tests
# XLA compiles every JAX program for the CPU, down to each initialiser's shape: the tests'
# programs are tiny, so its optimisation passes cost more than they save (an
# EfficientNet-B0 builds in 6 s instead of 27 s under JAX).
export XLA_FLAGS="${XLA_FLAGS:-} --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
echo "Model contract on the JAX backend:"
KERAS_BACKEND=jax exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" \
  tests/test_model_contract.py tests/test_backend_neutral.py "$@"
