"""Check cues against a caption preset: every violation, per cue, hard or soft.

Hard rules (a file that breaks one is not deliverable): overlap, empty cues, more lines than allowed,
characters per line, duration bounds, gaps under ``min_gap_frames``. Soft rules (craft): off-frame times (a
millisecond time that is not what a frame-accurate writer stores for a frame: reported with the frame an
editor lands on, and whether editors that floor and editors that round disagree; other tools'
whole-millisecond conventions are not an error), reading speed, break quality (a line break where a rule says
never, two lines where one fits, an orphan word), chaining (gaps of 3-12 frames should be closed to 2),
Chinese punctuation inside a line, and the shot-change rules when the timeline's cut points are known.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

from ..model import Cue
from ..timeline.timebase import Timebase
from .line_breaking import POOR, break_costs, build_units, line_length
from .presets import SHOT_OUT_BEFORE, CaptionPreset, language_family, resolve_preset
from .shot_changes import in_time_issue, normalise_cuts, out_time_issue

HARD = "hard"
SOFT = "soft"


@dataclass(frozen=True)
class Violation:
    cue: int  # 0-based index into the cue list
    rule: str
    severity: str  # "hard" | "soft"
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SourceTimes:
    """Times as a file stored them, for the off-frame check: ``[(start_ms, end_ms)]`` per cue and the format's
    resolution (1 ms for SRT/VTT, 10 ms for ASS). ``offset_frames`` is added when times are absolute."""

    times: list[tuple[int, int]]
    quantum_ms: int = 1
    offset_frames: int = 0


def _off_frame_message(label: str, ms: int, timebase: Timebase, offset_frames: int, quantum_ms: int) -> str:
    """What an editor does with a stored time that is not a frame's rounded-up start."""
    exact = Fraction(ms) * timebase.rate / 1000  # frames since the file's zero, exactly
    floor = math.floor(exact) - offset_frames
    nearest = math.floor(exact + Fraction(1, 2)) - offset_frames
    if floor < 0:
        return (
            f"{label}-time {ms} ms lies before the first frame (which a frame-accurate writer stores as "
            f"{timebase.ms_ceil(offset_frames, quantum_ms)} ms)"
        )
    start_ms = timebase.ms_ceil(floor + offset_frames, quantum_ms)
    text = (
        f"{label}-time {ms} ms lies inside frame {timebase.timecode(floor)} (which starts at {start_ms} ms "
        "as a frame-accurate writer stores it)"
    )
    if nearest != floor:
        return (
            text + f"; editors that floor land on {timebase.timecode(floor)}, editors that round on "
            f"{timebase.timecode(nearest)}: write {start_ms} or "
            f"{timebase.ms_ceil(nearest + offset_frames, quantum_ms)} ms to be exact"
        )
    return text + "; floor and round agree, so every editor lands on that frame"


def cue_text(cue: Cue, language: str) -> str:
    if language in cue.text:
        return cue.text[language]
    if len(cue.text) == 1:
        return next(iter(cue.text.values()))
    return ""


