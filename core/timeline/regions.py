"""Timeline -> audio regions: which part of which file sounds at which timeline frames.

Every region is in integer frames from the timeline's first frame. Source offsets are exact seconds into the
file with the media's own timecode removed. Clips inside nested sequences are clamped to the nest's trim.
Ranges come from ``Track.range_of_all_children()`` (one pass per track, never a per-clip
``transformed_time_range`` walk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import opentimelineio as otio

from ..errors import TimelineError
from .otio_time import exact_rate, to_frames, to_seconds
from .timebase import Timebase

if TYPE_CHECKING:  # a timeline loaded by adapters/ (core never reads files itself)
    from ..model import LoadedTimeline

NS = "captionbridge"
_INF = 1 << 62


@dataclass(frozen=True)
class AudioRegion:
    """One audible stretch of one clip on one audio track.

    ``timeline_start_frame``/``timeline_end_frame``: [start, end) in frames from the timeline's first frame.
    ``source_offset``: exact seconds into ``source_path`` (media timecode removed) heard at
    ``timeline_start_frame``. ``speed``: constant playback speed (2 = twice as fast: the region consumes
    ``duration * speed`` of source). ``channels``: 0-based source channels to mix (None: all channels,
    averaged). ``gain``: linear clip level. ``source_path`` is None when the clip has no media reference at
    all (counted as missing media). ``start_exact``/``end_exact``: exact seconds from the timeline's first
    frame where the clip really starts/ends, when that is not on a frame boundary (a clip after one trimmed on
    audio samples, ranges at rate 48000); None when it is. ``start_seconds``/``end_seconds`` (and
    ``source_offset``, heard at ``start_seconds``) use them, so a sample-exact render places every clip at the
    exact rational sum of the OTIO ranges.
    """

    clip_name: str
    track_name: str
    track_index: int
    timeline_start_frame: int
    timeline_end_frame: int
    source_path: Path | None
    source_offset: Fraction
    timebase: Timebase
    speed: Fraction = Fraction(1)
    channels: tuple[int, ...] | None = None
    gain: float = 1.0
    source_url: str = ""
    media_start: Fraction = Fraction(0)
    nest_path: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    start_exact: Fraction | None = None
    end_exact: Fraction | None = None

    @property
    def track_label(self) -> str:
        return f"A{self.track_index}"

    @property
    def duration_frames(self) -> int:
        return self.timeline_end_frame - self.timeline_start_frame

    @property
    def start_seconds(self) -> Fraction:
        if self.start_exact is not None:
            return self.start_exact
        return self.timebase.seconds(self.timeline_start_frame)

    @property
    def end_seconds(self) -> Fraction:
        if self.end_exact is not None:
            return self.end_exact
        return self.timebase.seconds(self.timeline_end_frame)

    @property
    def source_duration(self) -> Fraction:
        """Seconds of source the region plays."""
        return (self.end_seconds - self.start_seconds) * self.speed

    @property
    def start_timecode(self) -> str:
        return self.timebase.timecode(self.timeline_start_frame)

    def to_dict(self) -> dict:
        return {
            "clip": self.clip_name,
            "track": self.track_label,
            "track_name": self.track_name,
            "start_frame": self.timeline_start_frame,
            "end_frame": self.timeline_end_frame,
            "start_timecode": self.start_timecode,
            "source": str(self.source_path) if self.source_path else None,
            "source_offset": float(self.source_offset),
            "source_offset_exact": f"{self.source_offset.numerator}/{self.source_offset.denominator}",
            "speed": float(self.speed),
            "channels": list(self.channels) if self.channels is not None else None,
            "gain": self.gain,
            "nested_in": list(self.nest_path),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class SkippedClip:
    """A clip on a selected audio track that makes no sound (disabled, muted track, unsupported effect)."""

    clip_name: str
    track_label: str
    timeline_start_frame: int
    reason: str


# ------------------------------------------------------------------------------------------------------------
# track selection
# ------------------------------------------------------------------------------------------------------------


def audio_tracks(loaded: LoadedTimeline) -> list[tuple[int, otio.schema.Track]]:
    """(1-based audio track number as the editor shows it, track) for the top-level audio tracks, in order.

    Premiere writes a stereo track to xmeml as an exploded pair (one mono track per channel); both halves keep
    the editor's number, so ``--tracks A2`` means the user's second track, both channels."""
    out = []
    number = 0
    for track in loaded.timeline.tracks:
        if isinstance(track, otio.schema.Track) and track.kind == otio.schema.TrackKind.Audio:
            exploded = _ns_meta(track, loaded.annotated).get("exploded")
            index = int(exploded["index"]) if exploded is not None and "index" in exploded else 0
            if index == 0 or number == 0:
                number += 1
            out.append((number, track))
    return out


def video_tracks(loaded: LoadedTimeline) -> list[otio.schema.Track]:
    return [
        t
        for t in loaded.timeline.tracks
        if isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Video
    ]


def parse_track_selection(selection: str | Iterable[str] | None, loaded: LoadedTimeline) -> set[int] | None:
    """ "A1,A2" (or track names as the editor shows them) -> set of audio track indexes. None selects all."""
    if selection is None:
        return None
    items = [s.strip() for s in (selection.split(",") if isinstance(selection, str) else selection)]
    items = [s for s in items if s]
    if not items:
        return None
    tracks = audio_tracks(loaded)
    by_name = {(t.name or "").strip().lower(): i for i, t in tracks if t.name}
    chosen: set[int] = set()
    for item in items:
        key = item.lower()
        if len(key) > 1 and key[0] == "a" and key[1:].isdigit():
            index = int(key[1:])
            if 1 <= index <= len(tracks):
                chosen.add(index)
                continue
        elif key.isdigit() and 1 <= int(key) <= len(tracks):
            chosen.add(int(key))
            continue
        if key in by_name:
            chosen.add(by_name[key])
            continue
        labels = dict.fromkeys(
            f"A{i}" + (f" ({t.name})" if t.name and t.name != f"A{i}" else "") for i, t in tracks
        )
        available = ", ".join(labels)
        raise TimelineError(
            f"no audio track {item!r} in this timeline; it has: {available or 'no audio tracks'}"
        )
    return chosen


# ------------------------------------------------------------------------------------------------------------
# media timecode origin
# ------------------------------------------------------------------------------------------------------------

_TC_CACHE: dict[tuple, Fraction | None] = {}


def media_timecode_seconds(path: Path) -> Fraction | None:
    """The start timecode a media file carries, as seconds since midnight: a WAV's BWF ``time_reference``
    (samples) or a ``timecode`` tag (QuickTime/MXF, counted at the video rate). None when the file says
    nothing."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)  # a re-recorded/replaced file is probed again
    if key in _TC_CACHE:
        return _TC_CACHE[key]
    result = None
    try:
        import av

        with av.open(str(path)) as container:
            tags = {k.lower(): v for k, v in container.metadata.items()}
            audio = next((s for s in container.streams if s.type == "audio"), None)
            if "time_reference" in tags and audio is not None and audio.codec_context.sample_rate:
                result = Fraction(int(tags["time_reference"]), audio.codec_context.sample_rate)
            else:
                tc = tags.get("timecode")
                rate = None
                for stream in container.streams:
                    stags = {k.lower(): v for k, v in stream.metadata.items()}
                    tc = tc or stags.get("timecode")
                    if stream.type == "video" and stream.average_rate:
                        rate = exact_rate(float(stream.average_rate))
                if tc and rate:
                    drop = ";" in tc
                    frames = Timebase(rate, 0, drop and rate.denominator == 1001).frame_from_timecode(
                        tc, absolute=False
                    )
                    result = Fraction(frames) / rate
    except Exception:  # unreadable files are reported when rendering; no timecode here
        result = None
    _TC_CACHE[key] = result
    return result


