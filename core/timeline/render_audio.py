"""Audio regions -> one mono float32 signal whose sample 0 is the timeline's first frame.

Each source file is decoded once, in order, with PyAV (FFmpeg), resampled to the output rate and streamed
through in blocks: only the parts regions use are decoded (forward seeks skip the rest) and nothing holds a
whole file. Every region lands at its exact sample position: output sample ``k`` is timeline time ``k /
sample_rate``; a region starting at frame ``f`` covers samples from ``ceil(f * sample_rate / rate)`` (rational
arithmetic, no float accumulation), and one that starts between frames (after a clip trimmed on audio samples)
from ``ceil(start_seconds * sample_rate)``. Contributions are summed in float32 without clipping. Writing to a
file streams through a float32 WAV on disk (read-add-write per block), so memory stays flat however long the
timeline is.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import InputError, MissingMediaError
from ..progress import Progress
from .regions import AudioRegion, describe_missing, missing_media
from .timebase import Timebase

BLOCK_SECONDS = 8  # decoded audio handled per step (at the output rate)
SEEK_GAP_SECONDS = 20  # skip (seek over) unused source stretches longer than this
MAX_WAV_BYTES = 0xFFFFFFFF - 64


@dataclass
class RenderResult:
    """What ``render_audio`` produced. ``samples`` is the signal when rendering to memory (``out=None``)."""

    sample_rate: int
    num_samples: int
    samples: np.ndarray | None = None
    path: Path | None = None
    missing: list[dict] = field(default_factory=list)
    regions_rendered: int = 0
    sources_decoded: int = 0
    peak: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return self.num_samples / self.sample_rate


# ------------------------------------------------------------------------------------------------------------
# sample positions
# ------------------------------------------------------------------------------------------------------------


def sample_of_frame(frame: int, timebase: Timebase, sample_rate: int) -> int:
    """First output sample at or after the start of ``frame`` (exact: ceil(frame * sr / rate))."""
    num = frame * sample_rate * timebase.rate.denominator
    den = timebase.rate.numerator
    return -((-num) // den)


@dataclass
class _Placement:
    """One region mapped to output samples [k0, k1) and source samples j(k) = s + (k - p) * speed."""

    region: AudioRegion
    k0: int
    k1: int
    p: Fraction  # exact output sample position of the region start
    s: Fraction  # exact source sample position at the region start
    speed: Fraction
    shift: int = 0  # speed 1: j = k + shift
    channels: tuple[int, ...] | None = None  # channels within the audio stream that carries them

    def source_window(self) -> tuple[int, int]:
        if self.speed == 1:
            return self.k0 + self.shift, self.k1 + self.shift
        lo = self.s + (self.k0 - self.p) * self.speed
        hi = self.s + (self.k1 - self.p) * self.speed
        return math.floor(lo) - 1, math.ceil(hi) + 2


def _first_sample(seconds: Fraction, sample_rate: int) -> int:
    """First output sample at or after ``seconds`` (exact)."""
    return math.ceil(seconds * sample_rate)


def _placement(region: AudioRegion, sample_rate: int, lo: int, hi: int) -> _Placement | None:
    # exact rational positions (a clip after one trimmed on samples starts between frames); rounded only here,
    # when choosing samples
    start, end = region.start_seconds, region.end_seconds
    k0 = max(_first_sample(start, sample_rate), lo)
    k1 = min(_first_sample(end, sample_rate), hi)
    if k1 <= k0:
        return None
    p = start * sample_rate
    s = region.source_offset * sample_rate
    speed = Fraction(region.speed)
    shift = math.floor(s - p + Fraction(1, 2)) if speed == 1 else 0
    return _Placement(region, k0, k1, p, s, speed, shift, region.channels)


# ------------------------------------------------------------------------------------------------------------
# output sinks
# ------------------------------------------------------------------------------------------------------------


class _ArraySink:
    def __init__(self, n: int, offset: int = 0):
        self.data = np.zeros(n, dtype=np.float32)
        self.offset = offset

    def add(self, k: int, values: np.ndarray) -> None:
        i = k - self.offset
        self.data[i : i + len(values)] += values

    def close(self) -> float:
        return float(np.max(np.abs(self.data))) if len(self.data) else 0.0


def _wav_header(num_samples: int, sample_rate: int) -> bytes:
    data_bytes = num_samples * 4
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)  # IEEE float, mono
    fact = struct.pack("<I", num_samples)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + (8 + len(fmt)) + (8 + len(fact)) + 8 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class _WavSink:
    """A mono float32 WAV on disk, added to in place (a sparse file of zeros to start with)."""

    def __init__(self, path: Path, n: int, sample_rate: int):
        if n * 4 > MAX_WAV_BYTES:
            raise InputError(
                f"{n / sample_rate / 3600:.1f} hours at {sample_rate} Hz is over the 4 GiB WAV limit; "
                "use a lower --sample-rate"
            )
        self.path = path
        self.n = n
        self.tmp = path.with_name(path.name + ".part")
        self.handle = open(self.tmp, "w+b")
        header = _wav_header(n, sample_rate)
        self.handle.write(header)
        self.base = len(header)
        self.handle.truncate(self.base + n * 4)

    def add(self, k: int, values: np.ndarray) -> None:
        offset = self.base + k * 4
        self.handle.seek(offset)
        current = np.frombuffer(self.handle.read(len(values) * 4), dtype="<f4")
        self.handle.seek(offset)
        self.handle.write((current + values).astype("<f4", copy=False).tobytes())

    def close(self) -> float:
        peak = 0.0
        self.handle.flush()
        self.handle.seek(self.base)
        chunk = 1 << 20
        remaining = self.n
        while remaining > 0:
            count = min(chunk, remaining)
            block = np.frombuffer(self.handle.read(count * 4), dtype="<f4")
            if len(block):
                peak = max(peak, float(np.max(np.abs(block))))
            remaining -= count
        self.handle.close()
        os.replace(self.tmp, self.path)
        return peak

    def abort(self) -> None:
        try:
            self.handle.close()
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


# ------------------------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------------------------


def _open_audio(path: Path, clip: str):
    """(container, [audio streams]) or InputError naming the file and the clip."""
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # FFmpeg's errors come in many classes
        raise InputError(f"{path}: cannot decode the media of clip {clip!r} ({type(exc).__name__}: {exc})")
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        container.close()
        raise InputError(f"{path}: the media of clip {clip!r} has no audio stream")
    return container, streams


def _route(
    channels: tuple[int, ...] | None, layout: list[int]
) -> tuple[int, tuple[int, ...] | None, str | None]:
    """Source channels (numbered across all audio streams, as editors number a file's audio tracks: a camera
    file with four mono streams has channels 1-4) -> (stream index, channels within that stream, warning)."""
    if channels is None or len(layout) == 1:
        return 0, channels, None
    starts = [sum(layout[:i]) for i in range(len(layout))]

    def stream_of(c: int) -> int | None:
        for i, (start, count) in enumerate(zip(starts, layout)):
            if start <= c < start + count:
                return i
        return None

    first = stream_of(channels[0])
    if first is None:
        return 0, channels, None  # out of range: _mono reports it
    local = tuple(c - starts[first] for c in channels if stream_of(c) == first)
    warning = None
    if len(local) != len(channels):
        warning = (
            f"channels {[c + 1 for c in channels]} come from different audio streams; only those of stream "
            f"{first + 1} are mixed"
        )
    return first, local, warning


def _merge_spans(windows: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    spans: list[list[int]] = []
    for lo, hi in sorted(windows):
        if spans and lo <= spans[-1][1] + gap:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    return [(lo, hi) for lo, hi in spans]


def _decode_blocks(
    path: Path, sample_rate: int, spans: list[tuple[int, int]], clip: str, stream_index: int = 0, opened=None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first source sample index at ``sample_rate``, float32 array (channels, n)) covering ``spans``.

    Source sample index j is time j / sample_rate from the media's time 0 (its pts 0; AAC priming and edit
    lists are honoured through the decoder's pts). Each part of the file is decoded at most once; stretches
    between spans longer than SEEK_GAP_SECONDS are skipped by seeking forward.
    """
    import av

    container, streams = opened if opened is not None else _open_audio(path, clip)
    stream = streams[min(stream_index, len(streams) - 1)]
    block = BLOCK_SECONDS * sample_rate
    gap = SEEK_GAP_SECONDS * sample_rate
    try:
        span_i = 0
        first = True
        while span_i < len(spans):
            lo = spans[span_i][0]
            if not first or lo > 2 * sample_rate:
                target = max(0, lo - sample_rate)  # a second early: seeks land on packet boundaries
                try:
                    container.seek(
                        int(Fraction(target, sample_rate) / stream.time_base),
                        stream=stream,
                        backward=True,
                        any_frame=False,
                    )
                except av.error.FFmpegError:
                    if not first:
                        raise InputError(f"{path}: cannot seek in the media of clip {clip!r}")
            first = False
            resampler = av.AudioResampler(format="fltp", rate=sample_rate)
            position = None  # source sample index of the next resampled sample
            pending: list[np.ndarray] = []
            pending_start = 0
            pending_len = 0
            more_spans = False
            try:
                for frame in container.decode(stream):
                    if position is None:
                        if frame.pts is not None and frame.time_base is not None:
                            position = math.floor(
                                Fraction(frame.pts) * Fraction(frame.time_base) * sample_rate + Fraction(1, 2)
                            )
                        else:
                            position = 0
                        pending_start = position
                    for out in resampler.resample(frame):
                        array = out.to_ndarray()
                        pending.append(array if array.ndim == 2 else array[None, :])
                        pending_len += pending[-1].shape[1]
                        position += pending[-1].shape[1]
                    if pending_len >= block:
                        yield pending_start, _concat(pending)
                        pending, pending_start, pending_len = [], position, 0
                    while span_i < len(spans) and position >= spans[span_i][1]:
                        span_i += 1
                    if span_i >= len(spans):
                        break
                    if spans[span_i][0] > position + gap:
                        more_spans = True
                        break
                else:
                    for out in resampler.resample(None):
                        array = out.to_ndarray()
                        pending.append(array if array.ndim == 2 else array[None, :])
                        pending_len += pending[-1].shape[1]
            except av.error.FFmpegError as exc:
                raise InputError(f"{path}: decoding failed in clip {clip!r} ({exc})")
            if pending:
                yield pending_start, _concat(pending)
            if not more_spans:
                break
    finally:
        if opened is None:
            container.close()


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0].astype(np.float32, copy=False)
    channels = max(p.shape[0] for p in parts)
    if all(p.shape[0] == channels for p in parts):
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    # a layout change mid-stream: pad missing channels with silence
    fixed = [np.vstack([p, np.zeros((channels - p.shape[0], p.shape[1]), p.dtype)]) for p in parts]
    return np.concatenate(fixed, axis=1).astype(np.float32, copy=False)


