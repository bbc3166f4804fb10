"""``moviebarcode info``: what a store or a movie holds."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from moviebarcode._fmt import hms
from moviebarcode.cache import ResultCache
from moviebarcode.cli._common import friendly_errors
from moviebarcode.errors import StoreError
from moviebarcode.probe import probe
from moviebarcode.shots import shots_of
from moviebarcode.store import FrameStore, first_of


def _movie_lines(m: dict) -> list[str]:
    video = f"{m['codec']} {m['pix_fmt']} {m['width']}x{m['height']}"
    if tuple(m["sar"]) != (1, 1):
        video += f" SAR {m['sar'][0]}:{m['sar'][1]}"
    if m["rotation"]:
        video += f" rotated {m['rotation']}"
    if m["hdr"]:
        video += f" HDR {m['color_transfer']}"
    return [
        f"movie:      {m['path']}",
        f"video:      {video}",
        f"frame rate: {m['fps'] or '?'} fps",
        f"duration:   {hms(m['duration'])} ({m['duration']} s)",
    ]


def _shots_line(store: FrameStore, status: str) -> str:
    """How many shots, how long, how they were found; or why there are none. ``status`` is
    the summary's (complete, incomplete or damaged, found once)."""
    meta = store.meta
    shots, cuts = meta.get("shots"), store.cuts
    if cuts is None or shots is None:
        if meta["sampling"].get("keyframes"):
            return "none (a --keyframes store: only keyframes were decoded)"
        return "no cuts recorded (`prep --shots` adds them)"
    if status != "complete" or not store.frames_done:
        return f"{len(cuts)} cuts"  # no frame times to measure the shots with
    lengths = shots_of(store).durations
    return (
        f"{len(lengths)}, median {np.median(lengths):.1f} s (threshold "
        f"{shots['threshold']:g}, {shots.get('scored', 'every decoded frame')})"
    )


def _store_lines(data: dict) -> list[str]:
    lines = [f"{k + ':':<15}{v}" for k, v in data.items() if k not in ("results", "check")]
    lines += [f"{'result:':<15}k={r['k']} {r['key']}" for r in data["results"]]
    if "check" in data:
        lines.append(f"{'check:':<15}{data['check']}")
    return lines


def _check(store: FrameStore) -> str:
    """Every chunk read and decoded: a line saying so, or StoreError naming the damage."""
    damage = store.damage(read=True)
    if damage:
        raise StoreError(f"{store.path}: {first_of(damage)}; {store.repair_hint()}")
    chunks = -(-store.frames_done // store.chunk_frames)
    return f"{chunks} chunk{'s' * (chunks != 1)} each of frames, time and index read: all whole"


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="Read and decode every chunk of the store's frames, times and indices; exit 1 if "
    "any is missing, cut short or unreadable.",
)
@friendly_errors
def info(path, as_json, check):
    """Show what a frame store (or a movie file) holds."""
    if path.is_dir() or path.suffix == ".zarr":
        store = FrameStore.open(path)
        summary = store.summary()
        layout = summary.pop("layout")
        data = {**summary, "shots": _shots_line(store, summary["status"]), "layout": layout}
        data["results"] = ResultCache(store).list()
        if check:
            data["check"] = _check(store)
        lines = _store_lines(data)
    else:
        data = {"movie": probe(path).to_dict()}
        lines = _movie_lines(data["movie"])
    click.echo(json.dumps(data, indent=2) if as_json else "\n".join(lines))
