"""Where CaptionBridge keeps files on this machine, and whether it may reach a model hub.

Shared by every stage that caches or downloads (speech models, transcripts, translation models): the user cache
folder, the offline switches, and a streaming sha256 for integrity checks.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
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


def writable_folder_problem(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created when missing), or None when they can.

    Tries it for real (creates the folder, writes and removes a probe file), so permissions, read-only mounts, a
    file in the way and a path under a file are all caught before any long work starts.
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                return (f"{parent} is a file, not a folder" if parent == folder
                        else f"it lies under {parent}, which is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".captionbridge-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"it cannot be written ({exc.strerror or exc})"
    return None


def is_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