def _mono(
    block: np.ndarray, channels: tuple[int, ...] | None, cache: dict, warn: list[str], clip: str, path: Path
) -> np.ndarray:
    key = channels
    if key in cache:
        return cache[key]
    count = block.shape[0]
    if channels is None or count == 1:
        mono = block[0] if count == 1 else block.mean(axis=0, dtype=np.float32)
    else:
        valid = [c for c in channels if 0 <= c < count]
        if len(valid) != len(channels):
            message = (
                f"clip {clip!r}: channel(s) {[c + 1 for c in channels]} requested but {path.name} has "
                f"{count}; using " + ("the available ones" if valid else "all channels")
            )
            if message not in warn:
                warn.append(message)
        if not valid:
            mono = block.mean(axis=0, dtype=np.float32)
        elif len(valid) == 1:
            mono = block[valid[0]]
        else:
            mono = block[valid].mean(axis=0, dtype=np.float32)
    cache[key] = mono
    return mono


# ------------------------------------------------------------------------------------------------------------
# mixing
# ------------------------------------------------------------------------------------------------------------


def _mix_source(
    path: Path, placements: list[_Placement], sample_rate: int, sink, warnings: list[str], progress_cb=None
) -> None:
    """Mix every placement of one file. Each audio stream the placements use is decoded once (one pass)."""
    clip = placements[0].region.clip_name
    container, streams = _open_audio(path, clip)
    layout = [max(1, s.codec_context.channels) for s in streams]
    groups: dict[int, list[_Placement]] = {}
    for pl in placements:
        index, local, warning = _route(pl.region.channels, layout)
        if warning and f"clip {pl.region.clip_name!r}: {warning}" not in warnings:
            warnings.append(f"clip {pl.region.clip_name!r}: {warning}")
        pl.channels = local
        groups.setdefault(index, []).append(pl)
    opened = (container, streams)
    try:
        for n, (index, group) in enumerate(sorted(groups.items())):

            def tick(fraction: float, n: int = n) -> None:
                if progress_cb is not None:
                    progress_cb((n + fraction) / len(groups))

            _mix_stream(path, group, sample_rate, sink, warnings, tick, index, opened if n == 0 else None)
    finally:
        container.close()


