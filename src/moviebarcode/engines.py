"""Clustering engines: one interface over the ways of running k-means on frames.

This module owns the choice of backend. Every engine clusters a batch of frames'
pixels, (F, P, 3) float32, into ``k`` colours per frame and returns a
:class:`~moviebarcode.kmeans.KMeansResult`:

- ``numpy``: :func:`~moviebarcode.kmeans.batched_kmeans` on the CPU (the default);
- ``sklearn``: scikit-learn's ``KMeans``, frame by frame (the reference; slow);
- ``cupy``: :func:`~moviebarcode.kmeans.batched_kmeans` on an NVIDIA GPU with CuPy;
- ``cuml``: RAPIDS cuML's ``KMeans``, frame by frame on the GPU.

Importing this module never imports scikit-learn, CuPy or cuML: engines import their
library when they are created, and raise :class:`~moviebarcode.errors.MoviebarcodeError`
with a one-line message when it is missing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import threadpoolctl

from moviebarcode._xp import get_xp, to_host
from moviebarcode.alloc import keep_freed_memory
from moviebarcode.errors import MoviebarcodeError
from moviebarcode.kmeans import KMeansConfig, KMeansResult, batched_kmeans, weighted_kmeans

Array = Any
"""A NumPy or CuPy array."""


class Engine(Protocol):
    """A way of clustering the pixels of a batch of frames."""

    name: str

    def fit(self, pixels: Array, k: int, config: KMeansConfig) -> KMeansResult:
        """Cluster ``pixels`` (F, P, 3) float32 into ``k`` colours per frame. The frame-by-frame
        engines read ``n_init``, ``max_iter``, ``tol`` and ``seed`` of ``config``; the batched
        ones all of it, and take ``segments`` too."""
        ...


Segments = Sequence[tuple[int, int]]
"""``(frames, seed)`` of independent batches stacked in one call (see
:func:`~moviebarcode.kmeans.batched_kmeans`): the batched engines take them as ``segments``."""


class NumpyEngine:
    """:func:`batched_kmeans` on NumPy arrays, on the CPU."""

    name = "numpy"

    def __init__(self, n_threads: int | None = None) -> None:
        self.n_threads = n_threads  # None: one per CPU

    def fit(
        self, pixels: Array, k: int, config: KMeansConfig, *, segments: Segments | None = None
    ) -> KMeansResult:
        x = _host32(pixels)
        with _one_blas_thread():
            return batched_kmeans(x, k, config, xp=np, n_threads=self.n_threads, segments=segments)

    def fit_weighted(
        self,
        points: Array,
        weights: Array,
        k: int,
        config: KMeansConfig,
        *,
        segments: Segments | None = None,
    ) -> KMeansResult:
        x, w = _host32(points), _host32(weights)
        with _one_blas_thread():
            return weighted_kmeans(
                x, w, k, config, xp=np, n_threads=self.n_threads, segments=segments
            )


@functools.cache
def _blas() -> threadpoolctl.ThreadpoolController:
    """The BLAS libraries NumPy loaded, found once per process."""
    return threadpoolctl.ThreadpoolController()


def _one_blas_thread():
    """A context for the numpy engine's calls: memory freed by earlier batches kept for
    reuse, and BLAS on one thread. The engine's own threads (or processes) are the
    parallelism: BLAS threads on top of them oversubscribe the CPUs (the README's benchmark
    section says how much)."""
    keep_freed_memory()
    return _blas().limit(limits=1, user_api="blas")


def _host32(a: Array) -> np.ndarray:
    """``a`` on the host as float32 (copied from the device when it is a CuPy array)."""
    return np.asarray(to_host(a), dtype=np.float32)


def _estimator_args(k: int, config: KMeansConfig) -> dict:
    """The arguments of a scikit-learn-style ``KMeans`` (scikit-learn's, cuML's) for ``k``
    colours as ``config`` asks: k-means++ starts, ``n_init``, ``max_iter``, ``tol``, seed."""
    return {
        "n_clusters": k,
        "init": "k-means++",
        "n_init": config.n_init,
        "max_iter": config.max_iter,
        "tol": config.tol,
        "random_state": config.seed,
    }


class SklearnEngine:
    """scikit-learn's ``KMeans(init='k-means++')``, frame by frame: the reference."""

    name = "sklearn"

    def __init__(self) -> None:
        try:
            from sklearn.cluster import KMeans
        except ImportError as exc:
            raise MoviebarcodeError(
                "the sklearn engine needs scikit-learn: pip install 'moviebarcode[sklearn]'"
            ) from exc
        self._kmeans = KMeans

    def fit(self, pixels: Array, k: int, config: KMeansConfig) -> KMeansResult:
        import warnings

        x = _host32(pixels)

        def fit_frame(frame):
            km = self._kmeans(**_estimator_args(k, config))
            with warnings.catch_warnings():
                # "Number of distinct clusters found smaller than n_clusters".
                warnings.simplefilter("ignore")
                km.fit(frame)
            return km

        return _frame_by_frame(x, k, fit_frame)

    def fit_weighted(
        self, points: Array, weights: Array, k: int, config: KMeansConfig
    ) -> KMeansResult:
        """scikit-learn's ``KMeans`` on each point set, with ``sample_weight``."""
        import warnings

        x, w = _host32(points), _host32(weights)

        def fit_set(pts, weight):
            km = self._kmeans(**_estimator_args(k, config))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer distinct points than k
                km.fit(pts, sample_weight=weight)
            return km

        return _weighted_set_by_set(x, w, k, fit_set)


