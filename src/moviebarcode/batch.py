"""Many films, or one big store, on a Dask cluster (dask.distributed; dask-cuda for GPU workers).

- :func:`run_batch` preps and renders a list of films: one prep task per film and one render task
  that depends on it. A film that fails (a corrupt file) is reported in its :class:`FilmResult`
  and does not stop the others. Running the same batch again does no repeated work: ``prep`` is a
  no-op on a complete, up-to-date store and the clusterings are cached in the stores.
- :func:`distributed_cluster` clusters one store's frames on the cluster's workers, one task per
  batch of whole chunks, with the batch boundaries and seeds of :func:`moviebarcode.render.cluster`:
  the result is the same, array for array, and it is cached in the store the same way.

Workers open movies and stores by path, so they need the movie, cache and output folders at the
same paths as the client (a shared file system), and moviebarcode installed. Dask is an optional
extra (``pip install 'moviebarcode[dask]'``): importing this module never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moviebarcode import options
from moviebarcode.errors import InputError, MoviebarcodeError, StoreError

if TYPE_CHECKING:  # the heavy modules are imported when used: `moviebarcode --help` stays quick
    import numpy as np

    from moviebarcode.prep import PrepRequest
    from moviebarcode.render import ClusterParams, Clusters, RenderOptions
    from moviebarcode.store import FrameStore

NEEDS_DASK = "batch needs Dask: pip install 'moviebarcode[dask]'"
SKIPPED = "skipped (up to date)"


def _dask():
    """The ``distributed`` module, or a one-line MoviebarcodeError when Dask is not installed."""
    try:
        import dask.array  # noqa: F401 - part of the extra; checked here so the message is ours
        import distributed
    except ImportError:
        raise MoviebarcodeError(NEEDS_DASK) from None
    return distributed


# ----------------------------------------------------------------------------- the cluster


def local_cluster(n_workers: int | None = None):
    """A LocalCluster on loopback only (no dashboard): ``n_workers`` processes (default: the
    machine's cores) of one thread each."""
    distributed = _dask()
    import logging

    return distributed.LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


@contextlib.contextmanager
def connect(scheduler=None, n_workers: int | None = None, timeout: float = 10) -> Iterator[Any]:
    """A ``distributed.Client``: ``scheduler`` may be a Client (used as is, left open), a
    scheduler address (``tcp://host:8786``), or None (a local cluster for the time of the
    ``with``, see :func:`local_cluster`); ``timeout`` seconds to reach a scheduler. Whatever this
    opened is closed on the way out, Ctrl-C included."""
    distributed = _dask()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    cluster = None
    client = None
    try:
        if scheduler is None:
            cluster = local_cluster(n_workers)
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                why = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise MoviebarcodeError(
                    f"cannot reach the Dask scheduler at {scheduler}: {why}"
                ) from None
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _one_line(exc: BaseException) -> str:
    """An exception as one line: our messages as they are, others with their class name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, MoviebarcodeError):
        text = f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ----------------------------------------------------------------------------- a batch of films


@dataclass
class FilmResult:
    """What became of one film of a batch. ``status`` is "done", "skipped (up to date)" (nothing
    decoded, nothing clustered, the image unchanged) or "failed: <one-line reason>"."""

    film: Path
    store: Path
    image: Path | None
    frames: int | None
    seconds: float
    status: str
    prep_status: str | None = None  # prep's own: "created", "resumed", "up to date"...
    decoded: bool = False  # whether this run decoded any of the film
    clustered: bool = False  # whether this run clustered any frame
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.status.startswith("failed")


def image_path(out_dir: Path, stem: str, opts: RenderOptions) -> Path:
    """The barcode's path in ``out_dir``: named as ``render`` names it next to a store."""
    from moviebarcode.render import image_file_name

    return Path(out_dir) / image_file_name(stem, opts)


def _prep_task(
    movie: str, store: str, request: PrepRequest, jobs: int, force: bool, ffmpeg: str | None
) -> dict:
    """Worker side: prep one film; never raises (a failure is returned as a reason)."""
    t0 = time.perf_counter()
    try:
        if ffmpeg:
            from moviebarcode.ffmpegbin import set_ffmpeg

            set_ffmpeg(ffmpeg)
        if not Path(movie).exists():
            raise InputError(
                f"{movie}: no such file on worker {socket.gethostname()} (workers need the "
                f"movies folder at the same path)"
            )
        from moviebarcode.prep import prep

        res = prep(movie, request, output=store, force=force, jobs=jobs)
        return {
            "ok": True,
            "status": res.status,
            "frames": res.frames,
            "warnings": list(res.warnings),
            "seconds": time.perf_counter() - t0,
        }
    except Exception as exc:  # noqa: BLE001 - one film's failure must not stop the batch
        return {"ok": False, "reason": _one_line(exc), "seconds": time.perf_counter() - t0}


def _stats_cached(store: FrameStore, opts: RenderOptions) -> bool:
    name = f"{opts.mode}-{'linear' if opts.gamma_correct else 'naive'}"
    return store.load_stats(name) is not None


def _render_task(prepped: dict, store: str, image: str, opts: RenderOptions) -> dict:
    """Worker side: render one prepped film into ``image`` (written under a temporary name and
    moved into place, so an interrupted batch never leaves half an image); never raises."""
    if not prepped["ok"]:
        return {**prepped, "stage": "prep"}
    t0 = time.perf_counter()
    out = Path(image)
    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.png")
    try:
        from moviebarcode.render import CLUSTER_MODES, render
        from moviebarcode.store import FrameStore

        out.parent.mkdir(parents=True, exist_ok=True)
        fs = FrameStore.open(store)
        stats_before = opts.mode not in CLUSTER_MODES and _stats_cached(fs, opts)
        res = render(store, opts, output=tmp)
        clustered = res.clusters is not None and not res.clusters.cached
        cached = res.clusters.cached if res.clusters is not None else stats_before
        same = out.is_file() and filecmp.cmp(tmp, out, shallow=False)
        if same:
            tmp.unlink()
        else:
            os.replace(tmp, out)
        up_to_date = prepped["status"] == "up to date" and cached and same
        return {
            **prepped,
            "clustered": clustered,
            "skipped": up_to_date,
            "seconds": prepped["seconds"] + time.perf_counter() - t0,
        }
    except Exception as exc:  # noqa: BLE001
        return {
            "ok": False,
            "stage": "render",
            "reason": _one_line(exc),
            "frames": prepped.get("frames"),
            "status": prepped.get("status"),
            "seconds": prepped["seconds"] + time.perf_counter() - t0,
        }
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


BatchProgress = Callable[[str, Path, int, int], None]
"""(event "prepped" | "done" | "failed", film, films finished, films in all)"""


def read_list(path: str | os.PathLike) -> list[Path]:
    """Movie paths from a list file: one a line; blank lines and lines starting with ``#``
    ignored; relative paths are relative to the list file's folder."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the list ({exc.strerror})") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            q = Path(line).expanduser()
            out.append(q if q.is_absolute() else p.parent / q)
    return out


def run_batch(
    movies: list[str | os.PathLike],
    *,
    cache_dir: str | os.PathLike = "cache",
    out_dir: str | os.PathLike = "out",
    prep_request: PrepRequest | None = None,
    render_options: RenderOptions | None = None,
    scheduler=None,
    n_workers: int | None = None,
    prep_jobs: int = 1,
    force: bool = False,
    ffmpeg: str | None = None,
    progress: BatchProgress | None = None,
) -> list[FilmResult]:
    """Prep and render every film of ``movies`` on a Dask cluster; the results in their order.

    Each film's prep is one task (``cache_dir/<stem>.zarr``, ``prep_jobs`` ffmpeg processes) and
    its render another, depending on it (``out_dir/<stem>-<mode>[-k<k>].png``). ``scheduler``: a
    scheduler address or a ``distributed.Client``; None starts a local cluster of ``n_workers``
    processes (default: the machine's cores, at most one per film) on loopback for the time of
    the batch. Never raises for one film's failure; raises MoviebarcodeError for a batch that
    cannot start (no Dask, unreachable scheduler, two films with the same name).
    """
    from moviebarcode.prep import PrepRequest
    from moviebarcode.render import RenderOptions

    distributed = _dask()
    request = prep_request or PrepRequest()
    # One process per film on each worker: Dask workers are the parallelism (and may be
    # daemonic processes, which cannot start the render's own worker processes).
    opts = dataclasses.replace(render_options or RenderOptions(), jobs=1)
    if opts.palette is not None:
        raise InputError("a batch writes no palette files")
    films = [Path(m).expanduser().absolute() for m in movies]
    if not films:
        raise InputError("no films given")
    by_stem: dict[str, Path] = {}
    for f in films:
        if f.stem in by_stem and by_stem[f.stem] != f:
            raise InputError(
                f"{by_stem[f.stem]} and {f} would share the store {f.stem}.zarr; batch them apart"
            )
        by_stem[f.stem] = f
    films = list(dict.fromkeys(films))
    cache = Path(cache_dir).expanduser().absolute()
    out = Path(out_dir).expanduser().absolute()
    for d in (cache, out):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create folder {d}: {exc.strerror}") from None
    stores = [cache / f"{f.stem}.zarr" for f in films]
    images = [image_path(out, f.stem, opts) for f in films]
    if scheduler is None and n_workers is None:
        n_workers = min(len(films), os.cpu_count() or 1)
    run = uuid.uuid4().hex[:8]
    outcome: dict[int, dict] = {}
    with connect(scheduler, n_workers) as client:
        preps, renders = [], []
        for film, store, image in zip(films, stores, images, strict=True):
            p = client.submit(
                _prep_task,
                str(film),
                str(store),
                request,
                prep_jobs,
                force,
                ffmpeg,
                key=f"moviebarcode-prep-{film.stem}-{run}",
                pure=False,
            )
            r = client.submit(
                _render_task,
                p,
                str(store),
                str(image),
                opts,
                key=f"moviebarcode-render-{film.stem}-{run}",
                pure=False,
                priority=1,  # finish a film before starting another's prep
            )
            preps.append(p)
            renders.append(r)
        index = {f.key: (i, "prep") for i, f in enumerate(preps)}
        index.update({f.key: (i, "render") for i, f in enumerate(renders)})
        finished = 0
        try:
            for fut in distributed.as_completed(preps + renders):
                i, stage = index[fut.key]
                try:
                    value = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker died, the task was lost...
                    value = {"ok": False, "reason": _one_line(exc), "seconds": 0.0}
                if stage == "prep":
                    if value["ok"] and progress:
                        progress("prepped", films[i], finished, len(films))
                    if not value["ok"]:
                        outcome.setdefault(i, value)
                    continue
                outcome[i] = value if i not in outcome or not value["ok"] else outcome[i]
                finished += 1
                if progress:
                    event = "done" if outcome[i]["ok"] else "failed"
                    progress(event, films[i], finished, len(films))
        except BaseException:
            client.cancel(preps + renders, force=True)
            raise
    results = []
    for i, (film, store, image) in enumerate(zip(films, stores, images, strict=True)):
        v = outcome[i]
        if v["ok"]:
            status = SKIPPED if v.get("skipped") else "done"
        else:
            status = f"failed: {v['reason']}"
        results.append(
            FilmResult(
                film=film,
                store=store,
                image=image if v["ok"] else None,
                frames=v.get("frames"),
                seconds=round(float(v.get("seconds", 0.0)), 3),
                status=status,
                prep_status=v.get("status"),
                decoded=v.get("status") not in (None, "up to date"),
                clustered=bool(v.get("clustered")),
                warnings=list(v.get("warnings", [])),
            )
        )
    return results


def summary_table(results: list[FilmResult]) -> str:
    """The batch's summary: film, frames, seconds, status, one film a line."""
    rows = [
        [r.film.name, "-" if r.frames is None else str(r.frames), f"{r.seconds:.1f}", r.status]
        for r in results
    ]
    head = ["film", "frames", "seconds", "status"]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in (1, 2) else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


# ----------------------------------------------------------------------------- one big store


def _cluster_range(
    store: str, start: int, stop: int, params: ClusterParams, engine: str | None, device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
    """Worker side: cluster frames [start, stop) of the store at ``store`` exactly as
    :func:`moviebarcode.render.cluster` clusters that batch."""
    from moviebarcode.render import cluster_batch, resolve_engine
    from moviebarcode.store import FrameStore

    if not Path(store).exists():
        raise StoreError(
            f"{store}: no such store on worker {socket.gethostname()} (workers need the cache "
            f"folder at the same path)"
        )
    name, dev = resolve_engine(engine, device)
    eng = _engine(name)
    frames = FrameStore.open(store).frames[start:stop]
    if dev.kind == "gpu":
        frames = dev.xp.asarray(frames)
    centres, shares, inertia = cluster_batch(frames, start, params, eng)
    return centres, shares, inertia, eng.name, dev.kind


@functools.cache
def _engine(name: str):
    """One engine object per worker process and name (creating a GPU engine costs a moment)."""
    from moviebarcode.engines import get_engine

    return get_engine(name)


def distributed_cluster(
    store_path: str | os.PathLike,
    params: ClusterParams,
    scheduler=None,
    *,
    engine: str | None = None,
    device: str = "auto",
    recompute: bool = False,
    batch_frames: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Clusters:
    """The clustering of every frame of a store, computed on a Dask cluster and cached in the
    store, like :func:`moviebarcode.render.cluster`; a cached result is returned as is unless
    ``recompute``.

    One task per batch of whole chunks, each opening the store by its path on a worker: the
    same batches (``render._batch_frames``) and seeds (``params.seed + start``) as a local
    clustering, so the arrays are identical to it when the workers use the same engine (the
    engine is resolved on each worker from ``engine`` and ``device``: numpy on CPU workers).
    ``scheduler``: an address, a ``distributed.Client``, or None for a local cluster.
    ``progress`` receives the number of frames done so far.
    """
    import numpy as np

    from moviebarcode.render import Clusters, _batch_frames, cached_clusters
    from moviebarcode.store import FrameStore

    distributed = _dask()
    store = FrameStore.open(store_path)
    store.require_complete()
    if not recompute and (hit := cached_clusters(store, params)) is not None:
        return hit
    key = params.key()
    n = store.frames_done
    k = params.k
    ranges = store.batch_ranges(_batch_frames(store, k, batch_frames))
    path = str(store.path.absolute())
    centres = np.empty((n, k, 3), np.float32)
    shares = np.empty((n, k), np.float32)
    inertia = np.empty(n, np.float64)
    engines: set[tuple[str, str]] = set()
    t0 = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    with connect(scheduler) as client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        futures = [
            client.submit(
                _cluster_range,
                path,
                s,
                e,
                params,
                engine,
                device,
                key=f"moviebarcode-cluster-{store.path.stem}-{s}-{run}",
                pure=False,
            )
            for s, e in ranges
        ]
        starts = {f.key: (s, e) for f, (s, e) in zip(futures, ranges, strict=True)}
        done = 0
        try:
            for fut in distributed.as_completed(futures):
                s, e = starts[fut.key]
                c, sh, inn, eng_name, dev_kind = fut.result()
                centres[s:e], shares[s:e], inertia[s:e] = c, sh, inn
                engines.add((eng_name, dev_kind))
                done += e - s
                if progress:
                    progress(done)
        except BaseException:
            client.cancel(futures, force=True)
            raise
    seconds = time.perf_counter() - t0
    names = sorted(engines)
    meta = {
        **dataclasses.asdict(params),
        "engine": ",".join(sorted({e for e, _ in names})),
        "device": ",".join(sorted({d for _, d in names})),
        "seconds": round(seconds, 3),
        "frames": n,
        "centres_space": "srgb",
        "dask": {"tasks": len(ranges), "workers": n_workers},
    }
    store.save_result(k, key, meta, centres, shares, inertia, replace=recompute)
    return Clusters(centres, shares, inertia, meta, False, seconds)


# ----------------------------------------------------------------------------- the command


def _friendly(fn):
    """``cli.friendly_errors``, imported when the command runs (cli.py imports this module)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from moviebarcode.cli import friendly_errors

        return friendly_errors(fn)(*args, **kwargs)

    return wrapper


@click.command("batch")
@click.argument("movies", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--list",
    "list_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Read more movies from FILE: one path a line, # comments.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    default="cache",
    show_default=True,
    metavar="DIR",
    help="Folder of the frame stores (DIR/<movie stem>.zarr).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default="out",
    show_default=True,
    metavar="DIR",
    help="Folder of the barcodes (DIR/<movie stem>-<mode>-k<k>.png).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on this Dask cluster (e.g. tcp://10.0.0.5:8786) [default: a local cluster "
    "sized to this machine]. Workers need the movie, cache and output folders at the same "
    "paths.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes of the local cluster [default: the machine's cores, at most one "
    "per film].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="ffmpeg processes per film's prep (the batch runs films in parallel already).",
)
@options.apply(options.PREP)
@click.option("--force", is_flag=True, help="prep: replace stores made with other options.")
@options.apply(options.render_options("--image-width", "--image-height"))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@_friendly
def batch(movies, list_file, cache_dir, out_dir, scheduler, workers, jobs, force, quiet, **params):
    """Prep and render many MOVIES on a Dask cluster (local by default).

    Each film's prep is one task and its render another. Stores go to --cache, barcodes to
    --out. A film that fails is reported in the summary and does not stop the others; running
    the same batch again skips what is complete and finishes the rest. Exit code 1 if any film
    failed.
    """
    from moviebarcode.cli import show_progress

    if scheduler and workers:
        raise click.UsageError("--workers sizes the local cluster: not with --scheduler")
    films = list(movies) + (read_list(list_file) if list_file else [])
    if not films:
        raise click.UsageError("give MOVIES or --list FILE")
    _dask()
    request = options.prep_request(params)
    opts = options.render_opts(params)
    root = click.get_current_context().find_root()
    ffmpeg = root.params.get("ffmpeg_path") if root.command.name != "batch" else None
    bar = None
    if show_progress(quiet):
        from tqdm import tqdm

        bar = tqdm(total=len(films), unit="film", desc="batch", dynamic_ncols=True, leave=False)
    prepped = [0]

    def progress(event, film, finished, total):
        if bar is None:
            return
        if event == "prepped":
            prepped[0] += 1
        else:
            bar.update(finished - bar.n)
        bar.set_postfix_str(f"prepped {prepped[0]}/{total}, last: {film.name} {event}")

    try:
        results = run_batch(
            films,
            cache_dir=cache_dir,
            out_dir=out_dir,
            prep_request=request,
            render_options=opts,
            scheduler=scheduler,
            n_workers=workers,
            prep_jobs=jobs,
            force=force,
            ffmpeg=ffmpeg,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    for r in results:
        for w in r.warnings:
            click.echo(f"moviebarcode: warning: {r.film.name}: {w}", err=True)
    failed = [r for r in results if not r.ok]
    if not quiet:
        click.echo(summary_table(results))
        skipped = sum(r.status == SKIPPED for r in results)
        click.echo(
            f"{len(results) - len(failed)} of {len(results)} films done ({skipped} already up to "
            f"date); barcodes in {Path(out_dir).absolute()}"
        )
    if failed:
        raise MoviebarcodeError(f"{len(failed)} of {len(results)} films failed (see the summary)")