# ------------------------------------------------------------------------------------------------------------
# regions
# ------------------------------------------------------------------------------------------------------------


@dataclass
class _Walk:
    loaded: LoadedTimeline
    rate: Fraction
    regions: list[AudioRegion] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)
    seen_nests: set = field(default_factory=set)
    paths: dict = field(default_factory=dict)  # target_url -> Path
    origins: dict = field(default_factory=dict)  # (path, start value, start rate) -> media origin seconds
    exact: tuple[Fraction, Fraction] | None = (
        None  # exact [start, end) seconds of the item on_clip is called for
    )


_ONE = Fraction(1)
_META_KEYS = ("channels", "gain", "warnings", "unsupported", "nest_output_channel", "exploded")


def _ns_meta(item, annotated: bool = True):
    """Our metadata namespace of an item as a plain dict (empty when absent)."""
    if not annotated:
        return {}
    md = item.metadata
    if not md or NS not in md:
        return {}
    meta = md[NS]
    if not hasattr(meta, "keys"):
        return {}
    # A plain dict of the keys we read. On OTIO's AnyDictionary a miss or the end of an iteration costs a C++
    # exception (~0.1 ms): look up the usual keys first and stop once every key present has been found.
    remaining = len(meta)
    out = {}
    for key in _META_KEYS:
        if remaining <= 0:
            break
        if key in meta:
            value = meta[key]
            if hasattr(value, "__len__") and not isinstance(value, str) and not hasattr(value, "keys"):
                value = [value[i] for i in range(len(value))]
            out[key] = value
            remaining -= 1
    return out


