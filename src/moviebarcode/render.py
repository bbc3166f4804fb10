"""Stage two: from a complete frame store to a barcode image (and optionally a palette file).

Never decodes: it reads only the store. Clusterings are cached in the store (see store.py), so
rendering again with another mode, size, sort or label reuses them; another k adds a result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from moviebarcode import columns as cols
from moviebarcode.arrays import Device, LoadStats, batches, select_device, to_numpy
from moviebarcode.colorspace import lab_to_srgb, srgb_to_lab
from moviebarcode.engines import Engine, get_engine
from moviebarcode.errors import InputError
from moviebarcode.image import add_labels, barcode_image, default_height, save_png
from moviebarcode.kmeans import ALGORITHM_VERSION, DEFAULT_N_INIT, get_xp
from moviebarcode.palette import write_palette
from moviebarcode.store import FrameStore

MODES = ("average", "squeeze", "dominant", "stacked", "least", "equal")
CLUSTER_MODES = ("dominant", "stacked", "least", "equal")
SPACES = ("rgb", "lab")
SORTS = ("share", "lightness", "hue")
# memory for one clustering batch: about F * P * max(k, 8) float32 distances, several times over
BATCH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ClusterParams:
    """What determines a clustering result (the engine does not: results are interchangeable)."""

    k: int = 8
    space: str = "rgb"
    n_init: int = DEFAULT_N_INIT
    max_iter: int = 100
    tol: float = 1e-4
    seed: int = 0

    def key(self) -> str:
        """The result's name in the store, under results/k{k}/. It names the clustering
        algorithm's version, so a store clustered by an older moviebarcode recomputes."""
        return (
            f"{self.space}-ninit{self.n_init}-iter{self.max_iter}-tol{self.tol:g}-seed{self.seed}"
            f"-v{ALGORITHM_VERSION}"
        )


@dataclass(frozen=True)
class RenderOptions:
    mode: str = "stacked"
    cluster: ClusterParams = field(default_factory=ClusterParams)
    engine: str | None = None  # None: cupy on a GPU, numpy on the CPU
    device: str = "auto"
    sort: str = "share"
    width: int | None = None
    height: int | None = None
    gamma_correct: bool = True
    label: bool = False
    title: str | None = None
    palette: Path | None = None
    recompute: bool = False
    batch_frames: int | None = None
    scheduler: str | None = None  # cluster on this Dask scheduler's workers (see batch.py)
    jobs: int | None = None  # numpy engine: processes clustering batches (None: this one)


@dataclass
class Clusters:
    """A clustering of every frame: centres (n, k, 3) float32 sRGB 0..255, shares (n, k) float32,
    inertia (n,) float64 in the clustering space, and how it was obtained."""

    centres: np.ndarray
    shares: np.ndarray
    inertia: np.ndarray
    params: dict
    cached: bool
    seconds: float = 0.0


@dataclass
class RenderResult:
    image: Path
    palette: Path | None
    clusters: Clusters | None
    seconds: float
    load: LoadStats | None = None


Progress = Callable[[int], None]  # frames done


def image_file_name(stem: str, opts: RenderOptions) -> str:
    """<stem>-<mode>[-k<k>][-lab].png"""
    tag = opts.mode if opts.mode not in CLUSTER_MODES else f"{opts.mode}-k{opts.cluster.k}"
    if opts.cluster.space == "lab" and opts.mode in CLUSTER_MODES:
        tag += "-lab"
    return f"{stem}-{tag}.png"


def default_image_path(store: FrameStore, opts: RenderOptions) -> Path:
    """Next to the store, named after it and the mode."""
    return store.path.parent / image_file_name(store.path.name.removesuffix(".zarr"), opts)


def check_options(store: FrameStore, opts: RenderOptions) -> None:
    if opts.mode not in MODES:
        raise InputError(f"unknown mode {opts.mode!r}; choose one of {', '.join(MODES)}")
    c = opts.cluster
    h, w = store.frame_shape
    if c.k < 1:
        raise InputError("--k must be at least 1")
    if c.k > h * w:
        raise InputError(f"--k {c.k} is more than a frame's {h * w} pixels")
    if c.space not in SPACES:
        raise InputError(f"unknown colour space {c.space!r}; choose rgb or lab")
    if opts.sort not in SORTS:
        raise InputError(f"unknown sort {opts.sort!r}; choose one of {', '.join(SORTS)}")
    if c.n_init < 1 or c.max_iter < 1:
        raise InputError("--n-init and --max-iter must be at least 1")
    for name in ("width", "height"):
        v = getattr(opts, name)
        if v is not None and v < 1:
            raise InputError(f"--{name} must be at least 1")


