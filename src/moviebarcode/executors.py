"""Ways to run many independent calls of one function: in this process, or in worker
processes. (A Dask cluster is a third, in ``moviebarcode.dask_backend``.)

An executor only maps a function over argument tuples; it knows nothing of frames or
clustering. Each yields ``(i, result)`` pairs, ``i`` the call's place in ``calls``, in any
order, and says how many threads a call may use (``threads_per_call``: None for all the
CPUs, 1 where the processes are the parallelism).
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from moviebarcode.errors import MoviebarcodeError


class Executor(Protocol):
    """Runs ``fn(*call)`` for each call."""

    name: str
    workers: int
    threads_per_call: int | None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(*calls[i]))`` for every call, in any order."""
        ...


class InProcess:
    """Each call in turn, in this process; a call may use every CPU."""

    name = "in-process"
    workers = 1
    threads_per_call = None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(calls):
            yield i, fn(*args)


class ProcessPool:
    """Calls in ``workers`` worker processes, at most two in flight per worker, yielded in
    order. Workers are forked where that is safe (see :func:`worker_context`), else spawned,
    which imports the calling script again: a script using this should keep its work under
    ``if __name__ == "__main__":``."""

    name = "processes"
    threads_per_call = 1

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        workers = max(1, min(self.workers, len(calls)))
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=worker_context(),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        pending: deque = deque()
        todo = iter(enumerate(calls))

        def submit(count: int) -> None:
            for i, args in itertools.islice(todo, count):
                pending.append((i, pool.submit(fn, *args)))

        try:
            submit(2 * workers)
            while pending:
                i, fut = pending.popleft()
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise MoviebarcodeError(
                        "a worker process died (out of memory, or a calling script without "
                        "`if __name__ == '__main__':`); try --jobs 1"
                    ) from None
                submit(1)
                yield i, result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker process: end when the process ``parent`` ends, even by ``kill -9``, so no
    worker is left running (and holding its memory) for ever.

    Linux: the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``). Elsewhere,
    or if that fails, a daemon thread checks every second that the parent still exists.
    """
    if sys.platform.startswith("linux"):
        try:
            if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
                if os.getppid() != parent:  # it died before the call: nobody will signal
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="moviebarcode-parent-watch", daemon=True).start()


_FORK_SAFE_THREADS = ("zarr_io", "zarr_pool", "asyncio_")
"""Prefixes of the names of threads that may run while this process forks: zarr's IO loop and
its executors' threads, idle while the main thread forks, which a forked child never uses (zarr
drops its loop and executor in the child and makes new ones)."""


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context for worker processes.

    ``fork`` on Linux when this is the main thread and the only others are known to be safe
    to fork over (zarr's IO loop and its executors, which zarr itself replaces in the child,
    and tqdm's progress monitor, which the child never uses): a forked worker starts at once,
    where a spawned one spends a moment importing. ``spawn`` otherwise: other threads may
    hold locks the child would need, and macOS and Windows have no safe fork.
    """
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        try:
            from tqdm._monitor import TMonitor
        except ImportError:  # pragma: no cover - tqdm is a dependency
            TMonitor = ()  # noqa: N806
        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        if all(t.name.startswith(_FORK_SAFE_THREADS) or isinstance(t, TMonitor) for t in others):
            return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
