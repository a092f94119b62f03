"""The `captionbridge` command line.

Subcommands live in their own modules (``plugin/cmd_*.py``) and are imported only when run, so `--help` stays
fast and a model library is never loaded to print a version. Errors a user can act on (``CaptionBridgeError``)
print one line and exit with their code; nothing a user does wrong ends in a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__
from ..core.errors import EXIT_INTERNAL, CaptionBridgeError

# name -> "module:attribute" (relative to captionbridge.plugin). One line per command.
COMMANDS: dict[str, str] = {
    "check": "cmd_check:check_cmd",
    "caption": "cmd_caption:caption_cmd",
    "serve": "cmd_serve:serve_cmd",
    "models": "cmd_models:models_cmd",
    "align": "cmd_align:align_cmd",
    "translate": "cmd_translate:translate_cmd",
    "render-audio": "cmd_timeline:render_audio_cmd",
    "inspect": "cmd_timeline:inspect_cmd",
    "install": "cmd_install:install_cmd",
    "uninstall": "cmd_install:uninstall_cmd",
    "review": "cmd_review:review_cmd",
    "finetune": "cmd_finetune:finetune_cmd",
    "corrections": "cmd_finetune:corrections_cmd",
    "cluster": "cmd_cluster:cluster_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module_name, attr = COMMANDS[name].split(":")
            module = importlib.import_module(f"captionbridge.plugin.{module_name}")
            return getattr(module, attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaptionBridgeError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="captionbridge")
def cli() -> None:
    """Frame-accurate, offline captions for editors' timelines (Resolve, Premiere, OTIO)."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="captionbridge", standalone_mode=True)
    except Exception as exc:  # a bug in CaptionBridge, not a user mistake
        if os.environ.get("CAPTIONBRIDGE_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} "
            "(a CaptionBridge bug; rerun with CAPTIONBRIDGE_DEBUG=1 for details and report it)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
