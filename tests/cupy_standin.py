"""A stand-in for the ``cupy`` module, backed by NumPy, to run the CuPy code paths on a CPU.

Install it as ``sys.modules["cupy"]`` (with ``monkeypatch.setitem``: it must not leak). Its
``ndarray`` wraps a NumPy array and behaves like ``cupy.ndarray`` (CuPy 13) where NumPy-only
code breaks on CuPy. It computes with NumPy: a result unlike NumPy's is a CuPy-only path.

Checked, as CuPy does it:

- no implicit conversion to NumPy: ``np.asarray(x)``, ``np.array(x)``, ``x.__array__()``
  raise TypeError ("Implicit conversion to a NumPy array is not allowed"); the ways out
  are ``x.get()`` and ``cupy.asnumpy(x)``, the ways in ``cupy.asarray`` and ``cupy.array``;
- no mixing of host and device arrays: ufuncs, operators and ``cupy.*`` functions given a
  NumPy array of ndim >= 1 raise TypeError (Python and NumPy scalars, 0-d arrays are
  fine), ufuncs given a list too; a NumPy function called on a device array runs the
  ``cupy`` function of that name (CuPy's ``__array_function__``);
- results are device arrays, 0-d ones where NumPy gives scalars (``cupy.sum(x)``, ``x[0]``);
- ``int()``, ``float()``, ``bool()``, ``len()``, iteration work (on a GPU they synchronise);
- NumPy arrays and lists are taken as indices, and as values set through integer-array
  indices; set through basic indices (slices), a NumPy array raises ValueError;
- ``repeat`` refuses a device array of counts (ValueError, CuPy < 14); ``sort`` and
  ``argsort`` take no ``kind`` but "stable" (ValueError).

Not checked: speed, memory, streams, anything CUDA (``cupy.cuda`` fakes one device and a
no-op stream), CuPy's rounding (its sums and products differ), dtype promotion and
out-of-bound indices where CuPy differs from NumPy, functions or arguments CuPy lacks (all
of NumPy's are offered), ``cupyx``, kernels, ``cupy.random`` / ``linalg`` / ``fft``.
"""

from __future__ import annotations

import functools
import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


def _unwrap(x, where: str, strict: bool = True):
    """``x`` with device arrays replaced by their NumPy arrays, in lists and tuples too; a
    host array (ndim >= 1) raises TypeError, unless not ``strict`` (host data moving in)."""
    if isinstance(x, ndarray):
        return x._a
    if strict and isinstance(x, np.ndarray) and x.ndim > 0:
        raise TypeError(f"{where}: unsupported type numpy.ndarray (host and device arrays mixed)")
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v, where, strict) for v in x)
    return x


def _wrap(r):
    """NumPy results as device arrays (NumPy scalars as 0-d arrays, as CuPy returns)."""
    if isinstance(r, np.ndarray | np.generic):
        return ndarray(np.asarray(r))
    if type(r) in (list, tuple):
        return type(r)(_wrap(v) for v in r)
    return r


