"""`captionbridge check`: validate a caption file against a caption preset, cue by cue.

Exit status: 0 when no hard rule is broken (soft findings are reported), 5 (``ValidationFailed``) when one is,
3 for a file that cannot be read. ``--strict`` also fails on soft findings.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import click

from ..core.errors import InputError, ValidationFailed
from .caption_limits import PRESET_LIMITS


def _cut_points(timeline_path: str):
    """Cut frames and clock of the timeline's video track (reader and regions are another area's modules)."""
    try:
        from ..adapters.timeline_read import load_timeline
        from ..core.timeline.regions import video_cut_points
    except ImportError as exc:  # pragma: no cover - only while the timeline modules are not in this build
        raise InputError(
            f"--timeline needs CaptionBridge's timeline reader, which this build lacks ({exc})"
        ) from exc
    loaded = load_timeline(timeline_path)
    return list(video_cut_points(loaded)), loaded.timebase


def _preset_for(preset: str, language: str, main_language: str) -> str:
    from ..core.captions.presets import ALIASES

    if language == main_language or preset in ALIASES or not preset.startswith("netflix"):
        return preset
    return "netflix"  # a bilingual file: each language gets its own Netflix limits


@click.command("check")
@click.argument("subs", type=click.Path(dir_okay=False))
@click.option(
    "--rate",
    help="Timeline frame rate, e.g. 24000/1001, 23.976, 25, 29.97 (not needed for .json or with --timeline).",
)
@click.option("--start-timecode", default=None, help="Timeline start timecode (default 00:00:00:00).")
@click.option("--drop-frame", is_flag=True, help="The timeline shows drop-frame timecode (29.97/59.94).")
@click.option(
    "--language",
    default=None,
    help="Language of the captions (default: from the file name, "
    "e.g. talk.en.srt; a bilingual file checks each language).",
)
@click.option(
    "--preset",
    default="netflix",
    show_default=True,
    help="netflix (by language), netflix-en, netflix-zh, broadcast or social.",
)
@click.option(
    "--timeline",
    "timeline_path",
    default=None,
    type=click.Path(exists=True),
    help="The edit (OTIO, xmeml, FCPXML): its video cuts drive the shot-change rules.",
)
@click.option(
    "--absolute/--relative",
    "absolute",
    default=None,
    help="Times include the start timecode (default: detected).",
)
@click.option(
    "--max-chars-per-line",
    "--max-chars",
    "max_chars",
    type=int,
    default=None,
    help=f"Override characters per line (default: the preset's; {PRESET_LIMITS['max_chars_per_line']}).",
)
@click.option(
    "--max-lines",
    type=int,
    default=None,
    help=f"Override lines per caption (default: the preset's; {PRESET_LIMITS['max_lines']}).",
)
@click.option(
    "--max-chars-per-second",
    "--max-cps",
    "max_cps",
    type=float,
    default=None,
    help="Override reading speed in characters per second (default: the preset's; "
    f"{PRESET_LIMITS['max_chars_per_second']}).",
)
@click.option(
    "--min-duration", type=str, default=None, help="Override minimum duration in seconds (e.g. 5/6)."
)
@click.option("--max-duration", type=str, default=None, help="Override maximum duration in seconds.")
@click.option("--min-gap", type=int, default=None, help="Override the minimum gap in frames.")
@click.option("--strict", is_flag=True, help="Fail (exit 5) on soft findings too.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def check_cmd(
    subs,
    rate,
    start_timecode,
    drop_frame,
    language,
    preset,
    timeline_path,
    absolute,
    max_chars,
    max_lines,
    max_cps,
    min_duration,
    max_duration,
    min_gap,
    strict,
    as_json,
):
    """Report every caption rule broken in SUBS (SRT, VTT, ASS, TTML or captions JSON)."""
    from ..adapters.caption_formats import read_caption_file
    from ..core.captions.validate import HARD, validate_cues
    from ..core.timeline.timebase import Timebase

    cuts: list[int] = []
    timebase = None
    if timeline_path:
        cuts, timebase = _cut_points(timeline_path)
        if rate is not None and Timebase(rate).rate != timebase.rate:
            raise InputError(f"--rate {rate} does not match the timeline ({timebase.describe()})")
    if rate is not None and timebase is None:
        timebase = Timebase.from_start_timecode(rate, start_timecode or "00:00:00:00", drop_frame)
    elif timebase is not None and start_timecode:
        timebase = Timebase.from_start_timecode(
            timebase.rate, start_timecode, drop_frame or timebase.drop_frame
        )
    elif drop_frame or start_timecode:
        if rate is None and not str(subs).lower().endswith(".json"):
            raise InputError("--start-timecode/--drop-frame need --rate")
    caption_file = read_caption_file(subs, timebase, absolute, language)
    if not caption_file.cues:
        raise InputError(
            f"{subs}: no caption could be read from it; it is empty or not a "
            f"{Path(subs).suffix.lstrip('.').upper() or 'subtitle'} file"
        )
    timebase = caption_file.timebase
    overrides = dict(
        max_chars_per_line=max_chars,
        max_lines=max_lines,
        max_chars_per_second=max_cps,
        min_duration=Fraction(min_duration) if min_duration else None,
        max_duration=Fraction(max_duration) if max_duration else None,
        min_gap_frames=min_gap,
    )
    languages = [language] if language else caption_file.languages
    if not languages or languages == ["und"]:
        raise InputError(f"{subs}: say which language the captions are in (--language en|zh)")
    main = languages[0]
    report = {
        "file": str(subs),
        "timeline": timebase.to_dict(),
        "cues": len(caption_file.cues),
        "absolute": caption_file.absolute,
        "shot_cuts": len(cuts),
        "languages": {},
    }
    hard = soft = 0
    for lang in languages:
        violations = validate_cues(
            caption_file.cues,
            timebase,
            _preset_for(preset, lang, main),
            lang,
            cuts,
            caption_file.source_times,
            **overrides,
        )
        hard += sum(v.severity == HARD for v in violations)
        soft += sum(v.severity != HARD for v in violations)
        report["languages"][lang] = [
            dict(v.to_dict(), cue=v.cue + 1, timecode=_timecode(caption_file.cues, v.cue, timebase))
            for v in violations
        ]
    report["hard"], report["soft"] = hard, soft
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    if hard or (strict and soft):
        raise ValidationFailed(
            f"{subs}: {hard} hard and {soft} soft caption rule violation(s)"
            if not as_json
            else f"{hard} hard, {soft} soft violation(s)"
        )


def _timecode(cues, index: int, timebase) -> str:
    return timebase.timecode(cues[index].start_frame) if 0 <= index < len(cues) else ""


def _print_report(report: dict) -> None:
    click.echo(
        f"{report['file']}: {report['cues']} cue(s) at {report['timeline']['rate']} fps, "
        f"start {report['timeline']['start_timecode']}"
        + (f", {report['shot_cuts']} shot change(s)" if report["shot_cuts"] else "")
    )
    for lang, violations in report["languages"].items():
        if not violations:
            click.echo(f"  [{lang}] no violations")
            continue
        for v in violations:
            click.echo(
                f"  [{lang}] cue {v['cue']} {v['timecode']} {v['severity'].upper()} {v['rule']}: "
                f"{v['message']}"
            )
    click.echo(f"{report['hard']} hard, {report['soft']} soft")
