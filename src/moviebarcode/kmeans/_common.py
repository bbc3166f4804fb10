"""Distances, assignments and cluster sums: the arithmetic every phase shares.

Points are channel-first, ``(B, 3, N)`` float32 (each channel of each problem one
contiguous row); centres are ``(B, k, 3)`` float32. Points may be shared by stacked
problems (see :mod:`._layout`).
"""

from __future__ import annotations

from typing import Any

from moviebarcode._xp import Array
from moviebarcode.kmeans._layout import _groups, _shared


def _sq_distances(xt: Array, centres: Array) -> Array:
    """Squared distances, channel by channel (exact): points ``xt`` (B, 3, N) x ``centres``
    (B, m, 3) -> (B, m, N) float32."""
    d = xt[:, 0, None, :] - centres[:, :, 0, None]
    d *= d
    for c in (1, 2):
        t = xt[:, c, None, :] - centres[:, :, c, None]
        t *= t
        d += t
    return d


def _product_distances(xt: Array, centres: Array, xp: Any) -> Array:
    """``|c|^2 - 2 x.c`` (B, k, N) float32 from one matrix product, for points ``xt``
    (b, 4, N) whose fourth row is ones and ``centres`` (B, k, 3); problem ``r * b + f``
    uses points ``f`` (b = B: one point set per problem)."""
    big, k, _ = centres.shape
    aug = xp.concatenate([-2.0 * centres, xp.sum(centres * centres, axis=2)[:, :, None]], 2)
    d = xp.matmul(aug.reshape(_groups(xt, big), -1, k, 4), xt)  # (groups, b, k, N)
    return d.reshape(big, k, xt.shape[2])


def _assign(
    xt: Array, centres: Array, xp: Any, sq_norms: Array | None = None, check_ties: bool = True
) -> tuple[Array, Array]:
    """Nearest centre of every point of ``xt`` (B, 3, N), of ``centres`` (B, k, 3).

    Returns ``onehot`` (B, k, N) float32, 1 where the centre is the point's nearest (the
    first one on ties, like ``argmin``), and ``min_d`` (B, N) float32, each point's
    squared distance to it. Without ``sq_norms`` the distances are computed channel by
    channel (exact); with the points' squared norms ``sq_norms`` (B, N) they come from
    one matrix product, ``|x|^2 - 2 x.c + |c|^2``: faster, with rounding errors of the
    order of float32's precision times ``|x|^2`` (for coresets, whose inertias only rank
    candidates, and pixels centred on their mean). ``xt`` may carry a fourth row of ones
    (B, 4, N): the product then gives ``|c|^2 - 2 x.c`` in one go, with no pass to add
    ``|c|^2``, and may be shared by stacked problems. With ``sq_norms``,
    ``check_ties=False`` skips the search for points equally near two centres (the
    caller checks the counts instead).
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
    if check_ties:
        _first_of_ties(eq, xp)
    min_d = xp.maximum(_shared(xp.add, part, sq_norms), 0.0)
    return eq.astype(xp.float32), min_d


def _first_of_ties(eq: Array, xp: Any) -> None:
    """Keep, in place, only the first nearest centre of each point of ``eq`` (B, k, N) bool
    (True where a centre is the point's nearest), as argmin would: points equally near two
    centres come with duplicate centres, in degenerate frames. Points without ties, and so
    every other problem of the batch, keep what they had."""
    k = eq.shape[1]
    if k > 1 and bool(xp.any(xp.sum(eq, axis=1) > 1)):
        seen = eq[:, 0].copy()
        for j in range(1, k):
            eq[:, j] &= ~seen
            seen |= eq[:, j]


def _cluster_sums(pw: Array, onehot: Array, xp: Any) -> Array:
    """Each cluster's sums of the rows of ``pw`` (b, 4, N) (weighted coordinates and the
    weight) over its points, from the one-hot assignment ``onehot`` (B, k, N): (B, k, 4)
    float32. One product, in the orientation NumPy computes fastest ((b, k, N) @ (b, N,
    4), the points' rows transposed; the README's benchmark section has the figures);
    problem ``r * b + f`` uses the points ``f`` (b = B: one point set per problem)."""
    big, k, n = onehot.shape
    groups = _groups(pw, big)
    sums = xp.matmul(onehot.reshape(groups, -1, k, n), xp.transpose(pw, (0, 2, 1)))
    return sums.reshape(big, k, 4)


def _gather(xt: Array, idx: Array, xp: Any) -> Array:
    """Points ``idx`` (B, m) int of ``xt`` (B, 3, N) -> (B, m, 3) float32 (one gather by flat
    index, faster than ``take_along_axis`` over a broadcast index)."""
    b, c, n = xt.shape
    at = xp.arange(b)[:, None, None] * (c * n) + xp.arange(c)[None, :, None] * n
    return xp.transpose(xp.ascontiguousarray(xt).reshape(-1)[at + idx[:, None, :]], (0, 2, 1))
