"""Cue in/out times in integer frames: speech-synchronous, readable, chained, and clear of shot changes.

Given each cue's speech span (first word's first frame, last word's end frame) and its character count, the
rules are applied in this order:

1. in-time on the first frame of speech, moved by the shot-change rules (snap to a cut 1-8 frames later, or to
   12 frames before a cut 9-11 frames later);
2. out-time up to ``max_trail_frames`` after the end of speech, where the next cue leaves room;
3. minimum duration extended into the silence after the cue; reading speed extended the same way, up to
   ``max_linger`` past speech;
4. gaps of ``chain_gap_frames`` or fewer closed to exactly ``min_gap_frames`` ("chaining");
5. out-times near a cut moved to 2 frames before it, when the cue keeps its minimum duration;
6. a final forward pass that *guarantees* the hard rules: no overlap, gap >= ``min_gap_frames``, duration
   within bounds. When speech is too dense for that, a cue starts late rather than overlapping its neighbour;
7. with ``end_frame`` (the timeline's or the audio's last frame, exclusive), a backward pass so that no cue
   ends after it: the last cue is cut there and starts earlier, into the silence before it, to keep its
   minimum duration where it can.

``settle_word_frames`` does the same for words: frames in time order that never overlap and never pass the
end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..model import Word
from .presets import CaptionPreset
from .shot_changes import next_cut, normalise_cuts, out_target, snap_in


@dataclass(frozen=True)
class Span:
    """What timing needs to know about one cue: its speech in frames and how many characters it shows."""

    speech_start: int
    speech_end: int  # exclusive
    chars: int


def reading_frames(chars: int, rate: Fraction, preset: CaptionPreset) -> int:
    """Frames needed to read ``chars`` characters at the preset's maximum reading speed."""
    return math.ceil(Fraction(chars) / Fraction(str(preset.max_chars_per_second)) * rate)


def settle_word_frames(words: Sequence[Word], end_frame: int | None = None) -> list[Word]:
    """Words in time order whose frames never overlap and never pass ``end_frame`` (exclusive).

    ``Word.at`` gives each word the frame holding its start and the first frame at or after its end, so two
    words that meet inside a frame share it. Here a word ends where the next one starts (it keeps at least one
    frame; a following word that started in the same frame then starts one frame later). Seconds are left as
    measured.
    """
    from dataclasses import replace

    ordered = sorted(words, key=lambda w: (w.start_frame, w.start, w.end_frame))
    out: list[Word] = []
    limit = end_frame if end_frame is not None and end_frame > 0 else None
    for k, w in enumerate(ordered):
        start = max(w.start_frame, out[-1].end_frame if out else 0)
        end = max(w.end_frame, start + 1)
        if k + 1 < len(ordered):
            end = min(end, max(ordered[k + 1].start_frame, start + 1))
        if limit is not None:
            start = min(start, limit - 1)
            end = min(end, limit)
            if (
                out and start < out[-1].end_frame
            ):  # words crowded against the end: the last frames are shared out
                start = out[-1].end_frame
            if start >= end:
                # no room left before the end: squeeze the earlier words back to make one frame for this one
                out = _make_room(out, limit - 1)
                start, end = limit - 1, limit
        if (start, end) != (w.start_frame, w.end_frame):
            w = replace(w, start_frame=start, end_frame=end)
        out.append(w)
    return out


def _make_room(words: list[Word], before: int) -> list[Word]:
    """``words`` moved back so the last ends at or before ``before`` (each keeps a frame, none before frame
    0)."""
    from dataclasses import replace

    out = list(words)
    for k in range(len(out) - 1, -1, -1):
        w = out[k]
        if w.end_frame <= before:
            break
        end = before
        start = min(w.start_frame, end - 1)
        if start < 0:
            break
        out[k] = replace(w, start_frame=start, end_frame=end)
        before = start
    return out


