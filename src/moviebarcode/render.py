"""Stage two: from a complete frame store to a barcode image (and optionally a palette file).

Never decodes: it reads only the store. Clusterings come from ``moviebarcode.cluster``
(cached in the store), and the per-frame statistics of the average and squeeze modes are
cached there too, so rendering again with another mode, size, sort or label reuses them.

By frame (the default), each sampled frame is one column. By shot (a store with cuts),
each shot is one band as wide as its duration (``moviebarcode.shots``): its clusters come
from all its frames together (``moviebarcode.shotcluster``, cached too), its average and
squeeze from the mean of its frames' cached statistics.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moviebarcode import columns as cols
from moviebarcode import metrics
from moviebarcode.cache import ResultCache
from moviebarcode.choices import (
    Background,
    By,
    ClusterMode,
    Colormap,
    Layout,
    Mode,
    Region,
    Sort,
    check,
    values,
)
from moviebarcode.circular import add_clock_labels, circular_image, clock_margin
from moviebarcode.cluster import ClusterParams, Clusters, cluster, not_cached
from moviebarcode.device import LoadStats
from moviebarcode.errors import InputError, ParameterError
from moviebarcode.executors import Executor
from moviebarcode.image import (
    add_cut_marks,
    add_labels,
    barcode_image,
    default_height,
    save_png,
)
from moviebarcode.palette import write_palette, write_shot_palette
from moviebarcode.regioncluster import cluster_region
from moviebarcode.shotcluster import cluster_shots
from moviebarcode.shots import Shots, band_widths, cut_columns, shot_means, shots_of
from moviebarcode.store import FrameStore

CLUSTER_MODES = values(ClusterMode)
STATS_MODES = ("average", "squeeze")
FRAME_MODES = ("squeeze", *metrics.METRIC_MODES)
"""The modes drawn from per-frame statistics (``frame_columns``), without clustering."""
REGION_MODES = (*metrics.METRIC_MODES, "squeeze")
"""The modes that read a region of each frame's statistics (``--region``); the cluster modes
cluster a region by frame (``moviebarcode.regioncluster``), not by shot."""
STATS_BYTES = 16 * 1024 * 1024
"""Bytes of frames per batch of the per-frame statistics: memory is bounded in bytes, at any
frame size (linear light makes a float32 copy of the batch, four times its size)."""

Progress = Callable[[int], None]
"""Called with the number of frames done so far."""


@dataclass(frozen=True)
class RenderOptions:
    """How to draw a barcode; validated on creation. ``cluster`` holds the clustering's
    parameters (k, space, engine...); ``width``/``height`` the image size (None: one column
    per frame, 9/16 of the width high, or the frames' height for squeeze). ``by`` "shot"
    draws one band per shot (the store needs cuts); ``cuts`` marks each cut. ``layout``
    "circular" wraps the barcode into a disc on a ``size`` square (``moviebarcode.circular``)
    on a black or transparent ``background``; ``height`` is then the linear barcode's
    before wrapping (default: the disc's radius)."""

    mode: Mode = "stacked"
    region: Region = "whole"
    colormap: Colormap = "grey"
    by: By = "frame"
    cuts: bool = False
    cluster: ClusterParams = field(default_factory=ClusterParams)
    sort: Sort = "share"
    width: int | None = None
    height: int | None = None
    gamma_correct: bool = True
    label: bool = False
    title: str | None = None
    palette: Path | None = None
    recompute: bool = False
    batch_frames: int | None = None
    layout: Layout = "linear"
    size: int = 1024
    background: Background = "black"

    def __post_init__(self):
        check(Mode, self.mode, "mode")
        check(Layout, self.layout, "--layout")
        check(Background, self.background, "--background")
        if self.size < 16:
            raise ParameterError("--size must be at least 16")
        check(Region, self.region, "--region")
        check(Colormap, self.colormap, "--colormap")
        if self.colormap != "grey" and self.mode != "brightness":
            raise ParameterError(f"--colormap draws --mode brightness, not {self.mode}")
        if self.region != "whole" and self.by == "shot" and self.mode in CLUSTER_MODES:
            raise ParameterError(
                f"--region {self.region} with --by shot needs a per-frame mode "
                f"({', '.join(REGION_MODES)}); {self.mode} takes a region by frame only"
            )
        check(By, self.by, "--by")
        check(Sort, self.sort, "sort")
        for name in ("width", "height", "batch_frames"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ParameterError(f"--{name.replace('_', '-')} must be at least 1")
        if self.palette is not None and Path(self.palette).suffix.lower() not in (".json", ".csv"):
            raise ParameterError(f"{self.palette}: the palette is written as .json or .csv")

    @property
    def needs_clusters(self) -> bool:
        return self.mode in CLUSTER_MODES or self.palette is not None


@dataclass
class RenderResult:
    image: Path
    palette: Path | None
    clusters: Clusters | None
    seconds: float
    load: LoadStats | None = None
    warnings: list[str] = field(default_factory=list)
    shots: Shots | None = None


def image_file_name(stem: str, opts: RenderOptions) -> str:
    """<stem>-<mode>[-<region>][-<colormap>][-shots].png; cluster modes:
    <stem>-<mode>-k<k>[-lab][-<region>][-shots].png"""
    by = "-shots" if opts.by == "shot" else ""
    by += "-circular" if opts.layout == "circular" else ""
    if opts.mode not in CLUSTER_MODES:
        region = "" if opts.region == "whole" else f"-{opts.region}"
        region += "" if opts.colormap == "grey" else f"-{opts.colormap}"
        return f"{stem}-{opts.mode}{region}{by}.png"
    lab = "-lab" if opts.cluster.space == "lab" else ""
    lab += "" if opts.region == "whole" else f"-{opts.region}"
    return f"{stem}-{opts.mode}-k{opts.cluster.k}{lab}{by}.png"


def default_image_path(store: FrameStore, opts: RenderOptions) -> Path:
    """Next to the store, named after it and the mode."""
    return store.path.parent / image_file_name(store.path.name.removesuffix(".zarr"), opts)


def stats_name(mode: str, gamma_correct: bool, region: str = "whole") -> str:
    """The cache name of a per-frame statistic (of a region other than the whole frame:
    named after it)."""
    name = f"{mode}-{'linear' if gamma_correct else 'naive'}"
    return name if region == "whole" else f"{name}-{region}"


def _stats_fn(mode: str, region: str, gamma_correct: bool):
    """The batch function of a per-frame statistic."""
    if mode == "squeeze" and region == "whole":
        return lambda frames: cols.squeeze_columns(frames, gamma_correct=gamma_correct)
    if mode == "squeeze":
        return lambda frames: metrics.squeeze_region(frames, region, gamma_correct=gamma_correct)
    if mode == "average" and region == "whole":
        return lambda frames: cols.average_colours(frames, gamma_correct=gamma_correct)
    return lambda frames: metrics.frame_metric(
        frames, mode, region=region, gamma_correct=gamma_correct
    )


def frame_columns(
    store: FrameStore,
    mode: str,
    *,
    gamma_correct: bool = True,
    region: Region = "whole",
    batch_frames: int | None = None,
    progress: Progress | None = None,
    warnings: list[str] | None = None,
) -> np.ndarray:
    """Per-frame statistics that need no clustering: ``squeeze`` (n, h, 3), ``brightness``
    (n,) luminance 0..1, the others (n, 3) (``moviebarcode.metrics``), float32 sRGB 0..255,
    of ``region`` of each frame, computed batch by batch from the store once, then cached
    in it under the mode and region (where the store cannot be written, a line saying so
    goes to ``warnings``)."""
    if mode not in FRAME_MODES:
        raise ParameterError(f"frame columns are {', '.join(FRAME_MODES)}, not {mode!r}")
    store.require_complete()
    cache = ResultCache(store)
    name = stats_name(mode, gamma_correct, region)
    cached = cache.load_stats(name)
    if cached is not None:
        return cached
    fn = _stats_fn(mode, region, gamma_correct)
    parts = []
    h, w = store.frame_shape
    step = batch_frames or max(1, STATS_BYTES // (h * w * 3))
    for start, frames in store.iter_batches(step):
        parts.append(fn(frames))
        if progress:
            progress(start + len(frames))
    values_ = np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)
    params = {"mode": mode, "gamma_correct": gamma_correct, "region": region}
    try:
        cache.save_stats(name, values_, params)
    except OSError as exc:
        if warnings is not None:
            warnings.append(not_cached(store, exc))
    return values_


def _output_path(store: FrameStore, opts: RenderOptions, output) -> Path:
    """The image's path, once it and the palette's are known to be writable: checked before
    any work, so that no clustering is wasted on an output that cannot be written."""
    out = Path(output) if output is not None else default_image_path(store, opts)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the barcode is written as PNG; give a .png file name")
    for path in (out, opts.palette):
        if path is not None:
            check_writable(Path(path))
    return out


def check_writable(path: Path) -> None:
    """InputError unless a file can be written (or replaced) at ``path``."""
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder {folder} is not writable")


def _written(path: Path, write) -> None:
    """``write()``, its OSError (disk full, a read-only file system) as one line."""
    try:
        write()
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from None


def _columns(store, opts: RenderOptions, clusters: Clusters | None, height, progress, warnings):
    if opts.mode in FRAME_MODES:
        values_ = frame_columns(
            store,
            opts.mode,
            gamma_correct=opts.gamma_correct,
            region=opts.region,
            batch_frames=opts.batch_frames,
            progress=None if clusters else progress,
            warnings=warnings,
        )
        if opts.mode == "brightness":
            return metrics.brightness_greys(values_, opts.gamma_correct)
        return values_
    return _cluster_columns(opts, clusters.centres, clusters.shares, height)


def _coloured(opts: RenderOptions, columns: np.ndarray) -> np.ndarray:
    """Brightness columns (greys) in the colour map asked for; other columns unchanged."""
    if opts.mode != "brightness" or opts.colormap == "grey":
        return columns
    return metrics.colormapped(columns[:, 0], opts.colormap)


def _cluster_columns(opts: RenderOptions, centres, shares, height):
    if opts.mode == "dominant":
        return cols.dominant(centres, shares)
    if opts.mode == "least":
        return cols.least(centres, shares)
    if opts.mode == "weighted-dominant":
        return metrics.weighted_dominant(centres, shares)
    return cols.stacked_columns(centres, shares, height, sort=opts.sort, equal=opts.mode == "equal")


def _labelled(img, store: FrameStore, opts: RenderOptions, shots: Shots | None):
    """``img`` with the title (and the store's shot count, when it has cuts) and a time
    axis below (see ``image.add_labels``)."""
    title = opts.title if opts.title is not None else Path(store.meta["source"]["path"]).stem
    if store.cuts is not None:
        n_shots = (shots or shots_of(store)).n
        count = f"{n_shots} shot{'s' * (n_shots != 1)}"
        title = f"{title} ({count})" if title else count
    if opts.by == "shot":
        start = float(shots.starts[0])
        return add_labels(img, title=title, duration=float(shots.ends[-1]) - start, start=start)
    times = store.times
    n = len(times)
    span = float(times[-1] - times[0]) if n > 1 else 0.0
    step = span / (n - 1) if n > 1 else 1.0  # one frame: a second of axis
    return add_labels(img, title=title, duration=span + step, start=float(times[0]))


def _span(store: FrameStore, opts: RenderOptions, shots: Shots | None) -> tuple[float, float]:
    """The start and duration the barcode covers (by shot: the shots'; by frame: the frames'
    plus one step, so that the last column has its width too)."""
    if opts.by == "shot":
        start = float(shots.starts[0])
        return start, float(shots.ends[-1]) - start
    times = store.times
    n = len(times)
    span = float(times[-1] - times[0]) if n > 1 else 0.0
    return float(times[0]), span + (span / (n - 1) if n > 1 else 1.0)


def _circular(img, store: FrameStore, opts: RenderOptions, shots: Shots | None):
    """The linear barcode ``img`` wrapped into a disc, with clock labels when asked."""
    margin = clock_margin(opts.size) if opts.label else 0
    disc = circular_image(img, opts.size, background=opts.background, margin=margin)
    if not opts.label:
        return disc
    title = opts.title if opts.title is not None else Path(store.meta["source"]["path"]).stem
    start, duration = _span(store, opts, shots)
    return add_clock_labels(disc, title=title, duration=duration, start=start)


def render(
    store_path: str | os.PathLike,
    opts: RenderOptions,
    *,
    output: str | os.PathLike | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> RenderResult:
    """Render the barcode of a complete store to a PNG (and the palette file if asked).

    By frame, clustering (when the mode or the palette needs it) runs on ``executor``
    (default: this process; see ``moviebarcode.cluster.cluster``); of a region, and by
    shot, in this process (``moviebarcode.regioncluster``, ``moviebarcode.shotcluster``).
    InputError when ``opts`` asks for shots or cuts and the store has no cuts."""
    t0 = time.perf_counter()
    store = FrameStore.open(store_path)
    store.require_complete()
    out = _output_path(store, opts, output)
    linear_opts = opts
    if opts.layout == "circular":  # the barcode to wrap: as high as the disc's radius
        margin = clock_margin(opts.size) if opts.label else 0
        linear_opts = dataclasses.replace(opts, height=opts.height or opts.size // 2 - margin)
    shots = shots_of(store) if opts.by == "shot" or opts.cuts else None
    load = LoadStats()
    warnings: list[str] = []
    widths = None
    if opts.by == "shot":
        img, clusters, widths = _by_shot(store, linear_opts, shots, progress, load, warnings)
    else:
        img, clusters = _by_frame(store, linear_opts, executor, progress, load, warnings)
    if opts.cuts:
        img = add_cut_marks(img, cut_columns(shots, img.width, widths))
    if opts.layout == "circular":
        img = _circular(img, store, opts, shots)
    elif opts.label:
        img = _labelled(img, store, opts, shots)
    _written(out, lambda: save_png(img, out))
    if opts.palette is not None:
        _written(opts.palette, lambda: _write_palette(store, opts, clusters, shots))
    notes = [*(clusters.warnings if clusters else []), *warnings]
    seconds = time.perf_counter() - t0
    return RenderResult(out, opts.palette, clusters, seconds, load, notes, shots)


def _by_frame(store, opts: RenderOptions, executor, progress, load, warnings):
    """The barcode by frame, and the clusters behind it (None when none were needed)."""
    # squeeze keeps the frames' own height unless told; the others are 9/16 of the width
    height = opts.height or (
        None if opts.mode == "squeeze" else default_height(opts.width or store.frames_done)
    )
    clusters = None
    common = {"recompute": opts.recompute, "batch_frames": opts.batch_frames, "load": load}
    if opts.needs_clusters and opts.region != "whole":
        clusters = cluster_region(store, opts.cluster, opts.region, progress=progress, **common)
    elif opts.needs_clusters:
        clusters = cluster(store, opts.cluster, executor=executor, progress=progress, **common)
    columns = _coloured(opts, _columns(store, opts, clusters, height, progress, warnings))
    return barcode_image(columns, height=height, width=opts.width), clusters


def _by_shot(store, opts: RenderOptions, shots: Shots, progress, load, warnings):
    """The barcode by shot: one band per shot, as wide as its duration (default width: a
    column per frame, or per shot where there are more shots); the clusters by shot
    behind it (None when none were needed) and the bands' widths."""
    width = opts.width or max(store.frames_done, shots.n)
    widths = band_widths(shots.durations, width)
    height = opts.height or (None if opts.mode == "squeeze" else default_height(width))
    clusters = None
    if opts.needs_clusters:
        clusters = cluster_shots(
            store,
            opts.cluster,
            recompute=opts.recompute,
            batch_frames=opts.batch_frames,
            progress=progress,
            load=load,
        )
    row = shots.sampled_index  # each shot's row among the sampled shots
    if opts.mode in FRAME_MODES:
        values = _columns(store, opts, clusters, height, progress, warnings)
        bands = _coloured(opts, shot_means(values, shots, linear=opts.gamma_correct)[row])
    else:
        bands = _cluster_columns(opts, clusters.centres[row], clusters.shares[row], height)
    return barcode_image(np.repeat(bands, widths, axis=0), height=height), clusters, widths


def _palette_metric(store: FrameStore, opts: RenderOptions, clusters: Clusters, shots):
    """The palette's metric ``(mode, values)`` by frame (by shot: the mean of its frames'),
    when the mode is a per-frame metric or weighted-dominant; else None."""
    if opts.mode == "weighted-dominant":
        row = shots.sampled_index if opts.by == "shot" else slice(None)
        return opts.mode, metrics.weighted_dominant(clusters.centres[row], clusters.shares[row])
    if opts.mode not in metrics.METRIC_MODES:
        return None
    values_ = frame_columns(store, opts.mode, gamma_correct=opts.gamma_correct, region=opts.region)
    if opts.by == "shot":  # luminance is linear already
        linear = opts.gamma_correct and opts.mode != "brightness"
        values_ = shot_means(values_, shots, linear=linear)[shots.sampled_index]
    return opts.mode, values_


def _write_palette(store: FrameStore, opts: RenderOptions, clusters: Clusters, shots) -> None:
    metric = _palette_metric(store, opts, clusters, shots)
    if opts.by == "shot":
        row = shots.sampled_index
        write_shot_palette(
            opts.palette,
            k=opts.cluster.k,
            space=opts.cluster.space,
            spans=np.stack([shots.starts, shots.ends], axis=1),
            frames=shots.frames,
            source=shots.source,
            colours_srgb=clusters.centres[row],
            shares=clusters.shares[row],
            metric=metric,
            region=opts.region,
        )
        return
    write_palette(
        opts.palette,
        k=opts.cluster.k,
        space=opts.cluster.space,
        times=store.times,
        indices=store.indices,
        colours_srgb=clusters.centres,
        shares=clusters.shares,
        metric=metric,
        region=opts.region,
    )
