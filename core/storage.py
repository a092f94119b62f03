"""Where CaptionBridge keeps files on this machine, and whether it may reach a model hub.

Shared by every stage that caches or downloads (speech models, transcripts, translation models): the user
cache folder, the offline switches, and a streaming sha256 for integrity checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
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

    Tries it for real (creates the folder, writes and removes a probe file), so permissions, read-only mounts,
    a file in the way and a path under a file are all caught before any long work starts.
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                return (
                    f"{parent} is a file, not a folder"
                    if parent == folder
                    else f"it lies under {parent}, which is a file, not a folder"
                )
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
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ---- folders a process owns and never reads as user input
# -----------------------------------------------------
# The engine service registers its config, data and cache folders here. Opening (and closing) one of its own
# files as a "timeline" or "media" is not harmless: closing any descriptor of a SQLite database drops every
# POSIX lock the process holds on it, after which another program may delete the live write-ahead log. A job's
# own folder (its uploaded timeline and unpacked bundle) is exempted for the thread that runs that job.

_PROTECTED: list[tuple[Path, str]] = []
_LOCAL = threading.local()


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def protect_folder(path: str | os.PathLike, what: str) -> None:
    """Refuse from now on, in this process, to read anything inside ``path`` as user input (``what`` names
    it)."""
    real = _real(path)
    if all(real != p for p, _ in _PROTECTED):
        _PROTECTED.append((real, what))


def clear_protected() -> None:
    _PROTECTED.clear()


@dataclass
class JobScope:
    """What one job (run on the current thread) may use and what it left behind.

    ``folder``: the job's own folder, readable as input although it lies in a protected folder; ``scratch``:
    where bundles are unpacked (else the system temp folder); ``unpack_limit``: most bytes one bundle may
    unpack to; ``cache_files``: the shared-cache files the job read or wrote (so purging the job can remove
    them)."""

    folder: Path | None = None
    scratch: Path | None = None
    unpack_limit: int | None = None
    cache_files: set[str] = field(default_factory=set)


@contextlib.contextmanager
def job_scope(
    folder: str | os.PathLike | None = None,
    *,
    scratch: str | os.PathLike | None = None,
    unpack_limit: int | None = None,
):
    previous = getattr(_LOCAL, "scope", None)
    scope = JobScope(
        _real(folder) if folder is not None else None,
        Path(scratch) if scratch is not None else None,
        unpack_limit,
    )
    _LOCAL.scope = scope
    try:
        yield scope
    finally:
        _LOCAL.scope = previous


def current_scope() -> JobScope | None:
    return getattr(_LOCAL, "scope", None)


def note_cache_file(path: str | os.PathLike) -> None:
    """Remember that the running job used this shared-cache file."""
    scope = current_scope()
    if scope is not None:
        scope.cache_files.add(os.fspath(path))


def protected_owner(path: str | os.PathLike) -> str | None:
    """What protected folder ``path`` lies in (symlinks resolved), or None when it may be read as input."""
    if not _PROTECTED:
        return None
    try:
        real = _real(path)
    except (OSError, ValueError):
        return None
    scope = current_scope()
    exempt = scope.folder if scope is not None else None
    if exempt is not None and (real == exempt or exempt in real.parents):
        return None
    for root, what in _PROTECTED:
        if real == root or root in real.parents:
            return what
    return None


def private_dirs(path: Path, top: Path | None = None) -> None:
    """Create ``path`` and its missing parents (below ``top``) owner-only (0700)."""
    missing = []
    p = Path(path)
    while not p.exists() and p != p.parent and (top is None or p != top.parent):
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
        if os.name == "posix":
            os.chmod(folder, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, owner-only (0600), creating its folder owner-only (0700)."""
    path = Path(path)
    private_dirs(path.parent)
    if os.name == "posix":
        st = path.parent.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():  # a folder an older version made 0755
            os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