def _speed_of(item, meta=None) -> tuple[Fraction, list[str], str | None]:
    """(constant speed, warnings, reason it cannot play) from an item's time effects."""
    speed = _ONE
    warnings: list[str] = []
    meta = _ns_meta(item) if meta is None else meta
    unsupported = meta.get("unsupported") if meta else None
    if unsupported:
        return speed, warnings, f"{unsupported} playback is not supported"
    effects = item.effects
    if not effects:
        return speed, warnings, None
    name = item.name or "clip"
    for effect in effects:
        if isinstance(effect, otio.schema.FreezeFrame) or (
            isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar == 0
        ):
            return speed, warnings, "freeze frame (no audio)"
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar = Fraction(effect.time_scalar).limit_denominator(100000)
            if scalar < 0:
                return speed, warnings, "reversed playback is not supported"
            speed *= scalar
        elif isinstance(effect, otio.schema.TimeEffect):
            warnings.append(
                f"clip {name!r}: time effect {effect.effect_name or effect.name!r} is not constant "
                "speed; its audio plays at its base speed"
            )
    return speed, warnings, None


def _media_origin(ref, path: Path | None, clip_start: Fraction) -> tuple[Fraction, list[str]]:
    """Seconds to subtract from a clip's source time to get seconds into the file."""
    if ref is not None and ref.available_range is not None:
        return to_seconds(ref.available_range.start_time), []
    if path is None or not path.exists():
        return Fraction(0), []
    tc = media_timecode_seconds(path)
    if tc is None:
        return Fraction(0), []
    if clip_start + Fraction(1, 10) < tc:
        # source counted from 0, not from the media timecode
        return Fraction(0), []
    return tc, []


