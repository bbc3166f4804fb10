"""Per-frame colour metrics over a region: ``render --mode median|mode|brightest|bright|
brightness`` (and ``average`` over a region other than the whole frame).

``frame_metric(frames, mode, region=...)`` reduces a batch of uint8 sRGB frames
``(n, h, w, 3)`` to one value per frame, on NumPy or CuPy, with whole-batch operations:
per-frame histograms are one ``bincount`` over the batch. What each computes, and how it
differs from KALMUS (``kalmus.barcodes.Barcode.get_color_from_frame``):

* ``average`` -- the mean colour, in linear light (KALMUS: of the sRGB codes);
* ``median`` -- the per-channel median of the sRGB codes, as KALMUS (``np.median``); when
  two middle codes are averaged, in linear light;
* ``mode`` -- the most frequent colour after quantising each channel to 16 levels (4 bits,
  4096 colour bins): the centre of the fullest bin (ties: the lowest bin). KALMUS takes
  each channel's mode separately, of the code // 10, and returns the bin's lower edge:
  a colour that may not be in the frame at all;
* ``brightest`` -- the colour of the brightest pixels: those of the frame's highest Rec. 709
  luminance Y (linear light), averaged when several tie. KALMUS takes the first pixel of
  highest Rec. 601 luma of the sRGB codes;
* ``bright`` -- the mean colour (linear light) of the brightest ``BRIGHT_SHARE`` of the
  pixels (luminance at or above that quantile, on 1024 levels). KALMUS blurs, clusters
  the bright spots and averages the biggest spot;
* ``brightness`` -- the mean Rec. 709 luminance Y in linear light, 0..1, shape ``(n,)``.
  KALMUS averages Rec. 601 luma of the codes.

``squeeze_region`` squeezes a frame to a column over a region (each row's mean over its
pixels in it). With ``gamma_correct=False`` means and luminances are taken on the sRGB
codes / 255 (the naive way). Colours come back as float32 sRGB 0..255, ``(n, 3)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moviebarcode._xp import get_xp, to_host
from moviebarcode.choices import Region
from moviebarcode.colorspace import linear_to_srgb, srgb_to_linear
from moviebarcode.regions import region_mask, relative_luminance

__all__ = [
    "BRIGHT_SHARE",
    "COLORMAPS",
    "METRIC_MODES",
    "MODE_LEVELS",
    "brightness_greys",
    "colormapped",
    "frame_metric",
    "squeeze_region",
    "weighted_dominant",
]

METRIC_MODES = ("average", "median", "mode", "brightest", "bright", "brightness")
BRIGHT_SHARE = 0.1
"""The share of a region's pixels, the brightest, that ``bright`` averages."""
MODE_LEVELS = 16
"""Quantisation levels per channel of ``mode``."""
_Y_LEVELS = 1024


def _lut(xp: Any, gamma_correct: bool) -> Any:
    """sRGB code -> linear light 0..1 (or code / 255 when not ``gamma_correct``)."""
    codes = xp.arange(256, dtype=xp.float32)
    return srgb_to_linear(codes, xp=xp) if gamma_correct else codes / xp.float32(255)


def _encode(linear: Any, gamma_correct: bool) -> np.ndarray:
    """Linear light (or code / 255) back to float32 sRGB 0..255, on the host."""
    xp = get_xp(linear)
    out = linear_to_srgb(linear, xp=xp) if gamma_correct else xp.clip(linear, 0, 1) * 255
    return to_host(out).astype(np.float32)


def _histograms(codes: Any, mask: Any, bins: int) -> Any:
    """Per-row histograms ``(n, bins)`` of integer ``codes`` (n, m) in [0, bins), counting
    only where ``mask`` (n, m) is True (None: everywhere); one bincount for the batch."""
    xp = get_xp(codes)
    n = codes.shape[0]
    idx = codes.astype(xp.int64) + (xp.arange(n, dtype=xp.int64) * bins)[:, None]
    if mask is not None:
        idx = xp.where(mask, idx, n * bins)  # masked-out pixels: one spare bin
    counts = xp.bincount(idx.ravel(), minlength=n * bins + 1)
    return counts[: n * bins].reshape(n, bins)


