"""Atomic directory writes: build into a hidden staging folder next to the target, then
rename it into place, so a crash never leaves a half-written artifact behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


def check_writable_target(path, overwrite=False):
    """Raise ``FileExistsError`` if ``path`` exists and ``overwrite`` is False."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
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
