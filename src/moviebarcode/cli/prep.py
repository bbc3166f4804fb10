"""``moviebarcode prep``: stage one, on the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from tqdm import tqdm

from moviebarcode.cli import prep_options
from moviebarcode.cli._common import apply, friendly_errors, show_progress, warn
from moviebarcode.errors import InputError
from moviebarcode.prep import SHOT_KEYS, PrepRequest
from moviebarcode.prep import prep as run_prep
from moviebarcode.store import FrameStore, is_store


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


def _store_film(store: Path, output: Path | None, request: PrepRequest):
    """(film, store, request) for a STORE given in place of a MOVIE: its own film and prep
    options, with the cut options as given; InputError when its film is not there."""
    if output is not None and output.resolve() != store.resolve():
        raise InputError(f"{store} is a store: give a movie to prep into {output}")
    meta = FrameStore.open(store).meta
    film = Path(meta["source"]["path"])
    if not film.is_file():
        raise InputError(
            f"{store} was prepped from {film}, which is not there; give the film: "
            f"moviebarcode prep MOVIE -o {store}"
        )
    shot_options = {k: getattr(request, k) for k in SHOT_KEYS}
    fields = {f.name for f in dataclasses.fields(PrepRequest)}
    stored = {k: v for k, v in meta["request"].items() if k in fields}
    if stored.get("size") is not None:
        stored["size"] = tuple(stored["size"])
    return film, store, PrepRequest(**{**stored, **shot_options})


@click.command()
@click.argument("movie", type=click.Path(path_type=Path), metavar="MOVIE|STORE")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="STORE",
    help="Store to write [default: cache/<movie stem>.zarr].",
)
@apply(prep_options.PREP)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Decode in N parallel segments split at keyframes [default: the CPUs it may "
    "use; films under 40 s use one process]. The store is the same whatever N.",
)
@click.option("--force", is_flag=True, help="Prep again even if the store exists (replaces it).")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors: no progress, no summary.")
@friendly_errors
def prep(movie, output, jobs, force, quiet, **params):
    """Decode MOVIE once into a chunked Zarr frame store.

    Frames are sampled, cropped and scaled inside ffmpeg's filter graph and written chunk by
    chunk, so memory stays small whatever the film's length. An interrupted prep leaves an
    incomplete store; running the same command again resumes it. Running it on a complete,
    up-to-date store does nothing, but for the shot cuts: it adds them where they are missing,
    or picks them again for another --cut-threshold. A STORE in place of the MOVIE stands for
    its own film and options.
    """
    request = prep_options.prep_request(params)
    if is_store(movie):  # a store given for its film: brought to these cut options
        movie, output, request = _store_film(Path(movie), output, request)
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
