"""The frame store: a Zarr (v3) group on local disk, and the contract of its layout.

Layout (``LAYOUT_VERSION`` 2; version 1 stores, which have no cuts, are read too)::

    movie.zarr/
      zarr.json            attributes under "moviebarcode": layout_version, complete, frames_done,
                           source (path, fingerprint), probe, request (the prep options), picture,
                           sampling, decode (errors), created, tool
      frames               uint8 (n, h, w, 3), chunks of whole frames along n, uncompressed
      time                 float64 (n,), seconds from the start of the source file
      index                int64 (n,), decoded frame number (from --start; the source frame
                           number when prep started at 0)
      cuts                 float64 (m,), sorted: the time (seconds, as ``time``) of the first
                           frame of each shot after the first; absent when no cut detection ran
                           (a version 1 store, ``--keyframes``). Attribute ``shots`` says how
                           they were found (detector, threshold, settings, frames scored).
      shots/time, shots/score  float64 (d,): the cut score of every decoded frame (what the
                           cuts were picked from; appended in pieces while prepping)
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

LAYOUT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ATTR = "moviebarcode"
ARRAYS = ("frames", "time", "index")
TARGET_CHUNK_BYTES = 8 * 1024 * 1024
SCORE_CHUNK = 4096  # cut scores per chunk (one per decoded frame): 32 KiB


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


REQUIRED_META = {
    "complete": bool,
    "frames_done": int,
    "chunk_frames": int,
    "source": dict,
    "sampling": dict,
    "picture": dict,
    "request": dict,
}
ARRAY_TYPES = {"frames": ("uint8", 4), "time": ("float64", 1), "index": ("int64", 1)}


def _layout_problem(g: zarr.Group, meta: dict) -> str | None:
    """What breaks the layout's contract, if anything: attributes missing, an array missing
    or of the wrong type or shape, lengths that disagree."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if "source" in meta and "path" not in (meta["source"] or {}):
        missing.append("source path")
    if missing:
        return f"its attributes lack {', '.join(missing)}"
    wrong = [k for k, kind in REQUIRED_META.items() if not isinstance(meta[k], kind)]
    if wrong:
        return f"its attributes {', '.join(wrong)} are not what the layout says"
    lengths = []
    for name, (dtype, ndim) in ARRAY_TYPES.items():
        a = g.get(name)
        if not isinstance(a, zarr.Array):
            return f"it has no {name} array"
        if str(a.dtype) != dtype or a.ndim != ndim or (name == "frames" and a.shape[3] != 3):
            shape = "(n, h, w, 3)" if name == "frames" else "(n,)"
            return f"its {name} array is {a.dtype} {a.shape}, not {dtype} {shape}"
        lengths.append(a.shape[0])
    done = meta["frames_done"]
    # a killed append may leave one array longer than the rest: resuming truncates them
    if (set(lengths) != {done}) if meta["complete"] else not 0 <= done <= min(lengths):
        return f"frames, time and index hold {lengths} frames, and it says {done}"
    return None


def first_of(damage: list[str]) -> str:
    """The first line of ``damage``, and how many more there are."""
    return damage[0] + (f" (and {len(damage) - 1} more)" if len(damage) > 1 else "")


