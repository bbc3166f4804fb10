"""The cluster modes on a region (``render --mode dominant|stacked|... --region ...``,
``moviebarcode.regioncluster``): on synthetic frames with a known foreground, against
scikit-learn on the region's pixels, cached per region, refused by shot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from moviebarcode.cache import ResultCache
from moviebarcode.cluster import ClusterParams
from moviebarcode.errors import ParameterError
from moviebarcode.regioncluster import cluster_region
from moviebarcode.regions import region_mask
from moviebarcode.render import RenderOptions, render
from moviebarcode.store import FrameStore

ATTRS = {
    "source": {"path": "/films/x.mkv", "fingerprint": {}},
    "request": {},
    "sampling": {"every": 24, "fps": None, "keyframes": False, "max_frames": None},
    "picture": {"crop": None, "tonemap": False, "fast": True},
}
TOP, BOTTOM, FG = (20, 30, 40), (70, 45, 30), (230, 200, 60)


def square_frames(n=4, h=36, w=48) -> np.ndarray:
    """Noisy frames: the top two thirds ``TOP``, the bottom third ``BOTTOM``, and a square
    of ``FG`` in the middle, moving a pixel a frame."""
    frames = np.zeros((n, h, w, 3), np.int64)
    frames[:, : 2 * h // 3] = TOP
    frames[:, 2 * h // 3 :] = BOTTOM
    for i in range(n):
        frames[i, 10 + i : 26 + i, 16 + i : 30 + i] = FG
    noise = np.random.default_rng(1).integers(-3, 4, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8)


def make_store(path, frames) -> FrameStore:
    store = FrameStore.create(path, frame_shape=frames.shape[1:3], chunk_frames=2, attrs=ATTRS)
    n = len(frames)
    store.append(frames, np.arange(n) / 2.0, np.arange(n) * 12)
    store.mark_complete()
    return FrameStore.open(path)


def dominant_of(clusters) -> np.ndarray:
    rows = np.arange(len(clusters.shares))
    return clusters.centres[rows, np.argmax(clusters.shares, axis=1)]


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "s.zarr", square_frames())


def test_dominant_of_the_foreground_and_of_the_background(store, tmp_path):
    out = tmp_path / "o.png"
    fg = render(store.path, RenderOptions(mode="dominant", region="foreground"), output=out)
    np.testing.assert_allclose(dominant_of(fg.clusters), [FG] * 4, atol=4)
    bg = render(store.path, RenderOptions(mode="dominant", region="background"), output=out)
    np.testing.assert_allclose(dominant_of(bg.clusters), [TOP] * 4, atol=4)
    whole = render(store.path, RenderOptions(mode="dominant"), output=out)
    assert not np.allclose(whole.clusters.shares, fg.clusters.shares)


@pytest.mark.parametrize("region", ["foreground", "background", "high-contrast", "low-contrast"])
def test_shares_sum_to_one_over_the_region(store, region):
    found = cluster_region(store, ClusterParams(k=4), region)
    assert found.centres.shape == (4, 4, 3) and found.shares.shape == (4, 4)
    np.testing.assert_allclose(found.shares.sum(axis=1), 1, atol=1e-5)
    assert found.params["region"] == region


@pytest.mark.parametrize("space", ["rgb", "lab"])
@pytest.mark.parametrize("region", ["background", "low-contrast"])
def test_inertia_matches_sklearn_on_the_region(store, region, space):
    from sklearn.cluster import KMeans

    from moviebarcode.colorspace import srgb_to_lab, srgb_to_linear

    frames = square_frames()
    lut = srgb_to_linear(np.arange(256, dtype=np.float32), xp=np)
    mask = region_mask(frames, region, lut[frames])
    found = cluster_region(store, ClusterParams(k=4, space=space), region)
    ours, theirs = [], []
    for i, frame in enumerate(frames):
        x = frame[mask[i]].astype(np.float32)
        x = srgb_to_lab(x, xp=np) if space == "lab" else x
        km = KMeans(4, n_init=10, random_state=0).fit(x.astype(np.float64))
        ours.append(found.inertia[i])
        theirs.append(km.inertia_)
    assert np.mean(ours) <= np.mean(theirs) * 1.01, (ours, theirs)
    assert np.mean(ours) >= np.mean(theirs) * 0.99, (ours, theirs)


def test_cached_per_region(store, tmp_path):
    out = tmp_path / "o.png"
    opts = RenderOptions(mode="stacked", region="foreground", height=8)
    assert not render(store.path, opts, output=out).clusters.cached
    assert render(store.path, opts, output=out).clusters.cached
    bg = RenderOptions(mode="stacked", region="background", height=8)
    assert not render(store.path, bg, output=out).clusters.cached
    keys = [e["key"] for e in ResultCache(store).list()]
    assert sum(k.endswith("-region-foreground") for k in keys) == 1, keys
    assert sum(k.endswith("-region-background") for k in keys) == 1, keys
    assert not render(store.path, RenderOptions(mode="stacked"), output=out).clusters.cached


def test_palette_carries_the_regions_clusters(store, tmp_path):
    pal = tmp_path / "p.json"
    opts = RenderOptions(mode="dominant", region="foreground", palette=pal)
    render(store.path, opts, output=tmp_path / "o.png")
    data = json.loads(pal.read_text())
    first = [f["colors"][0] for f in data["frames"]]
    np.testing.assert_allclose(first, [FG] * 4, atol=4)


def test_by_shot_with_a_region_is_refused_for_cluster_modes():
    with pytest.raises(ParameterError, match="with --by shot needs a per-frame mode"):
        RenderOptions(mode="stacked", region="foreground", by="shot")
    RenderOptions(mode="median", region="foreground", by="shot")


@pytest.mark.parametrize("mode", ["stacked", "dominant", "least", "equal", "weighted-dominant"])
def test_cli_cluster_mode_with_a_region_exits_0(store, tmp_path, mode):
    out = tmp_path / f"{mode}.png"
    args = ("render", store.path, "--mode", mode, "--region", "foreground", "-o", out)
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert out.is_file()


def test_cli_cluster_mode_with_a_region_by_shot_is_one_line_exit_2(store):
    code, _, err = run_cli(
        "render", store.path, "--mode", "stacked", "--region", "background", "--by", "shot"
    )
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "--by shot" in err, err


@pytest.mark.parametrize("region", ["foreground", "high-contrast"])
def test_region_batch_runs_on_cupy_arrays(monkeypatch, region):
    """The CuPy path, on the NumPy stand-in for CuPy (tests/cupy_standin.py): the same
    result as NumPy's, returned as NumPy arrays."""
    import sys

    import cupy_standin

    from moviebarcode.engines import NumpyEngine, get_engine
    from moviebarcode.regioncluster import cluster_region_batch

    monkeypatch.setitem(sys.modules, "cupy", cupy_standin)
    frames = square_frames(n=2)
    params = ClusterParams(k=3)
    on_device = cupy_standin.asarray(frames)
    got = cluster_region_batch(on_device, 0, params, region, get_engine("cupy"))
    want = cluster_region_batch(frames, 0, params, region, NumpyEngine())
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-3)
