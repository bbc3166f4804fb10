"""prep's command-line options (batch's too), apart from render's so that ``moviebarcode prep``
imports no clustering or drawing code; choices and defaults read from PrepRequest."""

from __future__ import annotations

import dataclasses

import click

from moviebarcode.choices import Compressor, CropChoice, Hwaccel, Tonemap
from moviebarcode.cli._common import SizeParam, TimeParam, choice
from moviebarcode.prep import PrepRequest

_REQ = PrepRequest()

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
        default=_REQ.start,
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
        type=choice(CropChoice),
        default=_REQ.crop,
        show_default=True,
        help="Detect and remove letterbox/pillarbox black bars before scaling.",
    ),
    click.option(
        "--tonemap",
        type=choice(Tonemap),
        default=_REQ.tonemap,
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
        type=choice(Compressor),
        default=_REQ.compressor,
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
        type=choice(Hwaccel),
        default=_REQ.hwaccel,
        show_default=True,
        help="Decode on an NVIDIA GPU (NVDEC + scale_cuda); auto: when ffmpeg and the "
        "driver support it.",
    ),
    click.option(
        "--shots/--no-shots",
        default=_REQ.shots,
        show_default=True,
        help="Find the shot cuts while decoding (every decoded frame is scored, as "
        "PySceneDetect's ContentDetector does). On a complete store without cuts, adds "
        "them: the film is decoded again, the frames are kept.",
    ),
    click.option(
        "--cut-threshold",
        type=float,
        default=_REQ.cut_threshold,
        show_default=True,
        metavar="SCORE",
        help="Content score (mean HSV change, 0-255) that starts a new shot; lower finds "
        "more cuts. Changing it on a complete store picks the cuts again from the stored "
        "scores, without decoding.",
    ),
]
PREP_KEYS = tuple(f.name for f in dataclasses.fields(PrepRequest))


def prep_request(params: dict) -> PrepRequest:
    """The PrepRequest from the values of the PREP options."""
    return PrepRequest(**{key: params[key] for key in PREP_KEYS})
