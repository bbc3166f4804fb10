"""Tests for moviebarcode.columns: frame averages, squeeze, cluster picks and stacked bands."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from moviebarcode import columns as C
from moviebarcode.colorspace import linear_to_srgb


def _srgb_decode(v: float) -> float:
    """The sRGB transfer function (IEC 61966-2-1), written out here as the reference."""
    c = v / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _srgb_encode(lin: float) -> float:
    c = lin * 12.92 if lin <= 0.0031308 else 1.055 * lin ** (1 / 2.4) - 0.055
    return 255.0 * c


# ------------------------------------------------------------------ averages / squeeze


def _half_black_white(n: int = 3, h: int = 4, w: int = 6) -> np.ndarray:
    f = np.zeros((n, h, w, 3), np.uint8)
    f[:, :, : w // 2] = 255
    return f


def test_average_half_black_white_gamma():
    avg = C.average_colours(_half_black_white())
    assert avg.shape == (3, 3) and avg.dtype == np.float32
    expected = _srgb_encode(0.5)  # linear mean of 0 and 1, re-encoded: ~187.5
    assert 187 < expected < 189
    np.testing.assert_allclose(avg, expected, atol=0.5)


def test_average_half_black_white_naive():
    avg = C.average_colours(_half_black_white(), gamma_correct=False)
    np.testing.assert_allclose(avg, 127.5, atol=1e-4)


@pytest.mark.parametrize("gamma", [True, False])
def test_average_solid_colour_is_that_colour(gamma):
    colours = np.array([[12, 200, 77], [255, 0, 128], [1, 2, 3], [90, 90, 90]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (4, 5, 7, 3)).copy()
    avg = C.average_colours(frames, gamma_correct=gamma)
    np.testing.assert_allclose(avg, colours, atol=0.05)


def test_average_per_frame_independent():
    # Each frame's result depends only on that frame (no mixing across the batch).
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 6, 8, 3), dtype=np.uint8)
    whole = C.average_colours(frames)
    one_by_one = np.concatenate([C.average_colours(frames[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-3)
    # And against a direct per-pixel reference.
    dec = np.vectorize(_srgb_decode)(frames.astype(np.float64)).mean(axis=(1, 2))
    np.testing.assert_allclose(whole, np.vectorize(_srgb_encode)(dec), atol=0.05)


@pytest.mark.parametrize("shape", [(40, 9, 16), (3, 90, 160), (2, 300, 480)])
def test_means_are_the_plain_float64_means_bit_for_bit(shape):
    """Frames are summed a few at a time, by a product with ones: the result is the plain
    float64 mean of the table values, bit for bit (batches of many small frames, of one
    160x90 frame's worth, and larger than that; sums above 2**18 values could round
    differently, 300x480 is below)."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    table = C._srgb_to_linear_lut(np)
    linear = table[frames].astype(np.float64)
    plain = {
        "average": linear_to_srgb(linear.mean(axis=(1, 2))),
        "squeeze": linear_to_srgb(linear.mean(axis=2)),
        "average naive": frames.mean(axis=(1, 2), dtype=np.float64),
        "squeeze naive": frames.mean(axis=2, dtype=np.float64),
    }
    got = {
        "average": C.average_colours(frames),
        "squeeze": C.squeeze_columns(frames),
        "average naive": C.average_colours(frames, gamma_correct=False),
        "squeeze naive": C.squeeze_columns(frames, gamma_correct=False),
    }
    for name, want in plain.items():
        assert np.array_equal(got[name], want.astype(np.float32)), name


@pytest.mark.parametrize("gamma", [True, False])
def test_squeeze_keeps_vertical_structure(gamma):
    f = np.zeros((2, 8, 5, 3), np.uint8)
    f[:, :4] = (255, 0, 0)
    f[:, 4:] = (0, 0, 255)
    sq = C.squeeze_columns(f, gamma_correct=gamma)
    assert sq.shape == (2, 8, 3) and sq.dtype == np.float32
    np.testing.assert_allclose(sq[:, :4], np.broadcast_to([255, 0, 0], (2, 4, 3)), atol=0.05)
    np.testing.assert_allclose(sq[:, 4:], np.broadcast_to([0, 0, 255], (2, 4, 3)), atol=0.05)


