"""One barcode column per frame, for each colouring mode.

Every function here turns per-frame data into per-frame colours:

* ``average_colours`` -- the mean colour of each frame (one colour per column);
* ``squeeze_columns`` -- each frame squeezed to 1 px wide (one colour per row);
* ``dominant`` / ``least`` -- the most / least populous k-means cluster of each frame;
* ``stacked_columns`` -- the k cluster colours stacked top-to-bottom, each as tall as its
  share of the frame (or all equally tall), in an order chosen by ``order_clusters``.

Conventions: frames are ``uint8`` arrays ``(n, h, w, 3)`` in sRGB; colours are float sRGB
in 0..255 unless said otherwise; cluster centres are passed in *already converted to sRGB
0..255* (the caller converts from the clustering space, e.g. Lab), ``shares`` are
``(n, k)`` fractions summing to 1 per frame.

The frame-reducing functions (``average_colours``, ``squeeze_columns``) run on NumPy or
CuPy arrays (the array module is taken from the input), since that is where the work is;
the cluster functions work on small ``(n, k)`` arrays and run in NumPy (CuPy input is
copied to the host). Every public function returns NumPy arrays, ready for the image stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moviebarcode._xp import get_xp, to_host
from moviebarcode.choices import Sort
from moviebarcode.colorspace import linear_to_srgb, srgb_to_linear

__all__ = [
    "GREY_CHROMA",
    "GREY_SATURATION",
    "SortKey",
    "average_colours",
    "dominant",
    "least",
    "order_clusters",
    "squeeze_columns",
    "stacked_columns",
    "stacked_heights",
    "to_uint8",
]

SortKey = Sort

#: A cluster colour counts as grey (for ``order_clusters(by="hue")``) when its HSV
#: saturation is below this ...
GREY_SATURATION = 0.15
#: ... or when its chroma ``max(r, g, b) - min(r, g, b)`` (0..255 scale) is below this,
#: so near-blacks whose hue is noise are also treated as greys.
GREY_CHROMA = 16.0


# --------------------------------------------------------------------------- helpers


def _srgb_to_linear_lut(xp: Any) -> Any:
    """A 256-entry float32 table: sRGB code value -> linear light 0..1."""
    return xp.asarray(srgb_to_linear(xp.arange(256, dtype=xp.float32), xp=xp), dtype=xp.float32)


def _check_frames(frames: Any) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (n, h, w, 3), got shape {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")


def _check_clusters(centres: np.ndarray, shares: np.ndarray) -> None:
    if centres.ndim != 3 or centres.shape[-1] != 3:
        raise ValueError(f"centres must be (n, k, 3), got shape {centres.shape}")
    if shares.shape != centres.shape[:2]:
        raise ValueError(f"shares shape {shares.shape} does not match centres {centres.shape}")


def to_uint8(colours: Any) -> Any:
    """Round and clip float colours (0..255) to ``uint8``; any shape, same array module."""
    xp = get_xp(colours)
    return xp.clip(xp.rint(colours), 0, 255).astype(xp.uint8)


# --------------------------------------------------------------------- frame reducers


# values put through the colour table at a time (16 frames of 160x90, one frame at least):
# their float64 copy (5.5 MB) stays in cache, where a copy of a whole batch cost more to
# allocate than to sum, and stays small whatever the frame size
_MEAN_VALUES = 16 * 160 * 90 * 3


def _reduce_mean(frames: Any, axes: tuple[int, ...], gamma_correct: bool) -> np.ndarray:
    """The mean over ``axes``, (1, 2) (each frame) or (2,) (each row), in linear light or
    on the code values: a matrix product with ones, a few frames at a time
    (:data:`_MEAN_VALUES`). Each value is an integer or a float32 table entry (a multiple
    of 2**-35), so the float64 sums are exact in any order up to 2**18 values a sum, and
    beyond differ from another order's by rounding alone."""
    xp = get_xp(frames)
    _check_frames(frames)
    n, h, w, _ = frames.shape
    m = h * w if axes == (1, 2) else w
    table = _srgb_to_linear_lut(xp) if gamma_correct else xp.arange(256, dtype=xp.float32)
    table = table.astype(xp.float64)
    ones = xp.ones(m, dtype=xp.float64)
    step = max(1, _MEAN_VALUES // (h * w * 3))
    sums = [
        xp.matmul(ones, xp.reshape(table[frames[i : i + step]], (-1, m, 3)))
        for i in range(0, n, step)
    ]
    means = xp.reshape(xp.concatenate(sums), (n, 3) if axes == (1, 2) else (n, h, 3)) / m
    out = linear_to_srgb(means, xp=xp) if gamma_correct else means
    return to_host(out).astype(np.float32)


def average_colours(frames: Any, *, gamma_correct: bool = True) -> np.ndarray:
    """Mean colour of each frame.

    The linear-light path decodes through a 256-entry table into a float32 temporary four
    times the size of the batch: size batches accordingly.

    Parameters
    ----------
    frames : array of shape (n, h, w, 3)
        uint8 sRGB frames, NumPy or CuPy; typically one batch.
    gamma_correct : bool, optional
        Average in linear light (default; physically right: a frame half black, half
        white gives sRGB ~188), else on the sRGB code values (the naive mean, ~127.5).

    Returns
    -------
    ndarray of shape (n, 3)
        float32, sRGB 0..255.
    """
    return _reduce_mean(frames, (1, 2), gamma_correct)


def squeeze_columns(frames: Any, *, gamma_correct: bool = True) -> np.ndarray:
    """Each frame squeezed to 1 px wide: the mean of every row.

    Parameters
    ----------
    frames : array of shape (n, h, w, 3)
        uint8 sRGB frames, NumPy or CuPy.
    gamma_correct : bool, optional
        Average in linear light (default), else on the sRGB code values.

    Returns
    -------
    ndarray of shape (n, h, 3)
        float32, sRGB 0..255; row 0 is the top of the frame.
    """
    return _reduce_mean(frames, (2,), gamma_correct)


# ------------------------------------------------------------------ cluster columns


def _pick(centres_srgb: Any, shares: Any, choose) -> np.ndarray:
    """Each frame's centre number ``choose(shares)`` (n,), as a colour (n, 3)."""
    centres, sh = to_host(centres_srgb), to_host(shares)
    _check_clusters(centres, sh)
    pick = choose(sh)
    return centres[np.arange(len(pick)), pick]


def dominant(centres_srgb: Any, shares: Any) -> np.ndarray:
    """Colour of the most populous cluster of each frame (ties: lowest cluster index).

    Parameters
    ----------
    centres_srgb : array of shape (n, k, 3)
        Cluster centres, sRGB 0..255.
    shares : array of shape (n, k)
        Cluster shares.

    Returns
    -------
    ndarray of shape (n, 3)
        Of ``centres_srgb``'s dtype.
    """
    return _pick(centres_srgb, shares, lambda sh: np.argmax(sh, axis=1))


def least(centres_srgb: Any, shares: Any) -> np.ndarray:
    """Colour of the least populous cluster with a share > 0 (ties: lowest index).

    A frame whose shares are all 0 gets cluster 0.

    Parameters
    ----------
    centres_srgb : array of shape (n, k, 3)
        Cluster centres, sRGB 0..255.
    shares : array of shape (n, k)
        Cluster shares.

    Returns
    -------
    ndarray of shape (n, 3)
        Of ``centres_srgb``'s dtype.
    """
    return _pick(centres_srgb, shares, lambda sh: np.argmin(np.where(sh > 0, sh, np.inf), axis=1))


def stacked_heights(shares: Any, height: int) -> np.ndarray:
    """Integer heights per cluster summing exactly to ``height`` for every frame.

    Largest-remainder (Hamilton) rounding of ``shares * height``: every cluster gets the
    floor of its quota, and the rows left over go one each to the clusters with the
    largest fractional parts. Ties are broken by larger share, then lower cluster index,
    so the result is deterministic. Every height is within 1 of its quota, and a cluster
    with share 0 gets height 0. Shares are normalised per frame first; a frame whose
    shares are all 0 is split equally among all k clusters.

    Parameters
    ----------
    shares : array of shape (n, k)
        Non-negative shares, k >= 1.
    height : int
        Rows to share out, >= 0.

    Returns
    -------
    ndarray of shape (n, k)
        int64, in the clusters' original order.
    """
    sh = to_host(shares).astype(np.float64)
    if sh.ndim != 2:
        raise ValueError(f"shares must be (n, k), got shape {sh.shape}")
    if height < 0:
        raise ValueError(f"height must be >= 0, got {height}")
    n, k = sh.shape
    if k == 0:
        raise ValueError("shares must have at least one cluster")
    sh = np.clip(sh, 0.0, None)
    total = sh.sum(axis=1, keepdims=True)
    sh = np.where(total > 0, sh / np.where(total > 0, total, 1.0), 1.0 / k)
    quota = sh * height
    base = np.floor(quota)
    frac = quota - base
    heights = base.astype(np.int64)
    left = np.clip(height - heights.sum(axis=1), 0, k)  # rows still to give, 0..k
    # Rank clusters by (fraction desc, share desc, index asc); lexsort's last key is primary.
    idx = np.broadcast_to(np.arange(k), (n, k))
    order = np.lexsort((idx, -sh, -frac), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(k), (n, k)), axis=1)
    heights += rank < left[:, None]
    return heights