def _mix_stream(
    path: Path,
    placements: list[_Placement],
    sample_rate: int,
    sink,
    warnings: list[str],
    progress_cb,
    stream_index: int,
    opened,
) -> None:
    windows = [pl.source_window() for pl in placements]
    spans = _merge_spans([(max(lo, 0), hi) for lo, hi in windows if hi > 0], SEEK_GAP_SECONDS * sample_rate)
    if not spans:
        return
    order = sorted(range(len(placements)), key=lambda i: windows[i][0])
    active: list[int] = []
    next_i = 0
    tail: np.ndarray | None = None  # last source sample of the previous block (for interpolation)
    tail_index = None
    clip = placements[0].region.clip_name
    for start, block in _decode_blocks(path, sample_rate, spans, clip, stream_index, opened):
        end = start + block.shape[1]
        while next_i < len(order) and windows[order[next_i]][0] < end:
            active.append(order[next_i])
            next_i += 1
        active = [i for i in active if windows[i][1] > start - 1]
        cache: dict = {}
        for i in active:
            pl = placements[i]
            mono = _mono(block, pl.channels, cache, warnings, pl.region.clip_name, path)
            if pl.speed == 1:
                k_lo = max(pl.k0, start - pl.shift)
                k_hi = min(pl.k1, end - pl.shift)
                if k_hi <= k_lo:
                    continue
                values = mono[k_lo + pl.shift - start : k_hi + pl.shift - start]
            else:
                prev = None
                if tail is not None and tail_index == start - 1:
                    prev = float(_mono(tail, pl.channels, {}, [], pl.region.clip_name, path)[0])
                values, k_lo = _interpolated(pl, mono, start, end, prev)
                if values is None:
                    continue
            if pl.region.gain != 1.0:
                values = values * np.float32(pl.region.gain)
            sink.add(k_lo, values)
        tail = block[:, -1:] if block.shape[1] else None
        tail_index = end - 1
        if progress_cb is not None:
            progress_cb(min(1.0, (end - spans[0][0]) / max(1, spans[-1][1] - spans[0][0])))


