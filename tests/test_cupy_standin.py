"""The CuPy code paths, run on the CPU with a NumPy-backed stand-in for ``cupy``
(tests/cupy_standin.py): no implicit copy to the host, no host array mixed into device
expressions, and the same results as NumPy, bit for bit (the stand-in computes with NumPy,
so any difference is a path taken only for CuPy). Speed, memory and CUDA itself are left to
the gpu-marked tests, on a real GPU."""

from __future__ import annotations

import dataclasses
import sys

import cupy_standin
import numpy as np
import pytest

from moviebarcode import colorspace, columns, device, engines
from moviebarcode._xp import get_xp, to_host
from moviebarcode.cluster import ClusterParams, cluster, cluster_batch, stack_ranges
from moviebarcode.engines import CupyEngine, NumpyEngine
from moviebarcode.kmeans import KMeansConfig, batched_kmeans
from moviebarcode.store import FrameStore

STORE_ATTRS = {
    "source": {"path": "film.mkv", "fingerprint": {}},
    "request": {},
    "sampling": {"every": 12, "fps": None, "keyframes": False, "max_frames": None},
    "picture": {"crop": None, "tonemap": False, "fast": False},
}


@pytest.fixture
def cp(monkeypatch):
    """The stand-in, installed as ``cupy`` for this test only."""
    monkeypatch.setitem(sys.modules, "cupy", cupy_standin)
    return cupy_standin


