"""``moviebarcode prep``: stage one, on the command line."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from moviebarcode.cli import options
from moviebarcode.cli._common import apply, friendly_errors, show_progress, warn
from moviebarcode.prep import prep as run_prep


class _PrepBar:
    """A progress bar in seconds of film, with the frames kept and the speed (a no-op
    when there is no terminal or with ``--quiet``)."""

    def __init__(self, movie: Path, enabled: bool):
        self.movie = movie
        self.enabled = enabled
        self.bar = None
        self.start = 0.0

    def on_start(self, info, sampling, store) -> None:
        if not self.enabled:
            return
        end_t = sampling.end if sampling.end is not None else info.duration
        total = max(0.0, (end_t or 0) - sampling.start) or None
        self.start = sampling.start
        self.bar = tqdm(
            total=round(total, 1) if total else None,
            unit="s",
            desc=self.movie.name,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of film "
            "[{elapsed}<{remaining}{postfix}]",
            dynamic_ncols=True,
            leave=False,
        )

    def progress(self, t: float, kept: int) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.n = round(max(0.0, min(t - self.start, bar.total or t)), 1)
        elapsed = bar.format_dict["elapsed"]
        speed = f", {bar.n / elapsed:.0f}x realtime" if elapsed > 0.5 else ""
        bar.set_postfix_str(f"{kept} frames{speed}", refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command()
@click.argument("movie", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="STORE",
    help="Store to write [default: cache/<movie stem>.zarr].",
)
@apply(options.PREP)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Decode in N parallel segments split at keyframes [default: the machine's cores; "
    "films under 40 s use one process]. The store is the same whatever N.",
)
@click.option("--force", is_flag=True, help="Prep again even if the store exists (replaces it).")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors: no progress, no summary.")
@friendly_errors
def prep(movie, output, jobs, force, quiet, **params):
    """Decode MOVIE once into a chunked Zarr frame store.

    Frames are sampled, cropped and scaled inside ffmpeg's filter graph and written chunk by
    chunk, so memory stays small whatever the film's length. An interrupted prep leaves an
    incomplete store; running the same command again resumes it. Running it on a complete,
    up-to-date store does nothing.
    """
    request = options.prep_request(params)
    bar = _PrepBar(Path(movie), show_progress(quiet))
    try:
        result = run_prep(
            movie,
            request,
            output=output,
            force=force,
            jobs=jobs,
            progress=bar.progress,
            on_start=bar.on_start,
        )
    finally:
        bar.close()
    warn(result.warnings, quiet)
    if not quiet:
        click.echo(f"{result.store}: {result.status}, {result.frames} frames")