def _clip_region(
    walk: _Walk,
    clip: otio.schema.Clip,
    track_index: int,
    track_name: str,
    start: int,
    end: int,
    cs: int,
    ce: int,
    nest_path: tuple[str, ...],
    speed: Fraction,
    outer_warnings: list[str],
) -> None:
    name = clip.name or "clip"
    meta = _ns_meta(clip, walk.loaded.annotated)
    clip_speed, warnings, problem = _speed_of(clip, meta)
    if problem:
        walk.skipped.append(SkippedClip(name, f"A{track_index}", cs, problem))
        walk.loaded.warnings.append(
            f"clip {name!r} at {walk.loaded.timebase.timecode(cs)}: {problem}; left silent"
        )
        return
    if clip_speed != 1:
        speed = speed * clip_speed
    ref = clip.media_reference
    if isinstance(ref, otio.schema.GeneratorReference):
        walk.skipped.append(SkippedClip(name, f"A{track_index}", cs, "generator (no audio)"))
        return
    url = getattr(ref, "target_url", "") or ""
    path = None
    if url:
        path = walk.paths.get(url)
        if path is None:
            path = walk.paths[url] = walk.loaded.resolve_media_path(url)
    trimmed = clip.source_range or clip.trimmed_range()
    clip_start = to_seconds(trimmed.start_time)
    external = ref if isinstance(ref, otio.schema.ExternalReference) else None
    avail = external.available_range if external is not None else None
    key = (path, avail.start_time.value, avail.start_time.rate) if avail is not None else (path, None, None)
    origin = walk.origins.get(key)
    if origin is None or avail is None:
        origin, more = _media_origin(external, path, clip_start)
        walk.origins[key] = origin
        warnings.extend(more)
    head = Fraction(cs - start) / walk.rate
    offset = clip_start - origin + head * speed
    start_exact = end_exact = None
    if walk.exact is not None:  # the clip's own edges, where they are not on a frame (a nest's bounds are)
        if cs == start and walk.exact[0] != Fraction(cs) / walk.rate:
            start_exact = walk.exact[0]
        if ce == end and walk.exact[1] != Fraction(ce) / walk.rate:
            end_exact = walk.exact[1]
    if offset < 0:
        warnings.append(
            f"clip {name!r}: its source starts {float(-offset):.3f} s before the media; that part is silent"
        )
    if meta and meta.get("warnings"):
        warnings = [str(w) for w in meta["warnings"]] + warnings
    channels = meta.get("channels") if meta else None
    gain = meta.get("gain", 1.0) if meta else 1.0
    walk.regions.append(
        AudioRegion(
            clip_name=name,
            track_name=track_name,
            track_index=track_index,
            timeline_start_frame=cs,
            timeline_end_frame=ce,
            source_path=path,
            source_offset=offset,
            timebase=walk.loaded.timebase,
            speed=speed,
            channels=tuple(int(c) for c in channels) if channels is not None else None,
            gain=float(gain),
            source_url=url,
            media_start=origin,
            nest_path=nest_path,
            warnings=tuple(outer_warnings + warnings),
            start_exact=start_exact,
            end_exact=end_exact,
        )
    )


def _walk_track(
    walk: _Walk,
    track,
    kind: str,
    track_index: int,
    track_name: str,
    shift: int,
    lo: int,
    hi: int,
    nest_path: tuple[str, ...],
    speed: Fraction,
    warnings: list[str],
    on_clip,
) -> None:
    if not track.enabled:
        return
    ranges = track.range_of_all_children()
    for child in track:
        if isinstance(child, (otio.schema.Gap, otio.schema.Transition)):
            continue
        r = ranges[child]
        start = to_frames(r.start_time, walk.rate) + shift
        end = start + to_frames(r.duration, walk.rate)
        exact_start = to_seconds(r.start_time) + Fraction(shift) / walk.rate
        walk.exact = (exact_start, exact_start + to_seconds(r.duration))
        cs, ce = max(start, lo), min(end, hi)
        if ce <= cs:
            continue
        name = child.name or type(child).__name__
        if not child.enabled:
            walk.skipped.append(SkippedClip(name, f"{kind[0]}{track_index}", cs, "disabled"))
            continue
        if isinstance(child, otio.schema.Clip):
            on_clip(child, track_index, track_name, start, end, cs, ce, nest_path, speed, warnings)
        elif isinstance(child, (otio.schema.Stack, otio.schema.Track)):
            _walk_nest(
                walk, child, kind, track_index, track_name, start, cs, ce, nest_path, speed, warnings, on_clip
            )


