"""Decoding: an ffmpeg child process, built with ffmpeg-python, that samples, crops, scales and
converts frames inside its filter graph and writes rawvideo rgb24 to a pipe; we read it in batches.

Each kept frame's source timestamp and frame number come from two ``showinfo`` filters (one
before ``select``, one after), parsed from ffmpeg's log on a thread. Timestamps are seconds from
the start of the file (``-copyts -start_at_zero``), so a run that seeks (a resume, ``--start``)
sees the same times as one that does not.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import io
import math
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import ffmpeg
import numpy as np

from moviebarcode._cpus import usable_cpus
from moviebarcode._fmt import hms
from moviebarcode.cutdetect import SMALL
from moviebarcode.errors import FFmpegError, InputError, Interrupted
from moviebarcode.ffmpegbin import ffmpeg_exe, has_filter
from moviebarcode.probe import MovieInfo, frame_interval
from moviebarcode.scorepipe import ScoreLog, ScoreReader

MAX_ERRORS_KEPT = 50
# area averaging to downscale; exact rounding and full chroma so colours are not biased
SCALE_FLAGS = "area+accurate_rnd+full_chroma_int"


@dataclass(frozen=True)
class Sampling:
    """Which frames to keep. Exactly one of ``every`` and ``fps`` is set.

    every: keep decoded frames 0, N, 2N, ... (counted from ``start``).
    fps:   keep the first frame of each 1/fps-second bucket (counted from ``start``).
    max_frames: stop after this many kept frames (``--columns``).
    """

    every: int | None = 24
    fps: float | None = None
    start: float = 0.0
    end: float | None = None
    max_frames: int | None = None
    keyframes: bool = False  # decode keyframes only (a fast preview); ``every`` counts keyframes

    def select_expr(self, index_offset: int = 0, prev_bucket: int = -1) -> str:
        """ffmpeg's select expression. ``index_offset`` is the frame number of the first decoded
        frame (the every-N phase); ``prev_bucket`` the fps bucket of the frame before it (-1:
        none), so that a run starting mid-film keeps exactly the frames a whole run keeps."""
        if self.every is not None:
            return f"not(mod(n+{index_offset},{self.every}))"
        f, s = repr(float(self.fps)), repr(float(self.start))
        bucket = "floor(({t}-" + s + ")*" + f + "+1e-6)"
        now, prev = bucket.format(t="t"), bucket.format(t="prev_selected_t")
        # keep the first frame of each bucket; not-equal rather than greater, so that a file
        # whose timestamps jump back stays sampled
        return f"if(isnan(prev_selected_t),not(eq({now},{prev_bucket})),not(eq({now},{prev})))"

    def bucket(self, t: float | np.ndarray) -> int | np.ndarray:
        """The fps bucket of time ``t`` (a float, or an array of them), computed as the select
        expression does."""
        b = np.floor((np.asarray(t, dtype=np.float64) - float(self.start)) * float(self.fps) + 1e-6)
        return int(b) if b.ndim == 0 else b


@dataclass(frozen=True)
class Crop:
    """A crop box in decoded (rotated) frame pixels."""

    w: int
    h: int
    x: int
    y: int


@dataclass(frozen=True)
class Picture:
    """How each kept frame is turned into the stored picture."""

    width: int
    height: int
    crop: Crop | None = None
    tonemap: bool = False  # HDR (PQ/HLG) -> SDR bt709 via zscale + tonemap
    color_matrix: str = "bt709"  # YUV->RGB matrix for untagged sources
    color_range: str = "tv"
    hdr_transfer: str = "smpte2084"  # zscale's name of the HDR transfer: smpte2084 or arib-std-b67
    fast: bool = False  # cheaper decoding: no loop filter, fast (non-conformant) tricks
    hwaccel: str | None = None  # "cuda": decode on NVDEC and shrink with scale_cuda on the GPU
    noref: bool = False  # decode only the frames others refer to (see decoded_sampling)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DecodeReport:
    """What went wrong while decoding: ffmpeg's error lines with the film time they appeared at."""

    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    returncode: int | None = None
    last_time: float | None = None  # time of the last frame ffmpeg decoded (kept or not)
    timestamp_resets: int = 0  # times the source's timestamps jumped back (repaired)
    signal: int | None = None  # the signal ffmpeg says it received and exited on, if any
    decoded: int = 0  # frames the decoder delivered, kept or not


