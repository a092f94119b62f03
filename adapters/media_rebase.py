"""Media references in timelines we write, re-based so each written file opens from wherever it was written.

A timeline read from ``project/edit.xml`` may name its media relative to its own folder (``media/a.flac``).
Written unchanged into ``out/``, those paths would point at ``out/media/a.flac``, which does not exist. Every
relative reference is therefore made absolute against the folder the timeline was read from (the same rule the
readers use, ``core.timeline.media_paths.media_path_from_url``). References that are already absolute (a
Windows path from another machine, a UNC share, a ``file://`` URL) are kept exactly as the editor wrote them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import opentimelineio as otio

from ..core.timeline.media_paths import media_path_from_url

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_DRIVE = re.compile(r"^/?[A-Za-z]:[/\\]")


def is_relative_reference(url: str) -> bool:
    """True for a bare relative path (``media/a.flac``, ``../a.wav``); URLs, absolute and drive paths are
    not."""
    text = (url or "").strip()
    if not text or _DRIVE.match(text) or text.startswith(("/", "\\")):
        return False
    return not _SCHEME.match(text)


def absolute_media_path(url: str, media_root: Path) -> Path | None:
    """The absolute local path a relative reference means when read next to ``media_root``; None otherwise."""
    if not is_relative_reference(url):
        return None
    return Path(media_path_from_url(url, Path(media_root).resolve())).resolve()


def file_url(path: Path, localhost: bool = False) -> str:
    """``file:///abs/path`` (OTIO) or ``file://localhost/abs/path`` (Premiere's xmeml ``pathurl``),
    percent-encoded."""
    if not localhost:
        return Path(path).as_uri()
    posix = Path(path).as_posix()
    if not posix.startswith("/"):
        posix = "/" + posix  # a Windows drive path: file://localhost/C:/...
    return "file://localhost" + quote(posix, safe="/:")


def rebase_otio_media(timeline: otio.schema.Timeline, media_root: Path) -> int:
    """Make every relative media reference in ``timeline`` (changed in place) an absolute ``file://`` URL.

    Covers every clip at any depth, each of a clip's media references (OTIO's multi-reference clips), and
    image sequences' ``target_url_base``. Returns how many references were changed.
    """
    changed = 0
    for clip in timeline.find_clips():
        refs = clip.media_references() if hasattr(clip, "media_references") else {"": clip.media_reference}
        for ref in refs.values():
            for attr in ("target_url", "target_url_base"):
                url = getattr(ref, attr, None)
                if not isinstance(url, str):
                    continue
                path = absolute_media_path(url, media_root)
                if path is None:
                    continue
                new = file_url(path)
                if attr == "target_url_base" and not new.endswith("/"):
                    new += "/"
                setattr(ref, attr, new)
                changed += 1
    return changed


def rebase_xmeml_pathurls(root, media_root: Path) -> int:
    """Make every relative ``<pathurl>`` in an xmeml tree (ElementTree, changed in place) absolute."""
    changed = 0
    for element in root.iter("pathurl"):
        path = absolute_media_path(element.text or "", media_root)
        if path is None:
            continue
        element.text = file_url(path, localhost=True)
        changed += 1
    return changed
