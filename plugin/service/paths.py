"""Where the engine service keeps its token, its discovery file and its job data.

The editors' scripts find the service the same way: read ``<config>/token`` and ``<config>/service.json``.

Config folder: ``$CAPTIONBRIDGE_CONFIG_DIR``, else Linux ``$XDG_CONFIG_HOME/captionbridge``
(``~/.config/captionbridge``), macOS ``~/Library/Application Support/CaptionBridge``, Windows
``%APPDATA%\\CaptionBridge``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

from ...core.errors import CaptionBridgeError
from ...core.storage import write_private

TOKEN_FILE = "token"
SERVICE_FILE = "service.json"
JOBS_DB = "jobs.sqlite3"


def config_dir(env: dict[str, str] | None = None, platform: str | None = None) -> Path:
    """The per-user config folder (not created here)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    override = env.get("CAPTIONBRIDGE_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        return (Path(appdata) if appdata else home / "AppData" / "Roaming") / "CaptionBridge"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "CaptionBridge"
    xdg = env.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config") / "captionbridge"


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        try:
            os.chmod(path, 0o700)
        except OSError:  # a folder the user shares on purpose: the token file itself stays 0600
            pass
    return path


MIN_TOKEN_CHARS = 24


def weak_token(token: str) -> str | None:
    """Why a token is weak (too short, too few different characters), or None for a strong one."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"{len(token)} characters, under {MIN_TOKEN_CHARS}"
    if len(set(token)) < 10:
        return f"only {len(set(token))} different characters"
    return None


def load_or_create_token(config: Path) -> str:
    """The per-install token: read ``<config>/token``, or create it (owner-only, 0600) on first run.

    An empty token file (a disk that filled up, a hand edit) is replaced by a new token."""
    ensure_private_dir(config)
    path = config / TOKEN_FILE
    for _ in range(20):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise CaptionBridgeError(
                f"cannot read the service token {path}: {exc.strerror or exc}; delete it to make a new one"
            ) from None
        if raw is not None:
            try:
                token = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                raise CaptionBridgeError(
                    f"the service token {path} is not plain text: delete it to make a new one"
                ) from None
            if token and not any(c.isspace() for c in token):
                if os.name == "posix" and path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)  # tighten a token file someone loosened
                return token
            if token:
                raise CaptionBridgeError(
                    f"the service token {path} holds spaces or several lines: delete it to make a new one"
                )
            if time.time() - path.stat().st_mtime < 2:  # maybe a first run racing us, still writing it
                time.sleep(0.2)
                continue
            # empty: replace it with a new token (atomically, so a reader sees the old file or the new one)
            token = secrets.token_urlsafe(32)
            write_private(path, token + "\n")
            return token
        token = secrets.token_urlsafe(32)
        # O_EXCL + 0600 so the token is never readable by others, not even for a moment; a second process
        # racing us on first run loses the race and reads the winner's token.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
        return token
    raise CaptionBridgeError(f"cannot create the service token {path}: another program keeps changing it")


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` so readers see the old file or the new one, never half of one (owner-only, 0600)."""
    write_private(path, json.dumps(data, indent=2) + "\n")


def read_service_file(config: Path | None = None) -> dict | None:
    """``{"host", "port", "pid", "version"}`` of the running service, or None when none is advertised."""
    path = (config or config_dir()) / SERVICE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and {"host", "port"} <= set(data) else None
