"""From barcode columns to a Pillow image: sizing, a labelled time axis, atomic PNG writing.

Column ``i`` of the input becomes image column ``x = i`` (left to right in film order);
``barcode_image`` then resamples to the requested width and height, ``add_cut_marks``
marks shot cuts, ``add_labels`` adds a strip below with the title and a time axis, and
``save_png`` writes the result atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from moviebarcode._fmt import hms
from moviebarcode.columns import to_uint8

__all__ = [
    "DEFAULT_HEIGHT_RANGE",
    "TICK_STEPS",
    "add_cut_marks",
    "add_labels",
    "atomic_output",
    "barcode_image",
    "default_height",
    "save_png",
    "tick_step",
]

#: The default height of a barcode made from one colour per column is 9/16 of its width,
#: clipped to this range.
DEFAULT_HEIGHT_RANGE = (64, 1080)

#: Candidate time-axis tick spacings, in seconds.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 18000, 36000)


def default_height(width: int) -> int:
    """Default barcode height for ``width`` columns: ``round(width * 9 / 16)`` in 64..1080."""
    lo, hi = DEFAULT_HEIGHT_RANGE
    return int(min(max(round(width * 9 / 16), lo), hi))


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize one axis at a time: BOX when shrinking (averages), NEAREST when enlarging."""
    w, h = size
    if img.width != w:
        flt = Image.Resampling.BOX if w < img.width else Image.Resampling.NEAREST
        img = img.resize((w, img.height), flt)
    if img.height != h:
        flt = Image.Resampling.BOX if h < img.height else Image.Resampling.NEAREST
        img = img.resize((img.width, h), flt)
    return img