def _batch_frames(store: FrameStore, k: int, wanted: int | None) -> int:
    if wanted:
        return wanted
    h, w = store.frame_shape
    per_frame = h * w * max(k, 8) * 4 * 4
    return max(1, min(4096, BATCH_BYTES // per_frame))


GPU_ENGINES = ("cupy", "cuml")


def resolve_engine(engine: str | None, device: str = "auto") -> tuple[str, Device]:
    """The engine and the device it runs on. No engine given: ``cupy`` on a GPU, else ``numpy``
    (``device`` auto: the GPU when CuPy sees one). The GPU engines need the GPU; the others run on
    the CPU whatever ``device`` says."""
    if engine in GPU_ENGINES:
        if device == "cpu":
            raise InputError(f"--engine {engine} runs on a GPU; not with --device cpu")
        return engine, select_device("gpu")
    if engine is None:
        dev = select_device(device)
        return ("cupy" if dev.kind == "gpu" else "numpy"), dev
    if device == "gpu":
        raise InputError(f"--engine {engine} runs on the CPU; use --engine cupy with --device gpu")
    return engine, select_device("cpu")


def cluster_batch(
    frames, start: int, params: ClusterParams, engine: Engine
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster one batch of frames (m, h, w, 3) uint8 (NumPy or CuPy) that begins at frame
    ``start`` of the store. The seed is ``params.seed + start``, so a film's result depends on
    its batches' boundaries, not on where or in which order they run.

    Returns centres (m, k, 3) float32 sRGB 0..255, shares (m, k) float32, inertia (m,) float64,
    as NumPy arrays."""
    xp = get_xp(frames)
    x = frames.reshape(len(frames), -1, 3).astype(xp.float32)
    if params.space == "lab":
        x = srgb_to_lab(x)
    res = engine.fit(
        x,
        params.k,
        n_init=params.n_init,
        max_iter=params.max_iter,
        tol=params.tol,
        seed=params.seed + start,
    )
    c = res.centres
    if params.space == "lab":
        c = lab_to_srgb(c)
    return to_numpy(c), to_numpy(res.shares), to_numpy(res.inertia)


def cached_clusters(store: FrameStore, params: ClusterParams) -> Clusters | None:
    """The clustering cached in ``store`` for ``params``, or None."""
    hit = store.load_result(params.k, params.key())
    if hit is None:
        return None
    return Clusters(hit["centres"], hit["shares"], hit["inertia"], hit["params"], True)


def cluster(
    store: FrameStore,
    params: ClusterParams,
    *,
    engine: str | None = "numpy",
    device: str = "auto",
    recompute: bool = False,
    batch_frames: int | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    load: LoadStats | None = None,
) -> Clusters:
    """The clustering of every frame of ``store`` with ``params``: from the store's cache, or
    computed by :func:`cluster_frames` and cached. ``load`` receives how the frames were read."""
    store.require_complete()
    if not recompute and (hit := cached_clusters(store, params)) is not None:
        return hit
    t0 = time.perf_counter()
    centres, shares, inertia, meta = cluster_frames(
        store,
        params,
        engine=engine,
        device=device,
        batch_frames=batch_frames,
        jobs=jobs,
        progress=progress,
        load=load,
    )
    seconds = time.perf_counter() - t0
    meta["seconds"] = round(seconds, 3)
    store.save_result(params.k, params.key(), meta, centres, shares, inertia, replace=recompute)
    return Clusters(centres, shares, inertia, meta, False, seconds)


def default_jobs() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cluster_frames(
    store: FrameStore,
    params: ClusterParams,
    *,
    engine: str | None = "numpy",
    device: str = "auto",
    batch_frames: int | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    load: LoadStats | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Cluster every frame of ``store`` with ``engine`` (None: chosen by ``device``, see
    ``resolve_engine``), batch by batch (memory bounded by the batch, not the film), without
    looking at or writing the cache. With ``jobs`` > 1 the numpy engine runs whole batches
    in that many worker processes (the CLI's default: :func:`default_jobs`); None or 1: in
    this process, on threads. The result is the same whatever ``jobs``, since each batch is
    clustered alone with its own seed. Worker processes are forked where that is safe (see
    :func:`worker_context`), else started with ``spawn``, which imports the calling script
    again: a script that passes ``jobs`` > 1 should keep its work under
    ``if __name__ == "__main__":``.

    Returns centres (n, k, 3) float32 sRGB, shares (n, k), inertia (n,) and the result's
    metadata."""
    name, dev = resolve_engine(engine, device)
    n = store.frames_done
    k = params.k
    centres = np.empty((n, k, 3), np.float32)
    shares = np.empty((n, k), np.float32)
    inertia = np.empty(n, np.float64)
    step = _batch_frames(store, k, batch_frames)
    ranges = list(store.batch_ranges(step))
    jobs = 1 if jobs is None else max(1, int(jobs))
    if name == "numpy" and jobs > 1 and len(ranges) > 1:
        results = _cluster_in_processes(store, ranges, params, min(jobs, len(ranges)), load)
    else:
        eng = get_engine(name)

        def in_process():
            for start, frames in batches(store, step, dev, load):
                yield start, cluster_batch(frames, start, params, eng)

        results = in_process()
    for start, (c, sh, ine) in results:
        sl = slice(start, start + len(ine))
        centres[sl], shares[sl], inertia[sl] = c, sh, ine
        if progress:
            progress(start + len(ine))
    meta = {
        **asdict(params),
        "engine": name,
        "device": dev.kind,
        "frames": n,
        "centres_space": "srgb",
    }
    return centres, shares, inertia, meta


def _cluster_in_processes(
    store: FrameStore,
    ranges: list[tuple[int, int]],
    params: ClusterParams,
    workers: int,
    load: LoadStats | None,
):
    """Yield (start, cluster_batch result) for each range, in order, computed by ``workers``
    processes that read their batches from the store themselves (at most two batches in
    flight per worker)."""
    import itertools
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if load is not None:
        load.method = "zarr (worker processes)"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=worker_context())
    pending: deque = deque()
    todo = iter(ranges)

    def submit(count: int) -> None:
        for s, e in itertools.islice(todo, count):
            pending.append((s, pool.submit(_cluster_range, str(store.path), s, e, params)))

    try:
        submit(2 * workers)
        while pending:
            start, fut = pending.popleft()
            try:
                result = fut.result()
            except BrokenProcessPool:
                raise InputError(
                    "a clustering worker process died (out of memory, or a calling script "
                    "without `if __name__ == '__main__':`); try --jobs 1"
                ) from None
            submit(1)
            if load is not None:
                load.bytes += len(result[2]) * int(np.prod(store.frame_shape)) * 3
            yield start, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_FORK_SAFE_THREADS = ("zarr_io", "zarr_pool", "asyncio_")
"""Prefixes of the names of threads that may run while this process forks: zarr's IO loop and
its executors' threads, idle while the main thread forks, which a forked child never uses (zarr
drops its loop and executor in the child and makes new ones)."""


def worker_context():
    """The multiprocessing context for the clustering workers. ``fork`` on Linux when this is
    the main thread and the only others are known to be safe to fork over (zarr's IO loop and
    its executors, which zarr itself replaces in the child, and tqdm's progress monitor, which
    the child never uses): a forked worker starts at once, where a spawned one spends about
    half a second importing Python modules (several percent of a whole render). ``spawn``
    otherwise: other threads may hold locks the child would need, and macOS and Windows have
    no safe fork."""
    import multiprocessing
    import sys
    import threading

    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        try:
            from tqdm._monitor import TMonitor
        except ImportError:  # pragma: no cover - tqdm is a dependency
            TMonitor = ()  # noqa: N806
        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        if all(t.name.startswith(_FORK_SAFE_THREADS) or isinstance(t, TMonitor) for t in others):
            return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _cluster_range(path: str, start: int, stop: int, params: ClusterParams):
    """In a worker process: cluster frames [start, stop) of the store at ``path`` on one
    thread (the processes are the parallelism)."""
    from moviebarcode.engines import NumpyEngine

    frames = FrameStore.open(path).frames[start:stop]
    return cluster_batch(frames, start, params, NumpyEngine(n_threads=1))


def frame_columns(
    store: FrameStore,
    mode: str,
    *,
    gamma_correct: bool = True,
    batch_frames: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Per-frame statistics that need no clustering: ``average`` (n, 3) or ``squeeze`` (n, h, 3),
    float32 sRGB 0..255, computed batch by batch from the store once, then cached in it."""
    store.require_complete()
    name = f"{mode}-{'linear' if gamma_correct else 'naive'}"
    cached = store.load_stats(name)
    if cached is not None:
        return cached
    fn = cols.average_colours if mode == "average" else cols.squeeze_columns
    parts = []
    for start, frames in store.iter_batches(batch_frames or 512):
        parts.append(fn(frames, gamma_correct=gamma_correct))
        if progress:
            progress(start + len(frames))
    values = np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)
    store.save_stats(name, values, {"mode": mode, "gamma_correct": gamma_correct})
    return values


def render(
    store_path: str | os.PathLike,
    opts: RenderOptions,
    *,
    output: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> RenderResult:
    """Render the barcode of a complete store to a PNG (and the palette file if asked)."""
    t0 = time.perf_counter()
    store = FrameStore.open(store_path)
    store.require_complete()
    check_options(store, opts)
    out = Path(output) if output is not None else default_image_path(store, opts)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the barcode is written as PNG; give a .png file name")
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist")
    if opts.palette is not None and opts.palette.suffix.lower() not in (".json", ".csv"):
        raise InputError(f"{opts.palette}: the palette is written as .json or .csv")
    n = store.frames_done
    width = opts.width
    # squeeze keeps the frames' own height unless told; the others are 9/16 of the width
    height = opts.height or (None if opts.mode == "squeeze" else default_height(width or n))
    clusters = None
    load = LoadStats()
    if (opts.mode in CLUSTER_MODES or opts.palette is not None) and opts.scheduler:
        from moviebarcode.batch import distributed_cluster

        clusters = distributed_cluster(
            store.path,
            opts.cluster,
            opts.scheduler,
            engine=opts.engine,
            device=opts.device,
            recompute=opts.recompute,
            batch_frames=opts.batch_frames,
            progress=progress,
        )
    elif opts.mode in CLUSTER_MODES or opts.palette is not None:
        clusters = cluster(
            store,
            opts.cluster,
            engine=opts.engine,
            device=opts.device,
            load=load,
            recompute=opts.recompute,
            batch_frames=opts.batch_frames,
            jobs=opts.jobs,
            progress=progress,
        )
    if opts.mode in ("average", "squeeze"):
        columns = frame_columns(
            store,
            opts.mode,
            gamma_correct=opts.gamma_correct,
            batch_frames=opts.batch_frames,
            progress=None if clusters else progress,
        )
    elif opts.mode == "dominant":
        columns = cols.dominant(clusters.centres, clusters.shares)
    elif opts.mode == "least":
        columns = cols.least(clusters.centres, clusters.shares)
    else:
        columns = cols.stacked_columns(
            clusters.centres, clusters.shares, height, sort=opts.sort, equal=opts.mode == "equal"
        )
    img = barcode_image(columns, height=height, width=width)
    if opts.label:
        times = store.times
        meta = store.meta
        title = opts.title if opts.title is not None else Path(meta["source"]["path"]).stem
        span = float(times[-1] - times[0]) if n > 1 else 0.0
        step = span / (n - 1) if n > 1 else 0.0
        img = add_labels(img, title=title, duration=span + step, start=float(times[0]))
    save_png(img, out)
    if opts.palette is not None:
        write_palette(
            opts.palette,
            k=opts.cluster.k,
            space=opts.cluster.space,
            times=store.times,
            indices=store.indices,
            colours_srgb=clusters.centres,
            shares=clusters.shares,
        )
    return RenderResult(out, opts.palette, clusters, time.perf_counter() - t0, load)
