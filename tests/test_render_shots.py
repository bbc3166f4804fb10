"""Stage two by shot: bands as wide as the shots, colours from k-means over each shot's pooled
pixels (against scikit-learn), every mode, the cache keyed by the cuts, the shots palette,
cut marks, the shot count in the label, and one-line errors for stores without cuts."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import cupy_standin
import numpy as np
import pytest
import threadpoolctl
from PIL import Image

from conftest import DATA, make_clip, run_cli
from moviebarcode import device, shotcluster
from moviebarcode import render as render_mod
from moviebarcode.cluster import ClusterParams
from moviebarcode.colorspace import srgb_to_lab
from moviebarcode.errors import InputError, ParameterError
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.render import RenderOptions, render
from moviebarcode.shotcluster import cluster_shots, shot_key
from moviebarcode.shots import band_widths, shot_spans, shots_of
from moviebarcode.store import FrameStore

SHOTS_ATTR = {"detector": "content-hsv", "threshold": 27.0}
GREEN, RED, BLUE, WHITE, BLACK = (0, 255, 0), (255, 0, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def with_cuts(src, dst, cuts, shots=SHOTS_ATTR):
    """A copy of the store ``src`` at ``dst``, with ``cuts`` (seconds)."""
    shutil.copytree(src, dst)
    store = FrameStore.open(dst, writable=True)
    store.set_cuts(np.asarray(cuts, np.float64), dict(shots))
    return dst


def without_cuts(src, dst):
    """A copy of ``src`` as a version 1 store, from before cut detection."""
    shutil.copytree(src, dst)
    store = FrameStore.open(dst, writable=True)
    if "cuts" in store.group:
        del store.group["cuts"]
    store.update_meta(shots=None, layout_version=1)
    return dst


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A lossless 4 s clip at 8 fps, sampled every 2nd frame (16 frames, at 0, 0.25 ...):
    green for 1 s; red for 1.5 s, then blue for 0.5 s; 2/3 white above 1/3 black for 1 s."""
    d = tmp_path_factory.mktemp("plain")
    clip = make_clip(
        d / "plain.mkv",
        "color=c=0x00ff00:s=160x90:r=8:d=1[g];color=c=red:s=160x90:r=8:d=1.5[r];"
        "color=c=blue:s=160x90:r=8:d=0.5[b];color=c=white:s=160x60:r=8:d=1[w];"
        "color=c=black:s=160x30:r=8:d=1[k];[w][k]vstack[wk];[g][r][b][wk]concat=n=4",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "rgb24",
    )
    return prep(clip, PrepRequest(every=2, crop="none"), output=d / "plain.zarr").store


@pytest.fixture(scope="module")
def three(plain, tmp_path_factory):
    """``plain`` cut in three shots: green (0-1 s), red then blue (1-3 s), white/black (3-4 s)."""
    return with_cuts(plain, tmp_path_factory.mktemp("three") / "s.zarr", [1.0, 3.0])


@pytest.fixture(scope="module")
def trailer(tmp_path_factory):
    """The Big Buck Bunny trailer, a frame a second, cut where consecutive frames differ most
    (a cut between the two frames)."""
    d = tmp_path_factory.mktemp("trailer")
    base = prep(DATA / "bbb_trailer_h264.mp4", PrepRequest(every=24), output=d / "t.zarr").store
    s = FrameStore.open(base)
    frames = s.frames[:].astype(np.float32)
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    after = np.nonzero(diff > np.percentile(diff, 60))[0] + 1
    times = s.times
    return with_cuts(base, d / "cut.zarr", (times[after - 1] + times[after]) / 2)


def pooled(store: FrameStore, a: int, b: int, space: str) -> np.ndarray:
    """The pixels of frames a:b, (N, 3) float32, in the clustering space."""
    x = store.frames[a:b].reshape(-1, 3).astype(np.float32)
    return srgb_to_lab(x) if space == "lab" else x


