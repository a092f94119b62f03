"""Exact time: a timeline's rate as a fraction, its start timecode as a frame number, drop-frame as a display
format.

Everything downstream counts integer frames from the timeline's first frame (frame 0 = the start timecode).
Seconds are exact ``Fraction``s; timecode strings come from ``opentimelineio.opentime`` with drop-frame passed
explicitly (never inferred from the rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

import opentimelineio as otio

from ..errors import TimelineError

# NTSC rates are n * 1000/1001. A document may say 23.976, 23.98, 29.97 or the double 23.976023976...
_NTSC_BASES = (24, 30, 48, 60, 120)
_DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
MAX_RATE = 240


def parse_rate(value: object) -> Fraction:
    """Return a timeline rate as an exact fraction.

    Accepts ``Fraction``/int, strings like ``"24000/1001"``, ``"23.976"``, ``"29.97 DF"``, ``"25"`` and floats
    such as OTIO's ``23.976023976023978``. NTSC approximations snap to n*1000/1001; anything else must be
    (close to) an integer or an exact fraction.
    """
    raw = value
    if isinstance(value, str):
        text = value.strip().upper().replace("DF", "").replace("NDF", "").replace("FPS", "").strip()
        if not text:
            raise TimelineError(f"empty frame rate {raw!r}")
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise TimelineError(
                f"unreadable frame rate {raw!r}: use a number like 25 or a fraction like 24000/1001"
            )
    if isinstance(value, Rational):
        rate = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise TimelineError(f"frame rate {raw!r} is not a number")
        rate = Fraction(value)
    else:
        raise TimelineError(f"frame rate {raw!r} is not a number")
    if rate <= 0 or rate > MAX_RATE:
        raise TimelineError(
            f"unsupported frame rate {raw!r}: expected between 1 and {MAX_RATE} frames per second"
        )
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if rate == ntsc or abs(rate - ntsc) < Fraction(1, 100):
            return ntsc
    nearest = round(rate)
    if abs(rate - nearest) < Fraction(1, 1000):
        return Fraction(nearest)
    raise TimelineError(f"unsupported frame rate {raw!r}: not an integer or NTSC (x1000/1001) rate")


def rate_to_string(rate: Fraction) -> str:
    """``24000/1001`` for fractional rates, ``25`` for integer ones (the JSON contract's spelling)."""
    rate = Fraction(rate)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def rate_label(rate: Fraction, drop_frame: bool = False) -> str:
    """Human spelling as editors show it: 23.976, 29.97 DF, 25."""
    rate = Fraction(rate)
    if rate.denominator == 1:
        text = str(rate.numerator)
    else:
        text = f"{float(rate):.3f}".rstrip("0").rstrip(".")
    return f"{text} DF" if drop_frame else text


def is_drop_frame_rate(rate: Fraction) -> bool:
    return Fraction(rate) in _DROP_FRAME_RATES


def ceil_div(numerator: int, denominator: int) -> int:
    return -((-numerator) // denominator)


@dataclass(frozen=True)
class Timebase:
    """A timeline's clock: exact rate, start timecode as a frame number, and its display format."""

    rate: Fraction
    start_frame: int = 0
    drop_frame: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_rate(self.rate))
        if int(self.start_frame) != self.start_frame or self.start_frame < 0:
            raise TimelineError(f"start frame must be a whole number >= 0, got {self.start_frame!r}")
        object.__setattr__(self, "start_frame", int(self.start_frame))
        if self.drop_frame and not is_drop_frame_rate(self.rate):
            raise TimelineError(
                f"drop-frame timecode exists only at 29.97 and 59.94, not at {rate_label(self.rate)}"
            )

    # -- frames <-> seconds (exact) -------------------------------------------------------------
    @property
    def frame_duration(self) -> Fraction:
        return 1 / self.rate

    def seconds(self, frame: int) -> Fraction:
        """Exact seconds from the timeline's first frame to the start of ``frame``."""
        return Fraction(frame) / self.rate

    def frame_at(self, seconds: float | Fraction, rounding: str = "floor") -> int:
        """The frame that contains (floor), is nearest to (round) or starts at/after (ceil) ``seconds``."""
        position = Fraction(seconds) * self.rate
        if rounding == "floor":
            return math.floor(position)
        if rounding == "ceil":
            return math.ceil(position)
        if rounding == "round":
            return math.floor(position + Fraction(1, 2))
        raise ValueError(f"rounding must be floor, round or ceil, not {rounding!r}")

    # -- milliseconds (SRT/VTT) -----------------------------------------------------------------
    def ms_ceil(self, frame: int, quantum_ms: int = 1) -> int:
        """A frame's exact start rounded **up** to the millisecond (or to ``quantum_ms``: 10 for ASS
        centiseconds): editors that floor land on ``frame``. The one rounding every writer and the validator
        use."""
        units = ceil_div(frame * 1000 * self.rate.denominator, self.rate.numerator * quantum_ms)
        return units * quantum_ms

    def frame_from_ms(self, ms: int) -> int:
        """The frame an editor shows for a millisecond time (they floor)."""
        return (ms * self.rate.numerator) // (1000 * self.rate.denominator)

    def is_on_frame(self, ms: int) -> bool:
        """True when ``ms`` is what ``ms_ceil`` writes for some frame (a frame-accurate time)."""
        return self.ms_ceil(self.frame_from_ms(ms)) == ms

    # -- samples ----------------------------------------------------------------------------------
    def sample_at(self, frame: int, sample_rate: int) -> Fraction:
        """Exact sample position of a frame's start (not always whole: a 23.976 frame is 667.33 samples at 16
        kHz)."""
        return Fraction(frame) * sample_rate / self.rate

    # -- timecode ---------------------------------------------------------------------------------
    @property
    def nominal_fps(self) -> int:
        return round(self.rate)

    def timecode(self, frame: int, absolute: bool = True) -> str:
        """Timecode of a timeline frame; ``absolute`` adds the start timecode. ';' separates drop-frame."""
        total = frame + (self.start_frame if absolute else 0)
        if total < 0:
            raise ValueError(f"frame {frame} is before 00:00:00:00")
        rate = float(self.rate)
        return otio.opentime.to_timecode(otio.opentime.RationalTime(total, rate), rate, self.drop_frame)

    def frame_from_timecode(self, timecode: str, absolute: bool = True) -> int:
        """Parse a timecode to a timeline frame (``absolute``: subtract the start timecode)."""
        text = timecode.strip()
        if self.drop_frame and ";" not in text and "." not in text:
            # Some tools write DF with ':'; the rate and our flag decide, so accept it.
            parts = text.split(":")
            if len(parts) == 4:
                text = ":".join(parts[:3]) + ";" + parts[3]
        if not self.drop_frame and ";" in text:
            raise TimelineError(f"timecode {timecode!r} is drop-frame but the timeline is non-drop-frame")
        try:
            parts = [int(p) for p in text.replace(";", ":").replace(".", ":").split(":")]
        except ValueError:
            raise TimelineError(f"unreadable timecode {timecode!r}: expected HH:MM:SS:FF")
        if len(parts) != 4 or parts[3] >= self.nominal_fps or parts[2] >= 60 or parts[1] >= 60:
            raise TimelineError(f"invalid timecode {timecode!r} at {rate_label(self.rate, self.drop_frame)}")
        if self.drop_frame:
            dropped = 2 * (self.nominal_fps // 30)
            if parts[2] == 0 and parts[1] % 10 != 0 and parts[3] < dropped:
                raise TimelineError(
                    f"timecode {timecode!r} does not exist in drop-frame (frames 0-{dropped - 1} "
                    "are skipped at the start of every minute except each tenth)"
                )
        rate = float(self.rate)
        total = round(otio.opentime.from_timecode(text, rate).value)
        return total - (self.start_frame if absolute else 0)

    @property
    def start_timecode(self) -> str:
        return self.timecode(0)

    def describe(self) -> str:
        return f"{rate_label(self.rate, self.drop_frame)} fps, starting {self.start_timecode}"

    def to_dict(self) -> dict:
        return {
            "rate": rate_to_string(self.rate),
            "start_timecode": self.start_timecode,
            "drop_frame": self.drop_frame,
        }

    @classmethod
    def from_start_timecode(cls, rate: object, start_timecode: str, drop_frame: bool) -> "Timebase":
        base = cls(parse_rate(rate), 0, drop_frame)
        return cls(base.rate, base.frame_from_timecode(start_timecode, absolute=False), drop_frame)