def test_squeeze_row_mean_gamma():
    f = _half_black_white(1, 2, 4)
    sq = C.squeeze_columns(f)
    np.testing.assert_allclose(sq, _srgb_encode(0.5), atol=0.5)
    np.testing.assert_allclose(C.squeeze_columns(f, gamma_correct=False), 127.5, atol=1e-4)


def test_bad_frames_rejected():
    with pytest.raises(ValueError):
        C.average_colours(np.zeros((2, 3, 3), np.uint8), gamma_correct=False)
    with pytest.raises(ValueError):
        C.average_colours(np.zeros((1, 2, 3, 3), np.float32), gamma_correct=False)


def test_to_uint8_rounds_and_clips():
    out = C.to_uint8(np.array([-5.0, 0.4, 0.6, 127.5, 254.6, 300.0]))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 1, 128, 255, 255]


# ----------------------------------------------------------------------- dominant / least


def test_dominant_and_least():
    centres = np.array(
        [
            [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
            [[10, 10, 10], [20, 20, 20], [30, 30, 30]],
        ],
        np.float32,
    )
    shares = np.array([[0.2, 0.7, 0.1], [0.0, 0.4, 0.6]], np.float32)
    np.testing.assert_array_equal(C.dominant(centres, shares), [[0, 255, 0], [30, 30, 30]])
    # Frame 1: cluster 0 has share 0 and must be skipped by `least`.
    np.testing.assert_array_equal(C.least(centres, shares), [[0, 0, 255], [20, 20, 20]])


# -------------------------------------------------------------------------- heights


@pytest.mark.parametrize("height", [1, 2, 3, 4, 5, 6, 7, 10, 64, 101, 1080])
@pytest.mark.parametrize("k", [1, 2, 3, 8, 12])
def test_stacked_heights_sum_exactly(height, k):
    rng = np.random.default_rng(height * 100 + k)
    shares = rng.dirichlet(np.ones(k) * 0.5, size=500).astype(np.float32)
    if k > 1:
        shares[::7, 0] = 0.0  # some zero shares
    shares /= shares.sum(axis=1, keepdims=True)
    h = C.stacked_heights(shares, height)
    assert h.shape == shares.shape
    assert np.issubdtype(h.dtype, np.integer)
    assert (h >= 0).all()
    assert (h.sum(axis=1) == height).all()
    quota = shares.astype(np.float64) * height
    assert (np.abs(h - quota) < 1 + 1e-6).all()
    assert (h[shares == 0] == 0).all()


def test_stacked_heights_largest_remainder():
    # quotas 3.5, 2.4, 1.1 (height 7): floors 3, 2, 1 sum to 6, the spare row goes to 3.5.
    h = C.stacked_heights(np.array([[0.5, 2.4 / 7, 1.1 / 7]]), 7)
    assert h.tolist() == [[4, 2, 1]]
    # quotas 0.6, 0.6, 0.6, 0.6, 0.6 (height 3): three rows for five equal remainders;
    # deterministic tie-break by lower index.
    h = C.stacked_heights(np.full((1, 5), 0.2), 3)
    assert h.tolist() == [[1, 1, 1, 0, 0]]
    # Hamilton (not per-item rounding): rounding each 1/3 of 10 gives 3+3+3 = 9.
    assert C.stacked_heights(np.full((1, 3), 1 / 3), 10).sum() == 10


def test_stacked_heights_deterministic_and_zero_row():
    shares = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 0.0]])
    a = C.stacked_heights(shares, 6)
    b = C.stacked_heights(shares, 6)
    np.testing.assert_array_equal(a, b)
    assert a.sum(axis=1).tolist() == [6, 6]


# --------------------------------------------------------------------------- ordering

RED, GREEN, BLUE = (255, 0, 0), (0, 200, 0), (0, 0, 255)
YELLOW, WHITE, GREY, BLACK = (255, 255, 0), (255, 255, 255), (128, 128, 128), (0, 0, 0)


def test_order_by_share():
    centres = np.array([[RED, GREEN, BLUE]], np.float32)
    shares = np.array([[0.2, 0.5, 0.3]])
    assert C.order_clusters(centres, shares, by="share").tolist() == [[1, 2, 0]]


def test_order_by_lightness_lightest_first():
    centres = np.array([[BLACK, WHITE, BLUE, GREY, YELLOW]], np.float32)
    shares = np.full((1, 5), 0.2)
    # Luminance: white 1 > yellow > grey (~0.22) > blue (0.07) > black 0.
    assert C.order_clusters(centres, shares, by="lightness").tolist() == [[1, 4, 3, 2, 0]]