def film(n: int = 12, h: int = 30, w: int = 40) -> np.ndarray:
    """``n`` deterministic film-like frames (n, h, w, 3) uint8: two shots of sky over ground in
    graded light, a bright blob crossing them, and grain."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    frames = np.empty((n, h, w, 3))
    for f in range(n):
        t = f / n
        second = f >= n // 2
        sky = np.array([200, 120, 40] if second else [40, 90, 200])
        ground = np.array([30, 30, 60] if second else [60, 140, 50])
        above = (yy < 0.45 + 0.1 * np.sin(6 * xx + 3 * t))[..., None]
        shade = 0.6 + 0.4 * xx[..., None] * (1 - 0.5 * yy[..., None])
        frames[f] = np.where(above, sky, ground) * shade
        blob = ((yy - 0.5) ** 2 + (xx - t) ** 2 < 0.02)[..., None]
        frames[f] = np.where(blob, [250, 230, 180], frames[f])
    frames += np.random.default_rng(7).normal(0.0, 6.0, frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def assert_identical(got, ref, what: str = "") -> None:
    """``got`` (a NumPy array) is ``ref``, bit for bit."""
    assert isinstance(got, np.ndarray), what
    np.testing.assert_array_equal(got, ref, err_msg=what)
    assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes(), what


def test_the_standin_is_installed_only_by_the_fixture():
    assert sys.modules.get("cupy") is not cupy_standin


def test_the_standin_refuses_implicit_conversion_and_mixing(cp):
    a = cp.asarray(np.arange(6.0).reshape(2, 3))
    host = np.ones(3)
    implicit = "Implicit conversion to a NumPy array is not allowed"
    for convert in (np.asarray, np.array, np.asanyarray, lambda x: x.__array__()):
        with pytest.raises(TypeError, match=implicit):
            convert(a)
    with pytest.raises(TypeError, match=implicit):
        np.array([a, a])
    mixes = [
        lambda: a + host,
        lambda: host * a,
        lambda: a < host,
        lambda: np.add(a, host),
        lambda: cp.maximum(a, host),
        lambda: cp.concatenate([a, host[None]]),
        lambda: np.concatenate([a, host[None]]),
        lambda: cp.where(a > 1, host, a),
        lambda: cp.matmul(a, host),
        lambda: a + [1.0, 2.0, 3.0],
    ]
    for mix in mixes:
        with pytest.raises(TypeError):
            mix()
    with pytest.raises(ValueError):
        a[:] = np.zeros((2, 3))  # CuPy fills basic slices with scalars only
    with pytest.raises(ValueError):
        cp.repeat(a, cp.asarray([1, 2]), axis=0)
    with pytest.raises(ValueError):
        cp.argsort(a, kind="quicksort")  # CuPy sorts are stable, and take no other kind
    # What CuPy allows: scalars, host data moved in, host indices, explicit copies out.
    assert isinstance(a * 2 + np.float32(1) - np.array(0.5), cp.ndarray)
    assert int(cp.sum(a)) == 15 and float(a[1, 2]) == 5.0 and bool(cp.any(a > 4))
    assert isinstance(cp.sum(a), cp.ndarray) and isinstance(np.sum(a), cp.ndarray)
    np.testing.assert_array_equal(a[np.array([1, 0])].get(), [[3, 4, 5], [0, 1, 2]])
    a[np.array([0]), 0] = np.array([7.0])
    a[1, :] += cp.asarray(host)
    np.testing.assert_array_equal(cp.asnumpy(a), [[7, 1, 2], [4, 5, 6]])
    assert get_xp(a) is cp and isinstance(to_host(a), np.ndarray)
    with pytest.raises(TypeError):
        get_xp(a, host)


KMEANS_CASES = {  # name: (config, frames, k); NumPy and the stand-in both cluster one block
    "default": (KMeansConfig(), (12, 30, 40), 5),
    "no-coreset": (KMeansConfig(coreset=False), (3, 8, 10), 5),
    "no-neighbours": (KMeansConfig(neighbours=0), (12, 30, 40), 5),
}


@pytest.mark.parametrize("case", list(KMEANS_CASES))
def test_batched_kmeans_on_the_device_is_the_numpy_run(cp, case):
    config, shape, k = KMEANS_CASES[case]
    frames = film(*shape)
    pixels = frames.reshape(len(frames), -1, 3).astype(np.float32)
    ref = batched_kmeans(pixels, k, config, n_threads=1)
    got = batched_kmeans(cp.asarray(pixels), k, config)
    for field in dataclasses.fields(got):
        value = getattr(got, field.name)
        assert isinstance(value, cp.ndarray), field.name
        assert_identical(value.get(), getattr(ref, field.name), field.name)


def test_colour_helpers_on_the_device_match_numpy(cp):
    frames = film(4, 12, 16)
    rgb = frames.reshape(-1, 3).astype(np.float32)
    lab = colorspace.srgb_to_lab(rgb)
    got_lab = colorspace.srgb_to_lab(cp.asarray(rgb))
    assert isinstance(got_lab, cp.ndarray)
    assert_identical(got_lab.get(), lab, "srgb_to_lab")
    back = colorspace.lab_to_srgb(cp.asarray(lab))
    assert_identical(back.get(), colorspace.lab_to_srgb(lab), "lab_to_srgb")
    on_device = cp.asarray(frames)
    for reduce in (columns.average_colours, columns.squeeze_columns):
        for gamma in (True, False):
            what = f"{reduce.__name__}(gamma_correct={gamma})"
            got = reduce(on_device, gamma_correct=gamma)
            assert_identical(got, reduce(frames, gamma_correct=gamma), what)
    assert_identical(columns.to_uint8(cp.asarray(rgb)).get(), columns.to_uint8(rgb), "to_uint8")


@pytest.mark.parametrize(
    ("space", "shape"),
    [
        ("rgb", (12, 60, 80)),  # 4800 pixels a frame: NumPy too clusters all 12 in one block
        ("lab", (12, 60, 80)),
        # 10800 pixels a frame: NumPy clusters 10 frames a block (two blocks), CuPy all 12.
        ("rgb", (12, 90, 120)),
    ],
)
def test_cluster_batch_on_the_device_matches_numpy(cp, space, shape):
    frames = film(*shape)
    params = ClusterParams(k=4, space=space)
    ref = cluster_batch(frames, 0, params, NumpyEngine(n_threads=1))
    got = cluster_batch(cp.asarray(frames), 0, params, CupyEngine())
    for name, g, r in zip(("centres", "shares", "inertia"), got, ref, strict=True):
        assert_identical(g, r, name)


def test_select_device_gpu_finds_the_standin(cp):
    device.gpu_status.cache_clear()
    try:
        dev = device.select_device("gpu")
    finally:
        device.gpu_status.cache_clear()
    assert dev.kind == "gpu" and dev.xp is cp
    assert dev.reason == "GPU 0: NumPy stand-in for CuPy"


def film_store(path, n: int = 14, chunk_frames: int = 2) -> FrameStore:
    """A complete store of ``n`` frames of :func:`film`, in chunks of ``chunk_frames``."""
    frames = film(n, 18, 24)
    store = FrameStore.create(
        path, frame_shape=frames.shape[1:3], chunk_frames=chunk_frames, attrs=STORE_ATTRS
    )
    store.append(frames, np.arange(n) / 2.0, np.arange(n) * 12)
    store.mark_complete()
    return FrameStore.open(path)


def test_cupy_stacks_the_batches_with_the_cpu_results(cp, tmp_path, monkeypatch):
    """The cupy engine clusters many batches in one call (a GPU's kernels cost the same for
    few frames as for many), each as its own batch: the result is the CPU's, and where the
    GPU runs out of memory the call is split, with the same result again."""
    monkeypatch.setattr(device, "gpu_status", lambda: (True, "GPU 0: stand-in"))
    store = film_store(tmp_path / "s.zarr")
    ref = cluster(store, ClusterParams(k=3, engine="numpy"), recompute=True, batch_frames=4)
    assert ref.params["executor"]["tasks"] == 4  # ranges of 4, 4, 4 and 2 frames
    got = cluster(store, ClusterParams(k=3, engine="cupy"), recompute=True, batch_frames=4)
    assert got.params["device"] == "gpu" and got.params["executor"]["tasks"] == 1
    for name in ("centres", "shares", "inertia"):
        assert_identical(getattr(got, name), getattr(ref, name), name)
    # Out of memory for more than one batch: halves, then single batches.
    real = engines.batched_kmeans
    calls = []

    def small_gpu(x, *args, segments=None, **kwargs):
        calls.append(len(segments or [1]))
        if segments and len(segments) > 1:
            raise cp.cuda.memory.OutOfMemoryError("out of memory")
        return real(x, *args, segments=segments, **kwargs)

    monkeypatch.setattr(engines, "batched_kmeans", small_gpu)
    split = cluster(store, ClusterParams(k=3, engine="cupy"), recompute=True, batch_frames=4)
    assert calls == [4, 2, 1, 1, 2, 1, 1]
    for name in ("centres", "shares", "inertia"):
        assert_identical(getattr(split, name), getattr(ref, name), name)


def test_gpu_calls_fit_the_budget():
    ranges = [(0, 4), (4, 8), (8, 12), (12, 14)]
    assert stack_ranges(ranges, 10, 80) == [[(0, 4), (4, 8)], [(8, 12), (12, 14)]]
    assert stack_ranges(ranges, 10, 1000) == [ranges]
    # a batch larger than the budget still runs, alone
    assert stack_ranges(ranges, 10, 5) == [[r] for r in ranges]


def test_cupy_reads_the_next_call_while_clustering(cp, tmp_path, monkeypatch):
    """On the GPU the next call's frames are read on a thread while this call clusters; the
    result is the same as reading them in turn."""
    import threading

    from moviebarcode import cluster as cluster_mod

    monkeypatch.setattr(device, "gpu_status", lambda: (True, "GPU 0: stand-in"))
    store = film_store(tmp_path / "s.zarr")
    # room for two ranges of 4 frames a call: 2 calls
    frame_bytes = 18 * 24 * 8 * 16
    monkeypatch.setattr(cp, "FREE_BYTES", 2 * 8 * frame_bytes)
    readers = []
    real_read = cluster_mod.timed_read

    def read(*args):
        readers.append(threading.current_thread())
        return real_read(*args)

    monkeypatch.setattr(cluster_mod, "timed_read", read)
    ref = cluster(store, ClusterParams(k=3, engine="numpy"), recompute=True, batch_frames=4)
    readers.clear()
    got = cluster(store, ClusterParams(k=3, engine="cupy"), recompute=True, batch_frames=4)
    assert got.params["executor"] == {"name": "in-process, read-ahead", "workers": 1, "tasks": 2}
    assert len(readers) == 2 and threading.current_thread() not in readers
    for name in ("centres", "shares", "inertia"):
        assert_identical(getattr(got, name), getattr(ref, name), name)
