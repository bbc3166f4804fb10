"""Tests of moviebarcode.engines: one interface over numpy, sklearn, cupy and cuml."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from moviebarcode._xp import to_host
from moviebarcode.engines import available_engines, get_engine
from moviebarcode.errors import MoviebarcodeError
from moviebarcode.kmeans import KMeansConfig

FIT = KMeansConfig(n_init=3, max_iter=100, tol=1e-4, seed=0)


def synthetic_frames(n_frames: int = 4, n_pixels: int = 3000) -> np.ndarray:
    """Frames of a few noisy colour blobs, (F, P, 3) float32 0-255."""
    rng = np.random.default_rng(42)
    frames = []
    for _ in range(n_frames):
        means = rng.uniform(20, 235, (5, 3))
        which = rng.integers(0, 5, n_pixels)
        frames.append(np.clip(means[which] + rng.normal(0, 8, (n_pixels, 3)), 0, 255))
    return np.asarray(frames, dtype=np.float32)


def test_available_engines():
    assert available_engines() == ["numpy", "sklearn", "cupy", "cuml"]


def test_unknown_engine():
    with pytest.raises(MoviebarcodeError, match="unknown clustering engine 'nope'"):
        get_engine("nope")


def test_importing_engines_imports_no_optional_library():
    code = (
        "import sys, moviebarcode.engines\n"
        "bad = [m for m in ('cupy', 'cuml', 'sklearn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_and_sklearn_agree():
    pytest.importorskip("sklearn")
    pixels = synthetic_frames()
    np_res = get_engine("numpy").fit(pixels, 5, FIT)
    sk_res = get_engine("sklearn").fit(pixels, 5, FIT)
    assert get_engine("numpy").name == "numpy" and get_engine("sklearn").name == "sklearn"
    for r in (np_res, sk_res):
        assert r.centres.shape == (4, 5, 3) and r.centres.dtype == np.float32
        assert r.shares.shape == (4, 5) and r.shares.dtype == np.float32
        assert r.inertia.shape == (4,) and r.inertia.dtype == np.float64
        assert r.n_iter.shape == (4,) and r.n_iter.dtype == np.int32
        np.testing.assert_allclose(r.shares.sum(axis=1), 1.0, rtol=1e-5)
    # Well-separated blobs: both find the same clusters.
    np.testing.assert_allclose(np_res.inertia, sk_res.inertia, rtol=0.01)
    for f in range(4):
        a = np_res.centres[f][np.lexsort(np_res.centres[f].T)]
        b = sk_res.centres[f][np.lexsort(sk_res.centres[f].T)]
        np.testing.assert_allclose(a, b, atol=1.0)
        np.testing.assert_allclose(np.sort(np_res.shares[f]), np.sort(sk_res.shares[f]), atol=1e-3)


def test_sklearn_engine_solid_frame():
    pytest.importorskip("sklearn")
    pixels = np.full((1, 200, 3), 99.0, dtype=np.float32)
    r = get_engine("sklearn").fit(pixels, 4, FIT)
    assert r.shares[0].max() == pytest.approx(1.0)
    assert not np.any(np.isnan(r.centres))


def test_sklearn_missing_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(MoviebarcodeError, match=r"pip install 'moviebarcode\[sklearn\]'"):
        get_engine("sklearn")


def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.skipif(_gpu_available(), reason="CuPy with a GPU is available here")
def test_cupy_engine_errors_without_gpu():
    with pytest.raises(MoviebarcodeError, match="cupy engine needs CuPy"):
        get_engine("cupy")


@pytest.mark.skipif(
    _gpu_available() and importlib.util.find_spec("cuml") is not None,
    reason="cuML with a GPU is available here",
)
def test_cuml_engine_errors_without_cuml():
    with pytest.raises(MoviebarcodeError, match="cuml engine needs RAPIDS cuML"):
        get_engine("cuml")


@pytest.mark.gpu
def test_cupy_engine_matches_numpy():
    if not _gpu_available():
        pytest.skip("CuPy with a GPU is not available")
    pixels = synthetic_frames(n_frames=6)
    ref = get_engine("numpy").fit(pixels, 5, FIT)
    got = get_engine("cupy").fit(pixels, 5, FIT)
    np.testing.assert_allclose(to_host(got.inertia), ref.inertia, rtol=5e-3)
    np.testing.assert_allclose(to_host(got.centres), ref.centres, atol=0.05)
    np.testing.assert_allclose(to_host(got.shares), ref.shares, atol=1e-3)


ALLOC_PROBE = """
import resource, sys
import numpy as np
from moviebarcode.alloc import keep_freed_memory
from moviebarcode.kmeans import batched_kmeans
tuned = keep_freed_memory() if sys.argv[1] == "tune" else False
rng = np.random.default_rng(0)
# film-like frames: smooth colour gradients plus a little noise
g = np.linspace(0, 1, 14400, dtype=np.float32)[None, :, None]
x = rng.uniform(0, 128, (64, 1, 3)) + g * rng.uniform(0, 127, (64, 1, 3))
x = (x + rng.normal(0, 2, (64, 14400, 3))).astype(np.float32)
batched_kmeans(x[:8], 8, n_threads=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
batched_kmeans(x, 8, n_threads=1)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_allocator_tuning_cuts_page_faults():
    """keep_freed_memory: freed temporaries are reused, so a k-means run page-faults far less;
    MOVIEBARCODE_MALLOC_TUNE=0 turns it off."""

    def probe(arg, **env):
        out = subprocess.run(
            [sys.executable, "-c", ALLOC_PROBE, arg],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **env},
        ).stdout.split()
        return out[0] == "True", int(out[1])

    tuned, faults_tuned = probe("tune")
    if not tuned:
        pytest.skip("not glibc")
    _, faults_plain = probe("plain")
    assert faults_tuned * 3 < faults_plain, (faults_tuned, faults_plain)
    assert probe("tune", MOVIEBARCODE_MALLOC_TUNE="0")[0] is False
