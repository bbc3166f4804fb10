"""Lloyd iterations on many problems at once, on weighted coresets or on points.

The problems may be stacked runs sharing their frame's points (see :mod:`._layout`).
Only the problems still moving are computed: once half or fewer of the working set still
move, it is compacted to them, each with its own copy of its points.
"""

from __future__ import annotations

from typing import Any

from moviebarcode._xp import Array
from moviebarcode.kmeans._common import _assign, _cluster_sums, _gather
from moviebarcode.kmeans._layout import _groups, _rep, _shared


def _lloyd(
    xt: Array,
    centres: Array,
    thresh: Array,
    max_iter: int,
    xp: Any,
    w: Array | None = None,
    sq_norms: Array | None = None,
    want_inertia: bool = False,
    relax: float = 1.0,
) -> tuple[Array, Array, Array | None]:
    """Lloyd iterations of ``centres`` (B, k, 3) on points ``xt`` (b, 3, N) float32 of
    weights ``w`` (b, N) float32 (or all 1); problem ``r * b + f`` uses points ``f``
    (b = B: one point set per problem).

    A problem stops moving once the squared shift of its centres is at most ``thresh``
    (B,); the loop ends when all have stopped or after ``max_iter`` iterations. An empty
    cluster is moved to the point farthest from its centre, one per problem and
    iteration, like scikit-learn does; when every point sits on a centre (fewer distinct
    colours than k) it keeps its centre. Distances come from one matrix product (see
    :func:`_assign`) for weighted points (coresets; the caller may give their squared
    norms ``sq_norms`` (b, N), computed once) and for unweighted points whose squared
    norms are given; other unweighted points (pixels) get the exact distances.

    Returns
    -------
    centres : (B, k, 3) float32
    n_iter : (B,) int32, the iterations done
    inertia : (B,) float64 or None
        With ``want_inertia``, the weighted inertia at the problem's last assignment while
        it was moving (of its centres before their last update; ``inf`` when ``max_iter``
        is 0), else None. It depends on the problem alone, never on the others computed
        with it (the blocking of the batch).
    """
    b = centres.shape[0]
    xt, pw, sq_norms, total = _lloyd_points(xt, b, w, sq_norms, xp)
    inertia = xp.full(b, xp.inf, dtype=xp.float64)
    n_iter = xp.zeros(b, dtype=xp.int32)
    work = _WorkingSet(xt, pw, sq_norms, centres.astype(xp.float32), thresh, total)
    active = xp.ones(b, dtype=bool)
    for _ in range(max_iter):
        min_d, sums = _lloyd_assign(work, xp)
        if want_inertia:
            # Only the problems still moving: a problem's inertia is that of its last
            # assignment while it moved, whatever the other problems of its block do.
            wd = min_d if w is None else _shared(xp.multiply, min_d, work.pw[:, 3])
            now = xp.sum(wd, axis=1, dtype=xp.float64)
            before = inertia if work.idx is None else inertia[work.idx]
            inertia = work.put(inertia, xp.where(active, now, before))
        new = _lloyd_update(work.x, work.c, sums, min_d, xp, relax)
        new = xp.where(active[:, None, None], new, work.c).astype(xp.float32)
        shift = xp.sum((new - work.c) ** 2, axis=(1, 2))
        if work.idx is None:
            n_iter += active.astype(xp.int32)
        else:
            n_iter[work.idx] += active.astype(xp.int32)
        work.c = new
        active &= shift > work.t
        n_active = int(xp.sum(active))
        if n_active == 0:
            break
        if n_active <= active.shape[0] // 2:
            work.compact(active, xp)
            active = xp.ones(work.idx.shape[0], dtype=bool)
    return work.put(work.centres, work.c), n_iter, inertia if want_inertia else None


