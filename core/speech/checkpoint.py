"""Tensors from a PyTorch checkpoint (``torch.save``) as numpy arrays, without importing torch.

Both of torch's formats are read: the legacy one (resemblyzer's ``pretrained.pt``: pickles of a magic number,
the protocol, the system info, the object, the storage keys, then each storage's raw bytes) and the zip one
(``<archive>/data.pkl`` and ``<archive>/data/<key>``). The pickles are read by a restricted unpickler that
knows only what a state dict of tensors needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the plain storage types); anything else in the file (code, other
classes) is refused with ``CheckpointError`` before it runs, so a foreign or tampered file never executes.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a torch checkpoint of plain tensors (or it is damaged)."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_DTYPES[name])


class _Storage:
    def __init__(self, key: str, dtype: np.dtype):
        self.key = key
        self.dtype = dtype
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *rest):
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor without a storage")
    try:
        shape, steps = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        return _TensorRef(storage, int(storage_offset), shape, steps)
    except (TypeError, ValueError):
        raise CheckpointError("a tensor with a malformed shape") from None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"it refers to {module}.{name}, which a checkpoint of tensors never needs")

    def persistent_load(self, pid: Any) -> Any:
        if not (
            isinstance(pid, tuple)
            and len(pid) >= 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise CheckpointError(f"unknown persistent id {str(pid)[:60]!r}")
        key = str(pid[2])
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, pid[1].dtype)
        elif storage.dtype != pid[1].dtype:
            raise CheckpointError(f"storage {key} is read as two types")
        return storage


def _load_pickle(file, storages: dict[str, _Storage]) -> Any:
    try:
        return _Unpickler(file, storages).load()
    except CheckpointError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        struct.error,
        MemoryError,
    ) as exc:
        raise CheckpointError(f"its pickle is damaged ({type(exc).__name__}: {exc})") from None


def _materialize(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        data = obj.storage.data
        if data is None:
            raise CheckpointError(f"storage {obj.storage.key} has no data")
        if any(s < 0 for s in obj.size) or any(s < 0 for s in obj.stride) or obj.offset < 0:
            raise CheckpointError("a tensor with a negative size or stride")
        count = int(np.prod(obj.size)) if obj.size else 1
        last = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride))
        if count == 0:
            last = obj.offset - 1
        if last >= len(data):
            raise CheckpointError(f"a tensor reaches past the end of storage {obj.storage.key}")
        item = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[obj.offset :], shape=obj.size, strides=tuple(s * item for s in obj.stride)
        )
        return np.array(view, copy=True)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _read_legacy(f, storages: dict[str, _Storage]) -> Any:
    magic = _load_pickle(f, storages)
    if magic != LEGACY_MAGIC:
        raise CheckpointError("it is not a torch checkpoint (no magic number)")
    if _load_pickle(f, storages) != LEGACY_PROTOCOL:
        raise CheckpointError("it is a torch checkpoint of an unknown protocol")
    info = _load_pickle(f, storages)
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise CheckpointError("it is a big-endian checkpoint")
    obj = _load_pickle(f, storages)
    keys = _load_pickle(f, storages)
    if not isinstance(keys, list):
        raise CheckpointError("its storage list is damaged")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"it stores {key}, which no tensor uses")
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"it ends before storage {key}")
        (count,) = struct.unpack("<q", head)
        nbytes = count * storage.dtype.itemsize
        raw = f.read(nbytes) if 0 <= count else b""
        if count < 0 or len(raw) != nbytes:
            raise CheckpointError(f"it ends inside storage {key}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return obj


def _read_zip(path: Path, storages: dict[str, _Storage]) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError("the zip has no single data.pkl (not a torch checkpoint)")
            prefix = pickles[0][: -len("data.pkl")]
            obj = _load_pickle(io.BytesIO(archive.read(pickles[0])), storages)
            for key, storage in storages.items():
                try:
                    raw = archive.read(f"{prefix}data/{key}")
                except KeyError:
                    raise CheckpointError(f"storage {key} is missing from the zip") from None
                if len(raw) % storage.dtype.itemsize:
                    raise CheckpointError(f"storage {key} has a partial element")
                storage.data = np.frombuffer(raw, dtype=storage.dtype)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise CheckpointError(f"its zip is damaged ({exc})") from None
    return obj


def read_checkpoint(path: str | Path) -> Any:
    """The object ``torch.load(path, weights_only=True)`` would give, with numpy arrays for tensors.
    Raises OSError when the file cannot be read and CheckpointError when it is not a checkpoint of plain
    tensors."""
    path = Path(path)
    storages: dict[str, _Storage] = {}
    if zipfile.is_zipfile(path):
        obj = _read_zip(path, storages)
    else:
        with open(path, "rb") as f:
            obj = _read_legacy(f, storages)
    return _materialize(obj)
