"""``captionbridge install resolve|premiere`` and ``captionbridge uninstall resolve|premiere``."""

from __future__ import annotations

import click

from . import installers

_dest = click.option(
    "--dest",
    type=click.Path(file_okay=False),
    default=None,
    help="Install into this folder instead of the editor's standard one.",
)
_all = click.option(
    "--all-users", is_flag=True, help="Install for every user of this computer (needs admin rights)."
)


def _report(result: installers.InstallResult, verb: str) -> None:
    if result.installed:
        click.echo(f"{verb} into {result.folder}:")
        for path in result.installed:
            click.echo(f"  {path}")
    for path in result.removed:
        click.echo(f"removed {path}")
    for note in result.notes:
        click.echo(note)


@click.group("install")
def install_cmd() -> None:
    """Install the editor entry points (Resolve scripts, Premiere panel)."""


@install_cmd.command("resolve")
@_all
@_dest
def install_resolve(all_users: bool, dest: str | None) -> None:
    """Copy 'Generate Captions' (.py for Studio, .lua for the free edition) into Fusion/Scripts/Utility."""
    _report(installers.install_resolve(all_users=all_users, dest=dest), "installed")


@install_cmd.command("premiere")
@_all
@_dest
def install_premiere(all_users: bool, dest: str | None) -> None:
    """Place the CaptionBridge CEP panel in Adobe's extensions folder and say what to enable."""
    _report(installers.install_premiere(all_users=all_users, dest=dest), "installed")


@click.group("uninstall")
def uninstall_cmd() -> None:
    """Remove the editor entry points."""


@uninstall_cmd.command("resolve")
@_all
@_dest
def uninstall_resolve(all_users: bool, dest: str | None) -> None:
    """Remove the 'Generate Captions' scripts."""
    _report(installers.uninstall_resolve(all_users=all_users, dest=dest), "removed")


@uninstall_cmd.command("premiere")
@_all
@_dest
def uninstall_premiere(all_users: bool, dest: str | None) -> None:
    """Remove the CaptionBridge Premiere panel."""
    _report(installers.uninstall_premiere(all_users=all_users, dest=dest), "removed")
