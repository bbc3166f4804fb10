"""The frame store and the result cache as units, on stores made in memory (no ffmpeg): the
append / allocate / truncate protocol, batches of whole chunks, the summary `info` prints, the
portable lock, and the cache's keys, atomic publishing and listing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import zarr

from moviebarcode import _lock
from moviebarcode.cache import ResultCache
from moviebarcode.errors import StoreError
from moviebarcode.store import FrameStore, is_store

ATTRS = {
    "source": {"path": "/films/x.mkv", "fingerprint": {}},
    "request": {},
    "sampling": {"every": 24, "fps": None, "keyframes": False, "max_frames": None},
    "picture": {"crop": {"w": 100, "h": 50, "x": 0, "y": 7}, "tonemap": False, "fast": True},
}


def frames(n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = (np.arange(start, start + n)[:, None, None, None] * np.ones((1, 4, 6, 3))).astype(np.uint8)
    return f, np.arange(start, start + n) / 2.0, np.arange(start, start + n) * 24


@pytest.fixture
def store(tmp_path) -> FrameStore:
    return FrameStore.create(tmp_path / "s.zarr", frame_shape=(4, 6), chunk_frames=3, attrs=ATTRS)


def test_append_in_chunks_then_complete(store):
    assert is_store(store.path) and not store.complete and store.frames_done == 0
    store.append(*frames(3))
    store.append(*frames(3, 3))
    store.append(*frames(2, 6))
    store.mark_complete()
    s = FrameStore.open(store.path)
    assert s.complete and s.frames_done == 8 and s.frame_shape == (4, 6)
    assert np.array_equal(s.frames[:, 0, 0, 0], np.arange(8))
    assert np.array_equal(s.times, np.arange(8) / 2.0) and s.indices[-1] == 7 * 24
    assert s.batch_ranges(4) == [(0, 3), (3, 6), (6, 8)]  # whole chunks, at least one
    assert s.batch_ranges(7) == [(0, 6), (6, 8)]
    assert [start for start, _ in s.iter_batches(6)] == [0, 6]


def test_truncate_drops_what_a_killed_writer_left(store):
    store.append(*frames(3))
    store.frames.resize((5, 4, 6, 3))  # a chunk half-written past frames_done
    store.append(*frames(3, 3))  # resumes from frames_done, not from the array's length
    assert store.frames_done == 6 and store.frames.shape[0] == 6
    assert np.array_equal(store.frames[:, 0, 0, 0], np.arange(6))
    store.truncate(3)
    assert store.frames_done == 3 and store.group["time"].shape == (3,)


def test_allocate_gives_the_final_length_without_frames(store):
    store.allocate(9)
    assert store.frames.shape[0] == 9 and store.frames_done == 0


def test_summary(store):
    store.append(*frames(3))
    store.append(*frames(1, 3))
    s = store.summary()
    assert s["status"].startswith("INCOMPLETE") and s["frames"] == 4
    assert s["frame size"] == "6x4" and s["chunk"] == "3 frames"
    assert s["sampling"] == "every 24 frames" and s["covers"] == "0:00:00 - 0:00:02"
    assert s["crop"] == "100x50+0+7" and s["decoder"] == "software, fast"
    store.mark_complete()
    assert store.summary()["status"] == "complete"


def test_open_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        FrameStore.open(tmp_path / "none.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="no zarr.json"):
        FrameStore.open(tmp_path / "plain")
    zarr.open_group(tmp_path / "other.zarr", mode="w")
    with pytest.raises(StoreError, match="not a moviebarcode store"):
        FrameStore.open(tmp_path / "other.zarr")
    zarr.open_group(tmp_path / "v9.zarr", mode="w").attrs["moviebarcode"] = {"layout_version": 9}
    with pytest.raises(StoreError, match="layout version 9"):
        FrameStore.open(tmp_path / "v9.zarr")
    assert not is_store(tmp_path / "other.zarr")


@pytest.mark.parametrize("kind", ["os", "lock file"])
def test_lock_is_exclusive_and_released(store, monkeypatch, kind):
    if kind == "lock file":  # neither fcntl nor msvcrt: the O_EXCL fallback
        monkeypatch.setattr(_lock, "fcntl", None)
        monkeypatch.setattr(_lock, "msvcrt", None)
    with FrameStore.writing(store.path):
        with pytest.raises(StoreError, match="another moviebarcode process is writing it"):
            with FrameStore.writing(store.path):
                pass
    with FrameStore.writing(store.path):  # released
        pass
    assert not (store.path.parent / f".{store.path.name}.lock.held").exists()


def test_package_imports_without_fcntl():
    """Windows has no fcntl: the package (the CLI included) must still import."""
    code = "import sys; sys.modules['fcntl'] = None; import moviebarcode.cli, moviebarcode.store"
    subprocess.run([sys.executable, "-c", code], check=True)


def clustering(n: int, k: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "centres": rng.random((n, k, 3), dtype=np.float32),
        "shares": rng.random((n, k), dtype=np.float32),
        "inertia": rng.random(n),
    }


def test_cache_round_trip_list_and_stats(store):
    store.append(*frames(3))
    store.append(*frames(2, 3))
    cache = ResultCache(store)
    assert cache.load(4, "a") is None and cache.list() == []
    arrays = clustering(5, 4)
    cache.save(4, "a", {"engine": "numpy"}, arrays)
    cache.save(12, "b", {}, clustering(5, 12))
    cache.save(4, "0", {}, clustering(5, 4))
    got = cache.load(4, "a")
    for name, values in arrays.items():
        np.testing.assert_array_equal(got[name], values)
    assert got["params"] == {"engine": "numpy"}
    assert [(r["k"], r["key"]) for r in cache.list()] == [(4, "0"), (4, "a"), (12, "b")]
    cache.save_stats("average-linear", np.ones((5, 3), np.float32), {"mode": "average"})
    assert cache.load_stats("average-linear").shape == (5, 3)
    assert cache.load_stats("squeeze-linear") is None
    leftovers = [p for p in store.path.rglob(".*") if p.name.startswith((".tmp", ".old"))]
    assert not leftovers


def test_cache_keeps_or_replaces(store):
    store.append(*frames(3))
    cache = ResultCache(store)
    first, second = clustering(3, 2, seed=1), clustering(3, 2, seed=2)
    cache.save(2, "key", {"n": 1}, first)
    cache.save(2, "key", {"n": 2}, second)  # another writer's result is there: it stays
    assert cache.load(2, "key")["params"] == {"n": 1}
    cache.save(2, "key", {"n": 2}, second, replace=True)
    np.testing.assert_array_equal(cache.load(2, "key")["inertia"], second["inertia"])
    with pytest.raises(ValueError, match="inertia"):
        cache.save(2, "other", {}, {"centres": first["centres"], "shares": first["shares"]})


def test_cache_ignores_a_result_of_another_length(store):
    store.append(*frames(3))
    ResultCache(store).save(2, "key", {}, clustering(3, 2))
    store.append(*frames(3, 3))
    assert ResultCache(FrameStore.open(store.path)).load(2, "key") is None


def test_cache_refuses_to_overwrite_a_foreign_folder(store):
    store.append(*frames(3))
    cache = ResultCache(store)
    (cache.path(2, "key") / "mine").mkdir(parents=True)
    with pytest.raises(OSError):
        cache.save(2, "key", {}, clustering(3, 2), replace=True)
    assert (cache.path(2, "key") / "mine").is_dir()


def test_cluster_range_names_a_store_missing_where_it_runs(tmp_path):
    """A worker (a process, a Dask worker on another machine) without the store at the same
    path says so in one line, naming its host."""
    import socket

    from moviebarcode.cluster import ClusterParams, cluster_range

    with pytest.raises(StoreError, match=f"no such store on {socket.gethostname()}"):
        cluster_range(str(tmp_path / "elsewhere.zarr"), 0, 1, ClusterParams(k=2))


def test_a_damaged_store_is_refused_by_every_reader(store):
    """The chunk check runs once per opening, yet a store damaged before it opens is refused."""
    store.append(*frames(3))
    store.mark_complete()
    s = FrameStore.open(store.path)
    s.require_complete()
    s.require_complete()  # checked once: still fine
    (store.path / "frames" / "c" / "0" / "0" / "0" / "0").unlink()
    with pytest.raises(StoreError, match="frames chunk 0 .* is missing"):
        FrameStore.open(store.path).require_complete()
