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
      results/             the result cache (see ``moviebarcode.cache``)

Frames are written a chunk at a time and ``frames_done`` moves forward only after the chunk is
on disk (zarr writes each file atomically), so a store killed at any moment holds whole chunks
and says how many. ``complete`` becomes true only at the very end.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr

from moviebarcode import __version__, _lock
from moviebarcode._fmt import hms
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

    @staticmethod
    @contextlib.contextmanager
    def writing(path: str | os.PathLike) -> Iterator[None]:
        """An exclusive lock for the one process that may create, replace or fill the store
        at ``path`` (whether or not it exists yet); StoreError if another holds it. The lock
        is the file ``.<name>.lock`` beside the store, so it covers deleting and recreating
        the store itself."""
        p = Path(path)
        try:
            with _lock.exclusive(p.parent / f".{p.name}.lock"):
                yield
        except _lock.Busy as exc:
            hint = f" {exc}" if str(exc) else ""
            raise StoreError(f"{p}: another moviebarcode process is writing it{hint}") from None

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

    # -- description -------------------------------------------------------------------------
    def summary(self) -> dict:
        """What the store holds, as `info` shows it: status, frames, size, sampling, source,
        picture and decoding facts (results are listed by ``moviebarcode.cache``)."""
        meta = self.meta
        pic = meta["picture"]
        h, w = self.frame_shape
        decode = meta.get("decode") or {}
        hwaccel = pic.get("hwaccel") or "software"
        return {
            "store": str(self.path),
            "status": "complete" if self.complete else "INCOMPLETE (run prep again to resume)",
            "frames": self.frames_done,
            "frame size": f"{w}x{h}",
            "chunk": f"{self.chunk_frames} frames",
            "sampling": _describe_sampling(meta["sampling"]),
            "covers": self._covers(),
            "source": meta["source"]["path"],
            "crop": "{w}x{h}+{x}+{y}".format(**pic["crop"]) if pic.get("crop") else "none",
            "tonemap": "HDR -> SDR" if pic.get("tonemap") else "no",
            "decoder": f"{hwaccel}, fast" if pic.get("fast") else hwaccel,
            "decode errors": f"truncated at {hms(decode['truncated_at'])}"
            if decode.get("truncated_at")
            else decode.get("error_count", 0),
            "layout": meta["layout_version"],
        }

    def _covers(self) -> str:
        segments = self.meta.get("segments")
        if segments:  # a parallel prep under way: its frames are not a contiguous prefix
            total = segments[-1]["pos"] + segments[-1]["count"]
            return f"{self.frames_done} of {total} frames, written in {len(segments)} segments"
        times = self.times
        return f"{hms(times[0])} - {hms(times[-1])}" if len(times) else "nothing yet"


def _describe_sampling(s: dict) -> str:
    if s.get("keyframes"):
        how = "keyframes only" + (f", every {s['every']}" if s.get("every", 1) > 1 else "")
    elif s.get("every"):
        how = f"every {s['every']} frames"
    else:
        how = f"{s['fps']:.6g} frames per second"
    if s.get("max_frames"):
        how += f" (at most {s['max_frames']})"
    return how
