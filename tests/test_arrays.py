"""Device choice and frame loading. On this CPU-only machine: the selection logic, the loader
choice, the prefetching reader. The GPU checks (kvikio-loaded frames against zarr's own read,
the cupy engine against numpy, a whole render on the GPU) are marked gpu."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from moviebarcode import arrays
from moviebarcode.arrays import Device, LoadStats, batches, choose_loader, prefetch, select_device
from moviebarcode.errors import InputError, MoviebarcodeError
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.render import ClusterParams, cluster, resolve_engine
from moviebarcode.store import FrameStore

HAS_GPU = arrays.gpu_status()[0]


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("arr") / "s.zarr"
    return FrameStore.open(
        prep(clips["colours"], PrepRequest(every=4, chunk_frames=5), output=out).store
    )


def test_select_device_without_gpu(monkeypatch):
    monkeypatch.setattr(arrays, "gpu_status", lambda: (False, "CuPy sees no GPU"))
    assert select_device("auto").kind == "cpu" and select_device("auto").xp is np
    assert "no GPU" in select_device("auto").reason
    assert select_device("cpu").kind == "cpu"
    with pytest.raises(MoviebarcodeError, match="--device gpu: CuPy sees no GPU"):
        select_device("gpu")
    with pytest.raises(MoviebarcodeError, match="unknown device"):
        select_device("tpu")


def test_engine_follows_device(monkeypatch):
    monkeypatch.setattr(arrays, "gpu_status", lambda: (False, "no cupy"))
    assert resolve_engine(None, "auto")[0] == "numpy"
    assert resolve_engine("sklearn", "auto")[0] == "sklearn"
    with pytest.raises(MoviebarcodeError):
        resolve_engine("cupy", "auto")  # needs the GPU
    with pytest.raises(InputError, match="runs on a GPU"):
        resolve_engine("cuml", "cpu")
    with pytest.raises(InputError, match="runs on the CPU"):
        resolve_engine("numpy", "gpu")


def test_loader_choice():
    cpu, gpu = Device("cpu", np, ""), Device("gpu", np, "")
    assert choose_loader(cpu, None) == "zarr"
    assert choose_loader(cpu, "gds") == "zarr"
    assert choose_loader(gpu, "gds") == "kvikio-gds"
    assert choose_loader(gpu, "compat") == "kvikio-compat"
    assert choose_loader(gpu, None) == "zarr+copy"
    if not HAS_GPU:
        assert arrays.kvikio_mode() in (None, "gds", "compat")


def test_cpu_batches_are_the_store(store):
    stats = LoadStats()
    got = list(batches(store, 10, select_device("cpu"), stats))
    assert [s for s, _ in got] == [0, 10, 20, 30, 40][: len(got)]
    assert np.array_equal(np.concatenate([f for _, f in got]), store.frames[:])
    assert stats.method == "zarr" and stats.bytes == store.frames[:].nbytes


def test_prefetch_order_errors_and_overlap():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(prefetch(failing()))
    # the producer runs ahead while the consumer works
    produced = []

    def slow():
        for i in range(3):
            produced.append(i)
            yield i

    it = prefetch(slow(), depth=1)
    assert next(it) == 0
    time.sleep(0.05)
    assert len(produced) >= 2
    it.close()  # stopping early leaves no thread blocked
    time.sleep(0.05)
    assert threading.active_count() < 50


def test_cluster_records_device(store):
    c = cluster(store, ClusterParams(k=2), engine=None, device="cpu", recompute=True)
    assert c.params["device"] == "cpu" and c.params["engine"] == "numpy"


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU with CuPy")
def test_gpu_loaded_frames_equal_zarr_read(store):
    import cupy

    dev = select_device("gpu")
    stats = LoadStats()
    got = list(batches(store, 10, dev, stats))
    assert all(isinstance(f, cupy.ndarray) for _, f in got)
    assert np.array_equal(np.concatenate([f.get() for _, f in got]), store.frames[:])
    assert stats.method in ("kvikio-gds", "kvikio-compat", "zarr+copy")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU with CuPy")
def test_gpu_render_matches_cpu(store):
    gpu = cluster(store, ClusterParams(k=3), engine="cupy", recompute=True)
    cpu = cluster(store, ClusterParams(k=3), engine="numpy", recompute=True)
    assert gpu.params["device"] == "gpu"
    np.testing.assert_allclose(gpu.inertia, cpu.inertia, rtol=5e-3)
    np.testing.assert_allclose(np.sort(gpu.shares, 1), np.sort(cpu.shares, 1), atol=1e-3)
