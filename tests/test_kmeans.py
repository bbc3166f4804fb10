"""Tests of moviebarcode.kmeans: batched k-means against scikit-learn, degenerate frames, and
its config."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from moviebarcode._xp import get_xp, to_host
from moviebarcode.errors import ParameterError
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.kmeans import KMeansConfig, KMeansResult, batched_kmeans
from moviebarcode.kmeans.config import _Plan

CLIP = Path(__file__).parent / "data" / "bbb_trailer_h264.mp4"
RED = np.array([255.0, 0.0, 0.0], dtype=np.float32)
BLUE = np.array([0.0, 0.0, 255.0], dtype=np.float32)


def decode_frames(every: int = 48, width: int = 160, height: int = 90) -> np.ndarray:
    """Every ``every``-th frame of the test clip, area-scaled: (F, height*width, 3) float32."""
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(CLIP),
        "-vf",
        f"select='not(mod(n,{every}))',scale={width}:{height}:flags=area,format=rgb24",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-",
    ]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, height * width, 3)
    return frames.astype(np.float32)


@pytest.fixture(scope="session")
def film_frames() -> np.ndarray:
    frames = decode_frames()
    assert frames.shape[0] >= 10
    return frames


@pytest.fixture(scope="session")
def sklearn_reference(film_frames):
    """scikit-learn KMeans(k=8, k-means++, n_init=20) on every film frame."""
    cluster = pytest.importorskip("sklearn.cluster")
    import warnings

    centres, shares, inertia = [], [], []
    for frame in film_frames:
        km = cluster.KMeans(n_clusters=8, init="k-means++", n_init=20, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            km.fit(frame)
        centres.append(km.cluster_centers_)
        shares.append(np.bincount(km.labels_, minlength=8) / frame.shape[0])
        inertia.append(km.inertia_)
    return np.array(centres), np.array(shares), np.array(inertia)


def two_colour_frame(n: int = 1000) -> np.ndarray:
    frame = np.empty((n, 3), dtype=np.float32)
    frame[: n // 2] = RED
    frame[n // 2 :] = BLUE
    return frame


def recomputed_inertia(pixels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = ((pixels[:, :, None, :].astype(np.float64) - centres[:, None, :, :]) ** 2).sum(-1)
    return d.min(axis=2).sum(axis=1)


def dominant(result: KMeansResult) -> np.ndarray:
    """Centre of the largest cluster of each frame, (F, 3)."""
    best = np.argmax(result.shares, axis=1)
    return result.centres[np.arange(len(best)), best]


# ----------------------------------------------------------------------------- basics


def test_shapes_dtypes_and_invariants(film_frames):
    pixels = film_frames[:4]
    r = batched_kmeans(pixels, 8, KMeansConfig(seed=1))
    assert r.centres.shape == (4, 8, 3) and r.centres.dtype == np.float32
    assert r.shares.shape == (4, 8) and r.shares.dtype == np.float32
    assert r.inertia.shape == (4,) and r.inertia.dtype == np.float64
    assert r.n_iter.shape == (4,) and r.n_iter.dtype == np.int32
    assert np.all(np.isfinite(r.centres)) and np.all(r.n_iter >= 1)
    np.testing.assert_allclose(r.shares.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(r.inertia, recomputed_inertia(pixels, r.centres), rtol=1e-4)
    # Shares are the fractions of pixels nearest to each centre.
    d = ((pixels[:, :, None, :] - r.centres[:, None, :, :]) ** 2).sum(-1)
    labels = d.argmin(axis=2)
    counts = np.stack([np.bincount(lab, minlength=8) for lab in labels]) / pixels.shape[1]
    np.testing.assert_allclose(r.shares, counts, atol=2e-3)


def test_two_colours_k2():
    r = batched_kmeans(two_colour_frame()[None], 2, KMeansConfig(seed=0))
    order = np.argsort(r.centres[0, :, 0])  # blue first, then red
    np.testing.assert_allclose(r.centres[0, order], np.stack([BLUE, RED]), atol=1e-3)
    np.testing.assert_allclose(r.shares[0, order], [0.5, 0.5], atol=1e-6)
    assert r.inertia[0] == pytest.approx(0.0, abs=1e-3)


def test_two_colours_k8_extra_clusters_empty_or_duplicate():
    r = batched_kmeans(two_colour_frame()[None], 8, KMeansConfig(seed=0))
    assert np.all(np.isfinite(r.centres)) and np.all(np.isfinite(r.shares))
    at_red = np.linalg.norm(r.centres[0] - RED, axis=1) < 1e-3
    at_blue = np.linalg.norm(r.centres[0] - BLUE, axis=1) < 1e-3
    assert r.shares[0, at_red].sum() == pytest.approx(0.5, abs=1e-6)
    assert r.shares[0, at_blue].sum() == pytest.approx(0.5, abs=1e-6)
    # Every pixel goes to some centre at red or blue; no others hold pixels.
    assert r.shares[0, ~(at_red | at_blue)].sum() == pytest.approx(0.0, abs=1e-6)
    top2 = np.sort(np.argsort(r.shares[0])[-2:])
    np.testing.assert_allclose(np.sort(r.shares[0, top2]), [0.5, 0.5], atol=1e-6)
    assert r.inertia[0] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("k", [1, 8])
def test_solid_frame(k):
    colour = np.array([12.0, 200.0, 77.0], dtype=np.float32)
    pixels = np.broadcast_to(colour, (2, 500, 3)).copy()
    r = batched_kmeans(pixels, k, KMeansConfig(seed=3))
    for arr in (r.centres, r.shares, r.inertia):
        assert not np.any(np.isnan(arr))
    for f in range(2):
        big = int(np.argmax(r.shares[f]))
        assert r.shares[f, big] == pytest.approx(1.0)
        np.testing.assert_allclose(r.centres[f, big], colour, atol=1e-4)
        assert np.count_nonzero(r.shares[f]) == 1
    np.testing.assert_allclose(r.inertia, 0.0, atol=1e-6)


def test_fewer_colours_than_k_and_mixed_batch(film_frames):
    """Degenerate frames batched with a normal one: no NaN, exact fit of the few colours."""
    three = np.repeat(np.array([[0, 0, 0], [255, 255, 255], [10, 20, 30]], np.float32), 100, 0)
    solid = np.zeros((300, 3), np.float32)
    normal = film_frames[0][:300]
    r = batched_kmeans(np.stack([three, solid, normal]), 8, KMeansConfig(seed=0))
    assert np.all(np.isfinite(r.centres)) and np.all(np.isfinite(r.inertia))
    np.testing.assert_allclose(r.shares.sum(axis=1), 1.0, rtol=1e-6)
    assert r.inertia[0] == pytest.approx(0.0, abs=1e-3)
    assert r.inertia[1] == 0.0
    assert np.count_nonzero(r.shares[0] > 0) == 3


def test_k1_is_the_mean(film_frames):
    pixels = film_frames[:3]
    r = batched_kmeans(pixels, 1)
    np.testing.assert_allclose(r.centres[:, 0], pixels.mean(axis=1), atol=1e-2)
    np.testing.assert_allclose(r.shares, 1.0)


def test_reproducible_and_seed_dependent(film_frames):
    pixels = film_frames[:6]
    a = batched_kmeans(pixels, 8, KMeansConfig(seed=7))
    b = batched_kmeans(pixels, 8, KMeansConfig(seed=7))
    for x, y in zip(
        (a.centres, a.shares, a.inertia, a.n_iter),
        (b.centres, b.shares, b.inertia, b.n_iter),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)
    c = batched_kmeans(pixels, 8, KMeansConfig(seed=8))
    assert not np.array_equal(a.centres, c.centres)  # different seeds may differ
    # Different seeds still land on equally good clusterings overall.
    assert c.inertia.mean() == pytest.approx(a.inertia.mean(), rel=0.05)


@pytest.mark.parametrize("k", [4, 8])
def test_blocking_and_threads_do_not_change_the_result(film_frames, k):
    """NumPy cuts a batch into blocks of frames, CuPy takes it whole: the blocks and the
    threads must never change a result (which restart or neighbour start wins included)."""
    # A solid frame among them: its pixels are equally near duplicate centres (ties).
    solid = np.full((1, *film_frames.shape[1:]), 40.0, np.float32)
    batch = np.concatenate([film_frames[:6], solid, film_frames[6:]])
    whole = batched_kmeans(batch, k, KMeansConfig(seed=2), block_frames=len(batch))
    for block_frames, threads in ((1, 2), (3, 1), (7, 2)):
        got = batched_kmeans(
            batch, k, KMeansConfig(seed=2), block_frames=block_frames, n_threads=threads
        )
        for name in ("centres", "shares", "inertia", "n_iter"):
            np.testing.assert_array_equal(getattr(got, name), getattr(whole, name), name)


@pytest.mark.parametrize("config", [KMeansConfig(n_init=4), KMeansConfig(n_init=4, coreset=False)])
def test_segments_are_independent_batches(film_frames, config):
    """Batches stacked in one call (as the cupy engine stacks them) each get the result of
    a call of their own, bit for bit: a frame's neighbours stay in its segment, the
    random numbers come from the segment's seed, and in the pixel phase a converged frame
    stops, whatever the others do."""
    x = film_frames[:, :: 1 if config.coreset else 16]
    segments = [(4, 7), (1, 3), (2, 0), (len(x) - 7, 11)]
    stacked = batched_kmeans(x, 5, config, segments=segments, block_frames=3)
    start = 0
    for n, seed in segments:
        alone = batched_kmeans(x[start : start + n], 5, dataclasses.replace(config, seed=seed))
        for name in ("centres", "shares", "inertia", "n_iter"):
            got = getattr(stacked, name)[start : start + n]
            np.testing.assert_array_equal(got, getattr(alone, name), f"{name} of {n} at {start}")
        start += n


@pytest.mark.parametrize(
    "segments", [[(3, 0)], [(0, 1), (10, 0)], [(5, 0), (5, -1)], [(5, 0)] * 3, [(5,)]]
)
def test_segments_must_cover_the_batch(segments):
    x = np.zeros((10, 4, 3), np.float32)
    with pytest.raises(ParameterError, match="^segments must be"):
        batched_kmeans(x, 2, segments=segments)


def test_full_data_mode_without_bins(film_frames):
    pixels = film_frames[:2, ::4]
    r = batched_kmeans(pixels, 8, KMeansConfig(coreset=False, n_init=2))
    np.testing.assert_allclose(r.inertia, recomputed_inertia(pixels, r.centres), rtol=1e-4)


def test_coreset_bins_preserve_counts_and_means(film_frames):
    from moviebarcode.kmeans._coreset import _bin

    pixels = film_frames[:4]
    pts, w = _bin(pixels.transpose(0, 2, 1), None, 1 << 15, np)
    assert pts.shape[0] == 4 and pts.shape[1] == 3 and w.shape == (4, pts.shape[2])
    np.testing.assert_allclose(w.sum(axis=1), pixels.shape[1])
    # Weighted bin means sum to the frame's pixel sum; far fewer bins than pixels.
    np.testing.assert_allclose(
        (pts * w[:, None, :]).sum(axis=2), pixels.sum(axis=1, dtype=np.float64), rtol=1e-5
    )
    assert np.all((w > 0).sum(axis=1) <= 4000)
    # A grey frame is binned finely along its grey line: every grey level its own bin.
    grey = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1)[None]
    _, wg = _bin(grey.transpose(0, 2, 1), None, 1 << 15, np)
    assert np.count_nonzero(wg) >= 200


def test_input_validation():
    with pytest.raises(ValueError):
        batched_kmeans(np.zeros((2, 10, 4), np.float32), 2)
    with pytest.raises(ValueError):
        batched_kmeans(np.zeros((2, 10, 3), np.float32), 0)
    with pytest.raises(ValueError, match="at least one frame"):
        batched_kmeans(np.zeros((0, 10, 3), np.float32), 2)
    x = np.zeros((2, 10, 3), np.float32)
    for k in (0, 2.0, True, None):
        with pytest.raises(ParameterError, match=r"^k must be an int >= 1"):
            batched_kmeans(x, k)
    with pytest.raises(ParameterError, match="^config must be a KMeansConfig"):
        batched_kmeans(x, 2, {"n_init": 2})
    with pytest.raises(ParameterError, match="^block_frames must be"):
        batched_kmeans(x, 2, block_frames=0)
    with pytest.raises(ParameterError, match="^n_threads must be"):
        batched_kmeans(x, 2, n_threads=0.5)


def test_result_arrays_are_of_the_input_module():
    r = batched_kmeans(two_colour_frame(100)[None], 2)
    assert get_xp(r.centres, r.shares, r.inertia, r.n_iter) is np
    n = to_host(r.shares)
    assert isinstance(n, np.ndarray)
    np.testing.assert_array_equal(n, r.shares)


# ---------------------------------------------------------------- against scikit-learn


def test_matches_sklearn_on_film_frames(film_frames, sklearn_reference):
    sk_centres, sk_shares, sk_inertia = sklearn_reference
    assert len(film_frames) >= 15
    r = batched_kmeans(film_frames, 8, KMeansConfig(seed=0))
    # Mean inertia within 1% of scikit-learn's n_init=20, or lower.
    assert r.inertia.mean() <= 1.01 * sk_inertia.mean()
    # Dominant colour (centre of the largest cluster) close on most frames.
    sk_dom = sk_centres[np.arange(len(sk_centres)), np.argmax(sk_shares, axis=1)]
    dist = np.linalg.norm(dominant(r) - sk_dom, axis=1)
    assert np.mean(dist < 10.0) >= 0.8, dist


def test_other_frame_size(film_frames):
    frames = decode_frames(every=96, width=160, height=68)[:3]
    r = batched_kmeans(frames, 8)
    assert r.centres.shape == (len(frames), 8, 3)
    np.testing.assert_allclose(r.inertia, recomputed_inertia(frames, r.centres), rtol=1e-4)


# ------------------------------------------------------------------------------ GPU


def _cupy_with_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy sees no GPU")
    except Exception as exc:  # CUDA driver missing
        pytest.skip(f"CuPy sees no GPU: {exc}")
    return cupy


@pytest.mark.gpu
def test_cupy_matches_numpy(film_frames):
    cupy = _cupy_with_gpu()
    pixels = film_frames[:8]
    ref = batched_kmeans(pixels, 8, KMeansConfig(seed=5), xp=np)
    got = batched_kmeans(cupy.asarray(pixels), 8, KMeansConfig(seed=5))
    assert get_xp(got.centres) is cupy
    got = KMeansResult(*(to_host(a) for a in dataclasses.astuple(got)))
    # Same random numbers on both: same clustering up to float rounding.
    np.testing.assert_allclose(got.inertia, ref.inertia, rtol=5e-3)
    same = np.all(np.abs(got.centres - ref.centres) < 0.5, axis=(1, 2))
    assert np.mean(same) >= 0.75  # a rounding tie can rarely flip one frame's path
    np.testing.assert_allclose(got.shares[same], ref.shares[same], atol=2e-3)
    np.testing.assert_allclose(got.shares.sum(axis=1), 1.0, rtol=1e-5)


# ------------------------------------------------------------------ neighbour starts


def test_neighbour_index_reflects_at_the_ends():
    from moviebarcode.kmeans._neighbours import _neighbour_index

    idx = _neighbour_index(5, 2)  # offsets -1, +1, -2, +2
    np.testing.assert_array_equal(idx[0], [1, 0, 1, 2, 3])
    np.testing.assert_array_equal(idx[1], [1, 2, 3, 4, 3])
    np.testing.assert_array_equal(idx[2], [2, 3, 0, 1, 2])
    np.testing.assert_array_equal(idx[3], [2, 3, 4, 1, 2])
    assert _neighbour_index(1, 1).tolist() == [[0], [0]]
    assert _neighbour_index(4, 0).shape == (0, 4)


def test_neighbour_starts_lower_the_inertia(film_frames):
    """With one restart per frame, the neighbours' solutions give a lower (never a higher) mean
    inertia than each frame alone; the result keeps every invariant."""
    alone = batched_kmeans(film_frames, 8, KMeansConfig(seed=4, n_init=1, neighbours=0))
    helped = batched_kmeans(film_frames, 8, KMeansConfig(seed=4, n_init=1, neighbours=2))
    assert helped.inertia.mean() < alone.inertia.mean()
    np.testing.assert_allclose(
        helped.inertia, recomputed_inertia(film_frames, helped.centres), rtol=1e-4, atol=1e-3
    )
    np.testing.assert_allclose(helped.shares.sum(axis=1), 1.0, rtol=1e-5)


def test_more_neighbour_rounds_spread_better_solutions(film_frames):
    """Each round starts from the last one's winners: with one restart and one neighbour on
    each side, a second round lowers the mean inertia further, and 0 rounds is the same as
    no neighbours at all. (Without the pixel phase, which would settle the solutions of
    rounds 1 and 2 to within a millionth of each other.)"""
    runs = {
        n: batched_kmeans(
            film_frames,
            8,
            KMeansConfig(seed=0, n_init=1, neighbours=1, neighbour_rounds=n, pixel_iter=0),
        )
        for n in (0, 1, 2)
    }
    alone = batched_kmeans(
        film_frames, 8, KMeansConfig(seed=0, n_init=1, neighbours=0, pixel_iter=0)
    )
    np.testing.assert_array_equal(runs[0].inertia, alone.inertia)
    assert runs[2].inertia.mean() < runs[1].inertia.mean() < runs[0].inertia.mean()
    np.testing.assert_allclose(
        runs[2].inertia, recomputed_inertia(film_frames, runs[2].centres), rtol=1e-4, atol=1e-3
    )


def test_neighbours_of_a_one_frame_batch(film_frames):
    one = batched_kmeans(film_frames[:1], 8, KMeansConfig(seed=3))
    again = batched_kmeans(film_frames[:1], 8, KMeansConfig(seed=3, neighbours=0))
    np.testing.assert_allclose(one.inertia, again.inertia, rtol=1e-6)


# ------------------------------------------------------------- the last pass, on pixels


def reference_lloyd(pixels: np.ndarray, centres: np.ndarray, n_iter: int) -> np.ndarray:
    """Plain Lloyd iterations in float64, frame by frame: assign every pixel, move each
    centre to its pixels' mean (an empty cluster keeps its centre)."""
    out = centres.astype(np.float64)
    for f, frame in enumerate(pixels.astype(np.float64)):
        c = out[f]
        for _ in range(n_iter):
            label = ((frame[:, None, :] - c[None]) ** 2).sum(-1).argmin(axis=1)
            for j in range(len(c)):
                if np.any(label == j):
                    c[j] = frame[label == j].mean(axis=0)
    return out


