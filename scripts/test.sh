#!/usr/bin/env bash
# Set up .venv with the test extras if needed, then run the whole test suite
# (model contract, unit, CLI, e2e on real data, notebooks in smoke mode) on 2 workers on
# the TensorFlow backend, then the model contract again on the JAX backend.
# Extra arguments go to both pytest runs.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" tests
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
echo "Model contract on the JAX backend:"
KERAS_BACKEND=jax exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=15 \
  tests/test_model_contract.py tests/test_backend_neutral.py "$@"