def validate_cues(
    cues: Sequence[Cue],
    timebase: Timebase,
    preset: str | CaptionPreset = "netflix-en",
    language: str = "en",
    cut_points: Sequence[int] = (),
    source_times: SourceTimes | None = None,
    **overrides,
) -> list[Violation]:
    """Every rule violation of ``cues`` (text in ``language``), hard ones first within each cue."""
    limits = resolve_preset(preset, language, **overrides)
    rate = timebase.rate
    min_f, max_f = limits.min_frames(rate), limits.max_frames(rate)
    cuts = normalise_cuts(cut_points)
    cut_set = set(cuts)
    out: list[Violation] = []

    def add(i: int, rule: str, severity: str, message: str) -> None:
        out.append(Violation(i, rule, severity, message))

    for i, cue in enumerate(cues):
        where = f"{timebase.timecode(cue.start_frame)}-{timebase.timecode(cue.end_frame)}"
        text = cue_text(cue, language)
        lines = [ln for ln in text.split("\n")]
        # -- hard
        # ---------------------------------------------------------------------------------------------
        if i > 0:
            prev = cues[i - 1]
            gap = cue.start_frame - prev.end_frame
            if gap < 0:
                add(i, "overlap", HARD, f"starts {-gap} frame(s) before cue {i} ends ({where})")
            elif gap < limits.min_gap_frames:
                add(i, "gap", HARD, f"only {gap} frame(s) after cue {i} (at least {limits.min_gap_frames})")
            elif (
                gap <= limits.chain_gap_frames
                and gap != limits.min_gap_frames
                and (prev.end_frame + SHOT_OUT_BEFORE not in cut_set)
            ):  # ending 2 frames before a cut is right
                add(
                    i - 1,
                    "chaining",
                    SOFT,
                    f"gap of {gap} frames to the next cue: close it to "
                    f"{limits.min_gap_frames} (gaps of {limits.chain_gap_frames} or "
                    "fewer are chained)",
                )
        if source_times is not None and i < len(source_times.times):
            for label, ms, frame in (
                ("in", source_times.times[i][0], cue.start_frame),
                ("out", source_times.times[i][1], cue.end_frame),
            ):
                want = timebase.ms_ceil(frame + source_times.offset_frames, source_times.quantum_ms)
                if ms != want:
                    add(
                        i,
                        "off-frame",
                        SOFT,
                        _off_frame_message(
                            label, ms, timebase, source_times.offset_frames, source_times.quantum_ms
                        ),
                    )
        if not text.strip():
            add(i, "empty", HARD, f"no {language} text ({where})")
        if len(lines) > limits.max_lines:
            add(i, "max-lines", HARD, f"{len(lines)} lines (at most {limits.max_lines}) ({where})")
        for n, line in enumerate(lines, 1):
            if line_length(line) > limits.max_chars_per_line:
                add(
                    i,
                    "chars-per-line",
                    HARD,
                    f"line {n} has {line_length(line)} characters (at most "
                    f"{limits.max_chars_per_line}): {line!r}",
                )
        if cue.duration < min_f:
            add(
                i,
                "min-duration",
                HARD,
                f"{cue.duration} frames on screen (at least {min_f} = {limits.min_duration} s) ({where})",
            )
        if cue.duration > max_f:
            add(
                i,
                "max-duration",
                HARD,
                f"{cue.duration} frames on screen (at most {max_f} = {limits.max_duration} s) ({where})",
            )
        for rule, severity, message in speaker_issues(cue, lines, limits, language):
            add(i, rule, severity, f"{message} ({where})")
        # -- soft
        # ---------------------------------------------------------------------------------------------
        chars = sum(line_length(ln) for ln in lines)
        seconds = Fraction(cue.duration) / rate
        if chars and seconds > 0:
            cps = chars / seconds
            if cps > Fraction(str(limits.max_chars_per_second)):
                add(
                    i,
                    "reading-speed",
                    SOFT,
                    f"{float(cps):.1f} characters/s (at most "
                    f"{limits.max_chars_per_second:g}); needs "
                    f"{math.ceil(chars / limits.max_chars_per_second * float(rate))} "
                    "frames",
                )
        out.extend(Violation(i, rule, SOFT, msg) for rule, msg in break_issues(lines, limits, language))
        if cuts:
            issue = in_time_issue(cue.start_frame, cuts)
            if issue:
                add(i, "shot-change-in", SOFT, issue)
            issue = out_time_issue(cue.end_frame, cuts)
            if issue:
                add(i, "shot-change-out", SOFT, issue)
    if source_times is not None and len(source_times.times) != len(cues):
        raise ValueError("source_times must give one (start, end) per cue")
    out.sort(key=lambda v: (v.cue, v.severity != HARD))
    return out


_LABEL = re.compile(r"^[^\s:：]{1,24}(?: [^\s:：]{1,24}){0,2}[:：]")


