"""The command line in this process, through click's CliRunner: exit codes that scripts can
trust (usage errors 2, bad input 1), one line per error, --quiet, info and --help. (The
end-to-end runs in subprocesses, with kills and resumes, are in test_cli.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import zarr

from conftest import DATA, Run, run_cli
from moviebarcode.cli import prep as prep_command
from moviebarcode.cluster import ClusterParams
from moviebarcode.prep import PrepRequest, PrepResult, prep

run = run_cli


def one_line_error(r: Run, code: int, *words: str) -> None:
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("moviebarcode: error: "), r.err
    for w in words:
        assert w.lower() in r.err.lower(), r.err


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("runner") / "s.zarr"
    return prep(DATA / "bbb_excerpt_mpeg4.mkv", PrepRequest(every=8), output=out).store


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--every", "0"], 2, ["--every"]),
        (["--every", "5", "--fps", "2"], 2, ["only one"]),
        (["--every", "5", "--columns", "9"], 2, ["only one"]),
        (["--fps", "-1"], 2, ["--fps"]),
        (["--columns", "0"], 2, ["--columns"]),
        (["--size", "0x9"], 2, ["size"]),
        (["--size", "banana"], 2, ["size"]),
        (["--width", "100", "--height", "50"], 2, ["only one"]),
        (["--width", "100", "--size", "10x10"], 2, ["only one"]),
        (["--start", "10", "--end", "5"], 2, ["--end"]),
        (["--start", "abc"], 2, ["not a time"]),
        (["--crop", "maybe"], 2, ["crop"]),
        (["--keyframes", "--fps", "2"], 2, ["--keyframes"]),
        (["--bogus"], 2, ["--bogus"]),
        (["--start", "1:00:00"], 1, ["past the end"]),
    ],
)
def test_prep_option_mistakes(tmp_path, args, code, words):
    """The same kind of mistake gives the same exit code, whichever check finds it."""
    out = tmp_path / "x.zarr"
    r = run("prep", DATA / "bbb_excerpt_mpeg4.mkv", "-o", out, *args)
    one_line_error(r, code, *words)
    assert not out.exists()
    if code == 2:
        assert "moviebarcode prep --help" in r.err


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--k", "0"], 2, ["at least 1"]),
        (["--k", "65"], 2, ["at most 64"]),
        (["--mode", "plaid"], 2, ["plaid"]),
        (["--width", "0"], 2, ["--width"]),
        (["--n-init", "0"], 2, ["--n-init", "at least 1"]),
        (["--max-iter", "0"], 2, ["--max-iter", "at least 1"]),
        (["--jobs", "0"], 2, ["--jobs"]),
        (["--engine", "cuml", "--device", "cpu"], 2, ["runs on a gpu"]),
        (["--palette", "p.txt"], 2, ["json or .csv"]),
        (["-o", "x.jpg"], 1, ["png"]),
    ],
)
def test_render_option_mistakes(store, args, code, words):
    one_line_error(run("render", store, *args), code, *words)


def test_top_help_keeps_its_examples_one_a_line():
    """The top-level help shows each example command on its own line, as written (click
    rewraps a paragraph unless it is marked as preformatted)."""
    r = run_cli("--help")
    assert r.code == 0
    lines = [line.strip() for line in r.out.splitlines()]
    for command in ("prep", "render", "view", "info", "compare"):
        assert any(line.startswith(f"moviebarcode {command} ") for line in lines), command


def test_top_help_lists_every_command():
    """The commands are loaded lazily, but the help still lists each with its summary."""
    r = run_cli("--help")
    listed = r.out.split("Commands:")[1].split()
    for command in ("prep", "render", "view", "info", "batch", "compare"):
        assert command in listed, r.out
    assert "Decode MOVIE once" in r.out


def test_prep_loads_no_clustering_or_drawing_code():
    """``moviebarcode prep`` imports its own command only, so it starts sooner."""
    heavy = ("cluster", "kmeans", "render", "image", "view")
    code = (
        "import sys; from moviebarcode.cli import cli; cli.get_command(None, {!r}); "
        f"print(sorted(m for m in sys.modules if m.split('.')[1:2] in {[[h] for h in heavy]}))"
    )

    def loaded(command: str) -> str:
        run = [sys.executable, "-c", code.format(command)]
        return subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()

    assert loaded("prep") == "[]"
    assert "moviebarcode.cluster" in loaded("render")  # the check itself can fail


def test_missing_and_foreign_stores(tmp_path):
    one_line_error(run("render", tmp_path / "nothing.zarr"), 1, "no such store")
    one_line_error(run("render", DATA), 1, "not a moviebarcode store")
    one_line_error(run("info", tmp_path / "nothing.zarr"), 1, "no such store")
    old = tmp_path / "old.zarr"
    zarr.open_group(old, mode="w").attrs["moviebarcode"] = {"layout_version": 0}
    one_line_error(run("render", old), 1, "layout version")


def test_quiet_silences_warnings(tmp_path, monkeypatch):
    """--quiet: nothing but errors; without it, each warning is one line on stderr."""

    def fake_prep(movie, request, **kw):
        return PrepResult(tmp_path / "s.zarr", "created", 3, ["the file looks truncated"])

    monkeypatch.setattr(prep_command, "run_prep", fake_prep)
    quiet = run("prep", DATA / "bbb_excerpt_mpeg4.mkv", "-q")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    loud = run("prep", DATA / "bbb_excerpt_mpeg4.mkv")
    assert loud.code == 0 and "created, 3 frames" in loud.out
    assert loud.err.splitlines() == ["moviebarcode: warning: the file looks truncated"]


def test_info_summary_and_json(store):
    r = run("info", store)
    assert r.code == 0, r.err
    lines = [line for line in r.out.splitlines() if not line.startswith("result")]
    fields = dict(line.split(":", 1) for line in lines)
    assert fields["status"].strip() == "complete"
    assert fields["sampling"].strip() == "every 8 frames"
    assert run("render", store, "--k", "2", "-q").code == 0
    data = json.loads(run("info", store, "--json").out)
    assert data["frames"] > 0 and [r["k"] for r in data["results"]] == [2]
    assert data["results"][0]["key"] == ClusterParams(k=2).for_frames((90, 160)).key()


def test_help_reads_choices_from_the_library():
    r = run("render", "--help")
    assert r.code == 0
    for word in ("stacked", "lightness", "lab", "cuml", "[default: 8]"):
        assert word in r.out


def test_restarts_follow_the_frame_size():
    """Unless --n-init says, frames up to 160x90 get KMeansConfig's restarts, larger ones
    N_INIT_LARGE; the cache key needs the resolved value."""
    from moviebarcode.cluster import LARGE_FRAME_SEARCH, N_INIT_LARGE
    from moviebarcode.kmeans import KMeansConfig

    auto = ClusterParams(k=4)
    assert auto.for_frames((90, 160)).n_init == KMeansConfig().n_init
    assert auto.for_frames((270, 480)).n_init == N_INIT_LARGE
    assert ClusterParams(k=4, n_init=3).for_frames((270, 480)).n_init == 3
    assert f"ninit{N_INIT_LARGE}" in auto.for_frames((91, 160)).key()
    with pytest.raises(ValueError, match="for_frames"):
        auto.key()
    # the search carries more restarts further on large frames; the seed follows the batch
    small, large = auto.kmeans_config((90, 160), 7), auto.kmeans_config((270, 480), 7)
    assert small == KMeansConfig(seed=7)
    assert (large.n_init, large.seed) == (N_INIT_LARGE, 7)
    assert {name: getattr(large, name) for name in LARGE_FRAME_SEARCH} == LARGE_FRAME_SEARCH
    assert large.carry > small.carry and large.fine_iter > small.fine_iter
    assert 0 < large.finalists < large.carry and small.finalists == 0
