"""k-means on weighted point sets, and exact counts of pixels: pooled problems (a shot).

A shot's colours come from all its frames together. Each frame is reduced to its
weighted coreset (:func:`coreset`, step 1 of :mod:`moviebarcode.kmeans`); a shot's
coresets, merged and binned again, are one weighted point set, and
:func:`weighted_kmeans` clusters many such sets at once: steps 2-5 on the points as they
are given (the coarse coreset, the restarts, the carried restarts, the neighbour
starts), then, in place of the pixel phase, Lloyd iterations on the points until the
centres move by at most ``pixel_tol``, and a final assignment of the points.
:func:`assign_counts` then gives each cluster's exact pixel count and each frame's
inertia for given centres, so that the shares and inertia reported are the pixels',
not the coreset's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moviebarcode._xp import Array, get_xp
from moviebarcode.errors import ParameterError
from moviebarcode.kmeans._batched import (
    _block_runner,
    _blocks,
    _check_input,
    _check_segments,
    _uniforms,
)
from moviebarcode.kmeans._common import _assign
from moviebarcode.kmeans._coreset import _bin
from moviebarcode.kmeans._layout import _cat
from moviebarcode.kmeans._lloyd import _lloyd
from moviebarcode.kmeans._neighbours import neighbour_rounds
from moviebarcode.kmeans._result import KMeansResult
from moviebarcode.kmeans._search import _Search, search_points, weighted_spread
from moviebarcode.kmeans.config import KMeansConfig, _Plan

ASSIGN_ELEMENTS = 1 << 23
"""Pixel-centre pairs per block of :func:`assign_counts` (its one-hot array, float32)."""


def coreset(points: Array, weights: Array | None, n_cells: int, *, xp: Any = None):
    """Weighted coreset of each point set: its colour box cut into about ``n_cells``
    equal cubes, each non-empty cube one point, the weighted mean of its points.

    Parameters
    ----------
    points : array of shape (F, N, 3)
        Point sets (pixels of frames, or points of earlier coresets), float32.
    weights : array of shape (F, N), optional
        The points' weights (default: all 1). Weight-0 points count for nothing.
    n_cells : int
        About how many cubes each set's box is cut into, >= 1.

    Returns
    -------
    pts : array of shape (F, B, 3), float32
        Each set's cube means, its non-empty cubes first, padded with weight-0 copies.
    w : array of shape (F, B), float32
        Their weights: each cube's total weight.
    """
    xp = xp or get_xp(points)
    xt = xp.ascontiguousarray(xp.transpose(xp.asarray(points, dtype=xp.float32), (0, 2, 1)))
    pts, w = _bin(xt, weights, int(n_cells), xp)
    return xp.ascontiguousarray(xp.transpose(pts, (0, 2, 1))), w


def weighted_kmeans(
    points: Array,
    weights: Array,
    k: int,
    config: KMeansConfig = KMeansConfig(),  # noqa: B008 (frozen: never changes)
    *,
    xp: Any = None,
    block_frames: int | None = None,
    n_threads: int | None = None,
    segments: Sequence[tuple[int, int]] | None = None,
) -> KMeansResult:
    """Cluster each weighted point set of a batch into ``k`` colours.

    The points stand for pixels (a weighted coreset, see :func:`coreset`): a point of
    weight w counts as w pixels at its place. The steps are those of
    :func:`~moviebarcode.kmeans.batched_kmeans`, but on the given points throughout
    (see the module docstring). Arguments are as ``batched_kmeans``'s, a *frame* being
    a point set here.

    Parameters
    ----------
    points : array of shape (S, N, 3)
        S point sets of N points (padded with weight-0 points), in the clustering space.
    weights : array of shape (S, N)
        Their weights, >= 0, each set's total above 0.

    Returns
    -------
    KMeansResult
        ``centres`` (S, k, 3) float32; ``shares`` (S, k) float32, each cluster's share of
        its set's weight; ``inertia`` (S,) float64, the weighted sum of squared distances
        of the points to their nearest centre; ``n_iter`` (S,) int32.
    """
    x, xp = _check_input(points, k, config, xp, block_frames, n_threads)
    w = _check_weights(weights, x.shape[:2], xp)
    plan = _Plan.of(config)
    n_sets, n_points, _ = x.shape
    lengths = _check_segments(segments, n_sets)
    u_first, u_trials = _uniforms(plan, k, segments or [(n_sets, plan.seed)])
    blocks = _blocks(n_sets, n_points, block_frames, xp)
    xt = xp.ascontiguousarray(xp.transpose(x, (0, 2, 1)))

    def search(i: int) -> _Search:  # steps 2-4, block by block
        b = blocks[i]
        spread = weighted_spread(xt[b], w[b], xp)
        return search_points(xt[b], w[b], spread, k, plan, u_first[b], u_trials[b], xp)

    with _block_runner(len(blocks), n_threads, xp) as run:
        found = run(search, range(len(blocks)))
        neighbour_rounds(found, blocks, plan, run, xp, lengths)  # step 5
        done = run(lambda i: _settle(found[i], plan, xp), range(len(blocks)))
    centres, n_iter, shares, inertia = (_cat([d[j] for d in done], xp) for j in range(4))
    return KMeansResult(centres=centres, shares=shares, inertia=inertia, n_iter=n_iter)


def _check_weights(weights: Array, shape: tuple[int, int], xp: Any) -> Array:
    """``weights`` as float32 of ``xp``, once checked against the points' ``shape``."""
    w = xp.asarray(weights, dtype=xp.float32)
    if tuple(w.shape) != tuple(shape):
        raise ValueError(f"weights must have shape {tuple(shape)}, got {tuple(w.shape)}")
    if bool(xp.any(w < 0)) or not bool(xp.all(xp.sum(w, axis=1) > 0)):
        raise ParameterError("weights must be >= 0, with each point set's total above 0")
    return w


