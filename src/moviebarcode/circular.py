"""The circular layout: a linear barcode wrapped into a disc, and its clock-face labels.

Time runs clockwise from 12 o'clock: column ``x`` of the linear barcode (of ``w``) becomes
the wedge between angles ``360 * x / w`` and ``360 * (x + 1) / w`` degrees; row ``y`` (of
``h``, row 0 at the top) becomes the ring between radii ``R * (1 - y / h)`` and
``R * (1 - (y + 1) / h)``: the top of a column is the disc's rim, its bottom the centre.
Stacked bands become rings, bands by shot wedges as wide as the shots.

Each output pixel is sampled at ``SUPERSAMPLE`` x ``SUPERSAMPLE`` points (an exact polar
look-up for each) and averaged: anti-aliased edges, and the exact coverage of the disc as
the alpha of a transparent background.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from moviebarcode._fmt import hms
from moviebarcode.image import TICK_STEPS, _load_font, _text_size

__all__ = ["SUPERSAMPLE", "add_clock_labels", "circular_image", "clock_margin", "polar_lookup"]

#: Samples per output pixel along each axis.
SUPERSAMPLE = 4
_ROWS_PER_BLOCK = 64  # output rows remapped at a time: memory stays small at any size


def polar_lookup(x: np.ndarray, y: np.ndarray, radius: float, w: int, h: int):
    """Where points fall on the linear barcode.

    Parameters
    ----------
    x, y : arrays of float
        Points relative to the disc's centre, in pixels (y grows downwards).
    radius : float
        The disc's radius, pixels.
    w, h : int
        The linear barcode's width (columns: time) and height (rows: rims to centre).

    Returns
    -------
    col, row : arrays of int
        The column and row of the barcode under each point (clipped to the image).
    inside : array of bool
        Whether the point lies in the disc.
    """
    r = np.hypot(x, y)
    turn = np.arctan2(x, -y) * np.float32(1 / (2 * np.pi))  # 0 at 12 o'clock, clockwise
    turn += turn < 0
    col = np.minimum((turn * w).astype(np.int64), w - 1)
    row = np.clip(((1 - r / np.float32(radius)) * h).astype(np.int64), 0, h - 1)
    return col, row, r <= radius


def circular_image(
    linear: Image.Image, size: int, *, background: str = "black", margin: int = 0
) -> Image.Image:
    """Wrap a linear barcode into a disc on a square image.

    Parameters
    ----------
    linear : PIL.Image.Image
        The barcode, time from left to right.
    size : int
        The side of the square output, pixels.
    background : {"black", "transparent"}
        Outside the disc: black (an RGB image) or alpha 0 (an RGBA image).
    margin : int, optional
        Pixels left between the disc and the image's edge (room for labels).

    Returns
    -------
    PIL.Image.Image
        ``size`` x ``size``, RGB on black or RGBA on transparent.
    """
    src = np.asarray(linear.convert("RGB"))
    h, w = src.shape[:2]
    padded = np.zeros((h * w + 1, 4), np.uint8)  # RGB and full alpha, then the outside
    padded[:-1, :3] = src.reshape(-1, 3)
    padded[:-1, 3] = 255
    ss = SUPERSAMPLE
    radius = size / 2 - margin
    offsets = (np.arange(ss) + 0.5) / ss
    xs = ((np.arange(size)[:, None] + offsets).reshape(-1) - size / 2).astype(np.float32)
    colour = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    for top in range(0, size, _ROWS_PER_BLOCK):
        rows = min(_ROWS_PER_BLOCK, size - top)
        ys = (np.arange(top, top + rows)[:, None] + offsets).reshape(-1) - size / 2
        col, row, inside = polar_lookup(xs[None, :], ys[:, None].astype(np.float32), radius, w, h)
        index = row * w + col
        index[~inside] = h * w  # outside: the black, transparent extra entry
        sampled = np.take(padded, index, axis=0).reshape(rows, ss, size, ss, 4)
        block = sampled.sum(axis=(1, 3), dtype=np.float32) / (ss * ss)
        colour[top : top + rows] = block[..., :3]
        alpha[top : top + rows] = block[..., 3] / 255
    if background == "transparent":
        straight = colour / np.maximum(alpha, 1e-6)[..., None]
        rgba = np.concatenate([straight, alpha[..., None] * 255], axis=2)
        return Image.fromarray(np.clip(np.rint(rgba), 0, 255).astype(np.uint8), mode="RGBA")
    return Image.fromarray(np.clip(np.rint(colour), 0, 255).astype(np.uint8), mode="RGB")


def clock_margin(size: int) -> int:
    """The room around the disc that ``add_clock_labels`` needs on a ``size`` image."""
    return _font_size(size) * 6


def _font_size(size: int) -> int:
    return int(min(max(size // 60, 10), 32))


def _clock_step(duration: float) -> float:
    """An hour where the film lasts over two hours; else the smallest step of ``TICK_STEPS``
    giving at most 12 ticks."""
    for step in TICK_STEPS:
        if duration / step <= 12 and (step >= 3600 or duration <= 7200):
            return float(step)
    return float(TICK_STEPS[-1])


def add_clock_labels(
    img: Image.Image,
    *,
    title: str | None,
    duration: float,
    start: float = 0.0,
    foreground: tuple[int, int, int] = (230, 230, 230),
) -> Image.Image:
    """A copy of a circular barcode (made with ``margin=clock_margin(size)``) with ticks
    round the rim at round times, each labelled ``H:MM:SS``, and the title in the top-left
    corner; drawn at ``SUPERSAMPLE`` times the size and shrunk (anti-aliased).

    Parameters
    ----------
    img : PIL.Image.Image
        The circular barcode, square.
    title : str or None
        Text in the top-left corner; None or empty for none.
    duration, start : float
        Seconds the full circle covers, and the time at 12 o'clock.
    """
    size, ss = img.width, SUPERSAMPLE
    big = size * ss
    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _load_font(_font_size(size) * ss)
    fill = (*foreground, 255)
    rim = (size / 2 - clock_margin(size)) * ss
    tick = _font_size(size) * ss * 0.6
    step = _clock_step(duration)
    first = math.ceil(start / step - 1e-9) * step
    for t in np.arange(first, start + duration - 1e-9, step):
        a = 2 * math.pi * (t - start) / duration
        dx, dy = math.sin(a), -math.cos(a)
        c = big / 2
        draw.line(
            [(c + dx * rim, c + dy * rim), (c + dx * (rim + tick), c + dy * (rim + tick))],
            fill=fill,
            width=max(ss, ss * size // 500),
        )
        tw, th = _text_size(draw, hms(t), font)
        lx = c + dx * (rim + tick * 1.5 + tw / 2) - tw / 2
        ly = c + dy * (rim + tick * 1.5 + th) - th / 2
        draw.text((lx, ly), hms(t), font=font, fill=fill)
    if title:
        draw.text((ss * 4, ss * 4), title, font=font, fill=fill)
    small = layer.resize((size, size), Image.Resampling.LANCZOS)
    return Image.alpha_composite(img.convert("RGBA"), small).convert(img.mode)
