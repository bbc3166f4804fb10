"""Compare two films' barcodes: two cuts of one film, two grades, two copies.

From each complete store, the cached average colour of every frame (``render.frame_columns``)
and its time. Then, as KALMUS measures them (``kalmus.utils.measure_utils``) or better:

- NRMSE and SSIM (scikit-image) between the two barcodes resampled to a common length, each
  over its own span (``n = max`` of the two frame counts);
- the best time shift: the normalised cross-correlation of the two colour signals, each
  resampled by time at a common step (the coarser of the two), over every shift that
  overlaps at least half the shorter film; ``lag`` seconds means B(t) ~ A(t - lag), in the
  stores' own times (seconds from the start of each source file);
- a sequence alignment (``moviebarcode.align``) of the hue and brightness strings at that
  step: its score (and the hue's and brightness's alone), and the aligned time pairs, runs
  of which are the matched stretches.

``compare_image`` draws both barcodes on one time axis and the matched stretches between.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from moviebarcode._fmt import hms, table
from moviebarcode.align import SCORES, Alignment, align, brightness_symbols, hue_symbols
from moviebarcode.choices import AlignMethod, check
from moviebarcode.errors import InputError, ParameterError
from moviebarcode.render import frame_columns
from moviebarcode.store import FrameStore

__all__ = ["CompareOptions", "Comparison", "compare", "compare_image"]

_LUMA = np.array([0.299, 0.587, 0.114])  # KALMUS's brightness: OpenCV's grey


@dataclass(frozen=True)
class CompareOptions:
    """How to compare; validated on creation. ``method``: local (Smith–Waterman) or global
    (Needleman–Wunsch) alignment; ``min_overlap``: the least share of the shorter film two
    shifted signals must overlap; ``min_stretch``: aligned steps in a row that make a
    matched stretch; ``max_cells``: the alignment's largest table (both strings are
    thinned by the same factor beyond it)."""

    method: AlignMethod = "local"
    min_overlap: float = 0.5
    min_stretch: int = 3
    max_cells: int = 120_000_000

    def __post_init__(self):
        check(AlignMethod, self.method, "--method")
        if not 0 < self.min_overlap <= 1:
            raise ParameterError("min_overlap must be in (0, 1]")
        if self.min_stretch < 1 or self.max_cells < 1:
            raise ParameterError("min_stretch and max_cells must be at least 1")


@dataclass(frozen=True)
class Film:
    """One side: its store, average colours (n, 3) sRGB 0..255 and times (n,) seconds."""

    path: Path
    colours: np.ndarray
    times: np.ndarray

    @property
    def step(self) -> float:
        d = np.diff(self.times)
        return float(np.median(d)) if len(d) else 1.0


@dataclass
class Comparison:
    """What ``compare`` found. ``step`` is the common time step (s) of the resampled
    signals ``a``/``b`` (n, 3), which start at ``a_start``/``b_start``; ``pairs`` the
    aligned indices into them; ``stretches`` runs of pairs, (k, 4): a0, a1, b0, b1 (end
    exclusive)."""

    films: tuple[Film, Film]
    nrmse: float
    ssim: float
    lag: float
    correlation: float
    step: float
    a: np.ndarray
    b: np.ndarray
    a_start: float
    b_start: float
    method: str
    score: float
    normalized: float
    hue_score: float
    brightness_score: float
    pairs: np.ndarray
    stretches: np.ndarray
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain JSON: the metrics, the aligned time pairs and the stretches in seconds."""
        ta = self.a_start + self.pairs[:, 0] * self.step
        tb = self.b_start + self.pairs[:, 1] * self.step
        s = self.stretches.astype(np.float64) * self.step
        spans = s + np.array([self.a_start, self.a_start, self.b_start, self.b_start])
        return {
            "a": _film_dict(self.films[0]),
            "b": _film_dict(self.films[1]),
            "common_length": int(max(len(f.times) for f in self.films)),
            "nrmse": self.nrmse,
            "ssim": self.ssim,
            "lag_seconds": self.lag,
            "lag_correlation": self.correlation,
            "step_seconds": self.step,
            "alignment": {
                "method": self.method,
                "score": self.score,
                "normalized": self.normalized,
                "hue_score": self.hue_score,
                "brightness_score": self.brightness_score,
                "pairs": np.stack([ta, tb], axis=1).round(3).tolist(),
                "stretches": [
                    {"a": [float(r[0]), float(r[1])], "b": [float(r[2]), float(r[3])]}
                    for r in spans.round(3)
                ],
            },
            "seconds": self.seconds,
        }

    def report(self) -> str:
        """The metrics as a plain-text table."""
        a, b = self.films
        matched = int((self.stretches[:, 1] - self.stretches[:, 0]).sum()) * self.step
        rows = [
            ("A", a.path.name, f"{len(a.times)} frames, {hms(_span(a))}"),
            ("B", b.path.name, f"{len(b.times)} frames, {hms(_span(b))}"),
            ("NRMSE", f"{self.nrmse:.4f}", "0: identical (min-max normalised)"),
            ("SSIM", f"{self.ssim:.4f}", "1: identical"),
            (
                "best lag",
                f"{self.lag:+.2f} s",
                f"B(t) ~ A(t - lag), correlation {self.correlation:.3f}",
            ),
            ("alignment", f"{self.score:.1f}", f"{self.method}, normalised {self.normalized:.3f}"),
            ("  hue", f"{self.hue_score:.1f}", "the hue string alone"),
            ("  brightness", f"{self.brightness_score:.1f}", "the brightness string alone"),
            (
                "matched",
                f"{len(self.stretches)} stretches",
                f"{hms(matched)} of A, step {self.step:g} s",
            ),
        ]
        return table(["", "value", ""], rows)


