"""Which pixels of each frame a per-frame metric reads: ``render --region``.

``region_mask(frames, region)`` gives a boolean mask ``(n, h, w)`` per batch, computed
with whole-array operations (no loop over frames or pixels), on NumPy or CuPy:

* ``whole`` -- every pixel (the mask is None);
* ``foreground`` / ``background`` -- KALMUS runs GrabCut seeded with a rectangle over the
  middle two thirds of the columns. Here the pixels outside that rectangle (the left and
  right sixths) model the background: each pixel's distance from their mean colour is
  split in two by Otsu's threshold (per frame, on a 64-bin histogram); foreground is the
  far side inside the rectangle, background the rest;
* ``high-contrast`` / ``low-contrast`` -- KALMUS segments by watershed and keeps the one
  region of most / least WCAG contrast with its neighbours. Here the frame is cut into a
  ``GRID`` x ``GRID`` grid of tiles, each tile scored by its mean WCAG contrast ratio
  with its four neighbours (from their mean relative luminances), and the region is the
  quarter of the tiles (``TILE_SHARE``) of highest / lowest score.

A region with no pixel in a frame (a flat frame has no foreground) falls back to the
whole frame there, as in KALMUS.
"""

from __future__ import annotations

from typing import Any

from moviebarcode._xp import get_xp
from moviebarcode.choices import Region

__all__ = ["GRID", "TILE_SHARE", "region_mask", "relative_luminance"]

GRID = 8
"""Tiles per side of the contrast regions (fewer where the frame is smaller)."""
TILE_SHARE = 0.25
"""The share of the tiles a contrast region keeps."""
_OTSU_BINS = 64
_REC709 = (0.2126, 0.7152, 0.0722)


def relative_luminance(linear: Any) -> Any:
    """Rec. 709 Y of linear-light RGB ``(..., 3)`` in 0..1: ``(...)`` float32."""
    xp = get_xp(linear)
    return linear @ xp.asarray(_REC709, dtype=xp.float32)


def region_mask(frames: Any, region: Region, linear: Any = None) -> Any:
    """Boolean mask ``(n, h, w)`` of ``region`` in uint8 sRGB ``frames`` (n, h, w, 3);
    None for ``whole``. ``linear`` (float32 linear light, the frames decoded) saves a
    decoding when the caller has it."""
    if region == "whole":
        return None
    xp = get_xp(frames)
    if region in ("foreground", "background"):
        mask = _foreground(frames.astype(xp.float32))
        if region == "background":
            mask = ~mask
    else:
        mask = _contrast_tiles(relative_luminance(linear), high=region == "high-contrast")
    empty = ~mask.any(axis=(1, 2))
    mask[empty] = True
    return mask


def _otsu(values: Any) -> Any:
    """Otsu's threshold of each row of ``values`` (n, m) float, on a 64-bin histogram."""
    xp = get_xp(values)
    n = values.shape[0]
    lo = values.min(axis=1, keepdims=True)
    span = xp.maximum(values.max(axis=1, keepdims=True) - lo, 1e-6)
    q = xp.minimum((values - lo) / span * _OTSU_BINS, _OTSU_BINS - 1).astype(xp.int64)
    q += (xp.arange(n) * _OTSU_BINS)[:, None]
    hist = xp.bincount(q.ravel(), minlength=n * _OTSU_BINS).reshape(n, _OTSU_BINS)
    p = hist / hist.sum(axis=1, keepdims=True)
    w0 = xp.cumsum(p, axis=1)
    mu = xp.cumsum(p * xp.arange(_OTSU_BINS), axis=1)
    mu_t = mu[:, -1:]
    between = (mu_t * w0 - mu) ** 2 / xp.maximum(w0 * (1 - w0), 1e-12)
    t = xp.argmax(between, axis=1)[:, None] + 1  # bins above t's are the far side
    return lo + span * t / _OTSU_BINS


def _foreground(rgb: Any) -> Any:
    """Pixels of ``rgb`` (n, h, w, 3) float inside the middle two thirds of the columns,
    far (by Otsu) from the mean colour of the left and right sixths."""
    xp = get_xp(rgb)
    n, h, w, _ = rgb.shape
    c0, c1 = w // 6, w - w // 6
    if c0 == 0:
        return xp.ones((n, h, w), dtype=bool)
    border = xp.concatenate([rgb[:, :, :c0], rgb[:, :, c1:]], axis=2)
    mean = border.mean(axis=(1, 2), keepdims=True)
    dist = xp.sqrt(((rgb - mean) ** 2).sum(axis=-1))  # (n, h, w)
    t = _otsu(dist.reshape(n, -1))
    mask = dist > t.reshape(n, 1, 1)
    mask[:, :, :c0] = False
    mask[:, :, c1:] = False
    return mask


def _contrast_tiles(y: Any, *, high: bool) -> Any:
    """The tiles of most (``high``) or least WCAG contrast with their neighbours, as a
    pixel mask, from the relative luminance ``y`` (n, h, w)."""
    xp = get_xp(y)
    n, h, w = y.shape
    gy, gx = min(GRID, h), min(GRID, w)
    rows = xp.arange(h) * gy // h
    cols = xp.arange(w) * gx // w
    tiles = xp.zeros((n, gy, gx), dtype=xp.float64)
    tile_of = (rows[:, None] * gx + cols[None, :]).ravel()
    flat = y.reshape(n, -1).astype(xp.float64)
    for t in range(gy * gx):  # GRID**2 reductions, each over the whole batch
        tiles.reshape(n, -1)[:, t] = flat[:, tile_of == t].mean(axis=1)
    score = _neighbour_contrast(tiles + 0.05)
    keep = max(1, round(TILE_SHARE * gy * gx))
    order = xp.argsort(-score if high else score, axis=1, kind="stable")[:, :keep]
    chosen = xp.zeros((n, gy * gx), dtype=bool)
    xp.put_along_axis(chosen, order, True, axis=1)
    return chosen[:, tile_of].reshape(n, h, w)


def _neighbour_contrast(lum: Any) -> Any:
    """Mean WCAG contrast ratio ``max/min`` of each tile of ``lum`` (n, gy, gx), the tiles'
    luminances plus 0.05, with its 4-neighbours: (n, gy * gx)."""
    xp = get_xp(lum)
    total = xp.zeros_like(lum)
    count = xp.zeros_like(lum)
    for axis in (1, 2):
        a = xp.moveaxis(lum, axis, -1)
        r = xp.maximum(a[..., 1:], a[..., :-1]) / xp.minimum(a[..., 1:], a[..., :-1])
        t, c = xp.moveaxis(total, axis, -1), xp.moveaxis(count, axis, -1)
        t[..., 1:] += r
        t[..., :-1] += r
        c[..., 1:] += 1
        c[..., :-1] += 1
    return (total / xp.maximum(count, 1)).reshape(lum.shape[0], -1)