def inertia_of(x: np.ndarray, centres: np.ndarray) -> tuple[float, np.ndarray]:
    """The inertia of pixels ``x`` (N, 3) about ``centres`` (k, 3), and each one's share."""
    d = ((x[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(2)
    near = d.argmin(1)
    return float(d.min(1).sum()), np.bincount(near, minlength=len(centres)) / len(x)


def columns(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


# -- shots and bands -----------------------------------------------------------------------


def test_frames_belong_to_the_shot_whose_span_holds_them():
    times = np.arange(10.0)
    shots = shot_spans(times, [9.5, 2.5, 6.0, 2.5, -1.0, 30.0, 2.7], end=10.0)
    np.testing.assert_array_equal(shots.starts, [0, 2.5, 2.7, 6, 9.5])
    np.testing.assert_array_equal(shots.ends, [2.5, 2.7, 6, 9.5, 10])
    assert shots.frames.tolist() == [[0, 3], [3, 3], [3, 6], [6, 10], [10, 10]]
    # a frame at a cut's time is the new shot's first
    assert shots_of_times([0, 1, 2], [1.0]).frame_shot.tolist() == [0, 1, 1]
    # no sampled frame: the shot of the frame nearest its middle (2.6: frame 3, shot 2;
    # 9.75: frame 9, shot 3)
    assert shots.sampled.tolist() == [True, False, True, True, False]
    assert shots.source.tolist() == [0, 2, 2, 3, 3]
    assert shots.sampled_index.tolist() == [0, 1, 1, 2, 2]


def shots_of_times(times, cuts):
    return shot_spans(np.asarray(times, float), cuts, end=float(times[-1]) + 1)


@pytest.mark.parametrize("seed", range(20))
def test_band_widths_fill_the_width_with_a_1px_minimum(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    d = rng.exponential(3.0, n) * (rng.random(n) < 0.8) + rng.random(n) * 0.01 + 1e-3
    width = int(rng.integers(n, 6 * n + 2))
    w = band_widths(d, width)
    assert w.sum() == width and w.min() >= 1 and w.dtype.kind == "i"
    # proportional where the minimum does not bind: within a pixel of the share of what
    # the 1 px bands leave
    free = w > 1
    if free.any():
        room = width - (~free).sum()
        ideal = room * d[free] / d[free].sum()
        assert np.all(np.abs(w[free] - ideal) < 1.0 + 1e-9)
    # a longer shot never gets a narrower band
    order = np.argsort(d, kind="stable")
    assert np.all(np.diff(w[order]) >= -1)


def test_band_widths_are_exact_when_they_can_be():
    assert band_widths([1.0, 2.0, 1.0], 40).tolist() == [10, 20, 10]
    assert band_widths([5.0, 0.001, 5.0], 21).tolist() == [10, 1, 10]
    assert band_widths([1.0, 1.0, 1.0], 3).tolist() == [1, 1, 1]
    with pytest.raises(ParameterError, match="--width 2 is narrower than the film's 3 shots"):
        band_widths([1.0, 1.0, 1.0], 2)


def test_a_store_knows_its_shots(three):
    shots = shots_of(FrameStore.open(three))
    assert shots.n == 3 and shots.starts.tolist() == [0.0, 1.0, 3.0]
    assert shots.ends[-1] == pytest.approx(4.0)  # the last decoded frame (3.875) + 1/8 s
    assert shots.frames.tolist() == [[0, 4], [4, 12], [12, 16]]


# -- every mode, by shot ---------------------------------------------------------------------

EXPECTED = {  # mode: per shot, the colours of its band top to bottom (fraction of height)
    "dominant": [[(1, GREEN)], [(1, RED)], [(1, WHITE)]],
    "least": [[(1, GREEN)], [(1, BLUE)], [(1, BLACK)]],
    "stacked": [[(1, GREEN)], [(0.75, RED), (0.25, BLUE)], [(2 / 3, WHITE), (1 / 3, BLACK)]],
    "equal": [[(1, GREEN)], [(0.5, RED), (0.5, BLUE)], [(0.5, WHITE), (0.5, BLACK)]],
}


def expected_average():
    """The bands of average: the mean of the shot's pixels in linear light."""
    lin = np.array([[0, 1, 0], [0.75, 0, 0.25], [2 / 3, 2 / 3, 2 / 3]])
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055) * 255
    return [[(1, tuple(c))] for c in srgb]


@pytest.mark.parametrize("mode", ["dominant", "least", "stacked", "equal", "average", "squeeze"])
def test_every_mode_by_shot(three, tmp_path, mode):
    out = tmp_path / "b.png"
    k = 2 if mode in ("stacked", "equal", "least", "dominant") else 8
    opts = RenderOptions(mode=mode, by="shot", width=40, height=60, cluster=ClusterParams(k=k))
    res = render(three, opts, output=out)
    img = columns(out)
    assert img.shape == (60, 40, 3)
    bands = [(0, 10), (10, 30), (30, 40)]  # 1 s, 2 s and 1 s of 4 s on 40 px
    if mode == "squeeze":
        # each row of a band is the shot's mean of that row: the third is 2/3 white over black
        np.testing.assert_allclose(img[:, 30:40], img[:, 30:31].repeat(10, 1))
        assert (img[:39, 30] >= 253).all() and (img[41:, 30] <= 2).all()
        want = expected_average()[:2]
    else:
        want = EXPECTED.get(mode) or expected_average()
    for (a, b), parts in zip(bands, want, strict=False):
        band = img[:, a:b]
        assert (band == band[:, :1]).all(), f"band {a}:{b} is not uniform across"
        top = 0
        for frac, colour in parts:
            rows = band[int(top * 60) + 1 : int((top + frac) * 60) - 1, 0]
            np.testing.assert_allclose(rows, np.broadcast_to(colour, rows.shape), atol=3)
            top += frac
    if mode in ("average", "squeeze"):
        assert res.clusters is None  # from the cached per-frame statistics
    else:
        assert res.clusters.params["by"] == "shot" and res.clusters.centres.shape == (3, k, 3)


def test_the_shot_palette_pools_the_frames(three):
    """Shot 1 is six red frames and two blue ones: its two clusters are red and blue with
    shares 0.75 and 0.25, from the pooled pixels (no frame alone holds both colours)."""
    store = FrameStore.open(three)
    red, blue = store.frames[4, 0, 0], store.frames[10, 0, 0]  # as decoded: (253, 0, 0) ...
    c = cluster_shots(store, ClusterParams(k=2), recompute=True)
    order = np.argsort(-c.shares[1])
    np.testing.assert_allclose(c.centres[1][order], [red, blue], atol=1e-3)
    np.testing.assert_allclose(c.shares[1][order], [0.75, 0.25], atol=1e-6)
    assert c.inertia[1] == pytest.approx(0, abs=1e-3)


def test_sklearn_engine_by_shot(three):
    c = cluster_shots(FrameStore.open(three), ClusterParams(k=2, engine="sklearn"))
    assert c.params["engine"] == "sklearn"
    dom = c.centres[np.arange(3), c.shares.argmax(1)]
    np.testing.assert_allclose(dom, [GREEN, RED, WHITE], atol=3)


# -- against scikit-learn on the pooled pixels -----------------------------------------------


@pytest.fixture(scope="module")
def reference(trailer):
    """scikit-learn's inertia on each sampled shot's pooled pixels, k=8, per space (on one
    thread: its OpenMP threads slow it tenfold on a busy machine)."""
    sk = pytest.importorskip("sklearn.cluster")
    store = FrameStore.open(trailer)
    shots = shots_of(store)
    out = {}
    with threadpoolctl.threadpool_limits(1):
        for space in ("rgb", "lab"):
            out[space] = np.array(
                [
                    sk.KMeans(8, n_init=10, random_state=0).fit(pooled(store, a, b, space)).inertia_
                    for a, b in shots.frames[shots.sampled]
                ]
            )
    return out


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_shot_palettes_match_sklearn_on_the_pooled_pixels(trailer, reference, space):
    store = FrameStore.open(trailer)
    shots = shots_of(store)
    assert shots.n > 10 and (shots.frames[:, 1] - shots.frames[:, 0]).max() > 3
    c = cluster_shots(store, ClusterParams(k=8, space=space), recompute=True)
    ref = reference[space]
    assert c.inertia.mean() <= ref.mean() * 1.01
    # the inertia and shares reported are the pooled pixels', about the centres reported
    for i, (a, b) in enumerate(shots.frames[shots.sampled]):
        centres = srgb_to_lab(c.centres[i]) if space == "lab" else c.centres[i]
        inertia, shares = inertia_of(pooled(store, a, b, space), centres)
        assert c.inertia[i] == pytest.approx(inertia, rel=2e-3, abs=1.0)
        np.testing.assert_allclose(c.shares[i], shares, atol=2e-3)


def test_merging_often_keeps_the_quality(trailer, reference, monkeypatch):
    """Coresets merged every 2 frames (memory bounded by the merge, not the shot) give
    palettes as good; and the result never depends on the batches."""
    store = FrameStore.open(trailer)
    monkeypatch.setattr(shotcluster, "MERGE_FRAMES", 2)
    a = cluster_shots(store, ClusterParams(k=8), recompute=True, batch_frames=4)
    b = cluster_shots(store, ClusterParams(k=8), recompute=True, batch_frames=64)
    assert a.inertia.mean() <= reference["rgb"].mean() * 1.01
    for name in ("centres", "shares", "inertia"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)


def test_the_device_path_gives_the_numpy_result(trailer, monkeypatch):
    """The cupy engine (through the stand-in: no implicit copies, no host arrays mixed in)
    pools and clusters the shots as the numpy engine does, bit for bit."""
    monkeypatch.setitem(sys.modules, "cupy", cupy_standin)
    monkeypatch.setattr(device, "gpu_status", lambda: (True, "GPU 0: stand-in"))
    store = FrameStore.open(trailer)
    ref = cluster_shots(store, ClusterParams(k=4, engine="numpy"), recompute=True)
    got = cluster_shots(store, ClusterParams(k=4, engine="cupy"), recompute=True)
    assert got.params["device"] == "gpu"
    for name in ("centres", "shares", "inertia"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), name)


# -- short shots -----------------------------------------------------------------------------


def test_a_shot_shorter_than_the_sample_interval_keeps_a_band(plain, tmp_path):
    """A shot of 0.1 s between two samples (2.25 s and 2.5 s) holds no frame: it still gets
    a band of at least 1 px, drawn in the colours of the shot of the frame nearest its
    middle (2.25 s, red), and the palette says so."""
    store = with_cuts(plain, tmp_path / "s.zarr", [1.0, 2.3, 2.4, 3.0])
    out, pal = tmp_path / "b.png", tmp_path / "p.json"
    opts = RenderOptions(mode="dominant", by="shot", width=40, palette=pal)
    res = render(store, opts, output=out)
    assert res.shots.n == 5 and not res.shots.sampled[2]
    widths = band_widths(res.shots.durations, 40)
    assert widths[2] == 1 and widths.sum() == 40
    img = columns(out)
    x = int(widths[:2].sum())
    np.testing.assert_allclose(img[5, x], RED, atol=3)  # borrowed from shot 1
    np.testing.assert_allclose(img[5, x + 1], BLUE, atol=3)  # shot 3, its own
    shot = json.loads(pal.read_text())["shots"][2]
    assert shot["frames"] == [10, 10] and shot["from_shot"] == 1  # between frames 9 and 10
    assert shot["start"] == pytest.approx(2.3) and shot["end"] == pytest.approx(2.4)


def test_a_width_narrower_than_the_shots_is_refused(three, tmp_path):
    with pytest.raises(ParameterError, match="narrower than the film's 3 shots"):
        render(three, RenderOptions(mode="average", by="shot", width=2), output=tmp_path / "x.png")


# -- the cache -------------------------------------------------------------------------------


def test_cached_after_a_render_and_new_cuts_cluster_again(three, tmp_path, monkeypatch):
    store = with_cuts(three, tmp_path / "s.zarr", [1.0, 3.0])
    opts = RenderOptions(mode="stacked", by="shot", cluster=ClusterParams(k=3))
    first = render(store, opts, output=tmp_path / "a.png")
    assert not first.clusters.cached
    fits = []
    real = shotcluster._Pools.solve
    monkeypatch.setattr(shotcluster._Pools, "solve", lambda self: fits.append(1) or real(self))
    second = render(store, opts, output=tmp_path / "b.png")
    assert second.clusters.cached and not fits
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    fs = FrameStore.open(store)
    key = shot_key(fs, ClusterParams(k=3).for_frames(fs.frame_shape))
    assert (fs.path / "results" / "k3" / key / "zarr.json").is_file()
    # the per-frame clustering is another entry, untouched
    assert key.startswith(ClusterParams(k=3).for_frames(fs.frame_shape).key() + "-shots")
    # new cuts (or the same cuts found another way): clustered again
    for cuts, attrs in (
        ([1.0, 2.0, 3.0], SHOTS_ATTR),
        ([1.0, 3.0], {**SHOTS_ATTR, "threshold": 30}),
    ):
        FrameStore.open(store, writable=True).set_cuts(np.array(cuts), attrs)
        fits.clear()
        again = render(store, opts, output=tmp_path / "c.png")
        assert not again.clusters.cached and fits
        assert len(again.clusters.inertia) == len(cuts) + 1


# -- the palette -----------------------------------------------------------------------------


def test_the_palette_lists_the_shots(three, tmp_path):
    js, cs = tmp_path / "p.json", tmp_path / "p.csv"
    for pal in (js, cs):
        opts = RenderOptions(mode="stacked", by="shot", cluster=ClusterParams(k=2), palette=pal)
        render(three, opts, output=tmp_path / "b.png")
    doc = json.loads(js.read_text())
    assert doc["k"] == 2 and doc["by"] == "shot" and "frames" not in doc
    shots = doc["shots"]
    assert [(s["start"], s["frames"]) for s in shots] == [
        (0.0, [0, 4]),
        (1.0, [4, 12]),
        (3.0, [12, 16]),
    ]
    assert [s["end"] for s in shots] == [1.0, 3.0, pytest.approx(4.0)]
    frames = FrameStore.open(three).frames
    decoded = [frames[i, 0, 0].tolist() for i in (0, 4, 10)]  # green, red, blue as decoded
    assert shots[1]["colors"] == decoded[1:] and shots[1]["shares"] == [0.75, 0.25]
    assert shots[0]["colors"] == decoded[:1] and shots[0]["shares"] == [1.0]
    assert all(sum(s["shares"]) == pytest.approx(1) and "from_shot" not in s for s in shots)
    rows = list(csv.reader(cs.open()))
    assert rows[0] == (
        "shot,start,end,first_frame,stop_frame,from_shot,rank,r,g,b,share".split(",")
    )
    assert len(rows) == 1 + sum(len(s["colors"]) for s in shots)
    red = [str(v) for v in decoded[1]]
    assert rows[2] == ["1", "1.0", "3.0", "4", "12", "", "0", *red, "0.75"]


def test_the_palette_by_frame_is_unchanged(three, tmp_path):
    pal = tmp_path / "p.json"
    render(three, RenderOptions(cluster=ClusterParams(k=2), palette=pal), output=tmp_path / "b.png")
    doc = json.loads(pal.read_text())
    assert set(doc) == {"k", "space", "frames"} and len(doc["frames"]) == 16


# -- cut marks and the label -------------------------------------------------------------------


@pytest.mark.parametrize("by, width, marks", [("shot", 40, [10, 30]), ("frame", 32, [8, 24])])
def test_cut_marks_sit_at_the_cuts(three, tmp_path, by, width, marks):
    """Marks on the first column of each new shot (by frame: 16 frames on 32 px, the cuts
    before frames 4 and 12), black over light columns and white over dark ones."""
    plain_png, marked_png = tmp_path / "a.png", tmp_path / "b.png"
    opts = RenderOptions(mode="average", by=by, width=width, height=20)
    render(three, opts, output=plain_png)
    render(
        three,
        RenderOptions(mode="average", by=by, width=width, height=20, cuts=True),
        output=marked_png,
    )
    a, b = columns(plain_png), columns(marked_png)
    changed = np.nonzero((a != b).any(axis=(0, 2)))[0].tolist()
    assert changed == marks
    for x in marks:
        assert (b[:, x] == (0 if a[:, x].mean() > 127.5 else 255)).all()


def test_cut_marks_widen_with_the_image(three, tmp_path):
    out = tmp_path / "b.png"
    render(
        three,
        RenderOptions(mode="average", by="shot", width=4000, height=10, cuts=True),
        output=out,
    )
    img = columns(out)
    # 4 px per cut, centred on the edges at 1000 and at 3000
    dark = [x for x in range(4000) if (img[:, x] == 0).all() or (img[:, x] == 255).all()]
    assert dark == [998, 999, 1000, 1001, 2998, 2999, 3000, 3001]


def test_the_label_shows_the_shot_count(three, plain, tmp_path, monkeypatch):
    titles = []
    real = render_mod.add_labels
    monkeypatch.setattr(
        render_mod, "add_labels", lambda img, **kw: titles.append(kw["title"]) or real(img, **kw)
    )
    for store, by in ((three, "shot"), (three, "frame"), (plain, "frame")):
        opts = RenderOptions(mode="average", by=by, label=True, title="Film")
        render(store, opts, output=tmp_path / "b.png")
    assert titles[:2] == ["Film (3 shots)", "Film (3 shots)"]
    cuts = FrameStore.open(plain).cuts  # as prepped: with cuts or without
    n = None if cuts is None else len(cuts) + 1
    assert titles[2] == ("Film" if n is None else f"Film ({n} shot{'s' * (n != 1)})")
    old = without_cuts(plain, tmp_path / "old.zarr")
    render(old, RenderOptions(mode="average", label=True, title="Film"), output=tmp_path / "b.png")
    assert titles[3] == "Film"


# -- stores without cuts ---------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--by", "shot"], ["--cuts"]])
def test_a_store_without_cuts_is_one_line(plain, tmp_path, option):
    old = without_cuts(plain, tmp_path / "old.zarr")
    with pytest.raises(InputError, match="has no shot cuts"):
        render(old, RenderOptions(by="shot"), output=tmp_path / "x.png")
    code, _, err = run_cli("render", old, *option, "-o", tmp_path / "x.png")
    assert code == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("moviebarcode: error: ") and "has no shot cuts" in lines[0]
    assert "moviebarcode prep --shots" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_the_command_line_renders_by_shot(three, tmp_path):
    out, pal = tmp_path / "b.png", tmp_path / "p.csv"
    code, _, err = run_cli(
        "render", three, "--by", "shot", "--mode", "dominant", "--k", "2", "--cuts",
        "--width", "40", "-o", out, "--palette", pal, "-q",
    )  # fmt: skip
    assert code == 0 and not err, err
    img = columns(out)
    np.testing.assert_allclose(img[5, [0, 15, 35]], [GREEN, RED, WHITE], atol=3)
    assert pal.read_text().startswith("shot,start,end")
    code, _, err = run_cli("render", three, "--by", "shot", "--width", "2", "-o", out)
    assert code == 2 and "narrower than the film's 3 shots" in err
    code, _, err = run_cli("render", three, "--by", "shot", "--scheduler", "tcp://x:1", "-o", out)
    assert code == 2 and "--scheduler clusters by frame" in err
