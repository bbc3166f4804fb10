"""Per-frame colour metrics (render --mode ... --region ...) over a whole store, against the
``average`` mode measured in the same run: seconds, ms per frame, and the ratio.

Reads the store only (nothing is cached in it): each row reads every frame once, batch by
batch (``render.STATS_BYTES``), and computes its metric as ``render.frame_columns`` would.

    scripts/bench metrics STORE [--repeat N] [--regions]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from moviebarcode.render import STATS_BYTES, _stats_fn
from moviebarcode.store import FrameStore

MODES = ("average", "median", "mode", "brightest", "bright", "brightness")
REGIONS = ("foreground", "background", "high-contrast", "low-contrast")


def run(store: FrameStore, mode: str, region: str) -> float:
    """Seconds to compute ``mode`` over ``region`` of every frame of ``store``."""
    fn = _stats_fn(mode, region, True)
    h, w = store.frame_shape
    t0 = time.perf_counter()
    for _, frames in store.iter_batches(max(1, STATS_BYTES // (h * w * 3))):
        fn(frames)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="scripts/bench metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("store")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--regions", action="store_true", help="also median and average by region")
    args = ap.parse_args()
    store = FrameStore.open(args.store)
    n = store.frames_done
    h, w = store.frame_shape
    rows = [(m, "whole") for m in MODES]
    if args.regions:
        rows += [(m, r) for r in REGIONS for m in ("average", "median")]
    times = {row: [] for row in rows}
    for _ in range(args.repeat):  # rounds alternate, so drift hits every row alike
        for row in rows:
            times[row].append(run(store, *row))
    base = statistics.median(times[("average", "whole")])
    print(
        f"{args.store}: {n} frames of {w}x{h}, {os.cpu_count()} CPUs, "
        f"median of {args.repeat} rounds"
    )
    print(f"{'mode':<11} {'region':<14} {'seconds':>8} {'ms/frame':>9} {'x average':>10}")
    for (mode, region), ts in times.items():
        t = statistics.median(ts)
        print(f"{mode:<11} {region:<14} {t:8.2f} {t / n * 1e3:9.3f} {t / base:10.2f}")


if __name__ == "__main__":
    main()
