"""Read any editor's timeline into OTIO plus its exact clock.

``load_timeline(path)`` detects the format by content (then suffix): OTIO JSON (``.otio``, including Resolve
18.5+'s ``Clip.2`` flavour), ``.otioz`` / ``.otiod`` bundles, Premiere/FCP7 xmeml (v4/v5, through OTIO's
fcp_xml adapter with our fixes) and FCPXML 1.8-1.10 (``.fcpxml`` or a ``.fcpxmld`` folder, through the
fcpx_xml adapter with our fixes).

The clock (``Timebase``) comes from the document: the exact rate, the start timecode as a frame number and the
drop-frame display format (xmeml ``<displayformat>``, FCPXML ``tcFormat``, Resolve's "29.97 DF", OTIO
metadata). Nothing is guessed: a document that does not say drop-frame is non-drop-frame.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import weakref
import zipfile
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from opentimelineio._otio import AnyDictionary, AnyVector

from ..core.errors import InputError, TimelineError
from ..core.model import LoadedTimeline  # noqa: F401 (re-exported)
from ..core.storage import current_scope
from ..core.timeline.media_paths import media_path_from_url  # noqa: F401 (re-exported)
from ..core.timeline.otio_time import exact_rate, to_frames, to_seconds  # noqa: F401 (re-exported)
from ..core.timeline.timebase import Timebase, parse_rate

FORMATS = ("otio_json", "otioz", "otiod", "fcp_xml", "fcpx_xml")


# ------------------------------------------------------------------------------------------------------------
# detection
# ------------------------------------------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """Which reader a file needs, by content first and suffix second. Raises InputError for anything else."""
    if path.is_dir():
        if (path / "Info.fcpxml").is_file() or path.suffix.lower() == ".fcpxmld":
            return "fcpx_xml"
        if (path / "content.otio").is_file():
            return "otiod"
        raise InputError(f"{path}: a folder that is neither a .fcpxmld bundle nor an .otiod bundle")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the timeline ({exc.strerror or exc})")
    if not head.strip():
        raise InputError(f"{path}: the file is empty (export the timeline again)")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as bundle:
                names = bundle.namelist()
        except zipfile.BadZipFile:
            raise InputError(f"{path}: a damaged zip archive, not a readable .otioz")
        if "content.otio" in names:
            return "otioz"
        raise InputError(f"{path}: a zip archive without content.otio (not an .otioz bundle)")
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        if b"OTIO_SCHEMA" in head:
            return "otio_json"
        raise InputError(f"{path}: JSON but not an OpenTimelineIO document (no OTIO_SCHEMA)")
    if text.startswith(b"<"):
        snippet = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", text, flags=re.S).lstrip()
        match = re.match(rb"<\s*([A-Za-z_][\w.-]*)", snippet)
        root = match.group(1).decode("ascii", "replace").lower() if match else ""
        if root == "xmeml":
            return "fcp_xml"
        if root == "fcpxml":
            return "fcpx_xml"
        if root:
            raise InputError(
                f"{path}: XML with root <{root}> is not a timeline this reads "
                "(Premiere/FCP7 <xmeml> or FCPXML <fcpxml>)"
            )
    suffix = path.suffix.lower()
    by_suffix = {".otio": "otio_json", ".otioz": "otioz", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml"}
    if suffix in by_suffix:
        raise InputError(
            f"{path}: named {suffix} but its content is not a {by_suffix[suffix]} document "
            "(damaged or a different kind of file)"
        )
    raise InputError(
        f"{path}: unknown timeline format; export OTIO (.otio), Premiere/FCP7 XML (.xml) or FCPXML"
    )


# ------------------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------------------


def load_timeline(path: str | os.PathLike, drop_frame: bool | None = None) -> LoadedTimeline:
    """Read a timeline file (or .fcpxmld/.otiod folder). Raises InputError/TimelineError with one clear line.

    ``drop_frame``: the editor's own display-format setting when the caller has it (Resolve's
    ``timelineDropFrameTimecode`` / "29.97 DF", Premiere's ``videoDisplayFormat``), for exports that do not
    carry it (Resolve's OTIO). It overrides what the document says, with a warning when the two disagree.
    None: the document decides; a document that says nothing is non-drop-frame.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such timeline file")
    fmt = detect_format(path)
    if fmt == "fcp_xml":
        loaded = _load_xmeml(path)
    elif fmt == "fcpx_xml":
        from .fcpx_fixes import read_fcpxml_path

        timeline, info = read_fcpxml_path(path)
        loaded = _finish(
            timeline, path, fmt, info.rate, info.start_frame, info.drop_frame, path.parent, info.warnings
        )
    else:
        loaded = _load_otio(path, fmt)
    if drop_frame is not None and bool(drop_frame) != loaded.timebase.drop_frame:
        tb = loaded.timebase
        if drop_frame and tb.rate not in (Fraction(30000, 1001), Fraction(60000, 1001)):
            raise TimelineError(
                f"{path}: drop-frame was requested but the timeline runs at {float(tb.rate):g} fps, "
                "where drop-frame does not exist"
            )
        said = "drop-frame" if tb.drop_frame else "non-drop-frame (or nothing)"
        if _document_states_drop_frame(loaded):
            loaded.warnings.append(
                f"the file says {said} but the editor says "
                f"{'drop-frame' if drop_frame else 'non-drop-frame'}; using the editor's setting"
            )
        loaded.timebase = Timebase(tb.rate, tb.start_frame, bool(drop_frame))
    if loaded.duration_frames <= 0:
        raise TimelineError(f"{path}: the timeline is empty (no clips)")
    return loaded


def _document_states_drop_frame(loaded: LoadedTimeline) -> bool:
    """Whether the document itself said DF or NDF (as opposed to saying nothing)."""
    if loaded.format in ("fcp_xml", "fcpx_xml"):
        return True
    return drop_frame_from_metadata(loaded.timeline.metadata) is not None


def _finish(
    timeline,
    path: Path,
    fmt: str,
    rate: Fraction | None,
    start_frame: int | None,
    drop_frame: bool | None,
    media_root: Path,
    warnings: list[str] | None = None,
    annotated: bool = True,
) -> LoadedTimeline:
    warnings = list(warnings or [])
    if not isinstance(timeline, otio.schema.Timeline):
        raise InputError(f"{path}: holds a {type(timeline).__name__}, not a single timeline")
    if rate is None:
        rate = _rate_from_contents(timeline)
        if rate is None:
            raise TimelineError(f"{path}: the timeline does not state its frame rate")
    if start_frame is None:
        gst = timeline.global_start_time
        start_frame = to_frames(gst, rate) if gst is not None else 0
    if drop_frame and parse_rate(rate) not in (Fraction(30000, 1001), Fraction(60000, 1001)):
        warnings.append(
            f"the document marks drop-frame at {float(rate):g} fps, where drop-frame does not exist; "
            "using non-drop-frame"
        )
        drop_frame = False
    if start_frame < 0:
        raise TimelineError(f"{path}: negative start timecode ({start_frame} frames)")
    timebase = Timebase(rate, start_frame, bool(drop_frame))
    name = timeline.name or path.stem
    return LoadedTimeline(timeline, timebase, name, path, fmt, media_root, warnings, annotated)


def _load_xmeml(path: Path) -> LoadedTimeline:
    from .xmeml_fixes import read_xmeml

    timeline, info = read_xmeml(path.read_bytes(), str(path))
    if info.timebase is None:
        raise TimelineError(f"{path}: the sequence has no <rate><timebase>")
    rate = parse_rate(Fraction(info.timebase * 1000, 1001) if info.ntsc else Fraction(info.timebase))
    drop = info.drop_frame
    if drop is None and info.start_string:
        drop = ";" in info.start_string  # the document's own label, e.g. 01:00:00;00
    start = info.start_frame
    if start is None and info.start_string:
        start = Timebase(rate, 0, bool(drop)).frame_from_timecode(info.start_string, absolute=False)
    return _finish(
        timeline,
        path,
        "fcp_xml",
        rate,
        start if start is not None else 0,
        drop,
        path.parent,
        list(info.warnings),
    )


MAX_UNPACK_RATIO = (
    100  # bytes unpacked per byte of bundle: media in a bundle is already compressed (about 1:1)
)
MAX_UNPACK_BYTES = 64 * 1024**3
_UNPACK_SLACK = 16 * 1024**2  # a small bundle of JSON alone may compress better than the ratio


def unpack_cap(bundle_size: int, limit: int | None = None) -> int:
    """Most bytes a bundle of ``bundle_size`` bytes may unpack to."""
    return min(
        limit if limit is not None else MAX_UNPACK_BYTES, MAX_UNPACK_RATIO * bundle_size + _UNPACK_SLACK
    )


def unpack_bundle(path: Path, dest: Path, limit: int | None = None) -> int:
    """Unpack an .otioz into ``dest`` streaming, member by member, counting the bytes really written (a zip's
    stated sizes can lie). Stops with InputError past ``limit`` bytes (default ``MAX_UNPACK_BYTES``), past
    ``MAX_UNPACK_RATIO`` times the bundle's size, or when the disk would be left with under 1 GiB."""
    size = path.stat().st_size
    cap = unpack_cap(size, limit)
    root = dest.resolve()
    written = 0
    try:
        with zipfile.ZipFile(path) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            stated = sum(m.file_size for m in members)
            for member in members:
                target = (root / member.filename).resolve()
                if root not in target.parents:
                    raise InputError(f"{path}: the bundle holds an unsafe path {member.filename[:200]!r}")
            if stated > cap:
                raise InputError(
                    f"{path}: the bundle would unpack to {stated} bytes, over the {cap}-byte limit "
                    f"({MAX_UNPACK_RATIO}x its size); it is damaged or not an OTIO bundle"
                )
            free = shutil.disk_usage(root).free
            if stated > free - 1024**3:
                raise InputError(
                    f"{path}: unpacking needs {stated} bytes but {root} has {free} free: make room"
                )
            for member in members:
                target = (root / member.filename).resolve()
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as src, open(target, "wb") as dst:
                    while block := src.read(1 << 20):
                        written += len(block)
                        if written > cap:
                            raise InputError(
                                f"{path}: the bundle unpacks to more than {cap} bytes (its directory "
                                "states less); it is damaged or hostile, refused"
                            )
                        dst.write(block)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: a damaged zip archive, not a readable .otioz ({exc})") from None
    except (
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
    ) as exc:  # encrypted or unknown compression
        raise InputError(f"{path}: cannot unpack the bundle ({exc})") from None
    return written


def _load_otio(path: Path, fmt: str) -> LoadedTimeline:
    cleanup: list[Path] = []  # an .otioz is unpacked to a temporary folder, removed with the LoadedTimeline
    try:
        loaded = _read_otio(path, fmt, cleanup)
    except BaseException:
        for folder in cleanup:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    for folder in cleanup:
        weakref.finalize(loaded, shutil.rmtree, str(folder), True)
    return loaded


def _read_otio(path: Path, fmt: str, cleanup: list[Path]) -> LoadedTimeline:
    media_root = path.parent
    annotated = True
    try:
        if fmt == "otio_json":
            text = path.read_text(encoding="utf-8-sig")
            annotated = '"captionbridge"' in text
            timeline = otio.adapters.read_from_string(text, adapter_name="otio_json")
        elif fmt == "otioz":
            scope = current_scope()
            scratch = scope.scratch if scope is not None else None
            if scratch is not None:
                scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
            media_root = Path(tempfile.mkdtemp(prefix="captionbridge-otioz-", dir=scratch))
            cleanup.append(media_root)
            unpack_bundle(path, media_root, scope.unpack_limit if scope is not None else None)
            timeline = otio.adapters.read_from_file(
                str(media_root / "content.otio"), adapter_name="otio_json"
            )
        else:  # otiod
            media_root = path
            timeline = otio.adapters.read_from_file(str(path / "content.otio"), adapter_name="otio_json")
    except InputError:
        raise
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; the .otio file is damaged")
    except (ValueError, otio.exceptions.OTIOError, json.JSONDecodeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: damaged or unsupported OTIO document ({first[:200]})")
    if isinstance(timeline, otio.schema.SerializableCollection):
        timelines = [c for c in timeline.find_children(descended_from_type=otio.schema.Timeline)] or [
            c for c in timeline if isinstance(c, otio.schema.Timeline)
        ]
        if not timelines:
            raise InputError(f"{path}: the OTIO collection holds no timeline")
        timeline = timelines[0]
    rate = _rate_from_contents(timeline)
    if rate is None:
        raise TimelineError(
            f"{path}: the timeline does not state its frame rate (no start time and no clips)"
        )
    drop = drop_frame_from_metadata(timeline.metadata)
    warnings = []
    if annotated:
        for item in timeline.find_clips():
            md = item.metadata
            if md and "captionbridge" in md and "warnings" in md["captionbridge"]:
                warnings.extend(str(w) for w in md["captionbridge"]["warnings"])
    return _finish(timeline, path, fmt, rate, None, drop, media_root, warnings, annotated)


def _rate_from_contents(timeline: otio.schema.Timeline) -> Fraction | None:
    """The timeline's rate: its global start time's rate, else Resolve/other metadata, else its first track
    item's."""
    meta_rate = _rate_from_metadata(timeline.metadata)
    if timeline.global_start_time is not None:
        rate = exact_rate(timeline.global_start_time.rate)
        if rate <= 240:
            return rate
    if meta_rate is not None:
        return meta_rate
    for track in timeline.tracks:
        for child in track:
            sr = child.source_range
            if sr is not None and sr.duration.rate <= 240:
                return exact_rate(sr.duration.rate)
    return None


_DF_KEYS = {"drop_frame", "dropframe", "drop-frame", "isdropframe", "is_drop_frame", "timecode_drop_frame"}
_FORMAT_KEYS = ("rate", "timecode", "displayformat", "tcformat", "format")


def drop_frame_from_metadata(metadata) -> bool | None:
    """Drop-frame as the document states it anywhere in the timeline metadata: a boolean ``drop_frame`` key,
    Resolve's "29.97 DF" rate label, or xmeml/FCPXML display formats (DF/NDF). None when nothing says."""
    found: list[bool] = []

    def walk(node, depth=0):
        if depth > 6 or found:
            return
        if isinstance(node, (dict, AnyDictionary)):
            for key, value in node.items():
                k = str(key).lower().replace(" ", "_")
                if k in _DF_KEYS and isinstance(value, (bool, str, int)):
                    if isinstance(value, str):
                        found.append(value.strip().lower() in ("true", "1", "yes", "df"))
                    else:
                        found.append(bool(value))
                    return
                if isinstance(value, str) and any(f in k for f in _FORMAT_KEYS):
                    v = value.strip().upper()
                    if re.fullmatch(r"(29\.97|59\.94|30|60)?\s*(FPS)?\s*DF", v) or v == "DF":
                        found.append(True)
                        return
                    if v == "NDF" or re.fullmatch(r"(29\.97|59\.94)\s*(FPS)?\s*NDF", v):
                        found.append(False)
                        return
                walk(value, depth + 1)
        elif isinstance(node, (list, tuple, AnyVector)):
            for value in node:
                walk(value, depth + 1)

    walk(metadata)
    return found[0] if found else None


def _rate_from_metadata(metadata) -> Fraction | None:
    """Resolve writes e.g. "Timeline Frame Rate": "29.97 DF" in some exports; use it when nothing else
    says."""
    for key in ("Resolve_OTIO", "captionbridge"):
        node = metadata.get(key) if hasattr(metadata, "get") else None
        if node is None or not hasattr(node, "items"):
            continue
        for k, v in node.items():
            if "rate" in str(k).lower() and isinstance(v, (str, int, float)):
                try:
                    return parse_rate(v)
                except TimelineError:
                    continue
    return None
