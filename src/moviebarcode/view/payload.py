"""The page's data, from the store: times, frame numbers, cuts, every cached clustering and
the per-frame statistics, as JSON with its arrays in base64 (little-endian), read by the
page's script as typed arrays.

A clustering is stored by column as the palette files list it (``palette.palette_rows``):
colours (n, k, 3) uint8 and shares (n, k) uint16 in 1/10000, largest first, shares of 0
last; the page draws every cluster mode from these and shows them as swatches.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from moviebarcode.cache import ResultCache
from moviebarcode.cluster import FRAME_BY_FRAME, ClusterParams, Clusters
from moviebarcode.columns import stacked_heights, to_uint8
from moviebarcode.kmeans import ALGORITHM_VERSION
from moviebarcode.shots import covered_end, shots_of
from moviebarcode.store import FrameStore

SHARE_UNITS = 10_000
"""Shares are sent in 1/10000, as the palette files round them."""


def b64(values: np.ndarray, dtype: str) -> str:
    """``values`` as ``dtype`` (little-endian), flattened, in base64."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def ranked(centres: np.ndarray, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's clusters as the palette files order them: colours (n, k, 3) uint8 and
    shares (n, k) uint16 in 1/10000 (summing to 10000), largest first, ties by the larger
    exact share, then the lower cluster; shares rounded to 0 come last."""
    sh = np.asarray(shares, np.float64)
    units = stacked_heights(sh, SHARE_UNITS)
    idx = np.broadcast_to(np.arange(sh.shape[1]), sh.shape)
    order = np.lexsort((idx, -sh, -units), axis=-1)
    colours = np.take_along_axis(to_uint8(np.asarray(centres, np.float64)), order[..., None], 1)
    return colours, np.take_along_axis(units, order, axis=1).astype(np.uint16)


def _preference(entry: dict, wanted: str) -> tuple:
    """How much a cached clustering is preferred among those of its k and space: the key
    asked for, then the current algorithm's results, then the reference engines'."""
    key = entry["key"]
    return (
        key == wanted,
        key.endswith(f"-v{ALGORITHM_VERSION}"),
        entry["params"].get("engine") in FRAME_BY_FRAME,
        key,
    )


def cached_choices(store: FrameStore, shown: ClusterParams) -> list[tuple[int, str]]:
    """(k, key) of one cached clustering by frame per k and colour space, sorted by k then
    space, ``shown``'s own (k, space) left out: the key with ``shown``'s other parameters
    where cached, else the current algorithm's."""
    shape = store.frame_shape
    best: dict[tuple[int, str], dict] = {}
    for entry in ResultCache(store).list():
        p = entry["params"]
        space = p.get("space", "rgb")
        if p.get("by") == "shot" or "-shots" in entry["key"] or space not in ("rgb", "lab"):
            continue
        k = entry["k"]
        if (k, space) == (shown.k, shown.space):
            continue
        wanted = ClusterParams(
            k=k, space=space, seed=shown.seed, max_iter=shown.max_iter, tol=shown.tol
        )
        wanted_key = wanted.for_frames(shape).key()
        old = best.get((k, space))
        if old is None or _preference(entry, wanted_key) > _preference(old, wanted_key):
            best[(k, space)] = entry
    return [(k, best[(k, s)]["key"]) for k, s in sorted(best)]


def clustering_entry(k: int, space: str, key: str, params: dict, centres, shares) -> dict:
    """One clustering as the page reads it."""
    colours, units = ranked(centres, shares)
    engine = params.get("engine") or ""
    note = engine if engine in FRAME_BY_FRAME else key.rsplit("-", 1)[-1]
    old = note != f"v{ALGORITHM_VERSION}" and engine not in FRAME_BY_FRAME
    label = f"k={k} · {space}" + (f" ({note})" if old or engine in FRAME_BY_FRAME else "")
    return {
        "k": int(k),
        "space": space,
        "key": key,
        "label": label,
        "colours": b64(colours, "u1"),
        "units": b64(units, "<u2"),
    }


def clusterings(store: FrameStore, shown: ClusterParams, clusters: Clusters) -> list[dict]:
    """The page's clusterings: ``clusters`` (made with ``shown``) first, then one cached
    clustering per other k and space (see :func:`cached_choices`)."""
    p = shown.for_frames(store.frame_shape)
    out = [
        clustering_entry(p.k, p.space, p.key(), clusters.params, clusters.centres, clusters.shares)
    ]
    cache = ResultCache(store)
    for k, key in cached_choices(store, shown):
        hit = cache.load(k, key)
        if hit is not None:
            space = hit["params"].get("space", "rgb")
            out.append(
                clustering_entry(k, space, key, hit["params"], hit["centres"], hit["shares"])
            )
    return out


def film_facts(store: FrameStore, end: float, n_shots: int | None) -> list[str]:
    """The facts line of the page: frames, frame size, sampling, length, shots."""
    h, w = store.frame_shape
    n = store.frames_done
    summary = store.summary()
    facts = [f"{n:,} frame{'s' * (n != 1)} of {w}x{h}", summary["sampling"], summary["covers"]]
    if n_shots is not None:
        facts.append(f"{n_shots:,} shot{'s' * (n_shots != 1)}")
    return facts


def film_data(store: FrameStore, title: str | None) -> dict:
    """What the page shows of the film itself: title, facts, times, frame numbers, where it
    ends, and its cuts (None without)."""
    times = store.times
    end = covered_end(store)
    cuts = None
    n_shots = None
    if store.cuts is not None:
        shots = shots_of(store)
        cuts, end, n_shots = shots.starts[1:], float(shots.ends[-1]), shots.n
    source = Path(store.meta["source"]["path"])
    return {
        "title": source.stem if title is None else title,
        "source": source.name,
        "facts": film_facts(store, end, n_shots),
        "n": int(store.frames_done),
        "frame_size": list(store.frame_shape[::-1]),
        "times": b64(times, "<f8"),
        "indices": b64(store.indices, "<f8"),
        "end": float(end),
        "cuts": None if cuts is None else b64(cuts, "<f8"),
    }