def _interpolated(
    pl: _Placement, mono: np.ndarray, start: int, end: int, prev
) -> tuple[np.ndarray | None, int]:
    """Samples of a speed-changed region whose source positions fall in this block (linear interpolation).
    ``prev`` is the previous block's last mono sample (source index start - 1) or None."""
    if prev is not None:
        x = np.concatenate([np.asarray([prev], dtype=np.float32), mono])
        base = start - 1
    else:
        x = mono
        base = start
    last = base + len(x) - 1  # need j < last so that x[j + 1] exists
    k_lo = max(pl.k0, math.ceil(pl.p + (base - pl.s) / pl.speed))
    k_hi = min(pl.k1, math.ceil(pl.p + (last - pl.s) / pl.speed))
    if k_hi <= k_lo:
        return None, 0
    k = np.arange(k_lo, k_hi, dtype=np.float64)
    j = float(pl.s - pl.p * pl.speed - base) + k * float(pl.speed)
    i0 = np.floor(j).astype(np.int64)
    np.clip(i0, 0, len(x) - 2, out=i0)
    frac = (j - i0).astype(np.float32)
    values = x[i0] * (1 - frac) + x[i0 + 1] * frac
    return values.astype(np.float32, copy=False), k_lo


def _render(
    regions: list[AudioRegion],
    sample_rate: int,
    lo: int,
    hi: int,
    sink,
    warnings: list[str],
    progress: Progress | None = None,
    stage: str = "render",
) -> tuple[int, int]:
    by_source: dict[Path, list[_Placement]] = {}
    for region in regions:
        if region.source_path is None:
            continue
        pl = _placement(region, sample_rate, lo, hi)
        if pl is not None:
            by_source.setdefault(region.source_path, []).append(pl)
        for w in region.warnings:
            if w not in warnings:
                warnings.append(w)
    rendered = 0
    count = len(by_source)
    for index, (path, placements) in enumerate(by_source.items()):
        tick = None
        if progress is not None:

            def tick(fraction: float, index: int = index) -> None:  # also where a cancel request lands
                progress.update(stage, (index + fraction) / count)

            tick(0.0)
        _mix_source(path, placements, sample_rate, sink, warnings, tick)
        rendered += len(placements)
    if progress is not None:
        progress.update(stage, 1.0)
    return rendered, count


