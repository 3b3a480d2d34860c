"""Atomic writes for every file and folder kerasdl produces: build into a hidden staging
path next to the target, then rename it into place, so a crash never leaves a
half-written artifact behind, and nothing is replaced unless ``overwrite`` is given."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile

from kerasdl.errors import OutputExistsError

__all__ = ["check_writable_target", "atomic_directory", "atomic_file", "write_json",
           "save_model"]


def check_writable_target(path, overwrite=False, what=None):
    """``path`` made absolute; ``OutputExistsError`` if it exists and not ``overwrite``."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(path, what)
    return path


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yield a staging directory; on success it replaces ``path`` in one rename.

    On any exception the staging directory is removed and ``path`` is left untouched.
    """
    path = check_writable_target(path, overwrite)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=parent)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
        os.rename(path, os.path.join(old, "previous"))
    os.rename(staging, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path, overwrite=False):
    """Yield a temporary file path (same folder and suffix as ``path``); on success it
    replaces ``path``, on error it is removed."""
    path = check_writable_target(path, overwrite)
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".partial-{os.getpid()}-{base}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _finite(obj):
    """``obj`` with NaN and infinities as None: JSON has no such numbers, and Python's
    ``NaN`` tokens break every strict reader (a diverged loss is logged as null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path, obj, overwrite=True):
    """``obj`` as indented, strict JSON at ``path`` (non-finite floats as null), atomically."""
    with atomic_file(path, overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            json.dump(_finite(obj), f, indent=2, allow_nan=False)


def save_model(model, path, overwrite=False):
    """``model.save`` to a ``.keras`` file, atomically."""
    with atomic_file(path, overwrite=overwrite) as tmp:
        model.save(tmp)
