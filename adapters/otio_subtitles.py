"""Captions as OpenTimelineIO subtitle tracks, and back.

OTIO has no subtitle schema (issue #62), so CaptionBridge documents its own representation. It uses only core
OTIO objects and survives ``otio_json``/``otioz``/``otiod`` unchanged.

Representation (``metadata["captionbridge"]["schema"] == "captionbridge.subtitles.1"``)
--------------------------------------------------------------------------------------------
* One ``otio.schema.Track`` per language with ``kind = "Subtitle"`` and ``name = "Subtitles (<lang>)"``,
  appended after the timeline's own tracks. Track metadata ``captionbridge``::

      {"schema": "captionbridge.subtitles.1", "language": "en", "lane": 0,
       "rate": "24000/1001", "start_timecode": "01:00:00:00", "drop_frame": false, "source_language": "en"}

  ``rate``/``start_timecode``/``drop_frame`` are the timeline clock the frames below count in (exact, as
  text).
  ``lane`` is 0 for the language's main track; when two cues of one language overlap, the later one goes to an
  extra track of the same language with lane 1, 2, ... (never dropped).
* Track time 0 is the timeline's first frame (the start timecode is ``timeline.global_start_time``, as OTIO
  defines it). Every item's time is whole frames at the timeline's rate.
* Each cue is an ``otio.schema.Clip`` (no media: ``MissingReference``) whose ``source_range`` is ``[0, cue
  duration)``; ``otio.schema.Gap`` items fill the time between cues, so the clip's position in the track
  (``track.range_of_child_at_index``) is exactly ``[cue.start_frame, cue.end_frame)``. Clip ``name`` is the
  cue text on one line (for editors' UIs); clip metadata ``captionbridge``::

      {"schema": "captionbridge.cue.1", "language": "en", "text": "Line one\\nLine two",
       "start_frame": 120, "end_frame": 168, "start_timecode": "01:00:05:00", "end_timecode": "01:00:07:00",
       "words": [{"text": "Line", "start_frame": 120, "end_frame": 126, "start": 5.005, "end": 5.2,
                  "confidence": 0.93}, ...]}

  ``text`` is authoritative (``name`` is a display copy). Words are listed on the source-language track only.
* Low-confidence words (below ``confidence_threshold``) become ``otio.schema.Marker`` objects on the
  timeline's top-level stack (``timeline.tracks.markers``), colour ``RED``, ``marked_range`` = the word's
  frames, name ``"check: <word>"``, metadata ``captionbridge`` = ``{"schema":
  "captionbridge.low_confidence.1", "word": ..., "confidence": ..., "start_frame": ..., "end_frame": ...}``.
  Stack markers are what ``fcp_xml`` keeps and what Resolve's OTIO import turns into timeline markers.

Nothing else in the input timeline is changed: ``write_otio_with_subtitles`` deep-copies it and only appends
tracks and markers; ``strip_subtitles`` removes exactly those again.
"""

from __future__ import annotations

import bisect
import copy
import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import opentimelineio as otio

from ..core.errors import CaptionBridgeError, InputError, TimelineError
from ..core.model import CaptionDocument, Cue, Word, cue_lanes
from ..core.timeline.timebase import Timebase, parse_rate, rate_to_string

SUBTITLE_KIND = "Subtitle"
TRACK_SCHEMA = "captionbridge.subtitles.1"
CUE_SCHEMA = "captionbridge.cue.1"
MARKER_SCHEMA = "captionbridge.low_confidence.1"
META_KEY = "captionbridge"
DEFAULT_CONFIDENCE_THRESHOLD = 0.5

__all__ = [
    "SUBTITLE_KIND",
    "subtitle_tracks",
    "low_confidence_markers",
    "add_subtitles",
    "write_otio_with_subtitles",
    "document_from_otio",
    "strip_subtitles",
    "timeline_from_document",
    "timebase_of_timeline",
]


def _rt(frames: int, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, float(rate))


