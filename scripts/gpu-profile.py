"""Where the cupy engine's time goes: per-frame time of one clustering batch against the
batch size, split into the k-means phases (each followed by a device synchronisation).

    python scripts/gpu-profile.py STORE [STORE ...] [--sizes 21,64,256,1024]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import cupy as cp

from moviebarcode.cluster import ClusterParams
from moviebarcode.kmeans import KMeansConfig, _batched, batched_kmeans
from moviebarcode.store import FrameStore

PHASES = ("draw_uniforms", "search_block", "neighbour_rounds", "pixel_phase")
spent: dict[str, float] = defaultdict(float)


def timed(name, fn):
    def wrapper(*args, **kwargs):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        cp.cuda.Device().synchronize()
        spent[name] += time.perf_counter() - t0
        return out

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stores", nargs="+")
    ap.add_argument("--sizes", default="21,64,256,1024")
    args = ap.parse_args()
    for name in PHASES:
        setattr(_batched, name, timed(name, getattr(_batched, name)))
    for path in args.stores:
        store = FrameStore.open(path)
        n = store.frames_done
        params = ClusterParams(k=8).for_frames(store.frame_shape)
        config = KMeansConfig(n_init=params.n_init, seed=0)
        frames = cp.asarray(store.frames[:n])
        x = frames.reshape(n, -1, 3).astype(cp.float32)
        print(f"\n{path}: {n} frames of {store.frame_shape}, n_init={params.n_init}")
        for size in [int(s) for s in args.sizes.split(",")]:
            b = min(size, n)
            batched_kmeans(x[:b], 8, config)  # warm-up: kernels compiled
            spent.clear()
            cp.cuda.Device().synchronize()
            t0 = time.perf_counter()
            reps = max(1, n // b)
            for r in range(reps):
                s = (r * b) % max(1, n - b + 1)
                batched_kmeans(x[s : s + b], 8, config)
            cp.cuda.Device().synchronize()
            total = (time.perf_counter() - t0) / (reps * b)
            parts = ", ".join(f"{p} {1000 * v / (reps * b):.3f}" for p, v in spent.items())
            print(f"batch {b:5d}: {1000 * total:.3f} ms/frame ({parts})")


if __name__ == "__main__":
    main()
