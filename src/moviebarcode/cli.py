"""The command line: parses options, calls the library, turns its errors into one-line messages.

Exit codes: 0 success, 1 a moviebarcode error (bad input, incomplete store...), 2 a usage error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import click

from moviebarcode import __version__
from moviebarcode.errors import MoviebarcodeError

_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?)$")


class TimeParam(click.ParamType):
    """Seconds (``90``, ``12.5``) or ``[hh:]mm:ss[.frac]``."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        m = _TIME.match(str(value).strip())
        if not m:
            self.fail(f"{value!r} is not a time (seconds, mm:ss or hh:mm:ss)", param, ctx)
        h, mi, s = m.groups()
        return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s)


class SizeParam(click.ParamType):
    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"(\d+)[xX](\d+)", str(value).strip())
        if not m or min(int(m.group(1)), int(m.group(2))) < 1:
            self.fail(f"{value!r} is not a size like 160x90", param, ctx)
        return int(m.group(1)), int(m.group(2))


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
@click.option(
    "--every",
    type=int,
    metavar="N",
    help="Keep every Nth decoded frame [default: 24, as in the original barcodes].",
)
@click.option("--fps", type=float, metavar="F", help="Keep F frames per second of film instead.")
@click.option(
    "--columns",
    type=int,
    metavar="C",
    help="Keep C frames spread evenly over the film (or the --start/--end part).",
)
@click.option(
    "--start",
    type=TimeParam(),
    default=0.0,
    show_default=True,
    help="Start at this time (seconds or hh:mm:ss).",
)
@click.option("--end", type=TimeParam(), help="Stop at this time (seconds or hh:mm:ss).")
@click.option(
    "--width",
    type=int,
    metavar="W",
    help="Frame width in the store; height follows the aspect ratio [default: 160].",
)
@click.option("--height", type=int, metavar="H", help="Frame height; width follows the aspect.")
@click.option("--size", type=SizeParam(), help="Exact frame size, e.g. 160x90.")
@click.option(
    "--crop",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="Detect and remove letterbox/pillarbox black bars before scaling.",
)
@click.option(
    "--tonemap",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Tone-map HDR (PQ/HLG) to SDR bt709; auto: when HDR.",
)
@click.option(
    "--chunk-frames",
    type=int,
    metavar="N",
    help="Frames per Zarr chunk [default: about 8 MiB per chunk].",
)
@click.option(
    "--compress",
    "compressor",
    type=click.Choice(["none", "zstd"]),
    default="none",
    show_default=True,
    help="Chunk compression (none lets raw bytes go straight to a GPU).",
)
@click.option(
    "--keyframes",
    is_flag=True,
    help="Preview: decode keyframes only, one column per keyframe (with --every N, "
    "every Nth keyframe). A whole film in seconds.",
)
@click.option(
    "--fast",
    is_flag=True,
    help="Cheaper decoding (no loop filter): faster, colours very slightly off.",
)
@click.option(
    "--hwaccel",
    type=click.Choice(["auto", "none", "cuda"]),
    default="none",
    show_default=True,
    help="Decode on an NVIDIA GPU (NVDEC + scale_cuda); auto: when ffmpeg and the "
    "driver support it.",
)
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
def prep(
    movie,
    output,
    every,
    fps,
    columns,
    start,
    end,
    width,
    height,
    size,
    crop,
    tonemap,
    chunk_frames,
    compressor,
    keyframes,
    fast,
    hwaccel,
    jobs,
    force,
    quiet,
):
    """Decode MOVIE once into a chunked Zarr frame store.

    Frames are sampled, cropped and scaled inside ffmpeg's filter graph and written chunk by
    chunk, so memory stays small whatever the film's length. An interrupted prep leaves an
    incomplete store; running the same command again resumes it. Running it on a complete,
    up-to-date store does nothing.
    """
    from moviebarcode.prep import PrepRequest
    from moviebarcode.prep import prep as run_prep

    if sum(x is not None for x in (width, height, size)) > 1:
        raise click.UsageError("use only one of --width, --height and --size")
    request = PrepRequest(
        every=every,
        fps=fps,
        columns=columns,
        start=start,
        end=end,
        width=width,
        height=height,
        size=size,
        crop=crop,
        tonemap=tonemap,
        chunk_frames=chunk_frames,
        compressor=compressor,
        keyframes=keyframes,
        fast=fast,
        hwaccel=hwaccel,
    )
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
    "-k", "--k", "k", type=int, default=8, show_default=True, help="Colours (clusters) per frame."
)
@click.option(
    "--mode",
    type=click.Choice(["average", "squeeze", "dominant", "stacked", "least", "equal"]),
    default="stacked",
    show_default=True,
    help="average: mean colour; squeeze: frame squeezed to one column; dominant: the "
    "most populous cluster; stacked: all k clusters, as tall as their share; "
    "least: the least populous cluster; equal: all k at equal heights.",
)
@click.option(
    "--sort",
    type=click.Choice(["share", "lightness", "hue"]),
    default="share",
    show_default=True,
    help="Order of the bands in stacked/equal columns.",
)
@click.option(
    "--space",
    type=click.Choice(["rgb", "lab"]),
    default="rgb",
    show_default=True,
    help="Cluster in sRGB or in CIELAB (perceptually even).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PNG",
    help="Barcode image [default: next to the store, named after it and the mode].",
)
@click.option("--width", type=int, metavar="W", help="Resample the columns to W pixels wide.")
@click.option(
    "--height",
    type=int,
    metavar="H",
    help="Image height [default: 9/16 of the width; squeeze: the frames' height].",
)
@click.option("--label", is_flag=True, help="Add a title and an hh:mm:ss time axis below.")
@click.option("--title", metavar="TEXT", help="Title for --label [default: the movie's name].")
@click.option(
    "--palette",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also write each frame's colours and shares as .json or .csv.",
)
@click.option(
    "--gamma-naive",
    is_flag=True,
    help="average/squeeze: average sRGB values (the old look) instead of linear light.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "gpu"]),
    default="auto",
    show_default=True,
    help="Where to cluster: auto takes the GPU when CuPy sees one.",
)
@click.option(
    "--engine",
    type=click.Choice(["numpy", "sklearn", "cupy", "cuml"]),
    default=None,
    help="Clustering engine [default: cupy on a GPU, numpy on the CPU]. sklearn and cuml "
    "cluster frame by frame (the original method, for reference).",
)
@click.option(
    "--n-init",
    type=int,
    default=8,
    show_default=True,
    help="k-means restarts per frame (the best is kept).",
)
@click.option("--max-iter", type=int, default=100, show_default=True, help="k-means iterations.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--recompute", is_flag=True, help="Cluster again even if the result is cached.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Cluster the store's chunks on this Dask cluster's workers (moviebarcode[dask]; the "
    "workers need the store at the same path). The result is the same as a local render.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@click.option("-v", "--verbose", is_flag=True, help="Say what was cached and how long it took.")
@friendly_errors
def render(
    store,
    k,
    mode,
    sort,
    space,
    output,
    width,
    height,
    label,
    title,
    palette,
    gamma_naive,
    device,
    engine,
    n_init,
    max_iter,
    seed,
    recompute,
    scheduler,
    quiet,
    verbose,
):
    """Render the barcode of a frame STORE made by `prep`.

    Clusterings are cached in the store: rendering again with another mode, size, sort or label
    takes a moment; another --k clusters once more and is cached too. The movie file and
    ffmpeg are not needed.
    """
    from moviebarcode.render import ClusterParams, RenderOptions
    from moviebarcode.render import render as run_render
    from moviebarcode.store import FrameStore

    opts = RenderOptions(
        mode=mode,
        cluster=ClusterParams(k=k, space=space, n_init=n_init, max_iter=max_iter, seed=seed),
        engine=engine,
        device=device,
        sort=sort,
        width=width,
        height=height,
        gamma_correct=not gamma_naive,
        label=label,
        title=title,
        palette=palette,
        recompute=recompute,
        scheduler=scheduler,
    )
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
            click.echo(
                f"frames read with {load.method}: {load.bytes / 2**20:.0f} MiB in "
                f"{load.seconds:.2f} s ({load.throughput / 2**20:.0f} MiB/s)",
                err=True,
            )
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
    return {
        "store": str(store.path),
        "status": "complete" if store.complete else "INCOMPLETE (run prep again to resume)",
        "frames": store.frames_done,
        "frame size": f"{w}x{h}",
        "chunk": f"{store.chunk_frames} frames",
        "sampling": how,
        "covers": f"{hms(times[0])} - {hms(times[-1])}" if len(times) else "nothing yet",
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