def _filter_graph(
    info: MovieInfo,
    sampling: Sampling,
    picture: Picture,
    index_offset: int,
    seek: float | None,
    prev_bucket: int,
    score_to: tuple[int, float] | None = None,
    threads: int | None = None,
):
    seek = sampling.start if seek is None else seek
    inp_kwargs = {} if threads is None else {"threads": threads}
    if seek > 0:
        inp_kwargs["ss"] = f"{seek:.6f}"
    if sampling.end is not None:
        # read a little past the end; select cuts exactly at it
        inp_kwargs["t"] = f"{sampling.end - seek + 2 * frame_interval(info):.6f}"
    if sampling.keyframes:
        inp_kwargs["skip_frame"] = "nokey"
    elif picture.noref:
        inp_kwargs["skip_frame"] = "noref"
    if picture.fast:
        inp_kwargs["skip_loop_filter"] = "all"
        inp_kwargs["flags2"] = "+fast"
    if picture.hwaccel == "cuda":
        inp_kwargs["hwaccel"] = "cuda"
        inp_kwargs["hwaccel_output_format"] = "cuda"
    v = ffmpeg.input(info.path, **inp_kwargs)[f"v:{info.stream}"]
    v = v.filter("showinfo", checksum=0)
    small_out = None
    if score_to is not None:
        split = v.filter_multi_output("split")
        v = split[0]
        small_out = _small_output(split[1], info, picture, *score_to)
    expr = sampling.select_expr(index_offset, prev_bucket)
    if sampling.end is not None:
        expr = f"({expr})*lt(t,{sampling.end!r})"
    v = v.filter("select", expr)
    v = v.filter("showinfo", checksum=0)
    crop = picture.crop
    if picture.hwaccel == "cuda":
        v, crop = _cuda_shrink(v, info, picture)
    if crop is not None:
        c = crop
        v = v.filter("crop", c.w, c.h, c.x, c.y, exact=1)
    if picture.tonemap:
        v = v.filter("scale", picture.width, picture.height, flags=SCALE_FLAGS)
        v = v.filter("format", "yuv444p16le")
        # say what the input is, in case the stream is tagged only in part
        v = v.filter(
            "zscale",
            tin=picture.hdr_transfer,
            pin="bt2020",
            min="2020_ncl",
            rin="limited" if picture.color_range == "tv" else "full",
            t="linear",
            npl=100,
        )
        v = v.filter("format", "gbrpf32le")
        v = v.filter("zscale", p="bt709")
        v = v.filter("tonemap", tonemap="hable", desat=0)
        v = v.filter("zscale", t="bt709", m="bt709", r="pc")
        v = v.filter("format", "gbrp")
        v = v.filter("format", "rgb24")
    else:
        v = v.filter(
            "scale",
            picture.width,
            picture.height,
            flags=SCALE_FLAGS,
            in_color_matrix=picture.color_matrix,
            in_range=picture.color_range,
        )
        v = v.filter("format", "rgb24")
    out_kwargs = {"format": "rawvideo", "pix_fmt": "rgb24", "fps_mode": "passthrough"}
    if sampling.max_frames is not None:
        out_kwargs["frames:v"] = sampling.max_frames
    out = ffmpeg.output(v, "pipe:", **out_kwargs)
    return out if small_out is None else ffmpeg.merge_outputs(out, small_out)


def _small_output(v, info: MovieInfo, picture: Picture, fd: int, end: float):
    """The second output: every decoded frame before ``end``, cropped as the picture is and
    shrunk to :data:`~moviebarcode.cutdetect.SMALL` (bilinear from the nearest pixels),
    rgb24 to the pipe ``fd``, for the cut scores."""
    if math.isfinite(end):
        v = v.filter("select", f"lt(t,{end!r})")
    crop = picture.crop
    small = dataclasses.replace(picture, width=SMALL[0], height=SMALL[1])
    if picture.hwaccel == "cuda":
        v, crop = _cuda_shrink(v, info, small)
    if crop is not None:
        v = v.filter("crop", crop.w, crop.h, crop.x, crop.y, exact=1)
    # swscale's default YUV->RGB conversion, as OpenCV (so PySceneDetect) decodes
    v = v.filter("scale", SMALL[0], SMALL[1], flags="fast_bilinear")
    v = v.filter("format", "rgb24")
    return ffmpeg.output(
        v, f"pipe:{fd}", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough"
    )


