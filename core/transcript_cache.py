"""Transcripts cached by source media content + source range + model + settings, in the user cache folder.

Re-running after a re-cut only transcribes media (or ranges) that changed. Keys are sha256 digests of a
canonical JSON of their parts; the media part is the sha256 of the file's *content*, remembered per
(path, size, mtime) so an unchanged file is hashed once, not on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .models import cache_root, sha256_file

CACHE_VERSION = 1


def cache_key(**parts: object) -> str:
    text = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def samples_fingerprint(samples: np.ndarray) -> str:
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return "pcm:" + hashlib.sha256(data.tobytes()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def media_fingerprint(path: str | os.PathLike, root: Path | None = None) -> str:
    """sha256 of a media file's content, hashed once per (path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    index = Path(root or cache_root()) / "media-index" / (hashlib.sha256(str(path).encode()).hexdigest() + ".json")
    try:
        known = json.loads(index.read_text(encoding="utf-8"))
        if known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
            return known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(path)
    try:
        _write_atomic(index, json.dumps({"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                         "sha256": digest}))
    except OSError:
        pass  # a read-only cache only costs speed
    return digest


class TranscriptCache:
    """JSON entries under ``<cache>/transcripts``; unreadable entries count as misses."""

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.folder = Path(root or cache_root()) / "transcripts"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if not self.enabled:
            return None
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, value: dict) -> None:
        if not self.enabled:
            return
        try:
            _write_atomic(self._path(key), json.dumps(value, ensure_ascii=False))
        except OSError:
            pass