@pytest.mark.parametrize("n_iter", [1, 4, 40])
def test_bounded_pixel_lloyd_is_plain_lloyd(film_frames, n_iter):
    """The bounded Lloyd iterations on pixels (most pixels skipped) give what plain Lloyd
    iterations give from the same centres, and the final assignment gives exact shares and
    inertia."""
    from moviebarcode.kmeans._pixels import _pixel_lloyd, _pixel_start

    pixels = film_frames[:6]
    start = batched_kmeans(pixels, 8, KMeansConfig(seed=5, pixel_iter=0)).centres
    xt = np.ascontiguousarray(pixels.transpose(0, 2, 1))
    mu = xt.mean(axis=2, keepdims=True)
    xc = np.concatenate([xt - mu, np.ones_like(xt[:, :1])], axis=1)  # a fourth row of ones
    mu = mu.transpose(0, 2, 1)
    state = _pixel_start(xc, (start - mu).astype(np.float32), 0, np)
    never = np.zeros(len(pixels), np.float32)  # threshold 0: every iteration runs
    centres, iters, shares, inertia = _pixel_lloyd(
        pixels, mu, *state, start - mu, never, n_iter, np
    )
    want = reference_lloyd(pixels, start, n_iter)
    np.testing.assert_allclose(centres + mu, want, atol=2e-3)
    assert np.all(iters <= n_iter) and np.all(iters >= 1)
    np.testing.assert_allclose(inertia, recomputed_inertia(pixels, centres + mu), rtol=1e-6)
    d = ((pixels[:, :, None, :] - (centres + mu)[:, None, :, :]) ** 2).sum(-1)
    counts = np.stack([np.bincount(lab, minlength=8) for lab in d.argmin(axis=2)])
    np.testing.assert_allclose(shares * pixels.shape[1], counts, atol=2)


