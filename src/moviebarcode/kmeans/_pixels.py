"""The pixel phase: Lloyd iterations on every pixel, from the coresets' centres.

The coresets' solution is close to a fixed point on the pixels: only the bins split
between clusters move. The pixels are centred on their frame's mean (small norms, so
small rounding errors in distances from matrix products) and each keeps one bound, its
*slack*: its distance to its second-nearest centre minus its distance to its nearest
one, when last computed. When a frame's centres move, a pixel's slack shrinks by at most
its own centre's shift plus the largest shift of the others, so by at most the sum of
the two largest shifts; a pixel is computed again only once the frame's total of those
sums since its slack was computed exceeds its slack. This is a one-bound variant of
Hamerly's algorithm (which keeps an upper and a lower bound per pixel). The cluster sums
are updated with the pixels that changed cluster, so each iteration gives what a plain
Lloyd iteration gives, for the cost of a pass over the slacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from moviebarcode._xp import Array
from moviebarcode.kmeans._common import _cluster_sums, _first_of_ties, _product_distances
from moviebarcode.kmeans._layout import NUMPY_BLOCK_ELEMENTS, _cat

if TYPE_CHECKING:
    from moviebarcode.kmeans._search import _Search
    from moviebarcode.kmeans.config import _Plan


def pixel_phase(
    x: Array,
    k: int,
    found: list[_Search],
    blocks: list[slice],
    plan: _Plan,
    run: Callable[[Callable[[int], Any], range], list],
    xp: Any,
) -> tuple[Array, Array, Array, Array]:
    """Step 6 for a batch of pixels ``x`` (F, P, 3) float32: from the centres ``found``
    for each block of frames ``blocks``, at most ``plan.pixel_iter`` Lloyd iterations on
    all pixels, to ``plan.pixel_tol``, then the final assignment of every pixel.
    ``run(fn, range(len(blocks)))`` calls ``fn`` on each block.

    Returns the centres (F, k, 3) float32, the iterations done (F,) int32, each cluster's
    share of its frame's pixels (F, k) float32 and each frame's inertia (F,) float64.
    """
    n_frames, n_pixels, _ = x.shape
    mu = xp.empty((n_frames, 1, 3), dtype=xp.float32)
    centres_c = xp.empty((n_frames, k, 3), dtype=xp.float32)
    slack = xp.empty((n_frames, n_pixels), dtype=xp.float32)
    label = xp.empty((n_frames, n_pixels), dtype=xp.int32)
    sums = xp.empty((n_frames, k, 4), dtype=xp.float64)

    def start_block(i: int) -> None:
        block = blocks[i]
        # Channel-first, with a fourth row of ones for the products (see _pixel_start).
        xt = xp.empty((block.stop - block.start, 4, n_pixels), dtype=xp.float32)
        xt[:, :3] = xp.transpose(x[block], (0, 2, 1))
        xt[:, 3] = 1.0
        m = xp.mean(xt[:, :3], axis=2, keepdims=True)  # (b, 3, 1)
        xt[:, :3] -= m
        mu[block] = xp.transpose(m, (0, 2, 1))
        centres_c[block] = found[i].centres - mu[block]
        out = (slack[block], label[block], sums[block])
        _pixel_start(xt, centres_c[block], block.start, xp, out=out)

    run(start_block, range(len(blocks)))
    thresh = (plan.pixel_tol * _cat([f.spread for f in found], xp)).astype(xp.float32)
    centres_c, n_iter, shares, inertia = _pixel_lloyd(
        x, mu, slack, label, sums, centres_c, thresh, plan.pixel_iter, xp, plan.pixel_relax
    )
    return (centres_c + mu).astype(xp.float32), n_iter, shares, inertia


def _pixel_start(
    xt: Array, centres: Array, first: int, xp: Any, out: tuple[Array, Array, Array] | None = None
) -> tuple[Array, Array, Array]:
    """Where :func:`_pixel_lloyd` starts, for one block of pixels ``xt`` (b, 4, P) (centred
    on each frame's mean, with a fourth row of ones for the products) and ``centres``
    (b, k, 3) (centred likewise), whose first frame
    is frame ``first`` of the batch: every pixel's slack (distance to its second-nearest centre
    minus distance to its nearest, (b, P) float32), its nearest centre's number in the
    batch (``frame * k + cluster``, (b, P) int32), and each cluster's sums of coordinates
    and its pixel count, (b, k, 4) float64; written into ``out`` when given."""
    b, _, n = xt.shape
    k = centres.shape[1]
    if out is None:
        out = (
            xp.empty((b, n), dtype=xp.float32),
            xp.empty((b, n), dtype=xp.int32),
            xp.empty((b, k, 4), dtype=xp.float64),
        )
    slack, label, sums = out
    xc = xt[:, :3]  # the centred pixels
    d = _product_distances(xt, centres, xp)  # (b, k, P): |c|^2 - 2 x.c
    d1 = d[:, 0].copy()
    d2 = xp.full_like(d1, xp.inf)
    tmp = xp.empty_like(d1)
    for j in range(1, k):
        xp.minimum(d2, xp.maximum(d1, d[:, j], out=tmp), out=d2)
        xp.minimum(d1, d[:, j], out=d1)
    eq = d == d1[:, None, :]
    onehot = eq.astype(xp.float32)
    sq = xc[:, 0] * xc[:, 0]  # (b, P)
    for ch in (1, 2):
        xp.multiply(xc[:, ch], xc[:, ch], out=tmp)
        sq += tmp
    # One product gives each cluster's sums and count, another each pixel's cluster.
    s32 = _cluster_sums(xt, onehot, xp)  # (b, k, 4)
    if k > 1 and bool(xp.any(xp.sum(s32[:, :, 3], axis=1) > n + 0.5)):
        # Pixels equally near two centres: keep only the first, from the same distances
        # (so the other frames of the block keep their assignment).
        _first_of_ties(eq, xp)
        onehot = eq.astype(xp.float32)
        s32 = _cluster_sums(xt, onehot, xp)
    sums[...] = s32
    d2 += sq
    d1 += sq
    xp.sqrt(xp.maximum(d2, 0.0, out=d2), out=slack)
    slack -= xp.sqrt(xp.maximum(d1, 0.0, out=d1), out=d1)
    number = xp.arange(k, dtype=xp.float32)[None, None, :]
    lab = xp.matmul(number, onehot)[:, 0, :]  # (b, P), exact small integers
    lab += (xp.arange(first, first + b, dtype=xp.float32) * k)[:, None]
    label[...] = lab
    return slack, label, sums


@dataclass
class _PixelState:
    """What :func:`_pixel_lloyd`'s iterations update, for a batch of F frames of n pixels."""

    rows_x: Array  # (F n, 3) float32: the pixels, pixel-major (not centred)
    mu64: Array  # (F, 1, 3) float64: each frame's mean
    c: Array  # (F, k, 3) float64: the centres, centred on the frame's mean
    sums: Array  # (F, k, 4) float64: each cluster's sums of centred coordinates, and count
    drift: Array  # (F,) float32: each frame's total of its two largest shifts, so far
    n: int
    active: Array  # (F,) bool: the frames not yet converged (the others keep their centres)


