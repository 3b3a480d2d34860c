"""The chapter notebooks: each ``notebooks/*.ipynb`` matches its jupytext ``.py`` source
and runs end to end in smoke mode (``KERASDL_SMOKE=1``: tiny data, one short epoch),
writing only into a temporary folder."""

from __future__ import annotations

import glob
import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
CELL_TIMEOUT_S = 600
KERNEL_NAME = "python3"


def _ids(paths):
    return [os.path.basename(p) for p in paths]


def _cells(notebook):
    """``(cell_type, source)`` of every non-empty cell, outputs and metadata ignored."""
    return [
        (c.cell_type, c.source.strip())
        for c in notebook.cells
        if c.source.strip()
    ]


def test_every_chapter_has_both_files():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    sources = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.py")))
    stems = lambda paths: {os.path.splitext(os.path.basename(p))[0] for p in paths}  # noqa: E731
    assert stems(NOTEBOOKS) == stems(sources), (
        "every notebooks/*.ipynb needs its jupytext percent-format .py source and vice "
        "versa; create the missing one with `jupytext --to ipynb` (or `--to py:percent`)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_in_sync_with_source(path):
    source = os.path.splitext(path)[0] + ".py"
    assert os.path.isfile(source), f"{path} has no jupytext source {source}"
    from_py = jupytext.read(source)
    from_ipynb = jupytext.read(path)
    assert _cells(from_ipynb) == _cells(from_py), (
        f"{os.path.basename(path)} is out of sync with {os.path.basename(source)}; "
        f"regenerate it with `jupytext --to ipynb {os.path.relpath(source, REPO_ROOT)}`"
    )


def _kernel_python(env):
    """The interpreter that nbclient's kernel would run, as the kernel itself reports."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys; print(sys.prefix); print(sys.executable)"
    )])
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=120)
    client.execute(cwd=NOTEBOOK_DIR, env=env)
    prefix, executable = nb.cells[0].outputs[0]["text"].split()
    return prefix, executable


@pytest.fixture(scope="module")
def smoke_env():
    env = dict(os.environ)
    env.update({"KERASDL_SMOKE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    # The kernel must import this checkout's kerasdl, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return env


def test_kernel_runs_this_interpreter(smoke_env):
    """jupyter_client swaps a kernelspec's bare ``python`` for ``sys.executable``; check
    that the kernel really runs in the tests' own environment (the project's virtualenv),
    not in some other Python that happens to have a ``python3`` kernelspec."""
    prefix, executable = _kernel_python(smoke_env)
    assert os.path.realpath(prefix) == os.path.realpath(sys.prefix), (
        f"the notebook kernel runs {executable} (prefix {prefix}); the tests run "
        f"{sys.executable} (prefix {sys.prefix})"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_smoke_mode(path, smoke_env, tmp_path):
    env = dict(smoke_env, KERASDL_OUTPUT=str(tmp_path / "saved_models"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S, allow_errors=False
    )
    client.execute(cwd=NOTEBOOK_DIR, env=env)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    # Smoke runs write only under KERASDL_OUTPUT.
    assert any(tmp_path.iterdir()), "the notebook wrote nothing under KERASDL_OUTPUT"


DRAFTS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "drafts", "*.py")))


@pytest.mark.parametrize("path", DRAFTS, ids=_ids(DRAFTS))
def test_draft_imports_resolve(path):
    """Drafts wait for their long runs before they are executed, and so are not run here;
    every name they import from kerasdl must still exist (a moved layer broke one)."""
    import ast
    import importlib

    missing = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kerasdl"):
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names
                        if not hasattr(module, a.name) and not (
                            hasattr(module, "__path__")  # a package's submodule
                            and importlib.util.find_spec(f"{node.module}.{a.name}"))]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kerasdl"):
                    importlib.import_module(alias.name)
    assert not missing, f"{os.path.basename(path)} imports names kerasdl lacks: {missing}"


def test_notebook_settings_keep_smoke_runs_away_from_saved_models(tmp_path, monkeypatch):
    from kerasdl.workflows import notebook_settings

    monkeypatch.delenv("KERASDL_OUTPUT", raising=False)
    monkeypatch.setenv("KERASDL_SMOKE", "1")
    smoke, root = notebook_settings(start=NOTEBOOK_DIR)
    assert smoke and not root.startswith(REPO_ROOT)
    monkeypatch.setenv("KERASDL_SMOKE", "0")
    assert notebook_settings(start=NOTEBOOK_DIR) == (False, os.path.join(REPO_ROOT, "saved_models"))
    # Outside a checkout: beside the notebook.
    assert notebook_settings(start=str(tmp_path)) == (False, str(tmp_path / "saved_models"))
    monkeypatch.setenv("KERASDL_OUTPUT", str(tmp_path / "out"))
    assert notebook_settings(start=NOTEBOOK_DIR) == (False, str(tmp_path / "out"))


def test_show_images_draws_one_grid_of_the_images(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from kerasdl.callbacks import image_grid
    from kerasdl.workflows import show_images

    monkeypatch.setattr(plt, "show", lambda: None)  # keep the figure to inspect it
    images = np.random.default_rng(0).uniform(-1, 1, (7, 5, 4, 1))
    show_images(images, "seven", columns=3, value_range=(-1.0, 1.0))
    drawn = plt.gca().images[0].get_array()
    expected = image_grid(images, columns=3, value_range=(-1.0, 1.0))[..., 0]
    np.testing.assert_array_equal(np.asarray(drawn), expected)
    assert plt.gca().get_title() == "seven"
    plt.close("all")
