"""Shot cuts: the detector against PySceneDetect (the field's reference), and prep finding
them while it decodes, the same way in one process, in parallel segments and on resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, decoded_times, run_process
from moviebarcode import segments
from moviebarcode.cutdetect import ShotDetection, content_scores, hsv, merge_scores, pick_cuts
from moviebarcode.decode import Sampling
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.probe import probe
from moviebarcode.store import FrameStore

cv2 = pytest.importorskip("cv2")
scenedetect = pytest.importorskip("scenedetect")


cli = run_process


def cut_frames(store: FrameStore, clip) -> np.ndarray:
    """The store's cuts as frame numbers of the clip (by ffmpeg's own timestamps)."""
    times = decoded_times(clip)
    idx = np.searchsorted(times, store.cuts - 1e-6)
    assert np.allclose(times[idx], store.cuts, atol=1e-6)  # every cut is a frame's time
    return idx


def test_hsv_is_opencvs():
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (20000, 1, 3), dtype=np.uint8)
    px[:50] = px[:50, :, :1]  # greys: no hue, no saturation
    assert np.array_equal(hsv(px), cv2.cvtColor(px, cv2.COLOR_RGB2HSV))


def test_score_is_the_mean_hsv_difference():
    rng = np.random.default_rng(1)
    f = rng.integers(0, 256, (3, 9, 16, 3), dtype=np.uint8)
    s = content_scores(f[1:], before=f[0])
    h = [cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(float) for x in f]
    assert np.allclose(s, [np.abs(h[1] - h[0]).mean(), np.abs(h[2] - h[1]).mean()])
    assert np.isnan(content_scores(f)[0])


@pytest.mark.parametrize("seed", range(200))
def test_cut_picking_is_pyscenedetects_flash_filter(seed):
    """Any pattern of frames above the threshold gives PySceneDetect's cuts (FlashFilter,
    MERGE mode, its default), frame for frame."""
    from scenedetect import FrameTimecode
    from scenedetect.detector import FlashFilter

    rng = np.random.default_rng(seed)
    n, min_len = int(rng.integers(1, 400)), int(rng.integers(0, 20))
    above = rng.random(n) < rng.uniform(0.01, 0.4)
    ff = FlashFilter(FlashFilter.Mode.MERGE, min_len)
    want = [c.frame_num for i in range(n) for c in ff.filter(FrameTimecode(i, fps=24.0), above[i])]
    scores = np.where(above, 30.0, 10.0)
    got = pick_cuts(np.arange(n) / 24, scores, 24.0, ShotDetection(min_shot_frames=min_len))
    assert np.round(got * 24).astype(int).tolist() == want


def test_merge_scores_keeps_one_scored_entry_per_frame():
    t = np.array([0.0, 0.04, 0.08, 0.08, 0.12, np.nan, 0.04])
    s = np.array([np.nan, 1.0, np.nan, 5.0, 2.0, 9.0, 1.0])
    mt, ms = merge_scores(t, s)
    assert mt.tolist() == [0.0, 0.04, 0.08, 0.12]
    assert np.array_equal(ms, [np.nan, 1.0, 5.0, 2.0], equal_nan=True)


def test_synthetic_clip_cuts_are_exact(cut_clip, tmp_path):
    clip, cuts = cut_clip
    prep(clip, PrepRequest(), output=tmp_path / "one.zarr", jobs=1)
    store = FrameStore.open(tmp_path / "one.zarr")
    assert cut_frames(store, clip).tolist() == cuts.tolist()
    shots = store.meta["shots"]
    assert shots["threshold"] == 27 and shots["frames_scored"] == len(decoded_times(clip))


def test_segments_find_the_same_cuts_and_a_boundary_cut_once(cut_clip, tmp_path):
    """Two segments meet at a cut (the clip's keyframes are its cuts): it is found once,
    and every frame has exactly one score, the one a single process gives it."""
    clip, cuts = cut_clip
    info = probe(clip)
    plan = segments.plan(info, Sampling(every=24), 2)
    assert plan is not None and len(plan) == 2
    assert plan[1].first in cuts  # the boundary is a cut
    prep(clip, PrepRequest(), output=tmp_path / "one.zarr", jobs=1)
    prep(clip, PrepRequest(), output=tmp_path / "two.zarr", jobs=2)
    one, two = FrameStore.open(tmp_path / "one.zarr"), FrameStore.open(tmp_path / "two.zarr")
    assert two.meta.get("parallel") == {"jobs": 2}
    assert cut_frames(two, clip).tolist() == cuts.tolist()
    t1, s1 = one.scores()
    t2, s2 = two.scores()
    assert np.array_equal(t1, t2) and np.array_equal(s1, s2, equal_nan=True)
    assert np.isnan(s2).sum() == 1  # only the very first frame has nothing before it


def test_fast_scores_reference_frames_only(cut_clip, tmp_path):
    """--fast decodes reference frames only: fewer frames scored, and here (every cut is a
    keyframe) the same cuts, in one process and in segments."""
    clip, cuts = cut_clip
    for jobs in (1, 2):
        prep(clip, PrepRequest(fast=True), output=tmp_path / f"f{jobs}.zarr", jobs=jobs)
        store = FrameStore.open(tmp_path / f"f{jobs}.zarr")
        assert cut_frames(store, clip).tolist() == cuts.tolist()
        assert store.meta["shots"]["frames_scored"] < len(decoded_times(clip))
        assert "reference frames" in store.meta["shots"]["scored"]


def _reference_cuts(clip) -> list[int]:
    from scenedetect import ContentDetector, SceneManager, open_video

    video = open_video(str(clip))
    manager = SceneManager()
    manager.add_detector(ContentDetector())
    manager.detect_scenes(video)
    return [scene[0].frame_num for scene in manager.get_scene_list()][1:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "bbb_trailer_h264.mp4",
        "bbb_excerpt_mpeg4.mkv",
        "oa4_launch_vp8.webm",
        "shepard_calais_1906_theora.ogv",
    ],
)
def test_real_clips_agree_with_pyscenedetect(name, tmp_path):
    """At least 90% of PySceneDetect's ContentDetector cuts found within 1 frame, at most
    10% extra (none where it finds none)."""
    clip = DATA / name
    want = _reference_cuts(clip)
    prep(clip, PrepRequest(), output=tmp_path / "s.zarr")
    got = cut_frames(FrameStore.open(tmp_path / "s.zarr"), clip).tolist()
    found = sum(any(abs(g - w) <= 1 for g in got) for w in want)
    extra = sum(not any(abs(g - w) <= 1 for w in want) for g in got)
    assert found >= 0.9 * len(want), (got, want)
    assert extra <= 0.1 * len(want), (got, want)


def test_keyframes_store_has_no_cuts_and_says_so(clips, tmp_path):
    r = cli("prep", clips["colours"], "-o", tmp_path / "k.zarr", "--keyframes")
    assert r.returncode == 0, r.stderr
    assert "no shot cuts with --keyframes" in r.stderr
    assert "truncated" not in r.stderr  # its last keyframe is not the end of the film
    assert FrameStore.open(tmp_path / "k.zarr").cuts is None
    info = cli("info", tmp_path / "k.zarr").stdout
    assert "--keyframes store" in info


def test_info_shows_shots_and_median_length(clips, tmp_path):
    out = tmp_path / "c.zarr"
    assert cli("prep", clips["colours"], "-o", out, "-q").returncode == 0
    store = FrameStore.open(out)
    assert len(store.cuts) == 3  # four 2-second colours
    data = json.loads(cli("info", out, "--json").stdout)
    assert data["shots"].startswith("4, median 2.0 s")


def _make_old(store_path) -> None:
    """Turn a store into what a version 1 prep left: no cuts, no scores, no shot options."""
    import zarr

    g = zarr.open_group(store_path, mode="r+")
    meta = dict(g.attrs["moviebarcode"])
    for key in ("cuts", "shots"):
        if key in g:
            del g[key]
    meta.pop("shots", None)
    meta["layout_version"] = 1
    meta["request"] = {
        k: v for k, v in meta["request"].items() if k not in ("shots", "cut_threshold")
    }
    g.attrs["moviebarcode"] = meta


@pytest.mark.parametrize("jobs", [1, 2])
def test_prep_shots_adds_cuts_to_an_old_store_without_touching_frames(cut_clip, tmp_path, jobs):
    """In one process or in two segments (the film is decoded again for the scores alone),
    the cuts of a prep that found them, and every frame's score once."""
    clip, cuts = cut_clip
    out = tmp_path / "old.zarr"
    prep(clip, PrepRequest(), output=out, jobs=1)
    _make_old(out)
    old = FrameStore.open(out)
    assert old.cuts is None and old.meta["layout_version"] == 1
    frames = old.frames[...]
    mtimes = sorted(p.stat().st_mtime_ns for p in (out / "frames").rglob("*") if p.is_file())
    r = cli("prep", "--shots", out, "--jobs", jobs)  # the store stands for its film
    assert r.returncode == 0, r.stderr
    assert "shot cuts added" in r.stdout
    new = FrameStore.open(out)
    assert cut_frames(new, clip).tolist() == cuts.tolist()
    assert new.meta["layout_version"] == 2
    times, scores = new.scores()
    assert np.allclose(times, decoded_times(clip), atol=1e-6) and np.isnan(scores).sum() == 1
    assert np.array_equal(new.frames[...], frames)
    assert (
        sorted(p.stat().st_mtime_ns for p in (out / "frames").rglob("*") if p.is_file()) == mtimes
    )


def test_another_threshold_picks_again_from_stored_scores(cut_clip, tmp_path):
    clip, cuts = cut_clip
    out = tmp_path / "s.zarr"
    prep(clip, PrepRequest(), output=out, jobs=1)
    times, scores = FrameStore.open(out).scores()
    # halfway up the cuts' own scores: some cuts stay, some go
    high = float(np.median(scores[np.isin(times, FrameStore.open(out).cuts)]))
    r = prep(clip, PrepRequest(cut_threshold=high), output=out)
    assert "picked again" in r.status
    store = FrameStore.open(out)
    assert store.meta["shots"]["threshold"] == high
    assert np.array_equal(store.cuts, pick_cuts(times, scores, 25.0, ShotDetection(high)))
    assert 0 < len(store.cuts) < len(cuts)


def test_prep_shots_on_a_store_whose_film_is_gone(clips, tmp_path):
    film = tmp_path / "film.mp4"
    film.write_bytes(clips["colours"].read_bytes())
    out = tmp_path / "s.zarr"
    assert cli("prep", film, "-o", out, "--no-shots", "-q").returncode == 0
    film.unlink()
    r = cli("prep", "--shots", out)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "which is not there" in lines[0] and "Traceback" not in r.stderr


def test_score_reader_scores_every_frame_however_the_pipe_delivers_them():
    """Frames arriving in odd pieces, with pauses, are all scored, in order, as one call
    over all of them scores them; and a waiter gets them up to a time."""
    import os
    import threading
    import time

    from moviebarcode.cutdetect import SMALL
    from moviebarcode.scorepipe import ScoreLog, ScoreReader

    w, h = SMALL
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (300, h, w, 3), dtype=np.uint8)
    data = frames.tobytes()
    r, wfd = os.pipe()
    log = ScoreLog()
    reader = ScoreReader(os.fdopen(r, "rb", buffering=0), log)
    reader.start()

    def write():
        pos = 0
        while pos < len(data):
            piece = int(rng.integers(1, 5 * w * h * 3))
            os.write(wfd, data[pos : pos + piece])
            pos += piece
            if piece % 7 == 0:
                time.sleep(0.01)  # ffmpeg pausing: held-back frames must still be scored
        os.close(wfd)

    writer = threading.Thread(target=write)
    writer.start()
    for i in range(len(frames)):
        log.add_time(i / 25)
    t_half, s_half = log.take(until=149 / 25)
    t_rest, s_rest = log.take()
    writer.join()
    reader.join()
    assert len(t_half) == 150 and len(t_rest) == 150
    want = content_scores(frames)
    assert np.array_equal(np.concatenate([s_half, s_rest]), want, equal_nan=True)


