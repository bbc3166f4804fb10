"""Benchmarks for moviebarcode: every figure is printed next to a baseline from the same run.

prep:   ffmpeg decoding to null; ffmpeg alone running our exact filter graph; moviebarcode prep
        (library call, and the CLI with probe and crop detection). Peak memory of our process.
render: the original method (sklearn KMeans(k, 'k-means++', n_init=20) per frame, on a sample),
        sklearn with our n_init, and our numpy engine on every frame: ms per frame, mean inertia
        on the same frames, and the speed-up over the original (with --repeat N, the original
        and ours in N alternating rounds, their medians reported).
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

import moviebarcode
from moviebarcode._cpus import usable_cpus
from moviebarcode.decode import Decoder, build_command
from moviebarcode.ffmpegbin import ffmpeg_exe
from moviebarcode.prep import PrepRequest, prep, resolve_sampling
from moviebarcode.probe import probe
from moviebarcode.store import FrameStore


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def full_decode_command(movie, stream: int, *input_options: str) -> list[str]:
    """``ffmpeg -i MOVIE -f null -``: every frame of the video stream decoded, nothing
    else (the baseline of the decoding benches); ``input_options`` go before ``-i``."""
    quiet = ["-hide_banner", "-nostats", "-loglevel", "error"]
    output = ["-map", f"0:v:{stream}", "-f", "null", "-"]
    return [ffmpeg_exe(), *quiet, *input_options, "-i", str(movie), *output]


def pieces_side_by_side(movie, info, pieces: int, fast: bool = False) -> float:
    """Seconds ffmpeg alone takes to decode ``pieces`` equal parts of the film at once, one
    process and one thread each (``-f null``; with ``fast``, reference frames only and no
    loop filter): the floor of prep's segments, with nothing of ours running."""
    one_thread = ["-nostdin", "-threads", "1"]
    one_thread += ["-skip_frame", "noref", "-skip_loop_filter", "all"] if fast else []
    step = info.duration / pieces
    cmds = [
        full_decode_command(
            movie, info.stream, *one_thread, "-ss", f"{i * step:.3f}", "-t", f"{step:.3f}"
        )
        for i in range(pieces)
    ]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for cmd in cmds]
    if any(proc.wait() for proc in procs):
        raise SystemExit("ffmpeg failed decoding a piece of the film")
    return time.perf_counter() - t0


def timed_command(cmd, stderr=None) -> float:
    """Seconds one run of the command ``cmd`` (any items, as strings) takes, its output
    dropped; it must succeed."""
    t0 = time.perf_counter()
    subprocess.run(list(map(str, cmd)), check=True, stdout=subprocess.DEVNULL, stderr=stderr)
    return time.perf_counter() - t0


