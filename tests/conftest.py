"""Shared fixtures: the ffmpeg binary, synthetic clips made with lavfi sources (colours known in
advance), the real clips shipped in tests/data, and ffmpeg's own frame timestamps as reference."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from moviebarcode.ffmpegbin import ffmpeg_exe

DATA = Path(__file__).parent / "data"


def run_ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


def make_clip(path: Path, lavfi: str, *codec: str) -> Path:
    """Encode a lavfi source graph to ``path`` (default: H.264, yuv420p, bt709 tagged)."""
    if not codec:
        codec = (
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "10",
            "-g",
            "48",
            "-vf",
            "format=rgb24,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        )
    run_ffmpeg("-f", "lavfi", "-i", lavfi, *codec, str(path))
    return path


def decoded_times(path: Path) -> np.ndarray:
    """Timestamps (s) of every frame ffmpeg decodes from ``path``, from ffmpeg's own showinfo in
    a plain decode to null: the reference for our frame counts and timestamps."""
    err = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostats",
            "-copyts",
            "-start_at_zero",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-vf",
            "showinfo=checksum=0",
            "-fps_mode",
            "passthrough",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    tb = Fraction(*map(int, re.search(r"config in time_base: (\d+)/(\d+)", err).groups()))
    pts = [int(p) for p in re.findall(r"\] n:\s*\d+ pts:\s*(-?\d+)", err)]
    return np.array([float(p * tb) for p in pts])


COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Synthetic clips, made once per session."""
    d = tmp_path_factory.mktemp("clips")
    names = ["red", "green", "blue", "white"]
    # four 2-second solid colour segments at 24 fps, 320x180
    segs = "".join(f"color=c={c}:s=320x180:r=24:d=2[v{i}];" for i, c in enumerate(names))
    concat = "".join(f"[v{i}]" for i in range(len(names))) + f"concat=n={len(names)}"
    out = {"colours": make_clip(d / "colours.mp4", segs + concat)}
    # letterboxed: a 320x136 picture padded to 320x240 with black bars
    out["letterbox"] = make_clip(
        d / "letterbox.mp4", "testsrc2=s=320x136:r=24:d=4,pad=320:240:0:52:black"
    )
    # a longer clip for kill-and-resume, with keyframes every 2 s
    out["long"] = make_clip(d / "long.mkv", "testsrc2=s=640x360:r=30:d=40")
    return out


def descendants(pid: int) -> set[int]:
    """All processes below ``pid`` (from /proc; empty where there is no /proc)."""
    kids: dict[int, list[int]] = {}
    for p in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(p))
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next((ln for ln in f if ln.startswith("State:")), "")
    except OSError:
        return False
    return "zombie" not in state.lower()


CUT_SOURCES = [
    ("testsrc2", 250),
    ("smptehdbars", 301),
    ("mandelbrot", 16),
    ("rgbtestsrc", 208),
    ("color=c=orange", 120),
    ("gradients", 95),
    ("yuvtestsrc", 60),
    ("pal75bars", 33),
    ("testsrc", 17),
]
"""The shots of the synthetic clip with known cuts: lavfi source, length in frames."""


@pytest.fixture(scope="session")
def cut_clip(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """(clip, cut frame numbers): lavfi sources concatenated, 44 s at 25 fps, H.264 with
    B-frames and a keyframe at each cut only, so that a parallel prep's two segments meet
    at a cut (frame 551)."""
    d = tmp_path_factory.mktemp("cuts")
    graph = "".join(
        f"{src}{':' if '=' in src else '='}s=192x108:r=25,trim=end_frame={n},"
        f"setpts=PTS-STARTPTS,format=yuv420p[v{i}];"
        for i, (src, n) in enumerate(CUT_SOURCES)
    )
    graph += "".join(f"[v{i}]" for i in range(len(CUT_SOURCES)))
    graph += f"concat=n={len(CUT_SOURCES)}"
    cuts = np.cumsum([n for _, n in CUT_SOURCES])[:-1]
    keys = "+".join(f"eq(n,{c})" for c in [0, *cuts])
    path = d / "cuts.mp4"
    run_ffmpeg(
        "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
        "-bf", "3", "-g", "1000", "-sc_threshold", "0", "-force_key_frames", f"expr:{keys}",
        str(path),
    )  # fmt: skip
    return path, cuts


def kalmus_python() -> str | None:
    """A Python that has KALMUS, for the tests that compare with it: $MOVIEBARCODE_KALMUS,
    else the repository's .kalmus-venv (made by scripts/kalmus-env); None without one."""
    named = os.environ.get("MOVIEBARCODE_KALMUS")
    if named:
        return named
    here = Path(__file__).resolve().parent.parent / ".kalmus-venv" / "bin" / "python"
    return str(here) if here.exists() else None


class Run(NamedTuple):
    """What a command-line run gave: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


def run_cli(*args) -> Run:
    """``moviebarcode ARGS`` through the real entry point, in this process, its output
    captured by click's CliRunner."""
    from click.testing import CliRunner

    from moviebarcode.cli import main

    with CliRunner().isolation() as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return Run(code, out.getvalue().decode(), err.getvalue().decode())


def run_process(*args, **kw) -> subprocess.CompletedProcess:
    """``python -m moviebarcode ARGS`` in a process of its own (text output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "moviebarcode", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )
