"""The page's images: the frames as thumbnails packed into sprite sheets, sized to fit a
byte budget, and the squeeze barcode as strips.

Sheets are built while the store is read batch by batch, so memory is bounded by a batch
and a sheet, not by the film's length. Each sheet is a grid of ``PER_ROW`` x ``PER_ROW``
thumbnails in frame order, row by row (the last sheet holds fewer rows), encoded as WebP or
JPEG and sent in base64.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from moviebarcode.columns import to_uint8
from moviebarcode.store import FrameStore

PER_ROW = 16
"""Thumbnails per row of a sheet, and rows per full sheet."""
WIDTH_STEP = 4
"""Thumbnail widths that fit a budget are multiples of this."""
SAMPLE_RUNS, SAMPLE_RUN = 32, 8
"""The sample a budget is fitted on: this many runs of consecutive frames, one in the
middle of each of as many equal parts of the film (a sheet's worth), encoded as a sheet."""
SAMPLE_MARGIN = 1.1
"""A fitted width's projected size, times this, must fit the budget: a sample is a
sample."""
FIT_MIN, FIT_MAX = 32, 320
"""The range of widths that a budget picks from."""
STRIP_TILE = 8192
"""The most columns of a strip image (WebP's limit is 16383 pixels a side)."""
MIME = {"webp": "image/webp", "jpeg": "image/jpeg"}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ThumbSpec:
    """Thumbnails of ``width`` x ``height`` pixels, encoded as ``fmt`` at ``quality``."""

    width: int
    height: int
    fmt: str = "webp"
    quality: int = 60


def thumb_spec(store: FrameStore, width: int, fmt: str, quality: int) -> ThumbSpec:
    """Thumbnails ``width`` wide (at most the frames' width), as high as the frames' aspect
    ratio makes them."""
    h, w = store.frame_shape
    width = max(1, min(width, w))
    return ThumbSpec(width, max(1, round(width * h / w)), fmt, quality)


def encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    """``img`` encoded as WebP or JPEG."""
    buf = io.BytesIO()
    if fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=4)
    else:
        img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def shrink(frames: np.ndarray, spec: ThumbSpec) -> list[Image.Image]:
    """Frames (m, h, w, 3) uint8 as thumbnails (box filter: each pixel the mean of those it
    covers)."""
    size = (spec.width, spec.height)
    return [Image.fromarray(f).resize(size, Image.Resampling.BOX) for f in frames]


def sheet_of(thumbs: list[Image.Image], spec: ThumbSpec) -> bytes:
    """One sheet of up to ``PER_ROW`` ** 2 thumbnails, encoded."""
    rows = math.ceil(len(thumbs) / PER_ROW)
    cols = min(PER_ROW, len(thumbs))
    sheet = Image.new("RGB", (cols * spec.width, rows * spec.height))
    for j, t in enumerate(thumbs):
        sheet.paste(t, ((j % PER_ROW) * spec.width, (j // PER_ROW) * spec.height))
    return encode(sheet, spec.fmt, spec.quality)


def iter_sheets(store: FrameStore, spec: ThumbSpec, progress: Progress | None = None):
    """Yield each sheet of the store's thumbnails, encoded, reading the store batch by
    batch (a batch and a sheet in memory at a time)."""
    per_sheet = PER_ROW * PER_ROW
    pending: list[Image.Image] = []
    for start, frames in store.iter_batches():
        pending.extend(shrink(frames, spec))
        while len(pending) >= per_sheet:
            yield sheet_of(pending[:per_sheet], spec)
            del pending[:per_sheet]
        if progress:
            progress(start + len(frames))
    if pending:
        yield sheet_of(pending, spec)


def sheets(store: FrameStore, spec: ThumbSpec, progress: Progress | None = None) -> dict:
    """The page's thumbnails: their size, grid and MIME type, and the sheets in base64."""
    data = [base64.b64encode(s).decode("ascii") for s in iter_sheets(store, spec, progress)]
    return {
        "width": spec.width,
        "height": spec.height,
        "per_row": PER_ROW,
        "per_sheet": PER_ROW * PER_ROW,
        "type": MIME[spec.fmt],
        "count": len(data),
        "sheets": data,
    }


def sample_frames(store: FrameStore) -> Iterator[np.ndarray]:
    """Runs of ``SAMPLE_RUN`` consecutive frames spread over the film, a sheet's worth in
    all (every frame of a shorter film)."""
    n = store.frames_done
    if n <= SAMPLE_RUNS * SAMPLE_RUN:
        starts = range(0, n, SAMPLE_RUN)
    else:
        middles = (np.arange(SAMPLE_RUNS) + 0.5) * n / SAMPLE_RUNS
        starts = np.clip(middles - SAMPLE_RUN / 2, 0, n - SAMPLE_RUN).astype(int)
    for s in starts:
        yield store.frames[s : min(n, s + SAMPLE_RUN)]


def fit_width(store: FrameStore, budget: int, fmt: str, quality: int) -> int:
    """The widest thumbnails (a multiple of ``WIDTH_STEP`` from ``FIT_MIN`` to ``FIT_MAX``,
    at most the frames' width) whose sheets, in base64, should fit ``budget`` bytes:
    measured on a sample of the film (:func:`sample_frames`) and scaled to its length. 0
    when even the smallest do not fit."""
    n = store.frames_done
    width = min(FIT_MAX, store.frame_shape[1]) // WIDTH_STEP * WIDTH_STEP
    if width < FIT_MIN or budget <= 0:
        return 0
    first = thumb_spec(store, width, fmt, quality)
    sample = [t for run in sample_frames(store) for t in shrink(run, first)]
    while width >= FIT_MIN:
        spec = thumb_spec(store, width, fmt, quality)
        size = (spec.width, spec.height)
        thumbs = (
            [t.resize(size, Image.Resampling.BOX) for t in sample]
            if width < first.width
            else sample
        )
        projected = len(sheet_of(thumbs, spec)) / len(thumbs) * 4 / 3 * n * SAMPLE_MARGIN
        if projected <= budget:
            return width
        guess = width * math.sqrt(budget / projected)  # bytes grow about with the area
        width = min(width - WIDTH_STEP, int(guess) // WIDTH_STEP * WIDTH_STEP)
    return 0


def strips(values: np.ndarray, rows: int, fmt: str, quality: int) -> list[dict]:
    """Per-frame columns (n, h, 3) float sRGB (the squeeze mode's) as images ``rows`` high
    (box filter), at most ``STRIP_TILE`` columns each: ``[{start, width, src}]``, ``src`` a
    data URI."""
    cols = to_uint8(np.asarray(values, np.float64)).transpose(1, 0, 2)  # (h, n, 3)
    rows = max(1, min(rows, cols.shape[0]))
    out = []
    for lo in range(0, cols.shape[1], STRIP_TILE):
        tile = np.ascontiguousarray(cols[:, lo : lo + STRIP_TILE])
        img = Image.fromarray(tile).resize((tile.shape[1], rows), Image.Resampling.BOX)
        data = base64.b64encode(encode(img, fmt, quality)).decode("ascii")
        src = f"data:{MIME[fmt]};base64,{data}"
        out.append({"start": lo, "width": int(tile.shape[1]), "src": src})
    return out
