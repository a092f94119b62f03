"""``captionbridge render-audio`` and ``captionbridge inspect``: a timeline's audio as one WAV, and what is in
it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click


def _load(timeline: str):
    from ..adapters.timeline_read import load_timeline

    return load_timeline(Path(timeline))


@click.command("render-audio")
@click.argument("timeline", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="WAV to write (mono float32; sample 0 = the timeline's first frame).",
)
@click.option(
    "--sample-rate",
    default=16000,
    show_default=True,
    type=click.IntRange(1000, 384000),
    help="Output sample rate in Hz.",
)
@click.option(
    "--tracks", default=None, help="Audio tracks to mix, e.g. A1,A2 (default: every audible track)."
)
@click.option("--allow-missing", is_flag=True, help="Render silence for missing media instead of stopping.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def render_audio_cmd(
    timeline: str, output: str, sample_rate: int, tracks: str | None, allow_missing: bool, quiet: bool
) -> None:
    """Mix TIMELINE's audio (enabled clips on unmuted tracks) into one mono WAV, sample-exact."""
    from ..core.errors import InputError
    from ..core.progress import Progress
    from ..core.storage import writable_folder_problem
    from ..core.timeline.regions import audio_regions
    from ..core.timeline.render_audio import render_audio
    from .progress_bar import progress_bar

    target = Path(output)
    problem = (
        f"{target} is a folder"
        if target.is_dir()
        else writable_folder_problem(target.parent if str(target.parent) else Path("."))
    )
    if problem:  # before reading or rendering anything
        raise InputError(f"cannot write {output}: {problem}; pass -o a WAV file in a folder you can write to")
    loaded = _load(timeline)
    regions = audio_regions(loaded, tracks, require_audio=True)
    # a bar on stderr for long renders (hidden when stderr is not a terminal or with --quiet)
    with progress_bar("render-audio", disable=quiet) as listener:
        result = render_audio(
            regions,
            loaded.duration_frames,
            loaded.timebase,
            sample_rate=sample_rate,
            out=Path(output),
            allow_missing=allow_missing,
            progress=Progress({"render": 1.0}, listener),
        )
    for warning in loaded.warnings + result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.missing:
        files = sorted({m["path"] or "(no media reference)" for m in result.missing})
        click.echo(
            f"warning: {len(files)} missing media file(s) rendered as silence: " + ", ".join(files), err=True
        )
    if not quiet:
        seconds = result.num_samples / result.sample_rate
        click.echo(
            f"wrote {output}: {seconds:.3f} s at {result.sample_rate} Hz, {result.regions_rendered} "
            "region(s) "
            f"from {result.sources_decoded} file(s), peak {result.peak:.3f}, timeline "
            f"{loaded.timebase.describe()}"
        )


def inspect_data(loaded, tracks: str | None = None) -> dict:
    """Everything ``inspect`` shows, as JSON-ready data."""
    import opentimelineio as otio

    from ..core.timeline.regions import (
        audio_regions,
        audio_tracks,
        missing_media,
        skipped_clips,
        video_cut_points,
    )
    from ..core.timeline.timebase import rate_label

    tb = loaded.timebase
    track_rows = []
    video_index = 0
    # audio_tracks lists the audio tracks in timeline order: match them by position (OTIO's Python wrappers
    # are new objects on every access, so their id() cannot be a key)
    audio_numbers = iter([n for n, _ in audio_tracks(loaded)])
    for track in loaded.timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            continue
        if track.kind == otio.schema.TrackKind.Audio:
            label = f"A{next(audio_numbers)}"
        elif track.kind == otio.schema.TrackKind.Video:
            video_index += 1
            label = f"V{video_index}"
        else:
            label = track.kind
        counts = Counter()
        for child in track:
            if isinstance(child, otio.schema.Clip):
                counts["clips"] += 1
                if not child.enabled:
                    counts["disabled"] += 1
            elif isinstance(child, otio.schema.Stack):
                counts["nested"] += 1
            elif isinstance(child, otio.schema.Gap):
                counts["gaps"] += 1
            elif isinstance(child, otio.schema.Transition):
                counts["transitions"] += 1
        track_rows.append(
            {
                "track": label,
                "name": track.name,
                "kind": track.kind,
                "enabled": track.enabled,
                **{k: counts.get(k, 0) for k in ("clips", "disabled", "nested", "gaps", "transitions")},
            }
        )
    regions = audio_regions(loaded, tracks)
    missing = missing_media(regions)
    return {
        "name": loaded.name,
        "path": str(loaded.path),
        "format": loaded.format,
        "rate": tb.to_dict()["rate"],
        "rate_label": rate_label(tb.rate),
        "fps": float(tb.rate),
        "start_timecode": tb.start_timecode,
        "start_frame": tb.start_frame,
        "drop_frame": tb.drop_frame,
        "duration_frames": loaded.duration_frames,
        "end_timecode": tb.timecode(loaded.duration_frames),
        "tracks": track_rows,
        "clip_counts": {
            "video": sum(r["clips"] for r in track_rows if r["track"].startswith("V")),
            "audio": sum(r["clips"] for r in track_rows if r["track"].startswith("A")),
            "disabled": sum(r["disabled"] for r in track_rows),
            "nested": sum(r["nested"] for r in track_rows),
        },
        "audio_regions": [r.to_dict() for r in regions],
        "silent_clips": [
            {
                "clip": s.clip_name,
                "track": s.track_label,
                "start_frame": s.timeline_start_frame,
                "timecode": tb.timecode(s.timeline_start_frame),
                "reason": s.reason,
            }
            for s in skipped_clips(loaded, tracks)
        ],
        "missing_media": missing,
        "video_cut_points": video_cut_points(loaded),
        "warnings": list(dict.fromkeys(loaded.warnings)),
    }


