"""Where stage two runs (CPU or GPU), and reading a range of a store's frames into its memory.

On a GPU the frames go from the store's chunk files straight into device memory through kvikio
(GPUDirect Storage where the hardware has it, kvikio's compatibility mode otherwise), using the
way kvikio's documentation recommends for zarr-python 3: ``zarr.config.enable_gpu()`` with
``kvikio.zarr.GDSStore``. Without kvikio, or where kvikio fails (it needs ``libcuda.so.1`` even
in compatibility mode), zarr reads into host memory and CuPy copies the range over; the
fallback is noted in the load statistics, which ``render -v`` prints.

Nothing here imports CuPy or kvikio unless a GPU is asked for.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from moviebarcode.choices import DeviceChoice, check
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


def gpu_free_bytes() -> int:
    """The free memory of the current GPU, in bytes (CuPy's pool's cached blocks count as
    free)."""
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    pool = cupy.get_default_memory_pool()
    return int(free + pool.total_bytes() - pool.used_bytes())


def select_device(wanted: DeviceChoice = "auto") -> Device:
    """``auto``: the GPU when CuPy sees one, else the CPU; ``gpu``: the GPU or a clear error."""
    check(DeviceChoice, wanted, "device")
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
    read, the seconds spent reading, and notes (a fallback and why)."""

    method: str = "zarr"
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Bytes per second while reading."""
        return self.bytes / self.seconds if self.seconds > 0 else float("nan")

    def add(self, method: str, nbytes: int, seconds: float, note: str | None = None) -> None:
        """Count one read; a method other than the first one read is named too."""
        if not self.bytes:
            self.method = method
        elif method not in self.method.split(", "):
            self.method += f", {method}"
        self.bytes += nbytes
        self.seconds += seconds
        if note and note not in self.notes:
            self.notes.append(note)


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


def read_range(path: str | Path, start: int, stop: int, device: Device) -> tuple[Any, str, str]:
    """Frames ``start:stop`` of the store at ``path``, (m, h, w, 3) uint8, in ``device``'s
    memory, with the way they were read (``kvikio-gds``, ``kvikio-compat``, ``zarr+copy`` or
    ``zarr``) and a note when kvikio failed and zarr read them instead ("" otherwise)."""
    frames = zarr.open_group(path, mode="r")["frames"]
    if device.kind == "cpu":
        return frames[start:stop], "zarr", ""
    mode = kvikio_mode()
    note = ""
    if mode is not None:
        try:
            return _kvikio_read(path, start, stop), f"kvikio-{mode}", ""
        except Exception as exc:  # noqa: BLE001 - e.g. no libcuda.so.1: zarr reads instead
            why = f"{exc.__class__.__name__}: {exc}".splitlines()[0]
            note = f"kvikio could not read ({why}); zarr read the frames instead"
    return device.xp.asarray(frames[start:stop]), "zarr+copy", note


def timed_read(path: str | Path, start: int, stop: int, device: Device):
    """:func:`read_range`, with the seconds it took (the GPU's copy finished)."""
    t0 = time.perf_counter()
    frames, method, note = read_range(path, start, stop, device)
    if device.kind == "gpu":
        device.xp.cuda.get_current_stream().synchronize()
    return frames, method, note, time.perf_counter() - t0


def _kvikio_read(path: str | Path, start: int, stop: int) -> Any:
    """Frames ``start:stop`` read through kvikio's GDSStore into a CuPy array (zarr's GPU
    buffers are switched on for this read only)."""
    from kvikio.zarr import GDSStore

    with zarr.config.enable_gpu():
        frames = zarr.open_array(GDSStore(root=str(path)), path="frames", mode="r")
        return frames[start:stop]