def barcode_image(
    columns: Any, *, height: int | None = None, width: int | None = None
) -> Image.Image:
    """Build the barcode image from its columns.

    Parameters
    ----------
    columns : array of shape (n, 3) or (n, h, 3)
        One colour per column, stretched to ``height``, or full columns (squeeze or
        stacked modes), row 0 at the top. Float: sRGB 0..255, rounded and clipped; uint8
        used as is.
    height : int, optional
        Default: ``default_height(width)`` for (n, 3) (9/16 of the output width, clipped
        to 64..1080); ``h`` for (n, h, 3).
    width : int, optional
        Default ``n``. Columns are resampled with BOX when shrinking (neighbours averaged)
        and NEAREST when enlarging (crisp bands); heights likewise.

    Returns
    -------
    PIL.Image.Image
        RGB, of size ``(width, height)``.
    """
    arr = np.asarray(columns)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr.astype(np.float64))
    if arr.ndim == 2 and arr.shape[1] == 3:
        arr = arr[None, :, :]  # (1, n, 3): a one-row image
        out_w = arr.shape[1] if width is None else width
        out_h = default_height(out_w) if height is None else height
    elif arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr.transpose(1, 0, 2)  # (h, n, 3): column i -> x = i
        out_w = arr.shape[1] if width is None else width
        out_h = arr.shape[0] if height is None else height
    else:
        raise ValueError(f"columns must be (n, 3) or (n, h, 3), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"columns must not be empty, got shape {np.asarray(columns).shape}")
    if out_w < 1 or out_h < 1:
        raise ValueError(f"image size must be positive, got {out_w}x{out_h}")
    img = Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    return _resize(img, (out_w, out_h))


def cut_mark_width(image_width: int) -> int:
    """The width of a cut mark: 1 px, and 1 px more per 1000 px of image width."""
    return max(1, round(image_width / 1000))


def add_cut_marks(img: Image.Image, columns: Any) -> Image.Image:
    """Return a copy of ``img`` with a thin vertical mark at each shot cut.

    A mark is :func:`cut_mark_width` px wide, centred on the edge before column ``x`` (1 px:
    column ``x`` itself, the first column of the new shot), the full height of the image.
    It is black where the columns under it are light (mean relative luminance of their
    sRGB values above 0.5), white where they are dark, so it shows on any barcode.

    Parameters
    ----------
    img : PIL.Image.Image
        The barcode.
    columns : array of int
        The first image column of each new shot; those outside the image are ignored.
    """
    arr = np.array(img.convert("RGB"))
    m = cut_mark_width(img.width)
    luma = (arr.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)).mean(0)
    for x in np.asarray(columns, np.int64).reshape(-1).tolist():
        lo, hi = max(0, x - m // 2), min(img.width, x - m // 2 + m)
        if hi > lo:
            arr[:, lo:hi] = 0 if luma[lo:hi].mean() > 127.5 else 255
    return Image.fromarray(arr, mode="RGB")


def tick_step(duration: float, *, max_ticks: int = 10) -> float:
    """The smallest step in ``TICK_STEPS`` giving at most ``max_ticks`` intervals."""
    for step in TICK_STEPS:
        if duration / step <= max_ticks:
            return float(step)
    return float(TICK_STEPS[-1])


def _load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: scalable built-in font
    except TypeError:  # pragma: no cover - older Pillow: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def add_labels(
    img: Image.Image,
    *,
    title: str | None,
    duration: float,
    start: float = 0.0,
    font_size: int | None = None,
    background: str | tuple[int, int, int] = (0, 0, 0),
    foreground: str | tuple[int, int, int] = (230, 230, 230),
) -> Image.Image:
    """Return a copy of ``img`` with a strip below: a time axis and, under it, the title.

    The barcode spans times ``start`` .. ``start + duration`` seconds from left to right.
    Ticks sit at multiples of a step from ``TICK_STEPS`` (the smallest one giving at most
    10 intervals whose ``H:MM:SS`` labels do not overlap), each labelled with its time.
    Uses Pillow's built-in font, so no system fonts are needed.

    Parameters
    ----------
    img : PIL.Image.Image
        The barcode.
    title : str or None
        Text under the axis; ``None`` or empty for no title line.
    duration : float
        Seconds covered by the barcode, > 0.
    start : float, optional
        Time of the left edge, seconds (default 0).
    font_size : int, optional
        Text size in pixels; default scales with the width (10..32).
    background, foreground : str or tuple of 3 int, optional
        Strip and text/tick colours (default black and light grey).

    Returns
    -------
    PIL.Image.Image
        A new RGB image, as wide as ``img`` and taller by the strip.
    """
    if not duration > 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    width = img.width
    size = font_size or int(min(max(width // 90, 10), 32))
    font = _load_font(size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = max(size // 3, 3)
    tick_len = max(size // 2, 4)
    label_w, label_h = _text_size(probe, hms(start + duration), font)
    _, line_h = _text_size(probe, "0:00:00 Ag", font)
    label_h = max(label_h, line_h)

    # Smallest step with at most 10 intervals and room for each label (plus a gap).
    step = float(TICK_STEPS[-1])
    for s in TICK_STEPS:
        if duration / s <= 10 and s / duration * width >= label_w + 2 * pad:
            step = float(s)
            break

    title = title or ""
    title_h = _text_size(probe, title, font)[1] if title else 0
    strip_h = pad + tick_len + pad + label_h + pad + (max(title_h, line_h) + pad if title else 0)
    out = Image.new("RGB", (width, img.height + strip_h), background)
    out.paste(img.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)

    y0 = img.height
    first = np.ceil(start / step - 1e-9) * step
    times = np.arange(first, start + duration + 1e-9, step)
    xs = [int(round((t - start) / duration * (width - 1))) for t in times]
    for x in xs:
        draw.line([(x, y0), (x, y0 + tick_len)], fill=foreground, width=max(size // 12, 1))
    labels = [hms(t) for t in times]
    widths = [_text_size(draw, label, font)[0] for label in labels]
    for i, lx in _placed_labels(xs, widths, width, gap=pad):
        draw.text((lx, y0 + tick_len + pad), labels[i], font=font, fill=foreground, anchor="la")
    if title:
        ty = y0 + tick_len + pad + label_h + pad
        title = _fitted(draw, title, font, width - 2 * pad)
        tw, _ = _text_size(draw, title, font)
        draw.text((max((width - tw) // 2, 0), ty), title, font=font, fill=foreground)
    return out


def _placed_labels(xs: list[int], widths: list[int], width: int, gap: int) -> list[tuple[int, int]]:
    """Where the labels of ticks at ``xs`` (of text widths ``widths``) go on an axis
    ``width`` pixels wide: each centred on its tick, pushed inside the axis at the ends,
    and left out where it would come within ``gap`` pixels of one already placed, the
    first and last ticks' labels placed first. Returns (label index, left x) pairs."""
    spans: dict[int, tuple[int, int]] = {}
    order = [0, len(xs) - 1, *range(1, len(xs) - 1)] if len(xs) > 1 else list(range(len(xs)))
    for i in order:
        left = min(max(xs[i] - widths[i] // 2, 0), max(width - widths[i], 0))
        right = left + widths[i]
        if all(right + gap <= a or left >= b + gap for a, b in spans.values()):
            spans[i] = (left, right)
    return sorted((i, left) for i, (left, _) in spans.items())


def _fitted(draw: ImageDraw.ImageDraw, text: str, font: Any, max_width: int) -> str:
    """``text``, or as much of its start as fits in ``max_width`` pixels with "..." after
    it (nothing at all when not even that fits)."""
    if _text_size(draw, text, font)[0] <= max_width:
        return text
    lo, hi = 0, len(text)  # the longest start that fits is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _text_size(draw, text[:mid].rstrip() + "...", font)[0] <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "..." if lo else ""


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    If the body raises, the temporary file is removed and ``path`` is left untouched, so a
    crash never leaves a half-written file at ``path``.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_png(img: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write ``img`` as a PNG at ``path`` atomically (temp file + ``os.replace``)."""
    with atomic_output(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
