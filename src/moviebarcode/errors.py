"""The library's exceptions: each user-facing failure is a MoviebarcodeError with a one-line
message."""


class MoviebarcodeError(Exception):
    """A failure the user can act on; the CLI prints its message on one line and exits non-zero."""


class InputError(MoviebarcodeError):
    """The input movie or store is missing, unreadable or not what it should be."""


class StoreError(MoviebarcodeError):
    """A frame store is incomplete, of an unknown layout, or does not match its source."""


class FFmpegError(MoviebarcodeError):
    """ffmpeg could not be found or failed."""


class ParameterError(MoviebarcodeError, ValueError):
    """An option or parameter has a value it cannot take; the CLI exits 2, like a usage error."""


class Interrupted(MoviebarcodeError):
    """Work stopped before its end by a signal, to this process or to its ffmpeg; the same
    command resumes it."""
