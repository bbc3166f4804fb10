"""What every command shares: one-line errors with trustworthy exit codes, progress bars
only on a terminal, warnings that ``--quiet`` silences, and the option types."""

from __future__ import annotations

import functools
import re
import sys

import click

from moviebarcode.choices import values
from moviebarcode.errors import Interrupted, MoviebarcodeError, ParameterError

EXIT_ERROR = 1
"""Bad input: a missing or broken movie or store, an unwritable output, a failed film."""
EXIT_USAGE = 2
"""A usage error: an unknown option, a value an option cannot take, options that conflict."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, or ffmpeg stopped by a signal: the same command resumes."""


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print ``message`` as one error line on stderr and exit with ``code``."""
    click.echo(f"moviebarcode: error: {message}", err=True)
    sys.exit(code)


def _usage_hint() -> str:
    ctx = click.get_current_context(silent=True)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


def friendly_errors(fn):
    """Run a command, turning library errors into one line and a non-zero exit: a
    ParameterError is a usage error (2), Interrupted an interruption (130), any other
    MoviebarcodeError bad input (1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ParameterError as exc:
            fail(f"{exc}{_usage_hint()}", EXIT_USAGE)
        except Interrupted as exc:
            fail(str(exc), EXIT_INTERRUPTED)
        except MoviebarcodeError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted; run the same command again to resume", EXIT_INTERRUPTED)
        except BrokenPipeError:
            sys.exit(EXIT_ERROR)

    return wrapper


def show_progress(quiet: bool) -> bool:
    """Whether to draw a progress bar: on a terminal, unless ``--quiet``."""
    return not quiet and sys.stderr.isatty()


def warn(messages, quiet: bool, prefix: str = "") -> None:
    """Print each warning on stderr, unless ``--quiet`` (which silences all but errors)."""
    if quiet:
        return
    for m in messages:
        click.echo(f"moviebarcode: warning: {prefix}{m}", err=True)


def choice(literal) -> click.Choice:
    """A click Choice of a ``moviebarcode.choices`` Literal's values."""
    return click.Choice(values(literal))


_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?)$")


class TimeParam(click.ParamType):
    """Seconds (``90``, ``12.5``) or ``[hh:]mm:ss[.frac]``."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return float(value)
        m = _TIME.match(str(value).strip())
        if not m:
            self.fail(f"{value!r} is not a time (seconds, mm:ss or hh:mm:ss)", param, ctx)
        h, mi, s = m.groups()
        return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s)


class SizeParam(click.ParamType):
    """``WxH``, both at least 1."""

    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"(\d+)[xX](\d+)", str(value).strip())
        if not m or min(int(m.group(1)), int(m.group(2))) < 1:
            self.fail(f"{value!r} is not a size like 160x90", param, ctx)
        return int(m.group(1)), int(m.group(2))


def apply(options):
    """One decorator from a list of click options (listed in the order --help shows them)."""

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate
