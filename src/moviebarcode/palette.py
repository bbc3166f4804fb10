"""Export the k-means palettes of a barcode as JSON or CSV: each frame's, or each shot's.

By frame (``render --by frame``), JSON (``.json``)::

    {"k": 8, "space": "rgb",
     "frames": [{"index": 0, "time": 0.0,
                 "colors": [[r, g, b], ...], "shares": [0.41, ...]}, ...]}

CSV (``.csv``): a header ``index,time,rank,r,g,b,share`` then one row per (frame, cluster).

By shot (``render --by shot``), JSON::

    {"k": 8, "space": "rgb", "by": "shot",
     "shots": [{"start": 0.0, "end": 4.25, "frames": [0, 5],
                "colors": [[r, g, b], ...], "shares": [0.37, ...]}, ...]}

``start`` and ``end`` are the shot's span in seconds, ``[start, end)``; ``frames`` its
sampled frames' indices in the store, ``[first, stop)`` (``index`` in a palette by frame
is the decoded frame number; these are the store's rows). A shot with no sampled frame
(``[i, i]``) is drawn with another shot's colours, and says which: ``"from_shot": j``.
CSV: a header ``shot,start,end,first_frame,stop_frame,from_shot,rank,r,g,b,share`` then
one row per (shot, cluster); ``from_shot`` is empty for a shot of its own colours.

With ``render --mode M`` for a per-frame metric (median, mode, brightest, bright,
brightness, average, weighted-dominant; see ``moviebarcode.metrics``), each frame (shot)
also carries it: JSON adds ``"metric": {"mode": M, "region": R}`` at the top and ``M`` to
each entry, a colour ``[r, g, b]`` or, for brightness, the luminance Y 0..1 (6 decimals);
CSV adds the columns ``M_r,M_g,M_b`` (brightness: ``brightness``) to every row. By shot,
the value is the mean of its frames' values (in linear light).

In both, colours are integer sRGB 0..255; clusters are ordered by share, largest first
(``rank`` 0 is the largest); shares are rounded to 4 decimals by largest-remainder
rounding, so a frame's (a shot's) rounded shares still sum to 1; clusters whose rounded
share is 0 are omitted. Files are written atomically.
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

__all__ = ["PALETTE_FORMATS", "metric_cells", "palette_rows", "write_palette", "write_shot_palette"]

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


def metric_cells(metric: tuple[str, Any] | None) -> tuple[list[str], list[list]]:
    """A per-frame metric ``(mode, values)`` as palette cells: the CSV column names and
    each row's values (colours (n, 3) as integer sRGB, luminance (n,) to 6 decimals)."""
    if metric is None:
        return [], []
    name, values = metric
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        return [name], [[round(x, 6)] for x in v.tolist()]
    return [f"{name}_{c}" for c in "rgb"], to_uint8(v).astype(int).tolist()


def _with_metric(doc: dict, entries: list[dict], metric, region: str) -> dict:
    """The JSON ``doc`` with the metric named at its top and in each of ``entries``."""
    names, cells = metric_cells(metric)
    if not names:
        return doc
    doc["metric"] = {"mode": metric[0], "region": region}
    for entry, c in zip(entries, cells, strict=True):
        entry[metric[0]] = c[0] if len(c) == 1 else c
    return doc


def write_palette(
    path: str | os.PathLike[str],
    *,
    k: int,
    space: str,
    times: Any,
    indices: Any,
    colours_srgb: Any,
    shares: Any,
    metric: tuple[str, Any] | None = None,
    region: str = "whole",
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
    metric, region : optional
        A per-frame metric ``(mode, values (F, 3) or (F,))`` and the region it read.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MoviebarcodeError
        If the suffix is neither ``.json`` nor ``.csv``.
    """
    target, suffix = _target(path)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    ix = np.asarray(indices).reshape(-1)
    rows = palette_rows(colours_srgb, shares)
    if not len(t) == len(ix) == len(rows):
        raise ValueError(
            f"times ({len(t)}), indices ({len(ix)}) and colours ({len(rows)}) differ in length"
        )
    frames = zip(ix.tolist(), (round(x, 6) for x in t.tolist()), rows, strict=True)
    names, cells = metric_cells(metric)
    if suffix == ".json":
        entries = [
            {"index": int(i), "time": tt, "colors": c, "shares": s} for i, tt, (c, s) in frames
        ]
        doc = {"k": int(k), "space": str(space), "frames": entries}
        text = json.dumps(_with_metric(doc, entries, metric, region), separators=(",", ":"))
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", "time", "rank", "r", "g", "b", "share", *names])
        for n, (i, tt, (c, s)) in enumerate(frames):
            extra = cells[n] if cells else []
            for rank, (rgb, share) in enumerate(zip(c, s, strict=True)):
                w.writerow([int(i), tt, rank, *rgb, share, *extra])
        text = buf.getvalue()
    return _write(target, text)


def write_shot_palette(
    path: str | os.PathLike[str],
    *,
    k: int,
    space: str,
    spans: Any,
    frames: Any,
    source: Any,
    colours_srgb: Any,
    shares: Any,
    metric: tuple[str, Any] | None = None,
    region: str = "whole",
) -> Path:
    """Write each shot's palette to ``path``, as JSON or CSV by its suffix.

    Parameters
    ----------
    path : str or os.PathLike
        Output file, ``.json`` or ``.csv`` (any case).
    k, space
        As :func:`write_palette`'s.
    spans : array of shape (S, 2)
        Each shot's start and end, seconds.
    frames : array of shape (S, 2)
        Each shot's sampled frames, ``[first, stop)`` rows of the store.
    source : array of shape (S,)
        The shot whose colours draw each shot (itself, or another for a shot without
        sampled frames).
    colours_srgb : array of shape (S, k, 3)
        Each shot's cluster colours (its source's), sRGB 0..255.
    shares : array of shape (S, k)
        Their shares.
    metric, region : optional
        As :func:`write_palette`'s, one value per shot.

    Returns
    -------
    Path
        ``path``.
    """
    target, suffix = _target(path)
    spans = np.round(np.asarray(spans, np.float64).reshape(-1, 2), 6).tolist()
    frames = np.asarray(frames, np.int64).reshape(-1, 2).tolist()
    source = np.asarray(source, np.int64).reshape(-1).tolist()
    rows = palette_rows(colours_srgb, shares)
    if not len(spans) == len(frames) == len(source) == len(rows):
        raise ValueError("spans, frames, source and colours differ in length")
    shots = []
    for i, ((start, end), f, src, (c, s)) in enumerate(
        zip(spans, frames, source, rows, strict=True)
    ):
        shot = {"start": start, "end": end, "frames": f, "colors": c, "shares": s}
        if src != i:
            shot["from_shot"] = src
        shots.append(shot)
    names, cells = metric_cells(metric)
    if suffix == ".json":
        doc = {"k": int(k), "space": str(space), "by": "shot", "shots": shots}
        doc = _with_metric(doc, shots, metric, region)
        return _write(target, json.dumps(doc, separators=(",", ":")))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*SHOT_CSV_HEADER, *names])
    for i, shot in enumerate(shots):
        head = [i, shot["start"], shot["end"], *shot["frames"], shot.get("from_shot", "")]
        extra = cells[i] if cells else []
        for rank, (rgb, share) in enumerate(zip(shot["colors"], shot["shares"], strict=True)):
            w.writerow([*head, rank, *rgb, share, *extra])
    return _write(target, buf.getvalue())


SHOT_CSV_HEADER = (
    "shot",
    "start",
    "end",
    "first_frame",
    "stop_frame",
    "from_shot",
    "rank",
    "r",
    "g",
    "b",
    "share",
)


def _target(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """``path`` and its suffix, lower case; MoviebarcodeError unless .json or .csv."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PALETTE_FORMATS:
        raise MoviebarcodeError(
            f"palette file {str(target)!r} must end in .json or .csv, not {target.suffix!r}"
        )
    return target, suffix


def _write(target: Path, text: str) -> Path:
    """``text`` written to ``target`` atomically."""
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