def time_cues(
    spans: Sequence[Span],
    rate: Fraction,
    preset: CaptionPreset,
    cut_points: Sequence[int] = (),
    end_frame: int | None = None,
) -> list[tuple[int, int]]:
    """``[(in, out), ...]`` for each span, in frames (``out`` exclusive); none ends after ``end_frame``."""
    n = len(spans)
    if n == 0:
        return []
    rate = Fraction(rate)
    gap = preset.min_gap_frames
    min_f, max_f = preset.min_frames(rate), preset.max_frames(rate)
    linger = preset.frames(preset.max_linger, rate)
    cuts = normalise_cuts(cut_points) if preset.shot_changes else []

    ins = [s.speech_start for s in spans]
    if cuts:
        ins = [snap_in(f, cuts) if snap_in(f, cuts) < s.speech_end else f for f, s in zip(ins, spans)]
    # keep in-times ordered even if snapping moved one past its successor
    for i in range(1, n):
        ins[i] = max(ins[i], ins[i - 1] + 1)

    outs: list[int] = []
    for i, s in enumerate(spans):
        room = ins[i + 1] - gap if i + 1 < n else None
        out = s.speech_end + preset.max_trail_frames
        if room is not None:
            out = min(out, room)
        out = max(out, ins[i] + 1)
        # minimum duration, into the silence after the cue (may push the next cue; fixed in the last pass)
        out = max(out, ins[i] + min_f)
        # reading speed: linger into silence, not past the next cue nor max_linger past speech
        need = ins[i] + reading_frames(s.chars, rate, preset)
        if out < need:
            limit = s.speech_end + linger
            if room is not None:
                limit = min(limit, room)
            out = max(out, min(need, limit))
        out = min(out, ins[i] + max_f)
        outs.append(out)

    # chaining: small gaps closed to exactly ``gap``
    for i in range(n - 1):
        space = ins[i + 1] - outs[i]
        if gap < space <= preset.chain_gap_frames and ins[i + 1] - gap - ins[i] <= max_f:
            outs[i] = ins[i + 1] - gap

    # out-times near a cut end 2 frames before it
    if cuts:
        for i in range(n):
            target = out_target(outs[i], cuts)
            if target is None:
                continue
            nxt = ins[i + 1] if i + 1 < n else None
            if min_f <= target - ins[i] <= max_f and (nxt is None or target <= nxt - gap):
                outs[i] = target

    # hard rules, guaranteed: forward pass only ever moves times later
    result: list[tuple[int, int]] = []
    prev_out = None
    for i in range(n):
        start = ins[i] if prev_out is None else max(ins[i], prev_out + gap)
        if cuts and start != ins[i] and snap_in(start, cuts) != start:
            # pushed into a cut's 1-11 frame zone by the cue before (which already has no frame to spare):
            # start on the cut rather than flicker just before it
            start = next_cut(start, cuts)
            prev_start, prev_end = result[-1]
            if start - gap - prev_start <= max_f:
                result[-1] = (prev_start, max(prev_end, start - gap))  # chained: ends 2 frames before the cut
        end = min(max(outs[i], start + min_f), start + max_f)
        result.append((start, end))
        prev_out = end
    if end_frame is not None and end_frame > 0:
        _clamp_to_end(result, end_frame, gap, min_f)
    return result


def _clamp_to_end(result: list[tuple[int, int]], end_frame: int, gap: int, min_f: int) -> None:
    """Backward pass (in place): no cue ends after ``end_frame``; a cue cut short starts earlier, into the
    silence before it, to keep ``min_f`` frames where the cue before leaves room (never overlapping it)."""
    limit = end_frame
    for i in range(len(result) - 1, -1, -1):
        start, end = result[i]
        if end <= limit:
            break
        end = limit
        floor = result[i - 1][1] + gap if i > 0 else 0
        if end - start < min_f:
            start = max(min(start, end - min_f), min(floor, start))
        start = max(0, min(start, end - 1))
        result[i] = (start, end)
        limit = start - gap
