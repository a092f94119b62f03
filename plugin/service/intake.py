"""What a job may start from: an existing timeline file that is really a timeline, checked before it is
queued.

This is a quick structural check (is it OTIO JSON, an .otioz bundle, FCP7 xmeml, FCPXML or an EDL at all, and
complete), so a truncated upload or a wrong file is refused at once with ``bad_timeline`` instead of failing
minutes later. Reading the edit itself (clips, media, rates) is the caption job's work.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from ...core.storage import protected_owner
from .errors import CorruptTimeline, TimelineNotFound, shown

MAX_CONTENT_BYTES = 256 * 1024 * 1024  # content.otio of an .otioz (a 10,000-clip timeline is about 30 MB)
TIMELINE_SUFFIXES = (".otio", ".otioz", ".xml", ".fcpxml", ".fcpxmld", ".edl", ".json")
_SAFE_NAME = re.compile(r"[^\w .,()\[\]+&'@#-]+")  # letters of any script kept; no separators, wildcards


def safe_upload_name(filename: str | None) -> str:
    """A plain file name for an upload: its last path component, odd characters replaced, suffix kept."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = _SAFE_NAME.sub("_", unicodedata.normalize("NFC", name)).strip(" .")
    if not name:
        name = "timeline"
    return name[-120:]


MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def check_path_text(raw: str, what: str, error: type = TimelineNotFound) -> None:
    """Refuse a path no file system can hold, before any system call sees it (those would raise, not
    answer)."""
    if "\0" in raw:
        raise error(f"{what} contains a NUL character", details={"option": what})
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{what} is not valid Unicode text (it holds a lone surrogate): send the path as UTF-8",
            details={"option": what},
        ) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise error(
            f"{what} is {len(encoded)} bytes long, over the {MAX_PATH_BYTES}-byte limit of a path",
            details={"option": what},
        )
    for part in raw.replace("\\", "/").split("/"):
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise error(
                f"{what} has a file or folder name of {len(part.encode('utf-8'))} bytes, over the "
                f"{MAX_NAME_BYTES}-byte limit of a name: {shown(part, 60)}",
                details={"option": what},
            )


def resolve_timeline_path(raw: object) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise TimelineNotFound("timeline_path must be an absolute path to a timeline file")
    check_path_text(raw, "timeline_path")
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        raise TimelineNotFound(
            f"timeline_path {shown(raw)} must be absolute (the engine does not share your working folder)",
            details={"timeline_path": shown(raw, 300)},
        )
    owner = protected_owner(path)  # before anything opens it: see core.storage
    if owner is not None:
        raise TimelineNotFound(
            f"timeline {shown(str(path))} lies inside {owner}: the engine never reads its own "
            "files as a timeline; export the timeline to a folder of your own",
            details={"timeline_path": shown(str(path), 300)},
        )
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as exc:
        raise TimelineNotFound(
            f"cannot look at timeline {shown(str(path))}: {getattr(exc, 'strerror', None) or exc}",
            details={"timeline_path": shown(str(path), 300)},
        ) from None
    if not exists:
        raise TimelineNotFound(
            f"timeline {path} does not exist: export the timeline again or check the path",
            details={"timeline_path": str(path)},
        )
    if is_dir and path.suffix.lower() != ".fcpxmld":
        raise TimelineNotFound(
            f"timeline {path} is a folder, not a timeline file", details={"timeline_path": str(path)}
        )
    return path


