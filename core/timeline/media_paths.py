"""Media references as local paths: the URL forms Premiere, OTIO and Resolve write, Windows paths, relative
paths."""

from __future__ import annotations

import os
import re
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote, urlparse

from ..errors import InputError
from ..storage import protected_owner

_DRIVE = re.compile(r"^/?([A-Za-z]):[/\\]")


def media_path_from_url(target_url: str, media_root: Path | None = None) -> Path:
    """A media reference's ``target_url`` as a local path: ``file://localhost/...`` (percent-encoded,
    Premiere), ``file:///...`` (OTIO), bare POSIX or Windows paths (Resolve), or paths relative to the
    timeline's folder."""
    url = (target_url or "").strip()
    if url.lower().startswith("file:"):
        parsed = urlparse(url)
        text = unquote(parsed.path)
        host = parsed.netloc
        if host and host.lower() != "localhost":
            text = f"//{host}{text}"  # UNC share
        match = _DRIVE.match(text)
        if match and os.name == "nt":
            text = text.lstrip("/")
    else:
        text = url
    if _DRIVE.match(text) and os.name != "nt":
        # a Windows path in a timeline read on macOS/Linux: keep it as written so the error names it
        return Path(str(PureWindowsPath(text.lstrip("/"))))
    path = Path(text)
    if not path.is_absolute() and media_root is not None:
        path = media_root / path
    owner = protected_owner(path)
    if owner is not None:
        raise InputError(
            f"media {path} lies inside {owner}: CaptionBridge never reads its own files as media; "
            "relink the clip to its real media file"
        )
    return path