def _cuda_shrink(v, info: MovieInfo, picture: Picture):
    """On the GPU: shrink the decoded frames to about twice the target size with scale_cuda, then
    bring them to the host; the exact crop and the area scaling to the target happen on the CPU
    as in the software path. Returns the stream and the crop box scaled to the shrunk frame."""
    fw, fh = _decoded_size(info)
    c = picture.crop or Crop(fw, fh, 0, 0)
    factor = min(1.0, 2 * picture.width / c.w, 2 * picture.height / c.h)
    sw, sh = max(2, round(fw * factor / 2) * 2), max(2, round(fh * factor / 2) * 2)
    v = v.filter("scale_cuda", w=sw, h=sh, format="yuv420p", interp_algo="bilinear")
    v = v.filter("hwdownload").filter("format", "yuv420p")
    if picture.crop is None:
        return v, None
    sx, sy = sw / fw, sh / fh
    box = Crop(
        w=max(1, round(c.w * sx)), h=max(1, round(c.h * sy)), x=round(c.x * sx), y=round(c.y * sy)
    )
    return v, box


def build_command(
    info: MovieInfo,
    sampling: Sampling,
    picture: Picture,
    index_offset: int = 0,
    seek: float | None = None,
    prev_bucket: int = -1,
    score_to: tuple[int, float] | None = None,
    *,
    threads: int | None = None,
):
    """The ffmpeg command line (a list) that decodes ``info.path`` as asked. ``seek`` (seconds)
    starts decoding there instead of at ``sampling.start``, frame numbers then counting from
    ``index_offset`` and the fps sampling going on from ``prev_bucket`` (to resume, or to decode
    one segment of a parallel prep). ``score_to`` (fd, end): also write a small copy of every
    decoded frame before ``end`` to the pipe ``fd``, for the cut scores. ``threads``: the
    decoder's threads (default: ffmpeg's choice); the frames are the same whatever it is."""
    if picture.tonemap and not has_filter("zscale"):
        raise FFmpegError(
            "this ffmpeg has no zscale filter, needed to tone-map HDR; try --tonemap off"
        )
    graph = _filter_graph(
        info, sampling, picture, index_offset, seek, prev_bucket, score_to, threads
    )
    args = graph.compile(cmd=ffmpeg_exe())
    glob = [
        "-hide_banner",
        "-nostats",
        "-nostdin",
        "-loglevel",
        "info",
        "-copyts",
        "-start_at_zero",
    ]
    if threads is not None:
        glob += ["-filter_complex_threads", str(threads)]
    return [args[0], *glob, *args[1:]]


_SHOWINFO = re.compile(
    r"\[Parsed_showinfo_(\d+) @ [^\]]*\] "
    r"(?:config in time_base: (\d+)/(\d+)|n:\s*(\d+) pts:\s*(\S+))"
)
_ERROR = re.compile(r"error|invalid|corrupt|truncat|concealing|missing|broken", re.I)
_BENIGN = re.compile(r"non monotonically increasing dts|Press \[q\]|deprecated", re.I)
_SIGNAL = re.compile(r"received signal (\d+)")


class _LogReader(threading.Thread):
    """Reads ffmpeg's stderr: pairs each kept frame with its source number and time, and keeps
    error lines. Memory is bounded: pending pre-select entries are dropped once passed."""

    def __init__(
        self,
        stream,
        index_offset: int,
        report: DecodeReport,
        interval: float,
        rate: float | None = None,
        scores: ScoreLog | None = None,
    ):
        super().__init__(daemon=True)
        self.scores = scores  # gets every decoded frame's time, for its cut score
        self.interval = interval
        self.rate = rate  # frame numbers from times (only some frames are decoded), else None
        self._offset = 0.0  # added to timestamps after a backward jump, to keep them increasing
        self.stream = stream
        self.offset = index_offset
        self.report = report
        self.kept: queue.Queue = queue.Queue()
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self._tb: dict[int, float] = {}
        self._pending: collections.deque = collections.deque()

    def run(self) -> None:
        try:
            for raw in self.stream:
                self._line(raw.decode("utf-8", "replace").rstrip())
        finally:
            self.kept.put(None)
            if self.scores is not None:
                self.scores.end_times()

    def _line(self, line: str) -> None:
        m = _SHOWINFO.search(line)
        if m is None and (sig := _SIGNAL.search(line)):
            self.report.signal = int(sig.group(1))  # ffmpeg's own "Exiting ..., received signal"
            return
        if m is None:
            if line and not _BENIGN.search(line):
                self.tail.append(line)
                if _ERROR.search(line):
                    self.report.error_count += 1
                    if len(self.report.errors) < MAX_ERRORS_KEPT:
                        self.report.errors.append({"time": self.report.last_time, "message": line})
            return
        inst = int(m.group(1))
        if m.group(2):
            self._tb[inst] = int(m.group(2)) / int(m.group(3))
            return
        n, pts = int(m.group(4)), m.group(5)
        pts_v = int(pts) if pts.lstrip("-").isdigit() else None
        first = min(self._tb) if self._tb else inst
        tb = self._tb.get(inst, 0.0)
        t = pts_v * tb if pts_v is not None else math.nan
        if inst == first:  # before select: every decoded frame
            if math.isnan(t):
                t = (self.report.last_time or 0.0) + self.interval
            else:
                t += self._offset
                last = self.report.last_time
                if last is not None and t < last - 1e-9:  # timestamps jumped back: continue on
                    self._offset += last + self.interval - t
                    t = last + self.interval
                    self.report.timestamp_resets += 1
            self._pending.append((pts_v, n, t))
            if self.scores is not None:
                self.scores.add_time(t)
            self.report.last_time = t
            self.report.decoded += 1
            return
        # after select: a kept frame; find its source number and time among the pending ones
        while self._pending:
            p, src, tt = self._pending.popleft()
            if p == pts_v:
                number = src + self.offset if self.rate is None else round(tt * self.rate)
                self.kept.put((number, tt))
                return
        self.kept.put((-1, t))


