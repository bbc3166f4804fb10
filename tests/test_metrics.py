"""Per-frame colour metrics and regions (``render --mode median|mode|brightest|bright|
brightness|weighted-dominant --region ...``): against NumPy references computed frame by
frame, on synthetic frames with a known foreground, cached per region, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from moviebarcode.cli import main
from moviebarcode.colorspace import linear_to_srgb, srgb_to_linear
from moviebarcode.columns import average_colours
from moviebarcode.errors import ParameterError
from moviebarcode.metrics import BRIGHT_SHARE, frame_metric, weighted_dominant
from moviebarcode.regions import region_mask
from moviebarcode.render import RenderOptions, frame_columns, render
from moviebarcode.store import FrameStore

ATTRS = {
    "source": {"path": "/films/x.mkv", "fingerprint": {}},
    "request": {},
    "sampling": {"every": 24, "fps": None, "keyframes": False, "max_frames": None},
    "picture": {"crop": None, "tonemap": False, "fast": True},
}
REC709 = np.array([0.2126, 0.7152, 0.0722])
BG, FG = (20, 30, 40), (230, 200, 60)


def random_frames(n=5, h=12, w=18, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def square_frames(n=4, h=36, w=48) -> tuple[np.ndarray, np.ndarray]:
    """Dark noisy frames with a bright square in the middle, moving a pixel a frame; and
    the square's mask."""
    rng = np.random.default_rng(1)
    frames = (np.array(BG) + rng.integers(-3, 4, (n, h, w, 3))).astype(np.uint8)
    mask = np.zeros((n, h, w), bool)
    for i in range(n):
        mask[i, 10 + i : 26 + i, 16 + i : 30 + i] = True
    frames[mask] = FG
    return frames, mask


def make_store(path, frames) -> FrameStore:
    store = FrameStore.create(path, frame_shape=frames.shape[1:3], chunk_frames=2, attrs=ATTRS)
    n = len(frames)
    store.append(frames, np.arange(n) / 2.0, np.arange(n) * 12)
    store.mark_complete()
    return FrameStore.open(path)


def lin(codes):
    return srgb_to_linear(np.asarray(codes, np.float64), xp=np).astype(np.float64)


def srgb(x):
    return linear_to_srgb(np.asarray(x, np.float32), xp=np)


