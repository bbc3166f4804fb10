"""Clustering a whole store: the one way in (:func:`cluster`), for every executor.

:func:`cluster` serves a cached result or computes one and caches it. It cuts the store
into batches of whole chunks and hands :func:`cluster_range` over them to an executor
(``moviebarcode.executors``: this process or worker processes; a Dask cluster from
``moviebarcode.dask_backend``). Each range is clustered alone, with the seed
``params.seed + start``, so a film's result depends on the batch boundaries only, never on
the executor, the number of workers or the order the ranges finish in. The ranges do not
depend on the device either: the cupy engine takes many of them in one call
(:func:`stack_ranges`), each still clustered as its own batch.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from moviebarcode._cpus import usable_cpus
from moviebarcode._xp import get_xp, to_host
from moviebarcode.cache import ResultCache
from moviebarcode.choices import DeviceChoice, EngineName, Space, check
from moviebarcode.colorspace import lab_to_srgb, srgb_to_lab
from moviebarcode.device import Device, LoadStats, gpu_free_bytes, select_device, timed_read
from moviebarcode.engines import Engine, NumpyEngine, get_engine
from moviebarcode.errors import InputError, ParameterError, StoreError
from moviebarcode.executors import Executor, InProcess, ProcessPool
from moviebarcode.kmeans import ALGORITHM_VERSION, KMeansConfig
from moviebarcode.store import FrameStore

_KMEANS = KMeansConfig()
BATCH_BYTES = 256 * 1024 * 1024
"""Memory for one clustering batch: about F * P * max(k, 8) float32 distances, several times."""
GPU_CALL_BYTES = 8 * 1024**3
"""Memory for one call of the cupy engine, which stacks many batches (at most half the GPU's
free memory): one batch's kernels take about as long as many's (the README's GPU figures)."""
SMALL_FRAME_PIXELS = 160 * 90
"""Frames up to this size get ``KMeansConfig``'s restarts by default, larger ones more."""
N_INIT_LARGE = 24
"""The default restarts for frames larger than ``SMALL_FRAME_PIXELS``."""
LARGE_FRAME_SEARCH = {"carry": N_INIT_LARGE, "fine_iter": 10, "finalists": 4, "trial_iter": 2}
"""``KMeansConfig`` settings for frames larger than ``SMALL_FRAME_PIXELS``: every restart goes
on to the fine coreset for two iterations, and the four best there for up to ten in all. The
coarse coreset ranks restarts too roughly at these sizes: with five carried, a frame could
keep a poor optimum well above scikit-learn's (the README's benchmark section has the figures;
160x90 keeps ``KMeansConfig``'s settings, as these cost time there for no gain)."""
K_MAX = 64
"""The most clusters per frame (the README documents it)."""
GPU_ENGINES = ("cupy", "cuml")
FRAME_BY_FRAME = ("sklearn", "cuml")
"""Engines that run another library's k-means frame by frame: their results are cached
under their own name. numpy and cupy run one algorithm (``ALGORITHM_VERSION``), so either
serves the other's cached result."""

Progress = Callable[[int], None]
"""Called with the number of frames clustered so far."""


@dataclass(frozen=True)
class ClusterParams:
    """What a clustering of a store is asked for; validated on creation.

    ``engine`` None picks cupy on a GPU, numpy on the CPU (see :func:`resolve_engine`);
    ``device`` says where it runs. ``n_init`` None takes the restarts by frame size (see
    :meth:`for_frames`). The other k-means defaults are ``KMeansConfig``'s.
    """

    k: int = 8
    space: Space = "rgb"
    n_init: int | None = None
    max_iter: int = _KMEANS.max_iter
    tol: float = _KMEANS.tol
    seed: int = 0
    engine: EngineName | None = None
    device: DeviceChoice = "auto"

    def __post_init__(self):
        for name, least in (("k", 1), ("n_init", 1), ("max_iter", 1), ("seed", 0)):
            v = getattr(self, name)
            if v is None and name == "n_init":
                continue
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < least:
                option = name.replace("_", "-")
                raise ParameterError(f"--{option} must be a whole number, at least {least}")
        if self.k > K_MAX:
            raise ParameterError(
                f"--k is at most {K_MAX}: a frame's time and memory grow with k, and a barcode "
                "column shows no more colours than that"
            )
        if not self.tol >= 0:
            raise ParameterError(f"tol must be at least 0, got {self.tol!r}")
        check(Space, self.space, "colour space")
        if self.engine is not None:
            check(EngineName, self.engine, "engine")
        check(DeviceChoice, self.device, "device")

    def for_frames(self, shape: tuple[int, int]) -> ClusterParams:
        """These parameters with ``n_init`` resolved for frames of ``shape`` (h, w): when
        not given, ``KMeansConfig``'s default up to ``SMALL_FRAME_PIXELS`` pixels and
        ``N_INIT_LARGE`` above, where restarts cost little (they run on a coarse coreset,
        whose size does not grow with the frame) and find better optima (the README's
        benchmark section has the figures)."""
        if self.n_init is not None:
            return self
        n_init = N_INIT_LARGE if _large(shape) else _KMEANS.n_init
        return dataclasses.replace(self, n_init=n_init)

    def kmeans_config(self, shape: tuple[int, int], start: int = 0) -> KMeansConfig:
        """The k-means settings for a batch of frames of ``shape`` (h, w) that begins at frame
        ``start`` of the store (its seed is ``seed + start``). Frames larger than
        ``SMALL_FRAME_PIXELS`` also carry more restarts further (``LARGE_FRAME_SEARCH``): more
        pixels per coreset bin leave more room between a coreset's optimum and the pixels'."""
        p = self.for_frames(shape)
        return KMeansConfig(
            n_init=p.n_init,
            max_iter=p.max_iter,
            tol=p.tol,
            seed=p.seed + start,
            **(LARGE_FRAME_SEARCH if _large(shape) else {}),
        )

    def key(self) -> str:
        """The result's name in the cache, under ``results/k{k}/``: everything that changes a
        result. The batched engines (numpy, cupy) name the algorithm's version, so a store
        clustered by an older moviebarcode clusters again; sklearn and cuml name themselves.
        ``n_init`` must be resolved (:meth:`for_frames`)."""
        if self.n_init is None:
            raise ValueError("resolve n_init for the frames first (ClusterParams.for_frames)")
        algo = self.engine if self.engine in FRAME_BY_FRAME else f"v{ALGORITHM_VERSION}"
        return (
            f"{self.space}-ninit{self.n_init}-iter{self.max_iter}-tol{self.tol:g}-seed{self.seed}"
            f"-{algo}"
        )


@dataclass
class Clusters:
    """A clustering of every frame: centres (n, k, 3) float32 sRGB 0..255, shares (n, k)
    float32, inertia (n,) float64 in the clustering space, and how it was obtained. (By
    shot, ``moviebarcode.shotcluster``: one row per shot that holds a sampled frame.)"""

    centres: np.ndarray
    shares: np.ndarray
    inertia: np.ndarray
    params: dict
    cached: bool
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class RangeResult(NamedTuple):
    """What :func:`cluster_range` returns: the range's arrays, the engine and device that
    made them, and how its frames were read."""

    centres: np.ndarray
    shares: np.ndarray
    inertia: np.ndarray
    engine: str
    device: str
    read_method: str
    read_note: str
    read_bytes: int
    read_seconds: float


def _large(shape: tuple[int, int]) -> bool:
    """Whether frames of ``shape`` (h, w) are larger than ``SMALL_FRAME_PIXELS``."""
    return shape[0] * shape[1] > SMALL_FRAME_PIXELS


def resolve_engine(engine: EngineName | None, device: DeviceChoice = "auto") -> tuple[str, Device]:
    """The engine and the device it runs on. No engine given: ``cupy`` on a GPU, else ``numpy``
    (``device`` auto: the GPU when CuPy sees one). The GPU engines need the GPU; the others run on
    the CPU whatever ``device`` says."""
    if engine in GPU_ENGINES:
        if device == "cpu":
            raise ParameterError(f"--engine {engine} runs on a GPU; not with --device cpu")
        return engine, select_device("gpu")
    if engine is None:
        dev = select_device(device)
        return ("cupy" if dev.kind == "gpu" else "numpy"), dev
    if device == "gpu":
        raise ParameterError(
            f"--engine {engine} runs on the CPU; use --engine cupy with --device gpu"
        )
    return engine, select_device("cpu")


def batch_ranges(
    store: FrameStore, k: int, batch_frames: int | None = None
) -> list[tuple[int, int]]:
    """(start, stop) of each clustering batch: whole chunks, about ``batch_frames`` frames
    (default: what fits ``BATCH_BYTES``)."""
    if not batch_frames:
        batch_frames = max(1, min(4096, BATCH_BYTES // _frame_bytes(store, k)))
    return store.batch_ranges(batch_frames)


def _frame_bytes(store: FrameStore, k: int) -> int:
    """A frame's share of a batch's working memory."""
    h, w = store.frame_shape
    return h * w * max(k, 8) * 4 * 4


def stack_ranges(
    ranges: list[tuple[int, int]], frame_bytes: int, budget: int
) -> list[list[tuple[int, int]]]:
    """Consecutive ``ranges`` grouped into calls of at most ``budget`` bytes of working
    memory (``frame_bytes`` a frame), each range whole: one call of the cupy engine
    clusters a group's ranges as independent batches, with their results unchanged."""
    groups: list[list[tuple[int, int]]] = []
    size = 0
    for s, e in ranges:
        if groups and size + (e - s) * frame_bytes <= budget:
            groups[-1].append((s, e))
            size += (e - s) * frame_bytes
        else:
            groups.append([(s, e)])
            size = (e - s) * frame_bytes
    return groups


def cluster_batch(
    frames: Any,
    start: int,
    params: ClusterParams,
    engine: Engine,
    parts: Sequence[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster one batch of frames (m, h, w, 3) uint8 (NumPy or CuPy) that begins at frame
    ``start`` of the store, with the seed ``params.seed + start``; or, with ``parts``
    (the store's ranges (s, e) that the frames hold, one after the other; numpy and cupy
    engines only), each part as its own batch, as if clustered alone.

    Returns centres (m, k, 3) float32 sRGB 0..255, shares (m, k) float32 and inertia (m,)
    float64, as NumPy arrays."""
    xp = get_xp(frames)
    x = frames.reshape(len(frames), -1, 3).astype(xp.float32)
    if params.space == "lab":
        x = srgb_to_lab(x)
    config = params.kmeans_config(tuple(frames.shape[1:3]), start)
    if parts is None:
        res = engine.fit(x, params.k, config)
    else:
        res = engine.fit(x, params.k, config, segments=[(e - s, params.seed + s) for s, e in parts])
    c = lab_to_srgb(res.centres) if params.space == "lab" else res.centres
    return to_host(c), to_host(res.shares), to_host(res.inertia)


@functools.cache
def _engine(name: str, threads: int | None) -> Engine:
    """One engine object per process, name and thread count (a GPU engine costs a moment)."""
    return NumpyEngine(n_threads=threads) if name == "numpy" else get_engine(name)


def cluster_range(
    path: str,
    start: int,
    stop: int,
    params: ClusterParams,
    threads: int | None = None,
    parts: Sequence[tuple[int, int]] | None = None,
    loaded: tuple | None = None,
) -> RangeResult:
    """Cluster frames ``start:stop`` of the store at ``path``, reading them itself: what an
    executor maps over a store's ranges (in this process, a worker process or a Dask worker).
    ``threads``: the numpy engine's threads (None: every CPU); ``parts``: the ranges that
    ``start:stop`` stacks, each clustered as its own batch (see :func:`cluster_batch`);
    ``loaded``: what :func:`read_call` returned for this call, read ahead."""
    if not Path(path).is_dir():
        raise StoreError(
            f"{path}: no such store on {socket.gethostname()} (worker processes and Dask "
            "workers need the store at the same path)"
        )
    name, dev = resolve_engine(params.engine, params.device)
    frames, method, note, seconds = loaded or timed_read(path, start, stop, dev)
    centres, shares, inertia = cluster_batch(frames, start, params, _engine(name, threads), parts)
    return RangeResult(
        centres, shares, inertia, name, dev.kind, method, note, int(frames.nbytes), seconds
    )


def read_call(path: str, start: int, stop: int, params: ClusterParams, *_: Any) -> tuple:
    """The frames a :func:`cluster_range` call reads, read the same way, with how and how
    long (for :class:`ReadAhead`)."""
    return timed_read(path, start, stop, resolve_engine(params.engine, params.device)[1])


class ReadAhead:
    """This process, reading each :func:`cluster_range` call's frames on a thread while the
    call before is clustered: on a GPU, reading the store would otherwise leave it idle."""

    name = "in-process, read-ahead"
    workers = 1
    threads_per_call = None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = [pool.submit(read_call, *c) for c in calls[:1]]
            for i, args in enumerate(calls):
                loaded = ahead.pop().result()
                if i + 1 < len(calls):
                    ahead.append(pool.submit(read_call, *calls[i + 1]))
                yield i, fn(*args, loaded=loaded)


def default_jobs() -> int:
    """Worker processes by default: one per CPU this process may run on."""
    return usable_cpus()


def local_executor(
    store: FrameStore, params: ClusterParams, jobs: int | None, batch_frames: int | None = None
) -> Executor:
    """Worker processes for ``jobs`` > 1 on the CPU (no more than there are batches), else
    this process."""
    if jobs is not None and jobs < 1:
        raise ParameterError("--jobs must be at least 1")
    n = len(batch_ranges(store, params.k, batch_frames))
    if not jobs or jobs < 2 or n < 2 or resolve_engine(params.engine, params.device)[0] != "numpy":
        return InProcess()
    return ProcessPool(min(jobs, n))


def cached_clusters(store: FrameStore, params: ClusterParams) -> Clusters | None:
    """The clustering cached in ``store`` for ``params``, or None."""
    params = params.for_frames(store.frame_shape)
    return load_clusters(store, params.k, params.key())


def load_clusters(store: FrameStore, k: int, key: str, rows: int | None = None):
    """The cached clustering (k, key) of ``store`` as :class:`Clusters`, or None (absent, or
    not of ``rows`` rows: see ``ResultCache.load``)."""
    hit = ResultCache(store).load(k, key, rows=rows)
    if hit is None:
        return None
    return Clusters(hit["centres"], hit["shares"], hit["inertia"], hit["params"], True)


def params_for(store: FrameStore, params: ClusterParams) -> ClusterParams:
    """``params`` for the frames of a complete ``store`` (StoreError if it is not);
    InputError when ``k`` is more than a frame's pixels."""
    store.require_complete()
    h, w = store.frame_shape
    params = params.for_frames((h, w))
    if params.k > h * w:
        raise InputError(f"--k {params.k} is more than a frame's {h * w} pixels")
    return params


def cluster(
    store: FrameStore,
    params: ClusterParams,
    *,
    executor: Executor | None = None,
    recompute: bool = False,
    batch_frames: int | None = None,
    progress: Progress | None = None,
    load: LoadStats | None = None,
) -> Clusters:
    """The clustering of every frame of a complete ``store`` with ``params``: from the cache,
    or computed range by range on ``executor`` (default: this process) and cached.

    Memory is bounded by the batch, not the film. ``load`` receives how the frames were
    read; ``progress`` the number of frames done."""
    params = params_for(store, params)
    if not recompute and (hit := cached_clusters(store, params)) is not None:
        return hit
    executor = executor if executor is not None else InProcess()
    load = load if load is not None else LoadStats()
    ranges = batch_ranges(store, params.k, batch_frames)
    groups = [[r] for r in ranges]
    if resolve_engine(params.engine, params.device)[0] == "cupy":
        budget = min(GPU_CALL_BYTES, gpu_free_bytes() // 2)
        groups = stack_ranges(ranges, _frame_bytes(store, params.k), budget)
        if isinstance(executor, InProcess):
            executor = ReadAhead()
    path = str(store.path.absolute())
    calls = [
        (path, g[0][0], g[-1][1], params, executor.threads_per_call, g if len(g) > 1 else None)
        for g in groups
    ]
    n, k = store.frames_done, params.k
    arrays = {
        "centres": np.empty((n, k, 3), np.float32),
        "shares": np.empty((n, k), np.float32),
        "inertia": np.empty(n, np.float64),
    }
    made_by: set[tuple[str, str]] = set()
    t0 = time.perf_counter()
    done = 0
    for i, r in executor.map(cluster_range, calls):
        s, e = calls[i][1:3]
        for name, values in arrays.items():
            values[s:e] = getattr(r, name)
        made_by.add((r.engine, r.device))
        load.add(r.read_method, r.read_bytes, r.read_seconds, r.read_note or None)
        done += e - s
        if progress:
            progress(done)
    seconds = time.perf_counter() - t0
    meta = {
        **dataclasses.asdict(params),
        "engine": ",".join(sorted({e for e, _ in made_by})),
        "device": ",".join(sorted({d for _, d in made_by})),
        "frames": n,
        "centres_space": "srgb",
        "seconds": round(seconds, 3),
        "executor": {"name": executor.name, "workers": executor.workers, "tasks": len(calls)},
    }
    found = Clusters(arrays["centres"], arrays["shares"], arrays["inertia"], meta, False, seconds)
    try:
        ResultCache(store).save(k, params.key(), meta, arrays, replace=recompute)
    except OSError as exc:  # a read-only store: the result serves this render only
        found.warnings.append(not_cached(store, exc))
    return found


def not_cached(store: FrameStore, exc: OSError) -> str:
    """The warning for a result the store could not keep."""
    return (
        f"the result could not be cached in {store.path} ({exc.strerror or exc}); the next "
        "render will compute it again"
    )
