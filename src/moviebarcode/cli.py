"""The command line: parses options, calls the library, turns its errors into one-line messages.

Exit codes: 0 success, 1 a moviebarcode error (bad input, incomplete store...), 2 a usage error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from moviebarcode import __version__, options
from moviebarcode.errors import MoviebarcodeError


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"moviebarcode: error: {message}", err=True)
    sys.exit(code)


def friendly_errors(fn):
    """Run a command, turning library errors into one line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MoviebarcodeError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted; run the same command again to resume", 130)
        except BrokenPipeError:
            sys.exit(1)

    return wrapper


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="moviebarcode")
@click.option(
    "--ffmpeg",
    "ffmpeg_path",
    metavar="PATH",
    envvar="MOVIEBARCODE_FFMPEG",
    help="ffmpeg binary to use (default: ffmpeg on PATH, else the one from "
    "imageio-ffmpeg). Also $MOVIEBARCODE_FFMPEG.",
)
def cli(ffmpeg_path: str | None) -> None:
    """Turn a film into a movie barcode, in two stages.

    \b
      moviebarcode prep movie.mkv            decode once into cache/movie.zarr
      moviebarcode render cache/movie.zarr   cluster the cached frames, write the barcode PNG
      moviebarcode info cache/movie.zarr     what a store (or a movie) holds

    Rendering again with another k or mode never decodes the movie again.
    """
    if ffmpeg_path:
        from moviebarcode.ffmpegbin import set_ffmpeg

        set_ffmpeg(ffmpeg_path)