def reference(frame: np.ndarray, mode: str) -> np.ndarray:
    """One frame's metric over its pixels ``frame`` (m, 3) uint8, the slow obvious way."""
    y = lin(frame) @ REC709
    if mode == "average":
        return srgb(lin(frame).mean(axis=0))
    if mode == "median":
        s = np.sort(frame, axis=0).astype(int)
        m = len(s)
        return srgb((lin(s[(m - 1) // 2]) + lin(s[m // 2])) / 2)
    if mode == "mode":
        q = frame.astype(int) // 16
        bins, counts = np.unique(q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2], return_counts=True)
        b = bins[np.argmax(counts)]
        level = np.array([b // 256, b // 16 % 16, b % 16])
        return srgb((lin(level * 16 + 7) + lin(level * 16 + 8)) / 2)
    if mode == "brightest":
        return srgb(lin(frame[y == y.max()]).mean(axis=0))
    if mode == "bright":
        yq = np.minimum((y.astype(np.float32) * 1024).astype(int), 1023)
        cut = np.sort(yq)[int(np.floor(len(yq) * (1 - BRIGHT_SHARE)))]
        return srgb(lin(frame[yq >= cut]).mean(axis=0))
    return np.array(y.mean())


@pytest.mark.parametrize("mode", ["average", "median", "mode", "brightest", "bright"])
def test_metrics_match_a_frame_by_frame_reference(mode):
    frames = random_frames()
    frames[1, :6] = 250  # ties for the brightest pixels
    frames[2] = 77  # a flat frame
    frames[3, :, :9] = (40, 41, 200)  # a colour mode
    got = frame_metric(frames, mode)
    want = [reference(f.reshape(-1, 3), mode) for f in frames]
    np.testing.assert_allclose(got, want, atol=0.02)
    if mode == "average":
        np.testing.assert_allclose(got, average_colours(frames), atol=0.02)


def test_median_and_brightness_naive_are_numpys():
    frames = random_frames(h=11, w=7)  # odd and even counts by region below
    np.testing.assert_array_equal(
        frame_metric(frames, "median", gamma_correct=False), np.median(frames, axis=(1, 2))
    )
    y = frame_metric(frames, "brightness")
    np.testing.assert_allclose(y, (lin(frames) @ REC709).mean(axis=(1, 2)), rtol=1e-5)
    naive = frame_metric(frames, "brightness", gamma_correct=False)
    np.testing.assert_allclose(naive, (frames / 255 @ REC709).mean(axis=(1, 2)), rtol=1e-5)


def test_foreground_is_the_bright_square():
    frames, square = square_frames()
    np.testing.assert_array_equal(region_mask(frames, "foreground"), square)
    np.testing.assert_array_equal(region_mask(frames, "background"), ~square)
    assert region_mask(frames, "whole") is None
    for mode in ("median", "average", "mode", "brightest", "bright"):
        fg = frame_metric(frames, mode, region="foreground")
        np.testing.assert_allclose(fg, np.tile(FG, (4, 1)), atol=8 if mode == "mode" else 0.02)
        bg = frame_metric(frames, mode, region="background")
        assert np.abs(bg - np.array(BG)).max() < 9, (mode, bg)


@pytest.mark.parametrize("mode", ["median", "mode", "brightness"])
def test_masked_metrics_match_the_reference_on_the_region(mode):
    frames = random_frames(n=3, h=16, w=24, seed=2)
    for region in ("foreground", "background", "high-contrast", "low-contrast"):
        mask = region_mask(frames, region, lin(frames).astype(np.float32))
        got = frame_metric(frames, mode, region=region)
        want = [reference(f[m], mode) for f, m in zip(frames, mask, strict=True)]
        np.testing.assert_allclose(got, want, atol=0.02, err_msg=region)


def test_contrast_regions_find_the_busy_tile():
    frames = np.full((2, 32, 32, 3), 100, np.uint8)
    frames[:, 8:12, 8:12] = 255  # tile (2, 2) of the 8x8 grid: a white patch
    frames[1] = 100  # flat: every tile scores alike, a quarter is kept
    high = region_mask(frames, "high-contrast", lin(frames).astype(np.float32))
    low = region_mask(frames, "low-contrast", lin(frames).astype(np.float32))
    assert high[0, 8:12, 8:12].all() and not low[0, 8:12, 8:12].any()
    for r, c in ((1, 2), (3, 2), (2, 1), (2, 3)):  # its 4 neighbours next
        assert high[0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].all()
    assert high[0].sum() == 16 * 16  # a quarter of the 64 tiles
    assert high[1].sum() == low[1].sum() == 16 * 16


def test_flat_frame_foreground_falls_back_to_whole():
    frames = np.full((1, 12, 18, 3), 9, np.uint8)
    assert region_mask(frames, "foreground").all() and region_mask(frames, "background").all()


def test_weighted_dominant_mixes_in_linear_light():
    centres = np.array([[[255, 0, 0], [0, 0, 255], [0, 255, 0]]], np.float32)
    shares = np.array([[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(weighted_dominant(centres, shares), [srgb([0.5, 0, 0.5])], atol=0.01)


def test_metrics_are_cached_per_region(tmp_path, monkeypatch):
    frames, _ = square_frames(n=5)
    store = make_store(tmp_path / "s.zarr", frames)
    first = {r: frame_columns(store, "median", region=r) for r in ("whole", "foreground")}
    assert not np.allclose(first["whole"], first["foreground"])

    def no_reading(*a, **k):
        raise AssertionError("read the frames again")

    monkeypatch.setattr(FrameStore, "iter_batches", no_reading)
    for r, v in first.items():
        np.testing.assert_array_equal(
            frame_columns(FrameStore.open(store.path), "median", region=r), v
        )
    with pytest.raises(AssertionError):
        frame_columns(store, "median", region="background")


def test_brightness_and_region_barcodes(tmp_path):
    frames, _ = square_frames(n=4)
    store = make_store(tmp_path / "s.zarr", frames)
    out = tmp_path / "b.png"
    render(store.path, RenderOptions(mode="brightness", height=3), output=out)
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    y = frame_metric(frames, "brightness")
    assert img.shape == (3, 4, 3) and (img[..., 0] == img[..., 2]).all()
    np.testing.assert_allclose(img[0, :, 0], srgb(y), atol=0.6)
    render(store.path, RenderOptions(mode="median", region="foreground", height=2), output=out)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB"))[0], [FG] * 4)


def test_region_with_a_cluster_mode_by_shot_is_refused():
    with pytest.raises(ParameterError, match="--region foreground with --by shot needs"):
        RenderOptions(mode="stacked", region="foreground", by="shot")
    with pytest.raises(ParameterError, match="unknown --region"):
        RenderOptions(mode="median", region="sky")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--mode", "stacked", "--region", "foreground", "--by", "shot"], ["needs a per-frame"]),
        (["--mode", "median", "--region", "sky"], ["region", "sky"]),
        (["--mode", "medium"], ["mode", "medium"]),
    ],
)
def test_cli_bad_mode_or_region_is_one_line_exit_2(tmp_path, args, words):
    store = make_store(tmp_path / "s.zarr", square_frames(n=2)[0])
    with CliRunner().isolation() as (_, err, _):
        with pytest.raises(SystemExit) as exc:
            main(["render", str(store.path), *args])
        text = err.getvalue().decode()
    assert exc.value.code == 2, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("moviebarcode: error: "), text
    assert all(w in text for w in words), text


def test_palette_carries_the_metric(tmp_path):
    import csv
    import json

    from moviebarcode.cluster import ClusterParams

    frames, _ = square_frames(n=4)
    store = make_store(tmp_path / "s.zarr", frames)
    pj, pc = tmp_path / "p.json", tmp_path / "p.csv"
    opts = dict(mode="median", region="foreground", cluster=ClusterParams(k=2))
    render(store.path, RenderOptions(**opts, palette=pj), output=tmp_path / "a.png")
    doc = json.loads(pj.read_text())
    assert doc["metric"] == {"mode": "median", "region": "foreground"}
    assert [f["median"] for f in doc["frames"]] == [list(FG)] * 4
    render(store.path, RenderOptions(**opts, palette=pc), output=tmp_path / "a.png")
    rows = list(csv.DictReader(pc.open()))
    assert list(rows[0])[-3:] == ["median_r", "median_g", "median_b"]
    assert {(r["median_r"], r["median_g"], r["median_b"]) for r in rows} == {tuple(map(str, FG))}
    render(
        store.path,
        RenderOptions(mode="brightness", cluster=ClusterParams(k=2), palette=pj),
        output=tmp_path / "b.png",
    )
    y = frame_metric(frames, "brightness")
    got = [f["brightness"] for f in json.loads(pj.read_text())["frames"]]
    np.testing.assert_allclose(got, y, atol=1e-6)
    render(
        store.path,
        RenderOptions(mode="weighted-dominant", cluster=ClusterParams(k=2), palette=pj),
        output=tmp_path / "w.png",
    )
    doc = json.loads(pj.read_text())
    assert (
        doc["metric"]["mode"] == "weighted-dominant"
        and len(doc["frames"][0]["weighted-dominant"]) == 3
    )


def test_metrics_by_shot_are_the_mean_of_their_frames(tmp_path):
    import json

    from moviebarcode.cluster import ClusterParams

    frames, _ = square_frames(n=4)
    frames[2:] = frames[2:] // 2  # a darker second shot
    store = make_store(tmp_path / "s.zarr", frames)
    FrameStore.open(store.path, writable=True).set_cuts(np.array([1.0]), {"detector": "test"})
    pj = tmp_path / "p.json"
    for mode in ("median", "brightness"):
        opts = RenderOptions(mode=mode, by="shot", height=2, cluster=ClusterParams(k=2), palette=pj)
        render(store.path, opts, output=tmp_path / "s.png")
        img = np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).astype(float)
        per_frame = frame_metric(frames, mode)
        shots = json.loads(pj.read_text())["shots"]
        for i, (a, b) in enumerate(((0, 2), (2, 4))):
            if mode == "brightness":
                want = per_frame[a:b].mean()
                assert abs(shots[i]["brightness"] - want) < 1e-6
                want = srgb(want)
            else:
                want = srgb(lin(per_frame[a:b]).mean(axis=0))
                np.testing.assert_allclose(shots[i]["median"], want, atol=0.51)
            column = img[0, 0 if i == 0 else -1]  # the first band, the last
            np.testing.assert_allclose(column, np.broadcast_to(want, 3), atol=0.6)


def test_brightness_with_a_colour_map(tmp_path):
    from moviebarcode.metrics import COLORMAPS, colormapped

    np.testing.assert_allclose(
        colormapped(np.array([0.0, 255.0]), "viridis"), [(68, 1, 84), (253, 231, 37)]
    )
    mid = colormapped(np.array([127.5]), "magma")[0]
    np.testing.assert_allclose(mid, COLORMAPS["magma"][4])
    frames, _ = square_frames(n=4)
    store = make_store(tmp_path / "s.zarr", frames)
    out = tmp_path / "v.png"
    render(store.path, RenderOptions(mode="brightness", colormap="viridis", height=2), output=out)
    img = np.asarray(Image.open(out).convert("RGB")).astype(float)
    grey = srgb(frame_metric(frames, "brightness"))
    np.testing.assert_allclose(img[0], colormapped(grey, "viridis"), atol=0.6)
    with pytest.raises(ParameterError, match="--colormap draws --mode brightness"):
        RenderOptions(mode="median", colormap="magma")


def test_default_file_names_name_the_region_and_colour_map():
    from moviebarcode.render import image_file_name

    assert image_file_name("f", RenderOptions(mode="median", region="foreground")) == (
        "f-median-foreground.png"
    )
    assert image_file_name("f", RenderOptions(mode="brightness", colormap="magma")) == (
        "f-brightness-magma.png"
    )
    assert image_file_name("f", RenderOptions(mode="brightness")) == "f-brightness.png"


def test_squeeze_over_a_region(tmp_path):
    from moviebarcode.columns import squeeze_columns
    from moviebarcode.metrics import squeeze_region

    frames, square = square_frames(n=3)
    got = squeeze_region(frames, "foreground")
    whole = squeeze_columns(frames)
    for i in range(3):
        rows = square[i].any(axis=1)
        np.testing.assert_allclose(got[i, rows], np.tile(FG, (rows.sum(), 1)), atol=0.02)
        np.testing.assert_allclose(got[i, ~rows], whole[i, ~rows], atol=0.02)  # no region
    np.testing.assert_allclose(squeeze_region(frames, "whole"), whole, atol=0.02)
    store = make_store(tmp_path / "s.zarr", frames)
    values = frame_columns(store, "squeeze", region="foreground")
    np.testing.assert_allclose(values, got)


@pytest.mark.parametrize("region", ["whole", "foreground", "background", "high-contrast"])
def test_metrics_run_on_cupy_arrays(monkeypatch, region):
    """The CuPy path, on the NumPy stand-in for CuPy (tests/cupy_standin.py): the same
    values as NumPy's, returned as NumPy arrays."""
    import sys

    import cupy_standin

    from moviebarcode.metrics import squeeze_region

    monkeypatch.setitem(sys.modules, "cupy", cupy_standin)
    frames = random_frames(n=3, h=16, w=24, seed=5)
    frames[:, 4:12, 8:16] = FG
    on_device = cupy_standin.asarray(frames)
    for mode in ("average", "median", "mode", "brightest", "bright", "brightness"):
        got = frame_metric(on_device, mode, region=region)
        assert isinstance(got, np.ndarray), mode
        np.testing.assert_allclose(got, frame_metric(frames, mode, region=region), err_msg=mode)
    got = squeeze_region(on_device, region)
    np.testing.assert_allclose(got, squeeze_region(frames, region))
