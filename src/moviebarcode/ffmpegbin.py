"""Finding the ffmpeg binary: --ffmpeg / $MOVIEBARCODE_FFMPEG, then ffmpeg on PATH, then the one
shipped in the imageio-ffmpeg wheel."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from moviebarcode.errors import FFmpegError

ENV_VAR = "MOVIEBARCODE_FFMPEG"
_override: str | None = None


def set_ffmpeg(path: str | None) -> None:
    """Use ``path`` as the ffmpeg binary for the rest of the process (None: back to discovery)."""
    global _override
    _override = path
    ffmpeg_exe.cache_clear()
    has_filter.cache_clear()


def ffmpeg_override() -> str | None:
    """The binary set by :func:`set_ffmpeg`, if any (handed on to worker processes)."""
    return _override


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary to run: the override, $MOVIEBARCODE_FFMPEG, ``ffmpeg`` on PATH, or the
    binary shipped in the imageio-ffmpeg wheel, in that order."""
    explicit = _override or os.environ.get(ENV_VAR)
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise FFmpegError(f"ffmpeg not found at {explicit!r}")
        return found
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a declared dependency
        raise FFmpegError(
            "no ffmpeg found: install ffmpeg, or pip install imageio-ffmpeg, or pass --ffmpeg PATH"
        ) from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise FFmpegError(f"no usable ffmpeg: {exc}") from None


@functools.cache
def has_filter(name: str) -> bool:
    """Whether the chosen ffmpeg has the filter ``name`` (zscale is needed for HDR tone mapping)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True, check=False
    ).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())
