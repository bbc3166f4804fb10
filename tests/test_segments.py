"""Parallel prep in segments split at keyframes: the store is byte-identical to a single-process
prep (frames, times, indices), at segment borders too, and an interrupted parallel prep resumes
segment by segment."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, make_clip
from moviebarcode import segments
from moviebarcode.decode import Picture, Sampling, build_command
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.probe import probe
from moviebarcode.store import FrameStore


@pytest.fixture(autouse=True)
def short_segments(monkeypatch):
    """Allow segments of a few seconds, so short test clips are split too."""
    monkeypatch.setattr(segments, "MIN_SEGMENT_SECONDS", 4.0)


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory):
    """24 s at 25 fps, a keyframe every 2 s, B-frames (frames stored out of order)."""
    return make_clip(
        tmp_path_factory.mktemp("seg") / "gop.mp4",
        "testsrc2=s=320x180:r=25:d=24",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "50",
        "-bf",
        "3",
    )


def same_store(a, b) -> bool:
    a, b = FrameStore.open(a), FrameStore.open(b)
    return a.frames_done == b.frames_done and all(
        np.array_equal(a.group[n][:], b.group[n][:]) for n in ("frames", "time", "index")
    )


def test_plan_splits_at_keyframes(gop_clip):
    info = probe(gop_clip)
    s = Sampling(every=7)
    times, keys, sizes = segments.scan(info, s)
    assert len(times) == 600 and keys.sum() == 12
    plan = segments.plan(info, s, 4, (times, keys, sizes))
    assert plan is not None and len(plan) == 4
    for seg in plan[1:]:
        assert keys[seg.first]  # every segment but the first starts at a keyframe
    assert [p.first for p in plan] + [600] == [0, *[p.stop for p in plan]]
    kept = segments.kept_mask(times, s)
    assert sum(p.count for p in plan) == kept.sum() == 86
    assert plan[1].pos == kept[: plan[1].first].sum()
    assert segments.plan(info, Sampling(every=1, keyframes=True), 4) is None
    assert segments.plan(info, s, 1) is None


@pytest.mark.parametrize(
    "request_",
    [
        PrepRequest(every=1, crop="none", chunk_frames=16),
        PrepRequest(every=7, crop="none", chunk_frames=5),
        PrepRequest(fps=3, crop="none", chunk_frames=4),
        PrepRequest(columns=37, crop="none", chunk_frames=3),
        PrepRequest(every=3, start=3.1, end=19.5, crop="none", chunk_frames=6),
    ],
    ids=["every1", "every7", "fps3", "columns", "start-end"],
)
def test_parallel_is_byte_identical(gop_clip, tmp_path, request_):
    single = prep(gop_clip, request_, output=tmp_path / "one.zarr", jobs=1)
    multi = prep(gop_clip, request_, output=tmp_path / "four.zarr", jobs=4)
    assert FrameStore.open(multi.store).meta["parallel"]["jobs"] >= 3  # it really ran in parallel
    assert not multi.warnings
    assert FrameStore.open(multi.store).complete
    assert same_store(single.store, multi.store)


@pytest.mark.parametrize(
    "request_",
    [
        PrepRequest(every=25, fast=True, crop="none", chunk_frames=4),
        PrepRequest(every=7, fast=True, crop="none", chunk_frames=3),
        PrepRequest(fps=3, fast=True, crop="none", chunk_frames=5),
    ],
    ids=["every25", "every7", "fps3"],
)
def test_fast_parallel_is_byte_identical_and_deterministic(gop_clip, tmp_path, request_):
    """--fast decodes reference frames only and samples by time: a segment starting at a
    keyframe inside a time bucket leaves that bucket to the segment before, and the same
    command gives the same store."""
    single = prep(gop_clip, request_, output=tmp_path / "one.zarr", jobs=1)
    again = prep(gop_clip, request_, output=tmp_path / "again.zarr", jobs=1)
    multi = prep(gop_clip, request_, output=tmp_path / "four.zarr", jobs=4)
    meta = FrameStore.open(multi.store).meta
    assert meta["parallel"]["jobs"] >= 3 and not multi.warnings  # borders inside buckets too
    assert meta["picture"]["noref"]
    decoded = meta["decode"]["decoded_frames"]
    assert decoded < 0.9 * 600  # non-reference B-frames were skipped
    assert same_store(single.store, multi.store) and same_store(single.store, again.store)


@pytest.fixture(scope="module")
def open_gop_clip(tmp_path_factory):
    """24 s at 25 fps of MPEG-4 part 2, a keyframe every 2 s, two B-frames (never referred
    to) between reference frames, open GOPs: the frame shown just before each keyframe is a
    B-frame, so with --fast the keyframe is the first decoded frame of its bucket."""
    return make_clip(
        tmp_path_factory.mktemp("seg") / "open_gop.mp4",
        "testsrc2=s=320x180:r=25:d=24",
        "-c:v",
        "mpeg4",
        "-q:v",
        "5",
        "-g",
        "50",
        "-bf",
        "2",
    )


def test_fast_border_keyframe_takes_its_bucket(open_gop_clip, tmp_path):
    """A border inside a bucket whose frames before the keyframe are all skipped: the
    segment before must decode on to the keyframe and keep it, as one process does."""
    request = PrepRequest(every=7, fast=True, crop="none", chunk_frames=3)
    info = probe(open_gop_clip)
    s = Sampling(every=None, fps=25 / 7)
    plan = segments.plan(info, s, 4, noref=True)
    assert plan is not None and any(seg.takes_next_key for seg in plan)
    single = prep(open_gop_clip, request, output=tmp_path / "one.zarr", jobs=1)
    multi = prep(open_gop_clip, request, output=tmp_path / "four.zarr", jobs=4)
    assert FrameStore.open(multi.store).meta["parallel"]["jobs"] == 4 and not multi.warnings
    kept = FrameStore.open(single.store).group["index"][:]
    # a keyframe kept for a bucket that opened on a skipped frame (buckets of 7 frames)
    assert any(i % 50 == 0 and i // 7 == (i - 1) // 7 for i in kept[1:])
    assert same_store(single.store, multi.store)


@pytest.mark.parametrize(
    "request_",
    [
        PrepRequest(columns=37, fast=True, crop="none", chunk_frames=3),
        PrepRequest(every=7, fast=True, start=3.1, end=19.5, crop="none", chunk_frames=4),
        PrepRequest(fps=2, fast=True, crop="none", chunk_frames=2),
    ],
    ids=["columns", "start-end", "fps2"],
)
def test_fast_open_gop_parallel_is_byte_identical(open_gop_clip, tmp_path, request_):
    single = prep(open_gop_clip, request_, output=tmp_path / "one.zarr", jobs=1)
    multi = prep(open_gop_clip, request_, output=tmp_path / "four.zarr", jobs=4)
    assert FrameStore.open(multi.store).meta["parallel"]["jobs"] >= 3 and not multi.warnings
    assert same_store(single.store, multi.store)


def test_fast_plan_splits_inside_buckets(gop_clip):
    """With --fast, a segment may start at a keyframe inside a bucket: the bucket is left to
    the segment before, which decodes on to that keyframe."""
    info = probe(gop_clip)
    s = Sampling(every=None, fps=25 / 7)  # --every 7 at 25 fps, as --fast samples it
    scanned = segments.scan(info, s)
    times, keys = scanned.times, scanned.keys
    plan = segments.plan(info, s, 4, scanned, noref=True)
    assert plan is not None and len(plan) == 4
    buckets = np.floor(times * 25 / 7 + 1e-6)
    kept = segments.kept_mask(times, s)
    for before, seg in zip(plan[:-1], plan[1:], strict=True):
        assert keys[seg.first]
        opens = buckets[seg.first] != buckets[seg.first - 1]
        assert before.takes_next_key == (not opens)
        assert seg.prev_bucket == buckets[seg.first - 1]
        assert seg.pos == kept[: seg.first].sum()  # a bucket split by a border: the first's
    assert not plan[-1].takes_next_key
    # keyframes every 2 s, buckets of 0.28 s: only the keyframe at 14 s opens a bucket
    assert sum(not b.takes_next_key for b in plan[:-1]) <= 1


def test_plan_balances_decoding_cost():
    """Segments are cut where the packets' bytes (with a share per frame) are halved, not the
    frame count: the lighter first half of a film gets more of its frames."""
    n = 1000
    times = np.arange(n) / 25
    keys = np.arange(n) % 10 == 0
    even = segments.Scanned(times, keys, np.full(n, 1000))
    s = Sampling(every=5)
    assert segments.plan(None, s, 2, even)[1].first == 500
    heavy = segments.Scanned(times, keys, np.where(np.arange(n) < 500, 1000, 3000))
    per_frame = segments.decode_cost(heavy.sizes)
    cut = segments.plan(None, s, 2, heavy)[1].first
    # the keyframe (one in 10 frames) nearest to half the cost
    assert cut > 500 and abs(per_frame[:cut].sum() - per_frame.sum() / 2) <= 5 * per_frame.max()


def test_parallel_real_clip(tmp_path):
    movie = DATA / "bbb_trailer_h264.mp4"
    req = PrepRequest(every=5, crop="none")
    a = prep(movie, req, output=tmp_path / "a.zarr", jobs=1)
    b = prep(movie, req, output=tmp_path / "b.zarr", jobs=3)
    assert FrameStore.open(b.store).meta.get("parallel")
    assert same_store(a.store, b.store)


def test_timestamps_that_jump_back_fall_back_to_one_process(tmp_path):
    # this excerpt's timestamps restart at 0 after 57 frames: no safe plan
    movie = DATA / "bbb_excerpt_mpeg4.mkv"
    a = prep(movie, PrepRequest(every=2), output=tmp_path / "a.zarr", jobs=1)
    b = prep(movie, PrepRequest(every=2), output=tmp_path / "b.zarr", jobs=4)
    assert FrameStore.open(b.store).meta.get("parallel") is None
    assert same_store(a.store, b.store)


@pytest.mark.parametrize(
    ("clip", "req"),
    [
        ("gop_clip", PrepRequest(every=2, crop="none", chunk_frames=8)),
        ("open_gop_clip", PrepRequest(every=7, fast=True, crop="none", chunk_frames=3)),
    ],
    ids=["every-frame", "fast-borders-inside-buckets"],
)
def test_interrupted_parallel_prep_resumes_per_segment(clip, req, tmp_path, monkeypatch, request):
    gop_clip = request.getfixturevalue(clip)
    full = prep(gop_clip, req, output=tmp_path / "full.zarr", jobs=1)
    calls = {"n": 0}
    real = segments._Progress.advance

    def interrupt_after_some(self, i, frames):
        real(self, i, frames)
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt

    monkeypatch.setattr(segments._Progress, "advance", interrupt_after_some)
    out = tmp_path / "part.zarr"
    with pytest.raises(KeyboardInterrupt):
        prep(gop_clip, req, output=out, jobs=4)
    monkeypatch.setattr(segments._Progress, "advance", real)
    part = FrameStore.open(out)
    assert not part.complete
    progress = part.meta["segments"]
    assert len(progress) == 4 and 0 < sum(s["done"] for s in progress) < part.frames.shape[0]
    assert any(s["takes_next_key"] for s in progress) == req.fast  # kept for the resume
    assert "written in 4 segments" in part.summary()["covers"]
    res = prep(gop_clip, req, output=out, jobs=4)
    assert res.status == "resumed" and not res.warnings  # in segments, as planned
    assert FrameStore.open(out).complete and FrameStore.open(out).meta["segments"] is None
    assert same_store(full.store, out)


def test_segments_share_out_the_decoder_threads(monkeypatch):
    """Segments run side by side fill the cores themselves: each decoder gets its share of
    the threads (one where there are as many segments as cores), which ffmpeg is told before
    the input, for the decoder, and for the filter graph; one process leaves ffmpeg's choice."""
    monkeypatch.setattr(segments, "usable_cpus", lambda: 8)
    assert [segments.decoder_threads(n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    info = probe(DATA / "bbb_trailer_h264.mp4")
    pic = Picture(width=160, height=68)
    cmd = build_command(info, Sampling(every=24), pic, threads=2)
    assert cmd[cmd.index("-threads") + 1] == "2" and cmd.index("-threads") < cmd.index("-i")
    assert cmd[cmd.index("-filter_complex_threads") + 1] == "2"
    plain = build_command(info, Sampling(every=24), pic)
    assert "-threads" not in plain and "-filter_complex_threads" not in plain
