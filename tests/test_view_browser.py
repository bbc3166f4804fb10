"""The view page in a real browser (Playwright driving the system's Chromium): it opens from
a file without a request or a console error; hovering column i shows the store's time,
frame number, colours and frame; the keyboard steps columns; a click pins; the mode switch
redraws; a zoomed range has its own axis, minimap window and palette; the exports and the
screenshot are not blank.

Skipped, with the reason, where Playwright or Chromium is missing (``.ci/run`` installs
Debian's Chromium; ``MOVIEBARCODE_CHROMIUM`` names another binary)."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from viewpages import timecode, trailer_store

from moviebarcode.cluster import ClusterParams, cached_clusters
from moviebarcode.shots import shots_of
from moviebarcode.store import FrameStore
from moviebarcode.view import ViewOptions, build_view
from moviebarcode.view.payload import ranked

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra is not installed
    sync_playwright = None

CHROMIUM = (
    os.environ.get("MOVIEBARCODE_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None, reason="Playwright is not installed (pip install playwright)"
    ),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium found (apt-get install chromium, or set MOVIEBARCODE_CHROMIUM)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """The trailer's store, its page, and what the page should show."""
    d = tmp_path_factory.mktemp("viewpage")
    store = FrameStore.open(trailer_store(d / "trailer.zarr"))
    page = d / "trailer.html"
    build_view(store.path, ViewOptions(), output=page)
    clusters = cached_clusters(store, ClusterParams())
    colours, units = ranked(clusters.centres, clusters.shares)
    return {"store": store, "page": page, "n": store.frames_done, "times": store.times,
            "indices": store.indices, "colours": colours, "units": units}  # fmt: skip


class Opened:
    """A page opened in a fresh browser context, with the requests it made and its errors."""

    def __init__(self, browser, path, bypass_csp=True):
        # the tests' own waits evaluate strings, which the page's policy forbids
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 800}, bypass_csp=bypass_csp
        )
        self.page = self.context.new_page()
        self.requests, self.errors = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.url = path.as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready]")

    def state(self) -> dict:
        return self.page.evaluate("window.moviebarcode.state")

    def column_x(self, i: int, a: float = 0, b: float | None = None) -> tuple[float, float]:
        """The middle of column i on the screen, the range [a, b) shown."""
        b = self.page.evaluate("window.moviebarcode.n") if b is None else b
        box = self.page.locator("#stage").bounding_box()
        return box["x"] + (i + 0.5 - a) / (b - a) * box["width"], box["y"] + box["height"] / 2

    def hover(self, i: int, **kw) -> None:
        self.page.mouse.move(*self.column_x(i, **kw))
        self.page.wait_for_function(f"window.moviebarcode.state.shown === {i}")

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector).strip()

    def canvas(self, selector: str) -> bytes:
        url = self.page.evaluate(f"document.querySelector('{selector}').toDataURL()")
        return url.encode()


@pytest.fixture
def opened(browser, film):
    o = Opened(browser, film["page"])
    yield o
    o.context.close()


def swatches(o: Opened, selector: str = "#swatches li") -> list[tuple[str, float]]:
    items = o.page.locator(selector)
    return [
        (items.nth(j).get_attribute("data-hex"), float(items.nth(j).get_attribute("data-share")))
        for j in range(items.count())
    ]


def expected_swatches(film, i: int) -> list[tuple[str, float]]:
    c, u = film["colours"][i], film["units"][i]
    return [("#{:02x}{:02x}{:02x}".format(*c[j]), u[j] / 10000) for j in range(len(u)) if u[j]]


def test_opens_from_a_file_without_requests_or_errors(browser, film):
    opened = Opened(browser, film["page"], bypass_csp=False)
    try:
        opened.page.mouse.move(*opened.column_x(5))  # no waiting on a function: the page's
        opened.page.wait_for_selector("#thumb[data-index='5']")  # policy forbids its eval
        assert 0 < opened.page.evaluate("window.mbReady") < 5000
        assert opened.requests == [opened.url]  # the page itself, nothing else
        assert opened.errors == []
    finally:
        opened.context.close()


