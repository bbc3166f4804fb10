"""``moviebarcode batch``: many films prepped and rendered on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from moviebarcode.cli import options, prep_options
from moviebarcode.cli._common import apply, friendly_errors, show_progress, warn
from moviebarcode.dask_backend import SKIPPED, read_list, run_batch, summary_table
from moviebarcode.errors import MoviebarcodeError
from moviebarcode.ffmpegbin import ffmpeg_override


class _BatchBar:
    """Films finished, with the preps done and the last event (a no-op when there is no
    terminal or with ``--quiet``)."""

    def __init__(self, films: int, enabled: bool):
        self.bar = (
            tqdm(total=films, unit="film", desc="batch", dynamic_ncols=True, leave=False)
            if enabled
            else None
        )
        self.prepped = 0

    def progress(self, event, film, finished, total) -> None:
        if self.bar is None:
            return
        if event == "prepped":
            self.prepped += 1
        else:
            self.bar.update(finished - self.bar.n)
        self.bar.set_postfix_str(f"prepped {self.prepped}/{total}, last: {film.name} {event}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command("batch")
@click.argument("movies", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--list",
    "list_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Read more movies from FILE: one path a line, # comments.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    default="cache",
    show_default=True,
    metavar="DIR",
    help="Folder of the frame stores (DIR/<movie stem>.zarr).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default="out",
    show_default=True,
    metavar="DIR",
    help="Folder of the barcodes (DIR/<movie stem>-<mode>-k<k>.png).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on this Dask cluster (e.g. tcp://10.0.0.5:8786) [default: a local cluster "
    "sized to this machine]. Workers need the movie, cache and output folders at the same "
    "paths.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes of the local cluster [default: the CPUs it may "
    "use, at most one per film].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="ffmpeg processes per film's prep (the batch runs films in parallel already).",
)
@apply(prep_options.PREP)
@click.option("--force", is_flag=True, help="prep: replace stores made with other options.")
@apply(options.render_options("--image-width", "--image-height"))
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors: no progress, no summary.")
@friendly_errors
def batch(movies, list_file, cache_dir, out_dir, scheduler, workers, jobs, force, quiet, **params):
    """Prep and render many MOVIES on a Dask cluster (local by default).

    Each film's prep is one task and its render another. Stores go to --cache, barcodes to
    --out. A film that fails is reported in the summary and does not stop the others; running
    the same batch again skips what is complete and finishes the rest. Exit code 1 if any film
    failed.
    """
    if scheduler and workers:
        raise click.UsageError("--workers sizes the local cluster: not with --scheduler")
    films = list(movies) + (read_list(list_file) if list_file else [])
    if not films:
        raise click.UsageError("give MOVIES or --list FILE")
    request = prep_options.prep_request(params)
    opts = options.render_opts(params)
    bar = _BatchBar(len(films), show_progress(quiet))
    try:
        results = run_batch(
            films,
            cache_dir=cache_dir,
            out_dir=out_dir,
            prep_request=request,
            render_options=opts,
            scheduler=scheduler,
            n_workers=workers,
            prep_jobs=jobs,
            force=force,
            ffmpeg=ffmpeg_override(),
            progress=bar.progress,
        )
    finally:
        bar.close()
    for r in results:
        warn(r.warnings, quiet, prefix=f"{r.film.name}: ")
    failed = [r for r in results if not r.ok]
    if not quiet:
        click.echo(summary_table(results))
        skipped = sum(r.status == SKIPPED for r in results)
        click.echo(
            f"{len(results) - len(failed)} of {len(results)} films done ({skipped} already up to "
            f"date); barcodes in {Path(out_dir).absolute()}"
        )
    if failed:
        raise MoviebarcodeError(f"{len(failed)} of {len(results)} films failed (see the summary)")
