"""The view page's figures and its screenshot, measured in Chromium through Playwright.

figures STORE... [--repeat N]
    Build each store's page with the default options (clustering k=8 if the store lacks
    it) and report: the page's size, its thumbnails, the build time, and in Chromium
    (medians of N fresh loads) the time from the start of navigation to the page's ready
    mark (the data read, the barcode drawn, every control bound), the time to interactive
    (the later of the ready mark and the end of the last long task in the 2 s after it),
    and the time from the first hover to its thumbnail drawn (a sheet is decoded on first
    use).
screenshot [STORE] [-o docs/view.png]
    The page of STORE (default: the Big Buck Bunny trailer of tests/data, prepped into a
    temporary folder at --every 4) at 1280x720, a column pinned, as an optimised PNG.

Chromium: $MOVIEBARCODE_CHROMIUM, else chromium on PATH (Debian's: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from moviebarcode.prep import PrepRequest, prep
from moviebarcode.store import FrameStore
from moviebarcode.view import ViewOptions, build_view

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 720}


def chromium() -> str:
    found = os.environ.get("MOVIEBARCODE_CHROMIUM") or shutil.which("chromium")
    if not found:
        sys.exit("no Chromium: apt-get install chromium, or set MOVIEBARCODE_CHROMIUM")
    return found


LONG_TASKS = """
window.mbLongTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.mbLongTasks.push(e.startTime + e.duration);
}).observe({ type: "longtask", buffered: true });
"""
QUIET_MS = 2000
"""How long after its ready mark a page is watched for long tasks."""


def load(browser, page_path: Path) -> tuple[float, float, float, float, object]:
    """Open the page in a fresh context: (ms to the ready mark, ms to interactive: the
    later of the ready mark and the end of the last long task (over 50 ms) in the
    ``QUIET_MS`` after it, ms from the first hover to its thumbnail, ms of the page's
    script before its ready mark, the context)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    page.goto(page_path.as_uri())
    page.wait_for_selector("html[data-ready]")
    page.wait_for_timeout(QUIET_MS)
    ready = page.evaluate("window.mbReady")
    script = ready - page.evaluate("window.mbStart")
    tasks = page.evaluate("window.mbLongTasks")
    interactive = max([ready, *(t for t in tasks if t <= ready + QUIET_MS)])
    box = page.locator("#stage").bounding_box()
    n = page.evaluate("window.moviebarcode.n")
    i = n // 2
    t0 = time.perf_counter()
    page.mouse.move(box["x"] + (i + 0.5) / n * box["width"], box["y"] + 20)
    page.wait_for_selector(f"#thumb[data-index='{i}']")
    return ready, interactive, 1000 * (time.perf_counter() - t0), script, context


def figures(stores: list[Path], repeat: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
        for store in stores:
            out = Path(tmp) / f"{store.name}.html"
            build_view(store, ViewOptions(), output=out)  # clusters and statistics cached
            t0 = time.perf_counter()
            result = build_view(store, ViewOptions(), output=out)
            build = time.perf_counter() - t0
            ready, interactive, thumb, script = [], [], [], []
            for _ in range(repeat):
                r, i, t, s, context = load(browser, out)
                ready.append(r)
                interactive.append(i)
                thumb.append(t)
                script.append(s)
                context.close()
            print(store.name, "interactive ms, load by load:", [round(v) for v in interactive])
            print(store.name, "of which the page's script, ms:", [round(v) for v in script])
            fs = FrameStore.open(store)
            rows.append(
                (
                    f"{store.name} ({fs.frames_done:,} frames)",
                    f"{result.size / 1e6:.2f}",
                    "{}x{}".format(*result.thumbs) if result.thumbs else "none",
                    f"{build:.1f}",
                    f"{statistics.median(ready):.0f}",
                    f"{statistics.median(interactive):.0f} "
                    f"({min(interactive):.0f}-{max(interactive):.0f})",
                    f"{statistics.median(thumb):.0f}",
                )
            )
        browser.close()
    head = (
        "store",
        "MB",
        "thumbnails",
        "build s",
        "ready ms",
        "interactive ms",
        "first thumbnail ms",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def screenshot(store: Path | None, output: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if store is None:
            movie = ROOT / "tests" / "data" / "bbb_trailer_h264.mp4"
            store = prep(movie, PrepRequest(every=4), output=Path(tmp) / "bbb_trailer.zarr").store
        page_path = Path(tmp) / "view.html"
        build_view(store, ViewOptions(title="Big Buck Bunny (trailer)"), output=page_path)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(page_path.as_uri())
            page.wait_for_selector("html[data-ready]")
            n = page.evaluate("window.moviebarcode.n")
            box = page.locator("#stage").bounding_box()
            i = int(n * 0.62)
            page.mouse.click(box["x"] + (i + 0.5) / n * box["width"], box["y"] + 40)
            page.wait_for_selector(f"#thumb[data-index='{i}']")
            page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 40)
            page.wait_for_timeout(300)  # the palette panel is computed after a pause
            png = page.screenshot()
            browser.close()
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    output.parent.mkdir(parents=True, exist_ok=True)
    img.save(output, optimize=True)
    print(f"{output} ({output.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("figures")
    f.add_argument("stores", nargs="+", type=Path)
    f.add_argument("--repeat", type=int, default=5)
    s = sub.add_parser("screenshot")
    s.add_argument("store", nargs="?", type=Path)
    s.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "view.png")
    a = ap.parse_args()
    if a.command == "figures":
        figures(a.stores, a.repeat)
    else:
        screenshot(a.store, a.output)


if __name__ == "__main__":
    main()