def test_hover_shows_the_time_frame_and_colours_of_the_column(opened, film):
    for i in (0, 1, 23, film["n"] // 2, film["n"] - 1):
        opened.hover(i)
        t = film["times"][i]
        assert opened.text("#d-time") == timecode(t)
        assert float(opened.page.get_attribute("#d-time", "data-seconds")) == t
        assert opened.text("#d-frame") == str(film["indices"][i])
        assert opened.text("#d-column") == f"{i} of {film['n']}"
        assert swatches(opened) == expected_swatches(film, i)
    assert opened.errors == []


def test_the_thumbnail_is_the_frame(opened, film):
    i = film["n"] // 3
    opened.hover(i)
    opened.page.wait_for_selector(f"#thumb[data-index='{i}']")
    mean = opened.page.evaluate(
        """() => { const c = document.getElementById('thumb');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const s = [0, 0, 0];
        for (let j = 0; j < d.length; j += 4) { s[0] += d[j]; s[1] += d[j + 1]; s[2] += d[j + 2]; }
        return s.map((v) => v / (d.length / 4)); }"""
    )
    frame = film["store"].frames[i].reshape(-1, 3).mean(0)
    assert np.abs(np.array(mean) - frame).max() < 6


def test_the_keyboard_steps_columns(opened, film):
    n = film["n"]
    opened.hover(10)
    opened.page.focus("#stage")
    opened.page.keyboard.press("ArrowRight")
    assert opened.state()["pinned"] == 11
    assert opened.text("#d-time") == timecode(film["times"][11])
    opened.page.keyboard.press("Shift+ArrowLeft")
    assert opened.state()["shown"] == 1
    opened.page.keyboard.press("End")
    assert opened.text("#d-column") == f"{n - 1} of {n}"
    opened.page.keyboard.press("Home")
    assert opened.text("#d-frame") == str(film["indices"][0])
    assert opened.page.get_attribute("#stage", "aria-valuenow") == "0"


def test_a_click_pins_the_column(opened, film):
    opened.page.mouse.click(*opened.column_x(7))
    opened.page.mouse.move(*opened.column_x(30))
    assert opened.state()["pinned"] == 7
    assert opened.text("#d-time") == timecode(film["times"][7])
    assert opened.page.is_visible("#unpin")
    opened.page.click("#unpin")
    opened.hover(30)
    assert opened.text("#d-time") == timecode(film["times"][30])


def test_switching_the_mode_redraws_the_barcode(opened):
    before = opened.canvas("#barcode")
    seen = {before}
    for mode in ("dominant", "average", "equal", "squeeze"):
        opened.page.select_option("#mode", mode)
        opened.page.wait_for_function(f"document.getElementById('stage').dataset.mode === '{mode}'")
        if mode == "squeeze":  # drawn once its strip is decoded
            opened.page.wait_for_function(
                "document.getElementById('stage').dataset.draws > 2", timeout=5000
            )
        after = opened.canvas("#barcode")
        assert after not in seen, mode
        seen.add(after)
    assert opened.errors == []


def test_a_zoomed_range_has_its_own_axis_minimap_and_palette(opened, film):
    n, times = film["n"], film["times"]
    whole_step = float(opened.page.get_attribute("#axis", "data-step"))
    assert opened.text("#palette-heading") == "Palette of the whole film"
    opened.page.mouse.move(*opened.column_x(10))
    opened.page.mouse.down()
    opened.page.mouse.move(*opened.column_x(29), steps=5)
    opened.page.mouse.up()
    opened.page.wait_for_function("window.moviebarcode.state.b === 30")
    assert opened.state()["a"] == 10
    opened.page.wait_for_selector("#axis[data-span='10-30']")  # redrawn on the next frame
    step = float(opened.page.get_attribute("#axis", "data-step"))
    ticks = opened.page.eval_on_selector_all("#axis .tick", "e => e.map(x => +x.dataset.t)")
    assert step < whole_step and len(ticks) >= 2
    assert times[10] - 1e-6 <= min(ticks) and max(ticks) <= times[30] + 1e-6
    assert np.allclose(np.diff(ticks), step)
    window = opened.page.locator("#mini-window").bounding_box()
    mini = opened.page.locator("#mini").bounding_box()
    assert window["width"] == pytest.approx(mini["width"] * 20 / n, abs=3)
    opened.page.wait_for_selector("#palette[data-range='10-30']")
    assert opened.text("#palette-heading").startswith(f"Palette of {timecode(times[10])}")
    opened.hover(15, a=10, b=30)  # the columns are wider now
    assert opened.text("#d-time") == timecode(times[15])
    opened.page.mouse.wheel(0, -400)
    opened.page.wait_for_function("(s => s.b - s.a < 20)(window.moviebarcode.state)")
    opened.page.click("#zoom-reset")
    opened.page.wait_for_function(f"window.moviebarcode.state.b === {n}")
    assert opened.state()["a"] == 0


def test_the_exports(opened, film):
    with opened.page.expect_download() as png:
        opened.page.click("#export-png")
    img = Image.open(png.value.path())
    assert img.size[0] >= 1000 and np.asarray(img.convert("RGB")).std() > 20
    opened.page.evaluate("window.moviebarcode.setRange(5, 25)")
    opened.page.wait_for_selector("#palette[data-range='5-25']")
    with opened.page.expect_download() as js:
        opened.page.click("#export-json")
    doc = json.loads(open(js.value.path()).read())
    assert (doc["k"], doc["space"], doc["range"]["columns"]) == (8, "rgb", [5, 25])
    assert [f["index"] for f in doc["frames"]] == film["indices"][5:25].tolist()
    for i, f in zip(range(5, 25), doc["frames"], strict=True):
        hexes = ["#{:02x}{:02x}{:02x}".format(*c) for c in f["colors"]]
        assert list(zip(hexes, f["shares"], strict=True)) == expected_swatches(film, i)
    assert sum(doc["palette"]["shares"]) == pytest.approx(1)
    assert swatches(opened, "#palette li") == [
        ("#{:02x}{:02x}{:02x}".format(*c), s)
        for c, s in zip(doc["palette"]["colors"], doc["palette"]["shares"], strict=True)
    ]


def test_copy_time_code(opened, film):
    opened.hover(12)
    opened.page.focus("#copy-time")
    opened.page.keyboard.press("Enter")
    opened.page.wait_for_function("document.getElementById('status').textContent !== ''")
    assert opened.text("#status") == f"Copied {timecode(film['times'][12])}"


def test_shots_and_cut_marks(opened, film):
    shots = shots_of(film["store"])
    assert shots.n > 1
    assert opened.page.is_visible("#shots") and opened.page.is_visible("#d-shot")
    opened.hover(film["n"] - 1)
    assert opened.text("#d-shot").startswith(f"{shots.n} of {shots.n} (")
    before = opened.canvas("#barcode")
    opened.page.check("#cuts")
    opened.page.wait_for_function("document.getElementById('stage').dataset.draws > 1")
    assert opened.canvas("#barcode") != before


def test_the_screenshot_is_not_blank(opened, tmp_path):
    opened.hover(20)
    shot = np.asarray(Image.open(io.BytesIO(opened.page.screenshot())).convert("RGB"))
    box = opened.page.locator("#stage").bounding_box()
    x, y, w, h = (int(box[v]) for v in ("x", "y", "width", "height"))
    bar = shot[y : y + h, x : x + w]
    assert bar.std() > 20 and shot.std() > 20
    assert len(np.unique(bar.reshape(-1, 3), axis=0)) > 50
