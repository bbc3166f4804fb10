"""The options of a view page (``moviebarcode view``), in one frozen, validated config."""

from __future__ import annotations

from dataclasses import dataclass, field

from moviebarcode.choices import Mode, ThumbFormat, check
from moviebarcode.cluster import ClusterParams
from moviebarcode.errors import ParameterError

PAGE_BUDGET_MB = 9.0
"""The default size the page aims at, in MB (10^6 bytes): the thumbnails get what the
data leaves of it (a two-hour film at ``--every 24`` stays under 10 MB)."""
THUMB_MIN, THUMB_MAX = 16, 480
"""The least and the most thumbnail width, in pixels, that can be asked for."""


@dataclass(frozen=True)
class ViewOptions:
    """How to build a view page; validated on creation.

    ``cluster`` is the clustering shown first (made if the store does not have it yet);
    every other clustering cached in the store is offered too. ``mode`` is the mode shown
    first. ``thumb_width`` None sizes the thumbnails to fit ``budget_mb`` (the whole page's
    size in MB), 0 leaves them out; ``thumb_quality`` (1-100) and ``thumb_format`` say how
    they are encoded."""

    cluster: ClusterParams = field(default_factory=ClusterParams)
    mode: Mode = "stacked"
    thumb_width: int | None = None
    thumb_quality: int = 60
    thumb_format: ThumbFormat = "webp"
    budget_mb: float = PAGE_BUDGET_MB
    gamma_correct: bool = True
    title: str | None = None
    recompute: bool = False
    batch_frames: int | None = None

    def __post_init__(self):
        check(Mode, self.mode, "mode")
        check(ThumbFormat, self.thumb_format, "thumbnail format")
        w = self.thumb_width
        if w is not None and w != 0 and not THUMB_MIN <= w <= THUMB_MAX:
            raise ParameterError(
                f"--thumb-width must be 0 (no thumbnails) or {THUMB_MIN} to {THUMB_MAX}"
            )
        if not 1 <= self.thumb_quality <= 100:
            raise ParameterError("--thumb-quality must be 1 to 100")
        if not self.budget_mb > 0:
            raise ParameterError("--budget must be above 0 MB")
        if self.batch_frames is not None and self.batch_frames < 1:
            raise ParameterError("--batch-frames must be at least 1")
