"""Fault injection: what an adversarial run found, each case reproduced. Nothing is lost or
corrupted silently, no traceback reaches the user, and no process is left behind.

Cases that need root (mounts) skip with their reason elsewhere; these run anywhere with /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import descendants, is_alive, make_clip, run_process
from moviebarcode.store import FrameStore

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")


cli = run_process


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "moviebarcode", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def frames_done(store: Path) -> int:
    try:
        return zarr.open_group(store, mode="r").attrs["moviebarcode"]["frames_done"]
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def ffmpegs(pid: int) -> list[int]:
    """The ffmpeg processes decoding under ``pid`` (not the probe or crop detection)."""
    out = []
    for c in descendants(pid):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and b"ffmpeg" in Path(cmd[0].decode()).name.encode() and b"rawvideo" in cmd:
            out.append(c)
    return out


def same_store(a: Path, b: Path) -> None:
    x, y = FrameStore.open(a), FrameStore.open(b)
    assert x.complete and y.complete and x.frames_done == y.frames_done
    for name in ("frames", "time", "index"):
        assert np.array_equal(x.group[name][:], y.group[name][:]), name


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """50 s with keyframes every 2 s: long enough for two parallel segments."""
    d = tmp_path_factory.mktemp("faults")
    return make_clip(d / "film.mkv", "testsrc2=s=320x180:r=30:d=50")


@pytest.fixture(scope="module")
def reference(film, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    r = cli("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", "1", "-q")
    assert r.returncode == 0, r.stderr
    return out


def interrupt_ffmpeg(film, out, how, jobs: int, *extra) -> subprocess.CompletedProcess:
    """Start a prep, stop one of its ffmpegs with ``how`` midway, and wait for the prep."""
    p = start("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", jobs,
              *extra)  # fmt: skip
    deadline = time.monotonic() + 60
    while (frames_done(out) < 80 or not ffmpegs(p.pid)) and time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail("prep finished before it could be interrupted")
        time.sleep(0.01)
    os.kill(ffmpegs(p.pid)[0], how)
    out_, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out_, err)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_ffmpeg_stopped_under_prep_is_an_interruption(film, reference, tmp_path, how):
    """An ffmpeg that ends on a signal is not a truncated film: the store stays incomplete,
    prep exits 130 with one line, and the same command resumes to the same store."""
    out = tmp_path / "s.zarr"
    r = interrupt_ffmpeg(film, out, how, 1)
    assert r.returncode == 130, r.stderr
    assert "ffmpeg was stopped by " + how.name in one_line(r.stderr)
    s = FrameStore.open(out)
    assert not s.complete and 0 < s.frames_done < FrameStore.open(reference).frames_done
    assert "INCOMPLETE" in cli("info", out).stdout
    again = cli("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", "1")
    assert again.returncode == 0 and "resumed" in again.stdout, again.stderr
    assert "truncated" not in again.stderr
    same_store(out, reference)


def test_a_killed_segment_resumes_segment_by_segment(film, reference, tmp_path):
    """In parallel mode one killed ffmpeg neither blames the file nor makes prep decode
    everything again: the resume goes on segment by segment."""
    out = tmp_path / "p.zarr"
    r = interrupt_ffmpeg(film, out, signal.SIGKILL, 2)
    assert r.returncode == 130, r.stderr
    assert "ffmpeg was stopped by SIGKILL" in one_line(r.stderr)
    s = FrameStore.open(out)
    assert not s.complete and len(s.meta["segments"]) == 2
    again = cli("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", "2")
    assert again.returncode == 0 and "resumed" in again.stdout, again.stderr
    assert again.stderr == ""  # no "did not match this file", no "truncated"
    assert FrameStore.open(out).meta["parallel"] == {"jobs": 2}
    same_store(out, reference)


def wait_until_writing(p: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 60
    while frames_done(out) < 16 and time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail("prep finished before the second one started")
        time.sleep(0.01)


@pytest.mark.parametrize(
    "second", [["--every", "8"], ["--every", "8", "--force"], ["--every", "1"]]
)
def test_two_preps_on_one_store(film, reference, tmp_path, second):
    """The lock covers creating, recreating (--force) and filling a store: the second prep
    gets one line and exit 1, and the first one's store is whole and consistent. Two
    identical preps do not both decode."""
    out = tmp_path / "s.zarr"
    first = start("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", "1")
    wait_until_writing(first, out)
    r = cli("prep", film, "-o", out, "--chunk-frames", "8", "--jobs", "1", *second)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert r.returncode == 1
    assert "another moviebarcode process is writing it" in one_line(r.stderr)
    same_store(out, reference)
    assert FrameStore.open(out).meta["request"]["every"] == 1


def test_prep_into_a_link_to_a_folder(film, tmp_path):
    target = tmp_path / "elsewhere" / "s.zarr"
    target.mkdir(parents=True)
    link = tmp_path / "link.zarr"
    link.symlink_to(target)
    for extra in ([], ["--force"]):
        r = cli("prep", film, "-o", link, "--every", "30", "-q", *extra)
        assert r.returncode == 0, r.stderr
        assert FrameStore.open(target).complete and link.is_symlink()


def test_render_workers_die_with_their_parent(film, tmp_path):
    """kill -9 of a render with worker processes leaves no worker running."""
    store = tmp_path / "w.zarr"
    assert cli("prep", film, "-o", store, "--every", "1", "--width", "320", "-q").returncode == 0
    p = start("render", store, "--jobs", "2", "--k", "16", "-q")
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline and p.poll() is None:
        workers = descendants(p.pid)
        time.sleep(0.05)
    if p.poll() is not None:
        pytest.fail("render finished before its workers could be seen")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(is_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if is_alive(w)]


def damaged_copy(reference: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "d.zarr"
    shutil.copytree(reference, out)
    (out / "frames" / "c" / "3" / "0" / "0" / "0").unlink()  # frames 24-31
    t = out / "time" / "c" / "5"  # frames 40-47: cut short
    t.write_bytes(t.read_bytes()[:20])
    return out


def test_lost_and_cut_chunks_are_found_and_repaired(film, reference, tmp_path):
    """A missing or truncated chunk never reaches an image: render and info say which chunk
    and how to repair it, info --check too, and prep on the same film repairs the store."""
    store = damaged_copy(reference, tmp_path)
    r = cli("render", store, "-o", tmp_path / "x.png")
    assert r.returncode == 1 and not (tmp_path / "x.png").exists()
    line = one_line(r.stderr)
    assert "frames chunk 3 (frames 24-31) is missing (and 1 more)" in line
    assert "moviebarcode prep" in line and "--force" in line
    info = cli("info", store)
    assert info.returncode == 0 and "DAMAGED: frames chunk 3" in info.stdout
    check = cli("info", store, "--check")
    assert check.returncode == 1 and "frames chunk 3" in one_line(check.stderr)
    assert "whole" in cli("info", reference, "--check").stdout
    fixed = cli("prep", film, "-o", store, "--every", "1", "--chunk-frames", "8", "--jobs", "1")
    assert fixed.returncode == 0, fixed.stderr
    assert "repaired (decoded again from frame 24)" in fixed.stdout
    same_store(store, reference)
    assert cli("render", store, "-o", tmp_path / "x.png", "--mode", "average").returncode == 0


def test_a_chunk_of_black_frames_is_written(tmp_path):
    """zarr skips chunks equal to the fill value (0): a store writes them anyway, so that a
    missing chunk file always means a lost chunk."""
    film = make_clip(tmp_path / "black.mkv", "color=c=black:s=64x36:r=10:d=3")
    store = tmp_path / "b.zarr"
    r = cli("prep", film, "-o", store, "--every", "1", "--chunk-frames", "4", "--crop", "none")
    assert r.returncode == 0, r.stderr
    s = FrameStore.open(store)
    assert s.frames[:].max() == 0 and s.damage(read=True) == []
    assert cli("render", store, "--mode", "average", "-q").returncode == 0


@pytest.mark.parametrize(
    "damage, words",
    [
        (
            lambda g: g.attrs.update({"moviebarcode": {**g.attrs["moviebarcode"], "picture": 0}}),
            "attributes picture are not",
        ),
        (
            lambda g: g.attrs.update(
                {
                    "moviebarcode": {
                        k: v for k, v in g.attrs["moviebarcode"].items() if k != "request"
                    }
                }
            ),
            "lack request",
        ),
        (lambda g: __import__("shutil").rmtree(g.store.root / "frames"), "no frames array"),
        (
            lambda g: g.create_array("time", shape=(3,), dtype="float32", overwrite=True),
            "time array is float32",
        ),
    ],
)
def test_foreign_layouts_are_one_line_errors(reference, tmp_path, damage, words):
    import shutil

    store = tmp_path / "f.zarr"
    shutil.copytree(reference, store)
    damage(zarr.open_group(store, mode="r+"))
    for args in (["render", store, "-o", tmp_path / "x.png"], ["info", store]):
        r = cli(*args)
        assert r.returncode == 1
        assert "damaged store" in one_line(r.stderr) and words in r.stderr


@pytest.fixture
def mounts():
    """Mount file systems for a test, and unmount them after (root only: CI runs as root, and
    permission bits alone prove nothing to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs or a read-only bind mount")
    done: list[Path] = []

    def mount(*args: str) -> None:
        r = subprocess.run(["mount", *args], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot mount here: {r.stderr.strip()}")
        if Path(args[-1]) not in done:
            done.append(Path(args[-1]))

    yield mount
    for where in reversed(done):
        subprocess.run(["umount", "-l", str(where)], check=False)


def read_only(mount, source: Path, where: Path) -> Path:
    where.mkdir(exist_ok=True)
    mount("--bind", str(source), str(where))
    mount("-o", "remount,bind,ro", str(where))
    return where


def test_disk_full_during_prep(film, reference, tmp_path, mounts):
    """ENOSPC: one line, exit 1; the store stays valid and incomplete, and resumes once there
    is room."""
    small = tmp_path / "small"
    small.mkdir()
    mounts("-t", "tmpfs", "-o", "size=600k", "tmpfs", str(small))
    out = small / "s.zarr"
    r = cli("prep", film, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", "1")
    assert r.returncode == 1
    assert "cannot write the store" in one_line(r.stderr)
    s = FrameStore.open(out)
    assert not s.complete and s.frames_done > 0 and s.damage() == []
    moved = tmp_path / "moved.zarr"
    subprocess.run(["cp", "-a", str(out), str(moved)], check=True)
    again = cli("prep", film, "-o", moved, "--every", "1", "--chunk-frames", "8", "--jobs", "1")
    assert again.returncode == 0, again.stderr
    same_store(moved, reference)


def test_unwritable_outputs_fail_before_any_work(reference, tmp_path, mounts):
    """A PNG or palette into a missing or read-only folder, or onto a folder: one line, exit
    1, and nothing clustered first."""
    import shutil

    store = tmp_path / "s.zarr"
    shutil.copytree(reference, store)
    (tmp_path / "src").mkdir()
    ro = read_only(mounts, tmp_path / "src", tmp_path / "ro")
    (tmp_path / "dir.png").mkdir()
    cases = [
        (["-o", ro / "x.png"], "is not writable"),
        (["-o", tmp_path / "dir.png"], "is a folder"),
        (
            ["-o", tmp_path / "a.png", "--palette", tmp_path / "nowhere" / "p.json"],
            "does not exist",
        ),
        (["-o", tmp_path / "a.png", "--palette", ro / "p.json"], "is not writable"),
    ]
    for args, words in cases:
        r = cli("render", store, "--k", "3", *args)
        assert r.returncode == 1 and words in one_line(r.stderr), (args, r.stderr)
    assert not (store / "results").exists()  # no clustering was wasted
    assert not (tmp_path / "a.png").exists()


def test_read_only_store_renders_with_a_warning(reference, tmp_path, mounts):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(reference, src / "s.zarr")
    ro = read_only(mounts, src, tmp_path / "ro")
    for mode in ("stacked", "average"):
        r = cli("render", ro / "s.zarr", "--k", "3", "--mode", mode, "-o", tmp_path / f"{mode}.png")
        assert r.returncode == 0, r.stderr
        assert "could not be cached" in one_line(r.stderr)
        assert (tmp_path / f"{mode}.png").is_file()
    quiet = cli("render", ro / "s.zarr", "--k", "3", "-q", "-o", tmp_path / "q.png")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_odd_values_are_one_line_errors(film, tmp_path):
    store = tmp_path / "one.zarr"
    r = cli("prep", film, "-o", store, "--columns", "1", "-q")
    assert r.returncode == 0, r.stderr
    labelled = cli("render", store, "--label", "--mode", "average", "-o", tmp_path / "l.png")
    assert labelled.returncode == 0, labelled.stderr  # one frame: a second of time axis
    for args in (["--fps", "inf"], ["--fps", "nan"]):
        r = cli("prep", film, "-o", tmp_path / "x.zarr", *args)
        assert r.returncode == 2 and "--fps" in one_line(r.stderr)
    for args, words in ((["--seed", "-1"], "--seed"), (["--k", "65"], "at most 64")):
        r = cli("render", store, *args)
        assert r.returncode == 2 and words in one_line(r.stderr)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_prep_resumes_with_the_same_cuts(cut_clip, tmp_path, jobs):
    """Killed midway, then resumed: the cuts and every frame's score are those of a run
    that was never stopped (scores are stored with the frames, before them)."""
    clip, cuts = cut_clip
    ref = tmp_path / "ref.zarr"
    assert cli("prep", clip, "-o", ref, "--every", "1", "--chunk-frames", "8", "-q",
               "--jobs", "1").returncode == 0  # fmt: skip
    out = tmp_path / "s.zarr"
    r = interrupt_ffmpeg(clip, out, signal.SIGKILL, jobs)
    assert r.returncode != 0 and not FrameStore.open(out).complete
    r = cli("prep", clip, "-o", out, "--every", "1", "--chunk-frames", "8", "--jobs", jobs)
    assert r.returncode == 0, r.stderr
    a, b = FrameStore.open(ref), FrameStore.open(out)
    assert np.array_equal(a.cuts, b.cuts) and len(b.cuts) == len(cuts)
    (ta, sa), (tb, sb) = a.scores(), b.scores()
    assert np.array_equal(ta, tb) and np.array_equal(sa, sb, equal_nan=True)