def test_over_relaxed_pixel_phase_takes_fewer_steps_to_as_low(film_frames):
    """Over-relaxed, the pixel phase reaches a fixed point in fewer iterations than plain
    Lloyd from the same coreset solutions, and as low (within 1e-5 of the mean inertia)."""
    config = KMeansConfig(seed=0)
    assert config.pixel_relax > 1
    start = batched_kmeans(film_frames, 8, dataclasses.replace(config, pixel_iter=0)).n_iter
    plain = batched_kmeans(film_frames, 8, dataclasses.replace(config, pixel_relax=1.0))
    relaxed = batched_kmeans(film_frames, 8, config)
    assert (relaxed.n_iter - start).sum() < 0.9 * (plain.n_iter - start).sum()
    assert relaxed.inertia.mean() <= plain.inertia.mean() * (1 + 1e-5)
    # the last step is a plain one: one more plain step barely moves the centres (by a
    # sixth of a level at most; plain Lloyd's own ends within 0.07 here, same tolerance)
    moved = np.abs(reference_lloyd(film_frames, relaxed.centres, 1) - relaxed.centres)
    assert moved.max() < 0.15 and np.median(moved.max(axis=(1, 2))) < 0.01


def test_result_is_a_lloyd_fixed_point_on_pixels(film_frames):
    """The pixel iterations run to convergence: one more plain Lloyd step on the pixels
    barely moves the centres, where it still moves the coreset's solution (no pixel
    steps) and lowers its inertia."""
    pixels = film_frames[:8]
    done = batched_kmeans(pixels, 8, KMeansConfig(seed=6))
    coreset = batched_kmeans(pixels, 8, KMeansConfig(seed=6, pixel_iter=0))
    step = reference_lloyd(pixels, done.centres, 1)
    assert np.abs(step - done.centres).max() < 0.05
    moved = reference_lloyd(pixels, coreset.centres, 1)
    assert np.abs(moved - coreset.centres).max() > 0.05
    after = recomputed_inertia(pixels, moved)
    assert np.all(after <= coreset.inertia * (1 + 1e-9)) and np.any(after < coreset.inertia)
    assert done.inertia.mean() <= coreset.inertia.mean()