def _lloyd_points(
    xt: Array, b: int, w: Array | None, sq_norms: Array | None, xp: Any
) -> tuple[Array, Array, Array | None, Array]:
    """The points of :func:`_lloyd`'s ``b`` problems as its loop uses them.

    Returns the points (one copy per problem for exact distances; with a fourth row of
    ones when distances come from products, see :func:`_assign`), their weighted
    coordinates and weights channel-first (b', 4, N) for :func:`_cluster_sums`, their
    squared norms (b', N) or None (exact distances), and each problem's total weight,
    (b,): above it, a point was counted twice.
    """
    if w is None and sq_norms is None:
        xt = _rep(xt, _groups(xt, b), xp)  # exact distances: each problem's own points
    sets = xt.shape[0]
    ones = xp.ones(xt.shape[::2], dtype=xp.float32) if w is None else w
    pw = xp.concatenate([xt * ones[:, None, :], ones[:, None, :]], axis=1)
    if sq_norms is None and w is not None:
        sq_norms = xp.sum(xt * xt, axis=1)
    if sq_norms is not None:
        xt = xp.concatenate([xt, xp.ones_like(xt[:, :1, :])], axis=1)
    total = _rep(xp.sum(ones, axis=1) * 1.000001 + 0.5, b // sets, xp)
    return xt, pw, sq_norms, total


class _WorkingSet:
    """The problems of a :func:`_lloyd` loop still moving, and their rows of its arrays.

    At first every problem (``idx`` None), the points shared as :mod:`._layout` lays them
    out; after :meth:`compact`, the problems ``idx``, each with its own copy of its
    points (row ``idx % sets``). ``centres`` (B, k, 3) holds every problem's centres, up
    to date for the problems outside the working set; ``c`` those of the working set.
    """

    def __init__(
        self, xt: Array, pw: Array, sq: Array | None, centres: Array, thresh: Array, total: Array
    ) -> None:
        self.full = (xt, pw, sq, thresh, total)
        self.centres = centres
        self.idx: Array | None = None
        self.x, self.pw, self.sq, self.c, self.t, self.total = xt, pw, sq, centres, thresh, total

    def put(self, full: Array, rows: Array) -> Array:
        """``rows`` (of the working set) written into ``full`` (of every problem); ``rows``
        itself while the working set is every problem."""
        if self.idx is None:
            return rows
        full[self.idx] = rows
        return full

    def compact(self, active: Array, xp: Any) -> None:
        """Keep only the problems ``active`` (B',) bool of the working set."""
        keep = xp.nonzero(active)[0]
        self.centres = self.put(self.centres, self.c)
        self.idx = keep if self.idx is None else self.idx[keep]
        xt, pw, sq, thresh, total = self.full
        rows = self.idx % xt.shape[0]  # each problem's point set, now one per problem
        self.x, self.pw, self.c, self.t = (
            xt[rows],
            pw[rows],
            self.centres[self.idx],
            thresh[self.idx],
        )
        self.total = total[self.idx]
        self.sq = None if sq is None else sq[rows]


def _lloyd_assign(work: _WorkingSet, xp: Any) -> tuple[Array, Array]:
    """Assign the working set's points: each point's squared distance to its nearest
    centre (B', N) float32 and each cluster's sums (B', k, 4) (see :func:`_cluster_sums`)."""
    k = work.c.shape[1]
    onehot, min_d = _assign(work.x, work.c, xp, work.sq, check_ties=False)
    sums = _cluster_sums(work.pw, onehot, xp)
    counts = sums[:, :, 3]  # (B', k)
    if work.sq is not None and k > 1 and bool(xp.any(xp.sum(counts, axis=1) > work.total)):
        # A point counted twice (equally near two centres): redo with ties broken.
        onehot, min_d = _assign(work.x, work.c, xp, work.sq)
        sums = _cluster_sums(work.pw, onehot, xp)
    return min_d, sums


def _lloyd_update(
    x: Array, c: Array, sums: Array, min_d: Array, xp: Any, relax: float = 1.0
) -> Array:
    """The new centres (B', k, 3): each cluster's mean (``sums`` (B', k, 4)), or ``relax``
    times the way there from its centre (over-relaxation), an empty one moved to the point
    farthest from its centre (``min_d`` (B', N)) of the points ``x`` (b', 3 or 4, N), or
    kept when that point sits on its centre; ``c`` (B', k, 3) the current centres."""
    counts = sums[:, :, 3]
    mean = sums[:, :, :3] / xp.maximum(counts, 1e-30)[:, :, None]
    if relax != 1.0:
        mean = c + relax * (mean - c)
    new = xp.where(counts[:, :, None] > 0, mean, c)
    empty = counts == 0
    if bool(xp.any(empty)):
        cluster = xp.arange(c.shape[1])[None, :]
        far = xp.argmax(min_d, axis=1)  # (B',)
        far_d = xp.take_along_axis(min_d, far[:, None], axis=1)[:, 0]
        relocate = (cluster == xp.argmax(empty, axis=1)[:, None]) & (
            xp.any(empty, axis=1) & (far_d > 0)
        )[:, None]
        own = _rep(x[:, :3], _groups(x, c.shape[0]), xp)  # each problem's
        new = xp.where(relocate[:, :, None], _gather(own, far[:, None], xp), new)
    return new
