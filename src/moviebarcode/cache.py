"""The result cache: clusterings and per-frame statistics stored beside a store's frames.

Layout, under the store's ``results/`` group::

    results/k{k}/{key}     one clustering: centres (n, k, 3) float32 (sRGB 0..255),
                           shares (n, k) float32, inertia (n,) float64; the parameters
                           that made it in the group's attribute ``params``. A clustering
                           by shot (``moviebarcode.shotcluster``) has one row per shot.
    results/stats/{name}   one per-frame statistic: values (n, ...) float32

The cache knows nothing of what makes a key: the caller names everything that changes a
result in it (``moviebarcode.cluster.ClusterParams.key``). Each entry is written under a
temporary name and renamed into place, so a reader never sees half of one and two
writers cannot mix their arrays. An entry whose length is not the store's frame count is
treated as absent (a clustering by shot: when it is not one row per shot).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import zarr

from moviebarcode.store import FrameStore

CLUSTER_ARRAYS = ("centres", "shares", "inertia")


class ResultCache:
    """The ``results/`` group of ``store``."""

    def __init__(self, store: FrameStore):
        self.root = store.path / "results"
        self.frames = store.frames_done

    # -- clusterings ---------------------------------------------------------------------
    def path(self, k: int, key: str) -> Path:
        """Where the clustering (k, key) lives."""
        return self.root / f"k{k}" / key

    def load(self, k: int, key: str, rows: int | None = None) -> dict | None:
        """The clustering (k, key): its arrays (NumPy) and ``params``; None if absent or
        not of ``rows`` rows (default: the store's frame count; a clustering by shot has
        one row per shot)."""
        g = self._open(self.path(k, key))
        if g is None:
            return None
        out = {name: g[name][...] for name in CLUSTER_ARRAYS}
        out["params"] = dict(g.attrs.get("params", {}))
        return out if out["centres"].shape[0] == (self.frames if rows is None else rows) else None

    def save(self, k: int, key: str, params: dict, arrays: dict, replace: bool = False) -> None:
        """Publish a clustering: ``arrays`` holds centres, shares and inertia. An entry
        already there (another writer's identical result) stays, unless ``replace``."""
        missing = set(CLUSTER_ARRAYS) - set(arrays)
        if missing:
            raise ValueError(f"a clustering needs {', '.join(sorted(missing))}")
        self._publish(self.path(k, key), params, arrays, replace)

    def list(self) -> list[dict]:
        """The cached clusterings, ``[{k, key, params}]``, sorted by k, then key."""
        if not self.root.is_dir():
            return []
        out = []
        kdirs = [q for q in self.root.glob("k*") if q.name[1:].isdigit()]
        for kdir in sorted(kdirs, key=lambda q: int(q.name[1:])):
            for rdir in sorted(kdir.iterdir()):
                g = None if rdir.name.startswith(".") else self._open(rdir)
                if g is not None:
                    params = dict(g.attrs.get("params", {}))
                    out.append({"k": int(kdir.name[1:]), "key": rdir.name, "params": params})
        return out

    # -- per-frame statistics ------------------------------------------------------------
    def load_stats(self, name: str) -> np.ndarray | None:
        """The statistic ``name`` (n, ...), or None if absent."""
        g = self._open(self.root / "stats" / name)
        if g is None:
            return None
        values = g["values"][...]
        return values if values.shape[0] == self.frames else None

    def save_stats(self, name: str, values: np.ndarray, params: dict) -> None:
        """Publish the statistic ``name``: ``values`` (n, ...) and the ``params`` behind it."""
        self._publish(self.root / "stats" / name, params, {"values": values}, replace=False)

    # -- the one way in and out ----------------------------------------------------------
    @staticmethod
    def _open(path: Path) -> zarr.Group | None:
        if not (path / "zarr.json").is_file():
            return None
        return zarr.open_group(path, mode="r")

    def _publish(self, final: Path, params: dict, arrays: dict, replace: bool) -> None:
        """Write ``arrays`` and ``params`` as a group under a temporary name, then rename it
        to ``final``."""
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        for folder in (self.root, final.parent):
            if not (folder / "zarr.json").exists():
                # another render may create it at the same moment
                with contextlib.suppress(FileExistsError, zarr.errors.ContainsGroupError):
                    zarr.open_group(folder, mode="a", zarr_format=3)
        g = zarr.open_group(tmp, mode="w", zarr_format=3)
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            a = g.create_array(
                name,
                shape=arr.shape,
                dtype=arr.dtype,
                chunks=(max(1, min(arr.shape[0], 65536)), *arr.shape[1:]),
                compressors=None,
            )
            a[...] = arr
        g.attrs["params"] = params
        try:
            _rename_into_place(tmp, final, replace)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _rename_into_place(tmp: Path, final: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``final``; an entry at ``final`` is moved aside first if ``replace``,
    else kept. Something at ``final`` that is not an entry is an error."""
    for _ in range(10):
        try:
            os.rename(tmp, final)
            return
        except OSError:
            if not (final / "zarr.json").exists() and final.exists():
                raise  # something that is not a result is in the way
            if not replace:
                return
            backup = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(final, backup)
                shutil.rmtree(backup, ignore_errors=True)
