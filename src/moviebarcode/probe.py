"""Probing a movie into a MovieInfo, with ffmpeg alone (the imageio-ffmpeg wheel ships no ffprobe).

We read what ``ffmpeg -i MOVIE`` prints about the container and its first video stream. Frame
counts in headers are never trusted: the decoder counts frames (see decode.py).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from moviebarcode.errors import InputError
from moviebarcode.ffmpegbin import ffmpeg_exe

HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}


@dataclass(frozen=True)
class MovieInfo:
    """What we know of a movie before decoding it.

    ``width``/``height`` are the coded size; ``display_width``/``display_height`` the size as shown
    (sample aspect ratio applied, rotation applied), which is the shape the decoder delivers.
    """

    path: str
    duration: float | None  # seconds, from the container (None when unknown)
    start_time: float
    codec: str
    pix_fmt: str
    width: int
    height: int
    sar: tuple[int, int]
    fps: float | None  # nominal frame rate (may be None for variable-rate streams)
    rotation: int  # degrees clockwise the picture is turned for display: 0, 90, 180 or 270
    stream: int  # index of the stream among the file's video streams
    color_range: str | None = None
    color_space: str | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    bit_depth: int = 8
    warnings: list[str] = field(default_factory=list)

    @property
    def hdr(self) -> bool:
        """True for PQ (smpte2084) or HLG (arib-std-b67) sources, which need tone mapping."""
        return self.color_transfer in HDR_TRANSFERS

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as displayed: SAR applied to the width, then the rotation."""
        w = max(1, round(self.width * self.sar[0] / self.sar[1]))
        h = self.height
        return (h, w) if self.rotation in (90, 270) else (w, h)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hdr"] = self.hdr
        return d


_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)\S*: (\w+): (.*)$")
_VIDEO = re.compile(r"^(\w+)(?: \([^)]*\))*, (\w+)(?:\(([^)]*)\))?")
_SIZE = re.compile(r", (\d+)x(\d+)")
_SAR = re.compile(r"\[SAR (\d+):(\d+) DAR")
_FPS = re.compile(r", ([\d.]+)(k?) fps")
_TBR = re.compile(r", ([\d.]+)(k?) tbr")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_START = re.compile(r"start: (-?[\d.]+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_DEPTH = re.compile(r"(?:p|le|be)?(\d{2})(?:le|be)$")
_FAIL = re.compile(
    r"(Invalid data found|No such file|Permission denied|could not find codec|"
    r"Error opening input|End of file)",
    re.I,
)


def _rate(m: re.Match | None) -> float | None:
    if not m:
        return None
    v = float(m.group(1)) * (1000 if m.group(2) else 1)
    return v if v > 0 else None


def _colours(spec: str | None) -> dict:
    """Parse what follows the pixel format: '(tv, bt2020nc/bt2020/smpte2084, progressive)'."""
    out: dict = {}
    for tok in (t.strip() for t in (spec or "").split(",")):
        if tok in ("tv", "pc"):
            out["color_range"] = tok
        elif (
            tok
            and tok not in ("progressive", "top first", "bottom first", "top coded first (swapped)")
            and not tok.startswith(("topleft", "left", "center", "top", "bottom"))
        ):
            parts = tok.split("/")
            if len(parts) == 3:
                out["color_space"], out["color_primaries"], out["color_transfer"] = parts
            elif len(parts) == 1 and re.fullmatch(r"[\w-]+", tok) and tok not in ("unknown",):
                out["color_space"] = out["color_primaries"] = out["color_transfer"] = tok
    return {k: (None if v == "unknown" else v) for k, v in out.items()}


def parse_ffmpeg_info(text: str, path: str) -> MovieInfo:
    """Build a MovieInfo from what ``ffmpeg -hide_banner -i PATH`` printed on stderr."""
    lines = text.splitlines()
    duration = None
    start = 0.0
    for line in lines:
        if m := _DURATION.search(line):
            h, mi, s = m.groups()
            duration = int(h) * 3600 + int(mi) * 60 + float(s)
        if "Duration:" in line and (m := _START.search(line)):
            start = float(m.group(1))
    video_seen = 0
    for i, line in enumerate(lines):
        m = _STREAM.match(line)
        if not m or m.group(2) != "Video":
            continue
        body = m.group(3)
        if "(attached pic)" in body:
            video_seen += 1
            continue
        v = _VIDEO.match(body)
        size = _SIZE.search(body)
        if not v or not size:
            video_seen += 1
            continue
        sar = (1, 1)
        if s := _SAR.search(body):
            sar = (
                (int(s.group(1)), int(s.group(2)))
                if int(s.group(1)) and int(s.group(2))
                else (1, 1)
            )
        rotation = 0
        for follow in lines[i + 1 :]:
            if _STREAM.match(follow):
                break
            if r := _ROTATION.search(follow):
                # ffmpeg reports the display matrix's counter-clockwise angle; we keep clockwise.
                rotation = int(round(-float(r.group(1)))) % 360
                break
        pix_fmt = v.group(2)
        depth = _DEPTH.search(pix_fmt)
        fps = _rate(_FPS.search(body)) or _rate(_TBR.search(body))
        return MovieInfo(
            path=path,
            duration=duration,
            start_time=start,
            codec=v.group(1),
            pix_fmt=pix_fmt,
            width=int(size.group(1)),
            height=int(size.group(2)),
            sar=sar,
            fps=fps,
            rotation=rotation if rotation in (0, 90, 180, 270) else 0,
            stream=video_seen,
            bit_depth=int(depth.group(1))
            if depth and int(depth.group(1)) in (9, 10, 12, 14, 16)
            else 8,
            **_colours(v.group(3)),
        )
    if any(_STREAM.match(line) for line in lines):
        raise InputError(f"{path}: no video stream (audio-only or data file?)")
    fail = next((ln.strip() for ln in reversed(lines) if _FAIL.search(ln)), None)
    reason = fail.split(": ", 1)[-1] if fail else "not a movie ffmpeg can read"
    raise InputError(f"{path}: {reason}")


def check_readable(path: str | os.PathLike) -> Path:
    """The checks ffmpeg would report badly: missing, a folder, unreadable, zero bytes."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a movie file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    return p


def probe(path: str | os.PathLike) -> MovieInfo:
    """Probe ``path`` with ffmpeg and return its MovieInfo; InputError if it is no usable video."""
    p = check_readable(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    info = parse_ffmpeg_info(proc.stderr, str(p.resolve()))
    if info.duration is not None and not math.isfinite(info.duration):
        info = MovieInfo(**{**info.__dict__, "duration": None})
    return info


def frame_interval(info: MovieInfo) -> float:
    """A frame's nominal duration in seconds (1/25 when the rate is unknown)."""
    return float(1 / Fraction(info.fps).limit_denominator(100000)) if info.fps else 0.04