def speaker_issues(
    cue: Cue, lines: list[str], preset: CaptionPreset, language: str
) -> list[tuple[str, str, str]]:
    """The two-speaker form (Netflix): a cue holds two speakers only as two lines, one per speaker, each
    starting with "- " ("-" in Chinese, no space) or each with its speaker's label; never three speakers. Hard
    when the cue knows its speakers; from the text alone (a file without speaker data) a malformed dash form
    is soft."""
    zh = language_family(language) == "zh"
    dash = "-" if zh else "- "
    issues: list[tuple[str, str, str]] = []

    def dashed(line: str) -> bool:
        return line.startswith(dash) and (zh or len(line) > 2) and not (zh and line.startswith("- "))

    if len(cue.speakers) > 2:
        issues.append(
            (
                "speaker-mix",
                HARD,
                f"{len(cue.speakers)} speakers in one cue ({', '.join(cue.speakers)}): "
                "at most two, one line each",
            )
        )
    elif len(cue.speakers) == 2:
        if preset.speaker_marks == "none":
            issues.append(
                (
                    "speaker-mix",
                    HARD,
                    f"two speakers ({', '.join(cue.speakers)}) in one cue, but preset "
                    f"{preset.name!r} shows no speaker marks: split the cue",
                )
            )
        elif len(lines) != 2:
            issues.append(
                (
                    "speaker-form",
                    HARD,
                    f"two speakers in {len(lines)} line(s): the two-speaker form is one line per speaker",
                )
            )
        elif not (all(dashed(ln) for ln in lines) or all(_LABEL.match(ln) for ln in lines)):
            issues.append(
                (
                    "speaker-form",
                    HARD,
                    f"two speakers, but the lines do not both start with {dash!r} (or a label): {lines!r}",
                )
            )
    elif any(ln.lstrip().startswith("-") for ln in lines):
        if len(lines) != 2 or not all(dashed(ln) for ln in lines):
            issues.append(
                (
                    "speaker-dash",
                    SOFT if not cue.speakers else HARD,
                    f"a dash marks a change of speaker: two lines, each starting with {dash!r}, got "
                    f"{lines!r}",
                )
            )
    return issues


def break_issues(lines: list[str], preset: CaptionPreset, language: str) -> list[tuple[str, str]]:
    """Soft break-quality findings for one cue's lines."""
    issues = []
    zh = language_family(language) == "zh"
    if len(lines) > 1:
        joined_len = sum(line_length(ln) for ln in lines) + (0 if zh else len(lines) - 1)
        if joined_len <= preset.max_chars_per_line:
            issues.append(
                (
                    "one-line-fits",
                    f"{len(lines)} lines but the text fits one line of {preset.max_chars_per_line}",
                )
            )
        for n in range(1, len(lines)):
            cost, left, right = _line_break_cost(lines[n - 1], lines[n], language)
            if cost >= POOR:
                issues.append(
                    (
                        "break-quality",
                        f"line break between {left!r} and {right!r} splits words that belong together",
                    )
                )
        for n, line in enumerate(lines, 1):
            if (
                len(line.split()) == 1
                and not zh
                and line_length(line) < preset.max_chars_per_line / 3
                and len(" ".join(lines).split()) > 2
            ):
                issues.append(("orphan", f"line {n} holds a single word {line!r}"))
    if zh:
        for n, line in enumerate(lines, 1):
            stripped = line.rstrip()
            if any(ch in "，。" for ch in stripped):
                issues.append(
                    (
                        "zh-punctuation",
                        f"line {n} contains a Chinese comma or full stop (use a space; "
                        f"none at the end): {line!r}",
                    )
                )
    return issues


def _line_break_cost(top: str, bottom: str, language: str) -> tuple[int, str, str]:
    if language_family(language) == "zh":
        left = [u.text for u in build_units(list(top), language)]
        right = [u.text for u in build_units(list(bottom), language)]
    else:
        left, right = top.split(), bottom.split()
    if not left or not right:
        return 0, top, bottom
    tokens = left + right
    cost = break_costs(tokens, language)[len(left)]
    return cost, left[-1], right[0]


def has_hard(violations: Sequence[Violation]) -> bool:
    return any(v.severity == HARD for v in violations)