def _walk_nest(
    walk: _Walk,
    nest,
    kind: str,
    track_index: int,
    track_name: str,
    start: int,
    cs: int,
    ce: int,
    nest_path: tuple[str, ...],
    speed: Fraction,
    warnings: list[str],
    on_clip,
) -> None:
    name = nest.name or "nested sequence"
    meta = nest.metadata.get(NS, {}) if nest.metadata else {}
    if kind == "Audio" and hasattr(meta, "get") and meta.get("nest_output_channel") is not None:
        # xmeml: a stereo nest sits on two outer tracks (one per output channel); mixed to mono it plays once.
        key = (name, to_frames(nest.trimmed_range().start_time, walk.rate), start, ce - cs)
        if key in walk.seen_nests:
            return
        walk.seen_nests.add(key)
    nest_speed, more, problem = _speed_of(nest)
    if problem:
        walk.skipped.append(SkippedClip(name, f"{kind[0]}{track_index}", cs, problem))
        return
    if nest_speed != 1:
        more.append(f"nested sequence {name!r}: speed changes on a nest are not supported; played at 100 %")
    trim_start = to_frames(nest.trimmed_range().start_time, walk.rate)
    inner_shift = start - trim_start
    tracks = (
        [nest]
        if isinstance(nest, otio.schema.Track)
        else [t for t in nest if isinstance(t, otio.schema.Track) and t.kind == kind]
    )
    for t in tracks:
        _walk_track(
            walk,
            t,
            kind,
            track_index,
            track_name,
            inner_shift,
            cs,
            ce,
            nest_path + (name,),
            speed,
            warnings + more,
            on_clip,
        )


def audio_regions(
    loaded: LoadedTimeline, tracks: str | Iterable[str] | None = None, *, require_audio: bool = False
) -> list[AudioRegion]:
    """Every enabled, audible audio clip on the selected tracks (``"A1,A2"``; None: all) as AudioRegions,
    sorted by timeline position. Disabled clips, muted tracks and clips that cannot play are left out (see
    ``skipped_clips``). ``require_audio`` raises TimelineError when nothing is audible."""
    return regions_and_skipped(loaded, tracks, require_audio=require_audio)[0]


def regions_and_skipped(
    loaded: LoadedTimeline, tracks: str | Iterable[str] | None = None, *, require_audio: bool = False
) -> tuple[list[AudioRegion], list[SkippedClip]]:
    """``audio_regions`` and ``skipped_clips`` from one walk of the timeline."""
    regions, skipped = _collect(loaded, tracks)
    if require_audio and not regions:
        which = f" on tracks {tracks}" if tracks else ""
        raise TimelineError(
            f"{loaded.path.name}: no audible audio clips{which} (all tracks empty, muted or disabled)"
        )
    return regions, skipped


def skipped_clips(loaded: LoadedTimeline, tracks: str | Iterable[str] | None = None) -> list[SkippedClip]:
    """Clips on the selected audio tracks that make no sound, with the reason (for ``inspect`` and
    reports)."""
    return _collect(loaded, tracks)[1]


def _collect(loaded: LoadedTimeline, tracks) -> tuple[list[AudioRegion], list[SkippedClip]]:
    selected = parse_track_selection(tracks, loaded)
    walk = _Walk(loaded, loaded.timebase.rate)

    def on_clip(clip, index, tname, start, end, cs, ce, nest_path, speed, warnings):
        _clip_region(walk, clip, index, tname, start, end, cs, ce, nest_path, speed, list(warnings))

    for index, track in audio_tracks(loaded):
        if selected is not None and index not in selected:
            continue
        if not track.enabled:
            walk.skipped.extend(
                SkippedClip(c.name or "clip", f"A{index}", 0, "track muted")
                for c in track
                if isinstance(c, (otio.schema.Clip, otio.schema.Stack))
            )
            continue
        _walk_track(
            walk, track, "Audio", index, track.name or f"A{index}", 0, 0, _INF, (), Fraction(1), [], on_clip
        )
    walk.regions.sort(key=lambda r: (r.timeline_start_frame, r.track_index, r.timeline_end_frame))
    return walk.regions, walk.skipped