def render_audio(
    regions: Iterable[AudioRegion],
    duration_frames: int,
    timebase: Timebase,
    sample_rate: int = 16000,
    out: str | os.PathLike | None = None,
    allow_missing: bool = False,
    progress: Progress | None = None,
    progress_stage: str = "render",
) -> RenderResult:
    """Mix ``regions`` into one mono float32 signal of ``duration_frames`` timeline frames at ``sample_rate``.

    Sample 0 is the timeline's first frame. ``out=None`` returns the samples in ``RenderResult.samples``; a
    path writes a mono float32 WAV there (streamed, bounded memory). Missing media raises MissingMediaError
    listing every missing file with clip name and timecode, unless ``allow_missing`` (their regions are silent
    and listed in ``RenderResult.missing``). ``progress`` gets ``progress_stage`` updates per decoded block (a
    cancel request raises ``Cancelled`` there and a partly written WAV is removed).
    """
    regions = list(regions)
    if sample_rate < 1000 or sample_rate > 384000:
        raise InputError(f"sample rate {sample_rate} Hz is out of range (1000-384000)")
    if duration_frames < 0:
        raise InputError(f"negative duration {duration_frames} frames")
    missing = missing_media(regions)
    if missing and not allow_missing:
        raise MissingMediaError(describe_missing(missing), missing)
    missing_paths = {m["path"] for m in missing}
    playable = [r for r in regions if r.source_path is not None and str(r.source_path) not in missing_paths]
    n = sample_of_frame(duration_frames, timebase, sample_rate)
    warnings: list[str] = []
    if missing:
        warnings.append(
            "rendered silence for missing media: "
            + describe_missing(missing).split(": ", 1)[1].split(". Relink")[0]
        )
    if out is None:
        sink = _ArraySink(n)
        rendered, sources = _render(playable, sample_rate, 0, n, sink, warnings, progress, progress_stage)
        peak = sink.close()
        return RenderResult(sample_rate, n, sink.data, None, missing, rendered, sources, peak, warnings)
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise InputError(f"{path.parent}: output folder does not exist")
    sink = _WavSink(path, n, sample_rate)
    try:
        rendered, sources = _render(playable, sample_rate, 0, n, sink, warnings, progress, progress_stage)
    except BaseException:
        sink.abort()
        raise
    peak = sink.close()
    return RenderResult(sample_rate, n, None, path, missing, rendered, sources, peak, warnings)


def render_span(regions: Iterable[AudioRegion], lo: int, hi: int, sample_rate: int = 16000) -> np.ndarray:
    """Samples ``lo``..``hi``-1 (timeline sample numbering) of the mix ``render_audio`` makes, decoding only
    what that span needs: for a stage that reads a long timeline a piece at a time instead of holding all of
    it. Missing media raises MissingMediaError."""
    regions = list(regions)
    missing = missing_media(regions)
    if missing:
        raise MissingMediaError(describe_missing(missing), missing)
    hi = max(lo, hi)
    sink = _ArraySink(hi - lo, lo)
    _render([r for r in regions if r.source_path is not None], sample_rate, lo, hi, sink, [])
    return sink.data


def region_sample_range(region: AudioRegion, sample_rate: int) -> tuple[int, int]:
    """[first, end) output samples (timeline sample numbering) a region covers at ``sample_rate``."""
    return _first_sample(region.start_seconds, sample_rate), _first_sample(region.end_seconds, sample_rate)


def decode_region(region: AudioRegion, sample_rate: int = 16000) -> np.ndarray:
    """One region's audio alone: mono float32, sample 0 = timeline sample ``region_sample_range(...)[0]`` (the
    first output sample at or after the region's start frame), same placement and gain as ``render_audio``.
    Decodes only the part of the file the region plays (seeks to it). Raises MissingMediaError /
    InputError."""
    missing = missing_media([region])
    if missing:
        raise MissingMediaError(describe_missing(missing), missing)
    lo, hi = region_sample_range(region, sample_rate)
    sink = _ArraySink(max(0, hi - lo), lo)
    _render([region], sample_rate, lo, hi, sink, [])
    return sink.data
