"""Batched k-means colour clustering of many frames at once, for NumPy and CuPy alike.

:func:`batched_kmeans` clusters the pixels of a whole batch of frames in one go (one
independent k-means problem per frame) with the settings of a :class:`KMeansConfig`,
and returns a :class:`KMeansResult`. The code is written against the functions NumPy
and CuPy share (``xp`` is the ``numpy`` or ``cupy`` module), so the same code runs on
the CPU and on a GPU. All randomness is drawn on the host with
``numpy.random.default_rng(seed)``, so NumPy and CuPy start from the same draws; their
floating-point rounding differs (matrix products, sums), and where a frame's path hangs
on a near-tie the two can end in different local optima, so their results agree
closely on most frames but are not bit-identical. On one module, the same pixels, ``k``
and config always give the same result, bit for bit.

Algorithm, per frame (all frames of a block are processed together; the only Python
loops are over clusters, seeding steps, iterations and blocks of frames):

1. a weighted coreset (:mod:`._coreset`): the frame's colour box, in luma /
   opponent-colour axes, is cut into about ``8**fine_bits`` equal cubes and each
   non-empty cube becomes one point, the mean of its pixels, weighted by their count
   (k-means on these is k-means on the pixels, up to a constant, wherever a cube's
   pixels share a cluster);
2. a coarser coreset (``8**coarse_bits`` cubes) of that one, for the restarts;
3. ``n_init`` greedy weighted k-means++ seedings (:mod:`._seeding`) on the coarse
   coreset, each refined by at most ``restart_iter`` Lloyd iterations (:mod:`._lloyd`)
   there, all restarts as one bigger batch (:mod:`._layout`);
4. the ``carry`` restarts with the lowest coarse inertia go on by at most
   ``fine_iter`` Lloyd iterations on the fine coreset (or, with ``finalists``, all of
   them for ``trial_iter`` iterations and only the ``finalists`` best for the rest), and
   the lowest inertia there picks one (the coarse coreset ranks restarts too roughly to
   pick the best on its own); steps 3 and 4 together do at most ``max_iter`` iterations
   (:mod:`._search`); the Lloyd iterations of steps 3-5 are over-relaxed by
   ``coreset_relax`` (each centre goes that many times its step towards its mean);
5. neighbour starts (:mod:`._neighbours`), once every frame of the batch has its step-4
   centres: the centres of the ``neighbours`` frames before and after it in the batch
   start at most ``neighbour_iter`` more Lloyd iterations each on the frame's fine
   coreset, and the lowest coreset inertia among them and the frame's own centres
   wins. Films are mostly continuous shots, so a neighbour's solution is often a better
   local optimum than any of the frame's own restarts; ``neighbour_rounds`` rounds,
   each from the last one's winners, spread a good solution along the shot;
6. Lloyd iterations on all the pixels (:mod:`._pixels`) settle the bins split between
   clusters, until the centres move by at most ``pixel_tol`` (relative like ``tol``,
   and tighter, so that a frame ends at the bottom of its local optimum) or for at most
   ``min(pixel_iter, max_iter)`` iterations. One bound per pixel (a one-bound variant of
   Hamerly's algorithm) skips the pixels that cannot have changed cluster, and the loop
   runs over the whole batch at once; a frame that has converged moves no more, whatever
   the others do; its steps are over-relaxed by ``pixel_relax``, but for each frame's
   last, a plain one, so that it ends at a Lloyd fixed point. A final assignment of
   every pixel gives exact shares and inertia.

Without a coreset (``coreset=False``) steps 3-5 run on the pixels, the best restart
runs on to convergence or ``max_iter``, and step 6 is only the final assignment.

Lloyd iterations compute only the problems still moving. A frame's result depends on
the other frames of its batch (its neighbours) only through step 5, never on the blocking
or the threads; so several batches stacked in one call (``segments``) each get their own
result, which is how the cupy engine saves kernel launches.
Speed and quality against scikit-learn are measured in the README's benchmark section.

Pooled problems (a shot's frames together) are weighted point sets: :func:`coreset`
reduces frames, or merged coresets, to weighted points, :func:`weighted_kmeans` runs
steps 2-5 on them and settles on the points in place of step 6, and
:func:`assign_counts` gives exact pixel counts and inertia for the centres found.

Modules, each importing only those listed before it: :mod:`.config` (settings),
:mod:`._result`, :mod:`._layout` (stacked problems, blocks), :mod:`._common`
(distances, assignments), :mod:`._coreset`, :mod:`._seeding`, :mod:`._lloyd`,
:mod:`._search`, :mod:`._pixels`, :mod:`._neighbours`, :mod:`._batched` (the top level),
:mod:`._weighted` (weighted point sets).
"""

from moviebarcode.kmeans._batched import batched_kmeans
from moviebarcode.kmeans._result import KMeansResult
from moviebarcode.kmeans._weighted import assign_counts, coreset, weighted_kmeans
from moviebarcode.kmeans.config import ALGORITHM_VERSION, KMeansConfig

__all__ = [
    "ALGORITHM_VERSION",
    "KMeansConfig",
    "KMeansResult",
    "assign_counts",
    "batched_kmeans",
    "coreset",
    "weighted_kmeans",
]
