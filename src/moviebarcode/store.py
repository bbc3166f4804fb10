"""The frame store: a Zarr (v3) group on local disk, and the contract of its layout.

Layout (``LAYOUT_VERSION`` 1)::

    movie.zarr/
      zarr.json            attributes under "moviebarcode": layout_version, complete, frames_done,
                           source (path, fingerprint), probe, request (the prep options), picture,
                           sampling, decode (errors), created, tool
      frames               uint8 (n, h, w, 3), chunks of whole frames along n, uncompressed
      time                 float64 (n,), seconds from the start of the source file
      index                int64 (n,), decoded frame number (from --start; the source frame
                           number when prep started at 0)
      results/k{k}/{key}   a group per clustering: centres (n, k, 3) float32 (sRGB 0..255),
                           shares (n, k) float32, inertia (n,) float64; params in its attributes

Frames are written a chunk at a time and ``frames_done`` moves forward only after the chunk is
on disk (zarr writes each file atomically), so a store killed at any moment holds whole chunks
and says how many. ``complete`` becomes true only at the very end.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr

from moviebarcode import __version__
from moviebarcode.errors import StoreError

LAYOUT_VERSION = 1
ATTR = "moviebarcode"
TARGET_CHUNK_BYTES = 8 * 1024 * 1024


def default_chunk_frames(h: int, w: int) -> int:
    """Frames per chunk so that a chunk is about 8 MiB (reads of MBs, not KBs), at least 1."""
    return max(1, min(4096, TARGET_CHUNK_BYTES // (h * w * 3)))


def fingerprint(path: str | os.PathLike) -> dict:
    """Identify a source file cheaply: size, mtime and a hash of its first and last MiB."""
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": h.hexdigest()}


def same_source(a: dict, b: dict) -> bool:
    """Whether two fingerprints name the same content (mtime alone may change on a copy)."""
    return a.get("size") == b.get("size") and a.get("sha256_ends") == b.get("sha256_ends")


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a frame store (a folder with a zarr.json naming our layout)."""
    p = Path(path)
    if not (p / "zarr.json").is_file():
        return False
    try:
        return ATTR in zarr.open_group(p, mode="r").attrs
    except Exception:  # noqa: BLE001 - any unreadable folder simply is not a store
        return False


