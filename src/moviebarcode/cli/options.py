"""The command-line options of render (batch's too), defined once, with their choices and
defaults read from the library's configs; prep's are in prep_options."""

from __future__ import annotations

import click

from moviebarcode.choices import (
    Background,
    By,
    Colormap,
    DeviceChoice,
    EngineName,
    Layout,
    Mode,
    Region,
    Sort,
    Space,
)
from moviebarcode.cli._common import choice
from moviebarcode.cluster import K_MAX, N_INIT_LARGE, ClusterParams
from moviebarcode.kmeans import KMeansConfig
from moviebarcode.render import RenderOptions

_CLUSTER = ClusterParams()
_KMEANS = KMeansConfig()
_RENDER = RenderOptions()

_CLUSTER_OPTIONS = [
    click.option(
        "-k",
        "--k",
        "k",
        type=int,
        default=_CLUSTER.k,
        show_default=True,
        help=f"Colours (clusters) per frame, 1 to {K_MAX}.",
    ),
    click.option(
        "--mode",
        type=choice(Mode),
        default=_RENDER.mode,
        show_default=True,
        help="average: mean colour; squeeze: frame squeezed to one column; "
        "median: per-channel median; mode: the most frequent colour (16 levels a "
        "channel); brightest: the colour of the brightest pixels; bright: mean of the "
        "brightest 10%; brightness: mean luminance (Rec. 709 Y, linear light) in grey; "
        "dominant: the most populous cluster; weighted-dominant: the clusters mixed by "
        "share; stacked: all k clusters, as tall as their share; least: the least "
        "populous cluster; equal: all k at equal heights.",
    ),
    click.option(
        "--region",
        type=choice(Region),
        default=_RENDER.region,
        show_default=True,
        help="The pixels of each frame that the mode reads (the cluster modes: by frame "
        "only): the whole frame, its foreground or background "
        "(centre against the side sixths), or its tiles of high or low contrast with "
        "their neighbours.",
    ),
    click.option(
        "--colormap",
        type=choice(Colormap),
        default=_RENDER.colormap,
        show_default=True,
        help="How --mode brightness draws the luminance: in grey, or with a colour map.",
    ),
    click.option(
        "--by",
        type=choice(By),
        default=_RENDER.by,
        show_default=True,
        help="frame: one column per sampled frame; shot: one band per shot, as wide as the "
        "shot lasts, coloured from all its frames together (k-means over their pooled "
        "pixels; average/squeeze: their mean). Needs a store prepped with shot cuts.",
    ),
    click.option(
        "--sort",
        type=choice(Sort),
        default=_RENDER.sort,
        show_default=True,
        help="Order of the bands in stacked/equal columns.",
    ),
    click.option(
        "--space",
        type=choice(Space),
        default=_CLUSTER.space,
        show_default=True,
        help="Cluster in sRGB or in CIELAB (perceptually even).",
    ),
]
_DRAW_OPTIONS = [
    click.option(
        "--label",
        is_flag=True,
        help="Add a title (with the shot count, where the store has cuts) and an hh:mm:ss "
        "time axis below.",
    ),
    click.option(
        "--cuts",
        "cut_marks",
        is_flag=True,
        help="Mark each shot cut with a thin line (1 px per 1000 px of width), black or white "
        "to contrast. Needs a store prepped with shot cuts.",
    ),
    click.option(
        "--gamma-naive",
        is_flag=True,
        help="average/squeeze: average sRGB values (the old look) instead of linear light.",
    ),
    click.option(
        "--device",
        type=choice(DeviceChoice),
        default=_CLUSTER.device,
        show_default=True,
        help="Where to cluster: auto takes the GPU when CuPy sees one.",
    ),
    click.option(
        "--engine",
        type=choice(EngineName),
        default=_CLUSTER.engine,
        help="Clustering engine [default: cupy on a GPU, numpy on the CPU]. sklearn "
        "and cuml cluster frame by frame (the original method, for reference).",
    ),
    click.option(
        "--n-init",
        type=int,
        default=_CLUSTER.n_init,
        help=f"k-means restarts per frame (the best is kept) [default: {_KMEANS.n_init}; "
        f"{N_INIT_LARGE} for frames larger than 160x90].",
    ),
    click.option(
        "--max-iter",
        type=int,
        default=_CLUSTER.max_iter,
        show_default=True,
        help="Most k-means iterations of each phase (the restarts' phases share them).",
    ),
    click.option(
        "--seed",
        type=int,
        default=_CLUSTER.seed,
        show_default=True,
        help="Random seed, a whole number >= 0.",
    ),
]


def render_options(width: str = "--width", height: str = "--height") -> list:
    """The options that shape a barcode; ``width``/``height`` name the image size options (batch
    calls them --image-width/--image-height, its --width being prep's)."""
    return [
        *_CLUSTER_OPTIONS,
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
        *_DRAW_OPTIONS,
    ]


LAYOUT = [
    click.option(
        "--layout",
        type=choice(Layout),
        default=_RENDER.layout,
        show_default=True,
        help="linear: time from left to right; circular: clockwise from 12 o'clock, each "
        "column a wedge, stacked bands rings (--label: time ticks round the rim).",
    ),
    click.option(
        "--size",
        type=click.IntRange(min=16),
        default=_RENDER.size,
        show_default=True,
        metavar="N",
        help="circular: the side of the square image, pixels.",
    ),
    click.option(
        "--background",
        type=choice(Background),
        default=_RENDER.background,
        show_default=True,
        help="circular: outside the disc.",
    ),
]
LAYOUT_KEYS = ("layout", "size", "background")


def render_opts(params: dict, **extra) -> RenderOptions:
    """The RenderOptions from the values of the render options (plus ``extra`` fields)."""
    return RenderOptions(
        mode=params["mode"],
        region=params["region"],
        colormap=params["colormap"],
        by=params["by"],
        cuts=params["cut_marks"],
        cluster=ClusterParams(
            k=params["k"],
            space=params["space"],
            n_init=params["n_init"],
            max_iter=params["max_iter"],
            seed=params["seed"],
            engine=params["engine"],
            device=params["device"],
        ),
        sort=params["sort"],
        width=params["image_width"],
        height=params["image_height"],
        gamma_correct=not params["gamma_naive"],
        label=params["label"],
        **extra,
    )
