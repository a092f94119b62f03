"""Read a CTranslate2 ``model.bin`` back into named numpy arrays.

The layout is the one ``ctranslate2.specs.ModelSpec._serialize`` writes (binary version 6 and earlier, little
endian): ``uint32`` binary version; from version 2 the spec name (``uint16`` length including a trailing NUL,
the bytes) and a ``uint32`` spec revision; a ``uint32`` variable count, then per variable its name, a
``uint8`` rank, ``rank`` ``uint32`` dimensions, the data type (``uint8``: from version 4 an id into float32,
int8, int16, int32, float16, bfloat16; before that the item size), a ``uint32`` byte count and the raw bytes;
from version 3 a ``uint32`` alias count and (alias, variable) name pairs. This is what lets the packaged
Whisper model, which ships only in CTranslate2 form, be turned back into trainable weights offline.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

_TYPE_IDS = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_BY_SIZE = {4: "float32", 1: "int8", 2: "int16"}  # binary versions < 4 stored the item size only


@dataclass
class Ct2Weights:
    """The variables of one CTranslate2 model file: name -> array (bfloat16 comes back as float32)."""

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def __contains__(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.variables


class _Reader:
    def __init__(self, data: bytes, source: Path):
        self.data, self.pos, self.source = memoryview(data), 0, source

    def take(self, size: int) -> memoryview:
        if self.pos + size > len(self.data):
            raise InputError(f"{self.source}: the CTranslate2 model file is truncated (at byte {self.pos})")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.uint("H")))
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2_weights(path: str | Path) -> Ct2Weights:
    """Every variable of ``path`` (a ``model.bin`` or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the CTranslate2 model ({exc.strerror or exc})") from None
    reader = _Reader(data, path)
    version = reader.uint("I")
    if not 1 <= version <= 6:
        raise InputError(f"{path}: not a CTranslate2 model file (binary version {version})")
    spec, revision = ("", 1)
    if version >= 2:
        spec, revision = reader.string(), reader.uint("I")
    out = Ct2Weights(spec=spec, revision=revision, binary_version=version)
    for _ in range(reader.uint("I")):
        name = reader.string()
        shape = tuple(reader.uint("I") for _ in range(reader.uint("B")))
        code = reader.uint("B")
        dtype = _TYPE_IDS[code] if version >= 4 else _BY_SIZE[code]
        raw = reader.take(reader.uint("I"))
        if dtype == "bfloat16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        out.variables[name] = array.reshape(shape) if shape else array.reshape(())
    if version >= 3:
        for _ in range(reader.uint("I")):
            alias = reader.string()
            out.aliases[alias] = reader.string()
    return out
