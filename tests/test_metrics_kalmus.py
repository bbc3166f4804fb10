"""Our per-frame metrics against KALMUS's own on the same frames, where KALMUS is installed:
``scripts/kalmus-env`` makes one in .kalmus-venv (``MOVIEBARCODE_KALMUS`` may name another
Python that has it; it is no dependency of ours). Skipped otherwise.

KALMUS works on the sRGB codes, so ours run with ``gamma_correct=False`` here. Where ours
differs on purpose (README, "Colour metrics and regions"), the test bounds the difference:
mode quantises 16 levels a channel jointly (KALMUS: 10-code bins per channel, lower edge);
brightness is Rec. 709 Y (KALMUS: Rec. 601 luma, rounded), equal on grey frames.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import kalmus_python
from moviebarcode.metrics import frame_metric

HERE = Path(__file__).parent
KALMUS_PYTHON = kalmus_python()


def frames() -> np.ndarray:
    """Noisy frames, a bright square on each (a known foreground, the unique brightest
    colour), and a grey frame."""
    rng = np.random.default_rng(3)
    f = rng.integers(0, 90, (4, 36, 48, 3), dtype=np.uint8)
    f[:, 10:26, 16:32] = (230, 200, 60)
    f[1, :, :12] = (40, 120, 200)  # a second large colour
    f[3] = rng.integers(0, 256, (36, 48, 1), dtype=np.uint8)  # grey
    return f


@pytest.fixture(scope="module")
def kalmus(tmp_path_factory):
    if not KALMUS_PYTHON:
        pytest.skip("kalmus is not installed: run scripts/kalmus-env, or set MOVIEBARCODE_KALMUS")
    path = tmp_path_factory.mktemp("kalmus") / "frames.npy"
    np.save(path, frames())
    r = subprocess.run(
        [KALMUS_PYTHON, str(HERE / "kalmus_metrics.py"), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {k: np.asarray(v, np.float64) for k, v in json.loads(r.stdout).items()}


def ours(mode: str, region: str = "whole") -> np.ndarray:
    return frame_metric(frames(), mode, region=region, gamma_correct=False).astype(np.float64)


def test_average_median_brightest_agree_with_kalmus(kalmus):
    np.testing.assert_allclose(ours("average"), kalmus["Average"], atol=0.01)
    np.testing.assert_array_equal(ours("median"), kalmus["Median"])
    np.testing.assert_array_equal(ours("brightest"), kalmus["Brightest"])


def test_mode_is_within_a_bin_of_kalmus(kalmus):
    # KALMUS: each channel's fullest 10-code bin, its lower edge; ours: the centre of the
    # fullest 16**3 colour bin. On frames with a colour that dominates, both find it. (With
    # SciPy >= 1.11, KALMUS 1.3.14's Mode is a single number, the red channel's: stats.mode
    # no longer keeps the axis, and it takes [0] of the result.)
    theirs = kalmus["Mode"].reshape(4, -1)[:3, 0]
    assert np.abs(ours("mode")[:3, 0] - theirs).max() <= 16


def test_brightness_agrees_with_kalmus_on_grey_frames(kalmus):
    y = ours("brightness") * 255
    assert abs(y[3] - kalmus["Brightness"][3]) < 0.6  # R = G = B: Y and luma coincide
    assert np.abs(y - kalmus["Brightness"]).max() < 20  # elsewhere, close


def test_foreground_median_agrees_with_kalmus_grabcut(kalmus):
    np.testing.assert_allclose(
        ours("median", "foreground")[:3], kalmus["ForegroundMedian"][:3], atol=2
    )
