"""Speed and quality of batched_kmeans against scikit-learn on real film frames.

Usage: python scripts/kmeans_quality.py [--clips trailer,oa4,...] [--k 8] [--kw key=value ...]

Decodes frames of the bundled test clips (160x90, area-scaled, sRGB), runs
scikit-learn KMeans(k, 'k-means++', n_init=20 and n_init=4, random_state=0) frame by
frame and :func:`moviebarcode.kmeans.batched_kmeans` on the whole batch, and prints
ms/frame and mean inertia of each (sklearn timed on at most 15 frames; its per-frame
inertias are cached under /tmp). ``--kw`` sets fields of its
:class:`~moviebarcode.kmeans.KMeansConfig` (e.g. ``--kw n_init=4 coreset=False
pixel_iter=inf``) or its keywords ``block_frames`` and ``n_threads``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import math
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.kmeans import KMeansConfig, batched_kmeans

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CLIPS = {  # name: (file, keep every n-th frame)
    "trailer": ("bbb_trailer_h264.mp4", 24),
    "oa4": ("oa4_launch_vp8.webm", 6),
    "shepard": ("shepard_calais_1906_theora.ogv", 6),
    "bbb": ("bbb_excerpt_mpeg4.mkv", 4),
}


def decode(name: str, width: int = 160, height: int = 90) -> np.ndarray:
    file, every = CLIPS[name]
    vf = f"select='not(mod(n,{every}))',scale={width}:{height}:flags=area,format=rgb24"
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(DATA / file), "-vf", vf]
    cmd += ["-fps_mode", "passthrough", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height * width, 3).astype(np.float32)


def sklearn_inertia(frames: np.ndarray, k: int, n_init: int, n_timed: int = 15):
    """Per-frame inertia (cached) and ms/frame over the first ``n_timed`` frames."""
    from sklearn.cluster import KMeans

    key = hashlib.sha1(frames.tobytes()).hexdigest()[:16]
    cache = Path(f"/tmp/kmeans_quality_{key}_k{k}_n{n_init}.npz")
    if cache.exists():
        z = np.load(cache)
        return z["inertia"], float(z["ms"])
    inertia = np.empty(len(frames))
    t_timed = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=0)
            km.fit(frame)
            if i < n_timed:
                t_timed += time.perf_counter() - t0
            inertia[i] = km.inertia_
    ms = 1000 * t_timed / min(n_timed, len(frames))
    np.savez(cache, inertia=inertia, ms=ms)
    return inertia, ms


EXECUTION = ("block_frames", "n_threads")
"""Keywords of batched_kmeans that are not config fields (they never change the result)."""


def ours(frames: np.ndarray, k: int, config: KMeansConfig, repeat: int = 5, **kw):
    batched_kmeans(frames, k, config, **kw)  # warm-up
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = batched_kmeans(frames, k, config, **kw)
        best = min(best, time.perf_counter() - t0)
    return r.inertia, 1000 * best / len(frames)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clips", default=",".join(CLIPS))
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seeds", default="0")
    p.add_argument("--kw", nargs="*", default=[])
    a = p.parse_args()
    fields, kw = {}, {}
    for item in a.kw:
        key, value = item.split("=")
        parsed = math.inf if value == "inf" else ast.literal_eval(value)
        (kw if key in EXECUTION else fields)[key] = parsed
    config = KMeansConfig(**fields)
    print(f"{'clip':8} {'F':>3} {'method':22} {'ms/frame':>9} {'mean inertia':>13} {'vs sk20':>8}")
    for name in a.clips.split(","):
        frames = decode(name)
        ref, ms20 = sklearn_inertia(frames, a.k, 20)
        rows = [("sklearn n_init=20", ms20, ref)]
        i4, ms4 = sklearn_inertia(frames, a.k, 4)
        rows.append(("sklearn n_init=4", ms4, i4))
        for seed in (int(s) for s in a.seeds.split(",")):
            inertia, ms = ours(frames, a.k, dataclasses.replace(config, seed=seed), **kw)
            rows.append((f"ours seed={seed}", ms, inertia))
        for label, ms, inertia in rows:
            rel = inertia.mean() / ref.mean() - 1
            print(
                f"{name:8} {len(frames):3d} {label:22} {ms:9.3f} {inertia.mean():13.5e} "
                f"{100 * rel:+7.2f}%"
            )


if __name__ == "__main__":
    main()