@click.command("inspect")
@click.argument("timeline", type=click.Path(dir_okay=True, path_type=str))
@click.option("--tracks", default=None, help="Only these audio tracks, e.g. A1,A2.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--limit", default=50, show_default=True, help="Audio regions to list in text output (0: all).")
def inspect_cmd(timeline: str, tracks: str | None, as_json: bool, limit: int) -> None:
    """Show TIMELINE's name, rate, start timecode, drop-frame, tracks, clips, audio regions and missing
    media."""
    loaded = _load(timeline)
    data = inspect_data(loaded, tracks)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    echo = click.echo
    echo(f"Timeline:     {data['name']}  ({data['format']}, {data['path']})")
    echo(f"Rate:         {data['rate_label']} fps ({data['rate']})")
    echo(f"Start:        {data['start_timecode']} (frame {data['start_frame']})")
    echo(f"Drop-frame:   {'yes' if data['drop_frame'] else 'no'}")
    echo(f"Duration:     {data['duration_frames']} frames, ends {data['end_timecode']}")
    echo("Tracks:")
    for row in data["tracks"]:
        extra = ", ".join(f"{row[k]} {k}" for k in ("disabled", "nested", "gaps", "transitions") if row[k])
        state = "" if row["enabled"] else " [muted/disabled]"
        echo(
            f"  {row['track']:<4} {row['name'] or '':<20} {row['clips']} clips"
            + (f" ({extra})" if extra else "")
            + state
        )
    regions = data["audio_regions"]
    echo(f"Audio regions: {len(regions)}")
    shown = regions if not limit else regions[:limit]
    for r in shown:
        nest = f" in {'/'.join(r['nested_in'])}" if r["nested_in"] else ""
        ch = f" ch {','.join(str(c + 1) for c in r['channels'])}" if r["channels"] is not None else ""
        speed = f" speed {r['speed']:g}x" if r["speed"] != 1 else ""
        echo(
            f"  {r['track']:<4} {r['start_timecode']}  frames {r['start_frame']}-{r['end_frame']}  "
            f"{r['clip']}{nest}  <- {r['source']} @ {r['source_offset']:.3f}s{ch}{speed}"
        )
    if limit and len(regions) > limit:
        echo(f"  ... {len(regions) - limit} more (use --limit 0 or --json)")
    if data["silent_clips"]:
        echo(f"Silent clips: {len(data['silent_clips'])}")
        for s in data["silent_clips"][: limit or None]:
            echo(f"  {s['track']:<4} {s['timecode']}  {s['clip']}: {s['reason']}")
    if data["missing_media"]:
        echo(f"Missing media: {len(data['missing_media'])} clip use(s)")
        for m in data["missing_media"]:
            echo(f"  {m['track']:<4} {m['timecode']}  {m['clip']}: {m['path']}")
    else:
        echo("Missing media: none")
    echo(f"Video cut points: {len(data['video_cut_points'])}")
    for warning in data["warnings"]:
        echo(f"warning: {warning}")
