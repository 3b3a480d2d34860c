#!/usr/bin/env bash
# Set up .venv with the test extras if needed, then run the whole test suite
# (model contract, unit, CLI, e2e on real data, notebooks in smoke mode) on 2 workers.
# Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" tests
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
