"""``moviebarcode render``: stage two, on the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
from tqdm import tqdm

from moviebarcode.cli import options
from moviebarcode.cli._common import apply, friendly_errors, show_progress, warn
from moviebarcode.cluster import default_jobs, local_executor
from moviebarcode.dask_backend import DaskExecutor
from moviebarcode.device import gpu_status
from moviebarcode.errors import ParameterError
from moviebarcode.render import CLUSTER_MODES, RenderResult
from moviebarcode.render import render as run_render
from moviebarcode.store import FrameStore
from moviebarcode.view import ViewOptions, build_view
from moviebarcode.view.build import page_path


def _executor(store: Path, opts, scheduler: str | None, jobs: int | None):
    """A context giving the executor to cluster on: the Dask cluster at ``scheduler``, or
    worker processes / this process (``jobs``, default one per CPU). By shot, none: the
    shots are clustered in this process."""
    if opts.by == "shot" and scheduler:
        raise ParameterError("--scheduler clusters by frame; --by shot clusters in this process")
    if not opts.needs_clusters or opts.by == "shot":
        return contextlib.nullcontext(None)
    if scheduler:
        return DaskExecutor(scheduler)
    fs = FrameStore.open(store)  # render checks that it is complete and whole
    return contextlib.nullcontext(
        local_executor(fs, opts.cluster, jobs or default_jobs(), opts.batch_frames)
    )


def _report(result: RenderResult) -> None:
    """What ``--verbose`` says: where the clusters came from, the device, how frames were read."""
    c = result.clusters
    if c is None:
        return
    if c.cached:
        how = "from the store's cache"
    else:
        unit = "shot" if c.params.get("by") == "shot" else "frame"
        per_row = 1000 * c.seconds / max(1, len(c.inertia))
        how = f"computed with {c.params['engine']} in {c.seconds:.2f} s ({per_row:.2f} ms/{unit})"
    by = f", {len(c.inertia)} shots" if c.params.get("by") == "shot" else ""
    click.echo(f"clusters: k={c.params['k']} {c.params['space']}{by}, {how}", err=True)
    load = result.load
    if c.cached or load is None or not load.bytes:
        return
    click.echo(f"device: {c.params.get('device', 'cpu')} ({gpu_status()[1]})", err=True)
    ex = c.params.get("executor") or {}
    if ex:
        workers, tasks = ex["workers"], ex["tasks"]
        where = (
            f"executor: {ex['name']}, {workers} worker{'s' * (workers != 1)}, "
            f"{tasks} batch{'es' * (tasks != 1)}"
        )
        click.echo(where, err=True)
    read = f"frames read with {load.method}: {load.bytes / 2**20:.0f} MiB"
    if load.seconds > 0:
        read += f" in {load.seconds:.2f} s ({load.throughput / 2**20:.0f} MiB/s)"
    click.echo(read, err=True)
    for note in load.notes:
        click.echo(f"note: {note}", err=True)


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PNG",
    help="Barcode image [default: next to the store, named after it and the mode]. An "
    "existing file is replaced atomically.",
)
@apply(options.render_options())
@apply(options.LAYOUT)
@click.option("--title", metavar="TEXT", help="Title for --label [default: the movie's name].")
@click.option(
    "--palette",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also write each frame's (--by shot: each shot's) colours and shares as .json or "
    ".csv (replaced atomically).",
)
@click.option(
    "--html",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also write the interactive page of `moviebarcode view` (this k, space and mode "
    "shown first; every cached clustering offered).",
)
@click.option("--recompute", is_flag=True, help="Cluster again even if the result is cached.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Cluster the store's chunks on this Dask cluster's workers (moviebarcode[dask]; the "
    "workers need the store at the same path). The result is the same as a local render.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="numpy engine, --by frame: cluster batches of frames in N processes [default: the "
    "CPUs it may use]. The result is the same whatever N.",
)
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors: no progress, no summary.")
@click.option("-v", "--verbose", is_flag=True, help="Say what was cached and how long it took.")
@friendly_errors
def render(
    store, output, title, palette, html, recompute, scheduler, jobs, quiet, verbose, **params
):
    """Render the barcode of a frame STORE made by `prep`.

    Clusterings are cached in the store: rendering again with another mode, size, sort or label
    takes a moment; another --k clusters once more and is cached too. The movie file and
    ffmpeg are not needed.

    --by shot draws one band per shot (a store prepped with shot cuts), as wide as the shot
    lasts; --cuts marks the cuts on either kind of barcode.
    """
    layout = {key: params.pop(key) for key in options.LAYOUT_KEYS}
    opts = options.render_opts(params, title=title, palette=palette, recompute=recompute, **layout)
    if html is not None:
        page_path(FrameStore.open(store), html)  # writable, before any work
    bar = None
    if show_progress(quiet):
        k = opts.cluster.k
        bar = tqdm(
            total=FrameStore.open(store).frames_done,
            unit="frame",
            desc=f"{opts.mode} k={k}" if opts.mode in CLUSTER_MODES else opts.mode,
            dynamic_ncols=True,
            leave=False,
        )

    def progress(done):
        if bar is not None:
            bar.update(done - bar.n)

    try:
        with _executor(store, opts, scheduler, jobs) as executor:
            result = run_render(store, opts, output=output, executor=executor, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    page = _page(store, opts, html, title) if html is not None else None
    warn(result.warnings + (page.warnings if page else []), quiet)
    if verbose:
        _report(result)
    if not quiet:
        click.echo(str(result.image))
        if result.palette:
            click.echo(str(result.palette))
        if page:
            click.echo(str(page.page))


def _page(store: Path, opts, html: Path, title: str | None):
    """``render --html``: the view page, with the render's clustering (cached by now) and
    mode shown first."""
    view = ViewOptions(
        cluster=opts.cluster, mode=opts.mode, gamma_correct=opts.gamma_correct, title=title
    )
    return build_view(store, view, output=html)