def _range(start: int, duration: int, rate: Fraction) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(_rt(start, rate), _rt(duration, rate))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def assign_words(doc: CaptionDocument) -> list[list[Word]]:
    """Words per cue (same order as ``doc.cues``): a cue's own words, else every document word goes to the cue
    it overlaps most, or the nearest cue when it overlaps none, so no word is lost."""
    result: list[list[Word]] = [list(c.words) for c in doc.cues]
    if any(result) or not doc.cues:
        return result
    order = sorted(range(len(doc.cues)), key=lambda i: doc.cues[i].start_frame)
    starts = [doc.cues[i].start_frame for i in order]

    for w in doc.words:
        k = bisect.bisect_right(starts, w.start_frame)
        best, best_key = None, None
        for j in range(max(0, k - 3), min(len(order), k + 2)):
            c = doc.cues[order[j]]
            overlap = min(c.end_frame, w.end_frame) - max(c.start_frame, w.start_frame)
            distance = 0 if overlap > 0 else max(c.start_frame - w.end_frame, w.start_frame - c.end_frame)
            key = (-overlap, distance)
            if best_key is None or key < best_key:
                best, best_key = order[j], key
        result[best].append(w)
    return result


def _languages(doc: CaptionDocument) -> list[str]:
    langs = list(doc.languages or [])
    for cue in doc.cues:
        for lang in cue.text:
            if lang not in langs:
                langs.append(lang)
    return langs or [doc.source_language]


def _rt_json(frames: int, rate: float) -> dict:
    return {"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": frames}


def _range_json(start: int, duration: int, rate: float) -> dict:
    return {
        "OTIO_SCHEMA": "TimeRange.1",
        "duration": _rt_json(duration, rate),
        "start_time": _rt_json(start, rate),
    }


def _item_json(schema: str, name: str, duration: int, rate: float, metadata: dict | None = None) -> dict:
    item = {
        "OTIO_SCHEMA": schema,
        "metadata": metadata or {},
        "name": name,
        "source_range": _range_json(0, duration, rate),
        "effects": [],
        "markers": [],
        "enabled": True,
    }
    if schema == "Clip.2":
        item["media_references"] = {
            "DEFAULT_MEDIA": {
                "OTIO_SCHEMA": "MissingReference.1",
                "metadata": {},
                "name": "",
                "available_range": None,
                "available_image_bounds": None,
            }
        }
        item["active_media_reference_key"] = "DEFAULT_MEDIA"
    return item


def _from_json(data: dict):
    # Built as JSON and parsed by OTIO's C++ reader: setting metadata item by item from Python costs ~1 ms per
    # cue (10 s for a feature), the parser a few milliseconds in all.
    return otio.core.deserialize_json_from_string(json.dumps(data, ensure_ascii=False))


def build_subtitle_tracks(
    doc: CaptionDocument, languages: Iterable[str] | None = None
) -> list[otio.schema.Track]:
    """One ``Subtitle`` track per language (plus overflow lanes), following the documented representation."""
    tb = doc.timebase
    rate = float(tb.rate)
    clock = {
        "rate": rate_to_string(tb.rate),
        "start_timecode": tb.start_timecode,
        "drop_frame": tb.drop_frame,
        "source_language": doc.source_language,
    }
    per_cue = assign_words(doc)
    tracks = []
    for lang in list(languages) if languages else _languages(doc):
        cues = [(c, per_cue[i]) for i, c in enumerate(doc.cues) if (c.text.get(lang) or "").strip()]
        for lane_index, lane in enumerate(cue_lanes(cues, lambda pair: pair[0]) or [[]]):
            name = f"Subtitles ({lang})" + (f" {lane_index + 1}" if lane_index else "")
            children = []
            cursor = 0
            for cue, words in lane:
                if cue.start_frame < 0:
                    raise TimelineError(f"caption at frame {cue.start_frame} starts before the timeline")
                if cue.start_frame > cursor:
                    children.append(_item_json("Gap.1", "", cue.start_frame - cursor, rate))
                text = cue.text[lang]
                meta = {
                    "schema": CUE_SCHEMA,
                    "language": lang,
                    "text": text,
                    "start_frame": cue.start_frame,
                    "end_frame": cue.end_frame,
                    "start_timecode": tb.timecode(cue.start_frame),
                    "end_timecode": tb.timecode(cue.end_frame),
                }
                if lang == doc.source_language:
                    meta["words"] = [w.to_dict() for w in words]
                if cue.speakers:  # who speaks, for editors' scripts (a track per speaker, a label, a colour)
                    meta["speakers"] = [{"id": sid, "name": doc.speaker_name(sid)} for sid in cue.speakers]
                children.append(_item_json("Clip.2", _one_line(text), cue.duration, rate, {META_KEY: meta}))
                cursor = cue.end_frame
            track = {
                "OTIO_SCHEMA": "Track.1",
                "name": name,
                "kind": SUBTITLE_KIND,
                "source_range": None,
                "effects": [],
                "markers": [],
                "enabled": True,
                "children": children,
                "metadata": {
                    META_KEY: {"schema": TRACK_SCHEMA, "language": lang, "lane": lane_index, **clock}
                },
            }
            tracks.append(_from_json(track))
    return tracks