def _at_rank(hist: Any, rank: Any) -> Any:
    """The bin of the value of each row's ``rank`` (0-based) in sorted order."""
    xp = get_xp(hist)
    return (xp.cumsum(hist, axis=1) <= rank[:, None]).sum(axis=1)


def _masked_mean(values: Any, mask: Any) -> Any:
    """Mean of ``values`` (n, h, w[, c]) over each frame's pixels where ``mask``."""
    xp = get_xp(values)
    if mask is None:
        return values.mean(axis=(1, 2), dtype=xp.float64)
    m = mask if values.ndim == 3 else mask[..., None]
    total = xp.where(m, values, 0).sum(axis=(1, 2), dtype=xp.float64)
    return total / mask.sum(axis=(1, 2)).reshape(-1, *([1] * (values.ndim - 3)))


def _median(frames: Any, mask: Any, lut: Any) -> Any:
    """Per-channel median in linear values, as np.median on the codes (the two middle
    codes averaged, in linear light, when the count is even)."""
    xp = get_xp(frames)
    n = frames.shape[0]
    flat_mask = None if mask is None else mask.reshape(n, -1)
    out = []
    for c in range(3):
        hist = _histograms(frames[..., c].reshape(n, -1), flat_mask, 256)
        count = hist.sum(axis=1)
        lo, hi = _at_rank(hist, (count - 1) // 2), _at_rank(hist, count // 2)
        out.append((lut[lo] + lut[hi]) / 2)
    return xp.stack(out, axis=1)


def _mode(frames: Any, mask: Any, lut: Any) -> Any:
    """The centre of the fullest of the 16**3 colour bins, in linear values."""
    xp = get_xp(frames)
    n = frames.shape[0]
    q = (frames >> 4).astype(xp.int32)
    code = (q[..., 0] << 8) | (q[..., 1] << 4) | q[..., 2]
    flat_mask = None if mask is None else mask.reshape(n, -1)
    best = xp.argmax(_histograms(code.reshape(n, -1), flat_mask, MODE_LEVELS**3), axis=1)
    levels = xp.stack([best >> 8, (best >> 4) & 15, best & 15], axis=1)
    # the bin's centre: the mean of the two middle codes of its 16, in linear values
    return (lut[levels * 16 + 7] + lut[levels * 16 + 8]) / 2


def _brightest(linear: Any, y: Any, mask: Any) -> Any:
    xp = get_xp(y)
    ym = y if mask is None else xp.where(mask, y, -1)
    top = ym == ym.max(axis=(1, 2), keepdims=True)
    return _masked_mean(linear, top)


def _bright(linear: Any, y: Any, mask: Any) -> Any:
    xp = get_xp(y)
    n = y.shape[0]
    yq = xp.minimum((y * _Y_LEVELS).astype(xp.int64), _Y_LEVELS - 1).reshape(n, -1)
    flat_mask = None if mask is None else mask.reshape(n, -1)
    hist = _histograms(yq, flat_mask, _Y_LEVELS)
    count = hist.sum(axis=1)
    rank = xp.floor(count * (1 - BRIGHT_SHARE)).astype(xp.int64)
    cut = _at_rank(hist, xp.minimum(rank, count - 1))
    keep = yq >= cut[:, None]
    if flat_mask is not None:
        keep &= flat_mask
    return _masked_mean(linear, keep.reshape(y.shape))


def frame_metric(
    frames: Any, mode: str, *, region: Region = "whole", gamma_correct: bool = True
) -> np.ndarray:
    """``mode`` (one of ``METRIC_MODES``) of each frame's ``region``.

    Parameters
    ----------
    frames : array of shape (n, h, w, 3)
        uint8 sRGB frames, NumPy or CuPy; one batch (the float32 copy it makes is four
        times its size).
    mode, region : str
        The metric and the pixels it reads (``moviebarcode.regions``).
    gamma_correct : bool, optional
        Means and luminance in linear light (default), else on the codes / 255.

    Returns
    -------
    ndarray
        float32: ``(n,)`` luminance 0..1 for ``brightness``, else ``(n, 3)`` sRGB 0..255.
    """
    if mode not in METRIC_MODES:
        raise ValueError(f"no per-frame metric {mode!r}; one of {', '.join(METRIC_MODES)}")
    xp = get_xp(frames)
    lut = _lut(xp, gamma_correct)
    linear = lut[frames]
    y = relative_luminance(linear) if mode in ("brightest", "bright", "brightness") else None
    mask = region_mask(frames, region, linear)
    if mode == "brightness":
        return to_host(_masked_mean(y, mask)).astype(np.float32)
    if mode == "average":
        out = _masked_mean(linear, mask)
    elif mode == "median":
        out = _median(frames, mask, lut)
    elif mode == "mode":
        out = _mode(frames, mask, lut)
    elif mode == "brightest":
        out = _brightest(linear, y, mask)
    else:
        out = _bright(linear, y, mask)
    return _encode(out, gamma_correct)


def squeeze_region(frames: Any, region: Region, *, gamma_correct: bool = True) -> np.ndarray:
    """``squeeze`` over a region: each row's mean colour (n, h, 3) float32 sRGB 0..255 over
    its pixels in ``region``; a row with none of them is the whole row's mean."""
    xp = get_xp(frames)
    linear = _lut(xp, gamma_correct)[frames]
    mask = region_mask(frames, region, linear)
    if mask is not None:
        mask = mask | ~mask.any(axis=2, keepdims=True)  # rows outside: the whole row
        count = mask.sum(axis=2)[..., None]
        linear = xp.where(mask[..., None], linear, 0).sum(axis=2, dtype=xp.float64) / count
    else:
        linear = linear.mean(axis=2, dtype=xp.float64)
    return _encode(linear, gamma_correct)


def brightness_greys(y: np.ndarray, gamma_correct: bool = True) -> np.ndarray:
    """Luminance ``y`` (n,) 0..1 as grey sRGB colours (n, 3) float32 0..255."""
    grey = linear_to_srgb(y, xp=np) if gamma_correct else np.clip(y, 0, 1) * 255
    return np.repeat(np.asarray(grey, np.float32)[:, None], 3, axis=1)


def weighted_dominant(centres_srgb: Any, shares: Any) -> np.ndarray:
    """KALMUS's weighted-dominant: the k-means centres ``(n, k, 3)`` sRGB 0..255 weighted
    by their ``shares`` (n, k), summed in linear light (KALMUS: on the codes). (n, 3)
    float32 sRGB 0..255."""
    c = srgb_to_linear(to_host(centres_srgb), xp=np)
    s = np.asarray(to_host(shares), np.float64)
    mixed = (c * s[..., None]).sum(axis=1) / np.maximum(s.sum(axis=1), 1e-12)[:, None]
    return np.asarray(linear_to_srgb(mixed, xp=np), np.float32)


COLORMAPS = {
    # 9 anchors (0, 1/8, ..., 1) of matplotlib's maps, sRGB, linearly interpolated between
    "viridis": [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ],
    "magma": [
        (0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
        (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191),
    ],
}  # fmt: skip


def colormapped(levels: np.ndarray, colormap: str) -> np.ndarray:
    """Grey ``levels`` (n,) 0..255 (brightness drawn in grey) as the colours (n, 3) float32
    sRGB 0..255 of ``colormap`` (``COLORMAPS``) at those levels."""
    anchors = np.asarray(COLORMAPS[colormap], np.float32)
    at = np.asarray(levels, np.float32) / 255 * (len(anchors) - 1)
    steps = np.arange(len(anchors))
    channels = [np.interp(at, steps, anchors[:, c]) for c in range(3)]
    return np.stack(channels, axis=1).astype(np.float32)
