"""Allocator tuning for the CPU clustering engine.

The NumPy k-means makes many short-lived temporaries of a few MiB. glibc's malloc hands
blocks that big back to the kernel when they are freed (``mmap`` above a threshold,
heap trimming), so each new temporary starts on fresh pages and page-faults, and the
kernel's share of the run time grows large (the README's benchmark section says how much).
:func:`keep_freed_memory` raises glibc's thresholds so that freed blocks are reused
instead; the process keeps at most about ``TRIM_BYTES`` of freed memory, a constant,
whatever the film's length. It is process-wide, applied once, only on glibc, and
``MOVIEBARCODE_MALLOC_TUNE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 << 20
TRIM_BYTES = 128 << 20
TOP_PAD_BYTES = 16 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc reuse freed memory rather than return it to the kernel at once (see the
    module docstring). Returns whether the tuning is in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("MOVIEBARCODE_MALLOC_TUNE") == "0":
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # not glibc (musl): its malloc has no such thresholds
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _applied = all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_BYTES),
            (M_TRIM_THRESHOLD, TRIM_BYTES),
            (M_TOP_PAD, TOP_PAD_BYTES),
        )
    )
    return _applied
