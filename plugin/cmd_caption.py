"""`captionbridge caption`: the main job from the command line, with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click

from .cluster.bay import cluster_options, use_cluster


@click.command("caption")
@click.argument("timeline", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for the caption files.")
@click.option("--language", default="auto", show_default=True, help="Spoken language (en, zh, ...) or auto.")
@click.option("--translate-to", type=click.Choice(["en", "zh"]), default=None, help="Add a translated language.")
@click.option("--preset", default=None, help="netflix-en, netflix-zh, broadcast, social (default: by language).")
@click.option("--tracks", default=None, help="Audio tracks to caption, e.g. A1,A2 (default: all audible).")
@click.option("--model", default=None, help="Whisper model: a folder, a packaged model, or a hub name when online.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--formats", default="json,srt", show_default=True,
              help="Any of json,srt,vtt,ass,ttml,otio,fcpxml,xmeml.")
@click.option("--glossary", type=click.Path(path_type=Path), default=None, help="Term list (translations, hotwords).")
@click.option("--translation-model", default=None, help="Translation model folder or hub name.")
@click.option("--max-chars-per-line", type=int, default=None)
@click.option("--max-lines", type=int, default=None)
@click.option("--max-chars-per-second", type=float, default=None)
@click.option("--absolute-times", is_flag=True, help="SRT/VTT times include the start timecode.")
@click.option("--allow-missing", is_flag=True, help="Caption what is there when some media is missing.")
@click.option("--rate", default=None, help="For a bare media file: the frame rate, e.g. 24000/1001 or 25 "
              "(a video file's own rate otherwise).")
@click.option("--start-timecode", default=None, help="For a bare media file: the timecode of its first frame.")
@click.option("--drop-frame/--non-drop-frame", "drop_frame", default=None,
              help="Override the timeline's display format (29.97/59.94 only).")
@click.option("--traditional", is_flag=True, help="Keep Chinese in Traditional characters.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@cluster_options
def caption_cmd(timeline: Path, out_dir: Path, language: str, translate_to: str | None, preset: str | None,
                tracks: str | None, model: str | None, device: str, formats: str, glossary: Path | None,
                translation_model: str | None, max_chars_per_line: int | None, max_lines: int | None,
                max_chars_per_second: float | None, absolute_times: bool, allow_missing: bool, rate: str | None,
                start_timecode: str | None, drop_frame: bool | None, traditional: bool, quiet: bool,
                **cluster) -> None:
    """Caption TIMELINE (.otio, .otioz, FCP7 .xml, .fcpxml/.fcpxmld, or a bare media file) into OUT.

    Writes OUT/<stem>.captions.json (frames, timecodes, words) and one file per language and format,
    e.g. OUT/<stem>.en.srt, plus OUT/<stem>.bilingual.srt when translating.
    """
    from ..core.pipeline import STAGES, CaptionOptions
    from ..core.progress import Progress
    from .caption_job import run_caption_job
    from .progress_bar import progress_bar

    options = CaptionOptions(
        language=language, translate_to=translate_to, preset=preset,
        tracks=[t.strip() for t in tracks.split(",") if t.strip()] if tracks else None,
        model=model, device=device, formats=[f.strip() for f in formats.split(",") if f.strip()],
        allow_missing=allow_missing, simplified_chinese=not traditional,
        glossary=str(glossary) if glossary else None, translation_model=translation_model,
        absolute_times=absolute_times, max_chars_per_line=max_chars_per_line, max_lines=max_lines,
        max_chars_per_second=max_chars_per_second, rate=rate, start_timecode=start_timecode, drop_frame=drop_frame)
    options.validate()
    use_cluster(**cluster)
    with progress_bar("captioning", disable=quiet) as listener:
        result = run_caption_job(timeline, out_dir, options, Progress(STAGES, listener))
    doc = result["document"]
    for warning in doc.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    tl = doc["timeline"]
    click.echo(f"{len(doc['cues'])} cues ({', '.join(doc['languages'])}) for {tl['name']!r} at {tl['rate']} fps, "
               f"start {tl['start_timecode']}")
    for name in result["files"]:
        click.echo(f"  {out_dir / name}")
    if not doc["cues"]:
        click.echo("warning: no speech was found, so no captions were made", err=True)