def _pixel_lloyd(
    x: Array,
    mu: Array,
    slack: Array,
    label: Array,
    sums: Array,
    centres: Array,
    thresh: Array,
    max_iter: int,
    xp: Any,
    relax: float = 1.0,
) -> tuple[Array, Array, Array, Array]:
    """Lloyd iterations on the pixels ``x`` (F, P, 3) float32 of a batch, over-relaxed by
    ``relax`` (see :func:`_move_centres`), from the
    assignment of :func:`_pixel_start` (``slack``, ``label``, ``sums``) to ``centres``
    (F, k, 3), then the final assignment of every pixel; see the module docstring.

    The centres and the sums are centred on each frame's mean ``mu`` (F, 1, 3), as
    :func:`_pixel_start` made them. A frame has converged once the sum of its centres'
    squared shifts is at most ``thresh`` (F,), and its centres move no more; it leaves
    the working set only when at least half of the set has converged (compacting the set
    costs a copy), but a frame's result never depends on the others. An empty cluster
    keeps its centre. ``slack``, ``label`` and ``sums`` are updated in place.

    Returns the centres (F, k, 3) float32 (centred), the iterations done (F,) int32, each
    cluster's share of its frame's pixels (F, k) float32 and each frame's inertia (F,)
    float64.
    """
    n_frames, n = slack.shape
    state = _PixelState(
        rows_x=x.reshape(-1, 3),
        mu64=mu.reshape(-1, 1, 3).astype(xp.float64),
        c=centres.astype(xp.float64),
        sums=sums,
        drift=xp.zeros(n_frames, dtype=xp.float32),
        n=n,
        active=xp.ones(n_frames, dtype=bool),
    )
    n_iter = xp.zeros(n_frames, dtype=xp.int32)
    everyone = xp.arange(n_frames)
    frames, cur_slack, cur_label = everyone, slack, label  # the frames still moving
    for _ in range(max_iter):
        moving = _move_centres(state, frames, thresh, n_iter, xp, relax)
        n_moving = int(xp.sum(moving))
        if n_moving == 0:
            break
        if n_moving <= frames.shape[0] // 2:
            # Compact the working set to the frames still moving.
            if frames is not everyone:
                slack[frames], label[frames] = cur_slack, cur_label
            frames = frames[xp.nonzero(moving)[0]]
            cur_slack, cur_label = slack[frames], label[frames]
        _reassign(state, frames, cur_slack, cur_label, xp)
    if frames is not everyone:
        slack[frames], label[frames] = cur_slack, cur_label
    # The final assignment, to the last centres.
    _reassign(state, everyone, slack, label, xp)
    centres = state.c.astype(xp.float32)
    shares = (sums[:, :, 3] / n).astype(xp.float32)
    return centres, n_iter, shares, _pixel_inertia(x, centres + mu, label, xp)


