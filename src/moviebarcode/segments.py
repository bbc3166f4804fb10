"""Parallel prep: the film split at keyframes into segments, each decoded by its own ffmpeg
process into its own range of the store, with exactly the frames a single process keeps.

How it stays byte-identical:
- A demux-only scan (``-c copy``, no decoding) lists every frame's timestamp and the keyframes,
  so the kept frames, and each segment's place in the store, are known before decoding.
- Segment i starts at a keyframe (seek before the input, accurate: frames before it are
  dropped) and ends before the next segment's keyframe (``select`` cuts there, while the decoder
  reads on a little, so that frames shown before that keyframe but stored after it decode as in
  one pass). Frame numbers start at the segment's global offset (the ``--every`` phase), and fps
  sampling starts from the bucket of the frame before it.
- A chunk shared by two segments is written under that chunk's lock; the others are each
  written by one segment only.
- Each segment checks its frames' times against the plan; any mismatch (a file whose packets do
  not map one to one onto decoded frames) makes prep fall back to a single process.

Progress is kept per segment in the store's attributes, so an interrupted parallel prep
resumes each segment from its last written chunk.

Cut scores (when asked): each segment scores its own frames and the next segment's first
frame (its keyframe), against the frame before it; the next segment cannot score that frame,
having nothing before it, and the merge keeps the scored entry. So a cut at a boundary is
found once, as by one process. A segment writes its scores before its frames, and the
scores of its last frames before its last chunk, so a finished segment has all of them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from moviebarcode._cpus import usable_cpus
from moviebarcode.decode import Decoder, DecodeReport, Picture, Sampling, is_resume_point
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.probe import MovieInfo, frame_interval
from moviebarcode.store import ChunkBuffer, FrameStore

MIN_SEGMENT_SECONDS = 20.0  # shorter films gain nothing from more processes
SEEK_EARLY = 1e-3  # seek this much before a frame's time, so rounding cannot skip it


class PlanMismatch(Exception):
    """A segment did not decode the frames its plan expected."""


@dataclass(frozen=True)
class Segment:
    """Frames [first, stop) of the scanned range (presentation order), kept frames stored at
    [pos, pos + count). ``t_first`` is the time of frame ``first`` (a keyframe), ``t_stop``
    that of frame ``stop`` (None for the last segment), ``prev_bucket`` the fps bucket of the
    frame before ``first`` (-1: none). ``takes_next_key``: the segment decodes the next
    segment's keyframe too, which opens no bucket (see :func:`plan`)."""

    first: int
    stop: int
    t_first: float
    t_stop: float | None
    pos: int
    count: int
    prev_bucket: int
    takes_next_key: bool = False


class Scanned(NamedTuple):
    """Every video frame in [start, end), in presentation order: its time, whether it is a
    keyframe, and its packet's size in bytes."""

    times: np.ndarray
    keys: np.ndarray
    sizes: np.ndarray


