"""A bare media file (a recording, a camera clip, a finished programme) as a one-clip timeline.

Batch work often starts from files, not edits: ``captionbridge caption interview.wav --rate 25`` captions a
file as if it sat alone on a timeline. The clock comes from the caller (``rate``, ``start_timecode``), else
from the file: a video stream's frame rate and a timecode the file carries (BWF ``time_reference``,
QuickTime/MXF ``timecode``). An audio-only file has no frame rate, so it must be given: captions are frames,
and guessing one would put them on the wrong frames in the editor that later opens them.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ..core.errors import InputError
from ..core.timeline.regions import media_timecode_seconds
from ..core.timeline.timebase import Timebase, parse_rate
from .timeline_read import LoadedTimeline

MEDIA_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".bwf",
        ".flac",
        ".mp3",
        ".m4a",
        ".aac",
        ".ogg",
        ".oga",
        ".opus",
        ".aif",
        ".aiff",
        ".caf",
        ".mov",
        ".mp4",
        ".m4v",
        ".mxf",
        ".mkv",
        ".webm",
        ".avi",
        ".mts",
        ".m2ts",
    }
)


def is_media_file(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES


def _probe(path: Path) -> tuple[Fraction, Fraction | None]:
    """(duration in seconds, video frame rate or None); InputError when there is no audio to caption."""
    import av

    try:
        with av.open(str(path)) as container:
            audio = next((s for s in container.streams if s.type == "audio"), None)
            if audio is None:
                raise InputError(f"{path}: has no audio stream to caption")
            video = next((s for s in container.streams if s.type == "video" and s.average_rate), None)
            if audio.duration is not None and audio.time_base is not None:
                duration = Fraction(audio.duration) * Fraction(audio.time_base)
            elif container.duration is not None:
                duration = Fraction(container.duration, av.time_base)
            else:
                duration = Fraction(0)
            rate = Fraction(video.average_rate) if video is not None else None
    except InputError:
        raise
    except Exception as exc:  # PyAV raises many kinds for damaged or foreign files
        raise InputError(f"{path}: not a media file CaptionBridge can read ({exc})") from exc
    if duration <= 0:
        raise InputError(f"{path}: the media has no duration (empty or damaged file)")
    return duration, rate


def load_media_as_timeline(
    path: str | os.PathLike,
    rate: object = None,
    start_timecode: str | None = None,
    drop_frame: bool | None = None,
) -> LoadedTimeline:
    """One audio clip on A1 covering the whole file, at ``rate`` (or the video's rate), from
    ``start_timecode`` (or the file's own timecode, else 00:00:00:00)."""
    path = Path(path).expanduser().resolve()
    duration, video_rate = _probe(path)
    if rate is None:
        if video_rate is None:
            raise InputError(
                f"{path}: an audio file has no frame rate; pass the rate of the timeline the captions "
                "are for, e.g. --rate 24000/1001 or --rate 25"
            )
        rate = video_rate
    exact = parse_rate(rate)
    df = bool(drop_frame) if drop_frame is not None else False
    warnings: list[str] = []
    if start_timecode:
        timebase = Timebase.from_start_timecode(exact, start_timecode, df)
    else:
        origin = media_timecode_seconds(path)
        start = Timebase(exact, 0, df).frame_at(origin, "round") if origin is not None else 0
        timebase = Timebase(exact, start, df)
        if origin is not None:
            warnings.append(f"{path.name}: starts at its own timecode {timebase.start_timecode}")
    frames = timebase.frame_at(duration, "floor")
    if frames <= 0:
        raise InputError(f"{path}: shorter than one frame at {float(exact):g} fps")
    fps = float(exact)
    span = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, fps), otio.opentime.RationalTime(frames, fps)
    )
    reference = otio.schema.ExternalReference(target_url=str(path), available_range=span)
    track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    track.append(otio.schema.Clip(name=path.name, media_reference=reference, source_range=span))
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.global_start_time = otio.opentime.RationalTime(timebase.start_frame, fps)
    timeline.tracks.append(track)
    return LoadedTimeline(
        timeline, timebase, path.stem, path, "media", path.parent, warnings, annotated=False
    )