def _move_centres(
    state: _PixelState, frames: Array, thresh: Array, n_iter: Array, xp: Any, relax: float = 1.0
) -> Array:
    """One Lloyd update of the centres of the frames of ``frames`` (F',) not yet
    converged, from their cluster sums: each non-empty cluster towards its pixels' mean,
    ``relax`` times the way (over-relaxation, 1 <= relax < 2) while the frame still moves,
    exactly there on its last step. Adds the two largest shifts to the frames' drift and
    counts the iteration in ``n_iter``. Returns whether each frame still moves (the squared
    steps to its means sum to more than its ``thresh``), (F',) bool; a frame that does not
    is converged from then on."""
    sums, c = state.sums, state.c
    counts = sums[frames, :, 3:]
    old = c[frames]
    active = state.active[frames]
    mean = xp.where(
        (counts > 0) & active[:, None, None], sums[frames, :, :3] / xp.maximum(counts, 1), old
    )
    moving = (xp.sum((mean - old) ** 2, axis=(1, 2)) > thresh[frames]) & active
    new = mean
    if relax != 1.0:
        new = xp.where(moving[:, None, None], old + relax * (mean - old), mean)
    delta2 = xp.sum((new - old) ** 2, axis=2)  # (F', k), 0 for the converged
    c[frames] = new
    n_iter[frames] += active.astype(n_iter.dtype)
    # A pixel's slack shrinks by at most its own centre's shift plus the largest shift
    # of the others: at most the two largest shifts together.
    k = c.shape[1]
    top = xp.sqrt(xp.sort(delta2, axis=1)[:, -2:]) if k > 1 else 2.0 * xp.sqrt(delta2)
    state.drift[frames] += xp.sum(top, axis=1).astype(xp.float32)
    state.active[frames] = moving
    return moving


