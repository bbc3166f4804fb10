"""Stage one: decode a movie once into a frame store (create, resume, or find it up to date)."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moviebarcode import segments
from moviebarcode._cpus import usable_cpus
from moviebarcode._fmt import hms
from moviebarcode.choices import Compressor, CropChoice, Hwaccel, Tonemap, check
from moviebarcode.cutdetect import ShotDetection, merge_scores, pick_cuts
from moviebarcode.decode import (
    Crop,
    Decoder,
    Picture,
    Sampling,
    check_input,
    cuda_available,
    decoded_sampling,
    detect_crop,
    is_resume_point,
    output_size,
    picture_for,
)
from moviebarcode.errors import InputError, ParameterError, StoreError
from moviebarcode.probe import MovieInfo, frame_interval, probe
from moviebarcode.store import (
    ChunkBuffer,
    FrameStore,
    default_chunk_frames,
    fingerprint,
    is_store,
    same_source,
)


@dataclass(frozen=True)
class PrepRequest:
    """The user's prep options, as given (recorded in the store to tell if it is up to date)."""

    every: int | None = None
    fps: float | None = None
    columns: int | None = None
    start: float = 0.0
    end: float | None = None
    width: int | None = None
    height: int | None = None
    size: tuple[int, int] | None = None
    crop: CropChoice = "auto"
    tonemap: Tonemap = "auto"
    chunk_frames: int | None = None
    compressor: Compressor = "none"
    keyframes: bool = False
    fast: bool = False
    hwaccel: Hwaccel = "none"
    shots: bool = True
    cut_threshold: float = ShotDetection.threshold

    def __post_init__(self):
        picked = [x is not None for x in (self.every, self.fps, self.columns)]
        if sum(picked) > 1:
            raise ParameterError("use only one of --every, --fps and --columns")
        if sum(x is not None for x in (self.width, self.height, self.size)) > 1:
            raise ParameterError("use only one of --width, --height and --size")
        if self.every is not None and self.every < 1:
            raise ParameterError("--every must be at least 1")
        if self.fps is not None and not 0 < self.fps < math.inf:
            raise ParameterError("--fps must be a number more than 0")
        if self.columns is not None and self.columns < 1:
            raise ParameterError("--columns must be at least 1")
        if not 0 <= self.start < math.inf or (
            self.end is not None and not self.start < self.end < math.inf
        ):
            raise ParameterError("--start must be >= 0 and --end after --start")
        for name in ("width", "height", "chunk_frames"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ParameterError(f"--{name.replace('_', '-')} must be at least 1")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ParameterError("--size must be WxH with both at least 1")
        if self.keyframes and (self.fps is not None or self.columns is not None):
            raise ParameterError(
                "--keyframes takes one column per keyframe: not with --fps/--columns"
            )
        if not 0 < self.cut_threshold <= 255:
            raise ParameterError("--cut-threshold must be more than 0 and at most 255")
        for literal, value, what in (
            (CropChoice, self.crop, "--crop"),
            (Tonemap, self.tonemap, "--tonemap"),
            (Compressor, self.compressor, "--compress"),
            (Hwaccel, self.hwaccel, "--hwaccel"),
        ):
            check(literal, value, what)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size) if self.size else None
        return d

    def detection(self) -> ShotDetection | None:
        """How to find the cuts; None when not asked, or with ``--keyframes`` (only
        keyframes are decoded: there is nothing to find them in)."""
        if not self.shots or self.keyframes:
            return None
        return ShotDetection(threshold=self.cut_threshold)


SHOT_KEYS = ("shots", "cut_threshold")
"""Request keys that do not change the frames: a store made with others is brought to them
(cuts added, or picked again from the stored scores) rather than refused."""
NO_KEYFRAME_CUTS = "no shot cuts with --keyframes (only keyframes are decoded)"
"""The warning of a --keyframes prep asked for cuts, new or up to date."""


@dataclass
class PrepResult:
    store: Path
    status: str  # "created", "resumed", "resumed from the start" or "up to date"
    frames: int
    warnings: list[str]


Progress = Callable[[float, int], None]  # (film seconds decoded so far, frames kept so far)


def default_output(movie: str | os.PathLike, cache_dir: str | os.PathLike = "cache") -> Path:
    return Path(cache_dir) / f"{Path(movie).stem}.zarr"