def test_order_by_hue_greys_last():
    centres = np.array([[GREY, BLUE, WHITE, GREEN, RED, YELLOW, BLACK]], np.float32)
    shares = np.full((1, 7), 1 / 7)
    got = C.order_clusters(centres, shares, by="hue")[0].tolist()
    hues = [colorsys.rgb_to_hsv(*(np.array(c) / 255))[0] for c in (RED, YELLOW, GREEN, BLUE)]
    assert hues == sorted(hues)  # the expected order really is ascending hue
    # red(4) yellow(5) green(3) blue(1), then greys light to dark: white(2) grey(0) black(6)
    assert got == [4, 5, 3, 1, 2, 0, 6]


def test_order_is_permutation_and_zero_share_last():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0, 255, (50, 6, 3))
    shares = rng.dirichlet(np.ones(6), 50)
    shares[:, 2] = 0
    for by in ("share", "hue"):
        order = C.order_clusters(centres, shares, by=by)
        assert (np.sort(order, axis=1) == np.arange(6)).all()
        assert (order[:, -1] == 2).all()
    with pytest.raises(ValueError):
        C.order_clusters(centres, shares, by="size")


# --------------------------------------------------------------------------- stacked


def test_stacked_half_red_half_blue():
    centres = np.array([[BLUE, RED]] * 3, np.float32)
    shares = np.array([[0.5, 0.5]] * 3)
    for height in (2, 10, 11, 100):
        col = C.stacked_columns(centres, shares, height)
        assert col.shape == (3, height, 3) and col.dtype == np.uint8
        n_red = (col == RED).all(axis=-1).sum(axis=1)
        n_blue = (col == BLUE).all(axis=-1).sum(axis=1)
        assert (n_red + n_blue == height).all()
        assert (np.abs(n_red - n_blue) <= height % 2).all()


def test_stacked_share_order_and_heights():
    centres = np.array([[RED, GREEN, BLUE]], np.float32)
    shares = np.array([[0.2, 0.5, 0.3]])
    col = C.stacked_columns(centres, shares, 10, sort="share")[0]
    expected = [GREEN] * 5 + [BLUE] * 3 + [RED] * 2
    assert col.tolist() == [list(c) for c in expected]


def test_stacked_hue_order():
    centres = np.array([[BLUE, GREY, RED, GREEN]], np.float32)
    shares = np.array([[0.25, 0.25, 0.25, 0.25]])
    col = C.stacked_columns(centres, shares, 8, sort="hue")[0]
    expected = [RED] * 2 + [GREEN] * 2 + [BLUE] * 2 + [GREY] * 2
    assert col.tolist() == [list(c) for c in expected]


def test_stacked_lightness_order():
    centres = np.array([[BLACK, WHITE, GREY]], np.float32)
    shares = np.array([[0.5, 0.25, 0.25]])
    col = C.stacked_columns(centres, shares, 8, sort="lightness")[0]
    expected = [WHITE] * 2 + [GREY] * 2 + [BLACK] * 4
    assert col.tolist() == [list(c) for c in expected]


def test_stacked_equal_drops_zero_shares():
    centres = np.array([[RED, GREEN, BLUE, YELLOW]], np.float32)
    shares = np.array([[0.7, 0.0, 0.2, 0.1]])
    col = C.stacked_columns(centres, shares, 9, equal=True)[0]
    # three non-empty clusters, 3 rows each, still in share order; green never appears
    expected = [RED] * 3 + [BLUE] * 3 + [YELLOW] * 3
    assert col.tolist() == [list(c) for c in expected]
    col = C.stacked_columns(centres, shares, 10, equal=True)[0]
    counts = [int((col == c).all(axis=-1).sum()) for c in (RED, GREEN, BLUE, YELLOW)]
    assert counts[1] == 0
    assert sorted([counts[0], counts[2], counts[3]]) == [3, 3, 4]


def test_stacked_height_smaller_than_k():
    rng = np.random.default_rng(7)
    centres = rng.uniform(0, 255, (40, 8, 3))
    shares = rng.dirichlet(np.ones(8), 40)
    for height in (1, 3, 7):
        col = C.stacked_columns(centres, shares, height)
        assert col.shape == (40, height, 3)
        # the top row is always the dominant colour in share order
        np.testing.assert_array_equal(col[:, 0], C.to_uint8(C.dominant(centres, shares)))
