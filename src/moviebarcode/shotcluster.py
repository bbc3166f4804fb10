"""Clustering a store by shot: k-means over all of a shot's sampled frames together.

A shot's palette is not the average of its frames' palettes: it is one k-means problem
over the shot's pooled pixels, solved on a weighted coreset of them.

- Pass one streams the store batch by batch. Each frame becomes its weighted coreset
  (``moviebarcode.kmeans.coreset``, the algorithm's fine one); a shot's coresets are
  merged, their weights as they are (every frame has as many pixels, so every pixel
  counts the same), and binned again every ``MERGE_FRAMES`` frames of the shot and at its
  end, into about ``SHOT_CELLS`` cubes. Finished shots wait in a group; a group of about
  ``GROUP_POINTS`` points is clustered in one call of the engine's ``fit_weighted``
  (numpy and cupy: ``kmeans.weighted_kmeans``, the batched algorithm on weighted points).
- Pass two streams the store again and assigns every pixel to its shot's centres, so the
  shares and inertia are the pixels', exactly, not the coreset's.

Memory is bounded by the batch, a shot's last ``MERGE_FRAMES`` coresets and one group,
never by the film's length. Merges and groups depend on the shots alone, never on the
batches, so the result does not depend on ``batch_frames``.

The result is cached like a clustering by frame, under ``results/k{k}/``: the key is the
clustering's (:meth:`ClusterParams.key`), then ``shots{SHOTS_VERSION}`` and a digest of
the cuts and of how they were found, so that new cuts are clustered again. It has one
row per shot that holds a sampled frame (``Shots.sampled``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from moviebarcode._xp import get_xp, to_host
from moviebarcode.cache import ResultCache
from moviebarcode.cluster import (
    ClusterParams,
    Clusters,
    batch_ranges,
    load_clusters,
    not_cached,
    params_for,
    resolve_engine,
)
from moviebarcode.colorspace import lab_to_srgb, srgb_to_lab
from moviebarcode.device import Device, LoadStats, timed_read
from moviebarcode.engines import Engine, NumpyEngine, get_engine
from moviebarcode.kmeans import assign_counts, coreset
from moviebarcode.shots import Shots, shots_of
from moviebarcode.store import FrameStore

SHOTS_VERSION = 1
"""Bumped whenever the pooling (the constants below) changes the results."""
SHOT_CELLS = 8**6
"""About how many cubes a shot's merged coresets are binned into: eight times the frames'
(a shot holds more colours than a frame; its points cost little)."""
MERGE_FRAMES = 64
"""A shot's frames' coresets are merged and binned again after every this many frames."""
GROUP_POINTS = 1 << 20
"""Points (shots x the group's largest shot) per call of the engine."""

Progress = Callable[[int], None]


def shot_key(store: FrameStore, params: ClusterParams) -> str:
    """The cache key of ``store``'s clustering by shot with ``params`` (``n_init``
    resolved): the clustering's key, the pooling's version and a digest of the cuts and
    the ``shots`` attribute that says how they were found."""
    h = hashlib.sha256(np.ascontiguousarray(store.cuts, np.float64).tobytes())
    h.update(json.dumps(store.meta.get("shots"), sort_keys=True, default=str).encode())
    return f"{params.key()}-shots{SHOTS_VERSION}-{h.hexdigest()[:12]}"


def cached_shot_clusters(store: FrameStore, params: ClusterParams) -> Clusters | None:
    """The clustering by shot cached in ``store`` for ``params``, or None."""
    params = params.for_frames(store.frame_shape)
    rows = int(shots_of(store).sampled.sum())
    return load_clusters(store, params.k, shot_key(store, params), rows=rows)


def cluster_shots(
    store: FrameStore,
    params: ClusterParams,
    *,
    recompute: bool = False,
    batch_frames: int | None = None,
    progress: Progress | None = None,
    load: LoadStats | None = None,
) -> Clusters:
    """The clustering of each shot of a complete ``store`` (with cuts) over all its sampled
    frames together: from the cache, or computed (see the module docstring) and cached.

    Returns :class:`~moviebarcode.cluster.Clusters` with one row per shot holding a
    sampled frame: centres (S', k, 3) float32 sRGB, shares (S', k) of the shot's pixels,
    inertia (S',) over them in the clustering space. InputError when the store has no
    cuts."""
    store.require_complete()
    shots = shots_of(store)  # InputError without cuts, before any other complaint
    params = params_for(store, params)
    if not recompute and (hit := cached_shot_clusters(store, params)) is not None:
        return hit
    t0 = time.perf_counter()
    name, dev = resolve_engine(params.engine, params.device)
    engine = NumpyEngine() if name == "numpy" else get_engine(name)
    run = _Run(store, params, shots, dev, load if load is not None else LoadStats())
    ranges = batch_ranges(store, params.k, batch_frames)
    n = store.frames_done
    centres = _pass_one(run, engine, ranges, lambda e: progress and progress(e // 2))
    shares, inertia = _pass_two(run, centres, ranges, lambda e: progress and progress((n + e) // 2))
    if params.space == "lab":
        centres = lab_to_srgb(centres, xp=np)
    seconds = time.perf_counter() - t0
    meta = {
        **dataclasses.asdict(params),
        "by": "shot",
        "engine": name,
        "device": dev.kind,
        "frames": n,
        "shots": int(shots.sampled.sum()),
        "centres_space": "srgb",
        "seconds": round(seconds, 3),
    }
    arrays = {"centres": centres.astype(np.float32), "shares": shares, "inertia": inertia}
    found = Clusters(*arrays.values(), meta, False, seconds)
    try:
        ResultCache(store).save(params.k, shot_key(store, params), meta, arrays, recompute)
    except OSError as exc:  # a read-only store: the result serves this render only
        found.warnings.append(not_cached(store, exc))
    return found


@dataclasses.dataclass
class _Run:
    """What both passes read: the store, the parameters, its shots, where frames go."""

    store: FrameStore
    params: ClusterParams
    shots: Shots
    device: Device
    load: LoadStats

    def pixels(self, start: int, stop: int) -> Any:
        """Frames ``start:stop`` as pixels (b, P, 3) float32 in the clustering space, on the
        device."""
        frames, method, note, seconds = timed_read(self.store.path, start, stop, self.device)
        self.load.add(method, int(frames.nbytes), seconds, note or None)
        xp = get_xp(frames)
        x = frames.reshape(len(frames), -1, 3).astype(xp.float32)
        return srgb_to_lab(x) if self.params.space == "lab" else x


def _pass_one(run: _Run, engine: Engine, ranges, tick: Callable[[int], Any]) -> np.ndarray:
    """Pass one: each shot's centres (S', k, 3) float32, in the clustering space."""
    shots = run.shots
    span = shots.frames
    pools = _Pools(run, engine)
    fine = round(8.0 ** run.params.kmeans_config(run.store.frame_shape).fine_bits)
    shot_of = shots.frame_shot
    for s, e in ranges:
        pts, w = coreset(run.pixels(s, e), None, fine)
        for shot in np.unique(shot_of[s:e]).tolist():
            lo, hi = max(int(span[shot, 0]), s), min(int(span[shot, 1]), e)
            pools.add(shot, pts[lo - s : hi - s], w[lo - s : hi - s], lo - int(span[shot, 0]))
            if hi == span[shot, 1]:
                pools.finish(shot)
        tick(e)
    pools.solve()
    return pools.centres


class _Pools:
    """The coresets of the shot in progress, and the finished shots waiting in a group."""

    def __init__(self, run: _Run, engine: Engine) -> None:
        self.run, self.engine = run, engine
        self.row = np.cumsum(run.shots.sampled) - 1  # each sampled shot's result row
        k = run.params.k
        self.centres = np.zeros((int(run.shots.sampled.sum()), k, 3), np.float32)
        self.parts: list[tuple[Any, Any]] = []
        self.binned = False  # whether ``parts`` is one merged coreset
        self.group: list[tuple[int, Any, Any]] = []  # (shot, points (B, 3), weights (B,))

    def add(self, shot: int, pts: Any, w: Any, offset: int) -> None:
        """Frames ``offset:`` of ``shot`` (their coresets ``pts`` (m, B, 3), weights
        ``w`` (m, B)), merged after each ``MERGE_FRAMES`` frames of the shot."""
        i, m = 0, len(pts)
        while i < m:
            j = min(m, i + MERGE_FRAMES - (offset + i) % MERGE_FRAMES)
            keep = w[i:j].reshape(-1) > 0
            self.parts.append((pts[i:j].reshape(-1, 3)[keep], w[i:j].reshape(-1)[keep]))
            self.binned = False
            if (offset + j) % MERGE_FRAMES == 0:
                self._merge()
            i = j

    def _merge(self) -> None:
        xp = get_xp(self.parts[0][0])
        p = xp.concatenate([a for a, _ in self.parts])[None]
        w = xp.concatenate([b for _, b in self.parts])[None]
        p, w = coreset(p, w, SHOT_CELLS, xp=xp)
        self.parts, self.binned = [(p[0], w[0])], True

    def finish(self, shot: int) -> None:
        """``shot`` has all its frames: its merged coreset joins the group."""
        if not self.binned:
            self._merge()
        (p, w), self.parts = self.parts[0], []
        self.group.append((shot, p, w))
        if len(self.group) * max(len(q) for _, q, _ in self.group) >= GROUP_POINTS:
            self.solve()

    def solve(self) -> None:
        """Cluster the group's shots in one call; their centres go to ``centres``."""
        if not self.group:
            return
        xp = get_xp(self.group[0][1])
        n = max(len(p) for _, p, _ in self.group)
        pts = xp.stack([_pad(p, p[:1], n, xp) for _, p, _ in self.group])
        wts = xp.stack([_pad(w, xp.zeros(1, dtype=w.dtype), n, xp) for _, _, w in self.group])
        rows = self.row[[shot for shot, _, _ in self.group]]
        params = self.run.params
        config = params.kmeans_config(self.run.store.frame_shape, int(rows[0]))
        res = self.engine.fit_weighted(pts, wts, params.k, config)
        self.centres[rows] = to_host(res.centres)
        self.group = []


def _pad(a: Any, fill: Any, n: int, xp: Any) -> Any:
    """``a`` (m, ...) with copies of ``fill`` (1, ...) up to ``n`` rows."""
    if len(a) == n:
        return a
    return xp.concatenate([a, xp.broadcast_to(fill, (n - len(a), *a.shape[1:]))])


def _pass_two(
    run: _Run, centres: np.ndarray, ranges, tick: Callable[[int], Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Pass two: every pixel assigned to its shot's ``centres`` (S', k, 3); each shot's
    shares of its pixels (S', k) float32 and inertia (S',) float64."""
    row = run.shots.sampled_index[run.shots.frame_shot]  # each frame's result row
    counts = np.zeros(centres.shape[:2], np.float64)
    inertia = np.zeros(len(centres), np.float64)
    for s, e in ranges:
        x = run.pixels(s, e)
        xp = get_xp(x)
        c, d = assign_counts(x, xp.asarray(centres[row[s:e]]), xp=xp)
        np.add.at(counts, row[s:e], to_host(c))
        np.add.at(inertia, row[s:e], to_host(d))
        tick(e)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return shares.astype(np.float32), inertia
