"""What :func:`~moviebarcode.kmeans.batched_kmeans` returns."""

from __future__ import annotations

from dataclasses import dataclass

from moviebarcode._xp import Array


@dataclass
class KMeansResult:
    """The clusters found in each frame of a batch, as arrays of the input's module.

    Attributes
    ----------
    centres : array of shape (F, k, 3), float32
        Cluster centres, in the space of the input pixels. A cluster that ended up
        empty keeps a finite centre (a duplicate of another centre or a data point).
    shares : array of shape (F, k), float32
        Fraction of each frame's pixels nearest to each centre; each row sums to 1.
    inertia : array of shape (F,), float64
        Sum of squared distances of each frame's pixels to their nearest centre
        (scikit-learn's ``inertia_``).
    n_iter : array of shape (F,), int32
        Lloyd iterations of the chosen run, over all its phases (coresets, neighbour
        starts and pixels), so it may exceed ``max_iter``.
    """

    centres: Array
    shares: Array
    inertia: Array
    n_iter: Array