def _read_exact(stream, view: memoryview) -> int:
    got = 0
    while got < len(view):
        r = stream.readinto(view[got:])
        if not r:
            break
        got += r
    return got


@dataclass
class Batch:
    """Up to ``chunk`` kept frames: ``frames`` (m, h, w, 3) uint8, ``times`` (m,) float64 seconds
    from the start of the file, ``indices`` (m,) int64 decoded-frame numbers. The arrays are
    reused for the next batch: copy or write them before asking for it."""

    frames: np.ndarray
    times: np.ndarray
    indices: np.ndarray


class Decoder:
    """One ffmpeg process; iterate ``batches()``; ``report`` says what went wrong, if anything.

    With ``score_end``, every decoded frame before that time (inf: all) is also scored for
    cuts; take the scores with :meth:`take_scores`."""

    def __init__(
        self,
        info: MovieInfo,
        sampling: Sampling,
        picture: Picture,
        *,
        index_offset: int = 0,
        seek: float | None = None,
        prev_bucket: int = -1,
        score_end: float | None = None,
        threads: int | None = None,
    ):
        self.info = info
        self.picture = picture
        # frame numbers from times where only some frames are decoded
        self.rate = info.fps if picture.noref and not sampling.keyframes else None
        self._command = functools.partial(
            build_command,
            info,
            sampling,
            picture,
            index_offset,
            seek,
            prev_bucket,
            threads=threads,
        )
        self.cmd = self._command()
        self.index_offset = index_offset
        self.report = DecodeReport()
        self.proc: subprocess.Popen | None = None
        self.score_end = score_end
        self.scores = ScoreLog() if score_end is not None else None

    def take_scores(self, until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times, cut scores) of the decoded frames up to ``until`` not taken yet (all of
        them once decoding is over: None); empty when not scoring."""
        if self.scores is None:
            return np.zeros(0), np.zeros(0)
        try:
            return self.scores.take(until)
        except TimeoutError:
            raise FFmpegError("ffmpeg stopped sending the frames scored for cuts") from None

    def _start(self) -> ScoreReader | None:
        """Start ffmpeg (and the reader of its score pipe, if scoring)."""
        popen = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        if self.scores is None:
            self.proc = subprocess.Popen(self.cmd, bufsize=0, **popen)
            return None
        r, w = os.pipe()
        try:
            self.cmd = cmd = self._command(score_to=(w, self.score_end))  # what runs
            self.proc = subprocess.Popen(cmd, bufsize=0, pass_fds=(w,), **popen)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        reader = ScoreReader(os.fdopen(r, "rb", buffering=0), self.scores)
        reader.start()
        return reader

    def batches(self, chunk: int) -> Iterator[Batch]:
        h, w = self.picture.height, self.picture.width
        frames = np.empty((chunk, h, w, 3), np.uint8)
        times = np.empty(chunk, np.float64)
        indices = np.empty(chunk, np.int64)
        scorer = self._start()
        proc = self.proc
        # stdout is read unbuffered straight into the frame arrays; stderr needs a buffer, or
        # reading it line by line costs a system call per byte
        stderr = io.BufferedReader(proc.stderr, 1 << 16)
        interval = frame_interval(self.info)
        log = _LogReader(stderr, self.index_offset, self.report, interval, self.rate, self.scores)
        log.start()
        m = 0
        try:
            while True:
                got = _read_exact(proc.stdout, memoryview(frames[m]).cast("B"))
                if got < frames[m].nbytes:
                    break
                meta = log.kept.get()
                if meta is None:
                    raise FFmpegError("ffmpeg's frame log ended before its frames did")
                indices[m], times[m] = meta
                m += 1
                if m == chunk:
                    yield Batch(frames, times, indices)
                    m = 0
            if m:
                yield Batch(frames[:m], times[:m], indices[:m])
        finally:
            self.close()
            log.join(timeout=5)
            if scorer is not None:
                scorer.join(timeout=5)
        self.report.returncode = proc.returncode
        _raise_if_interrupted(self.report)
        if proc.returncode != 0 and not self.report.errors:
            errs = [ln for ln in log.tail if _ERROR.search(ln)]
            reason = (errs or list(log.tail) or [f"exit status {proc.returncode}"])[0]
            self.report.errors.append({"time": self.report.last_time, "message": reason})
            self.report.error_count += 1

    def close(self) -> None:
        """Stop ffmpeg (if still running) and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()


