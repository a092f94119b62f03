"""Caption presets: the limits a caption style imposes (characters per line, lines, reading speed, durations,
gaps).

Numbers follow Netflix's Timed Text Style Guide (English and Simplified Chinese), BBC subtitle guidelines for
``broadcast`` and common practice for vertical social video (``social``: one short line). Every limit can be
overridden by keyword (``resolve_preset("netflix-en", "en", max_chars_per_line=37)``), which is what the CLI's
``--max-chars`` style options do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from fractions import Fraction
from functools import lru_cache

from ..errors import InputError

# Frame counts in Netflix's rules are stated for every rate ("2 frames", "12 frames"), not in seconds.
SHOT_SNAP_IN_MAX = 8  # an in-time 1..8 frames before a cut snaps to the cut
SHOT_MOVE_IN_MAX = 11  # 9..11 frames before a cut moves to 12 frames before it
SHOT_MOVE_IN_TO = 12
SHOT_OUT_WINDOW = 11  # an out-time within 11 frames of a cut ends ...
SHOT_OUT_BEFORE = 2  # ... 2 frames before it


SPEAKER_MARKS = ("dash", "label", "none")


@dataclass(frozen=True)
class CaptionPreset:
    """Limits for one caption style and language. Durations are exact seconds; gaps and trails are frames."""

    name: str
    max_chars_per_line: int
    max_lines: int
    max_chars_per_second: float
    min_duration: Fraction = Fraction(5, 6)
    max_duration: Fraction = Fraction(7)
    min_gap_frames: int = 2
    chain_gap_frames: int = 12  # gaps of this many frames or fewer are closed to ``min_gap_frames``
    max_trail_frames: int = 12  # out-time may run this far past the end of speech
    max_linger: Fraction = Fraction(3, 2)  # reading-speed extension past speech stops here (BBC: 1.5 s)
    pause_split: Fraction = Fraction(1, 2)  # a pause this long is a preferred cue boundary
    force_split_pause: Fraction = Fraction(3, 2)  # a cue never spans a silence this long
    shot_changes: bool = True
    # how a change of speaker shows: "dash" (Netflix: two speakers in one cue, one line each, each starting
    # with "- "/"-"), "label" ("ANA: " where a speaker's turn starts), or "none" (a cue never holds two
    # speakers)
    speaker_marks: str = "dash"

    def __post_init__(self) -> None:
        problems = []
        if self.speaker_marks not in SPEAKER_MARKS:
            problems.append(
                f"speaker_marks must be one of {', '.join(SPEAKER_MARKS)}, got {self.speaker_marks!r}"
            )
        if self.max_chars_per_line < 4:
            problems.append(f"max_chars_per_line must be at least 4, got {self.max_chars_per_line}")
        if not 1 <= self.max_lines <= 4:
            problems.append(f"max_lines must be 1 to 4, got {self.max_lines}")
        if self.max_chars_per_second <= 0:
            problems.append(f"max_chars_per_second must be positive, got {self.max_chars_per_second}")
        if self.min_duration <= 0 or self.max_duration <= self.min_duration:
            problems.append(
                f"durations must satisfy 0 < min ({self.min_duration}) < max ({self.max_duration})"
            )
        if self.min_gap_frames < 0 or self.chain_gap_frames < self.min_gap_frames:
            problems.append("gaps must satisfy 0 <= min_gap_frames <= chain_gap_frames")
        if self.max_trail_frames < 0:
            problems.append("max_trail_frames must be >= 0")
        if problems:
            raise InputError(f"caption preset {self.name!r}: " + "; ".join(problems))

    def min_frames(self, rate: Fraction) -> int:
        """Shortest cue in frames at ``rate`` (5/6 s is 20 frames at 24, 21 at 25, 25 at 29.97)."""
        return max(
            1,
            -(
                -self.min_duration.numerator
                * rate.numerator
                // (self.min_duration.denominator * rate.denominator)
            ),
        )

    def max_frames(self, rate: Fraction) -> int:
        """Longest cue in frames at ``rate`` (rounded down so it never exceeds the limit)."""
        return int(self.max_duration * rate)

    def frames(self, seconds: Fraction, rate: Fraction) -> int:
        return int(Fraction(seconds) * rate)

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Fraction) else value
        return out


_EN = dict(max_chars_per_line=42, max_lines=2, max_chars_per_second=20.0)
_ZH = dict(max_chars_per_line=16, max_lines=2, max_chars_per_second=9.0)

# preset name -> language family ("en" = alphabetic languages, "zh" = CJK) -> limits
PRESETS: dict[str, dict[str, dict]] = {
    "netflix-en": {"en": _EN, "zh": _EN},
    "netflix-zh": {"en": _ZH, "zh": _ZH},
    # BBC: 37 characters (teletext heritage), 160-180 wpm (~ 15-17 cps), at least ~1 s on screen.
    # Speakers: a name label where a turn starts (colours per speaker in ASS).
    "broadcast": {
        "en": dict(
            max_chars_per_line=37,
            max_lines=2,
            max_chars_per_second=17.0,
            min_duration=Fraction(1),
            speaker_marks="label",
        ),
        "zh": dict(
            max_chars_per_line=14,
            max_lines=2,
            max_chars_per_second=8.0,
            min_duration=Fraction(1),
            speaker_marks="label",
        ),
    },
    # Vertical/social video: one short line, quick turnover.
    # One line: never two speakers in a cue, no marks.
    "social": {
        "en": dict(
            max_chars_per_line=28,
            max_lines=1,
            max_chars_per_second=22.0,
            max_duration=Fraction(4),
            speaker_marks="none",
        ),
        "zh": dict(
            max_chars_per_line=12,
            max_lines=1,
            max_chars_per_second=10.0,
            max_duration=Fraction(4),
            speaker_marks="none",
        ),
    },
}
# "netflix" alone picks the language's own Netflix preset.
ALIASES = {"netflix": {"en": "netflix-en", "zh": "netflix-zh"}}

CJK_LANGUAGES = ("zh", "ja", "ko", "yue", "wuu")


@lru_cache(maxsize=256)
def language_family(language: str | None) -> str:
    """ "zh" for CJK languages (characters, no spaces), "en" for everything written with spaces."""
    base = (language or "en").lower().replace("_", "-").split("-")[0]
    return "zh" if base in CJK_LANGUAGES else "en"


def preset_names() -> list[str]:
    return sorted(PRESETS) + sorted(ALIASES)


def resolve_preset(
    preset: "str | CaptionPreset" = "netflix-en", language: str = "en", **overrides
) -> CaptionPreset:
    """A ``CaptionPreset`` from a name (or a preset) for ``language``, with any limit overridden by keyword.

    Overrides whose value is ``None`` are ignored, so CLI options can be passed straight through.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    valid = {f.name for f in fields(CaptionPreset)} - {"name"}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise InputError(f"unknown caption option(s) {', '.join(unknown)}; known: {', '.join(sorted(valid))}")
    for key in ("min_duration", "max_duration", "max_linger", "pause_split", "force_split_pause"):
        if key in overrides:
            overrides[key] = (
                Fraction(str(overrides[key]))
                if isinstance(overrides[key], float)
                else Fraction(overrides[key])
            )
    if isinstance(preset, CaptionPreset):
        return replace(preset, **overrides) if overrides else preset
    family = language_family(language)
    name = ALIASES.get(preset, {}).get(family, preset)
    if name not in PRESETS:
        raise InputError(f"unknown caption preset {preset!r}; choose one of {', '.join(preset_names())}")
    return CaptionPreset(name=name, **{**PRESETS[name][family], **overrides})
