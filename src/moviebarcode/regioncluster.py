"""Clustering a region of every frame: ``render --mode <cluster mode> --region ...``.

Each frame's palette is the k-means of the pixels of its region (``moviebarcode.regions``;
an empty region is the whole frame there). The store is streamed batch by batch, as
``moviebarcode.cluster`` does:

- each frame becomes the weighted coreset of its region's pixels
  (``moviebarcode.kmeans.coreset``, the algorithm's fine one, the mask as weights 0/1);
- a batch's coresets are clustered in one call of the engine's ``fit_weighted``, with the
  seed ``params.seed + start`` as a clustering by frame;
- Lloyd iterations on the region's pixels follow, from the coreset's centres, until no
  pixel changes cluster (the pixel phase of ``moviebarcode.kmeans``, without its bounds),
  so the centres, shares and inertia are the region's pixels', not the coreset's.

The result is cached like a clustering by frame, under ``results/k{k}/``, its key the
clustering's (:meth:`ClusterParams.key`) and ``-region-{region}``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from moviebarcode._xp import get_xp, to_host
from moviebarcode.cache import ResultCache
from moviebarcode.choices import Region
from moviebarcode.cluster import (
    ClusterParams,
    Clusters,
    batch_ranges,
    load_clusters,
    not_cached,
    params_for,
    resolve_engine,
)
from moviebarcode.colorspace import lab_to_srgb, srgb_to_lab, srgb_to_linear
from moviebarcode.device import LoadStats, timed_read
from moviebarcode.engines import Engine, NumpyEngine, get_engine
from moviebarcode.kmeans import coreset
from moviebarcode.regions import region_mask
from moviebarcode.store import FrameStore

ASSIGN_ELEMENTS = 1 << 23
"""Pixel-centre distances per step of the assignment (memory, not results)."""

Progress = Callable[[int], None]


def region_key(params: ClusterParams, region: Region) -> str:
    """The cache key of a clustering of ``region`` with ``params`` (``n_init`` resolved)."""
    return f"{params.key()}-region-{region}"


def cached_region_clusters(
    store: FrameStore, params: ClusterParams, region: Region
) -> Clusters | None:
    """The clustering of ``region`` cached in ``store`` for ``params``, or None."""
    params = params.for_frames(store.frame_shape)
    return load_clusters(store, params.k, region_key(params, region))


def cluster_region(
    store: FrameStore,
    params: ClusterParams,
    region: Region,
    *,
    recompute: bool = False,
    batch_frames: int | None = None,
    progress: Progress | None = None,
    load: LoadStats | None = None,
) -> Clusters:
    """The clustering of ``region`` of every frame of a complete ``store``: from the cache,
    or computed (see the module docstring) and cached. Returns
    :class:`~moviebarcode.cluster.Clusters` as ``cluster()`` does, the shares and inertia
    over the region's pixels."""
    params = params_for(store, params)
    if not recompute and (hit := cached_region_clusters(store, params, region)) is not None:
        return hit
    t0 = time.perf_counter()
    name, dev = resolve_engine(params.engine, params.device)
    engine = NumpyEngine() if name == "numpy" else get_engine(name)
    load = load if load is not None else LoadStats()
    n, k = store.frames_done, params.k
    arrays = {
        "centres": np.empty((n, k, 3), np.float32),
        "shares": np.empty((n, k), np.float32),
        "inertia": np.empty(n, np.float64),
    }
    for s, e in batch_ranges(store, k, batch_frames):
        frames, method, note, seconds = timed_read(store.path, s, e, dev)
        load.add(method, int(frames.nbytes), seconds, note or None)
        found = cluster_region_batch(frames, s, params, region, engine)
        for key, values in zip(arrays, found, strict=True):
            arrays[key][s:e] = values
        if progress:
            progress(e)
    seconds = time.perf_counter() - t0
    meta = {
        **dataclasses.asdict(params),
        "region": region,
        "engine": name,
        "device": dev.kind,
        "frames": n,
        "centres_space": "srgb",
        "seconds": round(seconds, 3),
    }
    found = Clusters(*arrays.values(), meta, False, seconds)
    try:
        ResultCache(store).save(k, region_key(params, region), meta, arrays, recompute)
    except OSError as exc:  # a read-only store: the result serves this render only
        found.warnings.append(not_cached(store, exc))
    return found


