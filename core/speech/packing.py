"""Packing short spans into shared Whisper windows.

Whisper pads every window to 30 s, so a timeline of many short clips pays a full encoder pass (and a decode
start) per clip. The transcription engine instead joins the speech of several short spans (cache misses of
one job: same language, same settings, decoded locally) into one stretch of up to ``WINDOW`` seconds, with
``SPAN_GAP`` seconds of silence between spans and the engine's usual short silence between the speech chunks
of one span, and decodes that stretch once. This module holds what does not need the model: which spans may
be packed, how the joined audio is laid out, and which span each recognised word belongs to.

A word belongs to the span whose speech holds most of it; a word lying entirely in an inserted silence goes
to the nearest speech chunk. It is then mapped back (and clipped) within that span only, so it can never
cross into another span or leave its own span's range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WINDOW = 29.0  # seconds of joined audio per pack (a Whisper window is 30 s; a little slack for its seek)
SPAN_GAP = 0.6  # seconds of silence between two spans' speech in a pack
WITHOUT_TIMESTAMPS = False  # decode packs without Whisper's timestamp tokens (the aligner times the words)
SPAN_MAX = 60.0  # seconds: a longer span is never packed (its samples are held while its pack fills)
HOLD_MAX = 300.0  # seconds of span audio one pack may hold while it fills (memory stays bounded)
OPEN_PACKS = 4  # packs filled at once: a span goes to the first one it fits (first fit), the fullest is
# decoded when none has room


@dataclass
class Piece:
    """One speech chunk of one span, placed in the joined audio (seconds)."""

    joined_start: float
    joined_end: float
    source_start: float  # where the chunk starts in its span's own audio
    member: int  # which member of the pack


@dataclass
class Pack:
    """Spans (their samples and speech chunks) waiting to be decoded together."""

    members: list = field(default_factory=list)  # caller's items, in order
    samples: list = field(default_factory=list)  # np.ndarray per member (16 kHz mono)
    chunks: list = field(default_factory=list)  # [(start, end) samples] per member
    seconds: float = 0.0  # joined length so far
    held: float = 0.0  # seconds of span audio held

    def __len__(self) -> int:
        return len(self.members)


def decoding_id() -> str:
    """How packs are decoded (part of a packed span's transcript-cache key)."""
    return "packed" + (":without_timestamps" if WITHOUT_TIMESTAMPS else "")


def joined_seconds(chunks: list[tuple[int, int]], sample_rate: int, join_gap: float) -> float:
    """How long a span's speech is once joined (chunks plus the silences between them)."""
    if not chunks:
        return 0.0
    return sum(b - a for a, b in chunks) / sample_rate + join_gap * (len(chunks) - 1)


def packable(span_seconds: float, speech_seconds: float) -> bool:
    """Whether a span may share a window: short itself, and its joined speech fits one window."""
    return 0.0 < speech_seconds <= WINDOW and span_seconds <= SPAN_MAX


def fits(pack: Pack, speech_seconds: float, span_seconds: float = 0.0) -> bool:
    """Whether a span of this much joined speech (and this long) still fits the pack."""
    if not pack.members:
        return speech_seconds <= WINDOW
    return pack.seconds + SPAN_GAP + speech_seconds <= WINDOW and pack.held + span_seconds <= HOLD_MAX


def place(packs: list[Pack], speech_seconds: float, span_seconds: float) -> tuple[Pack, Pack | None]:
    """First fit: the open pack a span goes into (a new one when none has room), and the pack to decode
    now to keep at most ``OPEN_PACKS`` open (the fullest; None when there is room). ``packs`` is updated."""
    for pack in packs:
        if fits(pack, speech_seconds, span_seconds):
            return pack, None
    full = None
    if len(packs) >= OPEN_PACKS:
        full = max(packs, key=lambda p: p.seconds)
        packs.remove(full)
    packs.append(Pack())
    return packs[-1], full


def add(pack: Pack, member, samples: np.ndarray, chunks: list[tuple[int, int]], speech_seconds: float):
    pack.seconds += (SPAN_GAP if pack.members else 0.0) + speech_seconds
    pack.held += len(samples) / 16000
    pack.members.append(member)
    pack.samples.append(samples)
    pack.chunks.append(chunks)


def layout(pack: Pack, sample_rate: int, join_gap: float) -> tuple[np.ndarray, list[Piece]]:
    """The joined audio of a pack and where each speech chunk sits in it."""
    span_gap = np.zeros(int(round(SPAN_GAP * sample_rate)), np.float32)
    chunk_gap = np.zeros(int(join_gap * sample_rate), np.float32)
    parts: list[np.ndarray] = []
    pieces: list[Piece] = []
    cursor = 0
    for m, (samples, chunks) in enumerate(zip(pack.samples, pack.chunks)):
        for j, (a, b) in enumerate(chunks):
            if parts:
                gap = chunk_gap if j else span_gap
                parts.append(gap)
                cursor += len(gap)
            parts.append(np.asarray(samples[a:b], dtype=np.float32))
            pieces.append(Piece(cursor / sample_rate, (cursor + b - a) / sample_rate, a / sample_rate, m))
            cursor += b - a
    joined = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return joined, pieces


def owner(pieces: list[Piece], start: float, end: float) -> int:
    """The pack member a word (joined seconds) belongs to: the one whose chunk holds most of it; a word
    entirely in an inserted silence goes to the nearest chunk."""
    best, overlap = 0, -1.0
    for k, p in enumerate(pieces):
        ov = min(end, p.joined_end) - max(start, p.joined_start)
        if ov > overlap:
            best, overlap = k, ov
    if overlap <= 0:
        mid = (start + end) / 2
        best = min(
            range(len(pieces)),
            key=lambda k: min(abs(mid - pieces[k].joined_start), abs(mid - pieces[k].joined_end)),
        )
    return pieces[best].member


def members_in(pieces: list[Piece], start: float, end: float) -> list[int]:
    """Every pack member whose speech a stretch (joined seconds) overlaps, in order; the owner alone when it
    overlaps none (it lies in an inserted silence). A segment dropped as a likely hallucination is reported to
    each of them: it may have held words of any."""
    hit = sorted({p.member for p in pieces if min(end, p.joined_end) > max(start, p.joined_start)})
    return hit or [owner(pieces, start, end)]
