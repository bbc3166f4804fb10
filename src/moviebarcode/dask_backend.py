"""Many films, or one big store, on a Dask cluster (dask.distributed; dask-cuda for GPU workers).

- :func:`run_batch` preps and renders a list of films: one prep task per film and one render task
  that depends on it. A film that fails (a corrupt file) is reported in its :class:`FilmResult`
  and does not stop the others. Running the same batch again does no repeated work: ``prep`` is a
  no-op on a complete, up-to-date store and the clusterings are cached in the stores.
- :class:`DaskExecutor` is an executor (see ``moviebarcode.executors``) whose calls are tasks on
  the cluster's workers: handed to ``moviebarcode.cluster.cluster`` (or ``render``), it clusters
  one store's batches there, with the same batches and seeds as a local run, so the result is
  the same, array for array, and it is cached in the store the same way.

Workers open movies and stores by path, so they need the movie, cache and output folders at the
same paths as the client (a shared file system), and moviebarcode installed. Dask is an optional
extra (``pip install 'moviebarcode[dask]'``): importing this module never imports it.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moviebarcode._cpus import usable_cpus
from moviebarcode._fmt import table
from moviebarcode.cache import ResultCache
from moviebarcode.errors import InputError, MoviebarcodeError
from moviebarcode.ffmpegbin import set_ffmpeg
from moviebarcode.prep import PrepRequest, prep
from moviebarcode.render import CLUSTER_MODES, RenderOptions, image_file_name, render, stats_name
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
        n_workers=n_workers or usable_cpus(),
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
    return Path(out_dir) / image_file_name(stem, opts)


def _prep_task(
    movie: str, store: str, request: PrepRequest, jobs: int, force: bool, ffmpeg: str | None
) -> dict:
    """Worker side: prep one film; never raises (a failure is returned as a reason)."""
    t0 = time.perf_counter()
    try:
        if ffmpeg:
            set_ffmpeg(ffmpeg)
        if not Path(movie).exists():
            raise InputError(
                f"{movie}: no such file on worker {socket.gethostname()} (workers need the "
                f"movies folder at the same path)"
            )
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
    name = stats_name(opts.mode, opts.gamma_correct, opts.region)
    return ResultCache(store).load_stats(name) is not None


def _render_task(prepped: dict, store: str, image: str, opts: RenderOptions) -> dict:
    """Worker side: render one prepped film into ``image`` (written under a temporary name and
    moved into place, so an interrupted batch never leaves half an image); never raises."""
    if not prepped["ok"]:
        return {**prepped, "stage": "prep"}
    t0 = time.perf_counter()
    out = Path(image)
    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.png")
    try:
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


def _films(movies: Sequence[str | os.PathLike]) -> list[Path]:
    """The films of a batch as absolute paths, each once; InputError for none, or for two
    films that would share a store."""
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
    return list(dict.fromkeys(films))


def _folder(path: str | os.PathLike) -> Path:
    d = Path(path).expanduser().absolute()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {d}: {exc.strerror}") from None
    return d


def _submit(client, films, stores, images, prep_args, opts) -> tuple[list, list]:
    """One prep task per film and one render task depending on it (the renders first, so a
    film is finished before another's prep starts)."""
    run = uuid.uuid4().hex[:8]
    preps, renders = [], []
    for film, store, image in zip(films, stores, images, strict=True):
        p = client.submit(
            _prep_task,
            str(film),
            str(store),
            *prep_args,
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
            priority=1,
        )
        preps.append(p)
        renders.append(r)
    return preps, renders


def _collect(distributed, preps, renders, films, progress) -> dict[int, dict]:
    """Each film's outcome (its render's, or its failed prep's), as the tasks finish."""
    index = {f.key: (i, "prep") for i, f in enumerate(preps)}
    index.update({f.key: (i, "render") for i, f in enumerate(renders)})
    outcome: dict[int, dict] = {}
    finished = 0
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
            progress("done" if outcome[i]["ok"] else "failed", films[i], finished, len(films))
    return outcome


def _film_result(film: Path, store: Path, image: Path, v: dict) -> FilmResult:
    if v["ok"]:
        status = SKIPPED if v.get("skipped") else "done"
    else:
        status = f"failed: {v['reason']}"
    return FilmResult(
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


def run_batch(
    movies: Sequence[str | os.PathLike],
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
    distributed = _dask()
    request = prep_request or PrepRequest()
    opts = render_options or RenderOptions()
    if opts.palette is not None:
        raise InputError("a batch writes no palette files")
    films = _films(movies)
    cache, out = _folder(cache_dir), _folder(out_dir)
    stores = [cache / f"{f.stem}.zarr" for f in films]
    images = [image_path(out, f.stem, opts) for f in films]
    if scheduler is None and n_workers is None:
        n_workers = min(len(films), usable_cpus())
    with connect(scheduler, n_workers) as client:
        preps, renders = _submit(
            client, films, stores, images, (request, prep_jobs, force, ffmpeg), opts
        )
        try:
            outcome = _collect(distributed, preps, renders, films, progress)
        except BaseException:
            client.cancel(preps + renders, force=True)
            raise
    return [
        _film_result(film, store, image, outcome[i])
        for i, (film, store, image) in enumerate(zip(films, stores, images, strict=True))
    ]


def summary_table(results: list[FilmResult]) -> str:
    """The batch's summary: film, frames, seconds, status, one film a line."""
    rows = [
        [r.film.name, "-" if r.frames is None else str(r.frames), f"{r.seconds:.1f}", r.status]
        for r in results
    ]
    return table(["film", "frames", "seconds", "status"], rows, right=(1, 2))


class DaskExecutor:
    """An executor (see ``moviebarcode.executors``) whose calls are tasks on a Dask cluster.

    ``scheduler``: an address, a ``distributed.Client`` (used as is), or None for a local
    cluster of ``n_workers`` processes. Use it in a ``with``: the connection (or the local
    cluster) lives for its time. Workers open stores by path, so they need them at the same
    paths as here.
    """

    name = "dask"
    threads_per_call = None

    def __init__(self, scheduler=None, n_workers: int | None = None):
        self._connection = connect(scheduler, n_workers)
        self.client = None
        self.workers = 0

    def __enter__(self) -> DaskExecutor:
        self.client = self._connection.__enter__()
        self.workers = len(self.client.scheduler_info().get("workers", {}))
        return self

    def __exit__(self, *exc) -> None:
        self._connection.__exit__(*exc)
        self.client = None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        if self.client is None:
            raise RuntimeError("use the DaskExecutor in a `with` block")
        distributed = _dask()
        run = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(fn, *args, key=f"moviebarcode-{fn.__name__}-{i}-{run}", pure=False)
            for i, args in enumerate(calls)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in distributed.as_completed(futures):
                yield index[fut.key], fut.result()
        except BaseException:
            self.client.cancel(futures, force=True)
            raise
