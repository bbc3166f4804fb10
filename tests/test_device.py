"""Device choice and frame loading. On this CPU-only machine: the selection logic, the reads,
the fallback from kvikio to zarr. The GPU checks (kvikio-loaded frames against zarr's own
read, the cupy engine against numpy, a whole render on the GPU) are marked gpu."""

from __future__ import annotations

import numpy as np
import pytest

from moviebarcode import device
from moviebarcode.cluster import ClusterParams, cluster, resolve_engine
from moviebarcode.device import Device, LoadStats, read_range, select_device
from moviebarcode.errors import MoviebarcodeError, ParameterError
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.store import FrameStore

HAS_GPU = device.gpu_status()[0]


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("arr") / "s.zarr"
    return FrameStore.open(
        prep(clips["colours"], PrepRequest(every=4, chunk_frames=5), output=out).store
    )


def test_select_device_without_gpu(monkeypatch):
    monkeypatch.setattr(device, "gpu_status", lambda: (False, "CuPy sees no GPU"))
    assert select_device("auto").kind == "cpu" and select_device("auto").xp is np
    assert "no GPU" in select_device("auto").reason
    assert select_device("cpu").kind == "cpu"
    with pytest.raises(MoviebarcodeError, match="--device gpu: CuPy sees no GPU"):
        select_device("gpu")
    with pytest.raises(ParameterError, match="unknown device"):
        select_device("tpu")


def test_engine_follows_device(monkeypatch):
    monkeypatch.setattr(device, "gpu_status", lambda: (False, "no cupy"))
    assert resolve_engine(None, "auto")[0] == "numpy"
    assert resolve_engine("sklearn", "auto")[0] == "sklearn"
    with pytest.raises(MoviebarcodeError):
        resolve_engine("cupy", "auto")  # needs the GPU
    with pytest.raises(ParameterError, match="runs on a GPU"):
        resolve_engine("cuml", "cpu")
    with pytest.raises(ParameterError, match="runs on the CPU"):
        resolve_engine("numpy", "gpu")


def test_cpu_reads_are_the_store(store):
    frames, method, note = read_range(store.path, 3, 12, select_device("cpu"))
    assert method == "zarr" and note == ""
    assert np.array_equal(frames, store.frames[3:12])


def test_kvikio_failure_falls_back_to_zarr(store, monkeypatch):
    """kvikio needs libcuda.so.1 even in compatibility mode: where it raises, zarr reads the
    frames and the note says why (render -v prints it)."""

    def broken(path, start, stop):
        raise OSError("libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(device, "kvikio_mode", lambda: "compat")
    monkeypatch.setattr(device, "_kvikio_read", broken)
    frames, method, note = read_range(store.path, 0, 7, Device("gpu", np, "stand-in"))
    assert method == "zarr+copy" and "libcuda.so.1" in note and "zarr read" in note
    assert np.array_equal(frames, store.frames[0:7])
    monkeypatch.setattr(device, "kvikio_mode", lambda: None)
    assert read_range(store.path, 0, 7, Device("gpu", np, ""))[1:] == ("zarr+copy", "")


def test_load_stats_add_names_every_method():
    stats = LoadStats()
    stats.add("kvikio-compat", 100, 0.5)
    stats.add("zarr+copy", 50, 0.25, "kvikio could not read")
    stats.add("zarr+copy", 50, 0.25, "kvikio could not read")
    assert stats.method == "kvikio-compat, zarr+copy" and stats.bytes == 200
    assert stats.notes == ["kvikio could not read"] and stats.throughput == 200


def test_cluster_records_device(store):
    c = cluster(store, ClusterParams(k=2, device="cpu"), recompute=True)
    assert c.params["device"] == "cpu" and c.params["engine"] == "numpy"


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU with CuPy")
def test_gpu_loaded_frames_equal_zarr_read(store):
    import cupy

    frames, method, note = read_range(store.path, 0, 10, select_device("gpu"))
    assert isinstance(frames, cupy.ndarray), note
    assert np.array_equal(frames.get(), store.frames[0:10])
    assert method in ("kvikio-gds", "kvikio-compat", "zarr+copy")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU with CuPy")
def test_gpu_render_matches_cpu(store):
    gpu = cluster(store, ClusterParams(k=3, engine="cupy"), recompute=True)
    cpu = cluster(store, ClusterParams(k=3, engine="numpy"), recompute=True)
    assert gpu.params["device"] == "gpu"
    # one-colour frames: both near zero, with float32 rounding that differs (1e-10 against 0)
    np.testing.assert_allclose(gpu.inertia, cpu.inertia, rtol=5e-3, atol=1e-6)
    np.testing.assert_allclose(np.sort(gpu.shares, 1), np.sort(cpu.shares, 1), atol=1e-3)