def _relative_luminance(srgb: np.ndarray) -> np.ndarray:
    """CIE relative luminance Y (0..1) of sRGB 0..255 colours (Rec. 709 primaries)."""
    lin = np.asarray(srgb_to_linear(srgb.astype(np.float64), xp=np), dtype=np.float64)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def _hsv_hue_sat(srgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HSV hue (degrees 0..360), saturation (0..1) and chroma (0..255) of sRGB colours."""
    rgb = np.clip(srgb.astype(np.float64), 0.0, 255.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = mx - mn
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        mx == r,
        ((g - b) / safe) % 6.0,
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = np.where(chroma > 0, hue * 60.0, 0.0)
    sat = np.where(mx > 0, chroma / np.where(mx > 0, mx, 1.0), 0.0)
    return hue, sat, chroma


def order_clusters(centres_srgb: Any, shares: Any, by: SortKey = "share") -> np.ndarray:
    """Per-frame drawing order of the clusters, top of the column first.

    * ``"share"``: largest share first.
    * ``"lightness"``: lightest first (descending CIE relative luminance Y, which orders
      exactly like CIELAB L*).
    * ``"hue"``: ascending HSV hue angle (red, yellow, green, cyan, blue, magenta); greys
      (saturation < ``GREY_SATURATION`` or chroma < ``GREY_CHROMA``) come after all
      colours, lightest grey first.

    In every mode clusters with share 0 come last, and remaining ties are broken by larger
    share, then lower cluster index.

    Parameters
    ----------
    centres_srgb : array of shape (n, k, 3)
        Cluster centres, sRGB 0..255.
    shares : array of shape (n, k)
        Cluster shares.
    by : {"share", "lightness", "hue"}, optional
        The sort key (default ``"share"``).

    Returns
    -------
    order : ndarray of shape (n, k)
        int64; row ``i`` is a permutation of ``0..k-1``, ``order[i, 0]`` the cluster drawn
        at the top of column ``i``.
    """
    centres, sh = to_host(centres_srgb), to_host(shares).astype(np.float64)
    _check_clusters(centres, sh)
    n, k = sh.shape
    idx = np.broadcast_to(np.arange(k), (n, k))
    empty = (sh <= 0).astype(np.int8)
    if by == "share":
        keys: tuple[np.ndarray, ...] = (idx, -sh, empty)
    elif by == "lightness":
        keys = (idx, -sh, -_relative_luminance(centres), empty)
    elif by == "hue":
        hue, sat, chroma = _hsv_hue_sat(centres)
        grey = (sat < GREY_SATURATION) | (chroma < GREY_CHROMA)
        value = centres.astype(np.float64).max(axis=-1)
        keys = (
            idx,
            -sh,
            np.where(grey, -value, 0.0),
            np.where(grey, 0.0, hue),
            grey.astype(np.int8),
            empty,
        )
    else:
        raise ValueError(f"unknown cluster order {by!r}; expected 'share', 'lightness' or 'hue'")
    return np.lexsort(keys, axis=-1)


def stacked_columns(
    centres_srgb: Any,
    shares: Any,
    height: int,
    *,
    sort: SortKey = "share",
    equal: bool = False,
) -> np.ndarray:
    """Columns painting each frame's cluster colours as stacked bands.

    Each column shows the k cluster colours top-to-bottom in the order given by
    ``order_clusters(..., by=sort)``, each band as tall as its share of ``height``
    (``stacked_heights``). With ``equal=True`` clusters with share 0 are dropped and the
    rest get equal heights (largest-remainder split of ``height``).

    Parameters
    ----------
    centres_srgb : array of shape (n, k, 3)
        Cluster centres, sRGB 0..255, float or uint8.
    shares : array of shape (n, k)
        Cluster shares.
    height : int
        Column height in pixels, >= 1.
    sort : {"share", "lightness", "hue"}, optional
        Band order, see ``order_clusters`` (default ``"share"``).
    equal : bool, optional
        Equal band heights instead of share-proportional ones (default False).

    Returns
    -------
    ndarray of shape (n, height, 3)
        uint8; ``[:, 0]`` is the top row.
    """
    centres, sh = to_host(centres_srgb), to_host(shares).astype(np.float64)
    _check_clusters(centres, sh)
    if height < 1:
        raise ValueError(f"height must be >= 1, got {height}")
    n, k = sh.shape
    order = order_clusters(centres, sh, by=sort)
    weights = (sh > 0).astype(np.float64) if equal else sh
    heights = np.take_along_axis(stacked_heights(weights, height), order, axis=1)
    colours = np.take_along_axis(to_uint8(centres), order[..., None], axis=1)
    # Band index for every row: repeat each band's index by its height. Heights sum to
    # `height` per frame, so the flat result reshapes exactly to (n, height).
    band = np.repeat(np.tile(np.arange(k), n), heights.ravel()).reshape(n, height)
    return np.take_along_axis(colours, band[..., None], axis=1)
