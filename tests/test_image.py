"""Tests for moviebarcode.image: sizing, resampling, labels and atomic PNG writing."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from moviebarcode import image as I
from moviebarcode._fmt import hms


def _colours(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3), dtype=np.uint8)


def test_flat_columns_size_and_pixels():
    cols = _colours(37)
    img = I.barcode_image(cols, height=20)
    assert img.size == (37, 20) and img.mode == "RGB"
    arr = np.asarray(img)
    # every pixel of column x is colour x
    np.testing.assert_array_equal(arr, np.broadcast_to(cols[None], (20, 37, 3)))


def test_flat_columns_float_input_rounded():
    cols = np.array([[0.4, 127.6, 300.0], [-3.0, 10.5, 254.4]])
    arr = np.asarray(I.barcode_image(cols, height=3))
    assert arr[:, 0].tolist() == [[0, 128, 255]] * 3
    assert arr[:, 1, 0].tolist() == [0] * 3 and arr[0, 1, 2] == 254


def test_default_height():
    assert I.barcode_image(_colours(1600)).size == (1600, 900)
    assert I.barcode_image(_colours(10)).size == (10, 64)
    assert I.barcode_image(_colours(7200)).size == (7200, 1080)
    # the default follows the output width, not the number of columns
    assert I.barcode_image(_colours(7200), width=1600).size == (1600, 900)


def test_full_columns_transposed():
    n, h = 5, 4
    cols = np.zeros((n, h, 3), np.uint8)
    cols[:, : h // 2] = (255, 0, 0)  # top half red
    cols[:, h // 2 :] = (0, 0, 255)
    cols[2] = (0, 255, 0)  # column 2 all green
    img = I.barcode_image(cols)
    assert img.size == (n, h)
    arr = np.asarray(img)
    assert arr[0, 0].tolist() == [255, 0, 0] and arr[h - 1, 0].tolist() == [0, 0, 255]
    assert (arr[:, 2] == [0, 255, 0]).all()
    # vertical resize to a given height keeps the top/bottom split
    big = np.asarray(I.barcode_image(cols, height=40))
    assert big.shape == (40, n, 3)
    assert (big[:20, 0] == [255, 0, 0]).all() and (big[20:, 0] == [0, 0, 255]).all()


def test_width_shrink_averages_with_box():
    # alternating black / white columns shrunk 2:1 -> each output column averages a pair
    cols = np.zeros((100, 3), np.uint8)
    cols[1::2] = 255
    img = I.barcode_image(cols, width=50, height=8)
    assert img.size == (50, 8)
    np.testing.assert_allclose(np.asarray(img, dtype=float), 127.5, atol=1)


def test_width_enlarge_is_crisp():
    cols = _colours(10, seed=4)
    img = I.barcode_image(cols, width=30, height=5)
    arr = np.asarray(img)
    assert img.size == (30, 5)
    # each column becomes a band of 3 identical columns, no blended colours
    np.testing.assert_array_equal(arr[0], np.repeat(cols, 3, axis=0))


def test_bad_shapes():
    with pytest.raises(ValueError):
        I.barcode_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        I.barcode_image(np.zeros((4, 2, 2, 3), np.uint8))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (5, "0:00:05"), (59.6, "0:01:00"), (3723, "1:02:03"), (36000, "10:00:00")],
)
def test_hms(seconds, text):
    assert hms(seconds) == text


def test_tick_step_gives_5_to_10_ticks_for_common_lengths():
    for duration in (2 * 60, 22 * 60, 90 * 60, 3 * 3600):
        step = I.tick_step(duration)
        assert step in I.TICK_STEPS
        assert 4 <= duration / step <= 10


@pytest.mark.parametrize("duration", [2.0, 95.0, 3 * 3600.0])
@pytest.mark.parametrize("title", [None, "Big Buck Bunny (2008)"])
def test_add_labels(duration, title):
    base = I.barcode_image(_colours(800), height=120)
    out = I.add_labels(base, title=title, duration=duration)
    assert out.width == base.width and out.height > base.height
    # the barcode part is untouched
    np.testing.assert_array_equal(np.asarray(out)[: base.height], np.asarray(base))
    # something was drawn in the strip (ticks / labels differ from the background)
    strip = np.asarray(out)[base.height :]
    assert (strip != strip[-1, -1]).any()


def test_add_labels_title_makes_strip_taller():
    base = I.barcode_image(_colours(400), height=50)
    bare = I.add_labels(base, title=None, duration=600)
    titled = I.add_labels(base, title="A title", duration=600)
    assert titled.height > bare.height


def test_add_labels_narrow_and_offset():
    base = I.barcode_image(_colours(20), height=64)
    out = I.add_labels(base, title="x" * 200, duration=7200, start=3600)
    assert out.width == 20
    with pytest.raises(ValueError):
        I.add_labels(base, title=None, duration=0)


def test_tick_labels_never_overlap():
    """Crowded axes (a two-hour film on a narrow barcode): each placed label keeps a gap to
    the others, the ends' labels come first, and a label is dropped rather than overlap."""
    for width in (60, 160, 333):
        xs = [int(round(i / 4 * (width - 1))) for i in range(5)]  # ticks every 30 min
        placed = I._placed_labels(xs, [33] * 5, width, gap=3)
        spans = sorted((left, left + 33) for _, left in placed)
        assert all(b + 3 <= c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))
        assert all(0 <= left and left + 33 <= width for left, _ in spans)
        assert placed[0][0] == 0
        if width >= 2 * 33 + 3:
            assert placed[-1][0] == 4  # the end's label too
    assert len(I._placed_labels(xs, [33] * 5, 333, gap=3)) == 5  # room for all


def test_long_titles_are_shortened_to_fit():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = I._load_font(12)
    title = "Big Buck Bunny (2008), directed by Sacha Goedegebure"
    assert I._fitted(draw, title, font, 1000) == title
    short = I._fitted(draw, title, font, 80)
    assert short.endswith("...") and title.startswith(short[:-3])
    assert I._text_size(draw, short, font)[0] <= 80
    assert I._fitted(draw, title, font, 3) == ""


def test_save_png_round_trip(tmp_path):
    img = I.barcode_image(_colours(30), height=10)
    path = tmp_path / "out.png"
    assert I.save_png(img, path) == path
    with Image.open(path) as back:
        assert back.format == "PNG"
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), np.asarray(img))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp files left
    assert os.stat(path).st_mode & 0o044  # readable by others (not mkstemp's 0600)


def test_save_png_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def boom(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        I.save_png(Image.new("RGB", (2, 2)), path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