def resolve_sampling(info: MovieInfo, req: PrepRequest) -> Sampling:
    if req.columns is not None:
        end = req.end if req.end is not None else info.duration
        if end is None:
            raise InputError(
                "--columns needs the movie's duration, which its container lacks; "
                "use --every or --fps"
            )
        span = end - req.start
        return Sampling(
            every=None, fps=req.columns / span, start=req.start, end=req.end, max_frames=req.columns
        )
    if req.fps is not None:
        return Sampling(every=None, fps=req.fps, start=req.start, end=req.end)
    if req.keyframes:
        return Sampling(every=req.every or 1, start=req.start, end=req.end, keyframes=True)
    return Sampling(every=req.every or 24, start=req.start, end=req.end)


def resolve_hwaccel(req: PrepRequest) -> str | None:
    """The hardware decoder to use: None (software) or "cuda"."""
    if req.hwaccel == "none":
        return None
    if cuda_available():
        return "cuda"
    if req.hwaccel == "cuda":
        raise InputError(
            "--hwaccel cuda: this ffmpeg cannot decode on an NVIDIA GPU here (no cuda hwaccel, "
            "no scale_cuda, or no driver); use --hwaccel auto or none"
        )
    return None


def _check_output(out: Path) -> None:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder {parent} is not writable")
    if out.exists() and not is_store(out):
        if out.is_dir() and not any(out.iterdir()):
            return
        raise InputError(f"{out} exists and is not a moviebarcode store; remove it or choose -o")


class _Appender:
    """Gathers frames into whole chunks and appends them to the store."""

    def __init__(self, store: FrameStore, skip: int = 0, decoder: Decoder | None = None):
        self.store = store
        self.decoder = decoder  # whose cut scores are written with the frames
        self.buffer = ChunkBuffer(store.chunk_frames, store.frame_shape)
        self.skip = skip  # frames to drop before writing (already in the store)
        self.kept = store.frames_done

    def add(self, frames: np.ndarray, times: np.ndarray, indices: np.ndarray) -> None:
        if self.skip:
            drop = min(self.skip, len(frames))
            frames, times, indices = frames[drop:], times[drop:], indices[drop:]
            self.skip -= drop
        c = self.store.chunk_frames
        while len(frames):
            took = self.buffer.put(frames, times, indices, c)
            self.kept += took
            frames, times, indices = frames[took:], times[took:], indices[took:]
            if self.buffer.fill == c:
                self.flush()

    def flush(self) -> None:
        if self.buffer.fill:
            frames, times, indices = self.buffer.take()
            if self.decoder is not None:  # the scores first: no stored frame lacks them
                self.store.append_scores(*self.decoder.take_scores(float(times[-1])))
            self.store.append(frames, times, indices)


def _run_decoder(
    store: FrameStore,
    decoder: Decoder,
    appender: _Appender,
    progress: Progress | None,
    verify_first: tuple[float, int, np.ndarray] | None = None,
) -> bool:
    """Decode into the store. With ``verify_first``, the first kept frame must be the store's
    last frame (time, index, pixels); returns False (having written nothing) if it is not."""
    first = verify_first is not None
    for batch in decoder.batches(store.chunk_frames):
        frames, times, indices = batch.frames, batch.times, batch.indices
        if first:
            first = False
            if not is_resume_point(frames, times, indices, verify_first):
                decoder.close()
                return False
            frames, times, indices = frames[1:], times[1:], indices[1:]
        appender.add(frames, times, indices)
        if progress:
            progress(decoder.report.last_time or 0.0, appender.kept)
    if first:  # nothing at all came out of the resumed decode
        return False
    appender.flush()
    store.append_scores(*decoder.take_scores())  # the frames after the last one kept
    return True


def _existing(out: Path, request: PrepRequest, fp: dict, force: bool) -> FrameStore | None:
    """The store at ``out`` to resume or confirm, if it is one of this film and these options;
    None to create it; StoreError if it is another film's or was made with other options."""
    if force or not is_store(out):
        return None
    store = FrameStore.open(out, writable=True)
    meta = store.meta
    if not same_source(meta["source"]["fingerprint"], fp):
        raise StoreError(
            f"{out} was made from a different or changed file "
            f"({meta['source']['path']}); use --force to prep it again"
        )
    asked = {k: v for k, v in request.to_dict().items() if k not in SHOT_KEYS}
    if {k: v for k, v in meta["request"].items() if k not in SHOT_KEYS} != asked:
        diff = ", ".join(k for k, v in asked.items() if meta["request"].get(k) != v)
        raise StoreError(
            f"{out} was prepped with other options ({diff}); use --force to "
            f"replace it, or -o for another store"
        )
    return store