def build_low_confidence_markers(
    doc: CaptionDocument, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
) -> list[otio.schema.Marker]:
    rate = float(doc.timebase.rate)
    markers = []
    for w in doc.words:
        if w.confidence < threshold:
            markers.append(
                {
                    "OTIO_SCHEMA": "Marker.2",
                    "name": f"check: {w.text.strip()}",
                    "color": "RED",
                    "marked_range": _range_json(w.start_frame, max(1, w.end_frame - w.start_frame), rate),
                    "comment": "",
                    "metadata": {
                        META_KEY: {
                            "schema": MARKER_SCHEMA,
                            "word": w.text,
                            "confidence": round(w.confidence, 3),
                            "start_frame": w.start_frame,
                            "end_frame": w.end_frame,
                        }
                    },
                }
            )
    if not markers:
        return []
    holder = _from_json(
        {
            "OTIO_SCHEMA": "Stack.1",
            "name": "",
            "metadata": {},
            "source_range": None,
            "effects": [],
            "markers": markers,
            "enabled": True,
            "children": [],
        }
    )
    out = list(holder.markers)
    del holder.markers[:]
    return out


def timebase_of_timeline(timeline: otio.schema.Timeline, drop_frame: bool | None = None) -> Timebase:
    """The clock of an OTIO timeline: our subtitle-track metadata if present, else the global start time's
    rate."""
    for track in subtitle_tracks(timeline):
        meta = track.metadata[META_KEY]
        return Timebase.from_start_timecode(meta["rate"], meta["start_timecode"], bool(meta["drop_frame"]))
    start = timeline.global_start_time
    rate = None
    if start is not None:
        rate = start.rate
    else:
        for track in timeline.tracks:
            for child in track:
                rate = child.duration().rate
                break
            if rate:
                break
    if not rate:
        raise TimelineError(f"timeline {timeline.name!r} has no rate: give one (e.g. rate=25)")
    exact = parse_rate(rate)
    start_frame = round(start.value * float(exact) / start.rate) if start is not None else 0
    df = bool(drop_frame) if drop_frame is not None else False
    return Timebase(exact, start_frame, df)


def _check_timebase(timeline: otio.schema.Timeline, doc: CaptionDocument) -> None:
    """Refuse captions made for another clock. A timeline without ``global_start_time`` is left as it is (its
    start timecode, if any, came from elsewhere; track time 0 is still its first frame)."""
    start = timeline.global_start_time
    if start is None:
        return
    if parse_rate(start.rate) != doc.timebase.rate:
        raise TimelineError(
            f"timeline {timeline.name!r} runs at {start.rate:g} fps but the captions were made at "
            f"{float(doc.timebase.rate):g} fps: caption the timeline again"
        )
    start_frame = round(start.value * float(doc.timebase.rate) / start.rate)
    if start_frame != doc.timebase.start_frame:
        raise TimelineError(
            f"timeline {timeline.name!r} starts at frame {start_frame} but the captions count from "
            f"{doc.timebase.start_timecode} (frame {doc.timebase.start_frame}): caption the timeline again"
        )


