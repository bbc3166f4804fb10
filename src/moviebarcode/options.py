"""The command-line options that several commands share (prep's are also batch's, render's too),
defined once, and the library objects built from them."""

from __future__ import annotations

import re

import click

from moviebarcode.kmeans import DEFAULT_N_INIT

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


def apply(options):
    """One decorator from a list of click options (listed in the order --help shows them)."""

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


PREP = [
    click.option(
        "--every",
        type=int,
        metavar="N",
        help="Keep every Nth decoded frame [default: 24, as in the original barcodes].",
    ),
    click.option(
        "--fps", type=float, metavar="F", help="Keep F frames per second of film instead."
    ),
    click.option(
        "--columns",
        type=int,
        metavar="C",
        help="Keep C frames spread evenly over the film (or the --start/--end part).",
    ),
    click.option(
        "--start",
        type=TimeParam(),
        default=0.0,
        show_default=True,
        help="Start at this time (seconds or hh:mm:ss).",
    ),
    click.option("--end", type=TimeParam(), help="Stop at this time (seconds or hh:mm:ss)."),
    click.option(
        "--width",
        type=int,
        metavar="W",
        help="Frame width in the store; height follows the aspect ratio [default: 160].",
    ),
    click.option("--height", type=int, metavar="H", help="Frame height; width follows the aspect."),
    click.option("--size", type=SizeParam(), help="Exact frame size, e.g. 160x90."),
    click.option(
        "--crop",
        type=click.Choice(["auto", "none"]),
        default="auto",
        show_default=True,
        help="Detect and remove letterbox/pillarbox black bars before scaling.",
    ),
    click.option(
        "--tonemap",
        type=click.Choice(["auto", "on", "off"]),
        default="auto",
        show_default=True,
        help="Tone-map HDR (PQ/HLG) to SDR bt709; auto: when HDR.",
    ),
    click.option(
        "--chunk-frames",
        type=int,
        metavar="N",
        help="Frames per Zarr chunk [default: about 8 MiB per chunk].",
    ),
    click.option(
        "--compress",
        "compressor",
        type=click.Choice(["none", "zstd"]),
        default="none",
        show_default=True,
        help="Chunk compression (none lets raw bytes go straight to a GPU).",
    ),
    click.option(
        "--keyframes",
        is_flag=True,
        help="Preview: decode keyframes only, one column per keyframe (with --every N, "
        "every Nth keyframe). A whole film in seconds.",
    ),
    click.option(
        "--fast",
        is_flag=True,
        help="Cheaper decoding (no loop filter): faster, colours very slightly off.",
    ),
    click.option(
        "--hwaccel",
        type=click.Choice(["auto", "none", "cuda"]),
        default="none",
        show_default=True,
        help="Decode on an NVIDIA GPU (NVDEC + scale_cuda); auto: when ffmpeg and the "
        "driver support it.",
    ),
]
PREP_KEYS = (
    "every",
    "fps",
    "columns",
    "start",
    "end",
    "width",
    "height",
    "size",
    "crop",
    "tonemap",
    "chunk_frames",
    "compressor",
    "keyframes",
    "fast",
    "hwaccel",
)


def prep_request(params: dict):
    """The PrepRequest from the values of the PREP options."""
    from moviebarcode.prep import PrepRequest

    if sum(params[x] is not None for x in ("width", "height", "size")) > 1:
        raise click.UsageError("use only one of --width, --height and --size")
    return PrepRequest(**{key: params[key] for key in PREP_KEYS})


def render_options(width: str = "--width", height: str = "--height"):
    """The options that shape a barcode; ``width``/``height`` name the image size options (batch
    calls them --image-width/--image-height, its --width being prep's)."""
    return [
        click.option(
            "-k",
            "--k",
            "k",
            type=int,
            default=8,
            show_default=True,
            help="Colours (clusters) per frame.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["average", "squeeze", "dominant", "stacked", "least", "equal"]),
            default="stacked",
            show_default=True,
            help="average: mean colour; squeeze: frame squeezed to one column; "
            "dominant: the most populous cluster; stacked: all k clusters, as tall as "
            "their share; least: the least populous cluster; equal: all k at equal "
            "heights.",
        ),
        click.option(
            "--sort",
            type=click.Choice(["share", "lightness", "hue"]),
            default="share",
            show_default=True,
            help="Order of the bands in stacked/equal columns.",
        ),
        click.option(
            "--space",
            type=click.Choice(["rgb", "lab"]),
            default="rgb",
            show_default=True,
            help="Cluster in sRGB or in CIELAB (perceptually even).",
        ),
        click.option(
            width,
            "image_width",
            type=int,
            metavar="W",
            help="Resample the columns to W pixels wide.",
        ),
        click.option(
            height,
            "image_height",
            type=int,
            metavar="H",
            help="Image height [default: 9/16 of the width; squeeze: the frames' height].",
        ),
        click.option("--label", is_flag=True, help="Add a title and an hh:mm:ss time axis below."),
        click.option(
            "--gamma-naive",
            is_flag=True,
            help="average/squeeze: average sRGB values (the old look) instead of linear light.",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "gpu"]),
            default="auto",
            show_default=True,
            help="Where to cluster: auto takes the GPU when CuPy sees one.",
        ),
        click.option(
            "--engine",
            type=click.Choice(["numpy", "sklearn", "cupy", "cuml"]),
            default=None,
            help="Clustering engine [default: cupy on a GPU, numpy on the CPU]. sklearn "
            "and cuml cluster frame by frame (the original method, for reference).",
        ),
        click.option(
            "--n-init",
            type=int,
            default=DEFAULT_N_INIT,
            show_default=True,
            help="k-means restarts per frame (the best is kept).",
        ),
        click.option(
            "--max-iter", type=int, default=100, show_default=True, help="k-means iterations."
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
    ]


def render_opts(params: dict, **extra):
    """The RenderOptions from the values of the render options (plus ``extra`` fields)."""
    from moviebarcode.render import ClusterParams, RenderOptions

    return RenderOptions(
        mode=params["mode"],
        cluster=ClusterParams(
            k=params["k"],
            space=params["space"],
            n_init=params["n_init"],
            max_iter=params["max_iter"],
            seed=params["seed"],
        ),
        engine=params["engine"],
        device=params["device"],
        sort=params["sort"],
        width=params["image_width"],
        height=params["image_height"],
        gamma_correct=not params["gamma_naive"],
        label=params["label"],
        **extra,
    )
