"""`captionbridge align`: time a known script against audio or a timeline (English with the acoustic aligner,
other languages with the Whisper model itself) and write every format `caption` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

TIMELINE_SUFFIXES = (".otio", ".otioz", ".otiod", ".xml", ".fcpxml", ".fcpxmld", ".edl")


def is_timeline(path: Path) -> bool:
    """Whether ``align`` reads this source as a timeline (by suffix; a folder is an .otiod/.fcpxmld
    bundle)."""
    return path.suffix.lower() in TIMELINE_SUFFIXES or path.is_dir()


@click.command("align")
@click.argument("source", metavar="AUDIO_OR_TIMELINE", type=click.Path(path_type=Path))
@click.option(
    "--text",
    "script_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The script: UTF-8 text, words separated by spaces (Chinese may be unspaced).",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--language", default="auto", show_default=True, help="Spoken language (en, zh, ...) or auto.")
@click.option(
    "--model", default=None, help="Whisper model: a folder, a packaged model, or a hub name when online."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--rate", default="25", show_default=True, help="Frame rate for a bare audio file (e.g. 24000/1001)."
)
@click.option("--preset", default=None, help="Caption preset for the composed cues (default: by language).")
@click.option("--tracks", default=None, help="Timeline audio tracks to use, e.g. A1,A2.")
@click.option(
    "--formats",
    default="json,srt",
    show_default=True,
    help="Any of json,srt,vtt,ass,ttml,otio,fcpxml,xmeml (as for caption).",
)
@click.option("--absolute-times", is_flag=True, help="SRT/VTT times include the start timecode.")
def align_cmd(
    source: Path,
    script_path: Path,
    out_dir: Path,
    language: str,
    model: str | None,
    device: str,
    rate: str,
    preset: str | None,
    tracks: str | None,
    formats: str,
    absolute_times: bool,
) -> None:
    """Align SCRIPT to AUDIO_OR_TIMELINE; write OUT/<stem>.captions.json (words, cues, alignment report) and
    the other --formats, as `caption` does.

    Every script word is kept: words that could not be placed get times between their neighbours with
    confidence 0 and are listed, as are low-confidence spans.
    """
    from ..adapters.timeline_read import load_timeline
    from ..core.errors import InputError
    from ..core.pipeline import align_document
    from ..core.speech.transcribe import TranscribeOptions
    from ..core.timeline.timebase import parse_rate
    from .caption_job import check_formats, write_outputs

    if not script_path.is_file():
        raise InputError(f"script {script_path} does not exist")
    try:
        script = script_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"script {script_path} is not UTF-8 text: save it as UTF-8 and try again")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a folder")
    wanted = check_formats(formats.split(","))
    options = TranscribeOptions(language=language, model=model, device=device)
    if not source.exists():
        raise InputError(f"{source} does not exist: pass an audio file or a timeline (.otio, .xml, .fcpxml)")
    loaded = load_timeline(source) if is_timeline(source) else None
    doc, alignment = align_document(
        loaded or source,
        script,
        None if language == "auto" else language,
        options,
        rate=parse_rate(rate),
        preset=preset,
        tracks=[t.strip() for t in tracks.split(",")] if tracks else None,
    )
    stem = source.stem if source.suffix else source.name
    written = write_outputs(doc, out_dir, stem, wanted, loaded, absolute_times)
    # the JSON contract carries the alignment report too
    target = out_dir / next(name for name in written if name.endswith(".json"))
    data = json.loads(target.read_text(encoding="utf-8"))
    data["alignment"] = {
        "script_words": len(alignment.words),
        "unplaced": alignment.unplaced,
        "low_confidence": alignment.low_confidence,
    }
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(staging, target)
    for warning in alignment.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"aligned {len(alignment.words)} words ({len(alignment.unplaced)} unplaced, "
        f"{len(alignment.low_confidence)} low-confidence spans), {len(doc.cues)} cues -> "
        + ", ".join(str(out_dir / name) for name in written)
    )
