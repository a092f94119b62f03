"""`captionbridge serve`: run the local engine the editors' scripts and panels talk to."""

from __future__ import annotations

import logging

import click

from .cluster.bay import cluster_options, use_cluster


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep the loopback default unless you know why not.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one; service.json tells clients which).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Jobs run at once [default: one per GPU, one on CPU].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, writable=True),
    default=None,
    help="Where jobs and results are kept [default: the config folder].",
)
@click.option(
    "--result-ttl",
    type=click.FloatRange(min=1),
    default=7 * 24 * 3600.0,
    show_default=True,
    help="Seconds a finished job's results are kept.",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0.001),
    default=64.0,
    show_default=True,
    help="Largest timeline upload accepted.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name or address clients use to reach a non-loopback engine (repeatable); requests "
    "addressed to any other name are refused (DNS rebinding).",
)
@click.option(
    "--allow-downloads",
    is_flag=True,
    default=False,
    help="Let jobs download a model named by its hub name. Off: the engine never contacts the network.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@cluster_options
def serve_cmd(
    host: str,
    port: int,
    workers: int | None,
    data_dir: str | None,
    result_ttl: float,
    max_upload_mb: float,
    allow_hosts: tuple[str, ...],
    allow_downloads: bool,
    log_level: str,
    **cluster,
) -> None:
    """Run the local caption engine (HTTP API on 127.0.0.1, token in the config folder)."""
    from pathlib import Path

    from .service.paths import config_dir
    from .service.server import ServeOptions, allowed_host_names, is_loopback, serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    facility = use_cluster(**cluster)
    if facility is not None:
        click.echo(
            f"{', '.join(facility.stages)} go to the facility cluster at {facility.url} (when it cannot be "
            f"reached: {'work locally' if facility.on_unreachable == 'fallback' else 'wait for it'})",
            err=True,
        )
    config = config_dir()
    opts = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        data_dir=Path(data_dir) if data_dir else None,
        result_ttl=result_ttl,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        config=config,
        log_level=log_level,
        allow_hosts=tuple(allow_hosts),
        allow_downloads=allow_downloads,
    )
    if not is_loopback(host):
        names = ", ".join(sorted(allowed_host_names(opts)))
        click.secho(
            f"WARNING: listening on {host}, not on loopback: other machines on the network can reach the "
            "engine, only the token protects it, and its traffic is not encrypted. Requests are answered "
            f"only when addressed to {names}; add the name clients use with --allow-host NAME. Use --host "
            "127.0.0.1 unless you really mean this.",
            fg="red",
            bold=True,
            err=True,
        )

    def ready(info: dict) -> None:
        click.echo(
            f"CaptionBridge engine {info['version']} listening on http://{info['host']}:{info['port']} "
            f"(pid {info['pid']}); token in {config / 'token'}; Ctrl-C stops it",
            err=True,
        )

    serve(opts, on_ready=ready)
