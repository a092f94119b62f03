"""One caption job end to end, as the CLI and the engine service run it: read -> caption -> write files.

Files are written into a private staging folder inside ``out_dir`` and moved into place only when every one of
them is complete, so a failed or cancelled job leaves nothing half-written. Whether ``out_dir`` (and the cache
folder) can be written is checked before the timeline is transcribed, and a run that found no speech writes
only files that are not there yet: it never replaces an earlier run's captions with empty ones.
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
from ..core.storage import cache_root, writable_folder_problem

CAPTION_FORMATS = ("json", "srt", "vtt", "ass", "ttml")
TIMELINE_FORMATS = ("otio", "fcpxml", "xmeml")
ALL_FORMATS = CAPTION_FORMATS + TIMELINE_FORMATS
log = logging.getLogger("captionbridge.caption_job")


def check_formats(formats: list[str]) -> list[str]:
    formats = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown:
        raise InputError(
            f"unknown output format(s) {', '.join(unknown)}: choose from {', '.join(ALL_FORMATS)}"
        )
    if "json" not in formats:
        formats.insert(0, "json")  # the contract always comes back
    return formats


def check_out_dir(out_dir: Path) -> None:
    """Raise InputError (exit 3) when caption files cannot be written into ``out_dir`` (creating it if
    needed)."""
    problem = writable_folder_problem(Path(out_dir))
    if problem:
        raise InputError(
            f"cannot write captions into {out_dir}: {problem}; pass --out a folder you can write to"
        )


def check_cache_dir() -> None:
    """Raise InputError (exit 3) when the cache folder (models, transcripts) cannot be written."""
    folder = cache_root()
    problem = writable_folder_problem(folder)
    if problem:
        raise InputError(
            f"cannot use the cache folder {folder}: {problem}; make it writable or set "
            "CAPTIONBRIDGE_CACHE_DIR to a folder you can write to"
        )


def write_outputs(
    doc: CaptionDocument,
    out_dir: Path,
    stem: str,
    formats: list[str],
    loaded=None,
    absolute_times: bool = False,
    kept: list[str] | None = None,
) -> list[str]:
    """Write every requested format for ``doc``; returns the file names written into ``out_dir``.

    When ``doc`` has no cues (no speech was found), files already in ``out_dir`` are left as they are; their
    names are appended to ``kept`` when it is given.
    """
    from ..adapters.caption_formats import write_captions

    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".captionbridge-", dir=out_dir))
    except OSError as exc:
        raise InputError(
            f"cannot write captions into {out_dir}: {exc.strerror or exc}; pass --out a folder you "
            "can write to"
        ) from exc
    try:
        written = [
            Path(p)
            for p in write_captions(
                doc, staging, stem, [f for f in formats if f in CAPTION_FORMATS], absolute=absolute_times
            )
        ]
        if "otio" in formats:
            from ..adapters.otio_subtitles import timeline_from_document, write_otio_with_subtitles

            target = staging / f"{stem}.captions.otio"
            if loaded is not None:
                # an .otioz's media lives in a temporary unpacked folder: its relative references stay as they
                # are
                root = None if loaded.format == "otioz" else loaded.media_root
                write_otio_with_subtitles(loaded.timeline, doc, target, media_root=root)
            else:
                import opentimelineio as otio

                otio.adapters.write_to_file(timeline_from_document(doc), str(target))
            written.append(target)
        if "fcpxml" in formats:
            from ..adapters.fcpxml_captions import write_fcpxml_captions

            target = staging / f"{stem}.captions.fcpxml"
            write_fcpxml_captions(
                doc, target, duration_frames=loaded.duration_frames if loaded is not None else None
            )
            written.append(target)
        if "xmeml" in formats:
            from ..adapters.xmeml_titles import write_xmeml_titles

            target = staging / f"{stem}.titles.xml"
            # From an FCP7 XML edit: the user's sequence plus title tracks; otherwise a captions-only
            # sequence.
            source = loaded.path if loaded is not None and loaded.format == "fcp_xml" else None
            write_xmeml_titles(doc, target, source=source)
            written.append(target)
        for path in written:  # everything in the way is found before anything is replaced
            if (out_dir / path.name).is_dir():
                raise InputError(
                    f"cannot write {out_dir / path.name}: a folder of that name is in the way; move it "
                    "or pass another --out"
                )
        names = []
        for path in written:
            if not doc.cues and (out_dir / path.name).exists():
                if kept is not None:
                    kept.append(path.name)
                continue
            try:
                os.replace(path, out_dir / path.name)
            except OSError as exc:  # e.g. a folder of that name in the way
                raise InputError(
                    f"cannot write {out_dir / path.name}: {exc.strerror or exc}; move it out of the "
                    "way or pass another --out"
                ) from exc
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
    """The review page's copy of the mix; the captions stand without it (the page makes it again on first
    use)."""
    from ..core.timeline.review_audio import write_timeline_review_media

    try:
        write_timeline_review_media(loaded, folder, tracks)
    except (CaptionBridgeError, OSError) as exc:
        log.warning("no review audio for %s: %s", loaded.name, getattr(exc, "message", exc))
        shutil.rmtree(folder, ignore_errors=True)


def run_caption_job(
    timeline_path: Path,
    out_dir: Path,
    options: dict | CaptionOptions,
    progress: Progress | None = None,
    review_dir: Path | None = None,
) -> dict:
    """Caption ``timeline_path`` into ``out_dir``. Returns ``{"document": <JSON contract>, "files": [names]}``
    (plus ``"kept"``: earlier files left in place because this run found no speech).

    ``review_dir``: also keep a compressed copy of the timeline's mix and its waveform peaks there (the engine
    service does, for the review page)."""
    opts = options if isinstance(options, CaptionOptions) else CaptionOptions.from_dict(dict(options))
    opts.validate()
    formats = check_formats(list(opts.formats))
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    check_out_dir(out_dir)  # before anything slow: a typo in --out must not cost a transcription
    try:
        check_cache_dir()
        return _run(timeline_path, out_dir, opts, formats, progress or Progress(STAGES), review_dir)
    except BaseException:
        if created:  # a failed job leaves no empty folder behind
            try:
                out_dir.rmdir()
            except OSError:
                pass
        raise


def _run(
    timeline_path: Path,
    out_dir: Path,
    opts: CaptionOptions,
    formats: list[str],
    progress: Progress,
    review_dir: Path | None = None,
) -> dict:
    from ..adapters.media_timeline import is_media_file, load_media_as_timeline
    from ..adapters.timeline_read import load_timeline

    if is_media_file(timeline_path):
        loaded = load_media_as_timeline(timeline_path, opts.rate, opts.start_timecode, opts.drop_frame)
    else:
        if opts.rate or opts.start_timecode:
            raise InputError(
                f"{timeline_path}: --rate and --start-timecode are for bare media files; a timeline "
                "carries its own clock"
            )
        loaded = load_timeline(Path(timeline_path), drop_frame=opts.drop_frame)
    doc = caption_timeline(loaded, opts, progress)
    progress.update("write", 0.0)
    stem = output_stem(timeline_path)
    kept: list[str] = []
    files = write_outputs(doc, out_dir, stem, formats, loaded, opts.absolute_times, kept)
    if "otio" in formats and loaded.format == "otioz":
        doc.warnings.append(
            f"{stem}.captions.otio names its media as {Path(timeline_path).name} does, relative to "
            "the bundle: unpack the .otioz beside it (or relink) to open it with its media"
        )
    if review_dir is not None:
        write_review_copy(loaded, Path(review_dir), opts.tracks)
    progress.update("write", 1.0)
    result = {"document": doc.to_dict(), "files": files}
    if kept:
        result["kept"] = kept
    return result
