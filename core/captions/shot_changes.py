"""Netflix's shot-change rules, driven by the cut points of the timeline's own video track.

Cut points are timeline frames (frame 0 = the timeline's first frame) where a new shot starts. A caption that
appears or disappears a few frames from a cut flickers across it; the guide's fixes:

* in-time 1-8 frames before a cut: start on the cut;
* in-time 9-11 frames before a cut: start 12 frames before it;
* out-time within 11 frames of a cut (before or after): end 2 frames before it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from .presets import SHOT_MOVE_IN_MAX, SHOT_MOVE_IN_TO, SHOT_OUT_BEFORE, SHOT_OUT_WINDOW, SHOT_SNAP_IN_MAX


def normalise_cuts(cut_points: Iterable[int]) -> list[int]:
    """Sorted, unique, integer cut frames (frame 0 is the timeline's start, never a cut)."""
    out = set()
    for c in cut_points:
        if int(c) != c:
            raise ValueError(f"cut points are integer frames, got {c!r}")
        if c > 0:
            out.add(int(c))
    return sorted(out)


def next_cut(frame: int, cuts: Sequence[int]) -> int | None:
    """The first cut at or after ``frame``."""
    i = bisect_left(cuts, frame)
    return cuts[i] if i < len(cuts) else None


def nearest_cut(frame: int, cuts: Sequence[int]) -> int | None:
    i = bisect_left(cuts, frame)
    candidates = [cuts[k] for k in (i - 1, i) if 0 <= k < len(cuts)]
    return min(candidates, key=lambda c: (abs(c - frame), c)) if candidates else None


def snap_in(frame: int, cuts: Sequence[int]) -> int:
    """Where an in-time at ``frame`` belongs given the cuts (unchanged when no rule applies)."""
    cut = next_cut(frame, cuts)
    if cut is None:
        return frame
    before = cut - frame
    if 1 <= before <= SHOT_SNAP_IN_MAX:
        return cut
    if SHOT_SNAP_IN_MAX < before <= SHOT_MOVE_IN_MAX:
        return cut - SHOT_MOVE_IN_TO
    return frame


def out_target(frame: int, cuts: Sequence[int]) -> int | None:
    """Where an out-time at ``frame`` should be moved (2 frames before a cut it is near), or None."""
    cut = nearest_cut(frame, cuts)
    if cut is None:
        return None
    target = cut - SHOT_OUT_BEFORE
    if frame != target and abs(frame - cut) <= SHOT_OUT_WINDOW:
        return target
    return None


def in_time_issue(frame: int, cuts: Sequence[int]) -> str | None:
    """Why an in-time breaks the rules, or None."""
    cut = next_cut(frame, cuts)
    if cut is None:
        return None
    before = cut - frame
    if 1 <= before <= SHOT_SNAP_IN_MAX:
        return f"in-time {before} frame(s) before the cut at frame {cut}: start on the cut"
    if SHOT_SNAP_IN_MAX < before <= SHOT_MOVE_IN_MAX:
        return (
            f"in-time {before} frames before the cut at frame {cut}: start {SHOT_MOVE_IN_TO} frames before it"
        )
    return None


def out_time_issue(frame: int, cuts: Sequence[int]) -> str | None:
    target = out_target(frame, cuts)
    if target is None:
        return None
    cut = target + SHOT_OUT_BEFORE
    where = (
        f"{cut - frame} frame(s) before"
        if frame < cut
        else ("on" if frame == cut else f"{frame - cut} frame(s) after")
    )
    return f"out-time {where} the cut at frame {cut}: end {SHOT_OUT_BEFORE} frames before it (frame {target})"