def _raise_if_interrupted(report: DecodeReport) -> None:
    """Interrupted when ffmpeg ended on a signal (killed: a negative return code; or stopped
    by one it caught, which it logs): an interruption to resume, not the film's end."""
    code = report.returncode
    sig = -code if code is not None and code < 0 else report.signal
    if sig is None:
        return
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    raise Interrupted(
        f"ffmpeg was stopped by {name} after {hms(report.last_time)} of film; the store is "
        "incomplete: run the same command again to resume"
    )


def cuda_available() -> bool:
    """Whether the chosen ffmpeg can decode on NVDEC here: it lists the cuda hwaccel and has
    scale_cuda, and a CUDA device can be opened (driver present). Probed once per process."""
    return _cuda_probe()


@functools.cache
def _cuda_probe() -> bool:
    exe = ffmpeg_exe()
    out = subprocess.run([exe, "-hide_banner", "-hwaccels"], capture_output=True, text=True)
    if "cuda" not in out.stdout.split() or not has_filter("scale_cuda"):
        return False
    test = subprocess.run(
        [
            exe,
            "-v",
            "error",
            "-init_hw_device",
            "cuda",
            "-f",
            "lavfi",
            "-i",
            "color=s=64x64",
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
    )
    return test.returncode == 0


_CROP = re.compile(r"crop=(\d+):(\d+):(\d+):(\d+)")


def detect_crop(
    info: MovieInfo, start: float = 0.0, end: float | None = None, points: int = 8, frames: int = 3
) -> Crop | None:
    """Letterbox/pillarbox detection: ffmpeg's cropdetect on a few keyframes at each of
    ``points`` places spread over [start, end], keeping the union of the boxes (so a dark scene
    cannot over-crop). Only keyframes are decoded, so it costs a few frames a place whatever the
    keyframe interval. Returns None when there is nothing to crop."""
    end = end if end is not None else (info.duration or start + 60)
    span = max(end - start, 0.0)

    def box_at(i: int) -> tuple[int, int, int, int] | None:
        t = start + span * (i + 0.5) / points
        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-skip_frame",
            "nokey",
            "-threads",
            "1",  # a few frames: a decoder's threads would only add their start-up
            "-noaccurate_seek",
            "-ss",
            f"{t:.3f}",
            "-i",
            info.path,
            "-map",
            f"0:v:{info.stream}",
            "-vf",
            "cropdetect=limit=24:round=2:reset=0:skip=0",
            "-frames:v",
            str(frames),
            "-an",
            "-f",
            "null",
            "-",
        ]
        err = subprocess.run(cmd, capture_output=True, text=True, errors="replace").stderr
        found = _CROP.findall(err)
        if found:
            w, h, x, y = map(int, found[-1])
            if w > 0 and h > 0:
                return (x, y, x + w, y + h)
        return None

    # the probes are short ffmpeg runs: run them side by side
    with ThreadPoolExecutor(max_workers=min(points, usable_cpus())) as pool:
        boxes = [b for b in pool.map(box_at, range(points)) if b is not None]
    if not boxes:
        return None
    fw, fh = info.display_size if info.sar == (1, 1) else _decoded_size(info)
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = min(max(b[2] for b in boxes), fw)
    y1 = min(max(b[3] for b in boxes), fh)
    if (x1 - x0, y1 - y0) == (fw, fh) or x1 - x0 < fw // 4 or y1 - y0 < fh // 4:
        return None  # nothing to crop, or an implausible box (a film that is mostly black)
    return Crop(w=x1 - x0, h=y1 - y0, x=x0, y=y0)


