"""The circular layout: wedges clockwise from 12 o'clock, stacked bands as rings, by-shot
wedges as wide as the shots, anti-aliased edges, a transparent or black background, a
square of --size, clock labels, and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from colourstores import colour_store
from PIL import Image

from moviebarcode.circular import add_clock_labels, circular_image
from moviebarcode.cli import cli
from moviebarcode.errors import ParameterError
from moviebarcode.render import RenderOptions, image_file_name, render
from moviebarcode.store import FrameStore

COLOURS = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 255),
    (128, 128, 128),
]


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    """Eight frames a second apart, each one solid colour."""
    return colour_store(tmp_path_factory.mktemp("eight") / "e.zarr", COLOURS)


def at(img: Image.Image, degrees: float, fraction: float):
    """The pixel at ``degrees`` clockwise from 12 o'clock, ``fraction`` of the radius out."""
    c = img.width / 2
    a = math.radians(degrees)
    r = fraction * img.width / 2
    return img.getpixel((int(c + r * math.sin(a)), int(c - r * math.cos(a))))


def test_wedges_run_clockwise_from_twelve(eight, tmp_path):
    out = tmp_path / "c.png"
    render(eight, RenderOptions(mode="average", layout="circular", size=240), output=out)
    img = Image.open(out)
    assert img.size == (240, 240) and img.mode == "RGB"
    for i, colour in enumerate(COLOURS):
        for frac in (0.3, 0.6, 0.9):
            assert at(img, (i + 0.5) * 45, frac) == colour, (i, frac)
    assert at(img, 3, 0.8) == COLOURS[0]  # just right of 12 o'clock: t = 0
    assert at(img, 357, 0.8) == COLOURS[-1]  # just left: the end
    assert img.getpixel((0, 0)) == (0, 0, 0)


def test_transparent_background_and_antialiased_rim(eight, tmp_path):
    out = tmp_path / "t.png"
    opts = RenderOptions(mode="average", layout="circular", size=101, background="transparent")
    render(eight, opts, output=out)
    img = Image.open(out)
    assert img.mode == "RGBA" and img.size == (101, 101)
    alpha = np.asarray(img)[..., 3]
    assert alpha[0, 0] == 0 and alpha[0, -1] == 0 and alpha[-1, 0] == 0
    assert alpha[50, 50] == 255 and at(img, 100, 0.5) == (*COLOURS[2], 255)
    partial = (alpha > 0) & (alpha < 255)
    assert partial.sum() > 50  # the rim is blended, not stair-stepped


def test_rows_become_rings():
    linear = np.zeros((10, 4, 3), np.uint8)
    linear[:5] = (255, 0, 0)  # the top half of every column: the outer ring
    linear[5:] = (0, 0, 255)
    img = circular_image(Image.fromarray(linear), 200)
    for deg in (10, 100, 190, 280):
        assert at(img, deg, 0.75) == (255, 0, 0) and at(img, deg, 0.25) == (0, 0, 255)


def test_shots_are_wedges_as_wide_as_they_last(tmp_path):
    path = colour_store(tmp_path / "s.zarr", [COLOURS[0]] * 2 + [COLOURS[2]] * 6)
    FrameStore.open(path, writable=True).set_cuts(
        np.array([2.0]), {"detector": "content-hsv", "threshold": 27.0}
    )
    out = tmp_path / "s.png"
    opts = RenderOptions(mode="average", by="shot", layout="circular", size=200)
    render(path, opts, output=out)
    img = Image.open(out)
    assert at(img, 45, 0.7) == COLOURS[0] and at(img, 85, 0.7) == COLOURS[0]
    assert at(img, 95, 0.7) == COLOURS[2] and at(img, 300, 0.7) == COLOURS[2]


def test_label_draws_ticks_and_keeps_the_square(eight, tmp_path):
    out = tmp_path / "l.png"
    opts = RenderOptions(mode="average", layout="circular", size=300, label=True)
    render(eight, opts, output=out)
    img = np.asarray(Image.open(out).convert("L"))
    assert img.shape == (300, 300)
    disc_top = 150 - (150 - 6 * 10)  # the disc shrinks to leave room for the labels
    assert img[disc_top - 8 : disc_top, 147:154].max() > 100  # the 0:00:00 tick above
    assert img[disc_top + 5, 155] > 0  # the disc below the rim, red (luma > 0)
    assert img[: disc_top - 12, 120:180].max() > 150  # its label


def test_clock_labels_on_transparent_keep_alpha():
    disc = circular_image(Image.new("RGB", (4, 4), (9, 9, 9)), 120, background="transparent")
    img = add_clock_labels(disc, title="x", duration=7200.0)
    assert img.mode == "RGBA" and img.size == (120, 120)


def test_options_and_file_name():
    with pytest.raises(ParameterError, match="--layout"):
        RenderOptions(layout="spiral")
    with pytest.raises(ParameterError, match="--background"):
        RenderOptions(background="white")
    with pytest.raises(ParameterError, match="--size"):
        RenderOptions(size=8)
    opts = RenderOptions(mode="average", layout="circular")
    assert image_file_name("m", opts) == "m-average-circular.png"


def test_cli(eight, tmp_path):
    out = tmp_path / "cli.png"
    args = ["render", str(eight), "--mode", "average", "--layout", "circular", "--size", "64"]
    res = CliRunner().invoke(cli, [*args, "--background", "transparent", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert Image.open(out).size == (64, 64)
    res = CliRunner().invoke(cli, [*args[:-1], "8", "-o", str(out)])
    assert res.exit_code == 2
