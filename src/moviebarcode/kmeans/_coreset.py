"""Weighted coresets: each frame's points binned into equal cubes, one point per bin.

Each frame's colour box, in luma / opponent-colour axes, is cut into about ``n_cells``
equal cubes, and each non-empty cube becomes one point, the mean of its points, weighted
by their count (or total weight). k-means on these points is k-means on the frame's
pixels, up to a constant, wherever a cube's pixels share a cluster, and they are far
fewer than the pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from moviebarcode._xp import Array

_OPPONENT = np.array(
    [
        [1 / 3**0.5, 1 / 2**0.5, 1 / 6**0.5],
        [1 / 3**0.5, -1 / 2**0.5, 1 / 6**0.5],
        [1 / 3**0.5, 0, -2 / 6**0.5],
    ],
    dtype=np.float32,
)
"""Orthonormal luma / opponent-colour axes (columns): the bin grid is aligned with them."""


def _bin(xt: Array, weight: Array | None, n_cells: int, xp: Any) -> tuple[Array, Array]:
    """Weighted coreset of each frame of points ``xt`` (b, 3, N): the means of its bins.

    The frame's bounding box in luma / opponent-colour axes is cut into about
    ``n_cells`` equal cubes (fewer steps along axes with less spread: a grey frame is
    binned finely along its grey line); points in the same cube share a bin. ``weight``
    (b, N), or all 1, weights the points. Returns the bin means, (b, 3, B) float32, and
    their weights, (b, B) float32, for the frames' non-empty bins in the first places of
    each row, padded to the largest count B with copies of the frame's first bin and
    weight 0.
    """
    b, _, n = xt.shape
    y = xp.matmul(xp.asarray(_OPPONENT.T), xt)  # (b, 3, N)
    # Padding points are copies of real ones: the box is the same.
    lo = xp.min(y, axis=2)  # (b, 3)
    span = xp.max(y, axis=2) - lo
    # Cube side: span product / n_cells, over the axes whose span exceeds it.
    log_span = xp.log(xp.maximum(span, 1e-6).astype(xp.float64))
    flat = xp.zeros(span.shape, dtype=bool)
    for _ in range(3):
        used = xp.sum(~flat, axis=1)
        log_step = (xp.sum(xp.where(flat, 0.0, log_span), axis=1) - math.log(n_cells)) / xp.maximum(
            used, 1
        )
        flat = log_span <= log_step[:, None]
    steps = xp.clip(xp.floor(xp.exp(log_span - log_step[:, None])), 1, n_cells)  # (b, 3)
    inv = (steps / xp.maximum(span, 1e-6)).astype(xp.float32)
    cells = steps[:, 0] * steps[:, 1] * steps[:, 2]
    size = int(xp.max(cells))
    y -= lo[:, :, None]
    y *= inv[:, :, None]
    xp.floor(y, out=y)
    xp.minimum(y, (steps - 1).astype(xp.float32)[:, :, None], out=y)
    place = xp.stack([steps[:, 1] * steps[:, 2], steps[:, 2], xp.ones_like(steps[:, 2])], axis=1)
    # Cell numbers below 2**24 are exact in float32.
    ids = xp.matmul(place.astype(xp.float32)[:, None, :], y)[:, 0, :].astype(xp.int64)
    ids += (xp.arange(b, dtype=xp.int64) * size)[:, None]
    ids = ids.reshape(-1)
    flat_w = None if weight is None else weight.astype(xp.float64).reshape(-1)
    counts = xp.bincount(ids, weights=flat_w, minlength=b * size)
    occupied = xp.nonzero(counts > 0)[0]  # sorted: frame by frame
    # Each point's bin among the occupied ones: the sums below stay small (cache-sized).
    rank = xp.zeros(counts.shape, dtype=xp.int64)
    rank[occupied] = xp.arange(occupied.shape[0])
    ids = rank[ids]
    total = counts[occupied].astype(xp.float64)
    frame = occupied // size
    per_frame = xp.bincount(frame, minlength=b)
    width = int(xp.max(per_frame))
    start = xp.cumsum(per_frame) - per_frame
    pos = xp.arange(occupied.shape[0]) - start[frame]
    w = xp.zeros((b, width), dtype=xp.float32)
    w[frame, pos] = total
    pts = xp.zeros((b, 3, width), dtype=xp.float32)
    for c in range(3):
        v = xt[:, c, :] if weight is None else xt[:, c, :] * weight
        sums = xp.bincount(ids, weights=v.astype(xp.float64).reshape(-1), minlength=total.shape[0])
        pts[frame, c, pos] = sums / total
    pad = xp.arange(width)[None, :] >= per_frame[:, None]  # (b, B)
    pts = xp.where(pad[:, None, :], pts[:, :, :1], pts)
    return pts, w