def video_cut_points(loaded: LoadedTimeline) -> list[int]:
    """Frames (from the timeline's first frame) where the picture cuts: every boundary between enabled video
    items (clip/clip, clip/gap) on enabled video tracks, nests expanded and clamped to their trims. Excludes
    frame 0 and the timeline's end. Text and title generators (captions burnt in as titles, e.g. our own xmeml
    title tracks) are overlays, not shot changes, and are left out."""
    walk = _Walk(loaded, loaded.timebase.rate)
    points: set[int] = set()

    def on_clip(clip, index, tname, start, end, cs, ce, nest_path, speed, warnings):
        ref = clip.media_reference
        if isinstance(ref, otio.schema.GeneratorReference) and any(
            word in (ref.generator_kind or "").lower() for word in ("text", "title", "caption", "subtitle")
        ):
            return
        points.add(cs)
        points.add(ce)

    for i, track in enumerate(video_tracks(loaded), start=1):
        _walk_track(walk, track, "Video", i, track.name or f"V{i}", 0, 0, _INF, (), Fraction(1), [], on_clip)
    end = loaded.duration_frames
    return sorted(p for p in points if 0 < p < end)


def missing_media(regions: Iterable[AudioRegion]) -> list[dict]:
    """Regions whose media is not on disk: one entry per clip use, with clip name, path, track and
    timecode."""
    out = []
    exists: dict[Path, bool] = {}
    for r in regions:
        if r.source_path is not None:
            if r.source_path not in exists:
                exists[r.source_path] = r.source_path.is_file()
            if exists[r.source_path]:
                continue
        out.append(
            {
                "clip": r.clip_name,
                "path": str(r.source_path) if r.source_path else None,
                "url": r.source_url,
                "track": r.track_label,
                "start_frame": r.timeline_start_frame,
                "timecode": r.start_timecode,
            }
        )
    return out


def describe_missing(missing: list[dict], limit: int = 20, advice: bool = True) -> str:
    """One line naming every missing file (clip, track, timecode), e.g. for MissingMediaError.
    ``advice=False`` leaves out the closing "Relink ... or pass --allow-missing" for callers that give their
    own."""
    by_path: dict[str | None, list[dict]] = {}
    for m in missing:
        by_path.setdefault(m["path"], []).append(m)
    parts = []
    for path, uses in list(by_path.items())[:limit]:
        first = uses[0]
        where = f"clip {first['clip']!r} on {first['track']} at {first['timecode']}"
        if len(uses) > 1:
            where += f" and {len(uses) - 1} more use{'s' if len(uses) > 2 else ''}"
        parts.append(f"{path or '(no media reference)'} ({where})")
    if len(by_path) > limit:
        parts.append(f"... and {len(by_path) - limit} more files")
    files = len(by_path)
    return (
        f"{files} media file{'s are' if files != 1 else ' is'} missing: "
        + "; ".join(parts)
        + (". Relink or copy the media, or pass --allow-missing to render silence for them" if advice else "")
    )


def timeline_duration_frames(loaded: LoadedTimeline) -> int:
    return loaded.duration_frames


__all__ = [
    "AudioRegion",
    "SkippedClip",
    "audio_regions",
    "regions_and_skipped",
    "skipped_clips",
    "video_cut_points",
    "missing_media",
    "describe_missing",
    "parse_track_selection",
    "audio_tracks",
    "media_timecode_seconds",
]
