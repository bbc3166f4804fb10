"""``moviebarcode view``: the barcode as one self-contained, interactive HTML page."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from moviebarcode.choices import DeviceChoice, EngineName, Mode, Space, ThumbFormat
from moviebarcode.cli._common import choice, friendly_errors, show_progress, warn
from moviebarcode.cluster import K_MAX, ClusterParams, default_jobs, local_executor
from moviebarcode.store import FrameStore
from moviebarcode.view import ViewOptions, build_view
from moviebarcode.view.options import PAGE_BUDGET_MB, THUMB_MAX, THUMB_MIN

_VIEW = ViewOptions()


class _Bars:
    """One progress bar per stage of the build, on a terminal only."""

    def __init__(self, on: bool):
        self.on = on
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.on:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, unit="frame", desc=stage, dynamic_ncols=True, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _report(result) -> None:
    """What ``--verbose`` says: the clustering, the thumbnails, the time."""
    c = result.clusters
    how = "from the store's cache" if c.cached else f"computed in {c.seconds:.2f} s"
    click.echo(f"clusters: k={c.params['k']} {c.params['space']}, {how}", err=True)
    click.echo(f"clusterings offered: {result.clusterings}", err=True)
    thumbs = "none" if result.thumbs is None else "{}x{}".format(*result.thumbs)
    click.echo(f"thumbnails: {thumbs}", err=True)
    click.echo(f"page: {result.size / 1e6:.2f} MB in {result.seconds:.2f} s", err=True)


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="HTML",
    help="The page [default: next to the store, named after it: cache/film.html]. An existing "
    "file is replaced atomically.",
)
@click.option(
    "-k",
    "--k",
    "k",
    type=int,
    default=ClusterParams().k,
    show_default=True,
    help=f"Colours per frame of the clustering shown first (1 to {K_MAX}); clustered now if "
    "the store has no such result. Every clustering the store has cached is offered too.",
)
@click.option(
    "--space",
    type=choice(Space),
    default=ClusterParams().space,
    show_default=True,
    help="The colour space of that clustering.",
)
@click.option(
    "--mode",
    type=choice(Mode),
    default=_VIEW.mode,
    show_default=True,
    help="The mode shown first (the page switches between all of them).",
)
@click.option(
    "--thumb-width",
    type=click.IntRange(min=0),
    metavar="W",
    help=f"Thumbnail width in pixels, {THUMB_MIN} to {THUMB_MAX}, at most the frames' own; 0: "
    "no thumbnails [default: the widest that keeps the page within --budget].",
)
@click.option(
    "--thumb-quality",
    type=int,
    default=_VIEW.thumb_quality,
    show_default=True,
    metavar="Q",
    help="Thumbnail quality, 1-100: higher is sharper and larger.",
)
@click.option(
    "--thumb-format",
    type=choice(ThumbFormat),
    default=_VIEW.thumb_format,
    show_default=True,
    help="Thumbnail images: WebP is about a third smaller than JPEG at the same quality.",
)
@click.option(
    "--budget",
    "budget_mb",
    type=float,
    default=PAGE_BUDGET_MB,
    show_default=True,
    metavar="MB",
    help="The size the page aims at: the thumbnails get what the data leaves. Raise it for "
    "sharper thumbnails, lower it for a smaller file.",
)
@click.option("--title", metavar="TEXT", help="The page's title [default: the movie's name].")
@click.option(
    "--gamma-naive",
    is_flag=True,
    help="average/squeeze: average sRGB values instead of linear light.",
)
@click.option(
    "--engine",
    type=choice(EngineName),
    help="Clustering engine, when clustering is needed [default: cupy on a GPU, numpy].",
)
@click.option(
    "--device",
    type=choice(DeviceChoice),
    default=ClusterParams().device,
    show_default=True,
    help="Where to cluster, when clustering is needed.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Cluster in N processes when clustering is needed [default: the CPUs it may use].",
)
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors: no progress, no path.")
@click.option("-v", "--verbose", is_flag=True, help="Say what was cached, the sizes and times.")
@friendly_errors
def view(store, output, k, space, engine, device, jobs, quiet, verbose, **params):
    """Write an interactive page of a frame STORE's barcode: one self-contained HTML file
    that opens from disk in any current browser, without a server or a network.

    Hover over (or touch) a column for its time, frame number, thumbnail and colours; click
    to pin it; ← → step a column. Switch modes and clusterings, drag or scroll to zoom into
    a time range, and save the view as PNG or the range's palettes as JSON. The movie file
    and ffmpeg are not needed.
    """
    opts = ViewOptions(
        cluster=ClusterParams(k=k, space=space, engine=engine, device=device),
        gamma_correct=not params.pop("gamma_naive"),
        **params,
    )
    bars = _Bars(show_progress(quiet))
    fs = FrameStore.open(store)
    fs.require_complete()
    executor = local_executor(fs, opts.cluster, jobs or default_jobs())
    try:
        result = build_view(store, opts, output=output, executor=executor, progress=bars)
    finally:
        bars.close()
    warn(result.warnings, quiet)
    if verbose:
        _report(result)
    if not quiet:
        click.echo(str(result.page))
