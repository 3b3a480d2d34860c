"""Execute notebooks in place (full mode, unless KERASDL_SMOKE=1 is set) so that the
committed .ipynb carries real outputs, dropping TensorFlow's C++ start-up lines.

    .venv/bin/python scripts/execute_notebook.py notebooks/01_*.ipynb
"""

import os
import re
import sys

import nbformat
from nbclient import NotebookClient

NOISE = re.compile(r"(absl::InitializeLog|^I0000 |^W0000 |XNNPACK delegate)")


def execute(path):
    nb = nbformat.read(path, as_version=4)
    # A non-interactive matplotlib backend (MPLBACKEND=Agg, as background jobs often
    # set) would leave every figure out of the committed notebook.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    NotebookClient(nb, timeout=None, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}
                   ).execute(env=env)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(l for l in out["text"].splitlines(True) if not NOISE.search(l))
                if not text.strip():
                    continue
                out["text"] = text
            kept.append(out)
        cell["outputs"] = kept
    nbformat.write(nb, path)
    print(f"executed {path}")


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        execute(notebook)
