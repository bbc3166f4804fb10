"""How the many k-means problems of a batch are laid out in arrays.

A batch of ``b`` frames is ``b`` independent k-means problems, solved together: every
array has the problem as its first axis. Several runs per frame (the ``n_init``
restarts, the ``carry`` restarts taken on, the neighbour starts) are *stacked*: run ``r``
of frame ``f`` is problem ``r * b + f`` of a batch of ``B = m * b`` problems, so the
runs of one frame are ``b`` apart and each block of ``b`` problems is one run of every
frame, in frame order.

The runs of a frame share its points: arrays of points keep one row per frame, ``(b,
...)``, and the ``B`` problems use them as ``B / b`` groups (:func:`_groups`); an
operation between per-problem ``(B, ...)`` and per-frame ``(b, ...)`` arrays reshapes
the first to ``(B / b, b, ...)`` and broadcasts (:func:`_shared`). :func:`_rep` makes
the copies when a per-frame array is needed per problem, and :func:`_best_of` picks
each frame's best run.

Frames are also cut into *blocks* of consecutive frames, clustered one block at a time
(on NumPy, on threads) so that temporaries stay small; blocking never changes a result.
"""

from __future__ import annotations

from typing import Any

from moviebarcode._xp import Array

NUMPY_BLOCK_ELEMENTS = 8 * 14_400
"""Pixels (frames x pixels per frame) per block on NumPy: keeps temporaries in cache."""


def _rep(a: Array | None, n: int, xp: Any) -> Array | None:
    """``n`` stacked copies of ``a`` (b, ...) -> (n b, ...): problem ``r * b + f`` gets row
    ``f``; ``a`` itself when ``n`` is 1 or ``a`` is None."""
    return a if n == 1 or a is None else xp.concatenate([a] * n, axis=0)


def _groups(shared: Array, big: int) -> int:
    """How many groups of problems share the rows of ``shared`` (b, ...) in a batch of
    ``big`` stacked problems (problem ``r * b + f`` uses row ``f``)."""
    b = shared.shape[0]
    if big % b:
        raise ValueError(f"{big} problems cannot share {b} point sets")
    return big // b


def _shared(op: Any, a: Array, shared: Array) -> Array:
    """``op(a, shared)`` for ``a`` (B, N) and ``shared`` (b, N) (``op`` a ufunc such as
    ``xp.add``), row ``f`` of ``shared`` going to problems ``r * b + f``; (B, N)."""
    return op(a.reshape(_groups(shared, a.shape[0]), *shared.shape), shared).reshape(a.shape)


def _lowest(fit: Array, runs: int, keep: int, xp: Any) -> Array:
    """For ``runs`` stacked runs of each frame with inertias ``fit`` (runs b,), the indices
    of each frame's ``keep`` runs of lowest inertia (the first on ties), stacked in rank
    order: (keep b,) int (:func:`_best_of` is its ``keep=1``)."""
    b = fit.shape[0] // runs
    order = xp.argsort(fit.reshape(runs, b), axis=0, kind="stable")[:keep]  # (keep, b)
    return (order * b + xp.arange(b)[None, :]).reshape(-1)


def _best_of(fit: Array, n: int, xp: Any) -> Array:
    """For ``n`` stacked runs, the index of each frame's run of lowest ``fit`` (B,) (the
    first on ties): (b,) int, ``r * b + f`` for frame ``f``."""
    b = fit.shape[0] // n
    return xp.argmin(fit.reshape(n, b), axis=0) * b + xp.arange(b)


def _cat(arrays: list[Array], xp: Any) -> Array:
    """The per-block arrays ``arrays`` joined along the frames (first) axis."""
    return arrays[0] if len(arrays) == 1 else xp.concatenate(arrays, axis=0)
