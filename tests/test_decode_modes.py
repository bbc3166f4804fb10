"""Decoder modes: keyframes-only preview, --fast decoding (its colour cost measured), and the
hardware-decode selection and fallback (the CUDA path itself runs only where there is a GPU)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import DATA, decoded_times, make_clip
from moviebarcode.decode import Crop, Picture, Sampling, build_command, cuda_available
from moviebarcode.errors import InputError
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.probe import probe
from moviebarcode.store import FrameStore


def keyframe_times(path) -> np.ndarray:
    """Times of the keyframes, from the packet flags of ffmpeg's own framecrc (stream copy)."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-copyts",
            "-start_at_zero",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tb = next(ln.split(":")[1].strip() for ln in out.splitlines() if ln.startswith("#tb 0"))
    num, den = map(int, tb.split("/"))
    # framecrc prints a packet's flags only when they differ from "key": no F= field is a keyframe
    pts = [
        int(ln.split(",")[2])
        for ln in out.splitlines()
        if ln and not ln.startswith("#") and ("F=" not in ln or int(ln.split("F=")[1], 16) & 1)
    ]
    return np.array(sorted(p * num / den for p in pts))


def test_keyframes_preview(tmp_path):
    clip = make_clip(
        tmp_path / "gop.mp4",
        "testsrc2=s=320x180:r=24:d=10",
        "-c:v",
        "libx264",
        "-g",
        "48",
        "-keyint_min",
        "48",
        "-sc_threshold",
        "0",
    )
    ref = keyframe_times(clip)
    np.testing.assert_allclose(ref, [0, 2, 4, 6, 8], atol=1e-6)
    s = FrameStore.open(prep(clip, PrepRequest(keyframes=True), output=tmp_path / "k.zarr").store)
    np.testing.assert_allclose(s.times, ref, atol=1e-6)
    assert s.meta["sampling"]["keyframes"] is True
    # every 2nd keyframe
    s = FrameStore.open(
        prep(clip, PrepRequest(keyframes=True, every=2), output=tmp_path / "k2.zarr").store
    )
    np.testing.assert_allclose(s.times, ref[::2], atol=1e-6)
    # a keyframe column is the very frame the full decode keeps at that time
    full = FrameStore.open(prep(clip, PrepRequest(every=48), output=tmp_path / "f.zarr").store)
    np.testing.assert_array_equal(full.times, ref)
    assert np.array_equal(full.frames[:], FrameStore.open(tmp_path / "k.zarr").frames[:])


def test_keyframes_on_a_real_clip(tmp_path):
    movie = DATA / "bbb_trailer_h264.mp4"
    s = FrameStore.open(prep(movie, PrepRequest(keyframes=True), output=tmp_path / "k.zarr").store)
    np.testing.assert_allclose(s.times, keyframe_times(movie), atol=1e-6)


def test_fast_decoding_colour_cost(tmp_path):
    """--fast decodes only reference frames, without the loop filter: each column is the
    first frame decoded at or after the exact sample's time (that frame itself when it is a
    reference frame), with its own time and number recorded. Its colour cost is measured
    against the exact frames."""
    movie = DATA / "bbb_trailer_h264.mp4"
    fast = FrameStore.open(prep(movie, PrepRequest(fast=True), output=tmp_path / "f.zarr").store)
    exact = FrameStore.open(prep(movie, PrepRequest(), output=tmp_path / "e.zarr").store)
    assert fast.meta["picture"]["fast"] and fast.meta["picture"]["noref"]
    assert not exact.meta["picture"]["noref"]
    decoded = fast.meta["decode"]["decoded_frames"], exact.meta["decode"]["decoded_frames"]
    assert decoded[0] < 0.8 * decoded[1]  # this clip's non-reference B-frames were skipped
    assert fast.frames_done == exact.frames_done
    shift = fast.times - exact.times
    interval = 1 / 24
    assert np.all(shift >= -1e-9) and np.all(shift < 2.5 * interval)
    assert 0 < np.mean(shift > 1e-6) < 0.9  # some samples are reference frames, some not
    all_times = decoded_times(movie)  # every frame's time: the fast ones are real frames
    nearest = np.abs(all_times[None, :] - fast.times[:, None]).min(axis=1)
    assert nearest.max() < 1e-6
    np.testing.assert_array_equal(fast.indices, np.rint(fast.times * 24))
    on_time = shift < 1e-6
    np.testing.assert_array_equal(fast.indices[on_time], exact.indices[on_time])
    a, b = fast.frames[:].astype(float), exact.frames[:].astype(float)
    mean_colour_diff = np.abs(a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))).max(axis=1)
    pixel_diff = np.abs(a - b).mean(axis=(1, 2, 3))
    print(
        f"--fast: {decoded[0]} frames decoded of {decoded[1]}; mean colour difference per "
        f"column: max {mean_colour_diff.max():.3f}, mean {mean_colour_diff.mean():.3f} "
        f"(on-time frames: max {mean_colour_diff[on_time].max():.3f}); mean pixel "
        f"difference {pixel_diff.mean():.3f}"
    )
    # on time, only the loop filter differs: a column moves by less than one level
    assert mean_colour_diff[on_time].max() < 1.0
    # a frame or two later: a column moves by a few levels at most, well under one on average
    assert mean_colour_diff.max() < 4.0 and mean_colour_diff.mean() < 0.6


def test_hwaccel_selection_and_fallback(clips, tmp_path):
    if cuda_available():
        pytest.skip("this machine can decode on NVDEC; the GPU test covers it")
    s = FrameStore.open(
        prep(clips["colours"], PrepRequest(hwaccel="auto"), output=tmp_path / "a.zarr").store
    )
    assert s.meta["picture"]["hwaccel"] is None  # fell back to software
    with pytest.raises(InputError, match="--hwaccel cuda"):
        prep(clips["colours"], PrepRequest(hwaccel="cuda"), output=tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()


def test_cuda_command_line():
    info = probe(DATA / "bbb_trailer_h264.mp4")
    pic = Picture(width=160, height=68, crop=Crop(w=1280, h=544, x=0, y=88), hwaccel="cuda")
    cmd = build_command(info, Sampling(every=24), pic)
    assert cmd[cmd.index("-hwaccel") + 1] == "cuda"
    assert cmd[cmd.index("-hwaccel_output_format") + 1] == "cuda"
    graph = cmd[cmd.index("-filter_complex") + 1]
    # NVDEC frames shrunk on the GPU to twice the target, then brought down, cropped, scaled
    assert "scale_cuda=format=yuv420p:h=180:interp_algo=bilinear:w=320" in graph
    assert graph.index("scale_cuda") < graph.index("hwdownload") < graph.index("crop=")
    assert "crop=320:136:0:22" in graph and "scale=160:68" in graph


@pytest.mark.gpu
def test_cuda_decode_matches_software(tmp_path):
    if not cuda_available():
        pytest.skip("no NVDEC here")
    movie = DATA / "bbb_trailer_h264.mp4"
    gpu = FrameStore.open(
        prep(movie, PrepRequest(hwaccel="cuda"), output=tmp_path / "g.zarr").store
    )
    cpu = FrameStore.open(prep(movie, PrepRequest(), output=tmp_path / "c.zarr").store)
    assert gpu.meta["picture"]["hwaccel"] == "cuda"
    np.testing.assert_array_equal(gpu.times, cpu.times)
    diff = np.abs(
        gpu.frames[:].astype(float).mean((1, 2)) - cpu.frames[:].astype(float).mean((1, 2))
    )
    assert diff.max() < 3
