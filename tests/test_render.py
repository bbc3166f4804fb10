"""Stage two: render from the store, each mode on clips with known colours, the result cache,
no decoding, agreement with scikit-learn on a real clip, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, make_clip
from moviebarcode import executors
from moviebarcode.cache import ResultCache
from moviebarcode.cluster import ClusterParams, cluster
from moviebarcode.device import LoadStats
from moviebarcode.errors import StoreError
from moviebarcode.executors import InProcess, ProcessPool
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.render import RenderOptions, frame_columns, render
from moviebarcode.store import FrameStore


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """A store of 6 frames: 2 half red/half blue (left/right), 2 solid green, 2 top white/bottom
    black."""
    d = tmp_path_factory.mktemp("halves")
    clip = make_clip(
        d / "halves.mkv",
        "color=c=red:s=80x90:r=4:d=1[r];color=c=blue:s=80x90:r=4:d=1[b];[r][b]hstack[rb];"
        "color=c=0x00ff00:s=160x90:r=4:d=1[g];"
        "color=c=white:s=160x45:r=4:d=1[w];color=c=black:s=160x45:r=4:d=1[k];[w][k]vstack[wk];"
        "[rb][g][wk]concat=n=3",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "rgb24",
    )  # lossless RGB: colours are exact
    return prep(clip, PrepRequest(every=2, crop="none"), output=d / "halves.zarr").store


def columns_of(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def only_colours(pixels, *colours, atol=3) -> bool:
    """Whether every pixel is within ``atol`` of one of ``colours``."""
    px = np.asarray(pixels, int).reshape(-1, 1, 3)
    return bool(np.all(np.any(np.all(np.abs(px - np.array(colours)) <= atol, axis=2), axis=1)))


def test_stacked_half_red_half_blue(halves, tmp_path):
    out = tmp_path / "s.png"
    render(
        halves, RenderOptions(mode="stacked", cluster=ClusterParams(k=2), height=100), output=out
    )
    img = columns_of(out)
    assert img.shape == (100, 6, 3)
    col = img[:, 0].astype(int)
    reds = np.sum(np.all(np.abs(col - (255, 0, 0)) <= 3, axis=1))
    blues = np.sum(np.all(np.abs(col - (0, 0, 255)) <= 3, axis=1))
    assert reds == 50 and blues == 50  # shares 0.5 each, bands fill the column exactly
    green = img[:, 2].astype(int)
    assert np.all(np.abs(green - (0, 255, 0)) <= 3)  # a solid frame is one colour
    s = FrameStore.open(halves)
    c = cluster(s, ClusterParams(k=2))
    np.testing.assert_allclose(np.sort(c.shares[:2], axis=1), 0.5, atol=1e-6)
    np.testing.assert_allclose(c.shares[2].max(), 1.0)
    assert not np.isnan(c.centres).any()


def test_stacked_sorts_and_equal(halves, tmp_path):
    out = tmp_path / "l.png"
    render(
        halves,
        RenderOptions(mode="stacked", cluster=ClusterParams(k=2), sort="lightness", height=10),
        output=out,
    )
    col = columns_of(out)[:, 4].astype(int)  # white over black frame
    assert np.all(col[:5] > 250) and np.all(col[5:] < 5)
    render(halves, RenderOptions(mode="equal", cluster=ClusterParams(k=8), height=8), output=out)
    col = columns_of(out)[:, 0].astype(int)
    # all 8 clusters at equal heights: a two-colour frame still shows only its two colours
    assert only_colours(col, (255, 0, 0), (0, 0, 255))


def test_average_dominant_least_squeeze(halves, tmp_path):
    out = tmp_path / "a.png"
    render(halves, RenderOptions(mode="average", height=4), output=out)
    img = columns_of(out).astype(int)
    # red and blue averaged in linear light: ~188 each, not 128
    assert np.all(np.abs(img[0, 0] - (188, 0, 188)) <= 3)
    render(halves, RenderOptions(mode="average", gamma_correct=False, height=4), output=out)
    assert np.all(np.abs(columns_of(out).astype(int)[0, 0] - (128, 0, 128)) <= 3)
    render(halves, RenderOptions(mode="squeeze"), output=out)
    img = columns_of(out).astype(int)
    assert img.shape == (90, 6, 3)  # the frame's own height
    assert np.all(img[:40, 4] > 250) and np.all(img[-40:, 4] < 5)  # white top, black bottom
    # dominant/least on a 75/25 frame: build it from the cached clusters of a known result
    s = FrameStore.open(halves)
    c = cluster(s, ClusterParams(k=2))
    for mode in ("dominant", "least"):
        render(halves, RenderOptions(mode=mode, cluster=ClusterParams(k=2), height=3), output=out)
        img = columns_of(out).astype(int)
        assert np.all(np.abs(img[0, 2] - (0, 255, 0)) <= 3)  # solid: both are its colour
        i = np.argmax(c.shares[4]) if mode == "dominant" else np.argmin(c.shares[4])
        np.testing.assert_allclose(img[0, 4], c.centres[4, i], atol=1)


def test_lab_space(halves, tmp_path):
    out = tmp_path / "lab.png"
    render(
        halves,
        RenderOptions(mode="stacked", cluster=ClusterParams(k=2, space="lab"), height=10),
        output=out,
    )
    col = columns_of(out)[:, 0].astype(int)
    assert only_colours(col, (255, 0, 0), (0, 0, 255))


def test_cache_other_k_and_recompute(halves, tmp_path, monkeypatch):
    s = FrameStore.open(halves)
    a = cluster(s, ClusterParams(k=3))
    assert not a.cached
    b = cluster(s, ClusterParams(k=3))
    assert b.cached
    np.testing.assert_array_equal(a.centres, b.centres)
    # a cached render does not cluster at all
    import moviebarcode.cluster as c

    def boom(*a, **k):
        raise AssertionError("clustered again")

    monkeypatch.setattr(c, "cluster_range", boom)
    render(
        halves,
        RenderOptions(mode="dominant", cluster=ClusterParams(k=3), width=12),
        output=tmp_path / "x.png",
    )
    monkeypatch.undo()
    cluster(s, ClusterParams(k=4))
    ks = sorted({r["k"] for r in ResultCache(s).list()})
    assert {3, 4} <= set(ks)
    assert not cluster(s, ClusterParams(k=3), recompute=True).cached


def test_palette_export(halves, tmp_path):
    pj, pc = tmp_path / "p.json", tmp_path / "p.csv"
    render(
        halves,
        RenderOptions(mode="stacked", cluster=ClusterParams(k=2), palette=pj),
        output=tmp_path / "x.png",
    )
    data = json.loads(pj.read_text())
    assert data["k"] == 2 and data["space"] == "rgb" and len(data["frames"]) == 6
    f0 = data["frames"][0]
    assert set(f0) == {"index", "time", "colors", "shares"}
    assert abs(sum(f0["shares"]) - 1) < 1e-3
    assert len(f0["colors"]) == 2 and only_colours(f0["colors"], (255, 0, 0), (0, 0, 255))
    assert abs(f0["shares"][0] - 0.5) < 1e-3
    render(
        halves,
        RenderOptions(mode="dominant", cluster=ClusterParams(k=2), palette=pc),
        output=tmp_path / "y.png",
    )
    assert pc.read_text().splitlines()[0].startswith("index,time")


def test_width_height_and_label(halves, tmp_path):
    out = tmp_path / "w.png"
    render(
        halves,
        RenderOptions(mode="dominant", cluster=ClusterParams(k=2), width=60, height=30),
        output=out,
    )
    assert Image.open(out).size == (60, 30)
    render(
        halves,
        RenderOptions(
            mode="dominant",
            cluster=ClusterParams(k=2),
            width=300,
            height=30,
            label=True,
            title="Halves",
        ),
        output=out,
    )
    w, h = Image.open(out).size
    assert w == 300 and h > 30


def test_render_needs_neither_movie_nor_ffmpeg(clips, tmp_path):
    movie = tmp_path / "m.mp4"
    movie.write_bytes(clips["colours"].read_bytes())
    store = prep(movie, PrepRequest(), output=tmp_path / "m.zarr").store
    movie.unlink()
    env = {
        **os.environ,
        "MOVIEBARCODE_FFMPEG": str(tmp_path / "no-ffmpeg-here"),
        "PATH": "/nonexistent",
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "moviebarcode",
            "render",
            str(store),
            "-q",
            "-o",
            str(tmp_path / "b.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    img = columns_of(tmp_path / "b.png").astype(int)
    assert np.all(np.abs(img[:, 0] - (255, 0, 0)) <= 3)  # the first frames are red


def test_refuses_incomplete_store(clips, tmp_path):
    store = prep(clips["colours"], PrepRequest(), output=tmp_path / "i.zarr").store
    s = FrameStore.open(store, writable=True)
    s.update_meta(complete=False)
    with pytest.raises(StoreError, match="incomplete"):
        render(store, RenderOptions(), output=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_two_renders_at_once_do_not_corrupt_the_cache(clips, tmp_path):
    store = prep(clips["colours"], PrepRequest(every=4), output=tmp_path / "c.zarr").store
    errors = []

    def go(i, recompute=False):
        try:
            render(
                store,
                RenderOptions(mode="stacked", cluster=ClusterParams(k=5), recompute=recompute),
                output=tmp_path / f"{i}.png",
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    for recompute in (False, True):  # first writers racing, then replacers racing
        threads = [threading.Thread(target=go, args=(i, recompute)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    s = FrameStore.open(store)
    assert len([r for r in ResultCache(s).list() if r["k"] == 5]) == 1
    assert not [p for p in (store / "results" / "k5").iterdir() if p.name.startswith(".")]
    c = cluster(s, ClusterParams(k=5))
    assert c.cached and c.centres.shape == (s.frames_done, 5, 3)
    assert (tmp_path / "0.png").read_bytes() == (tmp_path / "2.png").read_bytes()


def test_agrees_with_sklearn_on_a_real_clip(tmp_path):
    pytest.importorskip("sklearn")
    store = prep(
        DATA / "bbb_trailer_h264.mp4", PrepRequest(every=96), output=tmp_path / "t.zarr"
    ).store
    s = FrameStore.open(store)
    ours = cluster(s, ClusterParams(k=8))
    ref = cluster(s, ClusterParams(k=8, n_init=20, engine="sklearn"))
    assert ref.params["engine"] == "sklearn" and not ref.cached  # not served numpy's result
    assert ours.inertia.mean() <= ref.inertia.mean() * 1.01
    dom_ours = ours.centres[np.arange(len(ours.shares)), ours.shares.argmax(1)]
    dom_ref = ref.centres[np.arange(len(ref.shares)), ref.shares.argmax(1)]
    close = np.linalg.norm(dom_ours - dom_ref, axis=1) < 10
    assert close.mean() >= 0.7


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes_give_the_same_result(tmp_path, monkeypatch, method):
    """The numpy engine's batches in worker processes, forked or spawned: the same clustering
    as in this process, byte for byte, in order."""
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    monkeypatch.setattr(executors, "worker_context", lambda: multiprocessing.get_context(method))

    request = PrepRequest(every=48, chunk_frames=4)
    store = prep(DATA / "bbb_trailer_h264.mp4", request, output=tmp_path / "t.zarr").store
    s = FrameStore.open(store)
    assert len(s.batch_ranges(4)) >= 3
    params = ClusterParams(k=4, n_init=2)
    seen = []
    load = LoadStats()
    one = cluster(s, params, batch_frames=4, executor=InProcess(), recompute=True)
    two = cluster(
        s,
        params,
        batch_frames=4,
        executor=ProcessPool(2),
        recompute=True,
        progress=seen.append,
        load=load,
    )
    assert load.method == "zarr" and load.bytes == s.frames_done * 90 * 160 * 3
    for name in ("centres", "shares", "inertia"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert seen == sorted(seen) and seen[-1] == s.frames_done
    assert one.params["engine"] == two.params["engine"] == "numpy"
    assert two.params["executor"]["name"] == "processes"
    # A whole render: the same image.
    for ex in (InProcess(), ProcessPool(2)):
        opts = RenderOptions(cluster=params, batch_frames=4, recompute=True)
        render(store, opts, output=tmp_path / f"{ex.name}.png", executor=ex)
    assert (tmp_path / "in-process.png").read_bytes() == (tmp_path / "processes.png").read_bytes()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
def test_workers_fork_only_over_known_threads(halves):
    """Worker processes are forked while the only other threads are zarr's (a fresh interpreter
    that has read a store), and spawned while any other thread runs."""
    code = (
        "import sys, threading\n"
        "from moviebarcode.executors import worker_context\n"
        "from moviebarcode.store import FrameStore\n"
        "s = FrameStore.open(sys.argv[1]); s.frames[:1]\n"
        "assert any(t.name.startswith('asyncio_') for t in threading.enumerate())\n"
        "print(worker_context().get_start_method())\n"
        "stop = threading.Event()\n"
        "t = threading.Thread(target=stop.wait, name='elsewhere'); t.start()\n"
        "print(worker_context().get_start_method()); stop.set(); t.join()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(halves)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["fork", "spawn"]


def test_average_and_squeeze_are_cached(halves, tmp_path, monkeypatch):
    s = FrameStore.open(halves)
    first = {m: frame_columns(s, m) for m in ("average", "squeeze")}

    def no_reading(*a, **k):
        raise AssertionError("read the frames again")

    monkeypatch.setattr(FrameStore, "iter_batches", no_reading)
    for m in ("average", "squeeze"):
        np.testing.assert_array_equal(frame_columns(FrameStore.open(halves), m), first[m])
    render(halves, RenderOptions(mode="average"), output=tmp_path / "a.png")
    monkeypatch.undo()
    naive = frame_columns(FrameStore.open(halves), "average", gamma_correct=False)
    assert abs(naive[0, 0] - first["average"][0, 0]) > 50  # cached apart: 128 vs 188
    assert [r["k"] for r in ResultCache(s).list()] == sorted(r["k"] for r in ResultCache(s).list())


def test_palette_lists_fewer_entries_when_clusters_coincide(halves, tmp_path):
    """A frame of one colour at k=8 lists one entry, not eight; k stays as asked."""
    pj = tmp_path / "p.json"
    render(
        halves,
        RenderOptions(mode="dominant", cluster=ClusterParams(k=8), palette=pj),
        output=tmp_path / "x.png",
    )
    doc = json.loads(pj.read_text())
    assert doc["k"] == 8
    counts = [len(f["colors"]) for f in doc["frames"]]
    assert counts[2] == counts[3] == 1  # the solid green frames
    assert all(1 <= c <= 8 for c in counts) and max(counts) < 8
    assert all(abs(sum(f["shares"]) - 1) < 1e-9 for f in doc["frames"])
