"""Helpers of the view page's tests: a small store to build pages from, and the page's data
read back as Python sees it."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np

from conftest import DATA
from moviebarcode.prep import PrepRequest, prep


def trailer_store(folder: Path, every: int = 12) -> Path:
    """The Big Buck Bunny trailer, every ``every``-th frame at 160x90, with its shot cuts."""
    return prep(DATA / "bbb_trailer_h264.mp4", PrepRequest(every=every), output=folder).store


def script_json(html: str, element: str):
    """The JSON of the page's ``<script type="application/json" id=element>``."""
    m = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert m, f"no #{element} in the page"
    return json.loads(m.group(1))


def sheets(html: str) -> list[str]:
    """The thumbnails' sheets of the page, base64, in order."""
    return re.findall(r'<script type="text/plain" class="mb-sheet">([^<]*)</script>', html)


def array(b64: str, dtype: str) -> np.ndarray:
    """A base64 array of the page's data."""
    return np.frombuffer(base64.b64decode(b64), dtype=dtype)


def timecode(t: float) -> str:
    """The page's time code: h:mm:ss.s, the tenth truncated."""
    d = max(0, math.floor(t * 10 + 1e-6))
    s = d // 10
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}.{d % 10}"