# ------------------------------------------------------------------------------ config


def test_config_defaults_are_the_old_ones():
    """The defaults are those of the keyword arguments batched_kmeans used to take
    (DEFAULT_N_INIT, DEFAULT_CARRY, DEFAULT_BIN_BITS, ...)."""
    c = KMeansConfig()
    assert (c.n_init, c.max_iter, c.tol, c.seed) == (8, 100, 1e-4, 0)
    assert c.coreset and c.fine_bits == 5 and c.coarse and c.coarse_bits == 3.5
    assert (c.restart_iter, c.carry, c.fine_iter) == (8, 3, 5)
    assert (c.neighbours, c.neighbour_rounds, c.neighbour_iter) == (2, 2, 2)
    assert c.pixel_iter == math.inf and c.pixel_tol == 1e-6


def test_config_is_frozen_and_comparable():
    c = KMeansConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.n_init = 3
    assert dataclasses.replace(c, n_init=3) == KMeansConfig(n_init=3) != c
    assert hash(KMeansConfig()) == hash(c)


BAD_VALUES = {  # field: (a value of the wrong type, a value out of range)
    "n_init": (2.0, 0),
    "max_iter": ("100", 0),
    "tol": (None, -1e-9),
    "seed": (1.5, -1),
    "coreset": (1, None),
    "fine_bits": (True, 8.5),
    "coarse": ("yes", 0),
    "coarse_bits": ("3", 0.5),
    "restart_iter": (None, -1),
    "carry": (1.0, 0),
    "fine_iter": (2.5, -1),
    "finalists": (1.5, -1),
    "trial_iter": (2.0, 0),
    "neighbours": (None, -1),
    "neighbour_rounds": (True, -1),
    "neighbour_iter": (None, -math.inf),
    "pixel_iter": (None, -1),
    "pixel_tol": ("0", math.nan),
    "pixel_relax": ("1.5", 2.0),
    "coreset_relax": (None, 0.5),
}


