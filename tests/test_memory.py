"""Memory is bounded by the batch, sized in bytes, not by the film or the frame size: render
in every mode stays under 500 MB on a 1280x720 store (the worker processes included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import DATA
from moviebarcode.prep import PrepRequest, prep

PEAK = """
import resource, sys
from moviebarcode.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].split()[1]
print(int(hwm) * 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
@pytest.mark.parametrize("mode", ["average", "squeeze", "stacked"])
def test_render_peak_memory_at_720p(tmp_path_factory, mode):
    store = tmp_path_factory.getbasetemp() / "m720.zarr"
    if not store.exists():  # 56 frames: 150 MB of them, 600 MB in float32
        prep(DATA / "bbb_trailer_h264.mp4", PrepRequest(every=24, width=1280), output=store)
    shutil.rmtree(store / "results", ignore_errors=True)  # compute, do not read the cache
    out = subprocess.run(
        [sys.executable, "-c", PEAK, "render", str(store), "--mode", mode, "--recompute", "-q",
         "-o", str(tmp_path_factory.mktemp("png") / "x.png")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    ours, workers = (int(v) for v in out.stdout.split())
    # a worker's ru_maxrss includes this process's memory at the fork: an upper bound
    assert max(ours, workers) < 500 * 2**20, (ours >> 20, workers >> 20)
