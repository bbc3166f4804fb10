"""Every choice list of the library and the command line, defined once.

Each is a ``Literal`` type that the library's configs validate against, click's
``Choice`` options list, and the docs name; ``values(T)`` gives its values in order.
"""

from __future__ import annotations

from typing import Literal, get_args

from moviebarcode.errors import ParameterError

Mode = Literal[
    "average",
    "squeeze",
    "median",
    "mode",
    "brightest",
    "bright",
    "brightness",
    "dominant",
    "weighted-dominant",
    "stacked",
    "least",
    "equal",
]
"""How a frame becomes a column (see ``moviebarcode.columns``)."""
ClusterMode = Literal["dominant", "weighted-dominant", "stacked", "least", "equal"]
"""The modes drawn from k-means clusters."""
Region = Literal["whole", "foreground", "background", "high-contrast", "low-contrast"]
"""The pixels of a frame that a per-frame metric reads (see ``moviebarcode.regions``)."""
Colormap = Literal["grey", "viridis", "magma"]
"""How ``--mode brightness`` draws the luminance (see ``moviebarcode.metrics``)."""
By = Literal["frame", "shot"]
"""What a barcode's column or band stands for: a sampled frame, or a shot (needs cuts)."""
Sort = Literal["share", "lightness", "hue"]
"""The order of the bands in stacked and equal columns."""
Space = Literal["rgb", "lab"]
"""The colour space the clustering runs in."""
DeviceChoice = Literal["auto", "cpu", "gpu"]
"""Where stage two runs; auto takes the GPU when CuPy sees one."""
EngineName = Literal["numpy", "sklearn", "cupy", "cuml"]
"""The clustering engines (see ``moviebarcode.engines``)."""
CropChoice = Literal["auto", "none"]
Tonemap = Literal["auto", "on", "off"]
Compressor = Literal["none", "zstd"]
Hwaccel = Literal["auto", "none", "cuda"]
ThumbFormat = Literal["webp", "jpeg"]
"""The image format of the view page's thumbnails (``moviebarcode.view``)."""
Layout = Literal["linear", "circular"]
"""How a barcode is laid out: columns left to right, or wedges clockwise round a disc."""
Background = Literal["black", "transparent"]
"""What lies outside a circular barcode's disc."""
AlignMethod = Literal["local", "global"]
"""compare's sequence alignment: Smith–Waterman (local) or Needleman–Wunsch (global)."""


def values(choice: object) -> tuple[str, ...]:
    """The values of a ``Literal`` choice type, in their order."""
    return get_args(choice)


def check(choice: object, value: object, what: str) -> None:
    """Raise ParameterError unless ``value`` is one of ``choice``'s values; ``what`` names the
    option in the message (``--mode``)."""
    allowed = values(choice)
    if value not in allowed:
        raise ParameterError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
