"""Small frame stores written directly (no ffmpeg): one solid colour per frame, at given
times, for the circular layout's and compare's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moviebarcode.store import FrameStore

ATTRS = {
    "source": {"path": "/films/colours.mkv", "fingerprint": {}},
    "request": {},
    "sampling": {"every": 24, "fps": None, "keyframes": False, "max_frames": None},
    "picture": {"crop": None, "tonemap": False, "fast": False},
}


def colour_store(path: Path, colours, times=None, shape=(4, 6)) -> Path:
    """A complete store at ``path`` whose frame ``i`` is all ``colours[i]`` (uint8 RGB), at
    ``times[i]`` seconds (default ``i``)."""
    colours = np.asarray(colours, np.uint8).reshape(-1, 3)
    n = len(colours)
    times = np.arange(n, dtype=np.float64) if times is None else np.asarray(times, np.float64)
    store = FrameStore.create(path, frame_shape=shape, chunk_frames=64, attrs=ATTRS)
    frames = np.broadcast_to(colours[:, None, None, :], (n, *shape, 3))
    store.append(np.ascontiguousarray(frames), times, np.arange(n) * 24)
    store.mark_complete()
    return path
