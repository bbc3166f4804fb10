"""Shots: a store's sampled frames grouped by its cuts, and the bands that draw them.

A store prepped with cut detection holds ``cuts``: the time of the first frame of each
shot after the first. Shot ``i`` spans ``[start_i, start_{i+1})``; the first starts at
the first sampled frame, the last ends where the store's film ends (the last decoded
frame's time plus one frame, see :func:`covered_end`). A sampled frame belongs to the
shot whose span holds its time.

A shot shorter than the sampling interval may hold no sampled frame. It keeps its own
band all the same (the cutting rhythm stays on the barcode), drawn with the colours of
the shot that holds the sampled frame nearest to its middle (:attr:`Shots.source`).

Bands are as wide as their shot's duration, with at least 1 px each and widths that
fill the image exactly (:func:`band_widths`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moviebarcode.colorspace import linear_to_srgb, srgb_to_linear
from moviebarcode.errors import InputError, ParameterError
from moviebarcode.store import FrameStore


@dataclass(frozen=True, eq=False)
class Shots:
    """A film's shots and its sampled frames; validated on creation.

    Attributes
    ----------
    starts, ends : ndarray of shape (S,), float64
        Each shot's span in seconds, ``[start, end)``, one after the other.
    times : ndarray of shape (n,), float64
        The sampled frames' times, sorted.
    """

    starts: np.ndarray
    ends: np.ndarray
    times: np.ndarray

    def __post_init__(self):
        s, e = self.starts, self.ends
        if s.ndim != 1 or s.shape != e.shape or len(s) < 1:
            raise ValueError("starts and ends must be 1-d arrays of the same length, >= 1")
        if np.any(e <= s) or np.any(s[1:] != e[:-1]):
            raise ValueError("shots must be consecutive spans of positive duration")
        if np.any(np.diff(self.times) < 0):
            raise ValueError("frame times must be sorted")

    @property
    def n(self) -> int:
        """The number of shots."""
        return len(self.starts)

    @property
    def durations(self) -> np.ndarray:
        """(S,) float64 seconds."""
        return self.ends - self.starts

    @property
    def frame_shot(self) -> np.ndarray:
        """(n,) int64: the shot of each sampled frame."""
        return np.searchsorted(self.starts[1:], self.times, side="right")

    @property
    def frames(self) -> np.ndarray:
        """(S, 2) int64: each shot's sampled frames, ``[first, stop)``; empty when none."""
        at = np.arange(self.n)
        fs = self.frame_shot
        return np.stack([np.searchsorted(fs, at), np.searchsorted(fs, at, side="right")], 1)

    @property
    def sampled(self) -> np.ndarray:
        """(S,) bool: whether a shot holds a sampled frame."""
        f = self.frames
        return f[:, 1] > f[:, 0]

    @property
    def source(self) -> np.ndarray:
        """(S,) int64: the shot whose colours draw each shot: itself when it holds a
        sampled frame, else the shot of the sampled frame nearest its middle (the
        earlier on a tie)."""
        t, n = self.times, len(self.times)
        mid = (self.starts + self.ends) / 2
        j = np.searchsorted(t, mid)  # the first frame at or after the middle
        before, after = np.clip(j - 1, 0, n - 1), np.clip(j, 0, n - 1)
        near = np.where(np.abs(mid - t[before]) <= np.abs(t[after] - mid), before, after)
        return np.where(self.sampled, np.arange(self.n), self.frame_shot[near])

    @property
    def sampled_index(self) -> np.ndarray:
        """(S,) int64: each shot's row among the sampled shots, for :attr:`source`'s shot
        (how results computed for the sampled shots only are spread to every shot)."""
        rank = np.cumsum(self.sampled) - 1
        return rank[self.source]


def shot_spans(times: np.ndarray, cuts: np.ndarray, end: float) -> Shots:
    """The shots of sampled frames at ``times`` (n,) for ``cuts`` (m,) seconds, the film
    ending at ``end``: the first shot starts at ``times[0]``; cuts outside
    ``(times[0], end)`` and repeated cuts are dropped."""
    times = np.asarray(times, np.float64)
    if len(times) < 1:
        raise ValueError("a film needs at least one sampled frame")
    start = float(times[0])
    end = max(float(end), float(times[-1]))
    if end <= start:
        end = start + 1.0  # one frame: a second of film
    cuts = np.unique(np.asarray(cuts, np.float64))
    cuts = cuts[(cuts > start) & (cuts < end)]
    return Shots(np.concatenate([[start], cuts]), np.concatenate([cuts, [end]]), times)


