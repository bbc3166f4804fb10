"""compare: a film against itself (identical, lag 0), against a copy shifted by 10 s (the
lag within one sample), against a tinted copy (a lower SSIM); the alignment against a plain
dynamic programme; KALMUS's own measures where it is installed; the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from colourstores import colour_store
from PIL import Image

from conftest import kalmus_python
from moviebarcode.align import align, brightness_symbols, hue_symbols
from moviebarcode.cli import cli
from moviebarcode.compare import (
    CompareOptions,
    best_shift,
    compare,
    compare_image,
    image_metrics,
    stretches,
)
from moviebarcode.errors import InputError, ParameterError

STEP = 0.5  # seconds between frames
N = 300
KALMUS_PYTHON = kalmus_python()


@pytest.fixture(scope="module")
def film():
    """Smoothly wandering colours, N + 40 of them."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 12, (N + 40, 3)), axis=0)
    return np.clip(128 + 100 * np.sin(walk / 60), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stores(film, tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    t = np.arange(N) * STEP
    tint = np.clip(film[20 : 20 + N].astype(int) + [40, 0, -40], 0, 255)
    return {
        "a": colour_store(d / "a.zarr", film[20 : 20 + N], t),
        # the same pictures 10 s later: B(t) = A(t - 10)
        "late": colour_store(d / "late.zarr", film[:N], t),
        # the same frames, their times 10 s on (a prep of a source with 10 s more at its head)
        "times": colour_store(d / "times.zarr", film[20 : 20 + N], t + 10),
        # a cut that starts 10 s into A: B(t) = A(t + 10)
        "cut": colour_store(d / "cut.zarr", film[40 : 40 + N - 20], t[: N - 20]),
        "tint": colour_store(d / "tint.zarr", tint, t),
    }


def test_a_film_against_itself_is_identical(stores):
    c = compare(stores["a"], stores["a"])
    assert c.nrmse == 0 and c.ssim == pytest.approx(1)
    assert c.lag == 0 and c.correlation == pytest.approx(1)
    assert c.normalized == pytest.approx(1) and c.step == STEP
    assert len(c.stretches) == 1 and c.stretches[0].tolist() == [0, N, 0, N]


@pytest.mark.parametrize(("name", "lag"), [("late", 10.0), ("times", 10.0), ("cut", -10.0)])
def test_a_shifted_copy_gives_its_lag(stores, name, lag):
    c = compare(stores["a"], stores[name])
    assert abs(c.lag - lag) <= STEP and c.correlation > 0.99
    diag = c.pairs[:, 0] - c.pairs[:, 1]  # aligned at the shift, in samples
    shift = round((lag - (c.b_start - c.a_start)) / -STEP)
    assert np.mean(diag == shift) > 0.95 and len(c.pairs) >= N - 45


def test_a_tinted_copy_is_less_alike(stores):
    same = compare(stores["a"], stores["a"])
    tint = compare(stores["a"], stores["tint"])
    assert tint.ssim < same.ssim - 0.05 and tint.nrmse > 0.05
    assert tint.lag == 0  # the shapes still line up
    assert tint.normalized < same.normalized


def gotoh(a, b, local, scores=(20, -10, -5, -1)):
    """The affine-gap DP, cell by cell, in tenths."""
    match, mismatch, g_open, g_ext = scores
    n, m = len(a), len(b)
    neg = -(10**9)
    h = [[0] * (m + 1) for _ in range(n + 1)]
    e = [[neg] * (m + 1) for _ in range(n + 1)]
    f = [[neg] * (m + 1) for _ in range(n + 1)]
    if not local:
        for i in range(1, n + 1):
            h[i][0] = g_open + (i - 1) * g_ext
        for j in range(1, m + 1):
            h[0][j] = g_open + (j - 1) * g_ext
    best = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            e[i][j] = max(h[i][j - 1] + g_open, e[i][j - 1] + g_ext)
            f[i][j] = max(h[i - 1][j] + g_open, f[i - 1][j] + g_ext)
            s = match if a[i - 1] == b[j - 1] else mismatch
            h[i][j] = max(h[i - 1][j - 1] + s, e[i][j], f[i][j], *([0] if local else []))
            best = max(best, h[i][j])
    return (best if local else h[n][m]) / 10


@pytest.mark.parametrize("local", [True, False])
def test_alignment_scores_match_a_plain_dp(local):
    rng = np.random.default_rng(3)
    for _ in range(20):
        n, m = rng.integers(1, 30, 2)
        a, b = rng.integers(0, 3, n), rng.integers(0, 3, m)
        assert align(a, b, local=local).score == pytest.approx(gotoh(a, b, local))


def test_alignment_pairs_follow_the_shift():
    x = np.random.default_rng(4).integers(0, 12, 500)
    r = align(x[10:], x[:-10])
    assert r.score == pytest.approx(2 * 480)
    assert np.array_equal(r.pairs[:, 1] - r.pairs[:, 0], np.full(480, 10))


def test_symbols_and_stretches():
    rgb = np.array([[255, 0, 0], [255, 128, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]])
    assert hue_symbols(rgb).tolist() == [0, 1, 4, 8, 0]
    assert brightness_symbols([0, 16.9, 17, 255]).tolist() == [0, 0, 1, 15]
    pairs = np.array([[0, 5], [1, 6], [2, 7], [4, 8], [5, 9]])
    assert stretches(pairs, 2).tolist() == [[0, 3, 5, 8], [4, 6, 8, 10]]
    assert stretches(pairs, 3).tolist() == [[0, 3, 5, 8]]


def test_best_shift_needs_overlap():
    x = np.random.default_rng(5).normal(size=(200, 3))
    k, r = best_shift(x[30:], x[:-30], 0.5)
    assert k == -30 and r == pytest.approx(1)


def test_options_are_checked():
    with pytest.raises(ParameterError, match="--method"):
        CompareOptions(method="fuzzy")
    with pytest.raises(ParameterError):
        CompareOptions(min_overlap=0)


def test_without_scikit_image_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    with pytest.raises(InputError, match="scikit-image"):
        image_metrics(np.zeros((9, 3)), np.zeros((9, 3)))


def test_image_shows_both_and_the_stretches(stores):
    c = compare(stores["a"], stores["late"])
    img = compare_image(c, bar=20, gap=30)
    assert img.size == (N, 70)
    arr = np.asarray(img)
    assert np.array_equal(arr[0, :, :], np.rint(c.a).astype(np.uint8))
    assert arr[35, N // 2].min() > 60  # inside the band of the matched stretch


def test_cli_table_json_image_and_errors(stores, tmp_path):
    out, js = tmp_path / "c.png", tmp_path / "c.json"
    args = ["compare", str(stores["a"]), str(stores["late"]), "-o", str(out), "--json", str(js)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "best lag" in res.output and "+10.00 s" in res.output
    data = json.loads(js.read_text())
    assert data["lag_seconds"] == pytest.approx(10, abs=STEP)
    assert len(data["alignment"]["pairs"][0]) == 2 and data["alignment"]["stretches"]
    assert Image.open(out).width == N
    res = CliRunner().invoke(cli, ["compare", str(stores["a"]), str(tmp_path / "no.zarr")])
    assert res.exit_code == 1 and "no such store" in res.output
    res = CliRunner().invoke(cli, [*args[:3], "--method", "fuzzy"])
    assert res.exit_code == 2
    res = CliRunner().invoke(cli, [*args[:3], "-o", str(tmp_path / "missing" / "c.png")])
    assert res.exit_code == 1 and "does not exist" in res.output


@pytest.mark.skipif(KALMUS_PYTHON is None, reason="kalmus is not installed: run scripts/kalmus-env")
def test_metrics_agree_with_kalmus(stores, film, tmp_path):
    """KALMUS (pip install kalmus, in its own environment: scripts/kalmus-env)
    measures the same barcodes. Its SSIM is left out: it calls scikit-image with
    ``multichannel=True``, which scikit-image 0.19 on no longer takes."""
    a = film[20 : 20 + N].astype(np.uint8)
    b = np.clip(a.astype(int) + [40, 0, -40], a.min(), 255).astype(np.uint8)
    b[0, 0] = a.min()  # KALMUS's min-max range takes A's minimum for both
    np.savez(tmp_path / "ab.npz", a=a, b=b)
    script = Path(__file__).with_name("kalmus_measures.py")
    run = subprocess.run(
        [KALMUS_PYTHON, str(script), str(tmp_path / "ab.npz")], capture_output=True, text=True
    )
    if run.returncode != 0:
        pytest.skip(f"kalmus does not run: {run.stderr.strip().splitlines()[-1:]}")
    ref = json.loads(run.stdout)
    nrmse, _ = image_metrics(a.astype(np.float64), b.astype(np.float64))
    assert 1 - nrmse == pytest.approx(ref["nrmse_similarity"])
    luma = a @ np.array([0.299, 0.587, 0.114]), b @ np.array([0.299, 0.587, 0.114])
    assert np.mean(hue_symbols(a) == ref["hue"][0]) > 0.99
    assert np.mean(brightness_symbols(luma[1]) == ref["brightness"][1]) > 0.99
    ha, hb = (np.array(s) for s in ref["hue"])
    ba, bb = (np.array(s) for s in ref["brightness"])
    assert align(ha, hb, traceback=False).score == pytest.approx(ref["hue_sw"])
    assert align(ba, bb, traceback=False).score == pytest.approx(ref["brightness_sw"])
    assert align(ha, hb, local=False, traceback=False).score == pytest.approx(ref["hue_nw"])
