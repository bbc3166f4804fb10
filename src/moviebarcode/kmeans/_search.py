"""The first pass over a block of frames: coresets, k-means++ restarts, the best one.

Steps 1-4 of :mod:`moviebarcode.kmeans`, for one block of frames, independently of the
other blocks: the fine coreset (and the coarse one), ``n_init`` seedings refined on the
coarse coreset as one stacked batch (see :mod:`._layout`), and the ``carry`` best of
them refined on the fine coreset, where the best one is picked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from moviebarcode._xp import Array
from moviebarcode.kmeans._coreset import _bin
from moviebarcode.kmeans._layout import _best_of, _lowest, _rep
from moviebarcode.kmeans._lloyd import _lloyd
from moviebarcode.kmeans._seeding import _kmeans_pp
from moviebarcode.kmeans.config import _Plan


@dataclass
class _Search:
    """What the first pass found for one block of b frames; the neighbour rounds update
    ``centres`` and ``n_iter``."""

    pts: Array  # (b, 3, B) float32 fine coreset, or the pixels (b, 3, P) without one
    w: Array | None  # (b, B) float32 its weights, None for pixels
    spread: Array  # (b,) float32 mean over channels of the frame's variance
    thresh: Array  # (b,) float32 convergence threshold per frame: tol * spread
    centres: Array  # (b, k, 3) float32 the best restart
    n_iter: Array  # (b,) int32 its Lloyd iterations


def search_block(
    x: Array, k: int, plan: _Plan, u_first: np.ndarray, u_trials: np.ndarray, xp: Any
) -> _Search:
    """Steps 1-4 for one block of frames ``x`` (b, P, 3) float32, with the uniforms of
    :func:`~._seeding.draw_uniforms` for these frames, ``u_first`` (b, n_init) and
    ``u_trials`` (b, n_init, k - 1, L)."""
    # Channel-first layout: each channel of each frame is one contiguous row.
    xt = xp.ascontiguousarray(xp.transpose(x, (0, 2, 1)))
    pts, w, spread = _coreset(xt, plan, xp)
    return search_points(pts, w, spread, k, plan, u_first, u_trials, xp)


def search_points(
    pts: Array,
    w: Array | None,
    spread: Array,
    k: int,
    plan: _Plan,
    u_first: np.ndarray,
    u_trials: np.ndarray,
    xp: Any,
) -> _Search:
    """Steps 2-4 for one block of point sets ``pts`` (b, 3, N) float32 of weights ``w``
    (b, N) (None: pixels, all 1) and spread ``spread`` (b,) (see :func:`_coreset`)."""
    thresh = (plan.tol * spread).astype(xp.float32)
    if plan.coarse:
        # Restarts on a coarser coreset, made from the fine one.
        seed_pts, seed_w = _bin(pts, w, plan.coarse_cells, xp)
    else:
        seed_pts, seed_w = pts, w
    centres, n_iter, inertia = _restarts(seed_pts, seed_w, thresh, k, plan, u_first, u_trials, xp)
    centres, n_iter = _carry_on(pts, w, thresh, centres, n_iter, inertia, plan, xp)
    return _Search(pts=pts, w=w, spread=spread, thresh=thresh, centres=centres, n_iter=n_iter)


def _coreset(xt: Array, plan: _Plan, xp: Any) -> tuple[Array, Array | None, Array]:
    """The points the frames ``xt`` (b, 3, P) are clustered on: the fine coreset, (b, 3, B)
    and its weights (b, B), or the pixels and None without a coreset; and each frame's
    spread, the mean over channels of its variance (b,) (on bins, without the variance
    within bins): scikit-learn's tolerance is ``tol`` times it."""
    if plan.coreset:
        pts, w = _bin(xt, None, plan.fine_cells, xp)
        return pts, w, weighted_spread(pts, w, xp)
    mean = xp.mean(xt, axis=2, keepdims=True)
    var = xp.mean((xt - mean) ** 2, axis=2)  # (b, 3)
    return xt, None, xp.mean(var, axis=1)


