# Sourced by the other scripts: create or reuse .venv and install kerasdl into it
# (editable) with the extras named in $1, re-installing when setup.cfg changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  py="${PYTHON:-}"
  if [ -z "$py" ]; then
    for candidate in python3.11 python3 python; do
      if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
    done
  fi
  [ -n "$py" ] || { echo "error: no python3 found; install Python 3.11" >&2; exit 1; }
  echo "Creating .venv with $("$py" --version 2>&1)"
  "$py" -m venv .venv
fi
extras="${1:-}"
stamp=".venv/.kerasdl-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing kerasdl${extras:+[$extras]} and its dependencies into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# The project's offline copy of the TFDS datasets, when it sits beside the checkout.
if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d ../shared/data/tfds ]; then
  export TFDS_DATA_DIR="$(cd ../shared/data/tfds && pwd)"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
