"""Stage one: prep on synthetic clips (known colours, counts, crop) and on a real clip."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import COLOURS, DATA, decoded_times
from moviebarcode.errors import StoreError
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.store import FrameStore


def mean_colour(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).astype(float).mean(0)


def test_colours_counts_and_times(clips, tmp_path):
    res = prep(clips["colours"], PrepRequest(), output=tmp_path / "c.zarr")
    assert res.status == "created"
    store = FrameStore.open(res.store)
    assert store.complete
    ref = decoded_times(clips["colours"])
    assert len(ref) == 192  # 4 segments x 2 s x 24 fps
    # every 24th frame: 8 frames, at the reference times of frames 0, 24, 48...
    assert store.frames_done == 8
    np.testing.assert_array_equal(store.indices, np.arange(0, 192, 24))
    np.testing.assert_allclose(store.times, ref[::24], atol=1e-6)
    frames = store.frames[:]
    assert frames.shape == (8, 90, 160, 3)
    for i, name in enumerate(["red", "red", "green", "green", "blue", "blue", "white", "white"]):
        np.testing.assert_allclose(mean_colour(frames[i]), COLOURS[name], atol=3)


def test_fps_and_columns_sampling(clips, tmp_path):
    ref = decoded_times(clips["colours"])
    s = FrameStore.open(
        prep(clips["colours"], PrepRequest(fps=2), output=tmp_path / "f.zarr").store
    )
    # the first frame in each half-second bucket
    assert s.frames_done == 16
    np.testing.assert_allclose(s.times, ref[::12], atol=1e-6)
    s = FrameStore.open(
        prep(clips["colours"], PrepRequest(columns=5), output=tmp_path / "c.zarr").store
    )
    assert s.frames_done == 5
    # spread evenly: bucket i starts at i * 8/5 s
    expected = [ref[np.searchsorted(ref, i * 8 / 5 - 1e-9)] for i in range(5)]
    np.testing.assert_allclose(s.times, expected, atol=1e-6)


def test_start_end(clips, tmp_path):
    s = FrameStore.open(
        prep(
            clips["colours"], PrepRequest(every=6, start=2.5, end=5), output=tmp_path / "p.zarr"
        ).store
    )
    ref = decoded_times(clips["colours"])
    inside = ref[(ref >= 2.5 - 1e-9) & (ref < 5)]
    np.testing.assert_allclose(s.times, inside[::6], atol=1e-6)
    assert np.all(s.times < 5) and s.times[0] >= 2.5


def test_size_options(clips, tmp_path):
    s = FrameStore.open(
        prep(clips["colours"], PrepRequest(height=45), output=tmp_path / "a.zarr").store
    )
    assert s.frame_shape == (45, 80)
    s = FrameStore.open(
        prep(clips["colours"], PrepRequest(size=(33, 21)), output=tmp_path / "b.zarr").store
    )
    assert s.frame_shape == (21, 33)


def test_crop_auto_removes_letterbox(clips, tmp_path):
    s = FrameStore.open(prep(clips["letterbox"], PrepRequest(), output=tmp_path / "a.zarr").store)
    crop = s.meta["picture"]["crop"]
    assert crop is not None
    assert abs(crop["y"] - 52) <= 2 and abs(crop["h"] - 136) <= 4 and crop["w"] == 320
    # 320x136 shown 160 wide -> 68 high, and no black rows left
    assert s.frame_shape == (68, 160)
    rows = s.frames[:].astype(float).mean(axis=(0, 2, 3))
    assert rows.min() > 20
    none = FrameStore.open(
        prep(clips["letterbox"], PrepRequest(crop="none"), output=tmp_path / "b.zarr").store
    )
    assert none.meta["picture"]["crop"] is None
    rows = none.frames[:].astype(float).mean(axis=(0, 2, 3))
    assert rows[:10].max() < 5 and rows[-10:].max() < 5  # the bars are still there


def test_up_to_date_is_a_noop(clips, tmp_path):
    out = tmp_path / "u.zarr"
    prep(clips["colours"], PrepRequest(), output=out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    res = prep(clips["colours"], PrepRequest(), output=out)
    assert res.status == "up to date"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_changed_source_needs_force(clips, tmp_path):
    movie = tmp_path / "m.mp4"
    movie.write_bytes(clips["colours"].read_bytes())
    out = tmp_path / "m.zarr"
    prep(movie, PrepRequest(), output=out)
    movie.write_bytes(clips["letterbox"].read_bytes())
    with pytest.raises(StoreError, match="changed"):
        prep(movie, PrepRequest(), output=out)
    res = prep(movie, PrepRequest(), output=out, force=True)
    assert res.status == "created"
    assert FrameStore.open(out).meta["source"]["fingerprint"]["size"] == movie.stat().st_size


def test_other_options_need_force(clips, tmp_path):
    out = tmp_path / "o.zarr"
    prep(clips["colours"], PrepRequest(), output=out)
    with pytest.raises(StoreError, match="other options"):
        prep(clips["colours"], PrepRequest(every=12), output=out)


@pytest.mark.parametrize(
    "clip",
    [
        "bbb_trailer_h264.mp4",
        "bbb_excerpt_mpeg4.mkv",
        "oa4_launch_vp8.webm",
        "shepard_calais_1906_theora.ogv",
    ],
)
def test_real_clips_match_ffmpeg_frame_times(clip, tmp_path):
    movie = DATA / clip
    s = FrameStore.open(prep(movie, PrepRequest(every=10), output=tmp_path / "r.zarr").store)
    ref = decoded_times(movie)
    assert s.frames_done == len(ref[::10])  # every decoded frame counted, whatever the header says
    # where ffmpeg's own timestamps increase, ours are the same; where they jump back (the mkv
    # restarts at 0 after 57 frames), ours carry on increasing and the store counts the reset
    resets = int(np.sum(np.diff(ref) < 0))
    assert s.meta["decode"]["timestamp_resets"] == resets
    assert np.all(np.diff(s.times) > 0)
    first_run = ref[: (np.argmax(np.diff(ref) < 0) + 1) if resets else len(ref)][::10]
    np.testing.assert_allclose(s.times[: len(first_run)], first_run, atol=1e-6)
    assert s.meta["decode"]["truncated_at"] is None
    frames = s.frames[:]
    assert frames.std() > 10  # real pictures, not blank frames