def cluster_region_batch(
    frames: Any, start: int, params: ClusterParams, region: Region, engine: Engine
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster ``region`` of each frame of a batch (m, h, w, 3) uint8 (NumPy or CuPy) that
    begins at frame ``start``: centres (m, k, 3) float32 sRGB, shares (m, k) float32 of the
    region's pixels and inertia (m,) float64 over them, in the clustering space."""
    xp = get_xp(frames)
    shape = tuple(frames.shape[1:3])
    linear = None
    if region in ("high-contrast", "low-contrast"):
        linear = srgb_to_linear(xp.arange(256, dtype=xp.float32), xp=xp)[frames]
    mask = region_mask(frames, region, linear).reshape(len(frames), -1)
    x = frames.reshape(len(frames), -1, 3).astype(xp.float32)
    if params.space == "lab":
        x = srgb_to_lab(x)
    config = params.kmeans_config(shape, start)
    pts, w = coreset(x, mask.astype(xp.float32), round(8.0**config.fine_bits), xp=xp)
    centres = engine.fit_weighted(pts, w, params.k, config).centres
    centres = xp.asarray(centres, dtype=xp.float32)
    centres, counts, inertia = refine_masked(x, mask, centres, config.max_iter)
    shares = counts / xp.maximum(counts.sum(axis=1, keepdims=True), 1)
    if params.space == "lab":
        centres = lab_to_srgb(centres)
    return to_host(centres), to_host(shares.astype(xp.float32)), to_host(inertia)


def refine_masked(x: Any, mask: Any, centres: Any, max_iter: int) -> tuple[Any, Any, Any]:
    """Lloyd iterations on the pixels ``x`` (m, P, 3) where ``mask`` (m, P) holds, from each
    frame's ``centres`` (m, k, 3) float32, until no pixel changes cluster (at most
    ``max_iter``): the centres, each one's count of pixels (m, k) float64 and each frame's
    inertia (m,) float64 over them (a cluster left empty keeps its centre)."""
    xp = get_xp(x)
    wts = mask.astype(xp.float64)
    label, near = assign_masked(x, centres)
    for _ in range(max_iter):
        counts, sums = _cluster_sums(x, wts, label, centres.shape[1])
        moved = sums / xp.maximum(counts, 1)[..., None]
        centres = xp.where(counts[..., None] > 0, moved, centres).astype(xp.float32)
        new, near = assign_masked(x, centres)
        if bool(((new != label) & mask).sum() == 0):
            break
        label = new
    counts, _ = _cluster_sums(x, wts, label, centres.shape[1])
    return centres, counts, (near * wts).sum(axis=1)


def _cluster_sums(x: Any, wts: Any, label: Any, k: int) -> tuple[Any, Any]:
    """Each cluster's weight (m, k) and weighted sum of pixels (m, k, 3), float64."""
    xp = get_xp(x)
    m = len(x)
    idx = (label + (xp.arange(m) * k)[:, None]).ravel()
    w = wts.ravel()
    counts = xp.bincount(idx, weights=w, minlength=m * k).reshape(m, k)
    flat = x.reshape(-1, 3).astype(xp.float64)
    sums = xp.stack(
        [xp.bincount(idx, weights=w * flat[:, j], minlength=m * k) for j in range(3)], axis=1
    )
    return counts, sums.reshape(m, k, 3)


def assign_masked(x: Any, centres: Any) -> tuple[Any, Any]:
    """Each pixel of ``x`` (m, P, 3) assigned to the nearest of its frame's ``centres``
    (m, k, 3) (the first on ties): its label (m, P) and squared distance (m, P)."""
    xp = get_xp(x)
    m, p, _ = x.shape
    step = max(1, ASSIGN_ELEMENTS // max(1, p * centres.shape[1]))
    labels, nears = [], []
    for i in range(0, m, step):
        d = ((x[i : i + step, :, None, :] - centres[i : i + step, None, :, :]) ** 2).sum(-1)
        label = xp.argmin(d, axis=2)
        labels.append(label)
        nears.append(xp.take_along_axis(d, label[..., None], axis=2)[..., 0])
    return xp.concatenate(labels), xp.concatenate(nears)
