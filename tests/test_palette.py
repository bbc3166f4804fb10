"""Tests for moviebarcode.palette: JSON / CSV palette export."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from moviebarcode.errors import MoviebarcodeError
from moviebarcode.palette import write_palette


def _data(n: int = 20, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0, 255, (n, k, 3)).astype(np.float32)
    shares = rng.dirichlet(np.ones(k), n).astype(np.float32)
    shares[3, 1] = 0.0  # an empty cluster
    shares[3] /= shares[3].sum()
    times = np.arange(n) * 0.5
    indices = np.arange(n) * 12
    return dict(k=k, space="lab", times=times, indices=indices, colours_srgb=colours, shares=shares)


def test_json_shape_and_content(tmp_path):
    d = _data()
    path = write_palette(tmp_path / "p.json", **d)
    doc = json.loads(path.read_text())
    assert set(doc) == {"k", "space", "frames"}
    assert doc["k"] == 5 and doc["space"] == "lab"
    assert len(doc["frames"]) == 20
    for i, fr in enumerate(doc["frames"]):
        assert set(fr) == {"index", "time", "colors", "shares"}
        assert fr["index"] == i * 12 and fr["time"] == pytest.approx(i * 0.5)
        assert len(fr["colors"]) == len(fr["shares"])
        assert abs(sum(fr["shares"]) - 1) < 1e-3
        assert fr["shares"] == sorted(fr["shares"], reverse=True)
        assert all(s > 0 for s in fr["shares"])
        assert all(round(s, 4) == s for s in fr["shares"])
        # each listed colour is the (rounded) centre of the cluster with that share
        src = d["shares"][i]
        for rgb, s in zip(fr["colors"], fr["shares"], strict=True):
            assert len(rgb) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in rgb)
            j = int(np.argmin(np.abs(src - s)))
            assert abs(src[j] - s) <= 1e-4 + 1e-6
            np.testing.assert_allclose(rgb, d["colours_srgb"][i, j], atol=0.5 + 1e-4)
    assert len(doc["frames"][3]["colors"]) == 4  # the empty cluster is omitted


def test_rounded_shares_still_sum_to_one(tmp_path):
    # seven equal shares: naive rounding gives 7 * 0.1429 = 1.0003
    n, k = 3, 7
    d = dict(
        k=k,
        space="rgb",
        times=[0.0, 1.0, 2.0],
        indices=[0, 1, 2],
        colours_srgb=np.zeros((n, k, 3)),
        shares=np.full((n, k), 1 / k),
    )
    doc = json.loads(write_palette(tmp_path / "p.json", **d).read_text())
    for fr in doc["frames"]:
        assert round(sum(fr["shares"]), 6) == 1.0
        assert fr["shares"] == sorted(fr["shares"], reverse=True)


def test_csv(tmp_path):
    d = _data(n=6, k=3, seed=2)
    path = write_palette(tmp_path / "p.CSV", **d)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "time", "rank", "r", "g", "b", "share"]
    n_nonzero = int((d["shares"] > 0).sum())
    assert len(rows) == n_nonzero
    by_frame: dict[int, list[dict]] = {}
    for r in rows:
        by_frame.setdefault(int(r["index"]), []).append(r)
    assert sorted(by_frame) == list(d["indices"])
    for i, (idx, rs) in enumerate(sorted(by_frame.items())):
        assert idx == d["indices"][i]
        assert [int(r["rank"]) for r in rs] == list(range(len(rs)))
        shares = [float(r["share"]) for r in rs]
        assert abs(sum(shares) - 1) < 1e-3 and shares == sorted(shares, reverse=True)
        assert all(float(r["time"]) == pytest.approx(d["times"][i]) for r in rs)
        top = int(np.argmax(d["shares"][i]))
        rgb = [int(rs[0][c]) for c in "rgb"]
        np.testing.assert_allclose(rgb, d["colours_srgb"][i, top], atol=0.5 + 1e-4)


def test_bad_suffix(tmp_path):
    with pytest.raises(MoviebarcodeError) as err:
        write_palette(tmp_path / "p.txt", **_data())
    assert "\n" not in str(err.value) and ".json" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_length_mismatch(tmp_path):
    d = _data()
    d["times"] = d["times"][:-1]
    with pytest.raises(ValueError):
        write_palette(tmp_path / "p.json", **d)
