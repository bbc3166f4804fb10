"""Benchmark of `moviebarcode batch`: the same N clips prepped and rendered on a local Dask cluster
of 1 worker, then of 2 workers (or --workers ...), in the same run; the speed-up over 1 worker.

    python scripts/bench_batch.py [--clips 6] [--seconds 20] [--workers 1 2] [--every 24]

Each row starts its own LocalCluster (start-up timed apart) and batches into empty cache and
output folders, so every row decodes and clusters everything. The clips are 640x360 H.264 made
with ffmpeg's lavfi sources (a different hue each).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moviebarcode.cluster import ClusterParams
from moviebarcode.dask_backend import connect, run_batch
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.prep import PrepRequest
from moviebarcode.render import RenderOptions


def make_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"clip{i:02d}.mp4"
        if not p.exists():
            src = f"testsrc2=s=640x360:r=30:d={seconds},hue=h={i * 360 / n:.0f}"
            subprocess.run(
                [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                 "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
                 "-pix_fmt", "yuv420p", str(p)],
                check=True,
            )  # fmt: skip
        out.append(p)
    return out


def table(headers, rows) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=6, help="number of clips [6]")
    ap.add_argument("--seconds", type=float, default=20, help="length of each clip [20]")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="rows [1 2]")
    ap.add_argument("--every", type=int, default=24, help="prep --every [24]")
    ap.add_argument("-k", type=int, default=8, help="render --k [8]")
    ap.add_argument("--clip-dir", type=Path, help="keep the clips here (made once)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mb-bench-batch-"))
    try:
        t0 = time.perf_counter()
        clips = make_clips(args.clip_dir or work / "clips", args.clips, args.seconds)
        made = time.perf_counter() - t0
        print(
            f"{len(clips)} clips of {args.seconds:g} s, 640x360 H.264 ({made:.1f} s to make); "
            f"prep --every {args.every}, render stacked k={args.k}; {os.cpu_count()} CPU cores"
        )
        req = PrepRequest(every=args.every)
        opts = RenderOptions(mode="stacked", cluster=ClusterParams(k=args.k, device="cpu"))
        rows, base = [], None
        for n in args.workers:
            cache, out = work / f"cache-w{n}", work / f"out-w{n}"
            t0 = time.perf_counter()
            with connect(None, n_workers=n) as client:
                client.wait_for_workers(n, timeout=120)
                started = time.perf_counter() - t0
                t1 = time.perf_counter()
                res = run_batch(
                    clips, cache_dir=cache, out_dir=out, prep_request=req, render_options=opts,
                    scheduler=client,
                )  # fmt: skip
                secs = time.perf_counter() - t1
            failed = [r for r in res if not r.ok]
            if failed:
                sys.exit(f"bench: {failed[0].film.name}: {failed[0].status}")
            frames = sum(r.frames for r in res)
            base = base or secs
            rows.append(
                [f"{n} worker{'s' if n > 1 else ''}", f"{started:.1f}", f"{secs:.2f}",
                 f"{sum(r.seconds for r in res):.2f}", frames, f"{base / secs:.2f}x"]
            )  # fmt: skip
            shutil.rmtree(cache, ignore_errors=True)
        print(
            table(
                ["cluster", "start s", "batch s", "task s (sum)", "frames", "speed-up"],
                rows,
            )
        )
        print("batch s: wall time of the batch on a started cluster; speed-up over the first row")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
