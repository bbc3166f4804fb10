"""Quality of the restart settings above 160x90, on a grid of batches of a store's frames.

Usage: .venv/bin/python scripts/carry_grid.py [STORE] [--carry C,F ...] [--set K=V,... ...]

Clusters batches of 21 consecutive frames of STORE (default: the 480x270 BBB store of
``scripts/bench render cache/bbb.mp4 --size 480x270 --every 24``), one thread, with the
frame size's ``KMeansConfig`` and each ``--carry CARRY,FINE_ITER`` pair (or ``--set`` list of
``KMeansConfig`` fields, such as ``finalists=4,trial_iter=2``) in its place, and
compares each frame's inertia with scikit-learn's ``KMeans(n_init=20)`` (cached under /tmp).
Frames of one colour (inertia 0) count as 1. The README's 480x270 section has the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from moviebarcode.cluster import ClusterParams
from moviebarcode.kmeans import batched_kmeans
from moviebarcode.store import FrameStore

STARTS = (100, 250, 400, 10, 40, 160, 200, 300, 340, 460, 520, 560)


def reference(frames: dict, store: Path, k: int) -> np.ndarray:
    """scikit-learn's n_init=20 inertia of every frame, cached by store and frames."""
    from sklearn.cluster import KMeans

    key = hashlib.sha1(f"{store.resolve()}{sorted(frames)}{k}".encode()).hexdigest()[:12]
    cache = Path(f"/tmp/carry-grid-{key}.npy")
    if cache.exists():
        return np.load(cache)
    ref = np.concatenate(
        [
            [KMeans(k, n_init=20, random_state=0).fit(f).inertia_ for f in frames[s]]
            for s in sorted(frames, key=STARTS.index)
        ]
    )
    np.save(cache, ref)
    return ref


def _number(text: str) -> int | float:
    """A --set value: an int where it is one (counts), else a float (bits, tolerances)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", nargs="?", default="cache/bbb-480x270-every24.zarr")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument(
        "--carry",
        action="append",
        default=[],
        metavar="C,F",
        help="restarts carried and fine iterations (repeatable)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="K=V,...",
        help="KMeansConfig fields to change (repeatable)",
    )
    args = ap.parse_args()
    store = FrameStore.open(args.store)
    starts = [s for s in STARTS if s + 21 <= store.frames_done]
    frames = {
        s: np.asarray(store.frames[s : s + 21]).reshape(21, -1, 3).astype(np.float32)
        for s in starts
    }
    ref = reference(frames, Path(args.store), args.k)
    base = ClusterParams(k=args.k).kmeans_config(store.frame_shape)
    variants = [
        {"carry": int(c.split(",")[0]), "fine_iter": int(c.split(",")[1])} for c in args.carry
    ] + [{k: _number(v) for k, v in (kv.split("=") for kv in s.split(","))} for s in args.set]
    print(
        f"{len(ref)} frames of {store.frame_shape[1]}x{store.frame_shape[0]}, "
        f"{base.n_init} restarts"
    )
    for changes in variants or [{}]:
        cfg = dataclasses.replace(base, **changes)
        t0 = time.perf_counter()
        with threadpool_limits(1):
            got = np.concatenate(
                [batched_kmeans(frames[s], args.k, cfg, n_threads=1).inertia for s in starts]
            )
        seconds = time.perf_counter() - t0
        ratio = np.where(ref > 1e-3, got / np.maximum(ref, 1e-3), 1.0)
        what = ", ".join(f"{k} {v}" for k, v in changes.items()) or "the default"
        print(
            f"{what}: mean {ratio.mean():.6f}, worst "
            f"{ratio.max():.4f}, above 1.01: {int((ratio > 1.01).sum())}, {seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
