"""compare on two copies of one store: seconds for each stage, for the README's benchmarks.

Copies STORE twice into a temporary folder (the source is never written), the second with
its frames' times 10 s later, so the lag to find is 10 s. The first run computes and caches
both stores' average colours; the timed runs read them from the cache.

    .venv/bin/python scripts/bench_compare.py STORE [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from moviebarcode import compare as cmp
from moviebarcode.store import FrameStore


def copies(src: Path, folder: Path) -> tuple[Path, Path]:
    a, b = folder / "a.zarr", folder / "b.zarr"
    shutil.copytree(src, a)
    shutil.copytree(src, b)
    times = FrameStore.open(b, writable=True).array("time")
    times[:] = np.asarray(times[:]) + 10.0
    return a, b


def stages(a: Path, b: Path) -> dict[str, float]:
    """Seconds per stage of ``compare`` (the averages already cached)."""
    out = {}
    t = time.perf_counter()
    fa, fb = cmp.load_film(a), cmp.load_film(b)
    out["load"] = time.perf_counter() - t
    n = max(len(fa.times), len(fb.times))
    t = time.perf_counter()
    cmp.image_metrics(cmp.resample_length(fa.colours, n), cmp.resample_length(fb.colours, n))
    out["nrmse+ssim"] = time.perf_counter() - t
    step = max(fa.step, fb.step)
    ra, rb = cmp.resample_step(fa, step), cmp.resample_step(fb, step)
    t = time.perf_counter()
    cmp.best_shift(ra, rb, 0.5)
    out["lag"] = time.perf_counter() - t
    t = time.perf_counter()
    cmp._aligned(ra, rb, cmp.CompareOptions())
    out["alignment"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = copies(args.store, Path(tmp))
        t = time.perf_counter()
        first = cmp.compare(a, b)
        cold = time.perf_counter() - t
        runs = [stages(a, b) for _ in range(args.repeat)]
        t = time.perf_counter()
        for _ in range(args.repeat):
            cmp.compare(a, b)
        whole = (time.perf_counter() - t) / args.repeat
    n = len(first.films[0].times)
    print(f"{n} frames each, step {first.step:g} s; lag found {first.lag:+.2f} s")
    print(f"first compare (computes and caches the averages): {cold:.2f} s")
    for key in runs[0]:
        print(f"  {key:<11} {statistics.median(r[key] for r in runs):.3f} s")
    print(f"compare, averages cached: {whole:.2f} s (mean of {args.repeat} runs)")


if __name__ == "__main__":
    main()