def scan(info: MovieInfo, sampling: Sampling) -> Scanned:
    """The film's frames from the packets of a demux-only pass (``-c copy -f framecrc``):
    cheap, nothing is decoded."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-v",
            "error",
            "-nostdin",
            "-copyts",
            "-start_at_zero",
            "-i",
            info.path,
            "-map",
            f"0:v:{info.stream}",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        errors="replace",
    ).stdout
    tb = None
    pts, keys, sizes = [], [], []
    for line in out.splitlines():
        if line.startswith("#tb 0:"):
            tb = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            fields = line.split(",")
            if fields[2].strip().lstrip("-").isdigit():
                pts.append(int(fields[2]))
                sizes.append(int(fields[4]))
                # framecrc prints flags only when they differ from "key"
                flag = line.split("F=")[1] if "F=" in line else "0x1"
                keys.append(bool(int(flag, 16) & 1))
    if tb is None or not pts:
        return Scanned(np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64))
    order = np.argsort(pts, kind="stable")
    # as ffmpeg computes t: pts times the time base as a double
    times = np.asarray(pts, np.float64)[order] * (tb.numerator / tb.denominator)
    inside = times >= sampling.start - 1e-9
    if sampling.end is not None:
        inside &= times < sampling.end
    keys = np.asarray(keys, bool)[order][inside]
    return Scanned(times[inside], keys, np.asarray(sizes, np.int64)[order][inside])


def kept_mask(times: np.ndarray, sampling: Sampling) -> np.ndarray:
    """Which of the scanned frames a single process keeps (the select expression, in NumPy)."""
    n = len(times)
    if sampling.every is not None:
        kept = np.arange(n) % sampling.every == 0
    else:
        buckets = sampling.bucket(times)
        kept = np.ones(n, bool)
        kept[1:] = buckets[1:] != buckets[:-1]
    if sampling.max_frames is not None:
        kept &= np.cumsum(kept) <= sampling.max_frames
    return kept


# A frame's decoding cost, in units of the film's average packet: a part whatever its size
# (per frame; keyed by whether only reference frames are decoded) plus its bytes. Fitted on
# BBB's pieces (README, Decoding); segments balanced by it finish together.
FRAME_COST = {False: 0.9, True: 0.2}


def decode_cost(sizes: np.ndarray, noref: bool = False) -> np.ndarray:
    """Each frame's estimated decoding cost, from its packet's size (see :data:`FRAME_COST`)."""
    mean = float(sizes.mean()) if len(sizes) else 0.0
    return FRAME_COST[noref] + (sizes / mean if mean > 0 else 0.0)


def plan(
    info: MovieInfo,
    sampling: Sampling,
    jobs: int,
    scanned: Scanned | None = None,
    noref: bool = False,
) -> list[Segment] | None:
    """Split the film into up to ``jobs`` segments at keyframes, of about equal decoding cost
    (:func:`decode_cost`), or None when one process is the better (or the only safe) way: one
    job, keyframes-only sampling, a short film, too few keyframes, or timestamps that are not
    strictly increasing.

    ``noref``: only reference frames are decoded, sampled by time buckets (``fps``). A segment
    starting at a keyframe inside a bucket leaves that bucket to the segment before, which
    decodes on to the keyframe (always decoded) and so finds the bucket's first decoded frame
    as one process does. The plan's positions assume that every bucket holds a decoded frame,
    which :func:`run` checks."""
    if noref and sampling.fps is None:
        return None
    if jobs < 2 or sampling.keyframes:
        return None
    times, keys, sizes = scanned if scanned is not None else scan(info, sampling)
    n = len(times)
    if n < 2 or not np.all(np.diff(times) > 0):
        return None
    span = times[-1] - times[0]
    jobs = min(jobs, int(span // MIN_SEGMENT_SECONDS))
    if jobs < 2:
        return None
    key_idx = np.flatnonzero(keys)
    key_idx = key_idx[key_idx > 0]
    if not len(key_idx):
        return None
    before_cost = np.concatenate([[0.0], np.cumsum(decode_cost(sizes, noref))])
    targets = before_cost[-1] * np.arange(1, jobs) / jobs
    splits = sorted({int(key_idx[np.argmin(np.abs(before_cost[key_idx] - t))]) for t in targets})
    bounds = [0, *splits, n]
    kept = kept_mask(times, sampling)
    before = np.concatenate([[0], np.cumsum(kept)])
    # with noref, the frames that open their bucket (kept, but for --columns' cap)
    opens = kept_mask(times, dataclasses.replace(sampling, max_frames=None)) if noref else None
    segments = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        prev = sampling.bucket(times[a - 1]) if (sampling.fps is not None and a > 0) else -1
        segments.append(
            Segment(
                first=a,
                stop=b,
                t_first=float(times[a]),
                t_stop=float(times[b]) if b < n else None,
                pos=int(before[a]),
                count=int(before[b] - before[a]),
                prev_bucket=int(prev),
                takes_next_key=bool(noref and b < n and not opens[b]),
            )
        )
    return segments if len(segments) > 1 else None


class _Progress:
    """Per-segment counts of frames written (contiguously from each segment's start), kept in
    the store's attributes so that an interrupted prep resumes each segment."""

    def __init__(self, store: FrameStore, segments: list[Segment], done: list[int]):
        self.store = store
        self.segments = segments
        self.done = done
        self.lock = threading.Lock()

    def advance(self, i: int, frames: int) -> None:
        with self.lock:
            self.done[i] += frames
            self.store.update_meta(
                frames_done=sum(self.done),
                segments=[
                    {**dataclasses.asdict(s), "done": d}
                    for s, d in zip(self.segments, self.done, strict=True)
                ],
            )


class _SegmentWriter:
    """Writes one segment's frames chunk by chunk; chunks it shares with a neighbour are written
    under that chunk's lock (zarr rewrites a whole chunk for a partial write)."""

    def __init__(self, store, seg: Segment, i: int, progress: _Progress, locks, expected, same):
        self.store, self.seg, self.i, self.progress, self.locks = store, seg, i, progress, locks
        self.decoder: Decoder | None = None  # whose cut scores are written before the frames
        self.expected = expected  # planned times of this segment's kept frames
        self.same = same  # same(times, planned): whether decoded frames are the planned ones
        self.c = store.chunk_frames
        self.buffer = ChunkBuffer(self.c, store.frame_shape)
        self.next = seg.pos + progress.done[i]  # store position of the buffer's first frame

    def add(self, frames, times, indices) -> None:
        end = self.seg.pos + self.seg.count
        while len(frames):
            q = self.next + self.buffer.fill
            if q >= end:
                raise PlanMismatch(f"segment {self.i} decoded more frames than planned")
            room = min((q // self.c + 1) * self.c, end) - q  # to the chunk's end or the segment's
            take = min(room, len(frames))
            k = q - self.seg.pos
            if not self.same(times[:take], self.expected[k : k + take]):
                raise PlanMismatch(f"segment {self.i}: frame times differ from the plan")
            self.buffer.put(frames, times, indices, self.buffer.fill + take)
            frames, times, indices = frames[take:], times[take:], indices[take:]
            if take == room and q + take < end:  # the last chunk waits for the last scores
                self.flush()

    def flush(self) -> None:
        if not self.buffer.fill:
            return
        q0 = self.next
        chunk = q0 // self.c
        lo, hi = chunk * self.c, (chunk + 1) * self.c
        shared = lo < self.seg.pos or hi > self.seg.pos + self.seg.count
        frames, times, indices = self.buffer.take()
        m = len(frames)
        if self.decoder is not None:
            scores = self.decoder.take_scores(float(times[-1]))
            with self.locks["scores"]:
                self.store.append_scores(*scores)
        with self.locks[chunk] if shared else nullcontext():
            self.store.frames[q0 : q0 + m] = frames
            self.store.array("time")[q0 : q0 + m] = times
            self.store.array("index")[q0 : q0 + m] = indices
        self.next += m
        self.progress.advance(self.i, m)


def decoder_threads(n_segments: int) -> int:
    """Decoder threads for each of ``n_segments`` ffmpeg processes run side by side: the cores
    shared out, at least one. A decoder's own threads add overhead (one thread decodes a
    reference-frame-only stream faster than several; see the README's Decoding figures), so the
    segments, not the threads, should fill the cores."""
    return max(1, usable_cpus() // max(1, n_segments))


def _segment_decoder(
    store, info, sampling, picture, seg: Segment, done: int, score: bool, threads: int | None
):
    """The decoder of one segment, and what its first frame must be when it resumes after
    ``done`` frames (time, index, pixels of the last frame written), else None. With
    ``score``, it scores its frames for cuts, and the next segment's first one. ``threads``:
    the decoder's threads."""
    # just past the next segment's keyframe: that frame and no later one
    past_key = None if seg.t_stop is None else seg.t_stop + frame_interval(info) / 2
    end = seg.t_stop if seg.t_stop is not None else sampling.end
    if seg.takes_next_key:
        end = past_key
    s = dataclasses.replace(sampling, end=end, max_frames=None)
    score_end = None
    if score:
        last = sampling.end if sampling.end is not None else float("inf")
        score_end = last if seg.t_stop is None else past_key
    if done:
        # resume: seek to the last frame written, which must come out first and match
        q = seg.pos + done - 1
        t_last = float(store.group["time"][q])
        verify = (t_last, int(store.group["index"][q]), store.frames[q])
        seek = max(sampling.start, t_last - SEEK_EARLY)
        dec = Decoder(
            info,
            s,
            picture,
            index_offset=verify[1],
            seek=seek,
            score_end=score_end,
            threads=threads,
        )
        return dec, verify
    seek = None if seg.first == 0 else max(sampling.start, seg.t_first - SEEK_EARLY)
    dec = Decoder(
        info,
        s,
        picture,
        index_offset=seg.first,
        seek=seek,
        prev_bucket=seg.prev_bucket,
        score_end=score_end,
        threads=threads,
    )
    return dec, None


def run(
    store: FrameStore,
    info: MovieInfo,
    sampling: Sampling,
    picture: Picture,
    segments: list[Segment],
    times: np.ndarray,
    done: list[int] | None = None,
    on_progress=None,
    score: bool = False,
) -> DecodeReport:
    """Decode every segment in its own ffmpeg process, in parallel, into the store (whose arrays
    already have the planned length). ``done``: frames already written per segment (resume);
    ``score``: score every decoded frame for cuts too (into the store's scores).
    Raises PlanMismatch if the frames differ from the plan."""
    kept = kept_mask(times, sampling)
    kept_times = times[kept]
    same = _same_bucket(sampling) if picture.noref else _same_time
    done = list(done) if done is not None else [0] * len(segments)
    threads = decoder_threads(sum(d < s.count for d, s in zip(done, segments, strict=True)))
    progress = _Progress(store, segments, done)
    locks: defaultdict[int | str, threading.Lock] = defaultdict(threading.Lock)
    reports = [DecodeReport() for _ in segments]
    decoders: list[Decoder | None] = [None] * len(segments)
    stop = threading.Event()
    decoded_until = [s.t_first for s in segments]

    def work(i: int) -> None:
        seg = segments[i]
        expected = kept_times[seg.pos : seg.pos + seg.count]
        writer = _SegmentWriter(store, seg, i, progress, locks, expected, same)
        if done[i] >= seg.count:  # finished by an earlier run: decoded to its range's end
            reports[i].last_time = float(times[seg.stop - 1])
            return
        dec, verify = _segment_decoder(store, info, sampling, picture, seg, done[i], score, threads)
        decoders[i] = dec
        writer.decoder = dec
        try:
            for batch in dec.batches(store.chunk_frames):
                if stop.is_set():
                    return
                frames, t, idx = batch.frames, batch.times, batch.indices
                if verify is not None:
                    if not is_resume_point(frames, t, idx, verify):
                        raise PlanMismatch(f"segment {i}: resume point did not match")
                    frames, t, idx, verify = frames[1:], t[1:], idx[1:], None
                writer.add(frames, t, idx)
                decoded_until[i] = dec.report.last_time or seg.t_first
                if on_progress:
                    on_progress(_film_done(decoded_until, segments), sum(done))
            scores = dec.take_scores()  # to the next segment's first frame
            with locks["scores"]:
                store.append_scores(*scores)
            writer.flush()
        finally:
            reports[i] = dec.report
        if done[i] != seg.count:
            raise PlanMismatch(f"segment {i} decoded {done[i]} of {seg.count} planned frames")

    with ThreadPoolExecutor(max_workers=len(segments)) as pool:
        futures = [pool.submit(work, i) for i in range(len(segments))]
        try:
            for f in futures:
                f.result()
        except BaseException:
            stop.set()
            for d in decoders:
                if d is not None:
                    d.close()
            raise
    return _merge(reports)


def _film_done(decoded_until: list[float], segments: list[Segment]) -> float:
    """Seconds of film the segments have decoded so far, together."""
    return sum(d - s.t_first for d, s in zip(decoded_until, segments, strict=True))


def scores_only(
    info: MovieInfo,
    sampling: Sampling,
    picture: Picture,
    segments: list[Segment],
    on_progress=None,
) -> tuple[np.ndarray, np.ndarray, DecodeReport]:
    """Every segment decoded in its own ffmpeg process for its cut scores alone, its frames
    dropped: a complete store's cuts found without touching its frames. Returns the scores
    as (times, scores) pieces put together (see ``cutdetect.merge_scores``) and the report."""
    decoded_until = [s.t_first for s in segments]
    reports = [DecodeReport() for _ in segments]
    decoders: list[Decoder | None] = [None] * len(segments)
    threads = decoder_threads(len(segments))

    def work(i: int) -> list[tuple[np.ndarray, np.ndarray]]:
        seg = segments[i]
        dec, _ = _segment_decoder(None, info, sampling, picture, seg, 0, True, threads)
        decoders[i] = dec
        parts = []
        try:
            for _ in dec.batches(64):
                parts.append(dec.scores.take_paired())
                decoded_until[i] = dec.report.last_time or seg.t_first
                if on_progress:
                    on_progress(_film_done(decoded_until, segments), 0)
            parts.append(dec.take_scores())
        finally:
            reports[i] = dec.report
        return parts

    with ThreadPoolExecutor(max_workers=len(segments)) as pool:
        futures = [pool.submit(work, i) for i in range(len(segments))]
        try:
            parts = [p for f in futures for p in f.result()]
        except BaseException:
            for d in decoders:
                if d is not None:
                    d.close()
            raise
    times = np.concatenate([t for t, _ in parts]) if parts else np.zeros(0)
    scores = np.concatenate([s for _, s in parts]) if parts else np.zeros(0)
    return times, scores, _merge(reports)


def _same_time(times: np.ndarray, planned: np.ndarray) -> bool:
    """Every frame decoded: the planned frames themselves."""
    return bool(np.allclose(times, planned, rtol=0, atol=1e-6))


def _same_bucket(sampling: Sampling):
    """Only reference frames decoded: the first decoded frame of each planned frame's bucket
    (the planned frame itself, or a later one)."""

    def same(times: np.ndarray, planned: np.ndarray) -> bool:
        same_bucket = np.all(sampling.bucket(times) == sampling.bucket(planned))
        return bool(same_bucket and np.all(times >= planned - 1e-6))

    return same


def _merge(reports: list[DecodeReport]) -> DecodeReport:
    out = DecodeReport()
    for r in reports:
        out.errors.extend(r.errors)
        out.error_count += r.error_count
        out.timestamp_resets += r.timestamp_resets
        out.decoded += r.decoded
        if r.returncode:
            out.returncode = r.returncode
        elif out.returncode is None:
            out.returncode = r.returncode
    out.errors = out.errors[:50]
    lasts = [r.last_time for r in reports if r.last_time is not None]
    out.last_time = max(lasts) if lasts else None
    return out