def _settle(found: _Search, plan: _Plan, xp: Any) -> tuple[Array, Array, Array, Array]:
    """Lloyd iterations of one block's centres on its weighted points until they move by at
    most ``plan.pixel_tol`` (relative) or for ``plan.pixel_iter`` iterations, then the
    final assignment. The points are centred on their set's mean first (small norms:
    small rounding errors in the distances from products). Returns the centres
    (b, k, 3), iterations (b,), shares (b, k) and inertia (b,)."""
    pts, w = found.pts, found.w
    total = xp.sum(w, axis=1)
    mean = (xp.sum(pts * w[:, None, :], axis=2) / total[:, None])[:, :, None]  # (b, 3, 1)
    xc = pts - mean
    thresh = (plan.pixel_tol * found.spread).astype(xp.float32)
    centres, more, _ = _lloyd(
        xc,
        found.centres - xp.transpose(mean, (0, 2, 1)),
        thresh,
        plan.pixel_iter,
        xp,
        w,
        sq_norms=xp.sum(xc * xc, axis=1),
    )
    onehot, min_d = _assign(xc, centres, xp)  # exact distances
    shares = (xp.sum(onehot * w[:, None, :], axis=2) / total[:, None]).astype(xp.float32)
    inertia = xp.sum(min_d * w, axis=1, dtype=xp.float64)
    centres = (centres + xp.transpose(mean, (0, 2, 1))).astype(xp.float32)
    return centres, (found.n_iter + more).astype(xp.int32), shares, inertia


def assign_counts(pixels: Array, centres: Array, *, xp: Any = None) -> tuple[Array, Array]:
    """Each frame's pixels assigned to their nearest of its centres (the first on ties).

    Parameters
    ----------
    pixels : array of shape (F, P, 3)
        The frames' pixels, in the centres' space.
    centres : array of shape (F, k, 3)
        Each frame's centres.

    Returns
    -------
    counts : array of shape (F, k), float64
        Each centre's number of pixels.
    inertia : array of shape (F,), float64
        Each frame's sum of squared distances of its pixels to their nearest centre.
    """
    xp = xp or get_xp(pixels, centres)
    x = xp.asarray(pixels, dtype=xp.float32)
    c = xp.asarray(centres, dtype=xp.float32)
    n, p, _ = x.shape
    step = max(1, ASSIGN_ELEMENTS // max(1, p * c.shape[1]))
    counts, inertia = [], []
    for s in range(0, n, step):
        xt = xp.ascontiguousarray(xp.transpose(x[s : s + step], (0, 2, 1)))
        onehot, min_d = _assign(xt, c[s : s + step], xp)
        counts.append(xp.sum(onehot, axis=2, dtype=xp.float64))
        inertia.append(xp.sum(min_d, axis=1, dtype=xp.float64))
    if not counts:
        return xp.zeros(c.shape[:2], dtype=xp.float64), xp.zeros(0, dtype=xp.float64)
    return _cat(counts, xp), _cat(inertia, xp)