def _create(out: Path, info: MovieInfo, sampling: Sampling, request: PrepRequest, fp: dict):
    """A new, empty store at ``out`` for this film: crop detected, size and picture chosen."""
    crop: Crop | None = None
    if request.crop == "auto":
        crop = detect_crop(info, sampling.start, sampling.end)
    size = output_size(info, crop, width=request.width, height=request.height, size=request.size)
    tonemap = {"auto": None, "on": True, "off": False}[request.tonemap]
    picture = picture_for(
        info, crop, size, tonemap=tonemap, fast=request.fast, hwaccel=resolve_hwaccel(request)
    )
    return FrameStore.create(
        out,
        frame_shape=(size[1], size[0]),
        chunk_frames=request.chunk_frames or default_chunk_frames(size[1], size[0]),
        compressor=request.compressor,
        attrs={
            "source": {"path": info.path, "fingerprint": fp},
            "probe": info.to_dict(),
            "request": request.to_dict(),
            "sampling": dataclasses.asdict(sampling),
            "picture": picture.to_dict(),
        },
    )


def _stored_picture(store: FrameStore) -> Picture:
    pic = store.meta["picture"]
    return Picture(**{**pic, "crop": Crop(**pic["crop"]) if pic["crop"] else None})


def _finish(store: FrameStore, info: MovieInfo, sampling: Sampling, report) -> list[str]:
    """Record how decoding went and mark the store complete; the warnings to show."""
    n = store.frames_done
    expected_end = sampling.end if sampling.end is not None else info.duration
    last = report.last_time
    decode_meta = {
        "errors": report.errors,
        "error_count": report.error_count,
        "returncode": report.returncode,
        "last_decoded_time": last,
        "timestamp_resets": report.timestamp_resets,
        "decoded_frames": report.decoded,
        "truncated_at": None,
    }
    warnings = []
    if (
        expected_end is not None
        and last is not None
        and last < expected_end - max(1.0, 3 * frame_interval(info))
        and not _last_keyframe(info, sampling, last)
    ):
        decode_meta["truncated_at"] = last
        warnings.append(
            f"decoding stopped at {hms(last)} of {hms(expected_end)}: the file "
            f"looks truncated or corrupt; kept the {n} frames before that"
        )
    elif report.error_count:
        when = report.errors[0]["time"]
        at = f" (first at {hms(when)})" if when is not None else ""
        warnings.append(
            f"ffmpeg reported {report.error_count} problem(s) reading the file{at}; "
            f"kept every frame that decoded"
        )
    store.mark_complete(decode=decode_meta, frames=n)
    return warnings


def _last_keyframe(info: MovieInfo, sampling: Sampling, last: float) -> bool:
    """With ``--keyframes``, whether ``last`` is the film's last keyframe (from a cheap
    demux-only scan): decoding then ended where it should, however far from the end."""
    if not sampling.keyframes:
        return False
    times, keys, _ = segments.scan(info, sampling)
    return bool(keys.any()) and float(times[keys][-1]) <= last + 1e-6


def prep(
    movie: str | os.PathLike,
    request: PrepRequest,
    *,
    output: str | os.PathLike | None = None,
    force: bool = False,
    jobs: int | None = None,
    progress: Progress | None = None,
    on_start: Callable[[MovieInfo, Sampling, FrameStore], None] | None = None,
) -> PrepResult:
    """Decode ``movie`` into a frame store (see store.py), or finish or confirm an existing one.

    Raises InputError / StoreError / FFmpegError with a one-line message on bad input.
    """
    info = probe(movie)
    out = Path(output) if output is not None else default_output(movie)
    if out.is_symlink():  # a link to a folder: the store is made or resumed at its target
        out = out.resolve()
    _check_output(out)
    sampling = resolve_sampling(info, request)
    check_input(info, sampling)
    fp = fingerprint(movie)
    with FrameStore.writing(out):  # from the first look at the store to the last write
        store = _existing(out, request, fp, force)
        status = "resumed" if store is not None else "created"
        if store is not None and store.complete:
            damaged = store.first_damaged_frame()
            if damaged is None:
                start = (lambda: on_start(info, sampling, store)) if on_start else None
                status, warnings = bring_cuts(store, info, request, progress, jobs, start)
                return PrepResult(out, status, store.frames_done, warnings)
            store.update_meta(complete=False)  # lost or cut chunks: decode again from there
            store.truncate(damaged)
            status = f"repaired (decoded again from frame {damaged})"
        scan = _scan_ahead(info, sampling, jobs, request, fresh=store is None)
        if store is None:
            store = _create(out, info, sampling, request, fp)
        if on_start:
            on_start(info, sampling, store)
        try:
            return _fill(movie, store, info, sampling, status, jobs, progress, request, scan)
        except OSError as exc:  # disk full, a read-only folder: what is written stays valid
            raise StoreError(
                f"{out}: cannot write the store ({exc.strerror or exc}); the frames written so "
                "far are kept: make room (or fix the folder) and run the same command to resume"
            ) from None


