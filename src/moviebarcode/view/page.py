"""The page itself: the HTML template, its style and its script (package data in
``moviebarcode/view/assets``), with the data inlined, as one self-contained file.

Nothing is fetched: the page's Content-Security-Policy allows no request at all (images
only from ``data:`` and ``blob:`` URIs), so a page that tried would fail loudly.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from moviebarcode import __version__

ASSETS = ("view.html", "view.css", "view.js")
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def asset(name: str) -> str:
    """The text of one of the page's files."""
    return resources.files("moviebarcode.view").joinpath("assets", name).read_text("utf-8")


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: every ``<`` escaped, so
    that no ``</script>`` or ``<!--`` can end or change it."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def sheet_elements(sheets: list[str]) -> str:
    """The thumbnails' sheets (base64), one ``<script type="text/plain">`` each: the page
    reads the one it needs when it needs it, never parsing the others."""
    return "".join(f'<script type="text/plain" class="mb-sheet">{s}</script>\n' for s in sheets)


def page_html(data: dict, thumbs: dict | None) -> str:
    """The whole page: the template with its slots filled (each filled once, in one pass,
    so no slot's content is read as a slot). ``thumbs`` holds the sheets (``sheets``, base64
    strings) and how to read them."""
    title = str(data["title"]) or "Movie barcode"
    meta = None if thumbs is None else {k: v for k, v in thumbs.items() if k != "sheets"}
    slots = {
        "TITLE": html.escape(title),
        "SOURCE": html.escape(str(data.get("source", ""))),
        "VERSION": html.escape(__version__),
        "CSS": asset("view.css"),
        "JS": asset("view.js"),
        "DATA": script_json(data),
        "THUMBS": script_json(meta),
        "SHEETS": sheet_elements(thumbs["sheets"] if thumbs else []),
    }
    return _SLOT.sub(lambda m: slots[m.group(1)], asset("view.html"))