class ChunkBuffer:
    """Frames gathered for one write of at most a chunk: ``frames`` (c, h, w, 3) uint8 with their
    ``times`` and ``indices``; ``fill`` of them are set."""

    def __init__(self, chunk: int, frame_shape: tuple[int, int]):
        h, w = frame_shape
        self.frames = np.empty((chunk, h, w, 3), np.uint8)
        self.times = np.empty(chunk, np.float64)
        self.indices = np.empty(chunk, np.int64)
        self.fill = 0

    def put(self, frames: np.ndarray, times: np.ndarray, indices: np.ndarray, upto: int) -> int:
        """Copy in as many of the given frames as fit below ``upto``; returns how many."""
        take = max(0, min(upto - self.fill, len(frames)))
        sl = slice(self.fill, self.fill + take)
        self.frames[sl], self.times[sl], self.indices[sl] = (
            frames[:take],
            times[:take],
            indices[:take],
        )
        self.fill += take
        return take

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The gathered frames, times and indices (views); the buffer is empty afterwards."""
        f, self.fill = self.fill, 0
        return self.frames[:f], self.times[:f], self.indices[:f]


class FrameStore:
    """A frame store on disk. Create with ``FrameStore.create``, open with ``FrameStore.open``."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path = path
        self.group = group

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        frame_shape: tuple[int, int],
        chunk_frames: int,
        attrs: dict,
        compressor: str = "none",
    ) -> FrameStore:
        """Create an empty, incomplete store at ``path``, replacing whatever was there."""
        p = Path(path)
        if p.exists():
            shutil.rmtree(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        g = zarr.open_group(p, mode="w", zarr_format=3)
        h, w = frame_shape
        compressors = None
        if compressor == "zstd":
            compressors = zarr.codecs.ZstdCodec(level=3)
        g.create_array(
            "frames",
            shape=(0, h, w, 3),
            chunks=(chunk_frames, h, w, 3),
            dtype="uint8",
            compressors=compressors,
            fill_value=0,
            dimension_names=["frame", "y", "x", "rgb"],
        )
        for name, dt in (("time", "float64"), ("index", "int64")):
            g.create_array(
                name,
                shape=(0,),
                chunks=(chunk_frames,),
                dtype=dt,
                compressors=None,
                fill_value=0,
                dimension_names=["frame"],
            )
        meta = {
            "layout_version": LAYOUT_VERSION,
            "complete": False,
            "frames_done": 0,
            "chunk_frames": chunk_frames,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "tool": f"moviebarcode {__version__}",
            **attrs,
        }
        g.attrs[ATTR] = meta
        return cls(p, g)

    @classmethod
    def open(cls, path: str | os.PathLike, *, writable: bool = False) -> FrameStore:
        """Open an existing store; StoreError if it is not one or of an unknown layout."""
        p = Path(path)
        if not p.exists():
            raise StoreError(f"{p}: no such store")
        if not (p / "zarr.json").is_file():
            raise StoreError(f"{p}: not a moviebarcode store (no zarr.json); make one with `prep`")
        try:
            g = zarr.open_group(p, mode="r+" if writable else "r")
            meta = g.attrs[ATTR]
        except KeyError:
            raise StoreError(f"{p}: a Zarr group, but not a moviebarcode store") from None
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{p}: unreadable store ({exc.__class__.__name__}: {exc})") from None
        version = meta.get("layout_version")
        if version != LAYOUT_VERSION:
            raise StoreError(
                f"{p}: store layout version {version!r} is not supported by this moviebarcode "
                f"(it reads version {LAYOUT_VERSION}); re-run prep with --force"
            )
        return cls(p, g)

    # -- attributes --------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        """The store's attributes (a copy; use ``update_meta`` to change them)."""
        return dict(self.group.attrs[ATTR])

    def update_meta(self, **changes) -> None:
        self.group.attrs[ATTR] = {**self.meta, **changes}

    @property
    def frames_done(self) -> int:
        return int(self.meta["frames_done"])

    @property
    def complete(self) -> bool:
        return bool(self.meta["complete"])

    @property
    def chunk_frames(self) -> int:
        return int(self.meta["chunk_frames"])

    @property
    def frames(self) -> zarr.Array:
        return self.group["frames"]

    @property
    def times(self) -> np.ndarray:
        return self.group["time"][: self.frames_done]

    @property
    def indices(self) -> np.ndarray:
        return self.group["index"][: self.frames_done]

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    def require_complete(self) -> None:
        """StoreError unless the store is complete (an interrupted prep must be resumed first)."""
        if not self.complete:
            raise StoreError(
                f"{self.path}: incomplete store ({self.frames_done} frames so far; the prep was "
                f"interrupted); run `moviebarcode prep` again to finish it"
            )

    # -- writing -----------------------------------------------------------------------------
    def append(self, frames: np.ndarray, times: np.ndarray, indices: np.ndarray) -> None:
        """Append whole frames. All but the last append of a prep must be whole chunks, so that
        ``frames_done`` always ends on a chunk boundary until the store is complete."""
        n0 = self.frames_done
        m = len(frames)
        n1 = n0 + m
        fr = self.frames
        if fr.shape[0] != n0:
            self.truncate(n0)
        fr.resize((n1, *fr.shape[1:]))
        fr[n0:n1] = frames
        for name, values in (("time", times), ("index", indices)):
            a = self.group[name]
            a.resize((n1,))
            a[n0:n1] = values
        self.update_meta(frames_done=n1)

    def allocate(self, n: int) -> None:
        """Give the arrays their final length ``n`` before they are filled in any order (a
        parallel prep); ``frames_done`` is left alone."""
        for name in ("frames", "time", "index"):
            a = self.group[name]
            a.resize((n, *a.shape[1:]))

    def truncate(self, n: int) -> None:
        """Drop frames from ``n`` on (used when resuming from the last complete chunk)."""
        for name in ("frames", "time", "index"):
            a = self.group[name]
            a.resize((n, *a.shape[1:]))
        if self.frames_done != n:
            self.update_meta(frames_done=n)

    def mark_complete(self, **extra) -> None:
        self.update_meta(complete=True, **extra)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock for writers (one prep at a time); StoreError if already held."""
        fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"{self.path}: another moviebarcode process is writing it"
                ) from None
            yield
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------------
    def batch_ranges(self, batch_frames: int | None = None) -> list[tuple[int, int]]:
        """(start, stop) of each batch of about ``batch_frames`` frames, in whole chunks."""
        n = self.frames_done
        step = batch_frames or self.chunk_frames
        step = max(self.chunk_frames, step // self.chunk_frames * self.chunk_frames)
        return [(s, min(n, s + step)) for s in range(0, n, step)]

    def iter_batches(self, batch_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, frames) in order, ``frames`` (m, h, w, 3) uint8, whole chunks at a time."""
        for s, e in self.batch_ranges(batch_frames):
            yield s, self.frames[s:e]

    # -- results -----------------------------------------------------------------------------
    def result_path(self, k: int, key: str) -> Path:
        return self.path / "results" / f"k{k}" / key

    def load_result(self, k: int, key: str) -> dict | None:
        """The cached clustering for (k, key), as numpy arrays plus ``params``; None if absent."""
        p = self.result_path(k, key)
        if not (p / "zarr.json").is_file():
            return None
        g = zarr.open_group(p, mode="r")
        out = {name: g[name][...] for name in ("centres", "shares", "inertia")}
        out["params"] = dict(g.attrs.get("params", {}))
        if out["centres"].shape[0] != self.frames_done:
            return None
        return out

    def save_result(
        self,
        k: int,
        key: str,
        params: dict,
        centres: np.ndarray,
        shares: np.ndarray,
        inertia: np.ndarray,
        replace: bool = False,
    ) -> None:
        """Write a clustering result (see ``_save_group``)."""
        arrays = {"centres": centres, "shares": shares, "inertia": inertia}
        self._save_group(self.result_path(k, key), params, arrays, replace=replace)

    def stats_path(self, name: str) -> Path:
        return self.path / "results" / "stats" / name

    def load_stats(self, name: str) -> np.ndarray | None:
        """A cached per-frame statistic (e.g. average colours), or None."""
        p = self.stats_path(name)
        if not (p / "zarr.json").is_file():
            return None
        values = zarr.open_group(p, mode="r")["values"][...]
        return values if values.shape[0] == self.frames_done else None

    def save_stats(self, name: str, values: np.ndarray, params: dict) -> None:
        """Cache a per-frame statistic ``values`` (n, ...) under results/stats/{name}."""
        self._save_group(self.stats_path(name), params, {"values": values})

    def _save_group(
        self, final: Path, params: dict, arrays: dict[str, np.ndarray], replace: bool = False
    ) -> None:
        """Write ``arrays`` and ``params`` as a group at ``final``. It is written under a
        temporary name and renamed into place, so readers never see half of it and two writers
        cannot mix their arrays. If ``final`` exists (another writer got there first with the
        same, deterministic result), it stays, unless ``replace``."""
        key = final.name
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        for folder in (self.path / "results", final.parent):
            if not (folder / "zarr.json").exists():
                # another render may create it at the same moment
                with contextlib.suppress(FileExistsError, zarr.errors.ContainsGroupError):
                    zarr.open_group(folder, mode="a", zarr_format=3)
        g = zarr.open_group(tmp, mode="w", zarr_format=3)
        for name, arr in arrays.items():
            a = g.create_array(
                name,
                shape=arr.shape,
                dtype=arr.dtype,
                chunks=(max(1, min(arr.shape[0], 65536)), *arr.shape[1:]),
                compressors=None,
            )
            a[...] = arr
        g.attrs["params"] = params
        for _ in range(10):
            try:
                os.rename(tmp, final)
                return
            except OSError:
                if not (final / "zarr.json").exists() and final.exists():
                    raise  # something that is not a result is in the way
                if not replace:
                    break
                backup = final.parent / f".old-{key}-{uuid.uuid4().hex[:8]}"
                with contextlib.suppress(FileNotFoundError):
                    os.rename(final, backup)
                    shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    def list_results(self) -> list[dict]:
        """The cached clusterings: [{k, key, params}] sorted by k."""
        root = self.path / "results"
        out = []
        if not root.is_dir():
            return out
        kdirs = [q for q in root.glob("k*") if q.name[1:].isdigit()]
        for kdir in sorted(kdirs, key=lambda q: int(q.name[1:])):
            for rdir in sorted(kdir.iterdir()):
                if rdir.name.startswith(".") or not (rdir / "zarr.json").is_file():
                    continue
                params = dict(zarr.open_group(rdir, mode="r").attrs.get("params", {}))
                out.append({"k": int(kdir.name[1:]), "key": rdir.name, "params": params})
        return out
