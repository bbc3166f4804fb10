"""The cut scores of one decoding run, as ffmpeg decodes.

ffmpeg writes a small copy of every decoded frame to a second pipe (see
``moviebarcode.decode``); :class:`ScoreReader` reads it on a thread and scores each frame
against the one before (``moviebarcode.cutdetect``). The frames' times come from ffmpeg's
log, in the same order, through :meth:`ScoreLog.add_time`. Whoever writes the store takes
the scores of the frames up to the last frame it writes (:meth:`ScoreLog.take`), so that a
store killed at any moment holds the scores of every frame before its last stored one.
"""

from __future__ import annotations

import select
import threading
import time

import numpy as np

from moviebarcode.cutdetect import SMALL, content_scores

BATCH_FRAMES = 256  # small frames scored at once
MIN_BATCH = 32  # frames gathered before scoring, while more keep coming
LINGER = 0.005  # seconds to wait for more frames before scoring fewer
POLL = 0.01  # seconds between a waiter's looks at frames' times (which come without a signal)


class ScoreLog:
    """The decoded frames' times and their scores, paired in order, until taken."""

    def __init__(self):
        self._times: list[float] = []
        self._scores: list[float] = []
        self._cond = threading.Condition()
        self.scoring_done = False  # the pipe ended: no more scores will come
        self.timing_done = False  # the log ended: no more times will come

    def add_time(self, t: float) -> None:
        """One decoded frame's time. Called for every frame, so it takes no lock (a list
        append is atomic): a waiter checks again at least every :data:`POLL` seconds."""
        self._times.append(t)

    def add_scores(self, scores: np.ndarray) -> None:
        with self._cond:
            self._scores.extend(scores.tolist())
            self._cond.notify_all()

    def end_scores(self) -> None:
        """The pipe ended: no more scores will come."""
        with self._cond:
            self.scoring_done = True
            self._cond.notify_all()

    def end_times(self) -> None:
        """The log ended: no more times will come."""
        with self._cond:
            self.timing_done = True
            self._cond.notify_all()

    def _ready(self, until: float | None) -> bool:
        paired = min(len(self._times), len(self._scores))
        if until is not None and paired and self._times[paired - 1] >= until - 1e-9:
            return True
        # every score has its time, or none will come
        return self.scoring_done and (len(self._times) >= len(self._scores) or self.timing_done)

    def take_paired(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, scores) of the frames scored so far and not taken, without waiting."""
        with self._cond:
            paired = min(len(self._times), len(self._scores))
            return self._pop(paired)

    def _pop(self, paired: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(self._times[:paired], np.float64)
        s = np.asarray(self._scores[:paired], np.float64)
        del self._times[:paired], self._scores[:paired]
        return t, s

    def take(self, until: float | None = None, wait: float = 600.0):
        """(times, scores) of the frames up to time ``until`` (all, at the end: None), once
        they are scored; frames never scored (past the scored range) are dropped at the end.

        Raises TimeoutError when no score came for ``wait`` seconds."""
        deadline = time.monotonic() + wait
        with self._cond:
            while not self._ready(until):
                if time.monotonic() > deadline:
                    raise TimeoutError("no cut score came from ffmpeg")
                self._cond.wait(timeout=POLL)
            paired = min(len(self._times), len(self._scores))
            if until is not None:
                paired = int(np.searchsorted(self._times[:paired], until + 1e-9))
            return self._pop(paired)


class ScoreReader(threading.Thread):
    """Reads the small frames from ``stream`` and scores them into ``log``."""

    def __init__(self, stream, log: ScoreLog):
        super().__init__(daemon=True)
        self.stream = stream
        self.log = log

    def run(self) -> None:
        w, h = SMALL
        self._size = w * h * 3
        self._buf = bytearray(self._size * BATCH_FRAMES)
        view = memoryview(self._buf)
        self._have = 0
        self._before = None
        try:
            while r := self.stream.readinto(view[self._have :]):
                self._have += r
                m = self._have // self._size
                # score in batches (a call per frame costs more than its arithmetic), but
                # never hold frames back while ffmpeg has nothing more to send
                full = self._have == len(self._buf)
                if m and (m >= MIN_BATCH or full or not self._more_soon()):
                    self._score(m)
            self._score(self._have // self._size)  # what the end of the pipe left
        finally:
            self.stream.close()
            self.log.end_scores()

    def _score(self, m: int) -> None:
        """Score the first ``m`` whole frames of the buffer and drop them from it."""
        if not m:
            return
        size, buf = self._size, self._buf
        w, h = SMALL
        frames = np.frombuffer(buf, np.uint8, m * size).reshape(m, h, w, 3)
        self.log.add_scores(content_scores(frames, self._before))
        self._before = frames[-1].copy()
        del frames
        rest = self._have - m * size
        buf[:rest] = buf[m * size : self._have]
        self._have = rest

    def _more_soon(self) -> bool:
        """Whether more bytes arrive within :data:`LINGER` seconds."""
        return bool(select.select([self.stream], [], [], LINGER)[0])
