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


def page_html(data: dict, thumbs: dict | None) -> str:
    """The whole page: the template with its slots filled (each filled once, in one pass,
    so no slot's content is read as a slot)."""
    title = str(data["title"]) or "Movie barcode"
    slots = {
        "TITLE": html.escape(title),
        "SOURCE": html.escape(str(data.get("source", ""))),
        "VERSION": html.escape(__version__),
        "CSS": asset("view.css"),
        "JS": asset("view.js"),
        "DATA": script_json(data),
        "THUMBS": script_json(thumbs),
    }
    return _SLOT.sub(lambda m: slots[m.group(1)], asset("view.html"))
