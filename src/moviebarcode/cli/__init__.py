"""The command line: parses options, calls the library, turns its errors into one-line
messages. The only part of moviebarcode that imports click.

Exit codes: 0 success, 1 bad input (a missing or broken movie or store, an unwritable
output), 2 a usage error (an unknown option, a value an option cannot take, options that
conflict), 130 interrupted (Ctrl-C, or ffmpeg stopped by a signal).
"""

from __future__ import annotations

import importlib
import sys

import click

from moviebarcode import __version__
from moviebarcode.cli._common import EXIT_INTERRUPTED, EXIT_USAGE, fail
from moviebarcode.ffmpegbin import set_ffmpeg

# each command's module, imported only when the command runs: prep then loads no clustering
# or drawing code, and every command starts sooner
COMMANDS = ("prep", "render", "view", "info", "batch", "compare")


class _LazyGroup(click.Group):
    """A group whose commands are imported by name when first used (click's documented
    lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return getattr(importlib.import_module(f"moviebarcode.cli.{cmd_name}"), cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="moviebarcode")
@click.option(
    "--ffmpeg",
    "ffmpeg_path",
    metavar="PATH",
    envvar="MOVIEBARCODE_FFMPEG",
    help="ffmpeg binary to use (default: ffmpeg on PATH, else the one from "
    "imageio-ffmpeg). Also $MOVIEBARCODE_FFMPEG.",
)
def cli(ffmpeg_path: str | None) -> None:
    """Turn a film into a movie barcode, in two stages.

    \b
      moviebarcode prep movie.mkv            decode once into cache/movie.zarr
      moviebarcode render cache/movie.zarr   cluster the cached frames, write the barcode PNG
      moviebarcode view cache/movie.zarr     an interactive page of the barcode, one HTML file
      moviebarcode info cache/movie.zarr     what a store (or a movie) holds
      moviebarcode compare a.zarr b.zarr     two films' barcodes: NRMSE, SSIM, lag, alignment

    Rendering again with another k or mode never decodes the movie again.
    """
    if ffmpeg_path:
        set_ffmpeg(ffmpeg_path)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one line too (exit 2), like library errors."""
    try:
        rv = cli.main(args=argv, prog_name="moviebarcode", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "moviebarcode"
        fail(f"{exc.format_message()} (see '{where} --help')", EXIT_USAGE)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        fail("interrupted", EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else 0)
