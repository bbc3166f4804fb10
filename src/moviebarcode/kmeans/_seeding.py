"""Greedy weighted k-means++ seeding of many problems at once.

Like scikit-learn's: each step draws ``2 + int(log(k))`` candidate points with
probability proportional to their weight times their squared distance to the nearest
centre so far, and keeps the one that lowers the total (the potential) most. The
uniforms are drawn by the caller, on the host, so that the seeding does not depend on
the array module or on how the batch is cut into blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from moviebarcode._xp import Array
from moviebarcode.kmeans._common import _gather, _sq_distances

_DRAW_BLOCK = 32
"""Points per block in the two-step inverse-CDF draws of k-means++."""


def draw_uniforms(seed: int, n_frames: int, n_init: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All the random numbers of a batch's seedings, drawn on the host up front (so that
    neither the array module nor the blocking changes them).

    Returns ``u_first`` (F, n_init) float64, choosing each restart's first centre, and
    ``u_trials`` (F, n_init, k - 1, L) float64, choosing the ``L = 2 + int(log(k))``
    candidates of each further step (like scikit-learn).
    """
    rng = np.random.default_rng(seed)
    n_trials = 2 + int(math.log(k))
    u_first = rng.random((n_frames, n_init), dtype=np.float64)
    u_trials = rng.random((n_frames, n_init, max(k - 1, 0), n_trials), dtype=np.float64)
    return u_first, u_trials


def _kmeans_pp(
    xt: Array, k: int, u_first: Array, u_trials: Array, xp: Any, w: Array | None = None
) -> Array:
    """Greedy k-means++ seeding of every problem of a batch.

    Parameters
    ----------
    xt : (B, 3, N) float32 points.
    u_first : (B,) float64 uniforms choosing the first centre.
    u_trials : (B, k - 1, L) float64 uniforms choosing L candidates per further step;
        the candidate that lowers the potential most is kept (scikit-learn's greedy
        k-means++).
    w : (B, N) float32 weights of the points, or None for all 1: a point of weight w
        counts as w points at the same place (a weight-0 point is never chosen).

    Returns
    -------
    (B, k, 3) float32 centres, all data points.
    """
    b, _, n = xt.shape
    xt = xp.ascontiguousarray(xt)  # gathered from at every step
    centres = xp.empty((b, k, 3), dtype=xp.float32)
    w64 = xp.ones((b, n), dtype=xp.float64) if w is None else w.astype(xp.float64)
    row = xp.arange(b)
    rows = row[:, None]
    g = _DRAW_BLOCK
    blocks_n = -(-n // g)
    tri = xp.asarray(np.triu(np.ones((g, g))))  # cumulative sums in a block, by one product

    def draw(pot: Array, u: Array) -> Array:
        """Inverse-CDF sampling: per row of ``pot`` (B, N), for each ``u`` (B, L), the first
        index whose cumulative sum is >= u * total; in two steps (which block of g points,
        then where in it), since a cumulative sum along a row is a slow sequential loop."""
        if blocks_n * g != n:
            pot = xp.concatenate([pot, xp.zeros((b, blocks_n * g - n), dtype=pot.dtype)], 1)
        blocks = pot.reshape(b, blocks_n, g)
        block_sum = xp.sum(blocks, axis=2)  # (B, nb)
        block_cum = xp.cumsum(block_sum, axis=1)
        target = u * block_cum[:, -1:]  # (B, L)
        blk = xp.sum(block_cum[:, None, :] < target[:, :, None], axis=2)
        blk = xp.minimum(blk, blocks_n - 1)  # (B, L)
        before = block_cum[rows, blk] - block_sum[rows, blk]
        inside = xp.matmul(blocks[rows, blk], tri)  # (B, L, g)
        at = xp.sum(inside + before[:, :, None] < target[:, :, None], axis=2)
        return xp.minimum(blk * g + xp.minimum(at, g - 1), n - 1)

    # Each point as (x, y, z, 1, |x|^2) and each candidate as (-2c, |c|^2, 1): one product
    # gives their squared distances; another, with the weights, each candidate's potential.
    sq_norms = xp.sum(xt * xt, axis=1, keepdims=True)  # (B, 1, N)
    xa = xp.concatenate([xt, xp.ones_like(sq_norms), sq_norms], axis=1)  # (B, 5, N)
    wcol = (xp.ones((b, n), dtype=xp.float32) if w is None else w)[:, :, None]  # (B, N, 1)
    first = draw(w64, xp.asarray(u_first)[:, None] * (1 - 1e-12))[:, 0]
    centres[:, 0, :] = _gather(xt, first[:, None], xp)[:, 0, :]
    closest = _sq_distances(xt, centres[:, :1, :])[:, 0, :]  # (B, N)
    u = xp.asarray(u_trials)
    for j in range(1, k):
        # A point already chosen (distance 0) is never picked unless all are 0.
        cand = draw(closest * w64, u[:, j - 1, :])  # (B, L)
        cand_xyz = _gather(xt, cand, xp)  # (B, L, 3)
        ones = xp.ones(cand_xyz.shape[:2] + (1,), dtype=xp.float32)
        aug = xp.concatenate(
            [-2.0 * cand_xyz, xp.sum(cand_xyz * cand_xyz, axis=2, keepdims=True), ones], axis=2
        )
        d = xp.matmul(aug, xa)  # (B, L, N): |c|^2 - 2 x.c + |x|^2
        xp.maximum(d, 0.0, out=d)
        xp.minimum(d, closest[:, None, :], out=d)
        best = xp.argmin(xp.matmul(d, wcol)[:, :, 0], axis=1)  # (B,)
        closest = d[row, best]
        centres[:, j, :] = cand_xyz[row, best]
    return centres
