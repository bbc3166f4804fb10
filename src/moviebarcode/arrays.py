"""NumPy or CuPy, chosen once; loading a store's frames into that device's memory.

On a GPU the frames go from the store's chunk files straight into device memory through kvikio
(GPUDirect Storage where the hardware has it, kvikio's compatibility mode otherwise), using the
way kvikio's documentation recommends for zarr-python 3: ``zarr.config.enable_gpu()`` with
``kvikio.zarr.GDSStore``. Without kvikio, zarr reads into host memory and CuPy copies the batch
over. Reading the next batch overlaps the work on this one (a one-batch prefetch thread).

Nothing here imports CuPy or kvikio unless a GPU is asked for.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moviebarcode.errors import MoviebarcodeError


@dataclass(frozen=True)
class Device:
    """Where stage two runs: ``kind`` "cpu" or "gpu", ``xp`` the array module, and why."""

    kind: str
    xp: Any
    reason: str


@functools.cache
def gpu_status() -> tuple[bool, str]:
    """(usable, reason): whether CuPy imports and sees a CUDA device."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken CUDA install
        return False, f"CuPy is not usable ({exc.__class__.__name__}: {exc})".splitlines()[0]
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return False, f"CuPy sees no GPU ({exc})".splitlines()[0]
    if n < 1:
        return False, "CuPy sees no GPU"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return True, f"GPU 0: {name}"


def select_device(wanted: str = "auto") -> Device:
    """``auto``: the GPU when CuPy sees one, else the CPU; ``gpu``: the GPU or a clear error."""
    if wanted not in ("auto", "cpu", "gpu"):
        raise MoviebarcodeError(f"unknown device {wanted!r}; choose auto, cpu or gpu")
    if wanted == "cpu":
        return Device("cpu", np, "asked for the CPU")
    ok, reason = gpu_status()
    if ok:
        import cupy

        return Device("gpu", cupy, reason)
    if wanted == "gpu":
        raise MoviebarcodeError(
            f"--device gpu: {reason}; install the GPU extra (pip install 'moviebarcode[gpu]') "
            "on a machine with an NVIDIA GPU, or use --device cpu"
        )
    return Device("cpu", np, f"no GPU ({reason})")


@dataclass
class LoadStats:
    """How frames were loaded: ``method`` (kvikio-gds, kvikio-compat, zarr+copy, zarr), bytes
    read and the seconds spent reading (in the prefetch thread)."""

    method: str = "zarr"
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Bytes per second while reading."""
        return self.bytes / self.seconds if self.seconds > 0 else float("nan")


def kvikio_mode() -> str | None:
    """ "gds" or "compat" when kvikio imports (which mode its file reads use), else None."""
    try:
        import kvikio
        import kvikio.defaults
    except Exception:  # noqa: BLE001
        return None
    compat = None
    for getter in (
        lambda: kvikio.defaults.get("compat_mode"),
        lambda: kvikio.defaults.compat_mode(),
    ):
        try:
            compat = getter()
            break
        except Exception:  # noqa: BLE001 - the API moved between kvikio releases
            continue
    # compat_mode may be a bool or an enum (ON / OFF / AUTO); only OFF means real GDS reads
    text = str(compat).lower()
    if compat is False or text.endswith("off") or text == "0":
        return "gds"
    if "auto" in text:
        try:
            if kvikio.DriverProperties().is_gds_available:
                return "gds"
        except Exception:  # noqa: BLE001
            pass
    return "compat"


def choose_loader(device: Device, kvikio: str | None) -> str:
    """The way frames reach ``device``: kvikio into device memory when a GPU and kvikio are
    there, zarr into host memory plus a copy when only the GPU is, plain zarr on the CPU."""
    if device.kind == "cpu":
        return "zarr"
    return f"kvikio-{kvikio}" if kvikio else "zarr+copy"


def _gpu_frames_array(path):
    """The store's ``frames`` array opened through kvikio's GDSStore, read as CuPy arrays."""
    import zarr
    from kvikio.zarr import GDSStore

    zarr.config.enable_gpu()
    return zarr.open_array(GDSStore(root=str(path)), path="frames", mode="r")


def batches(
    store, step: int, device: Device, stats: LoadStats | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield (start, frames (m, h, w, 3) uint8 on ``device``) for the whole store, ``step``
    frames at a time (whole chunks), reading the next batch while the caller works."""
    stats = stats if stats is not None else LoadStats()
    stats.method = choose_loader(device, kvikio_mode() if device.kind == "gpu" else None)
    if stats.method.startswith("kvikio"):
        frames = _gpu_frames_array(store.path)

        def read(s, e):
            return frames[s:e]
    elif stats.method == "zarr+copy":
        frames = store.frames

        def read(s, e):
            return device.xp.asarray(frames[s:e])
    else:
        frames = store.frames

        def read(s, e):
            return frames[s:e]

    def timed_reads() -> Iterator[tuple[int, Any]]:
        for s, e in store.batch_ranges(step):
            t0 = time.perf_counter()
            data = read(s, e)
            if device.kind == "gpu":
                device.xp.cuda.get_current_stream().synchronize()
            stats.seconds += time.perf_counter() - t0
            stats.bytes += int(data.nbytes)
            yield s, data

    return prefetch(timed_reads())


def prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """Iterate ``items`` with up to ``depth`` of them produced ahead on a thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    error: list[BaseException] = []
    stop = threading.Event()

    def run():
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            error.append(exc)
        finally:
            q.put(done)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
        if error:
            raise error[0]
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.05)


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy array from a NumPy or CuPy one."""
    return a.get() if hasattr(a, "get") else np.asarray(a)