def weighted_spread(pts: Array, w: Array, xp: Any) -> Array:
    """The mean over channels of the weighted variance of each point set ``pts`` (b, 3, N)
    of weights ``w`` (b, N): (b,)."""
    total = xp.sum(w, axis=1)[:, None]  # (b, 1): the pixel count
    mean = xp.sum(pts * w[:, None, :], axis=2) / total  # (b, 3)
    var = xp.sum(w[:, None, :] * (pts - mean[:, :, None]) ** 2, axis=2) / total
    return xp.mean(var, axis=1)


def _restarts(
    pts: Array,
    w: Array | None,
    thresh: Array,
    k: int,
    plan: _Plan,
    u_first: np.ndarray,
    u_trials: np.ndarray,
    xp: Any,
) -> tuple[Array, Array, Array | None]:
    """Step 3: ``n_init`` k-means++ seedings per frame on ``pts`` (b, 3, N) of weights
    ``w``, each refined by at most ``plan.restart_iter`` Lloyd iterations, as one batch
    of ``n_init * b`` stacked problems. Returns their centres (n_init b, k, 3), iterations
    (n_init b,) and inertias at their last assignment (n_init b,) (None for one restart)."""
    b = pts.shape[0]
    n_init = plan.n_init
    # The points' copies for the seeding; Lloyd shares one set of points per frame.
    pts_r, w_r, thresh_r = _rep(pts, n_init, xp), _rep(w, n_init, xp), _rep(thresh, n_init, xp)
    u_first_r = np.ascontiguousarray(u_first.T).reshape(-1)
    u_trials_r = np.ascontiguousarray(u_trials.transpose(1, 0, 2, 3)).reshape(
        (n_init * b,) + u_trials.shape[2:]
    )
    centres = _kmeans_pp(pts_r, k, u_first_r, u_trials_r, xp, w_r)
    relax = plan.coreset_relax
    return _lloyd(
        pts, centres, thresh_r, plan.restart_iter, xp, w, want_inertia=n_init > 1, relax=relax
    )


def _carry_on(
    pts: Array,
    w: Array | None,
    thresh: Array,
    centres: Array,
    n_iter: Array,
    inertia: Array | None,
    plan: _Plan,
    xp: Any,
) -> tuple[Array, Array]:
    """Step 4: the ``plan.carry`` restarts of lowest ``inertia`` (the first on ties) go on
    by at most ``plan.fine_iter`` Lloyd iterations on the fine coreset ``pts`` (b, 3, B)
    (on the pixels without a coreset), and the lowest inertia there picks one per frame.
    A coarse coreset ranks restarts too roughly to pick the best on its own. With fewer
    ``plan.finalists`` than carried, only those, the best after ``plan.trial_iter``
    iterations, do the rest. Returns the picked centres (b, k, 3) and their iterations
    (b,)."""
    m = plan.carry
    if plan.n_init > 1:
        pick = _lowest(inertia, plan.n_init, m, xp)
        centres, n_iter = centres[pick], n_iter[pick]
    if plan.fine_iter == 0:
        return centres[: pts.shape[0]], n_iter[: pts.shape[0]]
    cut = plan.finalists < m
    iters = plan.trial_iter if cut else plan.fine_iter
    relax = plan.coreset_relax
    centres, more, fit = _lloyd(
        pts, centres, _rep(thresh, m, xp), iters, xp, w, want_inertia=m > 1, relax=relax
    )
    n_iter = n_iter + more
    if cut:
        pick = _lowest(fit, m, plan.finalists, xp)
        m, rest = plan.finalists, plan.fine_iter - plan.trial_iter
        centres, more, fit = _lloyd(
            pts, centres[pick], _rep(thresh, m, xp), rest, xp, w, want_inertia=m > 1, relax=relax
        )
        n_iter = n_iter[pick] + more
    if m > 1:
        pick = _best_of(fit, m, xp)
        centres, n_iter = centres[pick], n_iter[pick]
    return centres, n_iter
