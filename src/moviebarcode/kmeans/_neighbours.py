"""Neighbour starts: each frame tries the centres found for the frames near it.

Step 5 of :mod:`moviebarcode.kmeans`, once every frame of the batch has its step-4
centres. Films are mostly continuous shots, so a neighbour's solution is often a better
local optimum than any of the frame's own restarts. Each round starts from the last
round's winners, so a good solution spreads along the shot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from moviebarcode._xp import Array
from moviebarcode.kmeans._common import _assign
from moviebarcode.kmeans._layout import _best_of, _cat, _rep
from moviebarcode.kmeans._lloyd import _lloyd
from moviebarcode.kmeans._search import _Search
from moviebarcode.kmeans.config import _Plan


def neighbour_rounds(
    found: list[_Search],
    blocks: list[slice],
    plan: _Plan,
    run: Callable[[Callable[[int], Any], range], list],
    xp: Any,
    segments: list[int] | None = None,
) -> None:
    """Step 5: ``plan.neighbour_rounds`` rounds of neighbour starts over the whole batch,
    ``found`` holding what each block of frames ``blocks`` found so far (its ``centres``
    and ``n_iter`` are replaced by each round's winners). ``run(fn, range(len(blocks)))``
    calls ``fn`` on each block. ``segments``: the lengths of independent batches stacked
    in this one (default: one); a frame's neighbours stay in its own segment."""
    index = neighbour_index(segments or [blocks[-1].stop], int(plan.neighbours))
    if index is None:
        return
    near, valid = (xp.asarray(a) for a in index)  # (m, F) each

    def one_block(i: int, first: Array, moved: Array | None) -> tuple[Array, Array, Array]:
        sources = near[:, blocks[i]]  # (m, b)
        runs = valid[:, blocks[i]] if moved is None else moved[sources] & valid[:, blocks[i]]
        return _neighbour_block(
            found[i],
            first[sources],  # (m, b, k, 3)
            None if segments is None and moved is None else runs,
            neighbour_iter=plan.neighbour_iter,
            xp=xp,
            relax=plan.coreset_relax,
        )

    moved = None  # (F,) the frames whose centres the last round changed; None: all
    for _ in range(plan.neighbour_rounds):
        # Every block starts from the previous round's winners of the whole batch.
        first = xp.concatenate([f.centres for f in found], axis=0)  # (F, k, 3)
        won = run(functools.partial(one_block, first=first, moved=moved), range(len(blocks)))
        for f, (centres, n_iter, _) in zip(found, won, strict=True):
            f.centres, f.n_iter = centres, n_iter
        moved = _cat([changed for _, _, changed in won], xp)


def _neighbour_block(
    found: _Search,
    others: Array,
    moved: Array | None,
    *,
    neighbour_iter: int,
    xp: Any,
    relax: float = 1.0,
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
        relax=relax,
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


def neighbour_index(lengths: list[int], neighbours: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each frame's neighbour starts in a batch of independent segments of ``lengths``
    frames: (2 reach, F) frame indices and (2 reach, F) bool, whether that start runs
    (reach: the longest segment's, at most ``neighbours``; a shorter segment's missing
    offsets do not run). None where no frame has a neighbour."""
    reach = min(neighbours, max(lengths) - 1)
    if reach <= 0:
        return None
    near, valid, start = [], [], 0
    for n in lengths:
        own = min(neighbours, n - 1)
        idx = np.tile(np.arange(n), (2 * reach, 1))  # missing offsets: the frame itself
        if own > 0:
            idx[: 2 * own] = _neighbour_index(n, own)
        ok = np.zeros((2 * reach, n), dtype=bool)
        ok[: 2 * own] = True
        near.append(idx + start)
        valid.append(ok)
        start += n
    return np.concatenate(near, axis=1), np.concatenate(valid, axis=1)


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
