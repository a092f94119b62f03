"""Transcripts cached by source media content + source range + model + settings, in the user cache folder.

Re-running after a re-cut only transcribes media (or ranges) that changed. Keys are sha256 digests of a
canonical JSON of their parts; the media part is the sha256 of the file's *content*, remembered per
(path, size, mtime) so an unchanged file is hashed once, not on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..storage import cache_root, note_cache_file, sha256_file, write_private

CACHE_VERSION = 1


def cache_key(**parts: object) -> str:
    text = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def samples_fingerprint(samples: np.ndarray) -> str:
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return "pcm:" + hashlib.sha256(data.tobytes()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    # Transcripts and the media index name the user's files and hold their words: owner-only (0700/0600).
    write_private(path, text)
    note_cache_file(path)


FULL_HASH_LIMIT = 2 * 1024**3  # files above this are fingerprinted from sampled blocks
_SAMPLE_BLOCK = 1 << 20
_SAMPLES = 256


def _content_digest(path: Path, size: int) -> str:
    """Full sha256 up to ``FULL_HASH_LIMIT``; above it (camera originals of tens of GB), sha256 over the size,
    the first and last 16 MiB and 256 evenly spaced 1 MiB blocks, so a first run never spends minutes
    hashing."""
    if size <= FULL_HASH_LIMIT:
        return sha256_file(path)
    digest = hashlib.sha256(f"sampled:{size}".encode())
    edge = 16 * _SAMPLE_BLOCK
    with open(path, "rb") as handle:
        digest.update(handle.read(edge))
        for k in range(_SAMPLES):
            handle.seek(min(size, edge + max(0, size - 2 * edge) * k // _SAMPLES))
            digest.update(handle.read(_SAMPLE_BLOCK))
        handle.seek(max(0, size - edge))
        digest.update(handle.read(edge))
    return "sampled-" + digest.hexdigest()


def media_fingerprint(path: str | os.PathLike, root: Path | None = None) -> str:
    """sha256 of a media file's content (sampled above 2 GiB), computed once per (path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    index = (
        Path(root or cache_root())
        / "media-index"
        / (hashlib.sha256(str(path).encode()).hexdigest() + ".json")
    )
    try:
        known = json.loads(index.read_text(encoding="utf-8"))
        if known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
            note_cache_file(index)
            return known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = _content_digest(path, st.st_size)
    try:
        _write_atomic(
            index,
            json.dumps({"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}),
        )
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
        note_cache_file(self._path(key))
        return data

    def put(
        self,
        key: str,
        value: dict,
        family: str | None = None,
        start: str | None = None,
        duration: str | None = None,
    ) -> None:
        """Store ``value``; with ``family`` (media + model + settings), also record its source range so a
        later sub-range (a trimmed clip) can reuse it (``find_covering``)."""
        if not self.enabled:
            return
        try:
            _write_atomic(self._path(key), json.dumps(value, ensure_ascii=False))
            if family is not None:
                index = self.folder / "ranges" / f"{family}.json"
                try:
                    entries = json.loads(index.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    entries = []
                entries = [e for e in entries if e.get("key") != key][-200:]
                entries.append({"key": key, "start": start, "duration": duration})
                _write_atomic(index, json.dumps(entries))
        except OSError:
            pass

    def find_covering(self, family: str, start: Fraction, duration: Fraction) -> tuple[dict, Fraction] | None:
        """A cached transcript of the same media/model/settings whose source range contains [start, start +
        duration), and where ``start`` lies in it (seconds from its start)."""
        if not self.enabled:
            return None
        index = self.folder / "ranges" / f"{family}.json"
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        note_cache_file(index)
        best = None
        for entry in entries:
            try:
                s, d = Fraction(entry["start"]), Fraction(entry["duration"])
            except (KeyError, ValueError, TypeError, ZeroDivisionError):
                continue
            if s <= start and start + duration <= s + d and (best is None or d < best[1]):
                best = (entry["key"], d, s)
        if best is None:
            return None
        value = self.get(best[0])
        return None if value is None else (value, start - best[2])