def _decoded_size(info: MovieInfo) -> tuple[int, int]:
    """Size of the decoded (autorotated) frame in pixels, before any SAR correction."""
    w, h = info.width, info.height
    return (h, w) if info.rotation in (90, 270) else (w, h)


def decoded_sar(info: MovieInfo) -> float:
    """Sample aspect ratio of the decoded (autorotated) frame."""
    s = info.sar[0] / info.sar[1]
    return 1 / s if info.rotation in (90, 270) else s


def output_size(
    info: MovieInfo,
    crop: Crop | None,
    *,
    width: int | None = None,
    height: int | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """(width, height) of stored frames: ``size`` exactly, or one side given and the other from
    the displayed aspect ratio of the (cropped) picture."""
    if size is not None:
        return size
    fw, fh = (crop.w, crop.h) if crop else _decoded_size(info)
    aspect = fw * decoded_sar(info) / fh
    if height is not None:
        return max(1, round(height * aspect)), height
    width = width or 160
    return width, max(1, round(width / aspect))


def picture_for(
    info: MovieInfo,
    crop: Crop | None,
    out: tuple[int, int],
    *,
    tonemap: bool | None = None,
    fast: bool = False,
    hwaccel: str | None = None,
) -> Picture:
    """The Picture for a source: colour matrix and range from its tags, or the usual guesses
    (bt709 for HD, bt601 for SD) when untagged; tone mapping for HDR sources."""
    matrix = info.color_space or ("bt709" if info.height >= 720 else "bt601")
    matrix = {
        "smpte170m": "bt601",
        "bt470bg": "bt601",
        "bt2020nc": "bt2020",
        "bt2020c": "bt2020",
        "fcc": "fcc",
        "smpte240m": "smpte240m",
    }.get(matrix, matrix)
    if matrix not in ("bt709", "bt601", "bt2020", "fcc", "smpte240m"):
        matrix = "bt709"
    rng = "pc" if info.color_range == "pc" or info.pix_fmt.startswith("yuvj") else "tv"
    do_tonemap = info.hdr if tonemap is None else tonemap
    hdr_transfer = "arib-std-b67" if info.color_transfer == "arib-std-b67" else "smpte2084"
    return Picture(
        width=out[0],
        height=out[1],
        crop=crop,
        tonemap=do_tonemap,
        color_matrix=matrix,
        color_range=rng,
        hdr_transfer=hdr_transfer,
        fast=fast,
        hwaccel=hwaccel,
        noref=fast and bool(info.fps),
    )


def decoded_sampling(sampling: Sampling, info: MovieInfo, picture: Picture) -> Sampling:
    """The sampling the decoder runs: as asked, except that when only reference frames are
    decoded (``picture.noref``), ``every`` N frames becomes one frame per N frame intervals
    of time (counting frames that are never decoded means nothing): the first frame decoded
    at or after each N-th frame's time, which is that frame itself whenever it is a
    reference frame."""
    if not picture.noref or sampling.every is None or sampling.keyframes or not info.fps:
        return sampling
    rate = float(Fraction(info.fps).limit_denominator(100000) / sampling.every)
    return dataclasses.replace(sampling, every=None, fps=rate)


def check_input(info: MovieInfo, sampling: Sampling) -> None:
    """Reject options that cannot fit this movie, before anything is written."""
    if info.duration is not None and sampling.start >= info.duration:
        raise InputError(
            f"--start {sampling.start:g}s is past the end of the movie ({info.duration:g}s)"
        )
    if sampling.end is not None and sampling.end <= sampling.start:
        raise InputError("--end must be after --start")


def is_resume_point(frames: np.ndarray, times: np.ndarray, indices: np.ndarray, last) -> bool:
    """Whether the first of a resumed decode's frames is ``last``, the store's last frame
    (time, index, pixels): the seek was exact, and decoding can go on from there."""
    t, idx, pixels = last
    return abs(times[0] - t) < 1e-6 and indices[0] == idx and np.array_equal(frames[0], pixels)
