"""One caption job end to end, as the CLI and the engine service run it: read -> caption -> write files.

Files are written into a private staging folder inside ``out_dir`` and moved into place only when every one of
them is complete, so a failed or cancelled job leaves nothing half-written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..core.errors import CaptionBridgeError, InputError
from ..core.model import CaptionDocument
from ..core.pipeline import STAGES, CaptionOptions, caption_timeline
from ..core.progress import Progress

CAPTION_FORMATS = ("json", "srt", "vtt", "ass", "ttml")
TIMELINE_FORMATS = ("otio", "fcpxml", "xmeml")
ALL_FORMATS = CAPTION_FORMATS + TIMELINE_FORMATS
log = logging.getLogger("captionbridge.caption_job")


def check_formats(formats: list[str]) -> list[str]:
    formats = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown:
        raise InputError(f"unknown output format(s) {', '.join(unknown)}: choose from {', '.join(ALL_FORMATS)}")
    if "json" not in formats:
        formats.insert(0, "json")  # the contract always comes back
    return formats


def write_outputs(doc: CaptionDocument, out_dir: Path, stem: str, formats: list[str], loaded=None,
                  absolute_times: bool = False) -> list[str]:
    """Write every requested format for ``doc``; returns the file names written into ``out_dir``."""
    from ..adapters.caption_formats import write_captions

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".captionbridge-", dir=out_dir))
    try:
        written = [Path(p) for p in write_captions(doc, staging, stem, [f for f in formats if f in CAPTION_FORMATS],
                                                   absolute=absolute_times)]
        if "otio" in formats:
            from ..adapters.otio_subtitles import timeline_from_document, write_otio_with_subtitles

            target = staging / f"{stem}.captions.otio"
            if loaded is not None:
                write_otio_with_subtitles(loaded.timeline, doc, target)
            else:
                import opentimelineio as otio

                otio.adapters.write_to_file(timeline_from_document(doc), str(target))
            written.append(target)
        if "fcpxml" in formats:
            from ..adapters.fcpxml_captions import write_fcpxml_captions

            target = staging / f"{stem}.captions.fcpxml"
            write_fcpxml_captions(doc, target, duration_frames=loaded.duration_frames if loaded is not None else None)
            written.append(target)
        if "xmeml" in formats:
            from ..adapters.xmeml_titles import write_xmeml_titles

            target = staging / f"{stem}.titles.xml"
            # From an FCP7 XML edit: the user's sequence plus title tracks; otherwise a captions-only sequence.
            source = loaded.path if loaded is not None and loaded.format == "fcp_xml" else None
            write_xmeml_titles(doc, target, source=source)
            written.append(target)
        names = []
        for path in written:
            os.replace(path, out_dir / path.name)
            names.append(path.name)
        return names
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def output_stem(timeline_path: Path) -> str:
    """The file-name stem of a job's outputs: the timeline's name without its format's suffix."""
    stem = Path(timeline_path).name
    for suffix in (".otioz", ".otio", ".fcpxmld", ".fcpxml", ".xml", Path(timeline_path).suffix):
        if suffix and stem.lower().endswith(suffix.lower()):
            return stem[: -len(suffix)]
    return stem


def write_review_copy(loaded, folder: Path, tracks=None) -> None:
    """The review page's copy of the mix; the captions stand without it (the page makes it again on first use)."""
    from ..core.timeline.review_audio import write_timeline_review_media

    try:
        write_timeline_review_media(loaded, folder, tracks)
    except (CaptionBridgeError, OSError) as exc:
        log.warning("no review audio for %s: %s", loaded.name, getattr(exc, "message", exc))
        shutil.rmtree(folder, ignore_errors=True)


def run_caption_job(timeline_path: Path, out_dir: Path, options: dict | CaptionOptions,
                    progress: Progress | None = None, review_dir: Path | None = None) -> dict:
    """Caption ``timeline_path`` into ``out_dir``. Returns ``{"document": <JSON contract>, "files": [names]}``.

    ``review_dir``: also keep a compressed copy of the timeline's mix and its waveform peaks there (the engine
    service does, for the review page)."""
    from ..adapters.media_timeline import is_media_file, load_media_as_timeline
    from ..adapters.timeline_read import load_timeline

    opts = options if isinstance(options, CaptionOptions) else CaptionOptions.from_dict(dict(options))
    opts.validate()
    formats = check_formats(list(opts.formats))
    progress = progress or Progress(STAGES)
    if is_media_file(timeline_path):
        loaded = load_media_as_timeline(timeline_path, opts.rate, opts.start_timecode, opts.drop_frame)
    else:
        if opts.rate or opts.start_timecode:
            raise InputError(f"{timeline_path}: --rate and --start-timecode are for bare media files; a timeline "
                             "carries its own clock")
        loaded = load_timeline(Path(timeline_path), drop_frame=opts.drop_frame)
    doc = caption_timeline(loaded, opts, progress)
    progress.update("write", 0.0)
    files = write_outputs(doc, Path(out_dir), output_stem(timeline_path), formats, loaded, opts.absolute_times)
    if review_dir is not None:
        write_review_copy(loaded, Path(review_dir), opts.tracks)
    progress.update("write", 1.0)
    return {"document": doc.to_dict(), "files": files}