def _film_dict(f: Film) -> dict:
    return {
        "store": str(f.path),
        "frames": len(f.times),
        "start": float(f.times[0]),
        "duration": _span(f),
    }


def _span(f: Film) -> float:
    return float(f.times[-1] - f.times[0]) + f.step


def load_film(path: str | os.PathLike) -> Film:
    """A complete store's average colours (cached in it when it can be written)."""
    store = FrameStore.open(path)
    store.require_complete()
    colours = np.asarray(frame_columns(store, "average"), np.float64)
    return Film(Path(path), colours, np.asarray(store.times, np.float64))


def resample_length(colours: np.ndarray, n: int) -> np.ndarray:
    """``colours`` (m, 3) at ``n`` points evenly over its own span (nearest sample)."""
    m = len(colours)
    idx = np.minimum(((np.arange(n) + 0.5) * m / n).astype(np.int64), m - 1)
    return colours[idx]


def resample_step(film: Film, step: float) -> np.ndarray:
    """``film``'s colours at ``times[0] + i * step`` (the last sample at or before each)."""
    n = max(1, int(np.floor((film.times[-1] - film.times[0]) / step + 1e-9)) + 1)
    t = film.times[0] + np.arange(n) * step
    idx = np.clip(np.searchsorted(film.times, t + 1e-9 * step, side="right") - 1, 0, None)
    return film.colours[idx]


def image_metrics(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """NRMSE and SSIM of two barcodes (n, 3) of one length. NRMSE: the RMS difference over
    the larger of the two value ranges (KALMUS's "min max"; 255 where both are flat). SSIM:
    scikit-image's, of the barcodes as images 7 rows high (its window)."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise InputError(
            "compare needs scikit-image: pip install 'moviebarcode[compare]'"
        ) from None
    ia = np.repeat(a[None], 7, axis=0)
    ib = np.repeat(b[None], 7, axis=0)
    win = min(7, len(a) if len(a) % 2 else len(a) - 1)
    if win < 3:
        raise InputError("compare needs films of at least 3 frames")
    span = max(np.ptp(a), np.ptp(b)) or 255.0
    nrmse = float(np.sqrt(np.mean((a - b) ** 2)) / span)
    ssim = float(structural_similarity(ia, ib, win_size=win, channel_axis=2, data_range=255.0))
    return nrmse, ssim


def best_shift(a: np.ndarray, b: np.ndarray, min_overlap: float) -> tuple[int, float]:
    """The shift ``k`` maximising the correlation of ``a[j + k]`` with ``b[j]`` (Pearson's,
    over the overlap, averaged over the channels), over shifts overlapping at least
    ``min_overlap`` of the shorter; and that correlation."""
    n, m = len(a), len(b)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(n + m)))
    spec = np.fft.rfft(a, size, axis=0) * np.conj(np.fft.rfft(b, size, axis=0))
    ks = np.arange(-(m - 1), n)
    s_ab = np.fft.irfft(spec, size, axis=0)[ks % size]
    lo_a, lo_b = np.maximum(0, ks), np.maximum(0, -ks)
    count = np.minimum(m, n - ks) - lo_b
    s_a, s_aa = _window_sums(a, lo_a, lo_a + count)
    s_b, s_bb = _window_sums(b, lo_b, lo_b + count)
    c = count[:, None].astype(np.float64)
    cov = s_ab - s_a * s_b / c
    var = (s_aa - s_a**2 / c) * (s_bb - s_b**2 / c)
    r = np.where(var > 1e-9, cov / np.sqrt(np.maximum(var, 1e-9)), 0.0).mean(axis=1)
    need = max(2, int(np.ceil(min_overlap * min(n, m))))
    r = np.where(count >= min(need, min(n, m)), r, -np.inf)
    best = int(np.argmax(r))
    return int(ks[best]), float(r[best])


def _window_sums(x: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Sums of ``x`` and of its squares over rows ``lo:hi``, per channel."""
    c1 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    c2 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x**2, axis=0)])
    return c1[hi] - c1[lo], c2[hi] - c2[lo]