class CupyEngine:
    """:func:`batched_kmeans` on CuPy arrays, on an NVIDIA GPU; results stay on the GPU."""

    name = "cupy"

    def __init__(self) -> None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device")
        except Exception as exc:  # ImportError, or CUDA errors when there is no GPU
            raise MoviebarcodeError(
                "the cupy engine needs CuPy and an NVIDIA GPU: "
                f"pip install 'moviebarcode[gpu]' ({type(exc).__name__}: {exc})"
            ) from exc
        self._cupy = cupy

    def fit(
        self, pixels: Array, k: int, config: KMeansConfig, *, segments: Segments | None = None
    ) -> KMeansResult:
        """As :func:`batched_kmeans`; where the GPU runs out of memory for several
        ``segments``, each half of them is clustered in turn (same results)."""
        cp = self._cupy
        x = cp.asarray(pixels, dtype=cp.float32)
        try:
            return batched_kmeans(x, k, config, xp=cp, segments=segments)
        except cp.cuda.memory.OutOfMemoryError:
            if not segments or len(segments) < 2:
                raise
        cp.get_default_memory_pool().free_all_blocks()
        half = len(segments) // 2
        cut = sum(n for n, _ in segments[:half])
        parts = [(x[:cut], segments[:half]), (x[cut:], segments[half:])]
        done = [self.fit(p, k, config, segments=seg) for p, seg in parts]
        return KMeansResult(
            *(
                cp.concatenate([getattr(r, f.name) for r in done])
                for f in dataclasses.fields(KMeansResult)
            )
        )

    def fit_weighted(
        self,
        points: Array,
        weights: Array,
        k: int,
        config: KMeansConfig,
        *,
        segments: Segments | None = None,
    ) -> KMeansResult:
        """As :func:`~moviebarcode.kmeans.weighted_kmeans`, on the GPU."""
        cp = self._cupy
        x, w = cp.asarray(points, dtype=cp.float32), cp.asarray(weights, dtype=cp.float32)
        return weighted_kmeans(x, w, k, config, xp=cp, segments=segments)


class CumlEngine:
    """RAPIDS cuML's ``KMeans``, frame by frame on the GPU; results are NumPy arrays."""

    name = "cuml"

    def __init__(self) -> None:
        try:
            import cupy
            from cuml.cluster import KMeans
        except Exception as exc:
            raise MoviebarcodeError(
                "the cuml engine needs RAPIDS cuML and an NVIDIA GPU: "
                f"pip install 'moviebarcode[gpu]' ({type(exc).__name__}: {exc})"
            ) from exc
        self._cupy = cupy
        self._kmeans = KMeans

    def fit(self, pixels: Array, k: int, config: KMeansConfig) -> KMeansResult:
        cp = self._cupy
        x = cp.asarray(pixels, dtype=cp.float32)

        def fit_frame(frame):
            km = self._kmeans(**_estimator_args(k, config), output_type="numpy")
            km.fit(frame)
            return km

        return _frame_by_frame(x, k, fit_frame)

    def fit_weighted(
        self, points: Array, weights: Array, k: int, config: KMeansConfig
    ) -> KMeansResult:
        """cuML's ``KMeans`` on each point set, with ``sample_weight``."""
        cp = self._cupy
        x, w = cp.asarray(points, dtype=cp.float32), cp.asarray(weights, dtype=cp.float32)

        def fit_set(pts, weight):
            km = self._kmeans(**_estimator_args(k, config), output_type="numpy")
            km.fit(pts, sample_weight=weight)
            return km

        return _weighted_set_by_set(x, w, k, fit_set)


