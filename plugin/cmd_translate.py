"""`captionbridge translate`: add a language to captions a person has corrected (the JSON contract).

Reads ``<stem>.captions.json``, translates it sentence by sentence (``core.translate.cues``), and writes the
bilingual ``<stem>.captions.json`` to ``--out`` (beside the input it becomes ``<stem>-<lang>.captions.json``:
the person's file is never overwritten) plus any caption formats asked for -- with two languages,
``srt``/``ass`` also produce the bilingual files.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.errors import InputError


def read_document(path: Path):
    """The CaptionDocument in a captions JSON file; any problem is an ``InputError`` naming the file."""
    from ..core.model import CaptionDocument

    if not path.is_file():
        raise InputError(f"captions file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path} is not a captions JSON file ({exc}); pass the <stem>.captions.json that "
            "`captionbridge caption` wrote"
        )
    try:
        doc = CaptionDocument.from_dict(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"{path} does not follow the captions JSON contract ({type(exc).__name__}: {exc}); "
            "expected 'timeline' (rate, start_timecode) and 'cues' (start_frame, end_frame, text)"
        )
    if not doc.cues:
        raise InputError(f"{path} has no cues to translate")
    return doc


def output_stem(path: Path, target: str, out_dir: Path) -> str:
    """The input's stem (``talk`` for ``talk.captions.json``); ``talk-en`` when that would overwrite the
    input."""
    name = path.name
    for suffix in (".captions.json", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if (out_dir / f"{name}.captions.json").resolve() == path.resolve():
        return f"{name}-{target}"
    return name


@click.command("translate")
@click.argument("captions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["en", "zh"]), required=True, help="Language to add.")
@click.option(
    "--model",
    default=None,
    help="Translation model: a folder (Hugging Face MarianMT/NLLB or its CTranslate2 conversion) or, "
    "with a network, a hub name such as Helsinki-NLP/opus-mt-zh-en. Default: the first local model "
    "for the direction.",
)
@click.option(
    "--glossary",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fixed term translations: TSV (zh<TAB>en) or JSON.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: beside CAPTIONS).",
)
@click.option(
    "--stem", default=None, help="Output file stem (default: the input's, or <stem>-<lang> beside it)."
)
@click.option(
    "--formats",
    default="json",
    show_default=True,
    help="Comma-separated: json plus any caption format (srt, vtt, ass, ttml); srt/ass add bilingual files.",
)
@click.option(
    "--preset",
    default="netflix",
    show_default=True,
    help="Limits for the new language: netflix (by language), netflix-en, netflix-zh, broadcast, social.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--no-retime", is_flag=True, help="Never move cue times, even to meet reading speed.")
@click.option("--traditional", is_flag=True, help="Keep Chinese output in Traditional characters.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the translation report (JSON) here.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def translate_cmd(
    captions: Path,
    target: str,
    model: str | None,
    glossary: Path | None,
    out_dir: Path | None,
    stem: str | None,
    formats: str,
    preset: str,
    device: str,
    no_retime: bool,
    traditional: bool,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Translate CAPTIONS (a .captions.json) into --to, sentence by sentence, on the same cues.

    Both languages share each cue's timing; a cue that reads too fast may be lent a few frames (reported; see
    --no-retime). Whatever still breaks a limit is printed as a warning.
    """
    from ..core.progress import Progress
    from ..core.storage import writable_folder_problem
    from ..core.translate.cues import translate_document_with_report
    from .progress_bar import progress_bar

    doc = read_document(captions)
    wanted = [f.strip().lower() for f in formats.split(",") if f.strip()] or ["json"]
    out_dir = out_dir or captions.parent
    problem = writable_folder_problem(out_dir)  # before a translation model is looked for or loaded
    if problem:
        raise InputError(
            f"cannot write the translation into {out_dir}: {problem}; pass --out a folder you can write to"
        )
    stem = stem or output_stem(captions, target, out_dir)
    with progress_bar("translating", disable=quiet) as listener:
        translated, report = translate_document_with_report(
            doc,
            target,
            model=model,
            device=device,
            glossary=glossary,
            progress=Progress({"translate": 1.0}, listener),
            preset=preset,
            retime=not no_retime,
            simplified_chinese=not traditional,
        )
    files = write_outputs(translated, out_dir, stem, wanted)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        files.append(report_path)
    for warning in report.warnings():
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{report.cues} cues ({report.sentences} sentences) translated {report.source_lang}->"
        f"{report.target_lang} with {report.model} ({report.backend}, {report.device}) in "
        f"{report.seconds:.1f} s"
        + (f"; {len(report.retimed)} cue(s) retimed" if report.retimed else "")
        + (f"; {len({u['cue'] for u in report.unfit})} cue(s) still over the limits" if report.unfit else "")
    )
    for path in files:
        click.echo(f"  {path}")


def write_outputs(doc, out_dir: Path, stem: str, formats: list[str]) -> list[Path]:
    """The JSON contract (always) and the caption formats asked for, through the caption writers."""
    from ..adapters.caption_formats import write_captions

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out_dir}: {exc}")
    return write_captions(doc, out_dir, stem, ["json"] + [f for f in formats if f != "json"])
