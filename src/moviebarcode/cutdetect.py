"""Shot cut detection: a content score for each decoded frame, and the cuts it implies.

The score is PySceneDetect's ``ContentDetector`` score, the field's reference: the mean
absolute difference of hue, saturation and value (OpenCV's 8-bit HSV) between a frame and
the one decoded before it, averaged over the three channels, on a small copy of each frame
(:data:`SMALL`). A cut is a frame whose score reaches the threshold, at least
``min_shot`` seconds after the previous cut (and after the start), as PySceneDetect's
``min_scene_len`` does in frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMALL = (48, 27)
"""(width, height) of the copy of every decoded frame that is scored: as accurate against
PySceneDetect (which scores whole frames) as 64x36 on the 10-minute Big Buck Bunny, at half
the cost (README, benchmarks)."""

_SHIFT = 12


def _table(scale: int) -> np.ndarray:
    i = np.arange(256, dtype=np.float64)
    t = np.round(scale * (1 << _SHIFT) / np.maximum(i, 1))
    return np.where(i > 0, t, 0).astype(np.int32)


_SDIV = _table(255)  # OpenCV's sdiv_table: (255 << 12) / v
_HDIV = _table(30)  # hdiv_table180: (180 << 12) / (6 * diff)


def hsv_planes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's ``COLOR_RGB2HSV`` for uint8 RGB, bit for bit, as three int32 planes: H
    0..179, S and V 0..255, each of shape ``(n, pixels)``.

    Parameters
    ----------
    frames : ndarray of uint8, shape (n, ..., 3)
        RGB pixels.
    """
    x = frames.reshape(len(frames), -1, 3)
    r, g, b = (x[..., c].astype(np.int32) for c in range(3))
    v = np.maximum(np.maximum(r, g), b)
    diff = v - np.minimum(np.minimum(r, g), b)
    half = 1 << (_SHIFT - 1)
    s = _SDIV.take(v)
    s *= diff
    s += half
    s >>= _SHIFT
    h = r - g + 4 * diff  # where blue is the largest
    np.copyto(h, b - r + 2 * diff, where=v == g)
    np.copyto(h, g - b, where=v == r)  # red wins ties, then green, as in OpenCV
    h *= _HDIV.take(diff)
    h += half
    h >>= _SHIFT
    h += 180 * (h < 0)
    return h, s, v


def hsv(frames: np.ndarray) -> np.ndarray:
    """:func:`hsv_planes` as an image: uint8, the shape of ``frames``."""
    planes = hsv_planes(frames.reshape(-1, 1, 3) if frames.ndim < 2 else frames)
    return np.stack(planes, axis=-1).astype(np.uint8).reshape(frames.shape)


def content_scores(small: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
    """Each frame's content score against the frame before it.

    Parameters
    ----------
    small : ndarray of uint8, shape (n, h, w, 3)
        Consecutive decoded frames, RGB, at the detection size.
    before : ndarray of uint8, shape (h, w, 3), optional
        The frame decoded just before ``small[0]``; without it the first score is NaN.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    if not len(small):
        return np.zeros(0)
    if before is not None:
        small = np.concatenate([before[None], small])
    total = np.zeros(len(small) - 1)
    for plane in hsv_planes(small):
        total += np.abs(np.diff(plane, axis=0)).sum(axis=1)
    scores = total / small[0].size  # the mean over pixels and the three channels
    return scores if before is not None else np.concatenate([[np.nan], scores])


@dataclass(frozen=True)
class ShotDetection:
    """How cuts are found; validated on creation and recorded in the store.

    threshold : a frame whose content score reaches it starts a new shot (PySceneDetect's
        ``ContentDetector`` default, 27).
    min_shot_frames : no shot is shorter than this many frame intervals of the film
        (PySceneDetect's ``min_scene_len``, 15); cuts closer together are merged as
        PySceneDetect's flash filter merges them.
    """

    threshold: float = 27.0
    min_shot_frames: int = 15

    def __post_init__(self):
        if not 0 < self.threshold <= 255:
            raise ValueError("the cut threshold must be in (0, 255]")
        if self.min_shot_frames < 0:
            raise ValueError("the minimum shot length must be at least 0 frames")

    def to_dict(self, **facts) -> dict:
        """The store's ``shots`` attribute: detector, settings and ``facts``."""
        return {
            "detector": "content",
            "score": "mean |dHSV| (PySceneDetect ContentDetector, weights 1,1,1,0)",
            "threshold": self.threshold,
            "min_shot_frames": self.min_shot_frames,
            "size": list(SMALL),
            **facts,
        }


def merge_scores(times: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of scores (runs, segments, resumes) as one sequence: sorted by time, one entry
    per frame (a scored entry wins over an unscored one for the same frame), entries without
    a time dropped."""
    times = np.asarray(times, np.float64)
    scores = np.asarray(scores, np.float64)
    ok = ~np.isnan(times)
    times, scores = times[ok], scores[ok]
    # by time, the scored entries of a frame first
    order = np.lexsort((np.isnan(scores), times))
    times, scores = times[order], scores[order]
    first = np.ones(len(times), bool)
    first[1:] = np.diff(times) > 1e-6
    return times[first], scores[first]


def pick_cuts(
    times: np.ndarray, scores: np.ndarray, fps: float | None, detection: ShotDetection
) -> np.ndarray:
    """The cuts (times of the first frame of each new shot) in one film's scores.

    A frame at or above the threshold is a cut when at least ``min_shot_frames`` frame
    intervals passed since the last frame above it; a burst of cuts closer than that is
    merged into one, at its last frame, as PySceneDetect's ``FlashFilter`` (mode MERGE)
    does. Lengths are measured in time, so that the rule holds when only some frames are
    decoded (``prep --fast``).

    Parameters
    ----------
    times, scores : ndarray of float64, shape (n,)
        Every scored frame, in order (see :func:`merge_scores`); NaN scores never cut.
    fps : float or None
        The film's frame rate (None: 25).
    detection : ShotDetection
    """
    min_len = detection.min_shot_frames / (fps or 25.0) - 1e-6
    above_at = np.flatnonzero(np.asarray(scores) >= detection.threshold)
    if not len(times):
        return np.zeros(0)
    cuts: list[float] = []
    last_above = float(times[0])  # the filter starts at the first frame it sees
    merging, merge_start, enabled = False, 0.0, False
    for i in above_at:
        t = float(times[i])
        if merging:
            # the merge ends at the first frame below the threshold at least min_len after
            # the last frame above it: here, if one lies between that frame and this one
            j = np.searchsorted(times, last_above + min_len, side="left")
            if j < i and merge_start + min_len <= last_above:
                cuts.append(last_above)
                merging = False
        met = t - last_above >= min_len
        if not merging and met:
            enabled = True
            cuts.append(t)
        elif not merging and enabled:
            merging, merge_start = True, t
        last_above = t
    if merging and merge_start + min_len <= last_above:
        if np.searchsorted(times, last_above + min_len, side="left") < len(times):
            cuts.append(last_above)
    return np.asarray(cuts, np.float64)