def covered_end(store: FrameStore) -> float:
    """Where a store's film ends: its last decoded frame's time plus one frame (at the
    probed frame rate), else the last sampled frame's time plus the median step between
    sampled frames (a second for a single frame)."""
    times = store.times
    last = (store.meta.get("decode") or {}).get("last_decoded_time")
    fps = (store.meta.get("probe") or {}).get("fps")
    if last is not None and fps:
        return max(float(last) + 1.0 / float(fps), float(times[-1]))
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    return float(times[-1]) + (step if step > 0 else 1.0)


def no_cuts_message(store: FrameStore) -> str:
    """The one line for a store without cuts."""
    return (
        f"{store.path} has no shot cuts (prepped before cut detection, with --no-shots or "
        f"--keyframes); run `moviebarcode prep --shots MOVIE -o {store.path}` to add them"
    )


def shots_of(store: FrameStore) -> Shots:
    """The shots of a complete ``store``; InputError when it holds no cuts."""
    cuts = store.cuts
    if cuts is None:
        raise InputError(no_cuts_message(store))
    return shot_spans(store.times, cuts, covered_end(store))


def band_widths(durations: np.ndarray, width: int) -> np.ndarray:
    """Integer widths (S,) summing to ``width``, each at least 1, as near to proportional
    to ``durations`` as that allows: shots whose share is under 1 px get 1 px, the others
    share what is left in proportion, rounded by largest remainder (ties to the earlier).

    Raises ParameterError when ``width`` is below the number of shots."""
    d = np.asarray(durations, np.float64)
    n = len(d)
    if width < n:
        raise ParameterError(
            f"--width {width} is narrower than the film's {n} shots (each band is at least "
            f"1 px wide); give --width {n} or more"
        )
    floor = np.zeros(n, bool)  # the shots held at 1 px
    while True:
        room = width - floor.sum()
        ideal = np.where(floor, 1.0, room * d / max(d[~floor].sum(), 1e-300))
        below = ~floor & (ideal < 1.0)
        if not below.any():
            break
        floor |= below
    widths = np.where(floor, 1, np.floor(ideal)).astype(np.int64)
    left = width - int(widths.sum())
    order = np.argsort(-(ideal - np.floor(ideal)) * ~floor, kind="stable")
    widths[order[:left]] += 1
    return widths


def cut_columns(shots: Shots, width: int, widths: np.ndarray | None = None) -> np.ndarray:
    """The image column where each cut's mark goes: the first column of each shot after
    the first, on a barcode ``width`` px wide, drawn by shot (bands of ``widths``) or,
    without ``widths``, by frame (one column per sampled frame, resampled to ``width``:
    the first column of the new shot's first frame). Cuts with no sampled frame after
    them, on a barcode by frame, have no column."""
    if widths is not None:
        return np.cumsum(widths)[:-1].astype(np.int64)
    n = len(shots.times)
    first = np.searchsorted(shots.times, shots.starts[1:])  # frame index of each new shot
    first = np.unique(first[(first > 0) & (first < n)])
    return np.floor(first * width / n + 0.5).astype(np.int64)


def shot_means(values: np.ndarray, shots: Shots, *, linear: bool) -> np.ndarray:
    """The mean over each sampled shot's frames of per-frame statistics ``values``
    (n, ...) float sRGB 0..255 (average colours or squeezed columns): in linear light
    (each frame's values converted, averaged, converted back) or, without ``linear``, on
    the sRGB values. Every frame has as many pixels, so this is the mean over the shot's
    pixels. Returns (S', ...) float32, S' the sampled shots."""
    f = shots.frames[shots.sampled]
    v = srgb_to_linear(values, xp=np) if linear else np.asarray(values, np.float32)
    sums = np.add.reduceat(v.astype(np.float64), f[:, 0], axis=0)
    means = sums / (f[:, 1] - f[:, 0]).reshape(-1, *([1] * (v.ndim - 1)))
    out = linear_to_srgb(means, xp=np) if linear else means
    return np.asarray(out, np.float32)