def _decodes(a: zarr.Array, lo: int, hi: int) -> bool:
    try:
        a[lo:hi]
    except Exception:  # noqa: BLE001 - any failure to decode is damage
        return False
    return True


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
        self._whole = False  # its chunk files were checked, and found whole

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
            "every_chunk_written": True,
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
        if version not in READABLE_VERSIONS:
            readable = " and ".join(map(str, READABLE_VERSIONS))
            raise StoreError(
                f"{p}: store layout version {version!r} is not supported by this moviebarcode "
                f"(it reads versions {readable}); re-run prep with --force"
            )
        problem = _layout_problem(g, meta)
        if problem:
            raise StoreError(f"{p}: damaged store: {problem}; prep the film again with --force")
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

    def array(self, name: str) -> zarr.Array:
        """The array ``name`` (frames, time or index). It writes every chunk, even one equal
        to the fill value (a chunk of black frames), so that a missing chunk file always
        means a lost chunk."""
        with zarr.config.set({"array.write_empty_chunks": True}):
            return self.group[name]

    @property
    def frames(self) -> zarr.Array:
        return self.array("frames")

    @property
    def times(self) -> np.ndarray:
        return self.array("time")[: self.frames_done]

    @property
    def indices(self) -> np.ndarray:
        return self.array("index")[: self.frames_done]

    @property
    def cuts(self) -> np.ndarray | None:
        """The shot cuts: float64 seconds, sorted, each the time of the first frame of a new
        shot; None when the store holds no cut detection (empty when it found no cut)."""
        if self.meta.get("shots") is None or "cuts" not in self.group:
            return None
        return np.asarray(self.group["cuts"][...], np.float64)

    def set_cuts(self, cuts: np.ndarray, shots: dict) -> None:
        """Record the cuts (seconds) and ``shots``, how they were found; the store becomes a
        version 2 store. The attribute is written last, so cuts without it are ignored."""
        cuts = np.sort(np.asarray(cuts, np.float64))
        self.update_meta(shots=None)
        if "cuts" in self.group:
            del self.group["cuts"]
        a = self.group.create_array(
            "cuts",
            shape=cuts.shape,
            chunks=(max(1, len(cuts)),),
            dtype="float64",
            compressors=None,
            fill_value=0.0,
            dimension_names=["cut"],
        )
        a[...] = cuts
        self.update_meta(shots=shots, layout_version=LAYOUT_VERSION)

    def append_scores(self, times: np.ndarray, scores: np.ndarray) -> None:
        """Append cut scores (see ``moviebarcode.cutdetect``) of decoded frames, in any order:
        pieces overlap after a resume, and :func:`~moviebarcode.cutdetect.merge_scores` sorts
        them. An append cut short leaves NaN times, which are dropped."""
        if not len(times):
            return
        if "shots" not in self.group:
            g = self.group.create_group("shots")
            for name in ("time", "score"):
                g.create_array(
                    name,
                    shape=(0,),
                    chunks=(SCORE_CHUNK,),
                    dtype="float64",
                    compressors=None,
                    fill_value=float("nan"),
                    dimension_names=["decoded_frame"],
                )
        g = self.group["shots"]
        n0 = g["time"].shape[0]
        n1 = n0 + len(times)
        for name, values in (("score", scores), ("time", times)):
            g[name].resize((n1,))
            g[name][n0:n1] = np.asarray(values, np.float64)

    @property
    def has_scores(self) -> bool:
        """Whether cut scores were stored (without reading them)."""
        return "shots" in self.group

    def scores(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, scores) of every scored frame as appended, or None when none were."""
        if not self.has_scores:
            return None
        g = self.group["shots"]
        n = min(g["time"].shape[0], g["score"].shape[0])
        return g["time"][:n], g["score"][:n]

    def set_scores(self, times: np.ndarray, scores: np.ndarray) -> None:
        """Replace the scores (with a merged, sorted copy of them; empty to clear)."""
        if "shots" in self.group:
            del self.group["shots"]
        self.append_scores(times, scores)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    def require_complete(self) -> None:
        """StoreError unless the store is complete (an interrupted prep must be resumed first)
        and none of its chunk files is missing or cut short (checked once per opening: readers
        do not write the frames)."""
        if not self.complete:
            raise StoreError(
                f"{self.path}: incomplete store ({self.frames_done} frames so far; the prep was "
                f"interrupted); run `moviebarcode prep` again to finish it"
            )
        if self._whole:
            return
        damage = self.damage()
        if damage:
            raise StoreError(f"{self.path}: {first_of(damage)}; {self.repair_hint()}")
        self._whole = True

    def repair_hint(self) -> str:
        """How to repair damaged chunks."""
        return (
            f"run `moviebarcode prep {self.meta['source']['path']} -o {self.path}` to decode "
            "the film again from the first damaged chunk on (or prep with --force)"
        )

    # -- integrity ---------------------------------------------------------------------------
    def damage(self, *, read: bool = False) -> list[str]:
        """What is wrong with the chunk files of the store's frames, one line each (empty when
        nothing is): a chunk file missing or of the wrong size. With ``read``, every chunk is
        also read and decoded (``info --check``)."""
        return [
            f"{name} chunk {lo // self.chunk_frames} (frames {lo}-{hi - 1}) {why}"
            for name in ARRAYS
            for lo, hi, why in self._damaged_chunks(name, read)
        ]

    def first_damaged_frame(self) -> int | None:
        """The first frame of the first damaged chunk, or None."""
        starts = [lo for name in ARRAYS for lo, _, _ in self._damaged_chunks(name, False)]
        return min(starts) if starts else None

    def _damaged_chunks(self, name: str, read: bool) -> list[tuple[int, int, str]]:
        """(first frame, end, what is wrong) of each damaged chunk of the array ``name``, among
        those holding the store's ``frames_done`` frames."""
        a = self.array(name)
        n, c = self.frames_done, self.chunk_frames
        strict = bool(self.meta.get("every_chunk_written"))  # else a fill-value chunk is absent
        size = int(np.prod(a.chunks)) * a.dtype.itemsize if not a.compressors else None
        encode = a.metadata.chunk_key_encoding.encode_chunk_key
        bad = []
        for lo in range(0, n, c):
            hi = min(n, lo + c)
            f = self.path / name / encode((lo // c,) + (0,) * (a.ndim - 1))
            if not f.is_file():
                if strict:
                    bad.append((lo, hi, "is missing"))
            elif size is not None and (got := f.stat().st_size) != size:
                bad.append((lo, hi, f"is {got} bytes, not {size}"))
            elif read and not _decodes(a, lo, hi):
                bad.append((lo, hi, "cannot be decoded"))
        return bad

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
            a = self.array(name)
            a.resize((n1,))
            a[n0:n1] = values
        self.update_meta(frames_done=n1)

    def allocate(self, n: int) -> None:
        """Give the arrays their final length ``n`` before they are filled in any order (a
        parallel prep); ``frames_done`` is left alone."""
        for name in ("frames", "time", "index"):
            a = self.array(name)
            a.resize((n, *a.shape[1:]))

    def truncate(self, n: int) -> None:
        """Drop frames from ``n`` on (used when resuming from the last complete chunk)."""
        for name in ("frames", "time", "index"):
            a = self.array(name)
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
        damage = self.damage() if self.complete else []
        if damage:
            status = f"DAMAGED: {damage[0]}" + (
                f" (and {len(damage) - 1} more)" * (len(damage) > 1)
            )
        elif self.complete:
            status = "complete"
        else:
            status = "INCOMPLETE (run prep again to resume)"
        return {
            "store": str(self.path),
            "status": status,
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
        n = self.frames_done
        if not n:
            return "nothing yet"
        try:  # two reads, of the first and last chunks only
            t = self.array("time")
            return f"{hms(float(t[0]))} - {hms(float(t[n - 1]))}"
        except Exception:  # noqa: BLE001 - a damaged chunk: the status says which
            return "?"


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