def _scan_ahead(
    info: MovieInfo, sampling: Sampling, jobs: int | None, request: PrepRequest, fresh: bool
) -> Callable[[], segments.Scanned]:
    """The demux-only scan that plans parallel segments, as a getter. For a new store that
    will be decoded in segments it is started now, on a thread, so that it runs while the
    crop is detected."""
    if not fresh or request.keyframes or (jobs or usable_cpus()) < 2:
        return lambda: segments.scan(info, sampling)
    pool = ThreadPoolExecutor(1)
    future = pool.submit(segments.scan, info, sampling)
    pool.shutdown(wait=False)  # its thread ends with the scan
    return future.result


def _fill(
    movie, store: FrameStore, info, sampling, status, jobs, progress, request, scan
) -> PrepResult:
    """Decode into ``store`` (created or resumed) until it is complete; ``scan``: the
    getter of the demux-only scan (see :func:`_scan_ahead`)."""
    picture = _stored_picture(store)
    sampling = decoded_sampling(sampling, info, picture)
    detection = request.detection()
    score = detection is not None
    warnings: list[str] = []
    done_before = store.frames_done
    report = _decode_parallel(store, info, sampling, picture, jobs, progress, warnings, score, scan)
    if report is None:
        report, seeked = _decode_into(store, info, sampling, picture, progress, score)
        if status == "resumed" and done_before and not seeked:
            status = "resumed from the start"
    if store.frames_done == 0:
        msg = report.errors[0]["message"] if report.errors else "no frames in the chosen range"
        if status == "created":
            shutil.rmtree(store.path, ignore_errors=True)  # nothing worth keeping
        raise InputError(f"{movie}: no frame could be decoded ({msg})")
    if detection is not None:
        set_cuts(store, info, detection)
    elif sampling.keyframes and request.shots:
        warnings.append(NO_KEYFRAME_CUTS)
    warnings += _finish(store, info, sampling, report)
    return PrepResult(store.path, status, store.frames_done, warnings)


def set_cuts(store: FrameStore, info: MovieInfo, detection: ShotDetection) -> np.ndarray:
    """Pick the cuts from the store's scores (merged and stored again, compacted) and record
    them with how they were found; returns them."""
    got = store.scores()
    times, scores = merge_scores(*got) if got else (np.zeros(0), np.zeros(0))
    store.set_scores(times, scores)
    cuts = pick_cuts(times, scores, info.fps, detection)
    noref = bool(store.meta["picture"].get("noref"))
    store.set_cuts(
        cuts,
        detection.to_dict(
            frames_scored=len(times),
            scored="reference frames only (--fast)" if noref else "every decoded frame",
            fps=info.fps,
        ),
    )
    return cuts


def bring_cuts(
    store: FrameStore,
    info,
    request: PrepRequest,
    progress,
    jobs: int | None = None,
    on_decode: Callable[[], None] | None = None,
) -> tuple[str, list[str]]:
    """A complete store, brought to the request's cut options: cuts added (the film decoded
    again, the frames untouched; ``on_decode`` is called first, to show progress) or picked
    again from the stored scores. (status, warnings)"""
    detection = request.detection()
    shots = store.meta.get("shots")
    if detection is None:
        if request.shots and store.cuts is None:
            return "up to date", [NO_KEYFRAME_CUTS]
        return "up to date", []
    if shots is not None and store.has_scores:
        if shots.get("threshold") == detection.threshold:
            return "up to date", []
        cuts = set_cuts(store, info, detection)
        _record_shot_options(store, request)
        return f"up to date; {len(cuts)} cuts picked again from the stored scores", []
    store.set_scores(np.zeros(0), np.zeros(0))
    if on_decode:
        on_decode()
    report = _rescore(store, info, jobs, progress)
    if report.returncode:
        msg = report.errors[0]["message"] if report.errors else "ffmpeg failed"
        raise InputError(f"{info.path}: could not decode it again for the cuts ({msg})")
    cuts = set_cuts(store, info, detection)
    _record_shot_options(store, request)
    return f"up to date; {len(cuts)} shot cuts added (frames untouched)", []


