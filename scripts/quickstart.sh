#!/usr/bin/env bash
# Set up .venv if needed, then train LeNet-5 on MNIST, export and verify it.
# Extra arguments go to `kerasdl quickstart` (e.g. --overwrite).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" ""
exec .venv/bin/kerasdl quickstart "$@"
