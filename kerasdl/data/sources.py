"""Where datasets come from: the data directory, a fast network probe, TFDS builders."""

from __future__ import annotations

import difflib
import os
import socket

__all__ = ["DataNotFoundError", "resolve_data_dir", "network_available", "tfds_builder"]

# The host TFDS downloads most datasets from; a short TCP connect tells in seconds whether
# a download could work, where TFDS itself spends minutes in retries before giving up.
PROBE_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 3.0


from kerasdl.errors import DataNotFoundError, KerasdlError


def resolve_data_dir(data_dir=None) -> tuple[str, str]:
    """Return ``(directory, where_it_came_from)``: the argument, else ``TFDS_DATA_DIR``,
    else TFDS's default directory."""
    if data_dir:
        return os.path.abspath(os.path.expanduser(str(data_dir))), "the data_dir argument"
    env = os.environ.get("TFDS_DATA_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env)), "TFDS_DATA_DIR"
    from tensorflow_datasets.core import constants

    return os.path.abspath(os.path.expanduser(constants.DATA_DIR)), "the TFDS default"


def offline_forced() -> bool:
    return os.environ.get("KERASDL_OFFLINE", "").lower() in ("1", "true", "yes")


def network_available(timeout=PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the TFDS download host opens within ``timeout`` s.

    ``KERASDL_OFFLINE=1`` forces False without touching the network (tests use it).
    """
    if offline_forced():
        return False
    try:
        with socket.create_connection(PROBE_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def tfds_builder(name: str, data_dir: str):
    """The TFDS builder for ``name`` (e.g. ``"mnist"`` or ``"mnist:3.0.1"``), with a
    ``ValueError`` naming close matches for an unknown name."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as err:
        # TFDS answers a malformed name with a many-line parsing guide; one line is enough.
        known = tfds.list_builders()
        close = difflib.get_close_matches(name.split(":")[0].lower(), known, n=5, cutoff=0.5)
        hint = f" Closest TFDS names: {', '.join(close)}." if close else ""
        kind = "Unknown dataset" if isinstance(err, tfds.core.registered.DatasetNotFoundError) \
            else "Not a TFDS dataset name"
        raise KerasdlError(
            f"{kind} {name!r}.{hint} Give a TFDS name (e.g. mnist, cifar10) or the path of "
            "a folder with one subfolder of images per class.",
            argument="dataset",
        ) from None