FADES = (
    "testsrc2=s=320x180:r=25:d=4,format=yuv420p,settb=1/25[a];"
    "smptehdbars=s=320x180:r=25:d=4,format=yuv420p,settb=1/25[b];"
    "mandelbrot=s=320x180:r=25,trim=duration=4,setpts=PTS-STARTPTS,format=yuv420p,settb=1/25[c];"
    "rgbtestsrc=s=320x180:r=25:d=4,format=yuv420p,settb=1/25[d];"
    "testsrc=s=320x180:r=25:d=3,format=yuv420p,settb=1/25[e];"
    "[a][b]xfade=transition=dissolve:duration=1:offset=3[ab];"  # a dissolve, 3-4 s
    "[ab]fade=t=out:st=6.5:d=0.5[ab2];[c]fade=t=in:st=0:d=0.5[c2];"  # out 6.5-7, in 7-7.5 s
    "[ab2][c2]concat=n=2,settb=1/25[abc];"
    "[abc][d]xfade=transition=fadeblack:duration=1:offset=10[abcd];"  # through black, 10-11 s
    "[abcd][e]concat=n=2"  # a hard cut at 14 s
)


@pytest.mark.slow
def test_fades_and_dissolves_as_pyscenedetect(tmp_path):
    """What fades and dissolves give, measured, not assumed: the same cuts as
    PySceneDetect's ContentDetector. The dissolve is missed (each of its frames changes too
    little); a fade out and in is cut where the picture comes out of black; a 1 s fade
    through black is cut a third of the way in; the hard cut is exact."""
    from conftest import run_ffmpeg

    clip = tmp_path / "fades.mp4"
    run_ffmpeg("-f", "lavfi", "-i", FADES, "-c:v", "libx264", "-preset", "veryfast", str(clip))
    prep(clip, PrepRequest(every=5), output=tmp_path / "f.zarr", jobs=1)
    got = cut_frames(FrameStore.open(tmp_path / "f.zarr"), clip).tolist()
    assert got == _reference_cuts(clip)
    assert not any(75 <= c <= 100 for c in got)  # no cut in the dissolve
    assert 14 * 25 in got  # the hard cut


def test_adding_cuts_shows_progress(clips, tmp_path):
    """Decoding again for the cuts is long work: the progress bar starts, and moves."""
    out = tmp_path / "s.zarr"
    prep(clips["colours"], PrepRequest(shots=False), output=out, jobs=1)
    started, moved = [], []
    r = prep(
        clips["colours"],
        PrepRequest(),
        output=out,
        on_start=lambda *a: started.append(a),
        progress=lambda t, kept: moved.append(t),
    )
    assert "shot cuts added" in r.status
    assert len(started) == 1 and moved and max(moved) > 0
    started.clear()
    assert prep(clips["colours"], PrepRequest(), output=out, on_start=started.append).status == (
        "up to date"
    )
    assert not started  # nothing to decode: no bar
