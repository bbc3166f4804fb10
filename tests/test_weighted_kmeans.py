"""k-means on weighted point sets (the pooled problems of a shot): weights as repeated points,
coresets that keep the weight and the mean, exact pixel counts, checked arguments, and the
same result on the CuPy stand-in."""

from __future__ import annotations

import dataclasses
import sys

import cupy_standin
import numpy as np
import pytest

from moviebarcode.errors import ParameterError
from moviebarcode.kmeans import KMeansConfig, assign_counts, coreset, weighted_kmeans


def blobs(n_sets: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_sets`` sets of ``n`` colour points around 5 centres each, with integer weights."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 255, (n_sets, 5, 3))
    pick = rng.integers(0, 5, (n_sets, n))
    pts = np.take_along_axis(centres, pick[..., None], axis=1) + rng.normal(0, 12, (n_sets, n, 3))
    return pts.astype(np.float32), rng.integers(1, 6, (n_sets, n)).astype(np.float32)


def test_a_weight_counts_as_repeated_points():
    sk = pytest.importorskip("sklearn.cluster")
    pts, w = blobs(4, 300)
    res = weighted_kmeans(pts, w, 4, KMeansConfig(seed=3))
    for i in range(4):
        expanded = np.repeat(pts[i], w[i].astype(int), axis=0)
        ref = sk.KMeans(4, n_init=10, random_state=0).fit(expanded)
        d = ((expanded[:, None] - res.centres[i][None]) ** 2).sum(2)
        ours = d.min(1).sum()
        assert res.inertia[i] == pytest.approx(ours, rel=1e-4)
        assert ours <= ref.inertia_ * 1.01
        np.testing.assert_allclose(
            res.shares[i], np.bincount(d.argmin(1), minlength=4) / len(expanded), atol=1e-6
        )


def test_padding_of_weight_0_changes_nothing():
    pts, w = blobs(2, 200, seed=1)
    padded = np.concatenate([pts, np.repeat(pts[:, :1], 50, axis=1)], axis=1)
    wpad = np.concatenate([w, np.zeros((2, 50), np.float32)], axis=1)
    a = weighted_kmeans(pts, w, 3)
    b = weighted_kmeans(padded, wpad, 3)
    np.testing.assert_allclose(b.inertia, a.inertia, rtol=1e-5)


def test_coresets_keep_the_weight_and_the_mean():
    pts, w = blobs(3, 2000, seed=2)
    cp, cw = coreset(pts, w, 64)
    assert cp.shape[0] == 3 and cp.shape[1] < 2000
    np.testing.assert_allclose(cw.sum(1), w.sum(1), rtol=1e-6)
    mean = (pts * w[..., None]).sum(1) / w.sum(1)[:, None]
    cmean = (cp * cw[..., None]).sum(1) / cw.sum(1)[:, None]
    np.testing.assert_allclose(cmean, mean, rtol=1e-4)


def test_assign_counts_are_exact():
    pts, _ = blobs(3, 500, seed=4)
    centres = pts[:, :6].copy()
    counts, inertia = assign_counts(pts, centres)
    d = ((pts[:, :, None].astype(np.float64) - centres[:, None].astype(np.float64)) ** 2).sum(3)
    for i in range(3):
        np.testing.assert_array_equal(counts[i], np.bincount(d[i].argmin(1), minlength=6))
    np.testing.assert_allclose(inertia, d.min(2).sum(1), rtol=1e-5)


def test_the_arguments_are_checked():
    pts, w = blobs(2, 10)
    with pytest.raises(ParameterError, match="weights must be >= 0"):
        weighted_kmeans(pts, -w, 2)
    with pytest.raises(ParameterError, match="total above 0"):
        weighted_kmeans(pts, w * np.array([[0.0], [1.0]], np.float32), 2)
    with pytest.raises(ValueError, match="weights must have shape"):
        weighted_kmeans(pts, w[:, :5], 2)


def test_the_device_gives_the_numpy_result(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", cupy_standin)
    pts, w = blobs(5, 400, seed=5)
    ref = weighted_kmeans(pts, w, 4, n_threads=1, block_frames=5)
    got = weighted_kmeans(cupy_standin.asarray(pts), cupy_standin.asarray(w), 4)
    for f in dataclasses.fields(got):
        value = getattr(got, f.name)
        assert isinstance(value, cupy_standin.ndarray), f.name
        np.testing.assert_array_equal(value.get(), getattr(ref, f.name), f.name)
    c, d = assign_counts(cupy_standin.asarray(pts), got.centres)
    c_ref, d_ref = assign_counts(pts, ref.centres)
    np.testing.assert_array_equal(c.get(), c_ref)
    np.testing.assert_array_equal(d.get(), d_ref)
