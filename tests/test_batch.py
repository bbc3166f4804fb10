"""Batches on a real Dask cluster (a LocalCluster of 2 worker processes on loopback): barcodes
identical to the plain commands', one corrupt film reported without stopping the others, re-runs
with no repeated work, Ctrl-C; and one store clustered on the workers, identical to a local
clustering."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from conftest import descendants, is_alive, make_clip  # noqa: E402
from moviebarcode import dask_backend as mb  # noqa: E402
from moviebarcode.cache import ResultCache  # noqa: E402
from moviebarcode.cluster import ClusterParams, cluster  # noqa: E402
from moviebarcode.errors import InputError, MoviebarcodeError  # noqa: E402
from moviebarcode.prep import PrepRequest, prep  # noqa: E402
from moviebarcode.render import RenderOptions, render  # noqa: E402
from moviebarcode.store import FrameStore  # noqa: E402

REQ = PrepRequest(every=4, width=96)
OPTS = RenderOptions(mode="stacked", cluster=ClusterParams(k=4))
KEY = OPTS.cluster.for_frames((54, 96)).key()  # the films are 96x54


@pytest.fixture(scope="module")
def client():
    import distributed

    with mb.local_cluster(2) as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    d = tmp_path_factory.mktemp("films")
    a = make_clip(d / "bars.mp4", "testsrc2=s=320x180:r=24:d=4")
    b = make_clip(
        d / "colours.mkv",
        "color=c=red:s=320x180:r=24:d=2[a];color=c=blue:s=320x180:r=24:d=2[b];[a][b]concat=n=2",
    )
    bad = d / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, np.uint8).tobytes())
    return [a, bad, b]


def plain(movie, work):
    """The plain library calls: prep + render with default paths in ``work``."""
    store = prep(movie, REQ, output=work / f"{movie.stem}.zarr").store
    return store, render(store, OPTS).image


def test_batch_like_plain_commands_then_no_repeated_work(client, films, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    kw = dict(cache_dir=cache, out_dir=out, prep_request=REQ, render_options=OPTS, scheduler=client)
    events = []
    res = mb.run_batch(films, progress=lambda *e: events.append(e[0]), **kw)
    assert [r.film for r in res] == films
    good, bad = [res[0], res[2]], res[1]
    assert [r.status for r in good] == ["done", "done"]
    assert all(r.decoded and r.clustered and r.frames > 0 for r in good)
    assert bad.status.startswith("failed: ") and "corrupt.mp4" in bad.status
    assert "\n" not in bad.status and bad.image is None
    assert sorted(events) == ["done", "done", "failed", "prepped", "prepped"]
    table = mb.summary_table(res)
    assert "corrupt.mp4" in table and "failed:" in table and "frames" in table
    # identical to the plain commands: the PNG bytes and the cached clustering
    for r, movie in zip(good, [films[0], films[2]], strict=True):
        store, image = plain(movie, tmp_path / "plain")
        assert r.image == out / image.name
        assert r.image.read_bytes() == image.read_bytes()
        ours, theirs = (ResultCache(FrameStore.open(p)).load(4, KEY) for p in (r.store, store))
        for name in ("centres", "shares", "inertia"):
            np.testing.assert_array_equal(ours[name], theirs[name])
        np.testing.assert_array_equal(
            FrameStore.open(r.store).frames[:], FrameStore.open(store).frames[:]
        )

    # a re-run repeats nothing: no decoding, no clustering, the images untouched
    mtimes = [r.image.stat().st_mtime_ns for r in good]
    again = mb.run_batch(films, **kw)
    assert [r.status for r in (again[0], again[2])] == [mb.SKIPPED] * 2
    assert not any(r.decoded or r.clustered for r in again)
    assert [r.prep_status for r in (again[0], again[2])] == ["up to date"] * 2
    assert [r.image.stat().st_mtime_ns for r in (again[0], again[2])] == mtimes
    assert again[1].status == bad.status

    # half-finished work is finished, and only that: a lost image, a lost clustering
    good[0].image.unlink()
    shutil.rmtree(ResultCache(FrameStore.open(good[1].store)).path(4, KEY))
    third = mb.run_batch(films, **kw)
    assert third[0].status == "done" and not third[0].clustered and not third[0].decoded
    assert third[2].status == "done" and third[2].clustered and not third[2].decoded
    assert third[0].image.read_bytes() == (tmp_path / "plain" / third[0].image.name).read_bytes()
    assert third[2].image.read_bytes() == good[1].image.read_bytes()


def test_batch_command(client, films, tmp_path):
    """The command as a user meets it: a summary table, one line for the failure, exit 1."""
    lst = tmp_path / "films.txt"
    lst.write_text(f"# my films\n{films[0]}\n\n{films[1]}\n")
    code = "from moviebarcode.cli.batch import batch; batch(prog_name='moviebarcode batch')"
    r = subprocess.run(
        [sys.executable, "-c", code, str(films[2]), "--list", str(lst), "--scheduler",
         client.scheduler.address, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
         "--every", "4", "--width", "96", "-k", "4", "--mode", "dominant", "--label"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "moviebarcode: error: 1 of 3 films failed (see the summary)"
    ]
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["film", "frames", "seconds", "status"]
    assert lines[2].startswith("colours.mkv") and lines[2].rstrip().endswith("done")
    assert lines[3].startswith("bars.mp4") and lines[3].rstrip().endswith("done")
    assert lines[4].startswith("corrupt.mp4") and "failed: " in lines[4]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "bars-dominant-k4.png",
        "colours-dominant-k4.png",
    ]


def test_unreachable_scheduler():
    with pytest.raises(MoviebarcodeError, match="cannot reach the Dask scheduler at tcp://127"):
        with mb.connect("tcp://127.0.0.1:1", timeout=1):
            pass


def test_batch_without_dask(monkeypatch, films, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MoviebarcodeError, match=r"pip install 'moviebarcode\[dask\]'"):
        mb.run_batch(films, cache_dir=tmp_path, out_dir=tmp_path)


def test_same_names_refused(films, tmp_path):
    other = tmp_path / "elsewhere" / films[0].name
    other.parent.mkdir()
    shutil.copy(films[0], other)
    with pytest.raises(InputError, match="share the store"):
        mb.run_batch([films[0], other], cache_dir=tmp_path, out_dir=tmp_path)


@pytest.fixture(scope="module")
def big_store(films, tmp_path_factory):
    """A store of many small chunks, so that a clustering has several batches."""
    d = tmp_path_factory.mktemp("big")
    req = PrepRequest(every=1, width=64, chunk_frames=8)
    return prep(films[0], req, output=d / "bars.zarr").store


@pytest.mark.parametrize(
    "params, batch_frames",
    [(ClusterParams(k=4), 16), (ClusterParams(k=3, space="lab", seed=7), 24), (OPTS.cluster, None)],
)
def test_distributed_cluster_is_the_local_one(client, big_store, tmp_path, params, batch_frames):
    local_copy = tmp_path / "local.zarr"
    shutil.copytree(big_store, local_copy)
    remote_copy = tmp_path / "remote.zarr"
    shutil.copytree(big_store, remote_copy)
    seen = []
    with mb.DaskExecutor(client.scheduler.address) as dask:
        ours = cluster(
            FrameStore.open(remote_copy),
            params,
            executor=dask,
            batch_frames=batch_frames,
            progress=seen.append,
        )
    theirs = cluster(FrameStore.open(local_copy), params, batch_frames=batch_frames)
    n = FrameStore.open(remote_copy).frames_done
    assert seen[-1] == n and seen == sorted(seen)
    assert ours.params["executor"]["name"] == "dask" and ours.params["executor"]["workers"] == 2
    if batch_frames:
        assert ours.params["executor"]["tasks"] == -(-n // batch_frames) > 1
    for name in ("centres", "shares", "inertia"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
    # cached in the store like a local clustering: a plain render uses it and draws the same
    saved = ResultCache(FrameStore.open(remote_copy)).load(
        params.k, params.for_frames(FrameStore.open(remote_copy).frame_shape).key()
    )
    np.testing.assert_array_equal(saved["centres"], theirs.centres)
    with mb.DaskExecutor(client) as dask:
        assert cluster(FrameStore.open(remote_copy), params, executor=dask).cached
    opts = RenderOptions(cluster=params)
    a = render(remote_copy, opts, output=tmp_path / "a.png")
    b = render(local_copy, opts, output=tmp_path / "b.png")
    assert a.clusters.cached and b.clusters.cached
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_render_on_a_dask_executor(client, big_store, tmp_path):
    """render(..., executor=DaskExecutor(address)) draws the same barcode as a local render."""
    for name in ("local", "remote"):
        shutil.copytree(big_store, tmp_path / f"{name}.zarr")
    opts = RenderOptions(cluster=ClusterParams(k=5), batch_frames=16)
    with mb.DaskExecutor(client.scheduler.address) as dask:
        a = render(tmp_path / "remote.zarr", opts, output=tmp_path / "a.png", executor=dask)
    b = render(tmp_path / "local.zarr", opts, output=tmp_path / "b.png")
    assert not a.clusters.cached and not b.clusters.cached
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_ctrl_c_closes_the_local_cluster(tmp_path):
    """Ctrl-C during a batch on its own local cluster: exit 130, one line, no worker left, and
    the same command finishes the batch."""
    movie = make_clip(tmp_path / "long.mp4", "testsrc2=s=640x360:r=30:d=30")
    code = "from moviebarcode.cli.batch import batch; batch(prog_name='moviebarcode batch')"
    args = [sys.executable, "-c", code, str(movie), "--every", "1", "--workers", "1"]
    p = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = tmp_path / "cache" / "long.zarr"
    deadline = time.monotonic() + 60
    while not (store / "zarr.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    kids = descendants(p.pid)
    assert kids, "no worker processes"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.decode().strip().splitlines()[-1].startswith("moviebarcode: error: interrupted")
    time.sleep(1)
    alive = [k for k in kids if is_alive(k)]
    assert not alive, alive
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "done" in r.stdout.splitlines()[2]