def _function(f, where: str):
    """``f`` (a NumPy function or method) on device arrays, returning device arrays."""

    @functools.wraps(f)
    def call(*args, **kwargs):
        r = f(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()})
        out = kwargs.get("out")
        return out if isinstance(out, ndarray) else _wrap(r)

    return call


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """A device array: a NumPy array that refuses to leave the device implicitly."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, a: np.ndarray) -> None:
        if not isinstance(a, np.ndarray):
            raise TypeError("the stand-in ndarray wraps a NumPy array; use cupy.asarray")
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            return NotImplemented
        name, out = ufunc.__name__, kwargs.get("out")
        if any(isinstance(x, list | tuple) for x in inputs):
            raise TypeError(f"{name}: unsupported type list or tuple")
        kwargs = {k: _unwrap(v, name) for k, v in kwargs.items()}
        r = ufunc(*_unwrap(inputs, name), **kwargs)
        return (out[0] if len(out) == 1 else out) if out is not None else _wrap(r)

    def __array_function__(self, func, types_, args, kwargs):
        mine = getattr(sys.modules[__name__], func.__name__, None)
        handled = all(issubclass(t, ndarray | np.ndarray) for t in types_)
        if func.__module__ != "numpy" or mine is None or not handled:
            return NotImplemented
        return mine(*args, **kwargs)

    def __getattr__(self, name: str):  # methods and attributes: .sum(), .shape, .T ...
        if name.startswith("_") or name in ("ctypes", "data", "tofile"):
            raise AttributeError(f"the stand-in ndarray has no attribute {name!r}")
        value = getattr(self._a, name)
        return _function(value, f"ndarray.{name}") if callable(value) else _wrap(value)

    def __getitem__(self, key):
        key = _unwrap(key, "indexing", strict=False)
        r = self._a[key]
        if isinstance(r, np.generic):  # a 0-d view, as CuPy returns
            r = self._a[(*key, ...) if isinstance(key, tuple) else (key, ...)]
        return _wrap(r)

    def __setitem__(self, key, value) -> None:
        key = _unwrap(key, "indexing", strict=False)
        keys = key if isinstance(key, tuple) else (key,)
        advanced = any(isinstance(k, np.ndarray | list) for k in keys)
        if isinstance(value, np.ndarray) and value.ndim > 0 and not advanced:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._a[key] = _unwrap(value, "assignment", strict=False)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __bool__(self) -> bool:
        return bool(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __repr__(self) -> str:
        return f"cupy_standin.{self._a!r}"

    def get(self, stream=None, order: str = "C", out: np.ndarray | None = None) -> np.ndarray:
        if out is None:  # a copy on the host
            return np.array(self._a, order=order, copy=True)
        out[...] = self._a
        return out

    def repeat(self, repeats, axis=None) -> ndarray:
        return repeat(self, repeats, axis)

    def argsort(self, axis=-1, kind=None) -> ndarray:
        return argsort(self, axis, kind)


def asarray(a, dtype=None, order=None) -> ndarray:
    """``a`` on the device: itself when already there with this dtype, else a copy."""
    if isinstance(a, ndarray):
        r = np.asarray(a._a, dtype=dtype, order=order)
        return a if r is a._a else ndarray(r)
    return ndarray(np.array(_unwrap(a, "asarray", strict=False), dtype=dtype, order=order))


def array(obj, dtype=None, copy: bool = True, order: str = "K", ndmin: int = 0) -> ndarray:
    host = _unwrap(obj, "array", strict=False)
    return ndarray(np.array(host, dtype=dtype, copy=copy or None, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order: str = "C", out: np.ndarray | None = None) -> np.ndarray:
    return a.get(order=order, out=out) if isinstance(a, ndarray) else np.asarray(a, order=order)


def repeat(a, repeats, axis=None) -> ndarray:
    if isinstance(repeats, ndarray):
        raise ValueError("cupy.ndaray cannot be specified as `repeats` argument.")
    return _function(np.repeat, "repeat")(a, repeats, axis)


def _stable(f):
    def call(a, axis=-1, kind=None):
        if kind not in (None, "stable"):
            raise ValueError(f"{f.__name__}: kind {kind!r}; CuPy takes only None or 'stable'")
        return _function(f, f.__name__)(a, axis=axis, kind="stable")

    return call


argsort, sort = _stable(np.argsort), _stable(np.sort)


class OutOfMemoryError(MemoryError):
    """``cupy.cuda.memory.OutOfMemoryError``."""


FREE_BYTES = 16 * 1024**3
"""What ``cuda.runtime.memGetInfo`` says is free (a test may change it)."""

cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda device: {"name": b"NumPy stand-in for CuPy"},
        memGetInfo=lambda: (FREE_BYTES, 2 * FREE_BYTES),
    ),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
)


def get_default_memory_pool():
    """A pool holding nothing."""
    return types.SimpleNamespace(
        total_bytes=lambda: 0, used_bytes=lambda: 0, free_all_blocks=lambda: None
    )


def __getattr__(name: str):
    """The rest of NumPy: dtypes and constants as they are (``cupy.float32`` is
    ``numpy.float32``), functions and ufuncs on device arrays (not cached in ``globals()``,
    where ``any`` and ``all`` would shadow the builtins)."""
    if name.startswith("__"):
        raise AttributeError(name)
    value = getattr(np, name)
    if isinstance(value, types.ModuleType):
        raise AttributeError(f"the cupy stand-in does not provide cupy.{name}")
    if callable(value) and not isinstance(value, type):
        return _function(value, f"cupy.{name}")
    return value