def check_timeline(path: Path, *, max_bytes: int | None = None) -> None:
    """Raise ``CorruptTimeline`` unless ``path`` holds a complete timeline document of a known kind."""
    if path.is_dir():  # Resolve's .fcpxmld bundle
        inner = path / "Info.fcpxml"
        if not inner.is_file():
            raise CorruptTimeline(f"{path.name} has no Info.fcpxml inside: export the timeline again")
        path = inner
    try:
        size = path.stat().st_size
        if size == 0:
            raise CorruptTimeline(f"timeline {path.name} is empty: export it again")
        if max_bytes is not None and size > max_bytes:
            raise CorruptTimeline(f"timeline {path.name} is {size} bytes, over the {max_bytes}-byte limit")
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise TimelineNotFound(f"cannot read timeline {path}: {exc.strerror or exc}") from None
    text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    name = path.name
    if head.startswith(b"PK\x03\x04"):
        _check_otioz(path)
    elif text_head.startswith(b"{"):
        _check_otio_json(path)
    elif text_head.startswith(b"<"):
        _check_xml(path)
    elif path.suffix.lower() == ".edl" or text_head.upper().startswith(b"TITLE:"):
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            try:
                path.read_bytes().decode("latin-1")
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
                raise CorruptTimeline(f"EDL {name} is not text") from None
    else:
        raise CorruptTimeline(
            f"{name} is not a timeline: expected OTIO (.otio/.otioz), Premiere/FCP7 XML, FCPXML or an EDL"
        )


def _check_otio_json(path: Path) -> None:
    _check_otio_text(path.read_bytes(), path.name)


def _check_otio_text(raw: bytes, name: str) -> None:
    # json.loads stops past about a thousand levels with RecursionError; OpenTimelineIO's own reader would
    # crash the engine on such a document (a segfault at 100,000 levels), so this check must run before a job
    # reads it.
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise CorruptTimeline(
            f"timeline {name} nests JSON too deeply to be an OpenTimelineIO document"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptTimeline(f"timeline {name} is not complete JSON ({exc}): export it again") from None
    if not isinstance(data, dict) or "OTIO_SCHEMA" not in data:
        raise CorruptTimeline(f"{name} is JSON but not an OpenTimelineIO document (no OTIO_SCHEMA)")


def _check_xml(path: Path) -> None:
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise CorruptTimeline(
            f"timeline {path.name} is not well-formed XML ({exc}): export it again"
        ) from None
    tag = root.tag.rsplit("}", 1)[-1].lower()
    if tag not in ("xmeml", "fcpxml"):
        raise CorruptTimeline(
            f"{path.name} is XML but not a timeline (root <{tag}>, expected <xmeml> or <fcpxml>)"
        )


def _check_otioz(path: Path) -> None:
    from ...adapters.timeline_read import MAX_UNPACK_RATIO, unpack_cap

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            size = path.stat().st_size
            stated = sum(info.file_size for info in zf.infolist())
            cap = unpack_cap(size)
            if stated > cap:  # a zip bomb: refused before a single byte is inflated
                raise CorruptTimeline(
                    f"timeline bundle {path.name} would unpack to {stated} bytes, over the "
                    f"{cap}-byte limit ({MAX_UNPACK_RATIO}x its size): not an editor's .otioz"
                )
            # CRC-check small bundles completely; a big one (media inside) is checked by its directory only.
            bad = zf.testzip() if size <= 64 * 1024 * 1024 else None
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptTimeline(f"timeline bundle {path.name} is not a readable .otioz ({exc})") from None
    if bad is not None:
        raise CorruptTimeline(f"timeline bundle {path.name} is damaged (member {bad!r})")
    if "content.otio" not in names:
        raise CorruptTimeline(f"{path.name} is a zip file but not an .otioz bundle (no content.otio)")
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("content.otio")
            if info.file_size > MAX_CONTENT_BYTES:
                raise CorruptTimeline(
                    f"{path.name}: its content.otio states {info.file_size} bytes, over the "
                    f"{MAX_CONTENT_BYTES}-byte limit of a timeline document"
                )
            with zf.open(info) as member:
                content = member.read(MAX_CONTENT_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise CorruptTimeline(f"timeline bundle {path.name} is not a readable .otioz ({exc})") from None
    if len(content) > MAX_CONTENT_BYTES:
        raise CorruptTimeline(
            f"{path.name}: its content.otio unpacks past the {MAX_CONTENT_BYTES}-byte limit"
        )
    _check_otio_text(content, f"{path.name}/content.otio")
