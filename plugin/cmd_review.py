"""`captionbridge review CAPTIONS.json|JOB_ID`: open the engine's review page on a job, through a one-time
link.

The link is minted with the engine's token (read from the config folder, as every client does) and works once;
the page then runs on its own session cookie and never sees the token. A captions JSON from a CLI run is
handed to the engine as a finished job first; ``--timeline`` gives it the audio, and approved versions are
also written beside the JSON (``<stem>.v<N>.<format>``).
"""

from __future__ import annotations

import json
import re
import webbrowser
from pathlib import Path

import click

from ..core.errors import CaptionBridgeError, InputError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class EngineNotRunning(CaptionBridgeError):
    code = "engine_not_running"
    exit_code = 6


class ReviewRefused(CaptionBridgeError):
    code = "review_refused"
    exit_code = 3


@click.command("review")
@click.argument("target", required=False, metavar="CAPTIONS.json|JOB_ID")
@click.option(
    "--timeline",
    type=click.Path(exists=True, dir_okay=True),
    default=None,
    help="The timeline a captions JSON is for: its audio is played on the page, and OTIO/FCPXML/xmeml "
    "versions keep the edit.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=True,
    show_default=True,
    help="Open the link in the default browser (it is printed either way).",
)
def review_cmd(target: str | None, timeline: str | None, open_browser: bool) -> None:
    """Review and correct captions in the browser (the page the running engine serves).

    Without an argument the page opens on the job list."""
    from .service.client import EngineClient, EngineError
    from .service.paths import config_dir

    try:
        client = EngineClient.discover(config_dir())
        client.health()
    except EngineError as exc:
        raise EngineNotRunning(
            f"{exc.message}. The review page is served by the engine: start it with "
            "'captionbridge serve' and run this again"
        ) from None
    try:
        job_id = None
        if target:
            job_id = target if JOB_ID.match(target) else _import(client, Path(target), timeline)
        elif timeline:
            raise InputError(
                "--timeline goes with a captions JSON: captionbridge review CAPTIONS.json --timeline TIMELINE"
            )
        body = json.dumps({"job_id": job_id} if job_id else {}).encode()
        link = client.request("POST", "/v1/review/links", body=body, content_type="application/json")
    except EngineError as exc:
        raise ReviewRefused(f"the engine refused: {exc.message}") from None
    click.echo(link["url"])
    click.echo(f"(one-time link, valid {int(link['expires_in'])} s; run this again for another)", err=True)
    if open_browser:
        try:
            webbrowser.open(link["url"], new=2)
        except Exception:  # no browser here: the printed link is enough
            pass


def _import(client, path: Path, timeline: str | None) -> str:
    if not path.exists():
        raise InputError(
            f"{path} is neither a job id (32 hex characters) nor a file: pass a job id from "
            "'captionbridge serve' jobs or a <stem>.captions.json"
        )
    if path.suffix.lower() != ".json":
        raise InputError(
            f"{path}: review takes the captions JSON (<stem>.captions.json from 'caption --formats "
            "json'), not a {path.suffix or 'suffix-less'} file"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable captions JSON ({exc})") from None
    body = {"document": document, "source_path": str(path.resolve())}
    if timeline:
        body["timeline_path"] = str(Path(timeline).resolve())
    job = client.request(
        "POST", "/v1/review/imports", body=json.dumps(body).encode(), content_type="application/json"
    )
    return job["id"]
