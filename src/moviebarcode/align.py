"""Sequence alignment of two barcodes' symbol strings: Smith–Waterman (local) or
Needleman–Wunsch (global) with affine gaps, one NumPy pass per row.

The symbols are KALMUS's: the hue in 12 sectors of 30 degrees (centred on red), and the
brightness in 15 levels. Scores are KALMUS's too (match 2, mismatch -1, gap open -0.5,
gap extension -0.1, as Biopython's ``localms``/``globalms`` count them: a gap of length
``L`` costs ``open + (L - 1) * extend``), kept as integers in tenths so that ties are exact.

Within a row, the left-gap recurrence ``E[j] = max(H[j-1] + open, E[j-1] + extend)`` is a
running maximum (``np.maximum.accumulate``): a gap that closes and reopens never beats one
that extends, since opening costs more. So a row is a few vector operations, and a
7,000 x 7,000 alignment takes about a second; its traceback keeps one byte per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SCORES", "Alignment", "align", "brightness_symbols", "hue_symbols"]

SCORES = (2.0, -1.0, -0.5, -0.1)
"""(match, mismatch, gap open, gap extension), KALMUS's defaults."""
_SCALE = 10
_NEG = np.int32(-(2**29))


@dataclass(frozen=True)
class Alignment:
    """The best alignment of two symbol sequences.

    Attributes
    ----------
    score : float
        Its score, in the units of ``SCORES`` (summed over the symbol channels).
    pairs : ndarray of int, shape (p, 2)
        The aligned positions ``(i, j)`` (diagonal steps: matches and mismatches), in order;
        empty when computed without traceback.
    """

    score: float
    pairs: np.ndarray


def hue_symbols(rgb: np.ndarray, sectors: int = 12) -> np.ndarray:
    """The hue sector of each colour (n, 3) sRGB 0..255: ``(hue + 15) // (360 / sectors)``
    in degrees, wrapping, as KALMUS's hue strings; int64 (n,)."""
    rgb = np.asarray(rgb, np.float64) / 255.0
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    r, g, b = rgb.T
    hue = np.where(
        mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = np.where(delta > 0, hue * 60.0, 0.0)
    return (((hue + 15.0) % 360.0) // (360.0 / sectors)).astype(np.int64)


def brightness_symbols(brightness: np.ndarray, levels: int = 15) -> np.ndarray:
    """The brightness level of each value 0..255: ``value // (255 / levels)``; int64 (n,)."""
    return (np.asarray(brightness, np.float64) // (255.0 / levels)).astype(np.int64)


def _scaled(scores) -> tuple[int, int, int, int]:
    match, mismatch, gap_open, extend = (int(round(s * _SCALE)) for s in scores)
    if not gap_open <= extend <= 0:
        raise ValueError("gap penalties must satisfy open <= extend <= 0")
    return match, mismatch, gap_open, extend


def align(
    a: np.ndarray,
    b: np.ndarray,
    *,
    local: bool = True,
    scores=SCORES,
    traceback: bool = True,
) -> Alignment:
    """Align two symbol sequences.

    Parameters
    ----------
    a, b : arrays of int, shape (n,) or (n, c) and (m,) or (m, c)
        Symbols; with ``c`` channels (hue and brightness), a pair of positions scores the
        sum of each channel's match or mismatch.
    local : bool
        Smith–Waterman (the best matching stretch) or Needleman–Wunsch (end to end).
    scores : (match, mismatch, gap open, gap extension)
        Multiples of 0.1.
    traceback : bool
        Also find the aligned pairs (one byte per cell of memory).
    """
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    match, mismatch, g_open, g_ext = _scaled(scores)
    n, m = len(a), len(b)
    k = np.arange(m + 1, dtype=np.int32)
    consts = (-g_ext * k, g_open + g_ext * (k[1:] - 1), g_open, g_ext)
    b_cols = [np.ascontiguousarray(b[:, c]) for c in range(b.shape[1])]
    h_prev = np.zeros(m + 1, np.int32)
    if not local:
        h_prev[1:] = consts[1]
    f_prev = np.full(m, _NEG, np.int32)
    dirs = np.zeros((n, m), np.uint8) if traceback else None
    best, best_at = (0, (0, 0))
    for i in range(1, n + 1):
        sub = np.full(m, mismatch * len(b_cols), np.int32)
        for c, col in enumerate(b_cols):
            sub += (col == a[i - 1, c]) * np.int32(match - mismatch)
        h0 = 0 if local else g_open + (i - 1) * g_ext
        h, f_prev = _row(h_prev, f_prev, sub, h0, local, consts, dirs, i - 1)
        if local:
            j = int(np.argmax(h))
            if h[j] > best:
                best, best_at = int(h[j]), (i, j)
        h_prev = h
    if not local:
        best, best_at = int(h_prev[m]), (n, m)
    pairs = _trace(dirs, *best_at, local) if traceback else np.zeros((0, 2), np.int64)
    return Alignment(best / _SCALE, pairs)


def _row(h_prev, f_prev, sub, h0, local, consts, dirs, row):
    """One row of the DP: its H (with ``H[0] = h0``) and its up-gap scores F. With ``dirs``,
    its row gets a byte per cell: where H came from (bits 0-1: 0 start, 1 diagonal, 2 left,
    3 up), whether the left gap opened there (bit 2) and whether the up gap did (bit 3)."""
    ext_k, e_off, g_open, g_ext = consts
    up_open = h_prev[1:] + g_open
    f_ext = f_prev + g_ext
    f = np.maximum(up_open, f_ext)
    diag = h_prev[:-1] + sub
    d = np.maximum(diag, f)
    if local:
        np.maximum(d, 0, out=d)
    g = np.empty(len(d) + 1, np.int32)
    g[0] = h0
    g[1:] = d
    g += ext_k
    e = np.maximum.accumulate(g)[:-1] + e_off
    h = np.empty_like(g)
    h[0] = h0
    np.maximum(d, e, out=h[1:])
    if dirs is not None:
        hv = h[1:]
        step = np.where(hv == diag, 1, np.where(hv == e, 2, 3)).astype(np.uint8)
        if local:
            step[hv == 0] = 0
        e_ext = np.empty_like(e)
        e_ext[0] = _NEG
        e_ext[1:] = e[:-1] + g_ext
        step |= (h[:-1] + g_open >= e_ext).astype(np.uint8) << 2
        step |= (up_open >= f_ext).astype(np.uint8) << 3
        dirs[row] = step
    return h, f


def _trace(dirs: np.ndarray, i: int, j: int, local: bool) -> np.ndarray:
    """The diagonal steps of the path that ends at cell ``(i, j)``."""
    pairs = []
    state = 0  # 0: in H, 2: in a left gap, 3: in an up gap
    while i > 0 and j > 0:
        d = int(dirs[i - 1, j - 1])
        if state == 0:
            src = d & 3
            if src == 0:
                break
            if src == 1:
                pairs.append((i - 1, j - 1))
                i, j = i - 1, j - 1
            else:
                state = src
        elif state == 2:
            state = 0 if d >> 2 & 1 else 2
            j -= 1
        else:
            state = 0 if d >> 3 & 1 else 3
            i -= 1
    return np.array(pairs[::-1], np.int64).reshape(-1, 2)
