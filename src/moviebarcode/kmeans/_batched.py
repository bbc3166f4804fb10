"""The top level: :func:`batched_kmeans`, the steps of :mod:`moviebarcode.kmeans` in order."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Any

import numpy as np

from moviebarcode._cpus import usable_cpus
from moviebarcode._xp import Array, get_xp
from moviebarcode.errors import ParameterError
from moviebarcode.kmeans._layout import NUMPY_BLOCK_ELEMENTS, _cat
from moviebarcode.kmeans._neighbours import neighbour_rounds
from moviebarcode.kmeans._pixels import pixel_phase
from moviebarcode.kmeans._result import KMeansResult
from moviebarcode.kmeans._search import search_block
from moviebarcode.kmeans._seeding import draw_uniforms
from moviebarcode.kmeans.config import KMeansConfig, _Plan


def batched_kmeans(
    pixels: Array,
    k: int,
    config: KMeansConfig = KMeansConfig(),  # noqa: B008 (frozen: never changes)
    *,
    xp: Any = None,
    block_frames: int | None = None,
    n_threads: int | None = None,
    segments: Sequence[tuple[int, int]] | None = None,
) -> KMeansResult:
    """Cluster the pixels of each frame of a batch into ``k`` colours.

    One k-means problem per frame, all solved together (the steps are described in
    :mod:`moviebarcode.kmeans`). The result depends on ``pixels``, ``k`` and ``config``
    only (a frame's result depends on the other frames of the batch, its neighbours),
    never on ``block_frames`` or ``n_threads``.

    Parameters
    ----------
    pixels : array of shape (F, P, 3)
        F >= 1 frames of P >= 1 pixels each, already in the clustering space (sRGB 0-255
        or CIELAB); NumPy or CuPy, converted to float32.
    k : int
        Clusters per frame, >= 1.
    config : KMeansConfig, optional
        Every setting that changes the result, the seed included.
    xp : module, optional
        ``numpy`` or ``cupy``; by default the module of ``pixels``.
    block_frames : int, optional
        Frames clustered together at a time, >= 1. Default: all of them on CuPy, about
        ``NUMPY_BLOCK_ELEMENTS`` pixels' worth on NumPy (temporaries stay in the caches).
    n_threads : int, optional
        NumPy only: blocks are clustered on this many threads (default: the CPU count).
    segments : sequence of (int, int), optional
        ``(frames, seed)`` of each of several independent batches stacked, in order, in
        ``pixels``: each segment gets the result a call on its frames alone with that
        seed would give (up to rounding), in one call. On a GPU, one call for many
        batches saves launch overhead. Default: one batch, seeded by ``config.seed``.

    Returns
    -------
    KMeansResult
        ``centres`` (F, k, 3) float32, ``shares`` (F, k) float32, ``inertia`` (F,)
        float64, ``n_iter`` (F,) int32, as arrays of ``xp``.

    Raises
    ------
    ParameterError
        If ``k``, ``config``, ``block_frames``, ``n_threads`` or ``segments`` is not
        valid.
    ValueError
        If ``pixels`` is not of shape (F, P, 3) with F and P at least 1.
    """
    x, xp = _check_input(pixels, k, config, xp, block_frames, n_threads)
    plan = _Plan.of(config)
    n_frames, n_pixels, _ = x.shape
    lengths = _check_segments(segments, n_frames)
    u_first, u_trials = _uniforms(plan, k, segments or [(n_frames, plan.seed)])
    blocks = _blocks(n_frames, n_pixels, block_frames, xp)

    def search(i: int):  # steps 1-4, block by block
        block = blocks[i]
        return search_block(x[block], k, plan, u_first[block], u_trials[block], xp)

    with _block_runner(len(blocks), n_threads, xp) as run:
        found = run(search, range(len(blocks)))
        neighbour_rounds(found, blocks, plan, run, xp, lengths)  # step 5, updates found
        centres, more, shares, inertia = pixel_phase(x, k, found, blocks, plan, run, xp)
    n_iter = (_cat([f.n_iter for f in found], xp) + more).astype(xp.int32)
    return KMeansResult(centres=centres, shares=shares, inertia=inertia, n_iter=n_iter)


def _check_input(
    pixels: Array,
    k: int,
    config: KMeansConfig,
    xp: Any,
    block_frames: int | None,
    n_threads: int | None,
) -> tuple[Array, Any]:
    """``pixels`` as a float32 array (F, P, 3) of ``xp`` (by default, the module of
    ``pixels``), and ``xp``, once the arguments are checked."""
    if not isinstance(config, KMeansConfig):
        raise ParameterError(f"config must be a KMeansConfig, got {type(config).__name__}")
    for name, value, optional in (
        ("k", k, False),
        ("block_frames", block_frames, True),
        ("n_threads", n_threads, True),
    ):
        if optional and value is None:
            continue
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name} must be an int >= 1, got {value!r}")
    if xp is None:
        xp = get_xp(pixels)
    x = xp.asarray(pixels, dtype=xp.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"pixels must have shape (F, P, 3), got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"pixels must hold at least one frame of one pixel, got {x.shape}")
    return x, xp


def _check_segments(segments: Sequence[tuple[int, int]] | None, n_frames: int) -> list[int] | None:
    """The segments' lengths, once checked against the batch's ``n_frames``."""
    if segments is None:
        return None
    ok = all(
        len(seg) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in seg)
        and seg[0] >= 1
        and seg[1] >= 0
        for seg in segments
    )
    lengths = [int(n) for n, _ in segments] if ok else []
    if not ok or sum(lengths) != n_frames:
        raise ParameterError(
            f"segments must be (frames >= 1, seed >= 0) pairs adding up to the batch's "
            f"{n_frames} frames, got {list(segments)!r}"
        )
    return lengths


def _uniforms(
    plan: _Plan, k: int, segments: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The seedings' random numbers of each segment, drawn from its own seed, stacked."""
    draws = [draw_uniforms(seed, n, plan.n_init, k) for n, seed in segments]
    if len(draws) == 1:
        return draws[0]
    return tuple(np.concatenate(parts, axis=0) for parts in zip(*draws, strict=True))


def _blocks(n_frames: int, n_pixels: int, block_frames: int | None, xp: Any) -> list[slice]:
    """The batch's frames cut into blocks of ``block_frames`` consecutive frames."""
    if block_frames is None:
        block_frames = max(1, NUMPY_BLOCK_ELEMENTS // n_pixels) if xp is np else n_frames
    return [slice(s, min(s + block_frames, n_frames)) for s in range(0, n_frames, block_frames)]


@contextlib.contextmanager
def _block_runner(
    n_blocks: int, n_threads: int | None, xp: Any
) -> Iterator[Callable[[Callable[[int], Any], range], list]]:
    """``run(fn, items)``: ``[fn(i) for i in items]``, on a pool of threads for NumPy with
    several blocks and threads, else in turn. Blocks are independent: the threads never
    change the result."""
    workers = 1
    if xp is np and n_blocks > 1:
        workers = n_threads if n_threads is not None else usable_cpus()
        workers = max(1, min(workers, n_blocks))
    if workers == 1:
        yield lambda fn, items: [fn(i) for i in items]
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield lambda fn, items: list(pool.map(fn, items))
