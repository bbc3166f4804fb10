"""Building a view page from a complete store: the clustering asked for (made if missing),
the per-frame statistics, every other cached clustering, the cuts and the thumbnails, in
one HTML file. Never decodes: the store alone is read."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moviebarcode.cluster import Clusters, cluster
from moviebarcode.columns import to_uint8
from moviebarcode.errors import InputError
from moviebarcode.executors import Executor
from moviebarcode.image import atomic_output
from moviebarcode.render import STATS_MODES, check_writable, frame_columns
from moviebarcode.store import FrameStore
from moviebarcode.view import sprites
from moviebarcode.view.options import ViewOptions
from moviebarcode.view.page import page_html
from moviebarcode.view.payload import b64, clusterings, film_data

SQUEEZE_ROWS, SQUEEZE_QUALITY = 120, 85
"""The squeeze barcode's strips: at most this many rows, encoded at this quality."""
PAGE_SUFFIXES = (".html", ".htm")

Progress = Callable[[str, int, int], None]
"""Called with a stage's name ("k=8 rgb", "average", "squeeze", "thumbnails"), the frames
it has done and its total."""


@dataclass
class ViewResult:
    """A page written: where, its size in bytes, its thumbnails' size (None without), how
    many clusterings it offers, the clustering shown first, and the warnings."""

    page: Path
    size: int
    thumbs: tuple[int, int] | None
    clusterings: int
    clusters: Clusters
    seconds: float
    warnings: list[str] = field(default_factory=list)


def default_page_path(store: FrameStore) -> Path:
    """Next to the store, named after it: ``cache/film.zarr`` -> ``cache/film.html``."""
    return store.path.parent / f"{store.path.name.removesuffix('.zarr')}.html"


def page_path(store: FrameStore, output: str | os.PathLike | None) -> Path:
    """The page's path, checked to be writable before any work is done."""
    out = Path(output) if output is not None else default_page_path(store)
    if out.suffix.lower() not in PAGE_SUFFIXES:
        raise InputError(f"{out}: the page is written as HTML; give a .html file name")
    check_writable(out)
    return out


def _stage(progress: Progress | None, name: str, total: int):
    """A frame-count callback for one stage, or None."""
    if progress is None:
        return None
    return lambda done: progress(name, done, total)


def _data(store: FrameStore, opts: ViewOptions, clusters: Clusters, progress, warnings) -> dict:
    """The page's data without the thumbnails (see ``moviebarcode.view.payload``)."""
    stats = {
        mode: frame_columns(
            store,
            mode,
            gamma_correct=opts.gamma_correct,
            batch_frames=opts.batch_frames,
            progress=_stage(progress, mode, store.frames_done),
            warnings=warnings,
        )
        for mode in STATS_MODES
    }
    data = film_data(store, opts.title)
    data["clusterings"] = clusterings(store, opts.cluster, clusters)
    data["average"] = b64(to_uint8(stats["average"]), "u1")
    data["squeeze"] = sprites.strips(
        stats["squeeze"], SQUEEZE_ROWS, opts.thumb_format, SQUEEZE_QUALITY
    )
    data["initial"] = {"mode": opts.mode, "clustering": 0}
    return data


def _thumbs(store: FrameStore, opts: ViewOptions, room: int, progress, warnings) -> dict | None:
    """The thumbnails' sheets: ``opts.thumb_width`` wide, or as wide as ``room`` bytes allow."""
    width = opts.thumb_width
    if width is None:
        width = sprites.fit_width(store, room, opts.thumb_format, opts.thumb_quality)
        if width == 0:
            warnings.append(
                f"the page's budget ({opts.budget_mb:g} MB) leaves no room for thumbnails; "
                "give --thumb-width or a larger --budget"
            )
    if width == 0:
        return None
    spec = sprites.thumb_spec(store, width, opts.thumb_format, opts.thumb_quality)
    return sprites.sheets(store, spec, _stage(progress, "thumbnails", store.frames_done))


def build_view(
    store_path: str | os.PathLike,
    opts: ViewOptions,
    *,
    output: str | os.PathLike | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> ViewResult:
    """Write the view page of a complete store (default: ``default_page_path``).

    The clustering ``opts.cluster`` is read from the store's cache or made (on
    ``executor``, default this process, see ``moviebarcode.cluster.cluster``) and cached;
    so are the average and squeeze statistics. Returns what was written."""
    t0 = time.perf_counter()
    store = FrameStore.open(store_path)
    store.require_complete()
    out = page_path(store, output)
    warnings: list[str] = []
    p = opts.cluster
    clusters = cluster(
        store,
        p,
        executor=executor,
        recompute=opts.recompute,
        batch_frames=opts.batch_frames,
        progress=_stage(progress, f"k={p.k} {p.space}", store.frames_done),
    )
    data = _data(store, opts, clusters, progress, warnings)
    room = int(opts.budget_mb * 1e6) - len(page_html(data, None).encode("utf-8"))
    thumbs = _thumbs(store, opts, room, progress, warnings)
    text = page_html(data, thumbs).encode("utf-8")
    try:
        with atomic_output(out) as tmp:
            tmp.write_bytes(text)
    except OSError as exc:
        raise InputError(f"{out}: cannot write it ({exc.strerror or exc})") from None
    size = (thumbs["width"], thumbs["height"]) if thumbs else None
    seconds = time.perf_counter() - t0
    notes = [*clusters.warnings, *warnings]
    return ViewResult(out, len(text), size, len(data["clusterings"]), clusters, seconds, notes)
