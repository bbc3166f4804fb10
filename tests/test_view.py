"""The view page as a file: self-contained, its data equal to the store's (times, frame
numbers, cuts, the cached clusterings as the palette files list them), the clusterings it
offers, thumbnails within the budget and equal to the frames, and one-line errors. The page
in a browser: test_view_browser.py."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from viewpages import array, script_json, sheets, trailer_store

from conftest import run_process
from moviebarcode.cache import CLUSTER_ARRAYS, ResultCache
from moviebarcode.cluster import ClusterParams, cached_clusters, cluster
from moviebarcode.errors import InputError, ParameterError, StoreError
from moviebarcode.palette import palette_rows
from moviebarcode.shots import shots_of
from moviebarcode.store import FrameStore
from moviebarcode.view import ViewOptions, build_view, default_page_path
from moviebarcode.view.page import asset
from moviebarcode.view.payload import ranked


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return trailer_store(tmp_path_factory.mktemp("view") / "trailer.zarr")


@pytest.fixture(scope="module")
def page(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "trailer.html"
    result = build_view(store, ViewOptions(cluster=ClusterParams(k=5)), output=out)
    return result, out.read_text("utf-8")


cli = run_process


def test_the_page_is_one_file_that_asks_for_nothing(page):
    result, html = page
    assert result.size == len(html.encode("utf-8"))
    assert not re.search(r"<(link|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<(script|img|audio|video|source)\b[^>]*\ssrc=", html, re.I)
    assert not re.search(r"(https?:)?//[\w.-]+\.\w+/", html.replace("http-equiv", ""))
    assert "default-src 'none'" in html  # the browser refuses any request the page might try
    for name in ("view.js", "view.css"):
        assert "</script" not in asset(name).lower() and "</style" not in asset(name).lower()


def test_the_data_is_the_stores(page, store):
    _, html = page
    data = script_json(html, "mb-data")
    fs = FrameStore.open(store)
    n = fs.frames_done
    assert data["n"] == n and data["frame_size"] == [160, 90]
    np.testing.assert_array_equal(array(data["times"], "<f8"), fs.times)
    np.testing.assert_array_equal(array(data["indices"], "<f8"), fs.indices)
    shots = shots_of(fs)
    assert shots.n > 1  # the trailer has cuts
    np.testing.assert_array_equal(array(data["cuts"], "<f8"), shots.starts[1:])
    assert data["end"] == shots.ends[-1]
    assert f"{shots.n} shots" in data["facts"]
    assert data["initial"] == {"mode": "stacked", "clustering": 0}
    average = array(data["average"], "u1").reshape(n, 3)
    assert average.std() > 10  # a film, not a blank


def test_a_clustering_is_sent_as_the_palette_files_list_it(page, store):
    _, html = page
    c = script_json(html, "mb-data")["clusterings"][0]
    fs = FrameStore.open(store)
    hit = cached_clusters(fs, ClusterParams(k=5))
    assert hit is not None  # view clustered it, and cached it
    assert (c["k"], c["space"], c["label"]) == (5, "rgb", "k=5 · rgb")
    n = fs.frames_done
    colours = array(c["colours"], "u1").reshape(n, 5, 3)
    units = array(c["units"], "<u2").reshape(n, 5)
    for i, (cols, shares) in enumerate(palette_rows(hit.centres, hit.shares)):
        m = len(cols)
        assert colours[i, :m].tolist() == cols
        assert (units[i, :m] / 10000).tolist() == shares
        assert not units[i, m:].any()


def test_ranked_orders_like_palette_rows():
    rng = np.random.default_rng(3)
    centres = rng.random((50, 6, 3)) * 255
    shares = rng.dirichlet(np.ones(6) * 0.3, 50)
    shares[::7, 2] = 0.0
    colours, units = ranked(centres, shares)
    assert units.dtype == np.uint16 and (units.sum(1) == 10000).all()
    for i, (cols, sh) in enumerate(palette_rows(centres, shares)):
        assert colours[i, : len(cols)].tolist() == cols
        assert (units[i, : len(sh)] / 10000).tolist() == sh


def test_every_cached_k_and_space_is_offered_once(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "s.zarr")
    shutil.rmtree(copy / "results", ignore_errors=True)  # what other tests cached
    fs = FrameStore.open(copy)
    for k, space in ((3, "lab"), (8, "rgb")):
        cluster(fs, ClusterParams(k=k, space=space))
    current = ClusterParams(k=3, space="lab").for_frames(fs.frame_shape).key()
    entry = ResultCache(fs).load(3, current)
    arrays = {name: entry[name] for name in CLUSTER_ARRAYS}
    old = current.rsplit("-v", 1)[0] + "-v1"
    ResultCache(fs).save(3, old, entry["params"], arrays)  # an older algorithm's result
    ResultCache(fs).save(8, "rgb-x-shots1-abc", entry["params"] | {"by": "shot"}, arrays)
    result = build_view(copy, ViewOptions(cluster=ClusterParams(k=4)), output=tmp_path / "p.html")
    offered = script_json((tmp_path / "p.html").read_text(), "mb-data")["clusterings"]
    assert [(c["k"], c["space"]) for c in offered] == [(4, "rgb"), (3, "lab"), (8, "rgb")]
    assert offered[1]["key"] == current  # not the older algorithm's
    assert result.clusterings == 3 and not result.clusters.cached


def test_thumbnails_are_the_frames_in_sheets(page, store):
    result, html = page
    thumbs = script_json(html, "mb-thumbs")
    fs = FrameStore.open(store)
    n = fs.frames_done
    assert (thumbs["width"], thumbs["height"]) == result.thumbs == (160, 90)  # room for all
    assert thumbs["type"] == "image/webp" and thumbs["count"] == -(-n // 256)
    assert len(sheets(html)) == thumbs["count"]
    sheet = np.asarray(Image.open(io.BytesIO(array(sheets(html)[0], "u1").tobytes())))
    w, h, per_row = thumbs["width"], thumbs["height"], thumbs["per_row"]
    for i in (0, 17, n - 1):
        y, x = divmod(i, per_row)
        tile = sheet[y * h : (y + 1) * h, x * w : (x + 1) * w].astype(float)
        frame = fs.frames[i].astype(float)
        assert np.abs(tile.mean((0, 1)) - frame.mean((0, 1))).max() < 4
        assert np.abs(tile - frame).mean() < 12


def test_the_budget_sizes_the_thumbnails(page, store, tmp_path):
    budget = 0.6 * page[0].size  # the page with thumbnails as large as the frames
    opts = ViewOptions(budget_mb=budget / 1e6)
    small = build_view(store, opts, output=tmp_path / "small.html")
    assert small.thumbs is not None and 60 < small.thumbs[0] < 160
    assert 0.8 * budget < small.size < budget
    w, h = small.thumbs
    assert h == round(w * 90 / 160)
    none = build_view(store, ViewOptions(budget_mb=0.05), output=tmp_path / "none.html")
    assert none.thumbs is None and "no room for thumbnails" in none.warnings[0]
    assert script_json((tmp_path / "none.html").read_text(), "mb-thumbs") is None
    assert sheets((tmp_path / "none.html").read_text()) == []
    opts = ViewOptions(thumb_width=64, thumb_format="jpeg")
    asked = build_view(store, opts, output=tmp_path / "asked.html")
    assert asked.thumbs == (64, 36)
    thumbs = script_json((tmp_path / "asked.html").read_text(), "mb-thumbs")
    assert thumbs["type"] == "image/jpeg"


def test_default_output_and_options(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "film.zarr")
    assert default_page_path(FrameStore.open(copy)) == tmp_path / "film.html"
    with pytest.raises(ParameterError, match="mode"):
        ViewOptions(mode="plaid")
    with pytest.raises(ParameterError, match="thumb-width"):
        ViewOptions(thumb_width=8)
    with pytest.raises(ParameterError, match="thumb-quality"):
        ViewOptions(thumb_quality=0)
    with pytest.raises(InputError, match="HTML"):
        build_view(copy, ViewOptions(), output=tmp_path / "film.png")
    with pytest.raises(InputError, match="does not exist"):
        build_view(copy, ViewOptions(), output=tmp_path / "nowhere" / "film.html")
    store_ = FrameStore.open(copy, writable=True)
    store_.update_meta(complete=False)
    with pytest.raises(StoreError, match="incomplete"):
        build_view(copy, ViewOptions(), output=tmp_path / "film.html")


def test_the_command_line(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "film.zarr")
    r = cli("view", copy, "--thumb-width", "48", "--mode", "dominant")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "film.html")
    data = script_json((tmp_path / "film.html").read_text(), "mb-data")
    assert data["initial"]["mode"] == "dominant"


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--k", "0"], 2, ["--k"]),
        (["--k", "65"], 2, ["--k is at most 64"]),
        (["--mode", "plaid"], 2, ["plaid"]),
        (["--thumb-width", "5"], 2, ["--thumb-width"]),
        (["-o", "{tmp}/missing/film.html"], 1, ["does not exist"]),
        (["-o", "{tmp}/film.png"], 1, ["html"]),
        (["-o", "{tmp}"], 1, ["html"]),
    ],
)
def test_bad_options_are_one_line(store, tmp_path, args, code, words):
    r = cli("view", store, *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == code, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w.lower() in r.stderr.lower()


def test_bad_stores_are_one_line(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "film.zarr")
    FrameStore.open(copy, writable=True).update_meta(complete=False)
    for target, words in ((copy, ["incomplete"]), (tmp_path / "none.zarr", ["no such store"])):
        r = cli("view", target)
        assert r.returncode == 1, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert all(w in r.stderr for w in words)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = cli("view", store, "-o", ro / "film.html")
        if r.returncode != 0:  # root writes anywhere
            assert r.returncode == 1 and "not writable" in r.stderr
    finally:
        ro.chmod(0o700)


def test_render_html_is_a_shortcut_for_view(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "film.zarr")
    png, html = tmp_path / "b.png", tmp_path / "b.html"
    r = cli("render", copy, "--k", "5", "--mode", "dominant", "-o", png, "--html", html)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(png), str(html)]
    data = script_json(html.read_text(), "mb-data")
    assert data["initial"]["mode"] == "dominant" and data["clusterings"][0]["k"] == 5
    r = cli("render", copy, "-o", tmp_path / "c.png", "--html", tmp_path / "c.txt")
    assert r.returncode == 1 and "html" in r.stderr.lower() and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "c.png").exists()  # refused before any work


def test_a_store_without_cuts_has_no_shots(store, tmp_path):
    copy = shutil.copytree(store, tmp_path / "old.zarr")
    fs = FrameStore.open(copy, writable=True)
    del fs.group["cuts"]
    fs.update_meta(shots=None, layout_version=1)  # as prepped before cut detection
    build_view(copy, ViewOptions(thumb_width=0), output=tmp_path / "old.html")
    data = script_json((tmp_path / "old.html").read_text(), "mb-data")
    assert data["cuts"] is None and not any("shot" in f for f in data["facts"])
    assert data["n"] == fs.frames_done and data["end"] > fs.times[-1]
