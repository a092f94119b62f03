"""OTIO RationalTime <-> exact fractions: OTIO stores rates as doubles; CaptionBridge works in exact
frames."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from ..errors import TimelineError
from .timebase import parse_rate

_RATE_CACHE: dict[float, Fraction] = {}


def exact_rate(rate: float) -> Fraction:
    """An OTIO RationalTime rate (a double) as an exact fraction: NTSC doubles snap to n*1000/1001; sample
    rates (48000) and other integer rates stay integers."""
    found = _RATE_CACHE.get(rate)
    if found is not None:
        return found
    try:
        exact = parse_rate(rate)
    except TimelineError:
        value = Fraction(rate)
        exact = value if value.denominator == 1 else value.limit_denominator(1001)
        if exact <= 0:
            raise TimelineError(f"invalid time rate {rate!r} in the timeline")
    _RATE_CACHE[rate] = exact
    return exact


def to_frames(t: otio.opentime.RationalTime, rate: Fraction) -> int:
    """A RationalTime as a whole number of frames at ``rate`` (nearest frame; OTIO values are exact frame
    counts)."""
    value = t.value
    own = exact_rate(t.rate)
    if own == rate:
        return round(value)
    return round(Fraction(value) * rate / own)


def to_seconds(t: otio.opentime.RationalTime) -> Fraction:
    """A RationalTime as exact seconds (value / exact rate)."""
    value = t.value
    rate = exact_rate(t.rate)
    if value.is_integer():
        return Fraction(int(value) * rate.denominator, rate.numerator)
    return Fraction(value) / rate
