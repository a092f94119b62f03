"""Where CaptionBridge keeps files on this machine, and whether it may reach a model hub.

Shared by every stage that caches or downloads (speech models, transcripts, translation models): the user cache
folder, the offline switches, and a streaming sha256 for integrity checks.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

CACHE_ENV = "CAPTIONBRIDGE_CACHE_DIR"
OFFLINE_ENVS = ("CAPTIONBRIDGE_OFFLINE", "HF_HUB_OFFLINE")


def cache_root() -> Path:
    """The user cache folder (``CAPTIONBRIDGE_CACHE_DIR`` overrides the platform default)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "CaptionBridge" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "CaptionBridge"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "captionbridge"


def is_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
