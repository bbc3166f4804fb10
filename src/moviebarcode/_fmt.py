"""Text for people: times as ``H:MM:SS`` and plain-text tables, written once for every
command and report."""

from __future__ import annotations

from collections.abc import Sequence


def hms(seconds: float | None) -> str:
    """``H:MM:SS`` for a time in seconds, rounded to the nearest second (5 -> ``0:00:05``,
    59.6 -> ``0:01:00``); ``?`` for an unknown time (None)."""
    if seconds is None:
        return "?"
    total = int(round(seconds))
    sign = "-" if total < 0 else ""
    h, rest = divmod(abs(total), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}"


def table(head: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> str:
    """A plain-text table: ``head``, a rule, then ``rows``; columns padded to their widest
    cell, those numbered in ``right`` aligned right, trailing spaces stripped."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, cells)])
