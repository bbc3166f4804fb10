"""Tests of moviebarcode.colorspace: sRGB <-> linear light <-> CIELAB."""

from __future__ import annotations

import numpy as np
import pytest

from moviebarcode.colorspace import lab_to_srgb, linear_to_srgb, srgb_to_lab, srgb_to_linear


def all_ish_colours() -> np.ndarray:
    """A grid over the sRGB cube plus random colours, (N, 3) float32 0-255."""
    levels = np.linspace(0, 255, 18)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    rand = np.random.default_rng(0).uniform(0, 255, (2000, 3))
    return np.concatenate([grid, rand]).astype(np.float32)


def test_linear_round_trip():
    x = np.linspace(0, 255, 1021, dtype=np.float32)
    lin = srgb_to_linear(x)
    assert lin.dtype == np.float32
    assert lin.min() == 0.0 and lin.max() == pytest.approx(1.0)
    assert np.all(np.diff(lin) > 0)
    np.testing.assert_allclose(linear_to_srgb(lin), x, atol=1e-3 * 255)


def test_gamma_midpoint():
    # The sRGB value whose linear light is 0.5 is about 188, not 128.
    assert float(linear_to_srgb(np.float32(0.5))) == pytest.approx(187.5, abs=0.6)
    assert float(srgb_to_linear(np.float32(128.0))) == pytest.approx(0.2158, abs=1e-3)
    # The linear segment near black.
    assert float(srgb_to_linear(np.float32(10.0))) == pytest.approx(10 / 255 / 12.92, rel=1e-5)


def test_linear_to_srgb_clips():
    out = linear_to_srgb(np.array([-0.5, 1.5], dtype=np.float32))
    np.testing.assert_allclose(out, [0.0, 255.0], atol=1e-3)


def test_lab_known_values():
    rgb = np.array(
        [[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]],
        dtype=np.float32,
    )
    lab = srgb_to_lab(rgb)
    assert lab.dtype == np.float32 and lab.shape == (6, 3)
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(lab[3], [87.73, -86.18, 83.18], atol=0.02)
    np.testing.assert_allclose(lab[4], [32.30, 79.19, -107.86], atol=0.02)
    np.testing.assert_allclose(lab[5], [53.59, 0.0, 0.0], atol=0.02)


def test_lab_round_trip_any_leading_shape():
    x = all_ish_colours()
    back = lab_to_srgb(srgb_to_lab(x))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x, atol=1e-3 * 255)
    cube = x[: 4 * 5 * 6].reshape(4, 5, 6, 3)
    lab = srgb_to_lab(cube)
    assert lab.shape == cube.shape
    np.testing.assert_allclose(lab.reshape(-1, 3), srgb_to_lab(x[: 4 * 5 * 6]), atol=1e-4)


def test_lab_to_srgb_clips_out_of_gamut():
    out = lab_to_srgb(np.array([[50.0, 120.0, -120.0], [120.0, 0.0, 0.0]], dtype=np.float32))
    assert np.all((out >= 0) & (out <= 255))
    np.testing.assert_allclose(out[1], [255, 255, 255], atol=1e-3)


def test_explicit_xp_and_lists():
    lab = srgb_to_lab([[255.0, 0.0, 0.0]], xp=np)
    np.testing.assert_allclose(lab[0], [53.24, 80.09, 67.20], atol=0.02)


@pytest.mark.gpu
def test_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy sees no GPU")
    except Exception as exc:
        pytest.skip(f"CuPy sees no GPU: {exc}")
    x = all_ish_colours()
    got = srgb_to_lab(cupy.asarray(x))
    assert isinstance(got, cupy.ndarray) and got.dtype == cupy.float32
    np.testing.assert_allclose(got.get(), srgb_to_lab(x), atol=1e-3)
    np.testing.assert_allclose(lab_to_srgb(got).get(), x, atol=1e-3 * 255)
