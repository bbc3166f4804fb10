"""The command line as a user meets it: bad input gets one line and a non-zero exit, never a
traceback and never a store that reads as complete; an interrupted prep resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from conftest import DATA, run_ffmpeg
from moviebarcode.store import FrameStore


def cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "moviebarcode", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def assert_one_line_error(r, *words):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert lines, "no error message"
    assert len(lines) == 1, r.stderr
    text = r.stderr.lower()
    for w in words:
        assert w.lower() in text, r.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("this is not a movie\n" * 100)
    run_ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(d / "audio.m4a")
    )
    (d / "dir.mp4").mkdir()
    return d


@pytest.mark.parametrize(
    "name, words",
    [
        ("missing.mp4", ["no such file"]),
        ("empty.mp4", ["empty"]),
        ("notes.mp4", ["notes.mp4"]),
        ("audio.m4a", ["no video stream"]),
        ("dir.mp4", ["folder"]),
    ],
)
def test_bad_movies(bad_files, tmp_path, name, words):
    out = tmp_path / "x.zarr"
    r = cli("prep", bad_files / name, "-o", out)
    assert_one_line_error(r, *words)
    assert not out.exists()


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("prep", DATA / "bbb_excerpt_mpeg4.mkv", "-o", blocker / "sub" / "x.zarr")
    assert_one_line_error(r, "cannot create output folder")
    r = cli("prep", DATA / "bbb_excerpt_mpeg4.mkv", "-o", blocker)
    assert_one_line_error(r, "not a moviebarcode store")
    assert blocker.read_text() == "x"


def test_info_errors(tmp_path):
    assert_one_line_error(cli("info", tmp_path / "nope.zarr"), "no such store")
    (tmp_path / "plain").mkdir()
    assert_one_line_error(cli("info", tmp_path / "plain"), "not a moviebarcode store")
    g = zarr.open_group(tmp_path / "old.zarr", mode="w")
    g.attrs["moviebarcode"] = {"layout_version": 99}
    assert_one_line_error(cli("info", tmp_path / "old.zarr"), "layout version")


def test_default_output_and_info(tmp_path):
    r = cli("prep", DATA / "bbb_excerpt_mpeg4.mkv", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""  # quiet means quiet
    store = tmp_path / "cache" / "bbb_excerpt_mpeg4.zarr"
    assert FrameStore.open(store).complete
    r = cli("info", store)
    assert r.returncode == 0 and "complete" in r.stdout and "frames:" in r.stdout
    r = cli("info", DATA / "bbb_excerpt_mpeg4.mkv")
    assert r.returncode == 0 and "mpeg4" in r.stdout and "1280x720" in r.stdout
    r = cli("prep", DATA / "bbb_excerpt_mpeg4.mkv", cwd=tmp_path)
    assert r.returncode == 0 and "up to date" in r.stdout


def _frames_done(store) -> int:
    try:
        return zarr.open_group(store, mode="r").attrs["moviebarcode"]["frames_done"]
    except Exception:  # noqa: BLE001 - not created yet
        return 0


@pytest.mark.parametrize("mode", [["--every", "1"], ["--fps", "7"]])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_kill_and_resume_is_byte_identical(clips, tmp_path, mode, how):
    movie = clips["long"]
    opts = [*mode, "--chunk-frames", "8", "-q"]
    full = tmp_path / "full.zarr"
    assert cli("prep", movie, "-o", full, *opts).returncode == 0
    part = tmp_path / "part.zarr"
    p = subprocess.Popen(
        [sys.executable, "-m", "moviebarcode", "prep", movie, "-o", part, *opts],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while _frames_done(part) < 40 and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    if p.poll() is not None:
        pytest.fail("prep finished before it could be interrupted; make the clip longer")
    os.kill(p.pid, how)
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0
    if how == signal.SIGINT:
        assert "Traceback" not in err and "interrupted" in err
    # the interrupted store is incomplete, says so, and holds whole chunks only
    s = FrameStore.open(part)
    assert not s.complete and s.frames_done % 8 == 0
    info = cli("info", part)
    assert "INCOMPLETE" in info.stdout
    r = cli("prep", movie, "-o", part, *mode, "--chunk-frames", "8")
    assert r.returncode == 0, r.stderr
    assert "resumed," in r.stdout  # by seeking, not by decoding from the start
    a, b = FrameStore.open(part), FrameStore.open(full)
    assert a.complete and a.frames_done == b.frames_done
    for name in ("frames", "time", "index"):
        assert np.array_equal(a.group[name][:], b.group[name][:]), name