def test_every_field_has_its_bad_values():
    assert set(BAD_VALUES) == {f.name for f in dataclasses.fields(KMeansConfig)}


@pytest.mark.parametrize("field", sorted(BAD_VALUES))
@pytest.mark.parametrize("which", ["type", "range"])
def test_config_rejects_bad_values_naming_the_field(field, which):
    value = BAD_VALUES[field][0 if which == "type" else 1]
    with pytest.raises(ParameterError, match=rf"^KMeansConfig\.{field} must be ") as err:
        KMeansConfig(**{field: value})
    assert "\n" not in str(err.value) and repr(value) in str(err.value)
    assert isinstance(err.value, ValueError)  # ParameterError is a ValueError


def test_config_accepts_the_edges_of_each_range():
    KMeansConfig(
        n_init=1,
        max_iter=1,
        tol=0.0,
        seed=np.int64(2**40),
        fine_bits=8,
        coarse_bits=1,
        restart_iter=0,
        carry=1,
        fine_iter=math.inf,
        neighbours=0,
        neighbour_rounds=0,
        neighbour_iter=0,
        pixel_iter=0,
        pixel_tol=0,
    )
    KMeansConfig(fine_bits=1, coarse=False, coarse_bits=8)
    KMeansConfig(coreset=False, fine_bits=2, coarse_bits=3)  # no coreset: no coarse level


def test_coarse_level_must_be_coarser():
    with pytest.raises(ParameterError, match=r"^KMeansConfig\.coarse_bits must be below fine_bits"):
        KMeansConfig(fine_bits=3)  # coarse_bits 3.5
    with pytest.raises(ParameterError, match=r"^KMeansConfig\.coarse_bits"):
        KMeansConfig(coarse_bits=5)


def test_plan_resolves_the_iteration_caps_from_max_iter():
    p = _Plan.of(KMeansConfig())
    assert (p.restart_iter, p.fine_iter, p.neighbour_iter, p.pixel_iter) == (8, 5, 2, 100)
    assert p.carry == 3 and p.coarse and p.fine_cells == 8**5 and p.coarse_cells == 1448
    # Pixel iterations up to max_iter, whatever it is; the restarts and the fine coreset
    # share max_iter.
    assert _Plan.of(KMeansConfig(max_iter=300)).pixel_iter == 300
    p = _Plan.of(KMeansConfig(max_iter=10))
    assert (p.restart_iter, p.fine_iter, p.neighbour_iter, p.pixel_iter) == (8, 2, 2, 10)
    p = _Plan.of(KMeansConfig(max_iter=3))
    assert (p.restart_iter, p.fine_iter, p.neighbour_iter, p.pixel_iter) == (3, 0, 2, 3)
    p = _Plan.of(KMeansConfig(max_iter=20, restart_iter=math.inf, fine_iter=math.inf))
    assert (p.restart_iter, p.fine_iter) == (20, 0)
    p = _Plan.of(KMeansConfig(pixel_iter=7, neighbour_iter=math.inf, max_iter=50))
    assert (p.pixel_iter, p.neighbour_iter) == (7, 50)
    # Without a coreset the best restart runs on for the rest of max_iter, and the pixel
    # phase is only the final assignment.
    p = _Plan.of(KMeansConfig(coreset=False, max_iter=30))
    assert (p.restart_iter, p.fine_iter, p.pixel_iter, p.coarse) == (8, 22, 0, False)
    # Carried restarts: at most n_init, and 1 without a coarse level.
    assert _Plan.of(KMeansConfig(n_init=2)).carry == 2
    assert _Plan.of(KMeansConfig(coarse=False)).carry == 1
    # Finalists: only fewer than the carried, and only before the fine iterations end.
    assert _Plan.of(KMeansConfig()).finalists == 3
    assert _Plan.of(KMeansConfig(carry=6, finalists=2)).finalists == 2
    assert _Plan.of(KMeansConfig(carry=6, finalists=9)).finalists == 6
    assert _Plan.of(KMeansConfig(carry=6, finalists=2, trial_iter=5)).finalists == 6


