"""Labels and other metadata stored inside a ``.tflite`` file and beside it.

A TFLite flatbuffer has a ``metadata`` table of named byte buffers that the interpreter
ignores; kerasdl stores a JSON document there under :data:`METADATA_NAME` (class labels,
what the input expects, where the model came from), so that a file copied alone onto a
phone still says what its outputs mean. Reading needs only ``ai_edge_litert`` (no
TensorFlow), as on a device. The same labels are also written as ``labels.txt`` beside
the artifacts, one per line, the format Android's TFLite task libraries read.
"""

from __future__ import annotations

import json
import os

from kerasdl.atomic import atomic_file
from kerasdl.errors import KerasdlError, NotFoundError

METADATA_NAME = "kerasdl"
LABELS_FILE = "labels.txt"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _read_bytes(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise NotFoundError(f"no TFLite file at {path}")
    with open(path, "rb") as f:
        return f.read()


def read_tflite_metadata(path) -> dict:
    """``{name: bytes}`` of every metadata entry of the ``.tflite`` file at ``path``."""
    s = _schema()
    buf = _read_bytes(path)
    if not s.Model.ModelBufferHasIdentifier(buf, 0):
        raise KerasdlError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    model = s.Model.GetRootAs(buf, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        data = model.Buffers(meta.Buffer())
        raw = data.DataAsNumpy() if data is not None and data.DataLength() else b""
        entries[meta.Name().decode()] = bytes(raw)
    return entries


def write_tflite_metadata(path, info: dict):
    """Store ``info`` (JSON-serialisable) in the file's metadata as :data:`METADATA_NAME`,
    replacing an earlier kerasdl entry; the file is rewritten atomically."""
    import flatbuffers
    import numpy as np

    s = _schema()
    model = s.ModelT.InitFromPackedBuf(_read_bytes(path), 0)
    payload = json.dumps(info, sort_keys=True).encode()
    buffer = s.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()
                      and m.name != METADATA_NAME]
    model.buffers.append(buffer)
    entry = s.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_file(os.fspath(path), overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            f.write(builder.Output())


def kerasdl_metadata(path) -> dict | None:
    """The kerasdl JSON document stored in a ``.tflite`` file, or None if it has none."""
    raw = read_tflite_metadata(path).get(METADATA_NAME)
    return json.loads(raw.decode()) if raw else None


def write_labels(folder, labels):
    """``folder/labels.txt``: one class name per line, in output order."""
    path = os.path.join(folder, LABELS_FILE)
    with open(path, "w") as f:
        f.write("".join(f"{label}\n" for label in labels))
    return path


def read_labels(artifact_path):
    """Class names for an artifact: from its metadata (``.tflite``), else from
    ``labels.txt`` beside it (or inside it, for a SavedModel folder), else from the
    ``model_card.json`` beside it; None if none of them has them."""
    artifact_path = os.fspath(artifact_path)
    if artifact_path.endswith(".tflite"):
        meta = kerasdl_metadata(artifact_path)
        if meta and meta.get("labels"):
            return list(meta["labels"])
    folder = artifact_path if os.path.isdir(artifact_path) else os.path.dirname(artifact_path)
    for candidate in (os.path.join(folder, LABELS_FILE),
                      os.path.join(os.path.dirname(folder), LABELS_FILE)):
        if os.path.isfile(candidate):
            with open(candidate) as f:
                return [line.rstrip("\n") for line in f if line.strip()]
    card = os.path.join(folder, "model_card.json")
    if os.path.isfile(card):  # exports made before labels.txt existed
        with open(card) as f:
            names = (json.load(f).get("output") or {}).get("class_names")
        if names:
            return list(names)
    return None