def _frame_by_frame(x: Array, k: int, fit_frame: Callable[[Array], Any]) -> KMeansResult:
    """Fit each frame of ``x`` (F, P, 3) alone with ``fit_frame`` (which returns a fitted
    scikit-learn-style ``KMeans``), gathering centres, pixel shares, inertia and iterations
    as NumPy arrays."""
    n_frames, n_pixels, _ = x.shape
    centres = np.zeros((n_frames, k, 3), dtype=np.float32)
    shares = np.zeros((n_frames, k), dtype=np.float32)
    inertia = np.zeros(n_frames, dtype=np.float64)
    n_iter = np.zeros(n_frames, dtype=np.int32)
    for f in range(n_frames):
        km = fit_frame(x[f])
        labels = np.asarray(km.labels_).astype(np.int64)
        centres[f] = np.asarray(km.cluster_centers_)
        shares[f] = np.bincount(labels, minlength=k) / n_pixels
        inertia[f] = float(km.inertia_)
        n_iter[f] = int(km.n_iter_)
    return KMeansResult(centres=centres, shares=shares, inertia=inertia, n_iter=n_iter)


def _weighted_set_by_set(x: Array, w: Array, k: int, fit_set: Callable) -> KMeansResult:
    """Fit each weighted point set of ``x`` (S, N, 3), weights ``w`` (S, N), alone with
    ``fit_set(points, weights)`` (a fitted scikit-learn-style ``KMeans``), its weight-0
    points left out (a set of fewer than ``k`` points gets weight-0 copies of its first, as
    these libraries need ``k`` points); shares are of the set's weight, inertia weighted."""
    n_sets = x.shape[0]
    xp = get_xp(x)
    centres = np.zeros((n_sets, k, 3), dtype=np.float32)
    shares = np.zeros((n_sets, k), dtype=np.float32)
    inertia = np.zeros(n_sets, dtype=np.float64)
    n_iter = np.zeros(n_sets, dtype=np.int32)
    for i in range(n_sets):
        keep = w[i] > 0
        pts, weight = x[i][keep], w[i][keep]
        m = len(pts)
        if m < k:
            rows = np.where(np.arange(k) < m, np.arange(k), 0)
            real = xp.asarray(np.arange(k) < m, dtype=weight.dtype)
            pts, weight = pts[rows], weight[rows] * real
        km = fit_set(pts, weight)
        labels = np.asarray(km.labels_).astype(np.int64)
        host_w = to_host(weight).astype(np.float64)
        centres[i] = np.asarray(km.cluster_centers_)
        shares[i] = np.bincount(labels, weights=host_w, minlength=k) / host_w.sum()
        inertia[i] = float(km.inertia_)
        n_iter[i] = int(km.n_iter_)
    return KMeansResult(centres=centres, shares=shares, inertia=inertia, n_iter=n_iter)


_ENGINES: dict[str, type] = {
    "numpy": NumpyEngine,
    "sklearn": SklearnEngine,
    "cupy": CupyEngine,
    "cuml": CumlEngine,
}


def available_engines() -> list[str]:
    """Names of all engines, usable or not (``get_engine`` says why one is not)."""
    return list(_ENGINES)


def get_engine(name: str) -> Engine:
    """The engine called ``name``: "numpy", "sklearn", "cupy" or "cuml".

    Raises
    ------
    MoviebarcodeError
        If the name is unknown, or the engine's library (or GPU) is missing.
    """
    try:
        cls = _ENGINES[name]
    except KeyError:
        raise MoviebarcodeError(
            f"unknown clustering engine {name!r}; choose one of {', '.join(_ENGINES)}"
        ) from None
    return cls()