def table(headers, rows) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def bench_prep(args) -> None:
    movie = Path(args.movie)
    info = probe(movie)
    req = PrepRequest(every=args.every)
    work = Path(tempfile.mkdtemp(prefix="mb-bench-"))
    try:
        # what the store would hold (crop and size resolved once, as prep does)
        first = prep(movie, req, output=work / "probe.zarr")
        meta = FrameStore.open(first.store).meta
        from moviebarcode.decode import Crop, Picture

        pic = meta["picture"]
        picture = Picture(**{**pic, "crop": Crop(**pic["crop"]) if pic["crop"] else None})
        sampling = resolve_sampling(info, req)
        ours_cmd = build_command(info, sampling, picture)
        frames = first.frames
        null = full_decode_command(movie, info.stream)
        # the very command prep runs, writing to /dev/null instead of our pipe, logging quietly
        graph = [*ours_cmd[:-1], "-y", "/dev/null"]
        graph[graph.index("-loglevel") + 1] = "error"
        no_info = [
            a.replace("showinfo=checksum=0[s0];[s0]", "").replace(
                "[s1]showinfo=checksum=0[s2];[s2]", "[s1]"
            )
            for a in graph
        ]
        rows = []
        run = lambda cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # noqa: E731
        t_null = timed(lambda: run(null), args.repeat)
        n_pieces = max(2, usable_cpus())
        t_pieces = timed(lambda: pieces_side_by_side(movie, info, n_pieces), args.repeat)
        t_pieces_fast = timed(
            lambda: pieces_side_by_side(movie, info, n_pieces, fast=True), args.repeat
        )
        t_graph = timed(lambda: run(graph), args.repeat)
        t_noinfo = timed(lambda: run(no_info), args.repeat)

        def lib():
            out = work / "lib.zarr"
            shutil.rmtree(out, ignore_errors=True)
            store = FrameStore.create(
                out,
                frame_shape=(picture.height, picture.width),
                chunk_frames=FrameStore.open(first.store).chunk_frames,
                attrs=meta | {"complete": False, "frames_done": 0},
            )
            from moviebarcode.prep import _Appender, _run_decoder

            _run_decoder(store, Decoder(info, sampling, picture), _Appender(store), None)

        t_lib = timed(lib, args.repeat)

        def cli():
            out = work / "cli.zarr"
            shutil.rmtree(out, ignore_errors=True)
            code = (
                "import resource,sys;from moviebarcode.cli import main;"
                "sys.argv=['moviebarcode','prep',sys.argv[1],'-o',sys.argv[2],'-q',"
                f"'--every','{args.every}'];"
                "\ntry: main()\nexcept SystemExit: pass\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
            )
            r = subprocess.run(
                [sys.executable, "-c", code, str(movie), str(out)],
                check=True,
                capture_output=True,
                text=True,
            )
            cli.rss = list(map(int, r.stdout.split()))

        t_cli = timed(cli, args.repeat)

        def prep_with(jobs=1, **extra):
            def go():
                out = work / "opt.zarr"
                shutil.rmtree(out, ignore_errors=True)
                prep(movie, PrepRequest(**{"every": args.every, **extra}), output=out, jobs=jobs)
                go.frames = FrameStore.open(out).frames_done
                go.parallel = (FrameStore.open(out).meta.get("parallel") or {}).get("jobs", 1)

            return go

        job_counts = sorted({1, 2, usable_cpus()})
        t_jobs = {}
        for j in job_counts:
            fn = prep_with(jobs=j)
            t_jobs[j] = (timed(fn, args.repeat), fn.parallel)

        fast1 = prep_with(fast=True)
        t_fast1 = timed(fast1, args.repeat)
        fast = prep_with(jobs=usable_cpus(), fast=True)  # the default segments
        t_fast = timed(fast, args.repeat)
        keys = prep_with(keyframes=True, every=None)
        t_keys = timed(keys, args.repeat)
        n_src = info.duration * info.fps if info.duration and info.fps else float("nan")

        def row(name, t, base):
            return [name, f"{t:.2f}", f"{n_src / t:.0f}", f"{t / base:.2f}x", f"{t / t_null:.2f}x"]

        rows = [
            row("ffmpeg -i MOVIE -f null - (decode only)", t_null, t_graph),
            row("ffmpeg alone, our filter graph -> /dev/null", t_graph, t_graph),
            row("ffmpeg alone, our graph without showinfo", t_noinfo, t_graph),
            row(f"ffmpeg alone, {n_pieces} pieces side by side, 1 thread each", t_pieces, t_graph),
            row(f"... --fast's decoding ({n_pieces} pieces)", t_pieces_fast, t_graph),
            row("moviebarcode prep (library: decode + store)", t_lib, t_graph),
            row("moviebarcode prep (CLI: + probe, crop detect)", t_cli, t_graph),
            *[
                row(f"moviebarcode prep --jobs {j} ({segs} segment{'s' * (segs > 1)})", t, t_graph)
                for j, (t, segs) in t_jobs.items()
            ],
            row(
                "moviebarcode prep --fast --jobs 1 (reference frames, no loop filter)",
                t_fast1,
                t_graph,
            ),
            row(
                f"moviebarcode prep --fast ({fast.parallel} segment{'s' * (fast.parallel > 1)})",
                t_fast,
                t_graph,
            ),
            row(f"moviebarcode prep --keyframes ({keys.frames} columns)", t_keys, t_graph),
        ]
        print(
            f"\n{movie.name}: {info.codec} {info.width}x{info.height} {info.fps} fps, "
            f"{info.duration:.1f} s; --every {args.every} -> {frames} frames of "
            f"{picture.width}x{picture.height}; median of {args.repeat} run(s)\n"
        )
        print(table(["", "seconds", "source fps", "vs ffmpeg+graph", "vs ffmpeg -f null"], rows))
        base = t_jobs[1][0]
        print(
            "\n--jobs speed-up over --jobs 1: "
            + ", ".join(f"{j}: {base / t:.2f}x" for j, (t, _) in t_jobs.items())
        )
        print(
            f"peak memory (RSS): moviebarcode process {cli.rss[0] / 1024:.0f} MiB, "
            f"ffmpeg child {cli.rss[1] / 1024:.0f} MiB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_shots(args) -> None:
    """prep with cut detection against prep without it, in alternating rounds; with
    --reference, the cuts against PySceneDetect's on the same film."""
    movie = Path(args.movie)
    info = probe(movie)
    work = Path(tempfile.mkdtemp(prefix="mb-shots-"))
    variants = [("default", {}), ("--fast", {"fast": True})]
    times = {(v, shots): [] for v, _ in variants for shots in (False, True)}
    cpu = {(v, shots): [] for v, _ in variants for shots in (False, True)}
    try:
        for _ in range(args.repeat):
            for name, extra in variants:
                for shots in (False, True):
                    out = work / f"{name}-{shots}.zarr"
                    req = PrepRequest(every=args.every, shots=shots, **extra)
                    c0, t0 = cpu_seconds(), time.perf_counter()
                    prep(movie, req, output=out, jobs=args.jobs, force=True)
                    times[(name, shots)].append(time.perf_counter() - t0)
                    cpu[(name, shots)].append(cpu_seconds() - c0)
        rows = []
        for name, _ in variants:
            off, on = (statistics.median(times[(name, x)]) for x in (False, True))
            c_off, c_on = (statistics.median(cpu[(name, x)]) for x in (False, True))
            store = FrameStore.open(work / f"{name}-True.zarr")
            rows.append(
                [
                    f"prep {name}",
                    f"{off:.2f}",
                    f"{on:.2f}",
                    f"{on / off:.3f}x",
                    f"{c_on / c_off:.3f}x",
                    str(len(store.cuts)),
                    str(store.meta["shots"]["frames_scored"]),
                ]
            )
        print(
            f"\n{movie.name}: {info.codec} {info.width}x{info.height} {info.fps} fps, "
            f"{info.duration:.1f} s, --every {args.every}, --jobs {args.jobs or 'auto'}; "
            f"median of {args.repeat} alternating round(s)\n"
        )
        print(
            table(
                [
                    "",
                    "no cuts s",
                    "with cuts s",
                    "ratio",
                    "CPU time ratio",
                    "cuts",
                    "frames scored",
                ],
                rows,
            )
        )
        if args.reference:
            for name, _ in variants:
                store = FrameStore.open(work / f"{name}-True.zarr")
                shot_reference(movie, store, info.fps, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (ffmpeg): steadier
    than wall time on a shared machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _frac(a: int, b: int) -> str:
    """a/b and its value, or the count alone where there is nothing to divide by."""
    return f"{a}/{b} = {a / b:.3f}" if b else f"{a}/{b}"


def shot_reference(movie: Path, store, fps: float, name: str) -> None:
    """Our cuts against PySceneDetect's ContentDetector and AdaptiveDetector: recall and
    precision within one frame."""
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    ours = np.round(store.cuts * fps).astype(int)
    rows = []
    for detector in (ContentDetector, AdaptiveDetector):
        video = open_video(str(movie))
        manager = SceneManager()
        manager.add_detector(detector())
        t0 = time.perf_counter()
        manager.detect_scenes(video)
        seconds = time.perf_counter() - t0
        ref = np.array([s[0].frame_num for s in manager.get_scene_list()][1:], int)
        hit = sum(bool(len(ours)) and np.abs(ours - r).min() <= 1 for r in ref)
        good = sum(bool(len(ref)) and np.abs(ref - c).min() <= 1 for c in ours)
        rows.append(
            [
                detector.__name__,
                str(len(ref)),
                str(len(ours)),
                _frac(hit, len(ref)),
                _frac(good, len(ours)),
                f"{seconds:.1f}",
            ]
        )
    print(f"\nour cuts (prep {name}) against PySceneDetect, within 1 frame\n")
    print(table(["reference", "its cuts", "ours", "recall", "precision", "its seconds"], rows))


CLUSTER_IN_A_CHILD = r"""
import sys, time
import numpy as np
store, out = sys.argv[1], sys.argv[4]
jobs, k, n_init = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
try:  # the one entry point (this version and later)
    from moviebarcode.cluster import ClusterParams, cluster, local_executor
    from moviebarcode.store import FrameStore

    s = FrameStore.open(store)
    p = ClusterParams(k=k, n_init=n_init)
    t0 = time.perf_counter()
    c = cluster(s, p, executor=local_executor(s, p, jobs), recompute=True)
    arrays = (c.centres, c.shares, c.inertia)
except ImportError:  # before it: render.cluster_frames
    from moviebarcode.render import ClusterParams, cluster_frames
    from moviebarcode.store import FrameStore

    s = FrameStore.open(store)
    t0 = time.perf_counter()
    arrays = cluster_frames(s, ClusterParams(k=k, n_init=n_init), engine="numpy", jobs=jobs)[:3]
seconds = time.perf_counter() - t0
from moviebarcode.kmeans import ALGORITHM_VERSION

np.savez(out, centres=arrays[0], shares=arrays[1], inertia=arrays[2], seconds=seconds,
         version=ALGORITHM_VERSION)
"""


def cluster_in_a_child(
    src: Path, store: Path, jobs: int, k: int, n_init: int
) -> tuple[float, dict]:
    """Our whole clustering of ``store`` by the moviebarcode in ``src`` (a source tree's
    ``src``), in a fresh interpreter: its time and arrays."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        # src first; the rest of the path stays (wheels installed with --target, say)
        path = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        subprocess.run(
            [
                sys.executable,
                "-c",
                CLUSTER_IN_A_CHILD,
                str(store),
                str(jobs),
                str(k),
                str(out),
                str(n_init),
            ],
            check=True,
            env=env,
        )
        got = dict(np.load(out))
    got.pop("version")
    return float(got.pop("seconds")), got


def version_of(src: Path) -> int:
    """The ALGORITHM_VERSION of the moviebarcode in ``src``."""
    code = "from moviebarcode.kmeans import ALGORITHM_VERSION as v; print(v)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])),
        },
    )
    return int(out.stdout)


def store_for(args) -> Path:
    """The store to bench: ``args.store`` itself, or, for a movie, a store prepped from it at
    ``--size`` and ``--every`` (made once, under cache/)."""
    path = Path(args.store)
    if path.suffix == ".zarr" or path.is_dir():
        return path
    size = args.size or "160x90"
    out = Path("cache") / f"{path.stem}-{size}-every{args.every}.zarr"
    w, h = (int(v) for v in size.lower().split("x"))
    res = prep(path, PrepRequest(every=args.every, size=(w, h)), output=out)
    print(f"{out}: {res.status}, {res.frames} frames of {size}")
    return out


def bench_render(args) -> None:
    from sklearn.cluster import KMeans

    from moviebarcode.cluster import ClusterParams, default_jobs

    store = FrameStore.open(store_for(args))
    store.require_complete()
    n = store.frames_done
    h, w = store.frame_shape
    k = args.k
    ours = ClusterParams(k=k).for_frames((h, w))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
    # only the sampled frames, in memory: sklearn sees exactly the pixels ours clusters
    sampled = {int(i): store.frames[int(i)].reshape(-1, 3).astype(np.float32) for i in sample}
    here = Path(__file__).resolve().parents[1] / "src"
    base_src = Path(args.baseline).resolve() / "src" if args.baseline else None
    # the same algorithm version must give the same results; another may differ by design
    same_version = base_src is not None and version_of(base_src) == version_of(here)

    def sk(n_init):
        t0 = time.perf_counter()
        inertia = []
        for i in sample:
            km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=0)
            km.fit(sampled[int(i)])
            inertia.append(km.inertia_)
        return (time.perf_counter() - t0) / len(sample), np.array(inertia)

    def run_ours(jobs, src=here, n_init=ours.n_init):
        seconds, arrays = cluster_in_a_child(src, store.path, jobs, k, n_init)
        return seconds / n, arrays

    jobs = default_jobs()
    # The original method, ours (the CLI default) and the baseline version, in --repeat rounds
    # one after the other: this machine's speed drifts, so each round's ratio is taken from
    # neighbouring runs, and the medians are reported.
    # Ours and the baseline take turns to go first.
    rounds, base_times = [], []
    for r in range(max(1, args.repeat)):
        t20, i20 = sk(20)
        if base_src is not None and r % 2:
            t_base, base_arrays = run_ours(jobs, base_src)
        t_ours, arrays = run_ours(jobs)
        rounds.append((t20, t_ours))
        if base_src is not None and not r % 2:
            t_base, base_arrays = run_ours(jobs, base_src)
        if base_src is not None:
            base_times.append(t_base)
            for name, values in arrays.items():
                if same_version:
                    assert np.array_equal(values, base_arrays[name]), f"{name} differ"
    inertia_ours = arrays["inertia"]
    t20 = statistics.median(t for t, _ in rounds)
    t_ours = statistics.median(t for _, t in rounds)
    t_ours_sk, i_ours_sk = sk(ours.n_init)

    def row(name, t, inertia):
        mean = inertia.mean()
        return [
            name,
            f"{1000 * t:.2f}",
            f"{mean:.5g}",
            f"{mean / i20.mean():.4f}",
            f"{t20 / t:.1f}x",
        ]

    t_ours1, one = run_ours(1)
    for name, values in arrays.items():
        assert np.array_equal(values, one[name]), f"--jobs changed the {name}"
    rows = [
        row("original: sklearn n_init=20, per frame", t20, i20),
        row(f"sklearn n_init={ours.n_init}, per frame", t_ours_sk, i_ours_sk),
        row(
            f"moviebarcode numpy engine (n_init={ours.n_init}), 1 process, threads",
            t_ours1,
            inertia_ours[sample],
        ),
        row(
            f"moviebarcode numpy engine (n_init={ours.n_init}), {jobs} processes (CLI default)",
            t_ours,
            inertia_ours[sample],
        ),
    ]
    for n_init in args.n_init:
        t, more = run_ours(jobs, n_init=n_init)
        rows.append(
            row(
                f"moviebarcode numpy engine (n_init={n_init}), {jobs} processes",
                t,
                more["inertia"][sample],
            )
        )
        at_or_below = np.mean(more["inertia"][sample] <= i20 * (1 + 1e-6))
        print(
            f"n_init={n_init}: at or below the original's inertia on {100 * at_or_below:.0f}% "
            "of the sampled frames, the worst frame at "
            f"{(more['inertia'][sample] / i20).max():.4f}"
        )
    if base_times:
        what = "same results" if same_version else f"version {version_of(base_src)}"
        rows.append(
            row(
                f"baseline {args.baseline}, {jobs} processes ({what})",
                statistics.median(base_times),
                base_arrays["inertia"][sample],
            )
        )
    better = np.mean(inertia_ours[sample] <= i20 * (1 + 1e-6))
    print(
        f"\n{store.path}: {n} frames of {w}x{h} ({h * w} pixels), k={k}; sklearn timed on "
        f"{len(sample)} frames, ours on all {n} (the whole clustering, reading the store "
        f"included); inertia compared on the same {len(sample)} frames\n"
    )
    if args.gpu:
        rows += gpu_rows(store, ours, sample, t20, i20, args)
    print(table(["", "ms/frame", "mean inertia", "vs original", "speed-up"], rows))
    print(
        f"\nours at or below the original's inertia on {100 * better:.0f}% of the sampled "
        f"frames; mean ratio {inertia_ours[sample].mean() / i20.mean():.6f}, the worst frame "
        f"at {(inertia_ours[sample] / i20).max():.4f}"
    )
    if len(rounds) > 1:
        print(
            f"{len(rounds)} rounds (medians above); speed-up of each round, {jobs} processes: "
            + ", ".join(f"{a / b:.1f}x" for a, b in rounds)
        )
    if base_times:
        ratios = [b / o for (_, o), b in zip(rounds, base_times, strict=True)]
        print(
            "ours vs the baseline, each round (baseline time / ours): "
            + ", ".join(f"{x:.3f}" for x in ratios)
            + f"; median {statistics.median(ratios):.3f}"
        )
        if same_version:
            print("centres, shares and inertia identical to the baseline's in every round")
        else:
            base_i, ours_i = base_arrays["inertia"], inertia_ours
            print(
                f"another algorithm version: mean inertia on all {n} frames, ours / baseline "
                f"{ours_i.mean() / base_i.mean():.6f}; ours lower on "
                f"{100 * np.mean(ours_i < base_i):.0f}%, higher on "
                f"{100 * np.mean(ours_i > base_i):.0f}% of the frames"
            )
    hours = 7200 * t20 / 3600
    print(
        f"\na two-hour film at one frame per second (7,200 frames at this size): original "
        f"{hours:.2f} h, ours {7200 * t_ours / 60:.1f} min"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "ms_per_frame": {
                        "sklearn20": 1000 * t20,
                        "sklearn_ours": 1000 * t_ours_sk,
                        "numpy": 1000 * t_ours,
                    }
                }
            )
        )


def gpu_rows(store, ours, sample, t20, i20, args) -> list[list[str]]:
    """The GPU rows: kvikio load throughput, the cupy engine on all frames, cuML frame by frame
    (when installed), and a whole render on the GPU, all on the same store."""
    import dataclasses

    from moviebarcode.cluster import ClusterParams, batch_ranges, cluster
    from moviebarcode.device import LoadStats, gpu_status, select_device, timed_read
    from moviebarcode.engines import get_engine
    from moviebarcode.render import RenderOptions, render

    ok, why = gpu_status()
    if not ok:
        print(f"\nno GPU rows: {why}")
        return []
    dev = select_device("gpu")
    n = store.frames_done
    ranges = batch_ranges(store, ours.k)
    load = LoadStats()
    for s, e in ranges:
        frames, method, note, seconds = timed_read(store.path, s, e, dev)
        load.add(method, int(frames.nbytes), seconds, note or None)
    rows = [
        [
            f"GPU load ({load.method}), all frames",
            f"{1000 * load.seconds / n:.3f}",
            f"{load.throughput / 2**20:.0f} MiB/s",
            "",
            "",
        ]
    ]
    for note in load.notes:
        print(f"GPU load: {note}")
    # as render runs it: batches stacked into few calls, the next call's frames read meanwhile
    on_gpu = dataclasses.replace(ours, engine="cupy")
    for _ in ("warm-up", "timed"):
        t0 = time.perf_counter()
        inertia = cluster(store, on_gpu, recompute=True).inertia
        t_cupy = (time.perf_counter() - t0) / n
    rows.append(
        [
            f"moviebarcode cupy engine (n_init={ours.n_init}), stacked, reading included",
            f"{1000 * t_cupy:.3f}",
            f"{inertia[sample].mean():.5g}",
            f"{inertia[sample].mean() / i20.mean():.4f}",
            f"{t20 / t_cupy:.0f}x",
        ]
    )
    try:
        cu = get_engine("cuml")
    except Exception as exc:  # noqa: BLE001
        print(f"no cuML row: {exc}")
    else:
        px = np.stack([store.frames[int(i)] for i in sample])
        t0 = time.perf_counter()
        res = cu.fit(
            px.reshape(len(px), -1, 3).astype(np.float32),
            ours.k,
            ours.kmeans_config(store.frame_shape),
        )
        t_cuml = (time.perf_counter() - t0) / len(sample)
        ci = np.asarray(res.inertia.get() if hasattr(res.inertia, "get") else res.inertia)
        rows.append(
            [
                f"cuML KMeans per frame (n_init={ours.n_init})",
                f"{1000 * t_cuml:.3f}",
                f"{ci.mean():.5g}",
                f"{ci.mean() / i20.mean():.4f}",
                f"{t20 / t_cuml:.0f}x",
            ]
        )
        print(f"cupy engine vs cuML per frame: {t_cuml / t_cupy:.0f}x faster")
    out = Path(tempfile.mkdtemp()) / "gpu.png"
    t0 = time.perf_counter()
    opts = RenderOptions(cluster=ClusterParams(k=ours.k, device="gpu"), recompute=True)
    render(store.path, opts, output=out)
    rows.append(
        [
            "end-to-end render --device gpu --recompute (s)",
            f"{time.perf_counter() - t0:.2f} s",
            "",
            "",
            "",
        ]
    )
    return rows


def bench_e2e(args) -> None:
    """The user's whole wait: prep (default, --fast, each with and without cut detection,
    --keyframes) plus render --k 8, through
    the command line, next to ffmpeg decoding the film alone, each scaled to a two-hour film
    by the duration ratio."""
    movie = Path(args.movie)
    if not movie.exists():
        make_1080p(argparse.Namespace(dest=str(movie), seconds=180, repeat=1))
    info = probe(movie)
    scale = 7200 / info.duration

    def timed_cli(*argv) -> float:
        return timed_command([sys.executable, "-m", "moviebarcode", *argv])

    null = full_decode_command(movie, info.stream)
    rows = []
    if not args.only:
        t_null = timed_command(null)
        rows = [
            [
                "ffmpeg -i MOVIE -f null - (decode only)",
                f"{t_null:.1f}",
                "",
                "",
                f"{t_null * scale / 60:.1f}",
            ]
        ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (
            ("prep", []),
            ("prep --no-shots", ["--no-shots"]),
            ("prep --fast", ["--fast"]),
            ("prep --fast --no-shots", ["--fast", "--no-shots"]),
            ("prep --keyframes", ["--keyframes"]),
        ):
            if args.only and name not in args.only:
                continue
            store = Path(tmp) / f"{len(rows)}.zarr"
            every = [] if "--keyframes" in extra else ["--every", str(args.every)]
            t_prep = timed_cli("prep", movie, "-o", store, "-q", *every, *extra)
            t_render = timed_cli("render", store, "--k", "8", "-q", "-o", Path(tmp) / "x.png")
            total = t_prep + t_render
            rows.append(
                [
                    f"moviebarcode {name} + render --k 8",
                    f"{t_prep:.1f}",
                    f"{t_render:.1f}",
                    f"{total:.1f}",
                    f"{total * scale / 60:.1f}",
                ]
            )
    print(
        f"\n{movie.name}: {info.codec} {info.width}x{info.height}, {info.duration:.0f} s; "
        f"--every {args.every}; scaled to 2 hours by {scale:.2f}x\n"
    )
    print(table(["", "prep s", "render s", "total s", "2-hour film, min"], rows))


def _compile_ours() -> None:
    """Write moviebarcode's bytecode, as installing a package does (the peer's is): a checkout
    run with $PYTHONDONTWRITEBYTECODE set would compile its sources again at every command."""
    compileall.compile_dir(Path(moviebarcode.__file__).parent, quiet=1)


def bench_peers(args) -> None:
    """The average-colour barcode of a film, start to finish, against `movie-barcodes` (PyPI):
    ours with every option at its default (prep, then render --mode average) and with prep
    --fast, in alternating rounds, one column per second of film for both tools."""
    movie = Path(args.movie)
    peer = args.movie_barcodes or shutil.which("movie-barcodes")
    if not peer:
        raise SystemExit(
            "movie-barcodes not found: pip install movie-barcodes (Python >= 3.12, "
            "or --ignore-requires-python), or give --movie-barcodes PATH"
        )
    info = probe(movie)
    timed_run = functools.partial(timed_command, stderr=subprocess.DEVNULL)
    ours = [sys.executable, "-m", "moviebarcode"]
    _compile_ours()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        # ours first, to learn the column count the peer is asked for
        first = Path(tmp) / "first.zarr"
        timed_run([*ours, "prep", movie, "-o", first, "-q"])
        width = FrameStore.open(first).frames_done

        def run_ours(extra):
            store = Path(tmp) / "ours.zarr"
            shutil.rmtree(store, ignore_errors=True)
            t_prep = timed_run([*ours, "prep", movie, "-o", store, "-q", *extra])
            return t_prep, timed_run(
                [*ours, "render", store, "--mode", "average", "-q", "-o", Path(tmp) / "ours.png"]
            )

        tasks = {
            "default": lambda: run_ours([]),
            "--fast": lambda: run_ours(["--fast"]),
            "peer": lambda: timed_run(
                [
                    peer,
                    "-i",
                    movie,
                    "-m",
                    "avg",
                    "--width",
                    width,
                    "--height",
                    120,
                    "-d",
                    Path(tmp) / "peer.png",
                ]
            ),
        }
        for r in range(args.repeat):
            # alternate who goes first: this machine's speed drifts
            order = list(tasks) if r % 2 == 0 else list(reversed(tasks))
            rounds.append({name: tasks[name]() for name in order})
    print(
        f"\n{movie.name}: {info.width}x{info.height}, {info.duration:.0f} s; average colour, "
        f"{width} columns; {args.repeat} alternating rounds\n"
    )
    rows = [["movie-barcodes --method avg", *(f"{r['peer']:.2f}" for r in rounds), "1.00x"]]
    for name in ("default", "--fast"):
        totals = [sum(r[name]) for r in rounds]
        ratio = statistics.median(t / r["peer"] for t, r in zip(totals, rounds, strict=True))
        rows.append(
            [
                f"moviebarcode prep {name} + render --mode average",
                *(f"{sum(r[name]):.2f} ({r[name][0]:.2f} + {r[name][1]:.2f})" for r in rounds),
                f"{ratio:.2f}x",
            ]
        )
    print(table(["", *(f"round {i + 1}, s" for i in range(len(rounds))), "vs peer (median)"], rows))


def make_1080p(args) -> None:
    """A 1080p H.264 test film: a moving lavfi pattern with noise, keyframes every 4 s; with
    ``--repeat N``, cache/test1080p.mp4 (made first) N times over, joined without re-encoding
    (40: two hours)."""
    dest = Path(args.dest)
    one = dest if args.repeat == 1 else Path("cache/test1080p.mp4")
    ffmpeg_quiet = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y"]
    if not one.exists():
        one.parent.mkdir(parents=True, exist_ok=True)
        source = f"testsrc2=s=1920x1080:r=24:d={args.seconds},noise=alls=3:allf=t"
        x264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "96"]
        subprocess.run(
            [*ffmpeg_quiet, "-f", "lavfi", "-i", source, *x264, "-pix_fmt", "yuv420p", str(one)],
            check=True,
        )
    if not dest.exists():
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
            listing.write(f"file '{one.absolute()}'\n" * args.repeat)
            listing.flush()
            concat = ["-f", "concat", "-safe", "0", "-i", listing.name]
            subprocess.run([*ffmpeg_quiet, *concat, "-c", "copy", str(dest)], check=True)
    print(dest)


def fetch_bbb(args) -> None:
    dest = Path(args.dest)
    if dest.exists():
        print(dest)
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "moviepy==2.2.1",
                "-d",
                tmp,
            ],
            check=True,
        )
        sdist = next(Path(tmp).glob("moviepy-*.tar.gz"))
        with tarfile.open(sdist) as tf:
            member = next(m for m in tf.getmembers() if m.name.endswith("moviepy_10_minutes.zip"))
            tf.extract(member, tmp, filter="data")
            zpath = Path(tmp) / member.name
        with zipfile.ZipFile(zpath) as zf:
            name = next(n for n in zf.namelist() if n.endswith("resources/bbb.mp4"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    print(dest)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prep", help="ffmpeg alone vs moviebarcode prep")
    p.add_argument("movie")
    p.add_argument("--every", type=int, default=24)
    p.add_argument("--repeat", type=int, default=3)
    p.set_defaults(fn=bench_prep)
    sh = sub.add_parser("shots", help="prep with cut detection vs without it")
    sh.add_argument("movie")
    sh.add_argument("--every", type=int, default=24)
    sh.add_argument("--jobs", type=int, help="prep --jobs [default: the machine's cores]")
    sh.add_argument("--repeat", type=int, default=3)
    sh.add_argument(
        "--reference",
        action="store_true",
        help="also compare the cuts with PySceneDetect's (slow: it decodes again)",
    )
    sh.set_defaults(fn=bench_shots)
    r = sub.add_parser("render", help="the original sklearn method vs our engines")
    r.add_argument("store", help="a store, or a movie to prep at --size and --every first")
    r.add_argument("--size", metavar="WxH", help="with a movie: the frame size [160x90]")
    r.add_argument("--every", type=int, default=24, help="with a movie: prep --every [24]")
    r.add_argument("--k", type=int, default=8)
    r.add_argument("--sample", type=int, default=20, help="frames to time sklearn on")
    r.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the original method and ours (medians are reported)",
    )
    r.add_argument("--json", help="also write the figures to this JSON file")
    r.add_argument(
        "--n-init",
        type=int,
        action="append",
        default=[],
        help="also our numpy engine with this n_init (repeatable)",
    )
    r.add_argument("--gpu", action="store_true", help="add the GPU rows (needs CuPy and a GPU)")
    r.add_argument(
        "--baseline",
        metavar="DIR",
        help="also another moviebarcode's source tree (e.g. `git archive REV` "
        "unpacked): timed in the same rounds, and its results must be identical",
    )
    r.set_defaults(fn=bench_render)
    e = sub.add_parser("e2e", help="prep + render through the CLI, scaled to a 2-hour film")
    e.add_argument(
        "movie",
        nargs="?",
        default="cache/test1080p.mp4",
        help="the film [cache/test1080p.mp4, made by make-1080p if missing]",
    )
    e.add_argument("--every", type=int, default=24)
    e.add_argument(
        "--only",
        action="append",
        metavar="ROW",
        help='only this row (repeatable), e.g. "prep --fast"; skips ffmpeg alone',
    )
    e.set_defaults(fn=bench_e2e)
    pe = sub.add_parser("peers", help="the average-colour barcode vs movie-barcodes")
    pe.add_argument("movie", nargs="?", default="cache/bbb.mp4")
    pe.add_argument("--repeat", type=int, default=2)
    pe.add_argument("--movie-barcodes", metavar="PATH", help="its command [on PATH]")
    pe.set_defaults(fn=bench_peers)
    m = sub.add_parser("make-1080p", help="encode a 1080p H.264 test film")
    m.add_argument("--dest", default="cache/test1080p.mp4")
    m.add_argument("--seconds", type=int, default=180)
    m.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="join N copies (40 with --dest cache/test1080p-2h.mp4: a 2-hour film)",
    )
    m.set_defaults(fn=make_1080p)
    f = sub.add_parser("fetch-bbb", help="download the full 10-minute Big Buck Bunny")
    f.add_argument("--dest", default="cache/bbb.mp4")
    f.set_defaults(fn=fetch_bbb)
    args = ap.parse_args()
    resource.setrlimit  # noqa: B018 - imported for the CLI child's measurement
    args.fn(args)


if __name__ == "__main__":
    main()