def test_over_relaxed_lloyd_steps_past_the_means(film_frames):
    """An over-relaxed Lloyd iteration moves each centre ``relax`` times its plain step
    towards its cluster's weighted mean; relax 1 is plain Lloyd."""
    from moviebarcode.kmeans._coreset import _bin
    from moviebarcode.kmeans._lloyd import _lloyd

    frames = film_frames[10:13]  # colourful frames: no cluster ends empty
    pts, w = _bin(np.ascontiguousarray(frames.transpose(0, 2, 1)), None, 4096, np)
    start = pts[:, :, :8].transpose(0, 2, 1).copy() + 1.5  # (3, 8, 3), none empty
    never = np.zeros(3, np.float32)
    plain, _, _ = _lloyd(pts, start, never, 1, np, w)
    relaxed, _, _ = _lloyd(pts, start, never, 1, np, w, relax=1.5)
    np.testing.assert_allclose(relaxed, start + 1.5 * (plain - start), atol=1e-3)
    assert np.abs(plain - start).max() > 1
    np.testing.assert_array_equal(_lloyd(pts, start, never, 1, np, w, relax=1.0)[0], plain)


def test_finalists_go_on_from_the_best_trials(film_frames):
    """With finalists, every carried restart does trial_iter fine iterations, the
    finalists of lowest fine inertia do the rest, and the lowest of those wins; checked
    step by step on real frames against the Lloyd iterations themselves."""
    from moviebarcode.kmeans._coreset import _bin
    from moviebarcode.kmeans._lloyd import _lloyd
    from moviebarcode.kmeans._search import _carry_on

    config = KMeansConfig(n_init=6, carry=6, fine_iter=5, finalists=2, trial_iter=1)
    plan = _Plan.of(config)
    frames = film_frames[:4]
    b = len(frames)
    pts, w = _bin(np.ascontiguousarray(frames.transpose(0, 2, 1)), None, plan.fine_cells, np)
    thresh = np.full(b, 1e-3, np.float32)
    rng = np.random.default_rng(3)
    starts = frames[np.arange(b)[None, :, None], rng.integers(0, frames.shape[1], (6, b, 8))]
    starts = starts.reshape(6 * b, 8, 3)
    coarse_fit = rng.random(6 * b)
    none = np.zeros(6 * b, np.int32)

    def carry_on(**changes):
        cfg = _Plan.of(dataclasses.replace(config, **changes))
        return _carry_on(pts, w, thresh, starts, none, coarse_fit, cfg, np)

    got, iters = carry_on()
    rep = np.concatenate([thresh] * 6)
    relax = plan.coreset_relax  # over-relaxed Lloyd, as the search runs it
    trial, _, fit = _lloyd(pts, starts, rep, 1, np, w, want_inertia=True, relax=relax)
    want = np.empty_like(got)
    for f in range(b):
        runs = [r * b + f for r in range(6)]
        best2 = sorted(runs, key=lambda i: (fit[i], i))[:2]
        pair = np.full(2, 1e-3, np.float32)
        one = (pts[f : f + 1], trial[best2], pair, 4, np, w[f : f + 1], None, True, relax)
        go, _, fit2 = _lloyd(*one)
        want[f] = go[int(np.argmin(fit2))]
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert np.all((iters >= 1) & (iters <= 5))
    # With every carried restart a finalist, the cut changes nothing.
    np.testing.assert_array_equal(carry_on(finalists=0)[0], carry_on(finalists=6)[0])


@pytest.mark.slow
def test_quality_at_the_originals_480x270():
    """At the original author's frame size, with the settings render uses there, the mean
    inertia is at most 1.001 of scikit-learn's KMeans(n_init=20) (the README's benchmark
    section has the full figures)."""
    cluster = pytest.importorskip("sklearn.cluster")
    from moviebarcode.cluster import ClusterParams

    frames = decode_frames(every=96, width=480, height=270)[:10]
    config = ClusterParams(k=8).kmeans_config((270, 480))
    assert config.n_init > KMeansConfig().n_init  # large frames get more restarts
    ours = batched_kmeans(frames, 8, config).inertia
    ref = []
    for frame in frames:
        km = cluster.KMeans(n_clusters=8, init="k-means++", n_init=20, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fewer distinct colours than clusters
            ref.append(km.fit(frame).inertia_)
    ref = np.asarray(ref)
    ratio = ours.mean() / ref.mean()
    worst = np.max(ours[ref > 0] / ref[ref > 0])  # black frames: 0 for both
    print(f"480x270: mean inertia {ratio:.5f} of scikit-learn's, worst frame {worst:.4f}")
    assert ratio <= 1.001 and worst < 1.02
    assert np.all(ours[ref == 0] < 1e-3)
