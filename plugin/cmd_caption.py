"""`captionbridge caption`: the main job from the command line, with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click

from .caption_limits import PRESET_LIMITS
from .cluster.bay import cluster_options, use_cluster


@click.command("caption")
@click.argument("timeline", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for the caption files."
)
@click.option(
    "--language",
    default="auto",
    show_default=True,
    metavar="auto|en|zh",
    help="Spoken language, or auto to detect it. CaptionBridge captions English and Chinese speech; other "
    "languages are refused (exit 3).",
)
@click.option(
    "--translate-to", type=click.Choice(["en", "zh"]), default=None, help="Add a translated language."
)
@click.option(
    "--preset",
    type=click.Choice(["netflix", "netflix-en", "netflix-zh", "broadcast", "social"]),
    default=None,
    help="Caption rules (default: netflix, i.e. netflix-en or netflix-zh by language).",
)
@click.option("--tracks", default=None, help="Audio tracks to caption, e.g. A1,A2 (default: all audible).")
@click.option(
    "--model", default=None, help="Whisper model: a folder, a packaged model, or a hub name when online."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--formats", default="json,srt", show_default=True, help="Any of json,srt,vtt,ass,ttml,otio,fcpxml,xmeml."
)
@click.option(
    "--glossary", type=click.Path(path_type=Path), default=None, help="Term list (translations, hotwords)."
)
@click.option(
    "--corrections-vocabulary/--no-corrections-vocabulary",
    default=True,
    show_default=True,
    help="Pass the words people corrected more than once in review (`captionbridge corrections "
    "vocabulary`) to the decoder as hotwords.",
)
@click.option("--translation-model", default=None, help="Translation model folder or hub name.")
@click.option(
    "--max-chars-per-line",
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
    type=float,
    default=None,
    help="Override reading speed in characters per second (default: the preset's; "
    f"{PRESET_LIMITS['max_chars_per_second']}).",
)
@click.option(
    "--absolute-times",
    is_flag=True,
    help="SRT/VTT/ASS times include the timeline's start timecode, as real time (at 23.976 fps "
    "01:00:00:00 is 3603.6 s, written 01:00:03,600). Default: times count from the timeline's first "
    "frame, which is what Premiere's and Resolve's caption import expect.",
)
@click.option("--allow-missing", is_flag=True, help="Caption what is there when some media is missing.")
@click.option(
    "--rate",
    default=None,
    help="For a bare media file: the frame rate, e.g. 24000/1001 or 25 (a video file's own rate otherwise).",
)
@click.option(
    "--start-timecode", default=None, help="For a bare media file: the timecode of its first frame."
)
@click.option(
    "--drop-frame/--non-drop-frame",
    "drop_frame",
    default=None,
    help="Override the timeline's display format (29.97/59.94 only).",
)
@click.option("--traditional", is_flag=True, help="Keep Chinese in Traditional characters.")
@click.option(
    "--no-packing",
    is_flag=True,
    help="Decode each clip on its own (default: short clips share 30 s Whisper windows).",
)
@click.option(
    "--speakers",
    "speakers",
    default=None,
    metavar="auto|N|off",
    help="Label who speaks: auto (estimate how many), a number of speakers, or off (the default).",
)
@click.option(
    "--speaker-names",
    default=None,
    metavar="NAMES",
    help='Names for speakers S1, S2, ... in order, e.g. "Ana,Ben" (implies --speakers auto).',
)
@click.option(
    "--speaker-marks",
    type=click.Choice(["dash", "label", "none"]),
    default=None,
    help="How a change of speaker shows (default: the preset's; netflix: dash, broadcast: label).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@cluster_options
def caption_cmd(
    timeline: Path,
    out_dir: Path,
    language: str,
    translate_to: str | None,
    preset: str | None,
    tracks: str | None,
    model: str | None,
    device: str,
    formats: str,
    glossary: Path | None,
    translation_model: str | None,
    max_chars_per_line: int | None,
    max_lines: int | None,
    max_chars_per_second: float | None,
    absolute_times: bool,
    allow_missing: bool,
    rate: str | None,
    start_timecode: str | None,
    drop_frame: bool | None,
    traditional: bool,
    no_packing: bool,
    speakers: str | None,
    speaker_names: str | None,
    speaker_marks: str | None,
    corrections_vocabulary: bool,
    quiet: bool,
    **cluster,
) -> None:
    """Caption TIMELINE (.otio, .otioz, FCP7 .xml, .fcpxml/.fcpxmld, or a bare media file) into OUT.

    Writes OUT/<stem>.captions.json (frames, timecodes, words) and one file per language and format,
    e.g. OUT/<stem>.en.srt, plus OUT/<stem>.bilingual.srt when translating.
    """
    from ..core.pipeline import STAGES, CaptionOptions
    from ..core.progress import Progress
    from .caption_job import run_caption_job
    from .progress_bar import progress_bar

    options = CaptionOptions(
        language=language,
        translate_to=translate_to,
        preset=preset,
        tracks=[t.strip() for t in tracks.split(",") if t.strip()] if tracks else None,
        model=model,
        device=device,
        formats=[f.strip() for f in formats.split(",") if f.strip()],
        allow_missing=allow_missing,
        simplified_chinese=not traditional,
        glossary=str(glossary) if glossary else None,
        translation_model=translation_model,
        absolute_times=absolute_times,
        max_chars_per_line=max_chars_per_line,
        max_lines=max_lines,
        max_chars_per_second=max_chars_per_second,
        rate=rate,
        start_timecode=start_timecode,
        drop_frame=drop_frame,
        speakers=speakers,
        speaker_names=speaker_names,
        speaker_marks=speaker_marks,
        packing=not no_packing,
        vocabulary=_corrections_vocabulary(language) if corrections_vocabulary else None,
    )
    options.validate()
    use_cluster(**cluster)
    with progress_bar("captioning", disable=quiet) as listener:
        result = run_caption_job(timeline, out_dir, options, Progress(STAGES, listener))
    doc = result["document"]
    for warning in doc.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    tl = doc["timeline"]
    click.echo(
        f"{len(doc['cues'])} cues ({', '.join(doc['languages'])}) for {tl['name']!r} at {tl['rate']} fps, "
        f"start {tl['start_timecode']}"
    )
    for name in result["files"]:
        click.echo(f"  {out_dir / name}")
    if not doc["cues"]:
        click.echo("warning: no speech was found, so no captions were made", err=True)
    if result.get("kept"):
        click.echo(
            f"warning: kept the earlier {', '.join(result['kept'])} in {out_dir} (this run found nothing "
            "to replace them with)",
            err=True,
        )


def _corrections_vocabulary(language: str) -> list[str] | None:
    """The engine's corrections vocabulary (the same store the review page fills), for ``language``."""
    from ..core.corrections.store import CorrectionStore
    from .service.paths import config_dir

    words = CorrectionStore(config_dir()).vocabulary(language=language)
    return words or None
