"""Export each frame's k-means palette as JSON or CSV.

JSON (``.json``)::

    {"k": 8, "space": "rgb",
     "frames": [{"index": 0, "time": 0.0,
                 "colors": [[r, g, b], ...], "shares": [0.41, ...]}, ...]}

CSV (``.csv``): a header ``index,time,rank,r,g,b,share`` then one row per (frame, cluster).

In both, colours are integer sRGB 0..255; clusters are ordered by share, largest first
(``rank`` 0 is the largest); shares are rounded to 4 decimals by largest-remainder
rounding, so a frame's rounded shares still sum to 1; clusters whose rounded share is 0
are omitted. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from moviebarcode.columns import stacked_heights, to_uint8
from moviebarcode.errors import MoviebarcodeError
from moviebarcode.image import atomic_output

__all__ = ["PALETTE_FORMATS", "palette_rows", "write_palette"]

PALETTE_FORMATS = (".json", ".csv")

_SHARE_UNITS = 10_000  # shares are rounded to 1/10000


def palette_rows(colours_srgb: Any, shares: Any) -> list[tuple[list[list[int]], list[float]]]:
    """Per frame: (colours, shares), largest share first, rounded, zero shares dropped.

    Parameters
    ----------
    colours_srgb : array of shape (F, k, 3)
        Cluster colours, sRGB 0..255.
    shares : array of shape (F, k)
        Cluster shares.

    Returns
    -------
    list of (list of [r, g, b], list of float)
        Per frame: the colours as ints and their shares (4 decimals, summing to 1 up to
        float error), in the same order.
    """
    cols = to_uint8(np.asarray(colours_srgb, dtype=np.float64))
    sh = np.asarray(shares, dtype=np.float64)
    if cols.ndim != 3 or cols.shape[-1] != 3 or sh.shape != cols.shape[:2]:
        raise ValueError(
            f"colours must be (F, k, 3) and shares (F, k), got {cols.shape} and {sh.shape}"
        )
    units = stacked_heights(sh, _SHARE_UNITS)  # exact integer split of 10000 per frame
    k = sh.shape[1]
    idx = np.broadcast_to(np.arange(k), sh.shape)
    order = np.lexsort((idx, -sh, -units), axis=-1)
    rows = []
    for c, u, o in zip(cols, units, order, strict=True):
        keep = [j for j in o if u[j] > 0]
        rows.append(([c[j].tolist() for j in keep], [int(u[j]) / _SHARE_UNITS for j in keep]))
    return rows


def write_palette(
    path: str | os.PathLike[str],
    *,
    k: int,
    space: str,
    times: Any,
    indices: Any,
    colours_srgb: Any,
    shares: Any,
) -> Path:
    """Write the per-frame palettes to ``path``, as JSON or CSV by its suffix.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its suffix (``.json`` or ``.csv``, any case) picks the format.
    k : int
        Clusters asked for (recorded in JSON).
    space : str
        Clustering colour space, e.g. ``"rgb"`` or ``"lab"`` (recorded in JSON).
    times : array of shape (F,)
        Frame times, seconds.
    indices : array of shape (F,)
        Frame indices.
    colours_srgb : array of shape (F, k, 3)
        Cluster colours, sRGB 0..255.
    shares : array of shape (F, k)
        Cluster shares.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MoviebarcodeError
        If the suffix is neither ``.json`` nor ``.csv``.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PALETTE_FORMATS:
        raise MoviebarcodeError(
            f"palette file {str(target)!r} must end in .json or .csv, not {target.suffix!r}"
        )
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    ix = np.asarray(indices).reshape(-1)
    rows = palette_rows(colours_srgb, shares)
    if not len(t) == len(ix) == len(rows):
        raise ValueError(
            f"times ({len(t)}), indices ({len(ix)}) and colours ({len(rows)}) differ in length"
        )
    frames = zip(ix.tolist(), (round(x, 6) for x in t.tolist()), rows, strict=True)

    if suffix == ".json":
        doc = {
            "k": int(k),
            "space": str(space),
            "frames": [
                {"index": int(i), "time": tt, "colors": c, "shares": s} for i, tt, (c, s) in frames
            ],
        }
        text = json.dumps(doc, separators=(",", ":"))
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", "time", "rank", "r", "g", "b", "share"])
        for i, tt, (c, s) in frames:
            for rank, (rgb, share) in enumerate(zip(c, s, strict=True)):
                w.writerow([int(i), tt, rank, *rgb, share])
        text = buf.getvalue()

    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