def _rescore(store: FrameStore, info: MovieInfo, jobs: int | None, progress):
    """Decode the store's film again for the cut scores alone, in parallel segments where
    they can be planned, into the store's scores; the decoding report."""
    picture = _stored_picture(store)
    sampling = decoded_sampling(Sampling(**store.meta["sampling"]), info, picture)
    n_jobs = jobs or usable_cpus()
    plan = segments.plan(info, sampling, n_jobs, None, picture.noref) if n_jobs > 1 else None
    if plan is not None:
        times, scores, report = segments.scores_only(info, sampling, picture, plan, progress)
        store.append_scores(times, scores)
        return report
    decoder = Decoder(info, sampling, picture, score_end=_score_end(sampling))
    for _ in decoder.batches(store.chunk_frames):
        if progress:
            progress(decoder.report.last_time or 0.0, store.frames_done)
        store.append_scores(*decoder.scores.take_paired())
    store.append_scores(*decoder.take_scores())
    return decoder.report


def _record_shot_options(store: FrameStore, request: PrepRequest) -> None:
    shot_options = {k: v for k, v in request.to_dict().items() if k in SHOT_KEYS}
    store.update_meta(request={**store.meta["request"], **shot_options})


def _score_end(sampling: Sampling) -> float:
    """Frames before this time are scored for cuts."""
    return sampling.end if sampling.end is not None else math.inf


def _decode_parallel(store, info, sampling, picture, jobs, progress, warnings, score, scan):
    """Decode in parallel segments (see segments.py) when that is planned or under way; None when
    a single process should do it (then nothing has been written). ``scan``: the getter of the
    demux-only scan."""
    meta = store.meta
    under_way = meta.get("segments")
    if under_way is None:
        n_jobs = jobs or usable_cpus()
        if store.frames_done or n_jobs < 2:
            return None
        scanned = scan()
        plan = segments.plan(info, sampling, n_jobs, scanned, picture.noref)
        if plan is None:
            return None
        done = [0] * len(plan)
        store.allocate(plan[-1].pos + plan[-1].count)
        store.update_meta(segments=[{**dataclasses.asdict(s), "done": 0} for s in plan])
    else:
        fields = {f.name for f in dataclasses.fields(segments.Segment)}
        plan = [segments.Segment(**{k: v for k, v in d.items() if k in fields}) for d in under_way]
        done = [d["done"] for d in under_way]
        scanned = scan()
    try:
        report = segments.run(
            store, info, sampling, picture, plan, scanned.times, done, progress, score
        )
    except segments.PlanMismatch as exc:
        warnings.append(
            f"parallel decoding did not match this file ({exc}); decoded it again in one process"
        )
        store.update_meta(segments=None, frames_done=0)
        store.truncate(0)
        store.set_scores(np.zeros(0), np.zeros(0))
        return None
    total = plan[-1].pos + plan[-1].count
    store.update_meta(segments=None, frames_done=total, parallel={"jobs": len(plan)})
    return report


def _decode_into(
    store: FrameStore,
    info: MovieInfo,
    sampling: Sampling,
    picture: Picture,
    progress: Progress | None,
    score: bool = False,
):
    end = _score_end(sampling) if score else None
    done = store.frames_done
    store.truncate(done)
    if done:
        t_last = float(store.group["time"][done - 1])
        idx_last = int(store.group["index"][done - 1])
        pixels = store.frames[done - 1]
        seek = max(sampling.start, t_last - 1e-3)
        remaining = None if sampling.max_frames is None else sampling.max_frames - done + 1
        resumed = dataclasses.replace(sampling, max_frames=remaining)
        decoder = Decoder(info, resumed, picture, index_offset=idx_last, seek=seek, score_end=end)
        appender = _Appender(store, decoder=decoder)
        if _run_decoder(store, decoder, appender, progress, (t_last, idx_last, pixels)):
            return decoder.report, True
        store.truncate(done)  # seek was not exact for this file: decode from the start instead
    decoder = Decoder(info, sampling, picture, score_end=end)
    _run_decoder(store, decoder, _Appender(store, skip=done, decoder=decoder), progress)
    return decoder.report, False