@cli.command()
@click.argument("movie", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="STORE",
    help="Store to write [default: cache/<movie stem>.zarr].",
)
@options.apply(options.PREP)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Decode in N parallel segments split at keyframes [default: the machine's cores; "
    "films under 40 s use one process]. The store is the same whatever N.",
)
@click.option("--force", is_flag=True, help="Prep again even if the store exists (replaces it).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@friendly_errors
def prep(movie, output, jobs, force, quiet, **params):
    """Decode MOVIE once into a chunked Zarr frame store.

    Frames are sampled, cropped and scaled inside ffmpeg's filter graph and written chunk by
    chunk, so memory stays small whatever the film's length. An interrupted prep leaves an
    incomplete store; running the same command again resumes it. Running it on a complete,
    up-to-date store does nothing.
    """
    from moviebarcode.prep import prep as run_prep

    request = options.prep_request(params)
    bar = None
    state = {}

    def on_start(info, sampling, store):
        nonlocal bar
        if not show_progress(quiet):
            return
        from tqdm import tqdm

        end_t = sampling.end if sampling.end is not None else info.duration
        total = max(0.0, (end_t or 0) - sampling.start) or None
        state["start"] = sampling.start
        bar = tqdm(
            total=round(total, 1) if total else None,
            unit="s",
            desc=Path(movie).name,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of film "
            "[{elapsed}<{remaining}{postfix}]",
            dynamic_ncols=True,
            leave=False,
        )

    def progress(t, kept):
        if bar is not None:
            bar.n = round(max(0.0, min(t - state["start"], bar.total or t)), 1)
            elapsed = bar.format_dict["elapsed"]
            speed = f", {bar.n / elapsed:.0f}x realtime" if elapsed > 0.5 else ""
            bar.set_postfix_str(f"{kept} frames{speed}", refresh=False)
            bar.refresh()

    try:
        result = run_prep(
            movie,
            request,
            output=output,
            force=force,
            jobs=jobs,
            progress=progress,
            on_start=on_start,
        )
    finally:
        if bar is not None:
            bar.close()
    for w in result.warnings:
        click.echo(f"moviebarcode: warning: {w}", err=True)
    if not quiet:
        click.echo(f"{result.store}: {result.status}, {result.frames} frames")


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PNG",
    help="Barcode image [default: next to the store, named after it and the mode].",
)
@options.apply(options.render_options())
@click.option("--title", metavar="TEXT", help="Title for --label [default: the movie's name].")
@click.option(
    "--palette",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also write each frame's colours and shares as .json or .csv.",
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
    help="numpy engine: cluster batches of frames in N processes [default: the machine's "
    "cores]. The result is the same whatever N.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@click.option("-v", "--verbose", is_flag=True, help="Say what was cached and how long it took.")
@friendly_errors
def render(store, output, title, palette, recompute, scheduler, jobs, quiet, verbose, **params):
    """Render the barcode of a frame STORE made by `prep`.

    Clusterings are cached in the store: rendering again with another mode, size, sort or label
    takes a moment; another --k clusters once more and is cached too. The movie file and
    ffmpeg are not needed.
    """
    from moviebarcode.render import default_jobs
    from moviebarcode.render import render as run_render
    from moviebarcode.store import FrameStore

    opts = options.render_opts(
        params,
        title=title,
        palette=palette,
        recompute=recompute,
        scheduler=scheduler,
        jobs=jobs or default_jobs(),
    )
    mode, k = opts.mode, opts.cluster.k
    bar = None
    if show_progress(quiet):
        from tqdm import tqdm

        fs = FrameStore.open(store)
        bar = tqdm(
            total=fs.frames_done,
            unit="frame",
            desc=f"{mode} k={k}" if mode not in ("average", "squeeze") else mode,
            dynamic_ncols=True,
            leave=False,
        )

    def progress(done):
        if bar is not None:
            bar.update(done - bar.n)

    try:
        result = run_render(store, opts, output=output, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if verbose and result.clusters is not None:
        c = result.clusters
        how = (
            "from the store's cache"
            if c.cached
            else (
                f"computed with {c.params['engine']} in {c.seconds:.2f} s "
                f"({1000 * c.seconds / max(1, len(c.inertia)):.2f} ms/frame)"
            )
        )
        click.echo(f"clusters: k={c.params['k']} {c.params['space']}, {how}", err=True)
        load = result.load
        if not c.cached and load is not None and load.bytes:
            from moviebarcode.arrays import gpu_status

            where = c.params.get("device", "cpu")
            why = gpu_status()[1]
            click.echo(f"device: {where} ({why})", err=True)
            read = f"frames read with {load.method}: {load.bytes / 2**20:.0f} MiB"
            if load.seconds > 0:  # worker processes read their own batches, untimed
                read += f" in {load.seconds:.2f} s ({load.throughput / 2**20:.0f} MiB/s)"
            click.echo(read, err=True)
    if not quiet:
        click.echo(str(result.image))
        if result.palette:
            click.echo(str(result.palette))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@friendly_errors
def info(path, as_json):
    """Show what a frame store (or a movie file) holds."""
    from moviebarcode.store import FrameStore, is_store

    if path.is_dir() or path.suffix == ".zarr":
        if not is_store(path):
            FrameStore.open(path)  # raises the precise error
        data = store_summary(FrameStore.open(path))
    else:
        from moviebarcode.probe import probe

        data = {"movie": probe(path).to_dict()}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if "movie" in data:
        m = data["movie"]
        lines = [
            f"movie:      {m['path']}",
            f"video:      {m['codec']} {m['pix_fmt']} {m['width']}x{m['height']}"
            + (f" SAR {m['sar'][0]}:{m['sar'][1]}" if tuple(m["sar"]) != (1, 1) else "")
            + (f" rotated {m['rotation']}" if m["rotation"] else "")
            + f"{' HDR ' + str(m['color_transfer']) if m['hdr'] else ''}",
            f"frame rate: {m['fps'] or '?'} fps",
            f"duration:   {hms(m['duration'])} ({m['duration']} s)",
        ]
    else:
        lines = [f"{k + ':':<15}{v}" for k, v in data.items() if k != "results"]
        for r in data["results"]:
            lines.append(f"{'result:':<15}k={r['k']} {r['key']}")
    click.echo("\n".join(lines))


def store_summary(store) -> dict:
    """The facts about a store that `info` prints."""
    meta = store.meta
    s = meta["sampling"]
    times = store.times
    h, w = store.frame_shape
    pic = meta["picture"]
    if s.get("keyframes"):
        how = "keyframes only" + (f", every {s['every']}" if s.get("every", 1) > 1 else "")
    elif s.get("every"):
        how = f"every {s['every']} frames"
    else:
        how = f"{s['fps']:.6g} frames per second"
    if s.get("max_frames"):
        how += f" (at most {s['max_frames']})"
    decode = meta.get("decode") or {}
    segments = meta.get("segments")
    if segments:  # a parallel prep under way: its frames are not a contiguous prefix
        total = segments[-1]["pos"] + segments[-1]["count"]
        covers = f"{store.frames_done} of {total} frames, written in {len(segments)} segments"
    elif len(times):
        covers = f"{hms(times[0])} - {hms(times[-1])}"
    else:
        covers = "nothing yet"
    return {
        "store": str(store.path),
        "status": "complete" if store.complete else "INCOMPLETE (run prep again to resume)",
        "frames": store.frames_done,
        "frame size": f"{w}x{h}",
        "chunk": f"{store.chunk_frames} frames",
        "sampling": how,
        "covers": covers,
        "source": meta["source"]["path"],
        "crop": ("{w}x{h}+{x}+{y}".format(**pic["crop"]) if pic.get("crop") else "none"),
        "tonemap": "HDR -> SDR" if pic.get("tonemap") else "no",
        "decoder": ", ".join(
            x for x in (pic.get("hwaccel") or "software", "fast" if pic.get("fast") else "") if x
        ),
        "decode errors": decode.get("error_count", 0)
        if not decode.get("truncated_at")
        else f"truncated at {hms(decode['truncated_at'])}",
        "layout": meta["layout_version"],
        "results": store.list_results(),
    }


from moviebarcode.batch import batch as _batch  # noqa: E402 - registered after the others

cli.add_command(_batch)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one line too (exit 2), like library errors."""
    try:
        rv = cli.main(args=argv, prog_name="moviebarcode", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "moviebarcode"
        _fail(f"{exc.format_message()} (see '{where} --help')", 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("interrupted", 130)
    sys.exit(rv if isinstance(rv, int) else 0)