def symbols(colours: np.ndarray) -> np.ndarray:
    """Hue sector and brightness level per colour: int (n, 2)."""
    return np.stack([hue_symbols(colours), brightness_symbols(colours @ _LUMA)], axis=1)


def stretches(pairs: np.ndarray, min_len: int) -> np.ndarray:
    """Runs of consecutive diagonal pairs at least ``min_len`` long: (k, 4) a0, a1, b0, b1."""
    if len(pairs) == 0:
        return np.zeros((0, 4), np.int64)
    breaks = np.flatnonzero(np.any(np.diff(pairs, axis=0) != 1, axis=1)) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(pairs)]])
    keep = ends - starts >= min_len
    s, e = starts[keep], ends[keep] - 1
    return np.stack([pairs[s, 0], pairs[e, 0] + 1, pairs[s, 1], pairs[e, 1] + 1], axis=1)


def _aligned(a: np.ndarray, b: np.ndarray, opts: CompareOptions) -> tuple[Alignment, int, list]:
    """The joint alignment (thinned by a factor when too large), that factor, and the hue's
    and brightness's scores alone."""
    thin = max(1, int(np.ceil(np.sqrt(len(a) * len(b) / opts.max_cells))))
    sa, sb = symbols(a[::thin]), symbols(b[::thin])
    local = opts.method == "local"
    joint = align(sa, sb, local=local)
    alone = [align(sa[:, c], sb[:, c], local=local, traceback=False).score for c in (0, 1)]
    return joint, thin, alone


def compare(path_a, path_b, opts: CompareOptions | None = None) -> Comparison:
    """Compare the barcodes of two complete stores (see the module's docstring)."""
    opts = opts or CompareOptions()
    t0 = time.perf_counter()
    fa, fb = load_film(path_a), load_film(path_b)
    n = max(len(fa.times), len(fb.times))
    nrmse, ssim = image_metrics(resample_length(fa.colours, n), resample_length(fb.colours, n))
    step = max(fa.step, fb.step)
    a, b = resample_step(fa, step), resample_step(fb, step)
    k, corr = best_shift(a, b, opts.min_overlap)
    lag = float(fb.times[0] - fa.times[0] - k * step)
    joint, thin, (hue, bright) = _aligned(a, b, opts)
    pairs = joint.pairs * thin
    top = 2.0 * SCORES[0] * max(1, min(len(a), len(b)) // thin)
    return Comparison(
        (fa, fb), nrmse, ssim, lag, corr, step, a, b, float(fa.times[0]), float(fb.times[0]),
        opts.method, joint.score, joint.score / top, hue, bright, pairs,
        stretches(joint.pairs, opts.min_stretch) * thin, time.perf_counter() - t0,
    )  # fmt: skip


def compare_image(c: Comparison, *, bar: int = 60, gap: int = 80) -> Image.Image:
    """Both barcodes on one time axis (A above, B below, a column per common step) and, in
    between, each matched stretch as a translucent band joining its times in A and B."""
    t0 = min(c.a_start, c.b_start)
    xa = int(round((c.a_start - t0) / c.step))
    xb = int(round((c.b_start - t0) / c.step))
    width = max(xa + len(c.a), xb + len(c.b))
    img = Image.new("RGBA", (width, 2 * bar + gap), (0, 0, 0, 255))
    for x, cols, y in ((xa, c.a, 0), (xb, c.b, bar + gap)):
        row = np.clip(np.rint(cols), 0, 255).astype(np.uint8)[None]
        img.paste(Image.fromarray(np.repeat(row, bar, axis=0), "RGB"), (x, y))
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for a0, a1, b0, b1 in c.stretches.tolist():
        top, bottom = bar + 1, bar + gap - 1
        quad = [(xa + a0, top), (xa + a1, top), (xb + b1, bottom), (xb + b0, bottom)]
        draw.polygon(quad, fill=(255, 255, 255, 110), outline=(255, 255, 255, 200))
    return Image.alpha_composite(img, layer).convert("RGB")