def add_subtitles(
    timeline: otio.schema.Timeline,
    doc: CaptionDocument,
    languages: Iterable[str] | None = None,
    markers: bool = True,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> otio.schema.Timeline:
    """Return a deep copy of ``timeline`` with subtitle tracks (and low-confidence markers) appended."""
    _check_timebase(timeline, doc)
    out = copy.deepcopy(timeline)
    for track in build_subtitle_tracks(doc, languages):
        out.tracks.append(track)
    if markers:
        for marker in build_low_confidence_markers(doc, confidence_threshold):
            out.tracks.markers.append(marker)
    return out


def write_otio_with_subtitles(
    timeline: otio.schema.Timeline,
    doc: CaptionDocument,
    out_path: str | os.PathLike,
    languages: Iterable[str] | None = None,
    markers: bool = True,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    media_root: str | os.PathLike | None = None,
) -> Path:
    """Write ``timeline`` untouched plus one subtitle track per language to ``out_path``
    (.otio/.otioz/.otiod).

    ``media_root``: the folder the timeline was read from. Relative media references are then written as
    absolute ``file://`` URLs, so the written timeline finds its media wherever it is opened from.
    """
    out = add_subtitles(timeline, doc, languages, markers, confidence_threshold)
    if media_root is not None:
        from .media_rebase import rebase_otio_media

        rebase_otio_media(out, Path(media_root))
    path = Path(out_path)
    if path.suffix.lower() not in (".otio", ".otioz", ".otiod"):
        raise InputError(f"{path}: OTIO output must end in .otio, .otioz or .otiod")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Always use the built-in writers by name: our own plugin must not intercept the suffix.
        adapter = {".otio": "otio_json", ".otioz": "otioz", ".otiod": "otiod"}[path.suffix.lower()]
        otio.adapters.write_to_file(out, str(path), adapter_name=adapter)
    except otio.exceptions.OTIOError as exc:
        # otioz/otiod bundle the media: a clip whose file is not on disk stops them.
        raise CaptionBridgeError(
            f"cannot write {path}: {exc} (.otioz/.otiod copy every media file into the "
            "bundle; relink the media or write .otio instead)"
        ) from exc
    except OSError as exc:
        raise CaptionBridgeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def timeline_from_document(
    doc: CaptionDocument, languages: Iterable[str] | None = None, markers: bool = True
) -> otio.schema.Timeline:
    """A timeline holding only the subtitle tracks (what the SRT/VTT OTIO adapters read into)."""
    tl = otio.schema.Timeline(
        name=doc.name or "Captions", global_start_time=_rt(doc.timebase.start_frame, doc.timebase.rate)
    )
    tl.metadata[META_KEY] = {"schema": TRACK_SCHEMA, "source_language": doc.source_language}
    for track in build_subtitle_tracks(doc, languages):
        tl.tracks.append(track)
    if markers:
        for marker in build_low_confidence_markers(doc):
            tl.tracks.markers.append(marker)
    return tl


# -- reading back
# ------------------------------------------------------------------------------------------------
def subtitle_tracks(timeline: otio.schema.Timeline, language: str | None = None) -> list[otio.schema.Track]:
    """Our subtitle tracks, in order; ``language`` filters."""
    out = []
    for track in timeline.tracks:
        meta = track.metadata.get(META_KEY) if isinstance(track, otio.schema.Track) else None
        if track.kind == SUBTITLE_KIND and meta and meta.get("schema") == TRACK_SCHEMA:
            if language is None or meta.get("language") == language:
                out.append(track)
    return out


def low_confidence_markers(timeline: otio.schema.Timeline) -> list[otio.schema.Marker]:
    return [
        m for m in timeline.tracks.markers if (m.metadata.get(META_KEY) or {}).get("schema") == MARKER_SCHEMA
    ]


def _frames(t: otio.opentime.RationalTime, rate: Fraction) -> int:
    if (
        t.rate == float(rate) and float(t.value).is_integer()
    ):  # the usual case: already whole frames at our rate
        return int(t.value)
    value = Fraction(t.value) * rate / parse_rate(t.rate)
    frames = round(value)
    if abs(value - frames) > Fraction(1, 1000):
        raise TimelineError(f"subtitle item at {t.value}/{t.rate} is not on a frame at {float(rate):g} fps")
    return frames


def document_from_otio(timeline: otio.schema.Timeline, timebase: Timebase | None = None) -> CaptionDocument:
    """Rebuild a ``CaptionDocument`` from subtitle tracks: cues from all languages are merged by identical
    frames.

    Positions come from the track layout (not the metadata copy), so edits made in another OTIO tool are
    honoured. Tracks of kind "Subtitle" without our metadata are read too (language "und", text = clip name).
    """
    tracks = [t for t in timeline.tracks if isinstance(t, otio.schema.Track) and t.kind == SUBTITLE_KIND]
    if not tracks:
        raise InputError(f"timeline {timeline.name!r} has no Subtitle track")
    tb = timebase or timebase_of_timeline(timeline)
    source_language = None
    by_frames: dict[tuple[int, int], dict[str, str]] = {}
    words: dict[tuple[int, int], list[Word]] = {}
    cue_speakers: dict[tuple[int, int], tuple[str, ...]] = {}
    speakers: dict[str, str] = {}
    languages: list[str] = []
    for track in tracks:
        meta = track.metadata.get(META_KEY) or {}
        lang = meta.get("language") or "und"
        source_language = source_language or meta.get("source_language")
        if lang not in languages:
            languages.append(lang)
        cursor = 0
        # Metadata through one JSON dump of the track (reading it item by item from Python is ~100x slower).
        children_json = json.loads(track.to_json_string()).get("children", [])
        for child, child_json in zip(track, children_json):
            if isinstance(child, otio.schema.Transition):
                raise TimelineError(f"subtitle track {track.name!r} holds a transition: remove it")
            start = cursor
            end = cursor = start + _frames(child.duration(), tb.rate)
            if not isinstance(child, otio.schema.Clip):
                continue
            cmeta = (child_json.get("metadata") or {}).get(META_KEY) or {}
            text = cmeta.get("text", child.name)
            key = (start, end)
            if lang in by_frames.setdefault(key, {}):
                raise TimelineError(f"two {lang} captions at the same frames {start}-{end} in {track.name!r}")
            by_frames[key][lang] = text
            for entry in cmeta.get("speakers") or []:
                if isinstance(entry, dict) and entry.get("id"):
                    cue_speakers.setdefault(key, ())
                    if str(entry["id"]) not in cue_speakers[key]:
                        cue_speakers[key] += (str(entry["id"]),)
                    speakers.setdefault(str(entry["id"]), str(entry.get("name") or entry["id"]))
            for w in cmeta.get("words", []):
                words.setdefault(key, []).append(Word.from_dict({**w, "language": lang}))
    cues = [
        Cue(s, e, text, tuple(words.get((s, e), ())), cue_speakers.get((s, e), ()))
        for (s, e), text in sorted(by_frames.items())
    ]
    all_words = [w for key in sorted(words) for w in words[key]]
    src = source_language or (languages[0] if languages else "und")
    return CaptionDocument(
        name=timeline.name or "",
        timebase=tb,
        source_language=src,
        words=all_words,
        cues=cues,
        languages=languages,
        speakers=[{"id": sid, "name": name} for sid, name in speakers.items()],
    )


def strip_subtitles(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A deep copy without our subtitle tracks and low-confidence markers (the input as it was)."""
    out = copy.deepcopy(timeline)
    for index in reversed(range(len(out.tracks))):
        track = out.tracks[index]
        meta = track.metadata.get(META_KEY) if isinstance(track, otio.schema.Track) else None
        if track.kind == SUBTITLE_KIND and meta and meta.get("schema") == TRACK_SCHEMA:
            del out.tracks[index]
    keep = [m for m in out.tracks.markers if (m.metadata.get(META_KEY) or {}).get("schema") != MARKER_SCHEMA]
    out.tracks.markers[:] = keep
    return out
