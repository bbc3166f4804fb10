"""Batched k-means colour clustering of many frames at once, for NumPy and CuPy alike.

This module owns the clustering maths: :func:`batched_kmeans` clusters the pixels of a
whole batch of frames in one go (one independent k-means problem per frame), and
:class:`KMeansResult` holds what it found. The code is written against the array API
shared by NumPy and CuPy (``xp`` is the ``numpy`` or ``cupy`` module), so the same
function runs on the CPU here and on a GPU later. All randomness is drawn on the host
with ``numpy.random.default_rng(seed)`` and moved to the device, so NumPy and CuPy give
the same result for the same seed.

Algorithm, per frame (all frames of a block are processed together; the only Python
loops are over clusters, seeding steps, iterations and cache-sized blocks of frames):

1. a weighted coreset: the frame's colour box, in luma / opponent-colour axes, is cut
   into about ``8**bin_bits`` equal cubes and each non-empty cube becomes one point, the
   mean of its pixels, weighted by their count (k-means on these is k-means on the
   pixels, up to a constant, wherever a cube's pixels share a cluster); typical film
   frames at 160x90 give 1,000-2,500 bins for 14,400 pixels, grey frames a few hundred;
2. a coarser coreset (``8**coarse_bits`` cubes) of that one, one or two hundred points;
3. ``n_init`` greedy weighted k-means++ seedings (``2 + int(log(k))`` local trials per
   step, like scikit-learn) on the coarse coreset, each refined by at most
   ``bin_iter`` Lloyd iterations there, all restarts as one bigger batch;
4. the ``carry`` restarts with the lowest coarse inertia go on by at most ``fine_iter``
   Lloyd iterations on the fine coreset, and the lowest inertia there picks one (the
   coarse coreset ranks restarts too roughly to pick the best on its own: a restart
   that will be best on the pixels is often second or third there);
5. neighbour starts (a second pass, once every frame of the batch has its step-4
   centres): the centres of the ``neighbours`` frames before and after it in the batch
   start at most ``neighbour_iter`` more Lloyd runs on the frame's fine coreset, and the
   lowest coreset inertia among them and the frame's own centres wins. Films are
   mostly continuous shots, so a neighbour's solution is often a better local optimum
   than any of the frame's own restarts: this is what brings the mean inertia close to
   scikit-learn's 20 restarts at a fraction of the restarts. ``neighbour_rounds``
   rounds, each starting from the last one's winners, spread a good solution further
   along the shot;
6. Lloyd iterations on all the pixels settle the bins split between clusters, until
   the centres move less than ``refine_tol`` (tighter than scikit-learn's ``tol``, so
   that a frame ends at the bottom of its local optimum, where scikit-learn stops a
   little above it) or for at most ``refine_iter`` iterations. They are cheap: bounds
   (Hamerly's) skip the pixels that cannot have changed cluster, 98-99% of them in
   each iteration, and the loop runs over the whole batch at once. A final assignment
   of every pixel gives exact shares and inertia.

Lloyd iterations compute only the problems still moving. A frame's result depends on
the other frames of its batch (its neighbours), never on the blocking or the threads.
Measured on 2 CPU cores (``scripts/bench render cache/bbb.zarr --sample 200 --repeat 3``,
k=8, 7,158 frames of 160x90, through ``render.cluster_frames`` in two processes): 1.48 ms per
frame, 139 times faster than scikit-learn's ``KMeans(n_init=20)`` (205 ms on that machine;
the three rounds gave 140, 132 and 114 times), at a mean inertia 0.004% below its own, at or
below it on 74% of the frames. On 1,160 other frames of that film the mean inertia is 0.004%
below scikit-learn's ``KMeans(n_init=20)``, at or below it on 76% of the frames. When frames
are unrelated (in random order), the neighbour starts do not help, and the mean inertia is
about 0.13% above scikit-learn's.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any
"""A NumPy or CuPy array."""

DEFAULT_N_INIT = 8
DEFAULT_CARRY = 3
DEFAULT_BIN_BITS: float | None = 5
DEFAULT_BIN_ITER: int | None = 8
DEFAULT_FINE_ITER: int | None = 5
DEFAULT_REFINE_ITER: int | None = None
DEFAULT_REFINE_TOL: float | None = 1e-6
DEFAULT_COARSE_BITS: float | None = 3.5
DEFAULT_NEIGHBOURS = 2
DEFAULT_NEIGHBOUR_ITER: int | None = 2
DEFAULT_NEIGHBOUR_ROUNDS = 2
ALGORITHM_VERSION = 6
"""Bumped whenever the defaults or the algorithm change the results (cached results name it)."""
_DRAW_BLOCK = 32
"""Points per block in the two-step inverse-CDF draws of k-means++."""
_NUMPY_BLOCK_ELEMENTS = 8 * 14_400
"""Pixels (frames x pixels per frame) per block on NumPy: keeps temporaries in cache."""


@dataclass
class KMeansResult:
    """The clusters found in each frame of a batch.

    Attributes
    ----------
    centres : array of shape (F, k, 3), float32
        Cluster centres, in the space of the input pixels. A cluster that ended up
        empty keeps a finite centre (a duplicate of another centre or a data point).
    shares : array of shape (F, k), float32
        Fraction of each frame's pixels nearest to each centre; each row sums to 1.
    inertia : array of shape (F,), float64
        Sum of squared distances of each frame's pixels to their nearest centre
        (scikit-learn's ``inertia_``).
    n_iter : array of shape (F,), int32
        Lloyd iterations of the chosen run, over all its phases (coresets and pixels).
    """

    centres: Array
    shares: Array
    inertia: Array
    n_iter: Array


def get_xp(array: Array) -> Any:
    """Return the array module (``numpy`` or ``cupy``) that ``array`` belongs to."""
    module = type(array).__module__.split(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    return np


def to_numpy(result: KMeansResult) -> KMeansResult:
    """Return a copy of ``result`` whose arrays are NumPy arrays (``.get()`` from CuPy)."""

    def host(a: Array) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    return KMeansResult(
        centres=host(result.centres),
        shares=host(result.shares),
        inertia=host(result.inertia),
        n_iter=host(result.n_iter),
    )


def batched_kmeans(
    pixels: Array,
    k: int,
    *,
    n_init: int = DEFAULT_N_INIT,
    max_iter: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    xp: Any = None,
    bin_bits: float | None = DEFAULT_BIN_BITS,
    bin_iter: int | None = DEFAULT_BIN_ITER,
    fine_iter: int | None = DEFAULT_FINE_ITER,
    coarse_bits: float | None = DEFAULT_COARSE_BITS,
    refine_iter: int | None = DEFAULT_REFINE_ITER,
    refine_tol: float | None = DEFAULT_REFINE_TOL,
    neighbours: int = DEFAULT_NEIGHBOURS,
    neighbour_iter: int | None = DEFAULT_NEIGHBOUR_ITER,
    neighbour_rounds: int = DEFAULT_NEIGHBOUR_ROUNDS,
    carry: int = DEFAULT_CARRY,
    block_frames: int | None = None,
    n_threads: int | None = None,
) -> KMeansResult:
    """Cluster the pixels of each frame of a batch into ``k`` colours.

    One k-means problem per frame, solved for all frames at once (see the module
    docstring for the algorithm). The defaults give a mean inertia on film frames
    within about 0.01% of scikit-learn's ``KMeans(init='k-means++', n_init=20)``
    (within about 0.2% for unrelated frames, which get nothing from their neighbours).

    Parameters
    ----------
    pixels : array of shape (F, P, 3), float32
        F frames of P pixels each, already in the clustering space (sRGB 0-255 or
        CIELAB). NumPy or CuPy; other float dtypes are converted to float32.
    k : int
        Number of clusters per frame, >= 1.
    n_init : int, default=8
        Number of k-means++ seedings per frame (on the coarse coreset); the ``carry``
        with the lowest inertia there go on to the fine coreset, where the lowest
        inertia picks one.
    max_iter : int, default=100
        Most Lloyd iterations per phase.
    tol : float, default=1e-4
        Convergence tolerance, relative like scikit-learn's: a frame has converged when
        the sum over its centres of the squared centre shift is at most
        ``tol * mean(var(frame, axis=0))`` (the variance of the coreset's bin means).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed and batch give the same
        result, on NumPy and on CuPy.
    xp : module, optional
        ``numpy`` or ``cupy``; derived from ``pixels`` when omitted.
    bin_bits : float or None, default=5
        The coreset has at most about ``8**bin_bits`` bins per frame (1 to 8).
        ``None``: no coreset, every phase on all pixels (slow; exact k-means).
    bin_iter : int or None, default=8
        Most Lloyd iterations of each restart on the coarse coreset (capped by
        ``max_iter``); ``None``: until convergence or ``max_iter``.
    fine_iter : int or None, default=5
        Most Lloyd iterations of the carried restarts on the fine coreset (the
        neighbour rounds and the pixel steps go on from there); ``None``: until
        convergence.
        Without a coreset (``bin_bits=None``) the best restart always converges.
    coarse_bits : float or None, default=3.5
        The restarts' coreset has at most about ``8**coarse_bits`` bins; ``None`` or
        ``>= bin_bits``: the restarts run on the fine coreset.
    carry : int, default=3
        Restarts (the best on the coarse coreset) that go on to the fine coreset, where
        the best one is picked; 1 when the restarts run on the fine coreset already.
    refine_iter : int or None, default=None
        Most Lloyd iterations on all pixels after the coreset phases (capped by
        ``max_iter``); ``None``: until convergence (``refine_tol``) or ``max_iter``.
    refine_tol : float or None, default=1e-6
        Convergence tolerance of the iterations on pixels, relative like ``tol``;
        ``None``: ``tol``.
    neighbours : int, default=2
        Each frame also starts from the centres found for the frames up to this many
        places before and after it in the batch (reflected at the batch's ends);
        0: frames are clustered independently of each other.
    neighbour_iter : int or None, default=2
        Most Lloyd iterations of each neighbour start on the fine coreset (capped by
        ``max_iter``); ``None``: until convergence.
    neighbour_rounds : int, default=2
        Rounds of neighbour starts, each from the previous round's winners, so that a
        good solution spreads ``neighbours * neighbour_rounds`` frames along a shot.
    block_frames : int, optional
        Frames clustered together at a time. Default: all of them on CuPy, about
        115,000 pixels' worth on NumPy (so that temporaries stay in the CPU caches).
        Blocking never changes the result: the random numbers are drawn for the whole
        batch up front, and the neighbour starts come from the whole batch.
    n_threads : int, optional
        NumPy only: blocks are clustered on this many threads (default: the CPU count).

    Returns
    -------
    KMeansResult
        ``centres`` (F, k, 3) float32, ``shares`` (F, k) float32, ``inertia`` (F,)
        float64, ``n_iter`` (F,) int32 (Lloyd iterations of the chosen run over all
        phases), as arrays of ``xp``.
    """
    if xp is None:
        xp = get_xp(pixels)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}")
    if bin_bits is not None and not 1 <= bin_bits <= 8:
        raise ValueError(f"bin_bits must be None or 1 to 8, got {bin_bits}")
    x = xp.asarray(pixels, dtype=xp.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"pixels must have shape (F, P, 3), got {tuple(x.shape)}")
    n_frames, n_pixels, _ = x.shape
    if n_pixels == 0:
        raise ValueError("frames must have at least one pixel")

    # All randomness, for the whole batch, drawn on the host up front.
    rng = np.random.default_rng(seed)
    n_trials = 2 + int(math.log(k))
    u_first = rng.random((n_frames, n_init), dtype=np.float64)
    u_trials = rng.random((n_frames, n_init, max(k - 1, 0), n_trials), dtype=np.float64)

    if block_frames is None:
        if xp is np:
            block_frames = max(1, _NUMPY_BLOCK_ELEMENTS // n_pixels)
        else:
            block_frames = n_frames
    block_frames = max(1, int(block_frames))
    bin_iter = max_iter if bin_iter is None else min(max_iter, bin_iter)
    fine_iter = max_iter if fine_iter is None else min(max_iter, fine_iter)
    refine_iter = max_iter if refine_iter is None else min(max_iter, refine_iter)
    neighbour_iter = max_iter if neighbour_iter is None else min(max_iter, neighbour_iter)
    starts = list(range(0, n_frames, block_frames))

    def search(start: int) -> _Search:
        stop = min(start + block_frames, n_frames)
        return _search_block(
            x[start:stop],
            k,
            n_init=n_init,
            max_iter=max_iter,
            bin_bits=None if bin_bits is None else float(bin_bits),
            bin_iter=bin_iter,
            fine_iter=fine_iter,
            coarse_bits=coarse_bits,
            tol=tol,
            u_first=u_first[start:stop],
            u_trials=u_trials[start:stop],
            xp=xp,
            carry=carry,
        )

    pool = None
    if xp is np and len(starts) > 1:
        workers = n_threads if n_threads is not None else (os.cpu_count() or 1)
        workers = max(1, min(workers, len(starts)))
        if workers > 1:
            pool = ThreadPoolExecutor(max_workers=workers)

    def each(fn, items):
        return list(pool.map(fn, items)) if pool is not None else [fn(i) for i in items]

    try:
        found = each(search, starts)
        reach = min(int(neighbours), n_frames - 1)
        near = xp.asarray(_neighbour_index(n_frames, reach)) if reach > 0 else None  # (m, F)

        def neighbour(i: int, first: Array, moved: Array | None) -> tuple[Array, Array, Array]:
            start = starts[i]
            stop = min(start + block_frames, n_frames)
            sources = near[:, start:stop]  # (m, b)
            return _neighbour_block(
                found[i],
                first[sources],  # (m, b, k, 3)
                None if moved is None else moved[sources],
                neighbour_iter=neighbour_iter,
                xp=xp,
            )

        moved = None  # (F,) the frames whose centres the last round changed; None: all
        for _ in range(neighbour_rounds if reach > 0 else 0):
            # Every block starts from the previous round's winners of the whole batch.
            first = xp.concatenate([f.centres for f in found], axis=0)  # (F, k, 3)
            step = functools.partial(neighbour, first=first, moved=moved)
            won = each(step, range(len(starts)))
            for f, (centres, n_iter, _) in zip(found, won, strict=True):
                f.centres, f.n_iter = centres, n_iter
            moved = _cat([changed for _, _, changed in won], xp)

        # The last pass, on every pixel, centred on each frame's mean (small norms: small
        # rounding errors in distances from matrix products). Each block is assigned to
        # its centres, then the Lloyd iterations that settle the bins split between
        # clusters run on the whole batch at once (few pixels move: the loop's overhead
        # is shared).
        mu = xp.empty((n_frames, 1, 3), dtype=xp.float32)
        centres_c = xp.empty((n_frames, k, 3), dtype=xp.float32)
        slack = xp.empty((n_frames, n_pixels), dtype=xp.float32)
        label = xp.empty((n_frames, n_pixels), dtype=xp.int32)
        sums = xp.empty((n_frames, k, 4), dtype=xp.float64)

        def start_block(i: int) -> None:
            block = slice(starts[i], min(starts[i] + block_frames, n_frames))
            xb = xp.ascontiguousarray(xp.transpose(x[block], (0, 2, 1)))
            m = xp.mean(xb, axis=2, keepdims=True)  # (b, 3, 1)
            xb -= m
            mu[block] = xp.transpose(m, (0, 2, 1))
            centres_c[block] = found[i].centres - mu[block]
            _pixel_start(
                xb, centres_c[block], starts[i], xp, out=(slack[block], label[block], sums[block])
            )

        each(start_block, range(len(starts)))
        pixel_tol = tol if refine_tol is None else refine_tol
        thresh = (pixel_tol * _cat([f.spread for f in found], xp)).astype(xp.float32)
        centres_c, more, shares, inertia = _pixel_lloyd(
            x,
            mu,
            slack,
            label,
            sums,
            centres_c,
            thresh,
            refine_iter if bin_bits is not None else 0,
            xp,
        )
    finally:
        if pool is not None:
            pool.shutdown()

    centres = (centres_c + mu).astype(xp.float32)
    n_iter = (_cat([f.n_iter for f in found], xp) + more).astype(xp.int32)
    return KMeansResult(centres=centres, shares=shares, inertia=inertia, n_iter=n_iter)


# ----------------------------------------------------------------------------- internals


@dataclass
class _Search:
    """What the first pass found for one block of frames (see :func:`_search_block`)."""

    pts: Array  # (b, 3, B) fine coreset, or the pixels (b, 3, P) without bins
    w: Array | None  # (b, B) its weights, None for pixels
    spread: Array  # (b,) mean over channels of the frame's variance
    thresh: Array  # (b,) convergence threshold per frame: tol * spread
    centres: Array  # (b, k, 3) the best restart, converged on the fine coreset
    n_iter: Array  # (b,) its Lloyd iterations


def _search_block(
    x: Array,
    k: int,
    *,
    n_init: int,
    max_iter: int,
    bin_bits: float | None,
    bin_iter: int,
    fine_iter: int,
    coarse_bits: float | None,
    tol: float,
    u_first: np.ndarray,
    u_trials: np.ndarray,
    xp: Any,
    carry: int,
) -> _Search:
    """First pass over one block of frames ``x`` (b, P, 3): coresets, restarts, the best one
    converged on the fine coreset; see :func:`batched_kmeans`."""
    b, n_pixels, _ = x.shape
    # Channel-first layout: each channel of each frame is one contiguous row.
    xt = xp.ascontiguousarray(xp.transpose(x, (0, 2, 1)))
    if bin_bits is None:
        pts, w = xt, None
        mean = xp.mean(pts, axis=2, keepdims=True)
        var = xp.mean((pts - mean) ** 2, axis=2)  # (b, 3)
    else:
        pts, w = _bin(xt, None, round(8.0**bin_bits), xp)
        total = xp.sum(w, axis=1)[:, None]  # (b, 1): the pixel count
        mean = xp.sum(pts * w[:, None, :], axis=2) / total  # (b, 3)
        var = xp.sum(w[:, None, :] * (pts - mean[:, :, None]) ** 2, axis=2) / total
    # sklearn's tolerance: tol * mean over channels of the frame's variance (here, on
    # bins, without the small variance within bins).
    spread = xp.mean(var, axis=1)  # (b,)
    thresh = (tol * spread).astype(xp.float32)

    if bin_bits is not None and coarse_bits is not None and coarse_bits < bin_bits:
        # Restarts on a coarser coreset, made from the fine one.
        seed_pts, seed_w = _bin(pts, w, round(8.0**coarse_bits), xp)
    else:
        seed_pts, seed_w = pts, w
    # Restarts as a bigger batch: problem r * b + f is restart r of frame f.
    pts_r, w_r, thresh_r = (
        _rep(seed_pts, n_init, xp),
        _rep(seed_w, n_init, xp),
        _rep(thresh, n_init, xp),
    )  # the points' copies for the seeding; Lloyd shares one set of points per frame
    u_first_r = np.ascontiguousarray(u_first.T).reshape(-1)
    u_trials_r = np.ascontiguousarray(u_trials.transpose(1, 0, 2, 3)).reshape(
        (n_init * b,) + u_trials.shape[2:]
    )
    centres = _kmeans_pp(pts_r, k, u_first_r, u_trials_r, xp, w_r)
    centres, n_iter, inertia = _lloyd(
        seed_pts, centres, thresh_r, bin_iter, xp, seed_w, want_inertia=n_init > 1
    )
    # The best restarts go on: on the fine coreset for at most fine_iter iterations (the
    # neighbour rounds and the pixel steps follow), on pixels to convergence. With a
    # coarser coreset for the restarts, its ranking is rough: the best ``carry`` of them
    # go on, and the fine coreset picks among them.
    more_iter = max_iter - bin_iter if bin_bits is None else min(max_iter - bin_iter, fine_iter)
    m = max(1, min(carry, n_init)) if seed_pts is not pts else 1
    if n_init > 1:
        # Inertia of each restart (at its last assignment) ranks them (first on ties).
        order = xp.argsort(inertia.reshape(n_init, b), axis=0, kind="stable")[:m]  # (m, b)
        pick = (order * b + xp.arange(b)[None, :]).reshape(-1)
        centres = centres[pick]
        n_iter = n_iter[pick]
    if more_iter > 0:
        centres, more, fit = _lloyd(
            pts, centres, _rep(thresh, m, xp), more_iter, xp, w, want_inertia=m > 1
        )
        n_iter = n_iter + more
        if m > 1:
            pick = _best_of(fit, m, xp)
            centres, n_iter = centres[pick], n_iter[pick]
    elif m > 1:
        centres, n_iter = centres[:b], n_iter[:b]
    return _Search(
        pts=pts,
        w=w,
        spread=spread,
        thresh=thresh,
        centres=centres,
        n_iter=n_iter,
    )


def _neighbour_block(
    found: _Search, others: Array, moved: Array | None, *, neighbour_iter: int, xp: Any
) -> tuple[Array, Array, Array]:
    """Neighbour starts for one block of frames: ``others`` (m, b, k, 3) more starting
    centres per frame (its neighbours' centres). Each runs at most ``neighbour_iter``
    Lloyd iterations on the frame's fine coreset; the centres with the lowest coreset
    inertia, the frame's own included, win. ``moved`` (m, b) bool, if given, says which
    starts are new: a start that the previous round tried already (its neighbour's centres
    did not change) is not run again, since the frame's own centres, that round's winner,
    are at least as good. Returns the winners (b, k, 3), their Lloyd iterations so far
    (b,) and whether each frame's centres changed (b,) bool."""
    b = found.centres.shape[0]
    m = others.shape[0]
    starts = others.reshape((m * b,) + others.shape[2:])
    sel = None if moved is None else xp.nonzero(moved.reshape(-1))[0]  # run: r * b + f
    if sel is not None and sel.shape[0] == 0:
        return found.centres, found.n_iter, xp.zeros(b, dtype=bool)

    def per_start(a: Array | None, copies: bool = True) -> Array | None:
        """``a`` (b, ...) for each start run: m copies (or ``a`` itself, shared by the m
        starts, without ``copies``), or the rows of the frames in sel."""
        if a is None or sel is None:
            return _rep(a, m, xp) if copies else a
        return a[sel % b]

    # The points' squared norms, once (not once per start); exact distances on pixels.
    sq = None if found.w is None else xp.sum(found.pts * found.pts, axis=1)
    # Each start's inertia at its last assignment (before its last update) ranks it: no
    # extra pass over the starts; the frame's own centres get theirs from one pass.
    cand, more, fit = _lloyd(
        per_start(found.pts, copies=False),
        starts if sel is None else starts[sel],
        per_start(found.thresh),
        neighbour_iter,
        xp,
        per_start(found.w, copies=False),
        sq_norms=per_start(sq, copies=False),
        want_inertia=True,
    )
    if sel is not None:
        # The starts not run never win: inertia inf.
        ran = (cand, more, fit)
        cand = xp.zeros(starts.shape, dtype=cand.dtype)
        more = xp.zeros(m * b, dtype=more.dtype)
        fit = xp.full(m * b, xp.inf, dtype=fit.dtype)
        cand[sel], more[sel], fit[sel] = ran
    _, min_d = _assign(found.pts, found.centres, xp, sq, check_ties=False)
    own = xp.sum(min_d if found.w is None else min_d * found.w, axis=1, dtype=xp.float64)
    cand = xp.concatenate([found.centres, cand], axis=0)  # ((m + 1) b, k, 3): own first
    pick = _best_of(xp.concatenate([own, fit]), m + 1, xp)  # own centres on ties
    more = xp.concatenate([xp.zeros(b, dtype=more.dtype), more])
    return cand[pick], found.n_iter + more[pick], pick >= b


def _cat(arrays: list[Array], xp: Any) -> Array:
    return arrays[0] if len(arrays) == 1 else xp.concatenate(arrays, axis=0)


def _pixel_start(
    xc: Array, centres: Array, first: int, xp: Any, out: tuple[Array, Array, Array] | None = None
) -> tuple[Array, Array, Array]:
    """Where :func:`_pixel_lloyd` starts, for one block of pixels ``xc`` (b, 3, P) (centred
    on each frame's mean) and ``centres`` (b, k, 3) (centred likewise), whose first frame
    is frame ``first`` of the batch: every pixel's slack (distance to its second-nearest centre
    minus distance to its nearest, (b, P) float32), its nearest centre's number in the
    batch (``frame * k + cluster``, (b, P) int32), and each cluster's sums of coordinates
    and its pixel count, (b, k, 4) float64; written into ``out`` when given."""
    b, _, n = xc.shape
    k = centres.shape[1]
    if out is None:
        out = (
            xp.empty((b, n), dtype=xp.float32),
            xp.empty((b, n), dtype=xp.int32),
            xp.empty((b, k, 4), dtype=xp.float64),
        )
    slack, label, sums = out
    xt = xp.concatenate([xc, xp.ones_like(xc[:, :1, :])], axis=1)  # (b, 4, P)
    d = _product_distances(xt, centres, xp)  # (b, k, P): |c|^2 - 2 x.c
    d1 = d[:, 0].copy()
    d2 = xp.full_like(d1, xp.inf)
    for j in range(1, k):
        xp.minimum(d2, xp.maximum(d1, d[:, j]), out=d2)
        xp.minimum(d1, d[:, j], out=d1)
    onehot = (d == d1[:, None, :]).astype(xp.float32)
    sq = xp.sum(xc * xc, axis=1)  # (b, P)
    # One product gives each cluster's sums and count, another each pixel's cluster.
    s32 = _cluster_sums(xt, onehot, xp)  # (b, k, 4)
    if k > 1 and bool(xp.any(xp.sum(s32[:, :, 3], axis=1) > n + 0.5)):
        # Pixels equally near two centres: keep only the first, as argmin would.
        onehot, _ = _assign(xc, centres, xp, sq)
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


def _best_of(fit: Array, n: int, xp: Any) -> Array:
    """For ``n`` stacked runs of a batch of problems (run r of problem f at r * b + f, as
    :func:`_rep` lays them out), the index of each problem's run of lowest ``fit`` (the
    first on ties), (b,)."""
    b = fit.shape[0] // n
    return xp.argmin(fit.reshape(n, b), axis=0) * b + xp.arange(b)


def _rep(a: Array | None, n: int, xp: Any) -> Array | None:
    """``n`` copies of ``a`` along the first axis (restart r of problem f is r * len + f)."""
    return a if n == 1 or a is None else xp.concatenate([a] * n, axis=0)


def _neighbour_index(n_frames: int, reach: int) -> np.ndarray:
    """(2 reach, F) indices of each frame's neighbours at offsets -reach..reach but 0,
    reflected at the batch's ends (frame 0's neighbour -1 is frame 1), then clipped."""
    f = np.arange(n_frames)
    rows = []
    for o in [o for r in range(1, reach + 1) for o in (-r, r)]:
        j = f + o
        j = np.where((j < 0) | (j >= n_frames), f - o, j)
        rows.append(np.clip(j, 0, n_frames - 1))
    return np.stack(rows) if rows else np.empty((0, n_frames), dtype=np.int64)


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


def _sq_distances(xt: Array, centres: Array) -> Array:
    """Squared distances, (B, 3, N) points x (B, m, 3) centres -> (B, m, N) float32."""
    d = xt[:, 0, None, :] - centres[:, :, 0, None]
    d *= d
    for c in (1, 2):
        t = xt[:, c, None, :] - centres[:, :, c, None]
        t *= t
        d += t
    return d


def _assign(
    xt: Array, centres: Array, xp: Any, sq_norms: Array | None = None, check_ties: bool = True
) -> tuple[Array, Array]:
    """Nearest centre of every point of ``xt`` (B, 3, N), of ``centres`` (B, k, 3).

    Returns ``onehot`` (B, k, N) float32, 1 where the centre is the point's nearest (the
    first one on ties, like ``argmin``), and ``min_d`` (B, N) float32, each point's
    squared distance to it. Without ``sq_norms`` the distances are computed channel by
    channel (exact); with the points' squared norms ``sq_norms`` (B, N) they come from
    one matrix product, ``|x|^2 - 2 x.c + |c|^2`` (faster, with rounding errors of about
    1e-7 of ``|x|^2``: for coresets, whose inertias only rank candidates, and pixels
    centred on their mean). ``xt`` may carry a fourth row of ones (B, 4, N): the product
    then gives ``|c|^2 - 2 x.c`` in one go, with no pass to add ``|c|^2``. With
    ``sq_norms``, ``check_ties=False`` skips the search for points equally near two
    centres (the caller checks the counts instead).
    """
    k = centres.shape[1]
    if sq_norms is None:
        min_d = _sq_distances(xt, centres[:, :1, :])[:, 0, :]
        label = xp.zeros(min_d.shape, dtype=xp.int8)
        for j in range(1, k):
            d = _sq_distances(xt, centres[:, j : j + 1, :])[:, 0, :]
            closer = d < min_d
            min_d = xp.minimum(min_d, d)
            label = xp.where(closer, xp.int8(j), label)
        onehot = (label[:, None, :] == xp.arange(k, dtype=xp.int8)[None, :, None]).astype(
            xp.float32
        )
        return onehot, min_d
    if xt.shape[1] == 4:
        d = _product_distances(xt, centres, xp)  # (B, k, N)
    else:
        d = xp.matmul(centres, xt)  # (B, k, N)
        d *= -2.0
        d += xp.sum(centres * centres, axis=2)[:, :, None]
    part = xp.min(d, axis=1)  # (B, N)
    eq = d == part[:, None, :]
    if k > 1 and check_ties and bool(xp.any(xp.sum(eq, axis=1) > 1)):
        # Points equally near two centres (duplicate centres, in degenerate frames):
        # keep only the first, as argmin would.
        seen = eq[:, 0].copy()
        for j in range(1, k):
            eq[:, j] &= ~seen
            seen |= eq[:, j]
    min_d = xp.maximum(_shared(xp.add, part, sq_norms), 0.0)
    return eq.astype(xp.float32), min_d


def _cluster_sums(pw: Array, onehot: Array, xp: Any) -> Array:
    """Each cluster's sums of the rows of ``pw`` (B, 4, N) (weighted coordinates and the
    weight) over its points, from the one-hot assignment ``onehot`` (B, k, N): (B, k, 4).
    One product, in the orientation NumPy computes fastest ((B, 4, N) @ (B, N, k)). ``pw``
    may hold the points of b problems only, shared by B / b groups (see :func:`_lloyd`)."""
    big, k, n = onehot.shape
    groups = _groups(pw, big)
    onehot_t = xp.transpose(onehot.reshape(groups, -1, k, n), (0, 1, 3, 2))
    sums = xp.matmul(pw, onehot_t)  # (groups, b, 4, k)
    return xp.transpose(sums, (0, 1, 3, 2)).reshape(big, k, 4)


def _product_distances(xt: Array, centres: Array, xp: Any) -> Array:
    """``|c|^2 - 2 x.c`` (B, k, N) from one matrix product, for points ``xt`` (B, 4, N)
    whose fourth row is ones and ``centres`` (B, k, 3); ``xt`` may hold the points of b
    problems only, shared by B / b groups of problems (see :func:`_lloyd`)."""
    big, k, _ = centres.shape
    aug = xp.concatenate([-2.0 * centres, xp.sum(centres * centres, axis=2)[:, :, None]], 2)
    d = xp.matmul(aug.reshape(_groups(xt, big), -1, k, 4), xt)  # (groups, b, k, N)
    return d.reshape(big, k, xt.shape[2])


def _groups(shared: Array, big: int) -> int:
    """How many groups of problems share the rows of ``shared`` (b, ...) in a batch of ``big``
    problems laid out as :func:`_rep` lays them out (problem r * b + f uses row f)."""
    b = shared.shape[0]
    if big % b:
        raise ValueError(f"{big} problems cannot share {b} point sets")
    return big // b


def _shared(op: Any, a: Array, shared: Array) -> Array:
    """``op(a, shared)`` for ``a`` (B, N) and ``shared`` (b, N) (``op`` a ufunc such as
    ``xp.add``), row f of ``shared`` going to problems r * b + f."""
    return op(a.reshape(_groups(shared, a.shape[0]), *shared.shape), shared).reshape(a.shape)


def _lloyd(
    xt: Array,
    centres: Array,
    thresh: Array,
    max_iter: int,
    xp: Any,
    w: Array | None = None,
    sq_norms: Array | None = None,
    want_inertia: bool = False,
) -> tuple[Array, Array, Array | None]:
    """Lloyd iterations of ``centres`` (B, k, 3) on points ``xt`` (b, 3, N) of weights ``w``
    (b, N) (or all 1): one point set per problem (b = B), or point set f shared by problems
    f, b + f, 2 b + f, ... (B = m b, the layout of :func:`_rep`, without its copies).

    A problem stops moving once the squared shift of its centres is at most ``thresh``
    (B,); the loop ends when all have stopped or after ``max_iter`` iterations. Only
    the problems still moving are computed (the batch is compacted as they stop). An
    empty cluster is moved to the point farthest from its centre, one per problem and
    iteration, like scikit-learn does; when every point sits on a centre (fewer
    distinct colours than k) it keeps its centre. Distances come from one matrix product
    (see :func:`_assign`) for weighted points (coresets; the caller may give their squared
    norms ``sq_norms`` (b, N), computed once) and for unweighted points whose squared
    norms are given; other unweighted points (pixels) get the exact, channel-by-channel
    distances. Returns the centres, the iterations done, (B,) int32, and, with
    ``want_inertia``, the weighted inertia at the last assignment, (B,) float64 (of the
    centres before the last update; ``inf`` when ``max_iter`` is 0), else None.
    """
    b, k, _ = centres.shape
    if w is None and sq_norms is None:
        xt = _rep(xt, _groups(xt, b), xp)  # exact distances: each problem's own points
    sets = xt.shape[0]  # point sets: problem r * sets + f clusters set f
    inertia = xp.full(b, xp.inf, dtype=xp.float64)
    n_iter = xp.zeros(b, dtype=xp.int32)
    cluster = xp.arange(k)[None, :]
    # Per point: its coordinates times its weight, and its weight, channel-first (B, 4, N),
    # for the cluster sums (see _cluster_sums).
    ones = xp.ones(xt.shape[::2], dtype=xp.float32) if w is None else w
    pw = xp.concatenate([xt * ones[:, None, :], ones[:, None, :]], axis=1)
    if sq_norms is None and w is not None:
        sq_norms = xp.sum(xt * xt, axis=1)
    if sq_norms is not None:
        # A fourth row of ones: the distances come from one product (see _assign).
        xt = xp.concatenate([xt, xp.ones_like(xt[:, :1, :])], axis=1)
    # (B,): above it, a point counted twice
    total = _rep(xp.sum(ones, axis=1) * 1.000001 + 0.5, b // sets, xp)
    centres = centres.astype(xp.float32)
    idx = None  # problems of the working set (None: all)
    cur_x, cur_pw, cur_sq, cur_c, cur_t, cur_total = xt, pw, sq_norms, centres, thresh, total
    active = xp.ones(b, dtype=bool)
    for _ in range(max_iter):
        onehot, min_d = _assign(cur_x, cur_c, xp, cur_sq, check_ties=False)
        sums = _cluster_sums(cur_pw, onehot, xp)
        counts = sums[:, :, 3]  # (B', k)
        if cur_sq is not None and k > 1 and bool(xp.any(xp.sum(counts, axis=1) > cur_total)):
            # A point counted twice (equally near two centres): redo with ties broken.
            onehot, min_d = _assign(cur_x, cur_c, xp, cur_sq)
            sums = _cluster_sums(cur_pw, onehot, xp)
            counts = sums[:, :, 3]
        if want_inertia:
            wd = min_d if w is None else _shared(xp.multiply, min_d, cur_pw[:, 3])
            cur_inertia = xp.sum(wd, axis=1, dtype=xp.float64)
            if idx is None:
                inertia = cur_inertia
            else:
                inertia[idx] = cur_inertia
        new = xp.where(
            counts[:, :, None] > 0, sums[:, :, :3] / xp.maximum(counts, 1e-30)[:, :, None], cur_c
        )
        empty = counts == 0
        if bool(xp.any(empty)):
            far = xp.argmax(min_d, axis=1)  # (B',)
            far_d = xp.take_along_axis(min_d, far[:, None], axis=1)[:, 0]
            relocate = (cluster == xp.argmax(empty, axis=1)[:, None]) & (
                xp.any(empty, axis=1) & (far_d > 0)
            )[:, None]
            own = _rep(cur_x[:, :3], _groups(cur_x, cur_c.shape[0]), xp)  # each problem's
            new = xp.where(relocate[:, :, None], _gather(own, far[:, None], xp), new)
        new = xp.where(active[:, None, None], new, cur_c).astype(xp.float32)
        shift = xp.sum((new - cur_c) ** 2, axis=(1, 2))
        if idx is None:
            n_iter += active.astype(xp.int32)
        else:
            n_iter[idx] += active.astype(xp.int32)
        cur_c = new
        active &= shift > cur_t
        n_active = int(xp.sum(active))
        if n_active == 0:
            break
        if n_active <= active.shape[0] // 2:
            # Compact the working set to the problems still moving.
            keep = xp.nonzero(active)[0]
            if idx is None:
                centres = cur_c
            else:
                centres[idx] = cur_c
            idx = keep if idx is None else idx[keep]
            rows = idx % sets  # each problem's point set, now one per problem
            cur_x, cur_pw, cur_c, cur_t = xt[rows], pw[rows], centres[idx], thresh[idx]
            cur_total = total[idx]
            cur_sq = None if sq_norms is None else sq_norms[rows]
            active = xp.ones(idx.shape[0], dtype=bool)
    if idx is None:
        centres = cur_c
    else:
        centres[idx] = cur_c
    return centres, n_iter, inertia if want_inertia else None


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
) -> tuple[Array, Array, Array, Array]:
    """Lloyd iterations on the pixels ``x`` (F, P, 3) of a batch, from the assignment of
    :func:`_pixel_start` (``slack``, ``label``, ``sums``) to ``centres`` (F, k, 3), then
    the final assignment of every pixel. The centres and the sums are centred on each
    frame's mean ``mu`` (F, 1, 3), as :func:`_pixel_start` made them. Bounds skip the
    pixels that cannot have changed cluster (Hamerly's algorithm, with one bound per pixel).

    A pixel's slack is its distance to its second-nearest centre minus its distance to its
    nearest one, when last computed. When a frame's centres move, the slack of each of its
    pixels shrinks by at most its own centre's shift plus the largest shift of the others,
    so by at most ``m``, the sum of the two largest shifts; only the pixels whose slack is
    below the frame's total of ``m`` since then are computed again (1-2% of them per
    iteration, on film frames), and the cluster sums are updated with the pixels that
    changed cluster. So each iteration gives what a plain Lloyd iteration gives, for the
    cost of a pass over the slacks. A frame has converged once its centres moved by at
    most ``thresh``, as in :func:`_lloyd`, but converged frames leave the working set only
    when at least half of it has converged: until then they go on iterating. An empty
    cluster keeps its centre. ``slack``, ``label`` and ``sums`` are updated in place.

    Returns the centres (F, k, 3) float32, the iterations done (F,) int32, each cluster's
    share of its frame's pixels (F, k) float32 and each frame's inertia (F,) float64.
    """
    n_frames, n = slack.shape
    k = centres.shape[1]
    # The candidates' pixels are gathered as rows of the pixel-major input (one cache line
    # per pixel, not one per channel); their distances are to the centres moved back by
    # the frame's mean.
    rows_x = x.reshape(-1, 3)
    mu64 = mu.reshape(-1, 1, 3).astype(xp.float64)
    flat_sums = sums.reshape(-1, 4)
    c = centres.astype(xp.float64)
    n_iter = xp.zeros(n_frames, dtype=xp.int32)
    drift = xp.zeros(n_frames, dtype=xp.float32)  # each frame's m, summed

    def reassign(frames: Array, slack: Array, label: Array) -> None:
        """Compute again the pixels of ``frames`` whose slack is below their drift."""
        cand = xp.nonzero((slack < drift[frames][:, None]).reshape(-1))[0]
        if cand.shape[0] == 0:
            return
        f = frames[cand // n]
        pts = xp.ascontiguousarray(xp.take(rows_x, f * n + cand % n, axis=0).T)  # (3, M)
        # The candidates' centres, (k, 3, M), not centred (as the pixels): the candidates
        # come frame by frame, so each frame's centres (as columns) are repeated once per
        # candidate of the frame.
        ct = xp.transpose(c[frames] + mu64[frames], (1, 2, 0)).astype(xp.float32)  # (k, 3, F')
        cf = xp.repeat(ct, xp.bincount(cand // n, minlength=frames.shape[0]), axis=2)
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
        for ch, v in enumerate([*centred, None]):
            v = xp.ones(moved.shape, dtype=xp.float64) if v is None else v
            flat_sums[:, ch] += xp.bincount(to, weights=v, minlength=flat_sums.shape[0])
            flat_sums[:, ch] -= xp.bincount(was, weights=v, minlength=flat_sums.shape[0])

    everyone = xp.arange(n_frames)
    frames, cur_slack, cur_label = everyone, slack, label  # the frames still moving
    for _ in range(max_iter):
        counts = sums[frames, :, 3:]
        old = c[frames]
        new = xp.where(counts > 0, sums[frames, :, :3] / xp.maximum(counts, 1), old)
        delta2 = xp.sum((new - old) ** 2, axis=2)  # (F', k)
        c[frames] = new
        n_iter[frames] += 1
        # A pixel's slack shrinks by at most its own centre's shift plus the largest shift
        # of the others: at most the two largest shifts together.
        top = xp.sqrt(xp.sort(delta2, axis=1)[:, -2:]) if k > 1 else 2.0 * xp.sqrt(delta2)
        drift[frames] += xp.sum(top, axis=1).astype(xp.float32)
        moving = xp.sum(delta2, axis=1) > thresh[frames]
        n_moving = int(xp.sum(moving))
        if n_moving == 0:
            break
        if n_moving <= frames.shape[0] // 2:
            # Compact the working set to the frames still moving.
            if frames is not everyone:
                slack[frames], label[frames] = cur_slack, cur_label
            frames = frames[xp.nonzero(moving)[0]]
            cur_slack, cur_label = slack[frames], label[frames]
        reassign(frames, cur_slack, cur_label)
    if frames is not everyone:
        slack[frames], label[frames] = cur_slack, cur_label
    # The final assignment, to the last centres.
    reassign(everyone, slack, label)
    centres = c.astype(xp.float32)
    shares = (sums[:, :, 3] / n).astype(xp.float32)
    # Each pixel's squared distance to its centre, exactly, block by block of frames.
    table = (centres + mu).reshape(-1, 3)  # (F k, 3): the centres, not centred
    inertia = xp.empty(n_frames, dtype=xp.float64)
    step = max(1, _NUMPY_BLOCK_ELEMENTS // n) if xp is np else n_frames
    for s in range(0, n_frames, step):
        e = min(s + step, n_frames)
        d = xp.take(table, label[s:e].reshape(-1), axis=0)  # ((e - s) P, 3)
        d -= rows_x[s * n : e * n]
        d *= d
        inertia[s:e] = xp.sum(d.reshape(e - s, -1), axis=1, dtype=xp.float64)
    return centres, n_iter, shares, inertia


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


def _gather(xt: Array, idx: Array, xp: Any) -> Array:
    """Points ``idx`` (B, m) int of ``xt`` (B, 3, N) -> (B, m, 3) float32 (one gather by flat
    index, faster than ``take_along_axis`` over a broadcast index)."""
    b, c, n = xt.shape
    at = xp.arange(b)[:, None, None] * (c * n) + xp.arange(c)[None, :, None] * n
    return xp.transpose(xp.ascontiguousarray(xt).reshape(-1)[at + idx[:, None, :]], (0, 2, 1))