def _reassign(state: _PixelState, frames: Array, slack: Array, label: Array, xp: Any) -> None:
    """Compute again the pixels of ``frames`` (F',) whose slack is below their frame's
    drift: their slack and label (rows ``slack``, ``label`` (F', n) of those frames,
    updated in place), and the cluster sums of the pixels that changed cluster."""
    n, c, mu64, drift = state.n, state.c, state.mu64, state.drift
    k = c.shape[1]
    cand = xp.nonzero((slack < drift[frames][:, None]).reshape(-1))[0]
    if cand.shape[0] == 0:
        return
    at = cand // n  # each candidate's place in frames
    f = frames[at]
    # The candidates' pixels are gathered as rows of the pixel-major input (one cache line
    # per pixel, not one per channel); their distances are to the centres moved back by
    # the frame's mean.
    pts = xp.ascontiguousarray(xp.take(state.rows_x, f * n + cand % n, axis=0).T)  # (3, M)
    # The candidates' centres, (k, 3, M), not centred (as the pixels): each frame's centres
    # (as columns) once per candidate of the frame. The candidates come frame by frame, so
    # NumPy repeats them (faster than a gather); CuPy gathers them (its repeat takes no
    # device array of counts). Both give the same values.
    ct = xp.transpose(c[frames] + mu64[frames], (1, 2, 0)).astype(xp.float32)  # (k, 3, F')
    if xp is np:
        cf = np.repeat(ct, np.bincount(at, minlength=frames.shape[0]), axis=2)
    else:
        cf = xp.take(ct, at, axis=2)
    m1 = m2 = near = None
    for j in range(k):
        dj = pts[0] - cf[j, 0]
        dj *= dj
        for ch in (1, 2):
            t = pts[ch] - cf[j, ch]
            t *= t
            dj += t
        if j == 0:
            m1, m2, near = dj, xp.full_like(dj, xp.inf), xp.zeros(dj.shape, dtype=xp.int32)
        else:
            xp.minimum(m2, xp.maximum(m1, dj), out=m2)
            near = xp.where(dj < m1, xp.int32(j), near)
            xp.minimum(m1, dj, out=m1)
    flat_slack = slack.reshape(-1)
    flat_slack[cand] = xp.sqrt(m2) - xp.sqrt(m1) + drift[f]
    flat_label = label.reshape(-1)
    was = flat_label[cand]
    to = near + f.astype(xp.int32) * k
    moved = xp.nonzero(to != was)[0]
    if moved.shape[0] == 0:
        return
    flat_label[cand[moved]] = to[moved]
    was, to = was[moved], to[moved]
    # The sums are of the centred pixels.
    centred = pts[:, moved].astype(xp.float64) - xp.transpose(mu64[f[moved], 0])
    flat_sums = state.sums.reshape(-1, 4)
    for ch, v in enumerate([*centred, None]):
        v = xp.ones(moved.shape, dtype=xp.float64) if v is None else v
        flat_sums[:, ch] += xp.bincount(to, weights=v, minlength=flat_sums.shape[0])
        flat_sums[:, ch] -= xp.bincount(was, weights=v, minlength=flat_sums.shape[0])


def _pixel_inertia(x: Array, centres: Array, label: Array, xp: Any) -> Array:
    """Each frame's inertia (F,) float64: the squared distances of the pixels ``x``
    (F, n, 3) to their centres, ``centres`` (F, k, 3) (not centred) numbered by ``label``
    (F, n) as ``frame * k + cluster``, exactly, block by block of frames."""
    n_frames, n = label.shape
    rows_x = x.reshape(-1, 3)
    table = centres.reshape(-1, 3)  # (F k, 3)
    inertia = xp.empty(n_frames, dtype=xp.float64)
    step = max(1, NUMPY_BLOCK_ELEMENTS // n) if xp is np else n_frames
    for s in range(0, n_frames, step):
        e = min(s + step, n_frames)
        d = xp.take(table, label[s:e].reshape(-1), axis=0)  # ((e - s) n, 3)
        d -= rows_x[s * n : e * n]
        d *= d
        inertia[s:e] = xp.sum(d.reshape(e - s, -1), axis=1, dtype=xp.float64)
    return inertia
