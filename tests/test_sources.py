"""Awkward sources: rotated, non-square pixels and odd sizes, 10-bit, HDR, variable frame rate,
truncated files. Each comes out as correct 8-bit sRGB frames, checked against ffmpeg's own output
or against colours known in advance."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from conftest import COLOURS, decoded_times, make_clip, run_ffmpeg
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.probe import probe
from moviebarcode.store import FrameStore


def store_of(movie, out, **opts) -> FrameStore:
    return FrameStore.open(prep(movie, PrepRequest(**opts), output=out).store)


def test_rotated_phone_video(tmp_path):
    # top half red, bottom half blue, then a display matrix turning it 90 degrees
    src = make_clip(
        tmp_path / "flat.mp4",
        "color=c=red:s=320x90:r=24:d=1[a];color=c=blue:s=320x90:r=24:d=1[b];[a][b]vstack",
    )
    rot = tmp_path / "rot.mp4"
    run_ffmpeg("-display_rotation", "90", "-i", str(src), "-c", "copy", str(rot))
    info = probe(rot)
    assert info.rotation in (90, 270) and info.display_size == (180, 320)
    s = store_of(rot, tmp_path / "r.zarr", crop="none")
    assert s.frame_shape == (284, 160)  # portrait: 160 wide, 160 * 320/180 high
    # which side is red: as ffmpeg itself shows the rotated file
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(rot),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(320, 180, 3).astype(float)
    ours = s.frames[0].astype(float)
    for half in (slice(0, 40), slice(-40, None)):
        np.testing.assert_allclose(
            ours[:, half].mean((0, 1)),
            ref[:, half].mean((0, 1)) if half.start == 0 else ref[:, -45:].mean((0, 1)),
            atol=6,
        )
    assert abs(ours[:, :40, 0].mean() - ours[:, -40:, 0].mean()) > 200  # red on one side only


def test_non_square_pixels_and_odd_size(tmp_path):
    # 4:3 pixels on a 320x240 picture display as 16:9
    clip = make_clip(tmp_path / "sar.mkv", "testsrc2=s=320x240:r=24:d=1,setsar=4/3")
    assert probe(clip).sar == (4, 3)
    assert store_of(clip, tmp_path / "a.zarr").frame_shape == (90, 160)
    odd = make_clip(
        tmp_path / "odd.mkv",
        "testsrc2=s=214x98:r=24:d=1,format=yuv444p,crop=213:97:0:0",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv444p",
    )
    assert (probe(odd).width, probe(odd).height) == (213, 97)
    s = store_of(odd, tmp_path / "b.zarr", crop="none")
    assert s.frame_shape == (round(160 * 97 / 213), 160)


def test_ten_bit_colours(tmp_path):
    segs = "color=c=red:s=320x180:r=24:d=1[a];color=c=gray:s=320x180:r=24:d=1[b];[a][b]concat"
    clip = make_clip(
        tmp_path / "10bit.mp4",
        segs,
        "-c:v",
        "libx264",
        "-crf",
        "10",
        "-vf",
        "format=rgb24,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le",
        "-colorspace",
        "bt709",
    )
    assert probe(clip).bit_depth == 10
    s = store_of(clip, tmp_path / "t.zarr")
    assert s.frames.dtype == np.uint8
    for i, name in enumerate(["red", "gray"]):
        np.testing.assert_allclose(s.frames[i].reshape(-1, 3).mean(0), COLOURS[name], atol=3)


def test_hdr_is_tone_mapped(tmp_path):
    # a grey at about 100 nits in PQ (code value ~0.51), then a test pattern, tagged bt2020/PQ
    clip = make_clip(
        tmp_path / "hdr.mp4",
        "color=c=0x828282:s=320x180:r=24:d=1[a];testsrc2=s=320x180:r=24:d=1[b];[a][b]concat,"
        "format=rgb24,scale=out_color_matrix=bt2020:out_range=tv,format=yuv420p10le,"
        "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv",
        "-c:v",
        "libx264",
        "-crf",
        "10",
    )
    info = probe(clip)
    assert info.hdr and info.color_transfer == "smpte2084" and info.bit_depth == 10
    mapped = store_of(clip, tmp_path / "m.zarr")
    naive = store_of(clip, tmp_path / "n.zarr", tonemap="off")
    assert mapped.meta["picture"]["tonemap"] and not naive.meta["picture"]["tonemap"]
    grey_mapped = mapped.frames[0].reshape(-1, 3).astype(float).mean(0)
    grey_naive = naive.frames[0].reshape(-1, 3).astype(float).mean(0)
    # read as SDR, 100 nits is a dull mid grey; tone-mapped it is the bright grey it should be
    assert np.all(np.abs(grey_naive - 130) < 4)
    assert np.all(grey_mapped > grey_naive + 15) and np.ptp(grey_mapped) < 3


def test_variable_frame_rate(tmp_path):
    clip = make_clip(
        tmp_path / "vfr.mkv",
        "color=c=red:s=160x90:r=24:d=2[a];color=c=blue:s=160x90:r=5:d=2[b];[a][b]concat",
        "-c:v",
        "libx264",
        "-fps_mode",
        "passthrough",
    )
    ref = decoded_times(clip)
    steps = np.diff(ref)
    # it really is variable: 24 fps, then about 5 fps (on a 1/24 s grid, in milliseconds)
    assert np.any(np.abs(steps - 1 / 24) < 2e-3) and np.any(steps > 0.15)
    s = store_of(clip, tmp_path / "v.zarr", every=3)
    np.testing.assert_allclose(s.times, ref[::3], atol=1e-6)
    s = store_of(clip, tmp_path / "f.zarr", fps=2)
    # first frame in each half-second bucket
    expected = [ref[np.searchsorted(ref, b / 2 - 1e-9)] for b in range(8)]
    np.testing.assert_allclose(s.times, expected, atol=1e-6)


def test_truncated_file_keeps_what_decodes(clips, tmp_path):
    data = clips["long"].read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    res = prep(cut, PrepRequest(every=30), output=tmp_path / "c.zarr")
    s = FrameStore.open(res.store)
    assert s.complete
    at = s.meta["decode"]["truncated_at"]
    assert at is not None and 10 < at < 30
    assert any("truncated" in w for w in res.warnings)
    full = store_of(clips["long"], tmp_path / "full.zarr", every=30)
    n = s.frames_done
    assert 0 < n < full.frames_done
    # the frames it kept are exactly the full film's first frames
    assert np.array_equal(s.frames[: n - 1], full.frames[: n - 1])


@pytest.mark.parametrize("chunk", [1, 3])
def test_chunking_does_not_change_frames(clips, tmp_path, chunk):
    a = store_of(clips["colours"], tmp_path / "a.zarr", every=5, chunk_frames=chunk)
    b = store_of(clips["colours"], tmp_path / "b.zarr", every=5)
    assert a.frames.chunks[0] == chunk
    assert np.array_equal(a.frames[:], b.frames[:]) and np.array_equal(a.times, b.times)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_4k_prep_memory_is_bounded(tmp_path):
    """A 4K film preps in well under 1 GB: our process holds a few chunks, ffmpeg its decoder."""
    import sys

    clip = make_clip(
        tmp_path / "4k.mp4",
        "testsrc2=s=3840x2160:r=24:d=10",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "48",
    )
    # Our peak is VmHWM, this process's own: ru_maxrss would include the memory of the
    # process that started it (Linux carries it over fork and exec), here pytest's.
    code = (
        "import resource,sys;from moviebarcode.prep import prep,PrepRequest;"
        "prep(sys.argv[1],PrepRequest(every=2),output=sys.argv[2]);"
        "hwm=[ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0];"
        "print(int(hwm.split()[1]),"
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(clip), str(tmp_path / "4k.zarr")],
        capture_output=True,
        text=True,
        check=True,
    )
    ours, ffmpeg_rss = (int(v) * 1024 for v in r.stdout.split())
    assert ours < 300 * 2**20 and ours + ffmpeg_rss < 1024 * 2**20, (ours >> 20, ffmpeg_rss >> 20)
