"""The settings of :func:`~moviebarcode.kmeans.batched_kmeans`, checked once, resolved once.

:class:`KMeansConfig` holds every setting that can change the result; it is frozen and
checks each field when it is made (like scikit-learn's ``_parameter_constraints``), so a
bad value fails at once with a :class:`~moviebarcode.errors.ParameterError` naming the
field. :class:`_Plan` is what the phases read: the config with each phase's iteration cap
worked out from ``max_iter``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import ClassVar

from moviebarcode.errors import ParameterError

ALGORITHM_VERSION = 11
"""Bumped whenever the defaults or the algorithm change the results (cached results name it)."""


@dataclass(frozen=True)
class _Constraint:
    """What one field of :class:`KMeansConfig` may hold: a ``kind`` (``bool``, ``Integral``
    or ``Real``; ``bool`` is never taken for a number) in ``[low, high]``, and ``math.inf``
    too with ``unbounded``."""

    kind: type
    low: float = -math.inf
    high: float = math.inf
    unbounded: bool = False

    def check(self, name: str, value: object) -> None:
        """Raise :class:`ParameterError` unless ``value`` fits, naming ``name``."""
        if self.unbounded and isinstance(value, Real) and value == math.inf:
            return
        kind_ok = isinstance(value, self.kind) and (
            self.kind is bool or not isinstance(value, bool)
        )
        if kind_ok and (self.kind is bool or self.low <= value <= self.high):  # NaN fails
            return
        raise ParameterError(f"KMeansConfig.{name} must be {self.describe()}, got {value!r}")

    def describe(self) -> str:
        if self.kind is bool:
            return "True or False"
        what = "an int" if self.kind is Integral else "a real number"
        if self.high < math.inf:
            what += f" from {self.low:g} to {self.high:g}"
        elif self.low > -math.inf:
            what += f" >= {self.low:g}"
        return what + (" or math.inf" if self.unbounded else "")


_COUNT = _Constraint(Integral, low=1)
_CAP = _Constraint(Integral, low=0, unbounded=True)
_TOL = _Constraint(Real, low=0, high=math.inf)
_BITS = _Constraint(Real, low=1, high=8)
_FLAG = _Constraint(bool)
_RELAX = _Constraint(Real, low=1.0, high=1.99)


@dataclass(frozen=True)
class KMeansConfig:
    """Every setting of :func:`~moviebarcode.kmeans.batched_kmeans` that can change its result.

    Frozen, and checked when made: a field of the wrong type or out of range raises
    :class:`~moviebarcode.errors.ParameterError` naming it. The phases are described in
    :mod:`moviebarcode.kmeans`. The iteration caps (``*_iter``) take an int or ``math.inf``
    (no cap of their own); ``max_iter`` caps them all.

    Attributes
    ----------
    n_init : int, default=8
        k-means++ restarts per frame (step 3), >= 1.
    max_iter : int, default=100
        Most Lloyd iterations, >= 1: of the restarts and the fine coreset together
        (steps 3-4), of each neighbour start (step 5), and of the pixel phase (step 6).
    tol : float, default=1e-4
        Convergence tolerance on coresets, relative like scikit-learn's: a frame has
        converged once the sum of its centres' squared shifts is at most
        ``tol * mean(var(frame, axis=0))`` (the variance of its coreset's bin means).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``, >= 0: all the random draws of a batch.
    coreset : bool, default=True
        Cluster weighted coresets first (steps 1-5); False: every phase on all pixels
        (exact k-means, slow; ``fine_bits``, ``coarse*`` and ``fine_iter`` are unused and
        the best restart runs on to convergence).
    fine_bits : float, default=5
        The fine coreset has at most about ``8**fine_bits`` bins per frame; 1 to 8.
    coarse : bool, default=True
        Run the restarts on a coarser coreset, binned from the fine one; False: on the fine
        coreset (then ``carry`` is unused).
    coarse_bits : float, default=3.5
        The coarse coreset has at most about ``8**coarse_bits`` bins; 1 to 8, below
        ``fine_bits`` when ``coreset`` and ``coarse`` are on.
    restart_iter : int or math.inf, default=8
        Most Lloyd iterations of each restart (on the coarse coreset, else the fine one).
    carry : int, default=3
        Restarts, the best on the coarse coreset, that go on to the fine coreset, where the
        best of them is picked; >= 1, at most ``n_init`` are.
    fine_iter : int or math.inf, default=5
        Most Lloyd iterations of the carried restarts on the fine coreset.
    finalists : int, default=0
        After ``trial_iter`` of those iterations, only the ``finalists`` carried restarts
        of lowest fine inertia go on; 0 (or at least ``carry``): all of them.
    trial_iter : int, default=2
        Iterations of every carried restart before the finalists are picked, >= 1; from
        ``fine_iter`` on, every carried restart goes on.
    neighbours : int, default=2
        Each frame also starts from the centres of the frames up to this many places
        before and after it in the batch; 0: frames are clustered independently.
    neighbour_rounds : int, default=2
        Rounds of neighbour starts, each from the last one's winners; 0: none.
    neighbour_iter : int or math.inf, default=2
        Most Lloyd iterations of each neighbour start, on the fine coreset.
    pixel_iter : int or math.inf, default=math.inf
        Most Lloyd iterations on all pixels after the coresets (so, by default,
        ``max_iter``); 0: only the final assignment of the pixels.
    pixel_tol : float, default=1e-6
        Convergence tolerance of the pixel phase, relative like ``tol``.
    coreset_relax : float, default=1.3
        Over-relaxation of the Lloyd iterations on the coresets (steps 3-5), from 1
        (plain Lloyd) to below 2: each centre goes this many times its step towards its
        cluster's mean. They are few and capped, and over-relaxed they get further.
    pixel_relax : float, default=1.6
        Over-relaxation of the pixel phase, from 1 (plain Lloyd) to below 2: a moving
        centre goes this many times its step towards its cluster's mean. A frame's last
        step (once its steps are within ``pixel_tol``) is a plain one, so the result is
        still a Lloyd fixed point; over-relaxed, the pixel phase takes fewer iterations
        and ends lower on film frames (the README's benchmark section has the figures).
    """

    n_init: int = 8
    max_iter: int = 100
    tol: float = 1e-4
    seed: int = 0
    coreset: bool = True
    fine_bits: float = 5.0
    coarse: bool = True
    coarse_bits: float = 3.5
    restart_iter: int | float = 8
    carry: int = 3
    fine_iter: int | float = 5
    finalists: int = 0
    trial_iter: int = 2
    neighbours: int = 2
    neighbour_rounds: int = 2
    neighbour_iter: int | float = 2
    pixel_iter: int | float = math.inf
    pixel_tol: float = 1e-6
    coreset_relax: float = 1.3
    pixel_relax: float = 1.6

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_init": _COUNT,
        "max_iter": _COUNT,
        "tol": _TOL,
        "seed": _Constraint(Integral, low=0),
        "coreset": _FLAG,
        "fine_bits": _BITS,
        "coarse": _FLAG,
        "coarse_bits": _BITS,
        "restart_iter": _CAP,
        "carry": _COUNT,
        "fine_iter": _CAP,
        "finalists": _Constraint(Integral, low=0),
        "trial_iter": _COUNT,
        "neighbours": _Constraint(Integral, low=0),
        "neighbour_rounds": _Constraint(Integral, low=0),
        "neighbour_iter": _CAP,
        "pixel_iter": _CAP,
        "pixel_tol": _TOL,
        "coreset_relax": _RELAX,
        "pixel_relax": _RELAX,
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            self._constraints[f.name].check(f.name, getattr(self, f.name))
        if self.coreset and self.coarse and self.coarse_bits >= self.fine_bits:
            raise ParameterError(
                f"KMeansConfig.coarse_bits must be below fine_bits ({self.fine_bits!r}), "
                f"got {self.coarse_bits!r}; coarse=False runs the restarts on the fine coreset"
            )


@dataclass(frozen=True)
class _Plan:
    """A :class:`KMeansConfig` resolved for the phases: each phase's iteration cap, as an int.

    ``restart_iter + fine_iter <= max_iter`` (steps 3-4 share ``max_iter``); without a
    coreset the best restart goes on, on the pixels, for the rest of ``max_iter``, and the
    pixel phase does no iterations (only the final assignment).
    """

    n_init: int
    tol: float
    seed: int
    coreset: bool
    fine_cells: int  # bins of the fine coreset, about 8**fine_bits
    coarse: bool  # restarts on the coarse coreset
    coarse_cells: int  # its bins, about 8**coarse_bits
    restart_iter: int
    carry: int  # restarts carried to the fine coreset: 1 without a coarse level
    fine_iter: int
    finalists: int  # carried restarts that go on after trial_iter: carry for none cut
    trial_iter: int
    neighbours: int
    neighbour_rounds: int
    neighbour_iter: int
    pixel_iter: int
    pixel_tol: float
    coreset_relax: float
    pixel_relax: float

    @classmethod
    def of(cls, config: KMeansConfig) -> _Plan:
        """The plan of ``config``."""

        def cap(n: int | float) -> int:
            return int(min(config.max_iter, n))

        restart_iter = cap(config.restart_iter)
        rest = config.max_iter - restart_iter  # for the best restarts, after theirs
        coarse = config.coreset and config.coarse
        carry = max(1, min(config.carry, config.n_init)) if coarse else 1
        fine_iter = int(min(rest, config.fine_iter)) if config.coreset else rest
        finalists = carry
        if 0 < config.finalists < carry and config.trial_iter < fine_iter:
            finalists = config.finalists
        return cls(
            n_init=config.n_init,
            tol=config.tol,
            seed=config.seed,
            coreset=config.coreset,
            fine_cells=round(8.0 ** float(config.fine_bits)),
            coarse=coarse,
            coarse_cells=round(8.0**config.coarse_bits),
            restart_iter=restart_iter,
            carry=carry,
            fine_iter=fine_iter,
            finalists=finalists,
            trial_iter=config.trial_iter,
            neighbours=config.neighbours,
            neighbour_rounds=config.neighbour_rounds,
            neighbour_iter=cap(config.neighbour_iter),
            pixel_iter=cap(config.pixel_iter) if config.coreset else 0,
            pixel_tol=config.pixel_tol,
            coreset_relax=config.coreset_relax,
            pixel_relax=config.pixel_relax,
        )
