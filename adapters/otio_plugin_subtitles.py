"""Shared code of CaptionBridge's OTIO adapters for subtitle files (``captionbridge_srt``,
``captionbridge_vtt``).

OTIO loads adapter modules by file path under the name ``opentimelineio.adapters.<name>``, so adapter modules
use absolute imports. A subtitle file becomes a timeline holding one ``Subtitle`` track in the representation
documented in :mod:`captionbridge.adapters.otio_subtitles`.

Subtitle files have no frame rate and count from 00:00:00,000 = the timeline's first frame. Adapter arguments
(Python ``read_from_file(path, rate=...)``, otioconvert ``-a rate=24000/1001``):

* ``rate``: the timeline rate (default 24); ``start_timecode``: the timeline's start (default 00:00:00:00);
  ``drop_frame``: drop-frame display (29.97/59.94 only); ``language``: the text's language (default "und").

Reading maps each time to the frame an editor shows for it (editors floor milliseconds to frames); writing
rounds a frame's exact start *up* to the millisecond, so reading back lands every cue on its frame.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import pysubs2

from captionbridge.adapters import otio_subtitles as subs
from captionbridge.core.errors import InputError
from captionbridge.core.model import CaptionDocument, Cue
from captionbridge.core.timeline.timebase import Timebase

DEFAULT_RATE = "24"


def _bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "df")
    return bool(value)


def timebase_from_args(rate=None, start_timecode=None, drop_frame=False) -> Timebase:
    return Timebase.from_start_timecode(
        rate if rate is not None else DEFAULT_RATE, start_timecode or "00:00:00:00", _bool(drop_frame)
    )


def read_subtitles(
    text: str,
    fmt: str,
    source: str,
    rate=None,
    start_timecode=None,
    drop_frame=False,
    language="und",
    name=None,
):
    if rate is None:
        logging.getLogger("captionbridge.otio").warning(
            "%s: subtitle files carry no frame rate; assuming %s fps "
            "(pass rate=..., e.g. -a rate=24000/1001)",
            source,
            DEFAULT_RATE,
        )
    tb = timebase_from_args(rate, start_timecode, drop_frame)
    try:
        ssa = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as exc:  # pysubs2 raises many kinds for bad input
        raise InputError(f"{source}: not a readable {fmt.upper()} file ({exc})") from exc
    cues = []
    for number, event in enumerate(ssa.events, 1):
        if event.is_comment:
            continue
        body = event.plaintext.strip()
        if not body:
            continue
        start = tb.frame_from_ms(max(0, event.start))
        end = max(start + 1, tb.frame_from_ms(max(0, event.end)))
        if event.end <= event.start:
            raise InputError(f"{source}: caption {number} ({body[:30]!r}) ends before it starts")
        cues.append(Cue(start, end, {language: body}))
    doc = CaptionDocument(
        name=name or "", timebase=tb, source_language=language, cues=cues, languages=[language]
    )
    return subs.timeline_from_document(doc)


def read_subtitle_file(
    filepath, fmt: str, rate=None, start_timecode=None, drop_frame=False, language="und", name=None
):
    """``read_from_file`` of the subtitle adapters: UTF-8 (BOM tolerated) text, the file's stem as the
    name."""
    try:
        with open(filepath, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"{filepath}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"{filepath}: cannot read ({exc.strerror})") from exc
    stem = os.path.splitext(os.path.basename(filepath))[0]
    return read_subtitles(text, fmt, filepath, rate, start_timecode, drop_frame, language, name or stem)


def write_subtitles(timeline, fmt: str, language=None) -> str:
    """One language's Subtitle track as SRT/VTT text, through the caption writers (times rounded up to the
    ms)."""
    from captionbridge.adapters.caption_formats import captions_string

    doc = subs.document_from_otio(timeline)
    lang = language or (doc.languages[0] if doc.languages else None)
    if lang not in doc.languages:
        raise InputError(
            f"timeline {timeline.name!r} has no {lang} subtitle track (has: {', '.join(doc.languages)})"
        )
    shown = replace(doc, cues=[c for c in doc.cues if c.text.get(lang, "").strip()])
    return captions_string(shown, fmt, [lang])
